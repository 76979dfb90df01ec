//! Placement: which unit runs each node, and why, under the profile's fallback policy.

use serde::Serialize;

use crate::model::{ModelInventory, NodeInfo};
use crate::profile::{ChipProfile, DType, FallbackPolicy, FloatGraphs, OpLimits};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Npu,
    Cpu,
    /// Folded into neighbours by the vendor toolchain (e.g. Q/DQ pairs).
    Absorbed,
    /// The toolchain would refuse the model for this node: unsupported under a strict policy, or
    /// a float node for a toolchain that compiles only quantized models.
    Rejected,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Npu => "npu",
            Unit::Cpu => "cpu",
            Unit::Absorbed => "absorbed",
            Unit::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodePlacement {
    pub node: String,
    pub op_type: String,
    pub unit: Unit,
    pub reason: String,
    /// True when the node is not supported by the accelerator (whatever the policy did).
    pub unsupported: bool,
    /// True when the verdict rests on a partial operator list.
    pub list_partial: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Placement {
    pub policy: FallbackPolicy,
    pub nodes: Vec<NodePlacement>,
    /// NPU↔CPU hand-overs along the node order.
    pub boundaries: usize,
}

/// Why the accelerator cannot run `node`, if it cannot.
fn unsupported_reason(node: &NodeInfo, profile: &ChipProfile) -> Option<String> {
    let Some(limits) = profile.operators.lookup(&node.op_type) else {
        let list = if profile.operators.complete { "operator list" } else { "partial operator list" };
        return Some(format!("`{}` is not in the profile's {list}", node.op_type));
    };
    if profile.npu.is_none() {
        return Some("the profile has no accelerator".into());
    }
    dtype_problem(node, profile, &limits).or_else(|| limit_problem(node, &limits))
}

/// Whether a chip taking `allowed` runs `dtype`, as its toolchain converts: fp32 graphs become
/// fp16 where the accelerator has fp16, and uint8 and int8 asymmetric quantization are the same
/// grid shifted by 128 (onnxruntime's default uint8 activations run as int8 on RKNN, and int8
/// as uint8 on a uint8 kernel), a lossless move of the zero point.
fn accepts(allowed: &[DType], dtype: DType) -> bool {
    let converted = match dtype {
        DType::Fp32 => Some(DType::Fp16),
        DType::Uint8 => Some(DType::Int8),
        DType::Int8 => Some(DType::Uint8),
        _ => None,
    };
    allowed.contains(&dtype) || converted.is_some_and(|c| allowed.contains(&c))
}

fn dtype_problem(node: &NodeInfo, profile: &ChipProfile, limits: &OpLimits) -> Option<String> {
    let allowed = profile.operators.dtypes_for(limits);
    let dtype = node.dtype?;
    (!accepts(&allowed, dtype)).then(|| {
        let names: Vec<&str> = allowed.iter().map(|d| d.name()).collect();
        format!(
            "`{}` runs in {} here; the accelerator takes {}",
            node.op_type,
            dtype.name(),
            names.join(", ")
        )
    })
}

fn limit_problem(node: &NodeInfo, limits: &OpLimits) -> Option<String> {
    let a = &node.attrs;
    let out_range = |what: &str, values: &[usize], range: Option<[u32; 2]>| {
        let [lo, hi] = range?;
        values
            .iter()
            .find(|&&v| v < lo as usize || v > hi as usize)
            .map(|v| format!("{what} {v} is outside the accelerator's [{lo}, {hi}]"))
    };
    let input = node.input_shapes.first().cloned().flatten().unwrap_or_default();
    let over = |what: &str, value: Option<&usize>, max: Option<u64>| {
        let (v, m) = (*value? as u64, max?);
        (v > m).then(|| format!("{what} {v} exceeds the accelerator's maximum {m}"))
    };
    out_range("kernel", &a.kernel, limits.kernel)
        .or_else(|| out_range("stride", &a.strides, limits.stride))
        .or_else(|| out_range("pad", &a.pads, limits.pad))
        .or_else(|| over("batch", input.first(), limits.batch_max))
        .or_else(|| over("channels", input.get(1), limits.channels_max))
        .or_else(|| over("height", input.get(2), limits.height_max))
        .or_else(|| over("width", input.get(3), limits.width_max))
}

/// Why a toolchain that compiles only quantized models refuses `node`, if it computes in float.
fn float_refusal(node: &NodeInfo) -> Option<String> {
    let dtype = node.dtype.filter(|d| d.is_float())?;
    Some(format!(
        "`{}` computes in {}, and the toolchain compiles only quantized models: quantize the model first",
        node.op_type,
        dtype.name()
    ))
}

/// Quantize/Dequantize nodes of a QDQ graph become the scales of native quantized kernels when
/// the chip supports that quantized type: they cost nothing at run time.
fn folds_qdq(node: &NodeInfo, profile: &ChipProfile) -> bool {
    matches!(node.op_type.as_str(), "QuantizeLinear" | "DequantizeLinear")
        && node.dtype.is_some_and(|d| accepts(&profile.quantization.dtypes, d))
}

/// Places every node of `model` on `profile`.
pub fn place(model: &ModelInventory, profile: &ChipProfile) -> Placement {
    let policy = profile.operators.fallback;
    let refuses_float =
        profile.quantization.float_graphs == FloatGraphs::Refused && super::conversion::is_float_graph(model);
    let mut partition_closed = false;
    let mut nodes = Vec::with_capacity(model.nodes.len());
    for (node, varies) in model.nodes.iter().zip(model.varying_nodes()) {
        // A node on constants only (a bias's int32 DequantizeLinear, shape arithmetic) is
        // computed once by the toolchain, whatever its type.
        let absorbed = !varies
            || profile.operators.absorbed.iter().any(|o| o == &node.op_type)
            || folds_qdq(node, profile);
        let refused = (refuses_float && !absorbed).then(|| float_refusal(node)).flatten();
        let problem =
            if absorbed { None } else { refused.clone().or_else(|| unsupported_reason(node, profile)) };
        let (unit, reason) = match (&problem, policy) {
            _ if !varies => (Unit::Absorbed, "constant: computed by the toolchain at conversion".to_string()),
            _ if absorbed => (Unit::Absorbed, "folded by the toolchain at conversion".to_string()),
            (Some(why), _) if refused.is_some() => (Unit::Rejected, why.clone()),
            (None, FallbackPolicy::SinglePartition) if partition_closed => {
                (Unit::Cpu, "after the first unsupported node: single-partition policy".to_string())
            }
            (None, _) => (Unit::Npu, "supported".to_string()),
            (Some(why), FallbackPolicy::Strict) => (Unit::Rejected, why.clone()),
            (Some(why), _) => (Unit::Cpu, format!("CPU fallback: {why}")),
        };
        if problem.is_some() {
            partition_closed = true;
        }
        nodes.push(NodePlacement {
            node: node.name.clone(),
            op_type: node.op_type.clone(),
            unit,
            reason,
            unsupported: problem.is_some(),
            list_partial: problem.is_some() && refused.is_none() && !profile.operators.complete,
        });
    }
    let boundaries = count_boundaries(&nodes);
    Placement { policy, nodes, boundaries }
}

fn count_boundaries(nodes: &[NodePlacement]) -> usize {
    let units: Vec<Unit> = nodes.iter().map(|n| n.unit).filter(|u| *u != Unit::Absorbed).collect();
    units.windows(2).filter(|w| (w[0] == Unit::Npu) != (w[1] == Unit::Npu)).count()
}
