//! Moving one inference's inputs to an accelerator card and its outputs back over the card's
//! host link (USB 3.0 for the Coral USB Accelerator, PCIe for M.2 cards). The emulated latency
//! is model execution on the card, as the Edge TPU's calibration point is; this transfer is the
//! rest of what an application waits for, reported beside it rather than folded in.

use serde::Serialize;

use crate::model::ModelInventory;
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
    // (element count where known, element type) of each tensor crossing the link.
    let mut bytes = |tensors: Vec<(Option<u64>, &str)>| -> u64 {
        tensors
            .into_iter()
            .map(|(elements, dtype)| match elements {
                Some(n) => n * wire_bytes(dtype, quantized),
                None => {
                    unsized_tensors += 1;
                    0
                }
            })
            .sum()
    };
    let inputs = model.inputs.iter().map(|t| (Some(elements(&t.shape)), t.dtype.as_str())).collect();
    let outputs =
        model.outputs.iter().map(|t| (t.known_shape().map(|s| elements(&s)), t.dtype.as_str())).collect();
    let (input_bytes, output_bytes) = (bytes(inputs), bytes(outputs));
    let ms = link_ms(input_bytes + output_bytes, link_gbps);
    Some(HostTransfer { input_bytes, output_bytes, ms, unsized_tensors, link_gbps })
}

/// Milliseconds `bytes` take at `gbps` GB/s.
fn link_ms(bytes: u64, gbps: f64) -> f64 {
    bytes as f64 / (gbps * 1e9) * 1e3
}

/// Elements of a tensor of a known shape (a scalar is one).
fn elements(shape: &[usize]) -> u64 {
    shape.iter().map(|&d| d as u64).product()
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
    use crate::model::OutputInfo;

    #[test]
    fn only_float_tensors_shrink_when_the_chip_runs_the_model_quantized() {
        assert_eq!(wire_bytes("float32", true), 1);
        assert_eq!(wire_bytes("float32", false), 4);
        assert_eq!(wire_bytes("float16", false), 2);
        assert_eq!(wire_bytes("int64", true), 8, "token ids keep their width");
        assert_eq!(wire_bytes("bool", true), 1);
        assert_eq!(elements(&[]), 1, "a scalar is one element");
        assert_eq!(elements(&[2, 3]), 6);
        let output = |shape: Option<Vec<Option<usize>>>| OutputInfo {
            name: "t".into(),
            shape,
            dtype: "float32".into(),
            quantization: None,
        };
        assert_eq!(
            output(Some(vec![Some(1), Some(3), None])).known_shape(),
            None,
            "an unknown dimension is not guessed"
        );
        assert_eq!(output(None).known_shape(), None);
        assert_eq!(output(Some(vec![Some(2), Some(3)])).known_shape(), Some(vec![2, 3]));
    }
}
