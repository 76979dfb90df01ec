//! What a chip's toolchain does to a float model before placement (`quantization.float_graphs`):
//! a toolchain that quantizes from a calibration set (Hailo's Dataflow Compiler) builds an int8
//! model, so the emulator predicts that build; one that compiles only quantized models
//! (edgetpu_compiler) refuses every float node.

use std::collections::HashMap;

use crate::model::{dtype_bytes_for_activation, ModelInventory, Quantization};
use crate::profile::{ChipProfile, DType, FloatGraphs};

/// Whether `model` is a float graph (no quantization of any style).
pub fn is_float_graph(model: &ModelInventory) -> bool {
    model.quantization == Quantization::None
        && model.nodes.iter().any(|n| n.dtype.is_some_and(DType::is_float))
}

/// The model the toolchain compiles: `model` itself, or its int8 build when the profile's
/// toolchain quantizes float graphs. The second value says what was converted, for the report.
pub fn as_compiled(
    model: &ModelInventory,
    profile: &ChipProfile,
) -> (Option<ModelInventory>, Option<String>) {
    if profile.quantization.float_graphs != FloatGraphs::Quantized || !is_float_graph(model) {
        return (None, None);
    }
    let mut int8 = model.clone();
    // Keyed by tensor, not node, name: tensor names are unique (the checker enforces SSA).
    let mut widths: HashMap<&str, u64> = HashMap::new();
    for (node, original) in int8.nodes.iter_mut().zip(&model.nodes) {
        let Some(width) = node.dtype.filter(|d| d.is_float()).map(dtype_bytes_for_activation) else {
            continue;
        };
        node.dtype = Some(DType::Int8);
        node.weight_bytes /= width;
        node.output_bytes = node.output_bytes.map(|b| b / width);
        widths.extend(original.outputs.iter().map(|o| (o.as_str(), width)));
    }
    for act in &mut int8.activations {
        act.bytes /= widths.get(act.name.as_str()).copied().unwrap_or(1);
    }
    int8.weight_bytes = int8
        .weight_bytes_by_dtype
        .iter()
        .map(|(dtype, bytes)| match dtype.as_str() {
            "float64" => bytes / 8,
            "float32" => bytes / 4,
            "float16" | "bfloat16" => bytes / 2,
            _ => *bytes,
        })
        .sum();
    let why = format!(
        "the float model is predicted as its int8 build by {}, which quantizes float models from a calibration set; accuracy measured on the float model is not that build's",
        profile.chip.toolchain.as_deref().unwrap_or("the chip's toolchain")
    );
    (Some(int8), Some(why))
}
