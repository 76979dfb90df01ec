//! Moving one inference's inputs to an accelerator card and its outputs back over the card's
//! host link (USB 3.0 for the Coral USB Accelerator, PCIe for M.2 cards). The emulated latency
//! is model execution on the card, as the Edge TPU's calibration point is; this transfer is the
//! rest of what an application waits for, reported beside it rather than folded in.

use serde::Serialize;

use crate::model::{ModelInventory, TensorInfo};
use crate::profile::ChipProfile;

/// The bytes one inference moves over the host link, in and out, and the time they take at the
/// link's rate (emulated).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostTransfer {
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub ms: f64,
}

/// The transfer for `model` on `profile`, when the profile is a card (a host link and no DRAM of
/// its own). A model the chip runs quantized — a QDQ graph, or a float model its toolchain
/// quantizes (`quantized`) — crosses the link as 8-bit tensors: the runtime quantizes the input
/// and dequantizes the outputs on the host. Otherwise each tensor crosses at its own type.
pub fn host_transfer(model: &ModelInventory, profile: &ChipProfile, quantized: bool) -> Option<HostTransfer> {
    let gbps = profile.memory.host_link_gbps.filter(|_| profile.memory.dram_bandwidth_gbps.is_none())?;
    let bytes = |tensors: &[TensorInfo]| -> u64 {
        tensors.iter().map(|t| elements(model, t) * if quantized { 1 } else { element_bytes(&t.dtype) }).sum()
    };
    let (input_bytes, output_bytes) = (bytes(&model.inputs), bytes(&model.outputs));
    Some(HostTransfer {
        input_bytes,
        output_bytes,
        ms: (input_bytes + output_bytes) as f64 / (gbps * 1e9) * 1e3,
    })
}

/// Elements of a graph input or output: from its shape, or for an output whose shape inference
/// could not tell (a 0 dimension), from the activation the model computes for it.
fn elements(model: &ModelInventory, t: &TensorInfo) -> u64 {
    if !t.shape.is_empty() && t.shape.iter().all(|&d| d > 0) {
        return t.shape.iter().map(|&d| d as u64).product();
    }
    model.activations.iter().find(|a| a.name == t.name).map_or(0, |a| a.bytes / element_bytes(&t.dtype))
}

/// Bytes per element of an ONNX tensor type, by the name the inventory gives it.
fn element_bytes(dtype: &str) -> u64 {
    match dtype {
        "float64" | "int64" | "uint64" | "double" => 8,
        "float16" | "bfloat16" | "int16" | "uint16" => 2,
        "int8" | "uint8" | "bool" => 1,
        _ => 4,
    }
}
