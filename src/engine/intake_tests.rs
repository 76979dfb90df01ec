//! Models of real-world shapes, built by generators here: symbolic input dimensions, external
//! weights, If/Loop control flow, a PaddlePaddle opset-11 export, fp16 weights, an
//! onnxruntime-style QDQ graph and a `com.microsoft` op. Each must inventory with the right
//! figures or stop with a clear finding or error, never a panic or a silent guess.

use std::path::{Path, PathBuf};

use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

use super::{Engine, TractEngine};
use crate::model::tests::small_cnn;
use crate::model::writer::{encode, externalize, raw_tensor, value_info, value_info_dims, Attr, Graph};
use crate::model::*;
use crate::profile::DType;
use crate::vocab::hash::sha256_of_parts;

fn write(dir: &Path, name: &str, model: &pb::ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, encode(model)).unwrap();
    path
}

fn shapes(specs: &[&str]) -> InputShapes {
    InputShapes::new(specs.iter().map(|s| s.parse().unwrap()).collect())
}

/// Output size of a convolution along one axis, by the ONNX formula.
fn conv_out(size: usize, kernel: usize, stride: usize, pad: usize) -> usize {
    (size + 2 * pad - kernel) / stride + 1
}

/// images [N,3,H,W] → Conv 3→8 3x3 stride 2 pad 1 → Relu → Conv 8→16 3x3 pad 1, as a detector
/// backbone exported with dynamic batch and resolution.
fn dynamic_hw_conv() -> pb::ModelProto {
    let mut g = Graph::default();
    g.inputs.push(value_info_dims("images", DataType::Float, &["N", "3", "H", "W"]));
    let w1 = g.init_f32("w", &[8, 3, 3, 3], &[0.1; 8 * 27]);
    let c1 = g.node(
        "Conv",
        &["images", &w1],
        vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ],
    );
    let r = g.node("Relu", &[&c1], vec![]);
    let w2 = g.init_f32("w", &[16, 8, 3, 3], &[0.1; 16 * 72]);
    g.node_named(
        "Conv",
        &[&r, &w2],
        "features",
        vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("pads", Attr::Ints(vec![1, 1, 1, 1]))],
    );
    g.outputs.push(value_info_dims("features", DataType::Float, &["N", "16", "h", "w"]));
    g.into_model("pytorch-like")
}

#[test]
fn a_symbolic_dimension_nothing_fixes_is_an_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "detector.onnx", &dynamic_hw_conv());
    let err = ModelInventory::load(&path).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert_eq!(
        err.to_string(),
        format!(
            "{}: input `images` has symbolic dimension `N` at axis 0 (Nx3xHxW) and nothing fixes it; give its size with --input-shape images:Nx3xHxW (replacing the names by sizes)",
            path.display()
        )
    );
}

#[test]
fn the_artifact_of_a_dynamic_model_needs_no_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "detector.onnx", &dynamic_hw_conv());
    let artifact = crate::model::artifact(&path).unwrap();
    assert_eq!(artifact.sha256, crate::vocab::hash::sha256_hex(&std::fs::read(&path).unwrap()));
}

#[test]
fn fixed_input_shapes_propagate_to_macs_and_activations() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "detector.onnx", &dynamic_hw_conv());
    let (h, w) = (64, 48);
    let inv = ModelInventory::load_with(&path, &shapes(&["images:1x3x64x48"])).unwrap();
    // Hand count: stride-2 conv halves H and W; each output element costs Cin*3*3 MACs.
    let (h1, w1) = (conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1));
    let (h2, w2) = (conv_out(h1, 3, 1, 1), conv_out(w1, 3, 1, 1));
    assert_eq!((h1, w1, h2, w2), (32, 24, 32, 24));
    let conv1 = 8 * h1 * w1 * (3 * 9);
    let conv2 = 16 * h2 * w2 * (8 * 9);
    assert_eq!(inv.nodes[0].macs, Some(conv1 as u64));
    assert_eq!(inv.nodes[2].macs, Some(conv2 as u64));
    assert_eq!(inv.total_macs, Some((conv1 + conv2) as u64));
    assert_eq!(inv.inputs[0].shape, vec![1, 3, h, w]);
    assert_eq!(inv.outputs[0].known_shape(), Some(vec![1, 16, h2, w2]));
    let features = inv.activations.iter().find(|a| a.name == "features").unwrap();
    assert_eq!(features.bytes, (16 * h2 * w2 * 4) as u64);
    assert!(inv.findings.is_empty(), "{:?}", inv.findings);
    // A bigger resolution costs proportionally more: the figures are not a fixed guess.
    let big = ModelInventory::load_with(&path, &shapes(&["images:1x3x128x96"])).unwrap();
    assert_eq!(big.total_macs, inv.total_macs.map(|m| 4 * m));
}

