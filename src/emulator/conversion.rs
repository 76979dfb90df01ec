//! What a chip's toolchain does to a float model before placement (`quantization.float_graphs`):
//! a toolchain that quantizes from a calibration set (Hailo's Dataflow Compiler) builds an int8
//! model, so the emulator predicts that build; one that compiles only quantized models
//! (edgetpu_compiler) refuses every float node.

use crate::model::ModelInventory;
use crate::profile::{ChipProfile, DType, FloatGraphs};

/// Whether `model` is a float graph (no quantization of any style).
pub fn is_float_graph(model: &ModelInventory) -> bool {
    model.quantization == "none" && model.nodes.iter().any(|n| n.dtype.is_some_and(is_float))
}

pub fn is_float(dtype: DType) -> bool {
    matches!(dtype, DType::Fp32 | DType::Fp16 | DType::Bf16)
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
    for node in &mut int8.nodes {
        let Some(width) = node.dtype.filter(|d| is_float(*d)).map(bytes_of) else { continue };
        node.dtype = Some(DType::Int8);
        node.weight_bytes /= width;
        node.output_bytes = node.output_bytes.map(|b| b / width);
    }
    // Keyed by tensor, not node, name: tensor names are unique (the checker enforces SSA).
    let widths: std::collections::HashMap<&str, u64> = model
        .nodes
        .iter()
        .filter_map(|n| Some((n, bytes_of(n.dtype.filter(|d| is_float(*d))?))))
        .flat_map(|(n, width)| n.outputs.iter().map(move |o| (o.as_str(), width)))
        .collect();
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

fn bytes_of(dtype: DType) -> u64 {
    crate::model::activation_bytes(dtype)
}
