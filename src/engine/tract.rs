//! tract behind the [`Engine`] seam: tract-onnx for ONNX files, tract-tflite for TFLite files
//! (told apart by content), one compiled plan type for both.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;
use tract_tflite::tflite::BuiltinOperator as Op;

use super::{Engine, LoadedModel, Tensor};
use crate::model::{datum_type, TensorInfo};
use crate::vocab::{Error, Result};

pub struct TractEngine;

/// tract for TFLite files, under tract-tflite's name (what a certificate records).
pub struct TractTfliteEngine;

impl Engine for TractTfliteEngine {
    fn choice(&self) -> super::EngineChoice {
        super::EngineChoice::Tract
    }

    fn name(&self) -> &str {
        "tract-tflite 0.23.9"
    }

    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>> {
        TractEngine.load_exposing(path, inputs, tensors)
    }
}

/// The TFLite builtins tract-tflite 0.23.9 translates (its `ops` registry); a file with another
/// is refused before tract reads it, naming the operators.
const TRACT_TFLITE_BUILTINS: &[Op] = &[
    Op::ABS,
    Op::ADD,
    Op::ARG_MAX,
    Op::AVERAGE_POOL_2D,
    Op::BATCH_MATMUL,
    Op::BROADCAST_TO,
    Op::CEIL,
    Op::CONCATENATION,
    Op::CONV_2D,
    Op::COS,
    Op::DEPTHWISE_CONV_2D,
    Op::DIV,
    Op::EQUAL,
    Op::EXP,
    Op::EXPAND_DIMS,
    Op::FLOOR,
    Op::FULLY_CONNECTED,
    Op::GREATER,
    Op::GREATER_EQUAL,
    Op::HARD_SWISH,
    Op::LEAKY_RELU,
    Op::LESS,
    Op::LESS_EQUAL,
    Op::LOG,
    Op::LOGICAL_AND,
    Op::LOGICAL_NOT,
    Op::LOGICAL_OR,
    Op::LOGISTIC,
    Op::MAXIMUM,
    Op::MAX_POOL_2D,
    Op::MEAN,
    Op::MINIMUM,
    Op::MUL,
    Op::NOT_EQUAL,
    Op::PAD,
    Op::PADV2,
    Op::REDUCE_MAX,
    Op::REDUCE_MIN,
    Op::REDUCE_PROD,
    Op::RELU,
    Op::RELU6,
    Op::RESHAPE,
    Op::RESIZE_BILINEAR,
    Op::RESIZE_NEAREST_NEIGHBOR,
    Op::RSQRT,
    Op::SELECT,
    Op::SELECT_V2,
    Op::SHAPE,
    Op::SIN,
    Op::SLICE,
    Op::SOFTMAX,
    Op::SQRT,
    Op::SQUARE,
    Op::SQUEEZE,
    Op::STRIDED_SLICE,
    Op::SUB,
    Op::SUM,
    Op::TANH,
    Op::TRANSPOSE,
];

/// A TFLite file through tract-tflite, at the input shapes the file stores (tract's TFLite
/// frontend does not resize). The flatbuffer is verified first: tract reads it unchecked.
fn load_tflite(path: &Path, inputs: &[TensorInfo], tensors: &[String]) -> Result<Box<dyn LoadedModel>> {
    if !tensors.is_empty() {
        return Err(super::no_tflite_layers(path));
    }
    let bytes = crate::vocab::read_bytes(path)?;
    let unsupported = crate::model::tflite::builtins_outside(
        &crate::model::tflite::verified(path, &bytes)?,
        TRACT_TFLITE_BUILTINS,
    );
    if !unsupported.is_empty() {
        return Err(Error::model(
            path,
            format!(
                "tract-tflite 0.23.9 does not run {}; LiteRT runs every TFLite builtin: --engine litert (pip install ai-edge-litert)",
                unsupported.join(", ")
            ),
        ));
    }
    // tract's TFLite frontend unwraps what a well-formed file always has (a MEAN's axes are a
    // constant): a verified but hostile file must be an error, not a panic.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tflite_plan(path, &bytes, inputs)))
        .map_err(|_| Error::model(path, "tract's TFLite reader failed on this file (a malformed operator?)"))?
        .map(|m| Box::new(m) as Box<dyn LoadedModel>)
}

