//! The inference engine seam: tract (pure Rust, the zero-setup default, ONNX and TFLite),
//! onnxruntime (ONNX) and LiteRT (TFLite), both loaded at run time where installed, run the same
//! golden replay behind [`Engine`]. A run's files may mix formats: [`select`] gives each format
//! its engine.

mod litert;
mod onnxruntime;
mod tract;

use std::path::Path;

use ndarray::ArrayD;

use crate::model::{InputQuantization, ModelFormat, OutputInfo, TensorInfo};
use crate::vocab::{Error, Result};

pub use self::litert::LitertEngine;
pub use self::onnxruntime::{locate as locate_onnxruntime, OnnxruntimeEngine};
pub use self::tract::{TractEngine, TractTfliteEngine};

/// One input or output tensor. f32 covers every model edgecert replays today (QDQ models take
/// and return f32 at their boundary).
pub type Tensor = ArrayD<f32>;

/// Loads models into runnable form.
pub trait Engine: Send + Sync {
    /// The engine and its version, as certificates record it (e.g. "onnxruntime 1.32.0").
    fn name(&self) -> &str;
    /// Which engine this is (never `Auto`).
    fn choice(&self) -> EngineChoice;
    /// Which engine runs files of `format`: this one, unless it gives each format its own.
    fn choice_for(&self, _format: ModelFormat) -> EngineChoice {
        self.choice()
    }
    /// Loads the model with its own outputs: [`Engine::load_exposing`] with no tensors, unless
    /// an engine loads differently when it exposes none.
    fn load(&self, path: &Path, inputs: &[TensorInfo]) -> Result<Box<dyn LoadedModel>> {
        self.load_exposing(path, inputs, &[])
    }
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

/// `model` with its 8-bit boundary in real values: every sample (always f32) of an input with a
/// quantization becomes `clamp(round(x / scale) + zero_point)` before the engine, or the device,
/// casts it to the input's type, and every output with a quantization (a TFLite full-integer
/// model's uint8 scores) reads `(code - zero_point) * scale` before any metric sees it. This
/// happens here once for every backend, outside the timed region (it is the host's pre- and
/// post-processing, not inference).
pub fn with_quantized_io(
    model: Box<dyn LoadedModel>,
    inputs: &[TensorInfo],
    outputs: &[OutputInfo],
) -> Box<dyn LoadedModel> {
    let codes: Vec<Option<InputCoding>> = inputs
        .iter()
        .map(|i| {
            Some(InputCoding {
                quantization: i.quantization?,
                range: InputQuantization::code_range(&i.dtype)?,
            })
        })
        .collect();
    let dequantize: Vec<Option<InputQuantization>> = outputs
        .iter()
        .map(|o| o.quantization.filter(|_| InputQuantization::code_range(&o.dtype).is_some()))
        .collect();
    if codes.iter().all(Option::is_none) && dequantize.iter().all(Option::is_none) {
        return model;
    }
    Box::new(CodedInputs { model, codes, dequantize })
}

#[derive(Clone, Copy)]
struct InputCoding {
    quantization: InputQuantization,
    range: (f32, f32),
}

struct CodedInputs {
    model: Box<dyn LoadedModel>,
    codes: Vec<Option<InputCoding>>,
    dequantize: Vec<Option<InputQuantization>>,
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

    fn real(&self, outputs: Vec<Tensor>) -> Vec<Tensor> {
        outputs
            .into_iter()
            .zip(self.dequantize.iter().chain(std::iter::repeat(&None)))
            .map(|(t, q)| match q {
                Some(q) => t.mapv(|c| (c - q.zero_point as f32) * q.scale),
                None => t,
            })
            .collect()
    }
}

impl LoadedModel for CodedInputs {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.model.run(&self.coded(inputs)).map(|o| self.real(o))
    }

    fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
        self.model.run_timed(&self.coded(inputs)).map(|(o, ms)| (self.real(o), ms))
    }

    fn preferred_batch(&self) -> usize {
        self.model.preferred_batch()
    }

    fn run_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<Vec<Tensor>>> {
        let outputs = self.model.run_batch(&self.coded_batch(samples))?;
        Ok(outputs.into_iter().map(|o| self.real(o)).collect())
    }

    fn run_timed_batch(&self, samples: &[Vec<Tensor>]) -> Result<Vec<(Vec<Tensor>, f64)>> {
        let outputs = self.model.run_timed_batch(&self.coded_batch(samples))?;
        Ok(outputs.into_iter().map(|(o, ms)| (self.real(o), ms)).collect())
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
    /// LiteRT (TFLite's interpreter) from an installed `ai-edge-litert` wheel, for TFLite files:
    /// integer kernels, every builtin operator. ONNX files run on tract.
    Litert,
    /// onnxruntime for ONNX files and LiteRT for TFLite files where installed, tract otherwise.
    Auto,
}

/// The engine chosen, with why when `auto` fell back to tract.
pub struct Selected {
    pub engine: Box<dyn Engine>,
    pub fallback: Option<String>,
}

/// The refusal of a runtime outside this process to expose intermediate tensors: per-layer
/// analysis runs on the host engines, a device runs a graph's own outputs.
pub fn no_layer_analysis(path: &Path, runtime: &str) -> Error {
    Error::Usage(format!(
        "{}: per-layer analysis runs on the host engines; {runtime} runs a graph's own outputs",
        path.display()
    ))
}

/// The refusal of per-layer analysis of a TFLite file by tract-tflite, whose plan keeps no
/// intermediate tensor by its file name; LiteRT's interpreter keeps them all.
pub fn no_tflite_layers(path: &Path) -> Error {
    Error::Usage(format!(
        "{}: tract-tflite does not expose a TFLite file's intermediate tensors; per-layer analysis of a TFLite file runs on LiteRT: --engine litert (pip install ai-edge-litert)",
        path.display()
    ))
}

