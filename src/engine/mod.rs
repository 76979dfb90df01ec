//! The inference engine seam. tract (pure Rust) is the default; a faster runtime such as
//! onnxruntime can implement [`Engine`] later and run the same golden replay.

mod tract;

use std::path::Path;

use ndarray::ArrayD;

use crate::error::Result;
use crate::model::TensorInfo;

pub use self::tract::TractEngine;

/// One input or output tensor. f32 covers every model edgecert replays today (QDQ models take
/// and return f32 at their boundary).
pub type Tensor = ArrayD<f32>;

/// Loads models into runnable form.
pub trait Engine: Send + Sync {
    fn name(&self) -> &'static str;
    fn load(&self, path: &Path, inputs: &[TensorInfo]) -> Result<Box<dyn LoadedModel>>;
    /// Loads the model with `tensors` (intermediate tensors, by ONNX name) as its outputs, in
    /// that order: per-layer analysis reads activations the graph does not export.
    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>>;
}

/// A model ready to run; `run` is called from several threads at once during replay.
pub trait LoadedModel: Send + Sync {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>>;
}

/// The default engine.
pub fn default_engine() -> Box<dyn Engine> {
    Box::new(TractEngine)
}