/// The runnable plan of a verified TFLite file whose builtins tract-tflite translates.
fn tflite_plan(path: &Path, bytes: &[u8], inputs: &[TensorInfo]) -> Result<TractModel> {
    // The root cause names the operator; the chain above it dumps the flatbuffer's tables.
    let cannot = |e: TractError| {
        Error::model(
            path,
            format!(
                "tract cannot run this TFLite file ({}); LiteRT runs every TFLite builtin: --engine litert (pip install ai-edge-litert)",
                e.root_cause()
            ),
        )
    };
    let model = tract_tflite::tflite().model_for_read(&mut &bytes[..]).map_err(cannot)?;
    let model = exact_float_scales(model).map_err(cannot)?;
    for (ix, input) in inputs.iter().enumerate() {
        let stored = model.input_fact(ix).map_err(cannot)?.shape.as_concrete().map(|s| s.to_vec());
        if stored.as_ref() != Some(&input.shape) {
            return Err(Error::model(
                path,
                format!(
                    "tract runs TFLite file input `{}` at its stored shape {stored:?}, not {:?}; LiteRT resizes inputs: --engine litert",
                    input.name, input.shape
                ),
            ));
        }
    }
    let input_types = model
        .input_outlets()
        .map_err(cannot)?
        .iter()
        .map(|o| model.outlet_fact(*o).map(|f| f.datum_type))
        .collect::<TractResult<Vec<_>>>()
        .map_err(cannot)?;
    let plan = model.into_optimized().and_then(|m| m.into_runnable()).map_err(cannot)?;
    Ok(TractModel { path: path.to_path_buf(), plan, input_types })
}

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

    fn load_exposing(
        &self,
        path: &Path,
        inputs: &[TensorInfo],
        tensors: &[String],
    ) -> Result<Box<dyn LoadedModel>> {
        if crate::model::ModelFormat::of(path)? == crate::model::ModelFormat::Tflite {
            return load_tflite(path, inputs, tensors);
        }
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

/// tract-tflite 0.23.9 divides a float MEAN by its element count with tract's `Scale`, an
/// integer rescale that rounds its result (`round(x * 1/n)`): a float mean came out as a whole
/// number. Found by replaying the shapes family's TFLite export against LiteRT (top-1 0.47
/// against 0.994). Each `Scale` with a float result becomes the multiplication it stands for.
fn exact_float_scales(mut model: TypedModel) -> TractResult<TypedModel> {
    use tract_tflite::internal::tract_core::ops::binary::TypedBinOp;
    use tract_tflite::internal::tract_core::ops::math::mul;
    use tract_tflite::internal::TypedModelPatch;
    let rounding: Vec<usize> = model
        .nodes()
        .iter()
        .filter(|n| n.op_as::<TypedBinOp>().is_some_and(|op| op.0.name() == "Scale"))
        .filter(|n| n.outputs[0].fact.datum_type.is_float())
        .map(|n| n.id)
        .collect();
    for id in rounding {
        let node = model.node(id);
        TypedModelPatch::replace_single_op(&model, node, &node.inputs, mul())?.apply(&mut model)?;
    }
    Ok(model)
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
        // tract's kernels trust the shapes and strides a file declares (a hostile pool stride
        // overflows its index arithmetic): a panic running a model is that model's error.
        let outputs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.plan.run(inputs)))
            .map_err(|_| Error::Inference {
                path: self.path.clone(),
                message: "tract failed running this model (a malformed operator's shapes or strides?)".into(),
            })?
            .map_err(failed)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> crate::engine::Tensor {
        let x: Vec<f32> = (0..1024).map(|i| (i % 17) as f32 / 17.0).collect();
        ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 1, 32, 32]), x).unwrap()
    }

    fn run(path: &Path) -> Vec<f32> {
        let inputs = crate::model::ModelInventory::load(path).unwrap().inputs;
        let model = TractEngine.load(path, &inputs).unwrap();
        model.run(&[sample()]).unwrap()[0].iter().copied().collect()
    }

    /// The TFLite export of the shapes model computes what its ONNX source computes, on tract's
    /// two frontends; tract-tflite's own MEAN, unpatched, rounds the pooled features and does not.
    #[test]
    fn a_float_tflite_export_scores_as_its_onnx_source_and_the_unpatched_mean_does_not() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let tflite = root.join("tests/fixtures/tflite/shapes_fp32.tflite");
        let onnx = run(&root.join("golden/shapes/shapes_fp32.onnx"));
        let patched = run(&tflite);
        let gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(gap(&patched, &onnx) < 1e-4, "tflite {patched:?} onnx {onnx:?}");

        let bytes = std::fs::read(&tflite).unwrap();
        let unpatched = tract_tflite::tflite().model_for_read(&mut bytes.as_slice()).unwrap();
        let plan = unpatched.into_optimized().unwrap().into_runnable().unwrap();
        let out = plan.run(tvec![tract_onnx::prelude::Tensor::from(sample()).into()]).unwrap();
        let rounded: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
        assert!(gap(&rounded, &onnx) > 0.1, "tract-tflite's MEAN no longer rounds: drop exact_float_scales");
    }

    /// The crash the property below found in CI (proptest-regressions/engine/tract.txt): one
    /// byte of the shapes model set to 128 gives a pool a stride tract's kernel overflows on.
    /// Running it is an inference error naming the file, not a panic.
    #[test]
    fn a_pool_stride_tract_overflows_on_is_an_inference_error() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut bytes = std::fs::read(root.join("tests/fixtures/tflite/shapes_fp32.tflite")).unwrap();
        // proptest's Index(17761077888973825822) into the file: (len × index) >> 64.
        let at = ((bytes.len() as u128 * 17761077888973825822u128) >> 64) as usize;
        bytes[at] = 128;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostile.tflite");
        std::fs::write(&path, &bytes).unwrap();
        let inventory = crate::model::ModelInventory::load(&path).unwrap();
        let model = TractEngine.load(&path, &inventory.inputs).unwrap();
        let e = model.run(&[sample()]).unwrap_err().to_string();
        assert!(e.contains("hostile.tflite") && e.contains("tract failed running this model"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]

        /// A hostile file that passes the verifier reaches tract's reader: it loads and runs, or
        /// is an error naming the file, never a panic.
        #[test]
        fn a_corrupted_tflite_file_loads_or_is_refused_on_tract_never_a_panic(
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..6)
        ) {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let mut bytes = std::fs::read(root.join("tests/fixtures/tflite/shapes_fp32.tflite")).unwrap();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("hostile.tflite");
            std::fs::write(&path, &bytes).unwrap();
            if let Ok(inventory) = crate::model::ModelInventory::load(&path) {
                if let Ok(model) = TractEngine.load(&path, &inventory.inputs) {
                    let _ = model.run(&[sample()]);
                }
            }
        }
    }
}