#[test]
fn the_engine_runs_at_the_fixed_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "detector.onnx", &dynamic_hw_conv());
    let inv = ModelInventory::load_with(&path, &shapes(&["images:2x3x16x8"])).unwrap();
    let model = TractEngine.load(&path, &inv.inputs).unwrap();
    let out = model.run(&[ndarray::ArrayD::ones(vec![2, 3, 16, 8])]).unwrap();
    assert_eq!(out[0].shape(), &[2, 16, 8, 4]);
}

/// `small_cnn` saved as an exporter does above 2 GB: the model file and `weights.bin`.
fn external_cnn(dir: &Path) -> (PathBuf, Vec<u8>) {
    let mut model = small_cnn();
    let side = externalize(&mut model, "weights.bin");
    std::fs::write(dir.join("weights.bin"), &side).unwrap();
    (write(dir, "cnn.onnx", &model), side)
}

#[test]
fn external_weights_count_in_figures_size_and_digest() {
    let dir = tempfile::tempdir().unwrap();
    let inline = ModelInventory::load(&write(dir.path(), "inline.onnx", &small_cnn())).unwrap();
    let (path, side) = external_cnn(dir.path());
    let inv = ModelInventory::load(&path).unwrap();
    assert_eq!(inv.parameter_count, inline.parameter_count);
    assert_eq!(inv.weight_bytes, inline.weight_bytes);
    assert_eq!(inv.weight_bytes, side.len() as u64);
    assert_eq!(inv.total_macs, inline.total_macs);
    let model_bytes = std::fs::read(&path).unwrap();
    let names: Vec<&str> = inv.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["cnn.onnx", "weights.bin"]);
    assert_eq!(inv.files[1].size_bytes, side.len() as u64);
    assert_eq!(inv.file_size_bytes, (model_bytes.len() + side.len()) as u64);
    assert_eq!(inv.sha256, sha256_of_parts([("cnn.onnx", &model_bytes[..]), ("weights.bin", &side[..])]));
    // The artifact alone (no shapes needed) has the same files and digest.
    let artifact = crate::model::artifact(&path).unwrap();
    assert_eq!((artifact.files, artifact.sha256), (inv.files.clone(), inv.sha256.clone()));
    // Without external data the digest stays the plain file digest.
    assert_eq!(inline.sha256, crate::vocab::hash::sha256_hex(&encode(&small_cnn())));
    assert_eq!(inline.files.len(), 1);
}

#[test]
fn tampered_external_weights_change_the_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut side) = external_cnn(dir.path());
    let before = ModelInventory::load(&path).unwrap().sha256;
    side[0] ^= 0x01;
    std::fs::write(dir.path().join("weights.bin"), &side).unwrap();
    assert_ne!(ModelInventory::load(&path).unwrap().sha256, before);
}

