//! Inventory tests on models built here: operators, parameters, MACs, activations, shapes and
//! quantization style.

use std::path::Path;

use tract_onnx::pb;

use super::writer::{encode, Attr, Graph};
use super::*;

/// input [1,3,16,16] → Conv 3→8 3x3 pad 1 → Relu → GlobalAveragePool → Flatten → Gemm 8→5.
pub(crate) fn small_cnn() -> pb::ModelProto {
    let mut g = Graph::default();
    let x = g.input("input", &[1, 3, 16, 16]);
    let w = g.init_f32("w", &[8, 3, 3, 3], &[0.1; 8 * 27]);
    let b = g.init_f32("b", &[8], &[0.0; 8]);
    let c = g.node(
        "Conv",
        &[&x, &w, &b],
        vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))],
    );
    let r = g.node("Relu", &[&c], vec![]);
    let p = g.node("GlobalAveragePool", &[&r], vec![]);
    let f = g.node("Flatten", &[&p], vec![("axis", Attr::Int(1))]);
    let fw = g.init_f32("fw", &[5, 8], &[0.5; 40]);
    let fb = g.init_f32("fb", &[5], &[0.0; 5]);
    g.node_named("Gemm", &[&f, &fw, &fb], "logits", vec![("transB", Attr::Int(1))]);
    g.output("logits", Some(&[1, 5]));
    g.into_model("test")
}

fn write_model(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

#[test]
fn inventory_counts_nodes_parameters_and_macs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "m.onnx", &encode(&small_cnn()));
    let inv = ModelInventory::load(&path).unwrap();
    assert_eq!(inv.node_count, 5);
    assert_eq!(inv.parameter_count, 8 * 27 + 8 + 40 + 5);
    assert_eq!(inv.weight_bytes, 4 * (8 * 27 + 8 + 40 + 5));
    assert_eq!(inv.op_histogram["Conv"], 1);
    let conv = &inv.nodes[0];
    assert_eq!(conv.output_shapes[0], Some(vec![1, 8, 16, 16]));
    assert_eq!(conv.macs, Some(8 * 16 * 16 * 27));
    assert_eq!(inv.total_macs, Some(8 * 16 * 16 * 27 + 40));
    assert_eq!(inv.quantization, Quantization::None);
    assert!(inv.findings.is_empty());
    assert_eq!(inv.inputs[0].shape, vec![1, 3, 16, 16]);
}

#[test]
fn peak_activation_memory_counts_tensors_alive_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "m.onnx", &encode(&small_cnn()));
    let inv = ModelInventory::load(&path).unwrap();
    // Conv output (8x16x16 f32) and Relu output are alive at once while Relu runs.
    assert_eq!(inv.peak_activation_bytes(), 2 * 8 * 16 * 16 * 4);
    // Per node: the input (3x16x16) alive at the start and while the Conv runs beside its
    // output; then the Conv's and the Relu's outputs together.
    let (at_start, per_node) = inv.activation_liveness();
    let (input, conv_out) = (3 * 16 * 16 * 4, 8 * 16 * 16 * 4);
    assert_eq!(at_start, input);
    assert_eq!(&per_node[..2], &[input + conv_out, 2 * conv_out]);
    assert_eq!(per_node.len(), inv.nodes.len());
}

#[test]
fn truncated_and_empty_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = encode(&small_cnn());
    for (name, data) in [
        ("empty.onnx", &bytes[..0]),
        ("cut.onnx", &bytes[..bytes.len() / 2]),
        ("cut2.onnx", &bytes[..bytes.len() - 7]),
    ] {
        let path = write_model(dir.path(), name, data);
        let err = ModelInventory::load(&path).unwrap_err().to_string();
        assert!(err.contains(name), "error should name the file: {err}");
        assert!(err.contains("empty") || err.contains("truncated"), "{err}");
    }
    let err = ModelInventory::load(&dir.path().join("missing.onnx")).unwrap_err().to_string();
    assert!(err.contains("missing.onnx"), "{err}");
}

#[test]
fn unknown_operators_are_findings_not_crashes() {
    let mut model = small_cnn();
    let node = &mut model.graph.as_mut().unwrap().node[1];
    node.op_type = "FancyActivation".into();
    node.domain = "com.example".into();
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "m.onnx", &encode(&model));
    let inv = ModelInventory::load(&path).unwrap();
    assert!(inv.findings.iter().any(|f| f.op_type == "FancyActivation"), "{:?}", inv.findings);
    assert_eq!(inv.op_histogram["FancyActivation"], 1);
}

/// Codes are QuantizeLinear's: round half to even, add the zero point, clamp to the type.
#[test]
fn input_codes_round_half_to_even_and_clamp_to_the_type() {
    let q = |scale: f32, zero_point: i32| InputQuantization {
        scale,
        zero_point,
        source: QuantizationSource::Model,
    };
    let u8_range = InputQuantization::code_range("uint8").unwrap();
    let i8_range = InputQuantization::code_range("int8").unwrap();
    assert_eq!(q(0.5, 0).code(0.25, u8_range), 0.0, "0.5 rounds to even 0");
    assert_eq!(q(0.5, 0).code(0.75, u8_range), 2.0, "1.5 rounds to even 2");
    assert_eq!(q(1.0 / 255.0, 0).code(2.0, u8_range), 255.0, "clamped to uint8");
    assert_eq!(q(1.0 / 255.0, -128).code(0.0, i8_range), -128.0);
    assert_eq!(q(1.0 / 255.0, -128).code(1.0, i8_range), 127.0);
    assert_eq!(InputQuantization::code_range("int32"), None);
    assert_eq!("0.003921569:0".parse::<InputQuantization>().map(|q| q.zero_point), Ok(0));
    assert!("0:3".parse::<InputQuantization>().unwrap_err().contains("scale must be a positive"));
    assert!("1:300".parse::<InputQuantization>().unwrap_err().contains("zero_point must lie in -128..=255"));
    assert!("1".parse::<InputQuantization>().unwrap_err().contains("SCALE:ZERO_POINT"));
}
