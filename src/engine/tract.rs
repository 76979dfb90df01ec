//! tract-onnx behind the [`Engine`] seam.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

use super::{Engine, LoadedModel, Tensor};
use crate::model::{datum_type, TensorInfo};
use crate::vocab::{Error, Result};

pub struct TractEngine;

type Plan = Arc<TypedRunnableModel>;

struct TractModel {
    path: PathBuf,
    plan: Plan,
    /// The type each input is declared with: samples arrive as f32 and are cast to it, so an
    /// fp16 export runs in fp16 as on the chip.
    input_types: Vec<DatumType>,
}

impl Engine for TractEngine {
    fn choice(&self) -> super::EngineChoice {
        super::EngineChoice::Tract
    }

    fn name(&self) -> &str {
        "tract-onnx 0.23.9"
    }

    fn load(&self, path: &Path, inputs: &[TensorInfo]) -> Result<Box<dyn LoadedModel>> {
        self.load_exposing(path, inputs, &[])
    }

    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>> {
        let fail = |stage: &str, e: TractError| {
            Error::model(path, format!("engine could not {stage} the model: {e:#}"))
        };
        let mut model = tract_onnx::onnx().model_for_path(path).map_err(|e| fail("load", e))?;
        let input_types: Vec<DatumType> =
            inputs.iter().map(|i| datum_type(&i.dtype).unwrap_or(f32::datum_type())).collect();
        for (ix, (input, dt)) in inputs.iter().zip(&input_types).enumerate() {
            model
                .set_input_fact(ix, InferenceFact::dt_shape(*dt, input.shape.clone()))
                .map_err(|e| fail("set the input shape of", e))?;
        }
        if !tensors.is_empty() {
            model.select_outputs_by_name(tensors).map_err(|e| fail("expose the tensors of", e))?;
        }
        let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| fail("optimise", e))?;
        Ok(Box::new(TractModel { path: path.to_path_buf(), plan, input_types }))
    }
}

impl LoadedModel for TractModel {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let failed = |e: TractError| Error::Inference { path: self.path.clone(), message: format!("{e:#}") };
        let inputs: TVec<TValue> = inputs
            .iter()
            .zip(self.input_types.iter().chain(std::iter::repeat(&f32::datum_type())))
            .map(|(t, dt)| {
                let t = tract_onnx::prelude::Tensor::from(t.clone());
                Ok(t.cast_to_dt(*dt).map_err(failed)?.into_owned().into())
            })
            .collect::<Result<_>>()?;
        let outputs = self.plan.run(inputs).map_err(failed)?;
        outputs
            .iter()
            .map(|o| {
                let o = o
                    .cast_to::<f32>()
                    .map_err(|e| Error::Inference { path: self.path.clone(), message: format!("{e:#}") })?;
                let view = o
                    .to_plain_array_view::<f32>()
                    .map_err(|e| Error::Inference { path: self.path.clone(), message: format!("{e:#}") })?;
                Ok(view.to_owned())
            })
            .collect()
    }
}