#[test]
fn the_engine_runs_external_weights_like_inline_ones() {
    let dir = tempfile::tempdir().unwrap();
    let inline_path = write(dir.path(), "inline.onnx", &small_cnn());
    let (path, _) = external_cnn(dir.path());
    let x =
        ndarray::ArrayD::from_shape_fn(vec![1, 3, 16, 16], |i| (i[1] * 7 + i[2] * 3 + i[3]) as f32 / 50.0);
    let run = |p: &Path| {
        let inv = ModelInventory::load(p).unwrap();
        TractEngine.load(p, &inv.inputs).unwrap().run(std::slice::from_ref(&x)).unwrap()
    };
    let (a, b) = (run(&inline_path), run(&path));
    assert_eq!(a, b);
    assert!(a[0].iter().any(|v| *v != 0.0), "weights were read, not zeros: {a:?}");
}

#[cfg(unix)]
type Tamper = fn(&mut pb::ModelProto, &Path);

#[cfg(unix)]
fn entry(m: &mut pb::ModelProto, tensor: &str, key: &str, value: &str) {
    let t = m.graph.as_mut().unwrap().initializer.iter_mut().find(|t| t.name == tensor).unwrap();
    t.external_data.retain(|e| e.key != key);
    if !value.is_empty() {
        t.external_data.push(pb::StringStringEntryProto { key: key.into(), value: value.into() });
    }
}

#[cfg(unix)]
fn symlink_out(m: &mut pb::ModelProto, dir: &Path) {
    let outside = dir.parent().unwrap().join("secret.bin");
    std::fs::write(&outside, vec![0u8; 4096]).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("link.bin")).unwrap();
    entry(m, "w_1", "location", "link.bin");
    entry(m, "w_1", "offset", "0");
}

#[cfg(unix)]
const REFUSED: &[(&str, Tamper, &str)] = &[
    (
        "absolute",
        |m, _| entry(m, "w_1", "location", "/etc/passwd"),
        "initializer `w_1`: external data location `/etc/passwd` is an absolute path",
    ),
    (
        "escape",
        |m, _| entry(m, "w_1", "location", "../../etc/passwd"),
        "initializer `w_1`: external data location `../../etc/passwd` climbs out of the model's folder",
    ),
    (
        "symlink",
        symlink_out,
        "initializer `w_1`: external data file `link.bin` resolves outside the model's folder",
    ),
    (
        "offset",
        |m, _| entry(m, "fb_8", "offset", "1000000"),
        "initializer `fb_8`: external data offset 1000000 is beyond the end of `weights.bin` (1076 bytes)",
    ),
    (
        "length",
        |m, _| entry(m, "fb_8", "length", "120"),
        "initializer `fb_8`: external data range 1056+120 is beyond the end of `weights.bin` (1076 bytes)",
    ),
    (
        "declared_size",
        |m, _| m.graph.as_mut().unwrap().initializer[0].dims[0] = 16,
        "initializer `w_1`: its dims and type need 1728 bytes but external data gives 864",
    ),
    (
        "missing_file",
        |m, _| entry(m, "b_2", "location", "nope.bin"),
        "initializer `b_2`: external data file `nope.bin` cannot be read",
    ),
    (
        "no_location",
        |m, _| entry(m, "b_2", "location", ""),
        "initializer `b_2`: external data has no `location` entry",
    ),
    (
        "bad_offset",
        |m, _| entry(m, "b_2", "offset", "-4"),
        "initializer `b_2`: external data offset `-4` is not a byte count",
    ),
];

#[cfg(unix)]
#[test]
fn external_data_out_of_bounds_is_refused_naming_model_and_tensor() {
    for (name, tamper, want) in REFUSED {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("model");
        std::fs::create_dir(&dir).unwrap();
        let mut model = small_cnn();
        std::fs::write(dir.join("weights.bin"), externalize(&mut model, "weights.bin")).unwrap();
        tamper(&mut model, &dir);
        let path = write(&dir, &format!("{name}.onnx"), &model);
        let err = ModelInventory::load(&path).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{name}");
        let err = err.to_string();
        assert!(err.starts_with(&format!("{}: ", path.display())), "{name}: {err}");
        assert!(err.contains(want), "{name}: expected `{want}` in\n{err}");
    }
}

