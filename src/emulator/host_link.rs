//! Moving one inference's inputs to an accelerator card and its outputs back over the card's
//! host link (USB 3.0 for the Coral USB Accelerator, PCIe for M.2 cards). The emulated latency
//! is model execution on the card, as the Edge TPU's calibration point is; this transfer is the
//! rest of what an application waits for, reported beside it rather than folded in.

use serde::Serialize;

use crate::model::{ModelInventory, TensorInfo};
use crate::profile::ChipProfile;

/// The bytes one inference moves over the host link, in and out, and the time they take at the
/// link's nominal rate (emulated; a lower bound, as the rate is an upper one).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HostTransfer {
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub ms: f64,
    /// Graph inputs and outputs whose size shape inference could not tell: not counted, so the
    /// figure is lower still.
    #[serde(skip_serializing_if = "is_zero")]
    pub unsized_tensors: usize,
    #[serde(skip)]
    link_gbps: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl HostTransfer {
    /// Frames per second the link can carry when `streamed_ms` of each frame's other traffic
    /// (weights streamed or reloaded, spills) crosses it too. USB 3.0 and PCIe carry both
    /// directions at once, so the busier direction sets the rate: inbound the input and the
    /// streamed bytes, outbound the outputs.
    pub fn link_fps(&self, streamed_ms: f64) -> f64 {
        let ms = |bytes: u64| link_ms(bytes, self.link_gbps);
        1e3 / (ms(self.input_bytes) + streamed_ms).max(ms(self.output_bytes))
    }
}

/// The transfer for `model` on `profile`, when the profile is a card (a host link and no DRAM of
/// its own). On a chip that runs the model quantized — a QDQ graph, or a float model its
/// toolchain quantizes (`quantized`) — float tensors cross as 8-bit ones: the runtime quantizes
/// the input and dequantizes the outputs on the host. Integer and boolean tensors (token ids,
/// masks) and every tensor of a model run as it is cross at their own width.
pub fn host_transfer(model: &ModelInventory, profile: &ChipProfile, quantized: bool) -> Option<HostTransfer> {
    let link_gbps = profile.memory.card_link_gbps()?;
    let mut unsized_tensors = 0;
    let mut bytes = |tensors: &[TensorInfo]| -> u64 {
        tensors
            .iter()
            .map(|t| match elements(t) {
                Some(n) => n * wire_bytes(&t.dtype, quantized),
                None => {
                    unsized_tensors += 1;
                    0
                }
            })
            .sum()
    };
    let (input_bytes, output_bytes) = (bytes(&model.inputs), bytes(&model.outputs));
    let ms = link_ms(input_bytes + output_bytes, link_gbps);
    Some(HostTransfer { input_bytes, output_bytes, ms, unsized_tensors, link_gbps })
}

/// Milliseconds `bytes` take at `gbps` GB/s.
fn link_ms(bytes: u64, gbps: f64) -> f64 {
    bytes as f64 / (gbps * 1e9) * 1e3
}

/// Elements of a graph input or output from its shape (a scalar is one); `None` where shape
/// inference could not tell a dimension (0).
fn elements(t: &TensorInfo) -> Option<u64> {
    t.shape.iter().all(|&d| d > 0).then(|| t.shape.iter().map(|&d| d as u64).product())
}

/// Bytes per element on the link of an ONNX tensor type, by the name the inventory gives it:
/// a float tensor crosses as 8 bits when the chip runs the model quantized.
fn wire_bytes(dtype: &str, quantized: bool) -> u64 {
    match dtype {
        "float32" | "float16" | "bfloat16" | "float64" | "double" if quantized => 1,
        "float64" | "int64" | "uint64" | "double" => 8,
        "float16" | "bfloat16" | "int16" | "uint16" => 2,
        "int8" | "uint8" | "bool" => 1,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_float_tensors_shrink_when_the_chip_runs_the_model_quantized() {
        assert_eq!(wire_bytes("float32", true), 1);
        assert_eq!(wire_bytes("float32", false), 4);
        assert_eq!(wire_bytes("float16", false), 2);
        assert_eq!(wire_bytes("int64", true), 8, "token ids keep their width");
        assert_eq!(wire_bytes("bool", true), 1);
        let t =
            |shape: &[usize]| TensorInfo { name: "t".into(), shape: shape.to_vec(), dtype: "float32".into() };
        assert_eq!(elements(&t(&[])), Some(1), "a scalar is one element");
        assert_eq!(elements(&t(&[1, 3, 0])), None, "an unknown dimension is not guessed");
        assert_eq!(elements(&t(&[2, 3])), Some(6));
    }
}
