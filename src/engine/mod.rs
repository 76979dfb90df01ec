//! The inference engine seam: tract (pure Rust, the zero-setup default) and onnxruntime (loaded
//! at run time where installed) run the same golden replay behind [`Engine`].

mod onnxruntime;
mod tract;

use std::path::Path;

use ndarray::ArrayD;

use crate::model::{InputQuantization, TensorInfo};
use crate::vocab::{Error, Result};

pub use self::onnxruntime::{locate as locate_onnxruntime, OnnxruntimeEngine};
pub use self::tract::TractEngine;

/// One input or output tensor. f32 covers every model edgecert replays today (QDQ models take
/// and return f32 at their boundary).
pub type Tensor = ArrayD<f32>;

/// Loads models into runnable form.
pub trait Engine: Send + Sync {
    /// The engine and its version, as certificates record it (e.g. "onnxruntime 1.32.0").
    fn name(&self) -> &str;
    /// Which engine this is (never `Auto`).
    fn choice(&self) -> EngineChoice;
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

    /// One run for a timed scenario, with its latency in milliseconds: the wall clock around
    /// [`LoadedModel::run`] here; a device reports its own clock's.
    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        let clock = std::time::Instant::now();
        let outputs = self.run(inputs)?;
        Ok((outputs, clock.elapsed().as_secs_f64() * 1e3))
    }

    /// Samples the runtime prefers per call (a command-line runtime starts once per call).
    fn preferred_batch(&self) -> usize {
        1
    }

    /// Several samples' outputs, in order: by default each sample on its own, in parallel.
    fn run_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Tensor>>> {
        use rayon::prelude::*;
        samples.par_iter().map(|s| self.run(s)).collect()
    }

    /// Several timed runs, in order: by default one [`LoadedModel::run_timed`] after another
    /// (never in parallel: concurrent runs would time each other).
    fn run_timed_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<(Vec<Tensor>, f64)>> {
        samples.iter().map(|s| self.run_timed(s)).collect()
    }

    /// Cold and warm load times (ms) measured where the model runs, where that is not here.
    fn device_load_times_ms(&self) -> Option<(f64, f64)> {
        None
    }

    /// Timed runs whose outputs were compared with the accuracy run's, and how many differed
    /// (MLPerf's TEST01), where the model keeps the accuracy run's outputs to compare.
    fn timed_output_consistency(&self) -> Option<(usize, usize)> {
        None
    }
}

/// `model`, fed its integer inputs' codes: every sample (always f32) of an input with a
/// quantization becomes `clamp(round(x / scale) + zero_point)` before the engine, or the device,
/// casts it to the input's type. Coding happens here once for every backend, outside the timed
/// region (it is the host's preprocessing, not inference).
pub fn with_input_codes(model: Box<dyn LoadedModel>, inputs: &[TensorInfo]) -> Box<dyn LoadedModel> {
    let codes: Vec<Option<InputCoding>> = inputs
        .iter()
        .map(|i| {
            Some(InputCoding {
                quantization: i.quantization?,
                range: InputQuantization::code_range(&i.dtype)?,
            })
        })
        .collect();
    if codes.iter().all(Option::is_none) {
        return model;
    }
    Box::new(CodedInputs { model, codes })
}

#[derive(Clone, Copy)]
struct InputCoding {
    quantization: InputQuantization,
    range: (f32, f32),
}

struct CodedInputs {
    model: Box<dyn LoadedModel>,
    codes: Vec<Option<InputCoding>>,
}

impl CodedInputs {
    fn coded(&self, inputs: &[Tensor]) -> Vec<Tensor> {
        inputs
            .iter()
            .zip(self.codes.iter().chain(std::iter::repeat(&None)))
            .map(|(t, coding)| match coding {
                Some(c) => t.mapv(|x| c.quantization.code(x, c.range)),
                None => t.clone(),
            })
            .collect()
    }

    fn coded_batch(&self, samples: &[Vec<Tensor>]) -> Vec<Vec<Tensor>> {
        samples.iter().map(|s| self.coded(s)).collect()
    }
}

impl LoadedModel for CodedInputs {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.model.run(&self.coded(inputs))
    }

    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        self.model.run_timed(&self.coded(inputs))
    }

    fn preferred_batch(&self) -> usize {
        self.model.preferred_batch()
    }

    fn run_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Tensor>>> {
        self.model.run_batch(&self.coded_batch(samples))
    }

    fn run_timed_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<(Vec<Tensor>, f64)>> {
        self.model.run_timed_batch(&self.coded_batch(samples))
    }

    fn device_load_times_ms(&self) -> Option<(f64, f64)> {
        self.model.device_load_times_ms()
    }

    fn timed_output_consistency(&self) -> Option<(usize, usize)> {
        self.model.timed_output_consistency()
    }
}

/// The engine a user asks for (`--engine`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// tract-onnx, built in: float kernels, QDQ simulated in float.
    #[default]
    Tract,
    /// onnxruntime from ORT_DYLIB_PATH or an installed wheel: integer kernels on QDQ models.
    Onnxruntime,
    /// onnxruntime where it is installed, tract otherwise.
    Auto,
}

/// The engine chosen, with why when `auto` fell back to tract.
pub struct Selected {
    pub engine: Box<dyn Engine>,
    pub fallback: Option<String>,
}

/// The engine `choice` names. Asking for onnxruntime where it cannot be loaded is an error
/// (exit 2) saying where it was looked for; `auto` falls back to tract and says why.
/// The refusal of a runtime outside this process to expose intermediate tensors: per-layer
/// analysis runs on the host engines, a device runs a graph's own outputs.
pub fn no_layer_analysis(path: &Path, runtime: &str) -> Error {
    Error::Usage(format!(
        "{}: per-layer analysis runs on the host engines; {runtime} runs a graph's own outputs",
        path.display()
    ))
}

pub fn select(choice: EngineChoice) -> Result<Selected> {
    let onnxruntime = || OnnxruntimeEngine::load_runtime().map(|e| Box::new(e) as Box<dyn Engine>);
    match choice {
        EngineChoice::Tract => Ok(Selected { engine: default_engine(), fallback: None }),
        EngineChoice::Onnxruntime => {
            let engine = onnxruntime().map_err(|why| Error::Usage(format!("--engine onnxruntime: {why}")))?;
            Ok(Selected { engine, fallback: None })
        }
        EngineChoice::Auto => Ok(match onnxruntime() {
            Ok(engine) => Selected { engine, fallback: None },
            Err(why) => Selected { engine: default_engine(), fallback: Some(why) },
        }),
    }
}

/// The other engine, for `certify --cross-check`: onnxruntime against tract and back. Both
/// must be available.
pub fn counterpart(engine: &dyn Engine) -> Result<Box<dyn Engine>> {
    match engine.choice() {
        EngineChoice::Onnxruntime => Ok(default_engine()),
        _ => OnnxruntimeEngine::load_runtime()
            .map(|e| Box::new(e) as Box<dyn Engine>)
            .map_err(|why| Error::Usage(format!("--cross-check replays on tract and onnxruntime: {why}"))),
    }
}

/// The default engine.
pub fn default_engine() -> Box<dyn Engine> {
    Box::new(TractEngine)
}

#[cfg(test)]
mod intake_tests;