/// x [1,4] and cond → If (then Relu(x), else Neg(x), both reading x from the outer scope) →
/// Loop 3 times doubling it.
fn if_and_loop() -> pb::ModelProto {
    let mut then_g = Graph::default();
    then_g.node_named("Relu", &["x"], "t", vec![]);
    then_g.output("t", Some(&[1, 4]));
    let mut else_g = Graph::default();
    else_g.node_named("Neg", &["x"], "e", vec![]);
    else_g.output("e", Some(&[1, 4]));
    let mut body = Graph::default();
    body.inputs.push(value_info("i", DataType::Int64, Some(&[])));
    body.inputs.push(value_info("c", DataType::Bool, Some(&[])));
    body.inputs.push(value_info("v", DataType::Float, Some(&[1, 4])));
    body.node_named("Identity", &["c"], "c_out", vec![]);
    body.node_named("Add", &["v", "v"], "v_out", vec![]);
    body.outputs.push(value_info("c_out", DataType::Bool, Some(&[])));
    body.output("v_out", Some(&[1, 4]));
    let mut g = Graph::default();
    g.input("x", &[1, 4]);
    g.inputs.push(value_info("cond", DataType::Bool, Some(&[])));
    g.initializers.push(raw_tensor("trips", &[], DataType::Int64, 3i64.to_le_bytes().to_vec()));
    g.initializers.push(raw_tensor("keep", &[], DataType::Bool, vec![1]));
    g.node_named(
        "If",
        &["cond"],
        "chosen",
        vec![
            ("then_branch", Attr::Graph(then_g.into_graph("then"))),
            ("else_branch", Attr::Graph(else_g.into_graph("else"))),
        ],
    );
    g.node_named(
        "Loop",
        &["trips", "keep", "chosen"],
        "y",
        vec![("body", Attr::Graph(body.into_graph("body")))],
    );
    g.output("y", Some(&[1, 4]));
    g.into_model("tf2onnx-like")
}

#[test]
fn control_flow_subgraphs_inventory_without_guessing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "flow.onnx", &if_and_loop());
    let inv = ModelInventory::load(&path).unwrap();
    assert_eq!(inv.node_count, 2);
    assert_eq!((inv.op_histogram["If"], inv.op_histogram["Loop"]), (1, 1));
    assert_eq!(inv.parameter_count, 2);
    // Their work is in subgraphs edgecert does not count: unknown, never 0.
    assert_eq!(inv.total_macs, None);
    assert_eq!(
        inv.unknown_macs_at().map(|n| n.op_type.as_str()),
        Some("Loop"),
        "its output shape is unknown"
    );
    let names: Vec<&str> = inv.inputs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["x", "cond"]);
    assert_eq!(inv.inputs[1].shape, Vec::<usize>::new());
    // tract runs If (its output shape is inferred through the branches) but not Loop: that is a
    // finding, and the Loop's output shape stays unknown rather than guessed.
    assert_eq!(inv.nodes[0].output_shapes[0], Some(vec![1, 4]));
    let messages: Vec<&str> = inv.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        ["operator `Loop` is not implemented by the tract engine: the model cannot be replayed"]
    );
    assert_eq!(inv.nodes[1].output_shapes[0], None);
    // Their work is in the subgraphs, which are not counted: unknown, not zero.
    assert_eq!((inv.nodes[0].macs, inv.nodes[1].macs), (None, None));
}

/// `small_cnn` as paddle2onnx exports it: opset 11, a dynamic batch named
/// `p2o.DynamicDimension.0`.
fn paddle_opset11() -> pb::ModelProto {
    let mut m = small_cnn();
    m.opset_import[0].version = 11;
    m.ir_version = 6;
    m.producer_name = "PaddlePaddle".into();
    m.producer_version = "2.6.0".into();
    let g = m.graph.as_mut().unwrap();
    g.input[0] = value_info_dims("input", DataType::Float, &["p2o.DynamicDimension.0", "3", "16", "16"]);
    m
}