/// Each format's engine under `choice`, for a run whose models are in `formats`: the named
/// vendor runtime for the format it reads (onnxruntime ONNX, LiteRT TFLite), tract for the other.
/// Asking for a runtime that cannot be loaded is an error (exit 2) saying where it was looked
/// for; `auto` falls back to tract and says why.
pub fn select(choice: EngineChoice, formats: &[ModelFormat]) -> Result<Selected> {
    if choice == EngineChoice::Litert && !formats.contains(&ModelFormat::Tflite) {
        return Err(Error::Usage(
            "--engine litert runs TFLite files and this run has none: ONNX files run on --engine tract or onnxruntime"
                .into(),
        ));
    }
    let mut fallbacks = Vec::new();
    let mut pick = |format: ModelFormat| -> Result<Box<dyn Engine>> {
        let vendor = match format {
            ModelFormat::Onnx => onnxruntime,
            ModelFormat::Tflite => litert,
        };
        let vendor_choice = vendor_of(format);
        match choice {
            EngineChoice::Auto => Ok(vendor().unwrap_or_else(|why| {
                fallbacks.push(why);
                tract_for(format)
            })),
            c if c == vendor_choice => {
                vendor().map_err(|why| Error::Usage(format!("--engine {}: {why}", c.flag())))
            }
            _ => Ok(tract_for(format)),
        }
    };
    let onnx = pick(ModelFormat::Onnx)?;
    let engine = match formats.contains(&ModelFormat::Tflite) {
        false => onnx,
        true => by_format(onnx, pick(ModelFormat::Tflite)?, formats),
    };
    let fallback = (!fallbacks.is_empty()).then(|| fallbacks.join("; "));
    Ok(Selected { engine, fallback })
}

fn onnxruntime() -> std::result::Result<Box<dyn Engine>, String> {
    OnnxruntimeEngine::load_runtime().map(|e| Box::new(e) as Box<dyn Engine>)
}

fn litert() -> std::result::Result<Box<dyn Engine>, String> {
    LitertEngine::load_runtime().map(|e| Box::new(e) as Box<dyn Engine>)
}

/// The vendor runtime that reads `format`.
fn vendor_of(format: ModelFormat) -> EngineChoice {
    match format {
        ModelFormat::Onnx => EngineChoice::Onnxruntime,
        ModelFormat::Tflite => EngineChoice::Litert,
    }
}

fn tract_for(format: ModelFormat) -> Box<dyn Engine> {
    match format {
        ModelFormat::Onnx => default_engine(),
        ModelFormat::Tflite => Box::new(TractTfliteEngine),
    }
}

impl EngineChoice {
    /// The value of `--engine` that names this choice.
    pub fn flag(self) -> &'static str {
        match self {
            EngineChoice::Tract => "tract",
            EngineChoice::Onnxruntime => "onnxruntime",
            EngineChoice::Litert => "litert",
            EngineChoice::Auto => "auto",
        }
    }
}

/// The other engine, for `certify --cross-check`: the vendor runtime against tract and back,
/// for each format of the compressed models (`formats`), which alone are cross-checked. Both
/// must be available.
pub fn counterpart(engine: &dyn Engine, formats: &[ModelFormat]) -> Result<Box<dyn Engine>> {
    let other = |format: ModelFormat| -> Result<Box<dyn Engine>> {
        if !formats.contains(&format) {
            return Ok(tract_for(format));
        }
        match engine.choice_for(format) {
            EngineChoice::Tract => match format {
                ModelFormat::Onnx => onnxruntime(),
                ModelFormat::Tflite => litert(),
            }
            .map_err(|why| {
                Error::Usage(format!(
                    "--cross-check replays on tract and {}: {why}",
                    vendor_of(format).flag()
                ))
            }),
            _ => Ok(tract_for(format)),
        }
    };
    let onnx = other(ModelFormat::Onnx)?;
    Ok(match formats.contains(&ModelFormat::Tflite) {
        false => onnx,
        true => by_format(onnx, other(ModelFormat::Tflite)?, formats),
    })
}

/// One engine per format, named after those the run uses (`tract-onnx 0.23.9 + LiteRT 2.3.0`).
fn by_format(onnx: Box<dyn Engine>, tflite: Box<dyn Engine>, formats: &[ModelFormat]) -> Box<dyn Engine> {
    let mut names = Vec::new();
    if formats.contains(&ModelFormat::Onnx) {
        names.push(onnx.name().to_string());
    }
    names.push(tflite.name().to_string());
    Box::new(ByFormat { onnx, tflite, name: names.join(" + ") })
}

struct ByFormat {
    onnx: Box<dyn Engine>,
    tflite: Box<dyn Engine>,
    name: String,
}

impl ByFormat {
    fn of(&self, path: &Path) -> Result<&dyn Engine> {
        Ok(match ModelFormat::of(path)? {
            ModelFormat::Onnx => self.onnx.as_ref(),
            ModelFormat::Tflite => self.tflite.as_ref(),
        })
    }
}

impl Engine for ByFormat {
    fn name(&self) -> &str {
        &self.name
    }

    fn choice(&self) -> EngineChoice {
        self.tflite.choice()
    }

    fn choice_for(&self, format: ModelFormat) -> EngineChoice {
        match format {
            ModelFormat::Onnx => self.onnx.choice(),
            ModelFormat::Tflite => self.tflite.choice(),
        }
    }

    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>> {
        self.of(path)?.load_exposing(path, inputs, tensors)
    }
}

/// The default engine.
pub fn default_engine() -> Box<dyn Engine> {
    Box::new(TractEngine)
}

#[cfg(test)]
mod intake_tests;
