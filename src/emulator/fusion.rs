//! Fused layer groups, as an accelerator's compiler sees them: a convolution or matmul runs with
//! its bias, batch norm, activation and requantization as one layer, whatever nodes the exporter
//! emitted for them. RKNN, QNN, the Edge TPU compiler and TensorRT all fuse these epilogues, so
//! an unfused export (Conv → Clip → QuantizeLinear) and an onnxruntime `quantize_static` graph
//! (the Clip folded into the quantization range) are the same work on the chip. Costing each
//! ONNX node on its own made the prediction depend on how the model was exported.

use std::collections::{HashMap, HashSet};

use super::placement::{Placement, Unit};
use crate::model::ModelInventory;

/// Elementwise ops a compiler runs in the epilogue of the layer that produced their input:
/// activations (ReLU, ReLU6 = Clip, SiLU = x·Sigmoid(x), HardSwish and its decomposition, ...),
/// bias and scale arithmetic with constants, and batch norm folded into the weights.
const EPILOGUE_OPS: [&str; 16] = [
    "Relu",
    "Clip",
    "Sigmoid",
    "Tanh",
    "HardSwish",
    "HardSigmoid",
    "LeakyRelu",
    "PRelu",
    "Elu",
    "Selu",
    "Softplus",
    "BatchNormalization",
    "Mul",
    "Add",
    "Sub",
    "Div",
];

/// Ops an accelerator runs as layers of their own; epilogues fuse into them.
const LAYER_OPS: [&str; 12] = [
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "Add",
    "Concat",
    "Resize",
    "Softmax",
    "LSTM",
];

/// How a node is costed once layers are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A layer of its own on the accelerator: one per-layer overhead, its output written once.
    Layer,
    /// Runs in the epilogue of the layer at this node index: no overhead, no traffic of its own.
    FusedInto(usize),
    /// Neither (CPU nodes, absorbed Q/DQ, accelerator ops outside any layer): costed alone.
    Alone,
}

/// Each node's role. Absorbed nodes (Q/DQ pairs folded into the kernels' scales) are
/// transparent: a Clip behind Conv → QuantizeLinear → DequantizeLinear still fuses into the Conv.
/// An elementwise node fuses when every input some node produces comes from one layer's group
/// (so a residual Add of two layers' outputs stays a layer of its own).
pub fn roles(model: &ModelInventory, placement: &Placement) -> Vec<Role> {
    // Tensors that vary with the inputs; the rest (weights, biases, their dequantization, scales)
    // are constants, which any epilogue may read.
    let mut variable: HashSet<&str> = model.inputs.iter().map(|t| t.name.as_str()).collect();
    for (node, varies) in model.nodes.iter().zip(model.varying_nodes()) {
        if varies {
            variable.extend(node.outputs.iter().map(String::as_str));
        }
    }
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut group: Vec<Option<usize>> = Vec::with_capacity(model.nodes.len());
    let mut roles = Vec::with_capacity(model.nodes.len());
    for (i, (node, placed)) in model.nodes.iter().zip(&placement.nodes).enumerate() {
        let varying: Vec<Option<usize>> = node
            .inputs
            .iter()
            .filter(|t| variable.contains(t.as_str()))
            .map(|t| producer.get(t.as_str()).and_then(|&p| group[p]))
            .collect();
        let common = match varying.split_first() {
            Some((&Some(g), rest)) if rest.iter().all(|&other| other == Some(g)) => Some(g),
            _ => None,
        };
        let op = node.op_type.as_str();
        let (role, own_group) = match (placed.unit, common) {
            (Unit::Absorbed, _) => (Role::Alone, common),
            (Unit::Npu, Some(head)) if EPILOGUE_OPS.contains(&op) => (Role::FusedInto(head), Some(head)),
            (Unit::Npu, _) if LAYER_OPS.contains(&op) => (Role::Layer, Some(i)),
            _ => (Role::Alone, None),
        };
        roles.push(role);
        group.push(own_group);
        for out in &node.outputs {
            producer.insert(out.as_str(), i);
        }
    }
    roles
}