#[test]
fn a_paddle_opset_11_export_inventories_once_its_batch_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "paddle.onnx", &paddle_opset11());
    let err = ModelInventory::load(&path).unwrap_err().to_string();
    assert!(err.contains("symbolic dimension `p2o.DynamicDimension.0` at axis 0"), "{err}");
    assert!(err.contains("--input-shape input:p2o.DynamicDimension.0x3x16x16"), "{err}");
    let inv = ModelInventory::load_with(&path, &shapes(&["input:1x3x16x16"])).unwrap();
    assert_eq!(inv.opset, Some(11));
    assert_eq!(inv.producer, "PaddlePaddle 2.6.0");
    assert_eq!(inv.total_macs, Some(8 * 16 * 16 * 27 + 40));
    assert!(inv.findings.is_empty(), "{:?}", inv.findings);
}

/// Intermediate shapes as exporters declare them: an expression over the input's symbols (what
/// onnxruntime's symbolic shape inference writes into Paddle2ONNX models) and a stale concrete
/// shape. Neither may change a figure; one finding names both.
#[test]
fn declared_intermediate_shapes_are_hints_that_never_block_inference() {
    let dir = tempfile::tempdir().unwrap();
    let clean = dynamic_hw_conv();
    let mut hinted = clean.clone();
    let g = hinted.graph.as_mut().unwrap();
    let (conv, relu) = (g.node[0].output[0].clone(), g.node[1].output[0].clone());
    g.value_info.push(value_info_dims(
        &conv,
        DataType::Float,
        &["N", "8", "floor(H/2 - 1/2) + 1", "floor(W/2 - 1/2) + 1"],
    ));
    g.value_info.push(value_info(&relu, DataType::Float, Some(&[1, 8, 5, 5])));
    let at = shapes(&["images:1x3x32x32"]);
    let expected = ModelInventory::load_with(&write(dir.path(), "clean.onnx", &clean), &at).unwrap();
    let inv = ModelInventory::load_with(&write(dir.path(), "hinted.onnx", &hinted), &at).unwrap();
    assert_eq!(inv.total_macs, expected.total_macs);
    assert!(inv.total_macs.is_some_and(|m| m > 0));
    assert_eq!(inv.outputs[0].known_shape(), Some(vec![1, 16, 16, 16]));
    assert_eq!(inv.nodes[1].output_shapes[0], Some(vec![1, 8, 16, 16]));
    let messages: Vec<&str> = inv.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        [format!(
            "the file declares shapes for 2 intermediate tensors; every shape here is inferred from the graph, and these declarations were ignored: 1 written as expressions (`{conv}`: `floor(H/2 - 1/2) + 1`), 1 contradicting the graph (`{relu}`: declared [1, 8, 5, 5], computed [1, 8, 16, 16])"
        )]
    );
    assert!(expected.findings.is_empty(), "{:?}", expected.findings);
}

/// Conv 3→8 with fp16 input and weights, as `onnxconverter_common.float16` writes it.
fn fp16_conv() -> pb::ModelProto {
    let mut g = Graph::default();
    g.inputs.push(value_info("x", DataType::Float16, Some(&[1, 3, 8, 8])));
    let one = tract_onnx::prelude::f16::from_f32(0.1).to_le_bytes();
    g.initializers.push(raw_tensor("w", &[8, 3, 3, 3], DataType::Float16, one.repeat(8 * 27)));
    g.node_named("Conv", &["x", "w"], "y", vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    g.outputs.push(value_info("y", DataType::Float16, Some(&[1, 8, 8, 8])));
    g.into_model("fp16-converter")
}

#[test]
fn fp16_weights_count_two_bytes_and_compute_in_fp16() {
    let dir = tempfile::tempdir().unwrap();
    let inv = ModelInventory::load(&write(dir.path(), "half.onnx", &fp16_conv())).unwrap();
    assert_eq!(inv.weight_bytes_by_dtype["float16"], 2 * 8 * 27);
    assert_eq!(inv.parameter_count, 8 * 27);
    assert_eq!(inv.nodes[0].dtype, Some(DType::Fp16));
    assert_eq!(inv.nodes[0].macs, Some(8 * 8 * 8 * 27));
    assert_eq!(inv.activations[0].bytes, 8 * 8 * 8 * 2);
}

#[test]
fn the_engine_runs_an_fp16_export_fed_f32_samples() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "half.onnx", &fp16_conv());
    let inv = ModelInventory::load(&path).unwrap();
    let out = TractEngine
        .load(&path, &inv.inputs)
        .unwrap()
        .run(&[ndarray::ArrayD::ones(vec![1, 3, 8, 8])])
        .unwrap();
    assert_eq!(out[0].shape(), &[1, 8, 8, 8]);
    // An interior output sees all 27 taps: 27 × 0.1 in fp16 arithmetic.
    assert!((out[0][[0, 0, 4, 4]] - 2.7).abs() < 0.01, "{}", out[0][[0, 0, 4, 4]]);
}

/// onnxruntime's `quantize_static` QDQ layout: x → Q → DQ → Conv(DQ(int8 w)) → Q → DQ → y.
fn ort_qdq() -> pb::ModelProto {
    let mut g = Graph::default();
    let x = g.input("x", &[1, 3, 8, 8]);
    let scale = g.init_f32("scale", &[], &[0.02]);
    g.initializers.push(raw_tensor("zp_u8", &[], DataType::Uint8, vec![128]));
    g.initializers.push(raw_tensor("w_q", &[8, 3, 3, 3], DataType::Int8, vec![3; 8 * 27]));
    g.initializers.push(raw_tensor("w_zp", &[], DataType::Int8, vec![0]));
    let q = g.node("QuantizeLinear", &[&x, &scale, "zp_u8"], vec![]);
    let dq = g.node("DequantizeLinear", &[&q, &scale, "zp_u8"], vec![]);
    let w = g.node("DequantizeLinear", &["w_q", &scale, "w_zp"], vec![]);
    let c = g.node("Conv", &[&dq, &w], vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    let q2 = g.node("QuantizeLinear", &[&c, &scale, "zp_u8"], vec![]);
    g.node_named("DequantizeLinear", &[&q2, &scale, "zp_u8"], "y", vec![]);
    g.output("y", Some(&[1, 8, 8, 8]));
    g.into_model("onnx.quantize")
}

#[test]
fn an_onnxruntime_qdq_graph_computes_in_its_quantized_type() {
    let dir = tempfile::tempdir().unwrap();
    let inv = ModelInventory::load(&write(dir.path(), "qdq.onnx", &ort_qdq())).unwrap();
    assert_eq!(inv.quantization, Quantization::Qdq);
    assert_eq!(inv.weight_bytes_by_dtype["int8"], 8 * 27 + 1);
    let conv = inv.nodes.iter().find(|n| n.op_type == "Conv").unwrap();
    assert_eq!(conv.dtype, Some(DType::Uint8));
    assert_eq!(conv.macs, Some(8 * 8 * 8 * 27));
    assert!(inv.findings.is_empty(), "{:?}", inv.findings);
}

/// `small_cnn` with its Relu replaced by the `com.microsoft` op `op_type`.
fn with_contrib_op(op_type: &str) -> pb::ModelProto {
    let mut m = small_cnn();
    m.opset_import.push(pb::OperatorSetIdProto { domain: "com.microsoft".into(), version: 1 });
    let relu = &mut m.graph.as_mut().unwrap().node[1];
    relu.op_type = op_type.into();
    relu.domain = "com.microsoft".into();
    m
}

#[test]
fn a_com_microsoft_op_tract_lacks_is_a_finding_and_the_rest_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let inv = ModelInventory::load(&write(dir.path(), "ort.onnx", &with_contrib_op("Inverse"))).unwrap();
    let f = inv.findings.iter().find(|f| f.op_type == "Inverse").expect("a finding for Inverse");
    assert_eq!(
        f.message,
        "operator `Inverse` (domain com.microsoft) is not implemented by the tract engine: the model cannot be replayed"
    );
    // The Conv before the unknown op still has its figures; the total is unknown from it on.
    assert_eq!(inv.nodes[0].macs, Some(8 * 16 * 16 * 27));
    assert_eq!(inv.total_macs, None);
    assert_eq!(inv.unknown_macs_at().map(|n| n.op_type.as_str()), Some("Inverse"));
    // A contrib op tract implements is no finding.
    let gelu = ModelInventory::load(&write(dir.path(), "gelu.onnx", &with_contrib_op("FastGelu"))).unwrap();
    assert!(gelu.findings.is_empty(), "{:?}", gelu.findings);
}

/// onnxruntime where it is installed (`ORT_DYLIB_PATH` or a wheel); `None` prints why the test
/// is skipped.
fn onnxruntime() -> Option<super::OnnxruntimeEngine> {
    super::OnnxruntimeEngine::load_runtime()
        .map_err(|why| eprintln!("skipped: onnxruntime is not available here: {why}"))
        .ok()
}

/// Runs `path` on both engines with input `x`.
fn on_both(ort: &dyn Engine, path: &Path, x: &ndarray::ArrayD<f32>) -> [Vec<ndarray::ArrayD<f32>>; 2] {
    let inv = ModelInventory::load(path).unwrap();
    let run = |e: &dyn Engine| e.load(path, &inv.inputs).unwrap().run(std::slice::from_ref(x)).unwrap();
    [run(&TractEngine), run(ort)]
}

fn max_abs_diff(a: &ndarray::ArrayD<f32>, b: &ndarray::ArrayD<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn onnxruntime_runs_fp16_qdq_external_and_dynamic_models_as_tract_does() {
    let Some(ort) = onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    let ramp = |shape: Vec<usize>| {
        ndarray::ArrayD::from_shape_fn(shape, |i| {
            (ndarray::Dimension::slice(&i).iter().sum::<usize>() % 7) as f32 / 7.0
        })
    };
    // fp16: fed f32 samples, computed in fp16 by both.
    let half = write(dir.path(), "half.onnx", &fp16_conv());
    let [t, o] = on_both(&ort, &half, &ndarray::ArrayD::ones(vec![1, 3, 8, 8]));
    assert!((o[0][[0, 0, 4, 4]] - 2.7).abs() < 0.01, "{}", o[0][[0, 0, 4, 4]]);
    assert!(max_abs_diff(&t[0], &o[0]) < 0.01);
    // QDQ: onnxruntime runs integer kernels; at most one quantisation step (0.02) apart.
    let qdq = write(dir.path(), "qdq.onnx", &ort_qdq());
    let [t, o] = on_both(&ort, &qdq, &ramp(vec![1, 3, 8, 8]));
    assert!(max_abs_diff(&t[0], &o[0]) <= 0.02 + 1e-6, "{}", max_abs_diff(&t[0], &o[0]));
    assert!(o[0].iter().any(|v| *v != 0.0));
    // External weights resolve beside the model.
    let (external, _) = external_cnn(dir.path());
    let [t, o] = on_both(&ort, &external, &ramp(vec![1, 3, 16, 16]));
    assert!(max_abs_diff(&t[0], &o[0]) < 1e-4, "{t:?} vs {o:?}");
    assert!(o[0].iter().any(|v| *v != 0.0), "weights were read, not zeros");
    // Symbolic H and W run at the sample's shape.
    let path = write(dir.path(), "detector.onnx", &dynamic_hw_conv());
    let inv = ModelInventory::load_with(&path, &shapes(&["images:2x3x16x8"])).unwrap();
    let out = ort.load(&path, &inv.inputs).unwrap().run(&[ramp(vec![2, 3, 16, 8])]).unwrap();
    assert_eq!(out[0].shape(), &[2, 16, 8, 4]);
}

#[test]
fn onnxruntime_runs_com_microsoft_ops_including_one_tract_lacks() {
    let Some(ort) = onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    // FastGelu: both engines implement it, and agree.
    let gelu = write(dir.path(), "gelu.onnx", &with_contrib_op("FastGelu"));
    let x = ndarray::ArrayD::from_shape_fn(vec![1, 3, 16, 16], |i| i[2] as f32 / 8.0 - 1.0);
    let [t, o] = on_both(&ort, &gelu, &x);
    assert!(max_abs_diff(&t[0], &o[0]) < 1e-3, "{t:?} vs {o:?}");
    // Inverse: onnxruntime only. inv(2I) = I/2.
    let mut g = Graph::default();
    g.input("m", &[1, 4, 4]);
    g.node_named("Inverse", &["m"], "inv", vec![]);
    g.output("inv", Some(&[1, 4, 4]));
    let mut m = g.into_model("ort-contrib");
    m.opset_import.push(pb::OperatorSetIdProto { domain: "com.microsoft".into(), version: 1 });
    m.graph.as_mut().unwrap().node[0].domain = "com.microsoft".into();
    let path = write(dir.path(), "inverse.onnx", &m);
    let inv = ModelInventory::load(&path).unwrap();
    assert!(inv.findings.iter().any(|f| f.op_type == "Inverse"));
    let two_i = ndarray::ArrayD::from_shape_fn(vec![1, 4, 4], |i| if i[1] == i[2] { 2.0 } else { 0.0 });
    let out = ort.load(&path, &inv.inputs).unwrap().run(&[two_i]).unwrap();
    assert_eq!(out[0][[0, 1, 1]], 0.5);
    assert_eq!(out[0][[0, 1, 2]], 0.0);
}

#[test]
fn onnxruntime_exposes_intermediate_tensors_as_tract_does() {
    let Some(ort) = onnxruntime() else { return };
    let m = small_cnn();
    let relu = m.graph.as_ref().unwrap().node[1].output[0].clone();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "cnn.onnx", &m);
    let inv = ModelInventory::load(&path).unwrap();
    let x = ndarray::ArrayD::from_shape_fn(vec![1, 3, 16, 16], |i| i[3] as f32 / 16.0 - 0.5);
    let tensors = [relu, "logits".to_string()];
    let run = |e: &dyn Engine| {
        e.load_exposing(&path, &inv.inputs, &tensors).unwrap().run(std::slice::from_ref(&x)).unwrap()
    };
    let (t, o) = (run(&TractEngine), run(&ort));
    assert_eq!(o.len(), 2);
    assert_eq!(o[0].shape(), &[1, 8, 16, 16]);
    assert!(max_abs_diff(&t[0], &o[0]) < 1e-4 && max_abs_diff(&t[1], &o[1]) < 1e-4);
    // With weights in a side file, the in-memory edit cannot reach them: refused, naming why.
    let (external, _) = external_cnn(dir.path());
    let inv = ModelInventory::load(&external).unwrap();
    let err = ort.load_exposing(&external, &inv.inputs, &tensors[1..]).err().expect("refused").to_string();
    assert!(err.contains("external weights; use --engine tract"), "{err}");
}

/// An output whose shape inference cannot tell keeps the dimensions the file fixes and marks the
/// others unknown: `[?, 5]` for people, `[null, 5]` in JSON, never 0.
#[test]
fn an_output_shape_inference_cannot_tell_is_unknown_never_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = with_contrib_op("Inverse");
    m.graph.as_mut().unwrap().output[0] = value_info_dims("logits", DataType::Float, &["N", "5"]);
    let inv = ModelInventory::load(&write(dir.path(), "unknown.onnx", &m)).unwrap();
    let logits = &inv.outputs[0];
    assert_eq!(logits.shape, Some(vec![None, Some(5)]));
    assert_eq!(logits.shape_text(), "[?, 5]");
    assert_eq!(logits.known_shape(), None);
    assert_eq!(serde_json::to_value(logits).unwrap()["shape"], serde_json::json!([null, 5]));
}
