//! Bring your own model: the binary on real-world exports of the shapes golden set's models
//! (symbolic dimensions, external weights, invalid files), through `inspect`, `estimate`,
//! `plan` and `certify`.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use edgecert::model::writer::{encode, externalize, value_info_dims};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

fn golden_model(name: &str) -> pb::ModelProto {
    let bytes = std::fs::read(root().join("golden/shapes").join(name)).unwrap();
    pb::ModelProto::decode(bytes.as_slice()).unwrap()
}

fn write(dir: &Path, name: &str, model: &pb::ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, encode(model)).unwrap();
    path
}

/// The shapes int8 model as exported with dynamic batch and resolution: `input [N,1,H,W]`.
fn dynamic_shapes_model(dir: &Path) -> PathBuf {
    let mut m = golden_model("shapes_int8.onnx");
    let g = m.graph.as_mut().unwrap();
    assert_eq!(g.input[0].name, "input");
    g.input[0] = value_info_dims("input", DataType::Float, &["N", "1", "H", "W"]);
    let out = g.output[0].name.clone();
    g.output[0] = value_info_dims(&out, DataType::Float, &["N", "4"]);
    write(dir, "dynamic.onnx", &m)
}

fn json(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn inspect_refuses_an_unfixed_symbolic_dimension_and_names_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let model = dynamic_shapes_model(dir.path());
    let run = edgecert(&["inspect", s(&model)]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: {}: input `input` has symbolic dimension `N` at axis 0 (Nx1xHxW) and nothing fixes it; give its size with --input-shape input:Nx1xHxW (replacing the names by sizes)",
            model.display()
        )
    );
}

#[test]
fn inspect_and_estimate_run_at_the_given_shape() {
    let dir = tempfile::tempdir().unwrap();
    let model = dynamic_shapes_model(dir.path());
    let fixed = json(&edgecert(&["inspect", "golden/shapes/shapes_int8.onnx", "--json"]));
    let inv = json(&edgecert(&["inspect", s(&model), "--input-shape", "input:1x1x32x32", "--json"]));
    assert_eq!(inv["total_macs"], fixed["total_macs"]);
    assert_eq!(inv["inputs"][0]["shape"], serde_json::json!([1, 1, 32, 32]));
    assert_eq!(inv["outputs"][0]["shape"], serde_json::json!([1, 4]));
    // Twice the resolution: four times the conv work (the final Gemm reads a pooled vector).
    let big = json(&edgecert(&["inspect", s(&model), "--input-shape", "input:1x1x64x64", "--json"]));
    let gemm = 4 * 48;
    let (small, big) = (fixed["total_macs"].as_u64().unwrap(), big["total_macs"].as_u64().unwrap());
    assert_eq!(big - gemm, 4 * (small - gemm));
    let est = json(&edgecert(&[
        "estimate",
        s(&model),
        "--profile",
        "profiles/rk3588.toml",
        "--input-shape",
        "input:1x1x32x32",
        "--json",
    ]));
    assert!(est["latency_ms"]["p50"].as_f64().unwrap() > 0.0, "{est}");
    assert!(est["latency_unknown"].as_array().is_none_or(|a| a.is_empty()), "{est}");
}

#[test]
fn a_malformed_input_shape_is_a_usage_error() {
    for (spec, words) in [
        ("input", "expected NAME:DIMS such as images:1x3x640x640"),
        ("input:1x1xHx32", "dimension `H` in `input:1x1xHx32` is not a whole number"),
    ] {
        let run = edgecert(&["inspect", "golden/shapes/shapes_int8.onnx", "--input-shape", spec]);
        assert_eq!(run.code, 2, "{spec}");
        assert!(run.stderr.contains("--input-shape") && run.stderr.contains(words), "{spec}: {}", run.stderr);
    }
    let run = edgecert(&["inspect", "golden/shapes/shapes_int8.onnx", "--input-shape", "images:1x1x32x32"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--input-shape names `images`, but the model takes `input`"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_golden_set_fixes_symbolic_dims_unless_the_flag_says_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let model = dynamic_shapes_model(dir.path());
    let out = dir.path().join("out");
    let base = [
        "certify",
        "-q",
        "--out",
        s(&out),
        "--profile",
        "profiles/ascend310b.toml",
        "--golden",
        "golden/shapes",
    ];
    let mut args = base.to_vec();
    args.extend(["--model", s(&model), "--skip", "accuracy"]);
    let run = edgecert(&args);
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    let cert = certificate(&out, "shapes", "ascend310b");
    assert_eq!(check(&cert, "memory")["measured"], 29904.0, "same figures as the fixed-shape model");
    // A shape other than the samples' is refused by the golden set, naming both.
    let mut args = base.to_vec();
    args.extend(["--model", s(&model), "--input-shape", "input:1x1x64x64"]);
    let run = edgecert(&args);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("input.shape is [1, 1, 32, 32]") && run.stderr.contains("[1, 1, 64, 64]"),
        "{}",
        run.stderr
    );
}

/// The shapes int8 model with its weights in `weights.bin` beside it.
fn external_shapes_model(dir: &Path) -> PathBuf {
    let mut m = golden_model("shapes_int8.onnx");
    std::fs::write(dir.join("weights.bin"), externalize(&mut m, "weights.bin")).unwrap();
    write(dir, "external.onnx", &m)
}

fn certify_model(out: &Path, model: &Path) -> serde_json::Value {
    let run = edgecert(&[
        "certify",
        "-q",
        "--out",
        s(out),
        "--profile",
        "profiles/ascend310b.toml",
        "--golden",
        "golden/shapes",
        "--model",
        s(model),
    ]);
    assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
    certificate(out, "shapes", "ascend310b")
}

#[test]
fn external_weights_are_certified_as_part_of_the_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let model = external_shapes_model(dir.path());
    let inline = certify_model(&dir.path().join("inline"), &root().join("golden/shapes/shapes_int8.onnx"));
    let cert = certify_model(&dir.path().join("ext"), &model);
    let files = cert["subject"]["files"].as_array().unwrap();
    let names: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(names, ["external.onnx", "weights.bin"]);
    let total: u64 = files.iter().map(|f| f["size_bytes"].as_u64().unwrap()).sum();
    assert_eq!(cert["subject"]["size_bytes"], total);
    assert_eq!(
        check(&cert, "size")["measured"],
        total as f64,
        "the size limit applies to the whole artifact"
    );
    assert_eq!(
        check(&cert, "size")["reason"],
        format!("{total} bytes (model and 1 external-data file(s)) is within the 50000000-byte limit")
    );
    let text = edgecert(&["inspect", s(&model)]);
    assert_eq!(text.code, 0, "{}", text.stderr);
    let side = files[1]["size_bytes"].as_u64().unwrap();
    assert!(text.stdout.contains(&format!("size        {total} bytes")), "{}", text.stdout);
    assert!(text.stdout.contains(&format!("  file      weights.bin {side} bytes")), "{}", text.stdout);
    // tract read the side file: accuracy from real inference equals the inline model's.
    for name in ["accuracy", "accuracy_vs_fp32"] {
        assert_eq!(check(&cert, name)["measured"], check(&inline, name)["measured"], "{name}");
    }
    // Tampering with the weights changes the subject digest.
    let weights = dir.path().join("weights.bin");
    let mut bytes = std::fs::read(&weights).unwrap();
    bytes[10] ^= 0x08;
    std::fs::write(&weights, bytes).unwrap();
    let tampered = certify_model(&dir.path().join("tampered"), &model);
    assert_ne!(tampered["subject"]["sha256"], cert["subject"]["sha256"]);
    assert_eq!(tampered["subject"]["files"][0], cert["subject"]["files"][0], "the .onnx file is unchanged");
}

#[test]
fn an_escaping_external_location_stops_certify_naming_model_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = golden_model("shapes_int8.onnx");
    externalize(&mut m, "../../etc/passwd");
    let tensor = m.graph.as_ref().unwrap().initializer[0].name.clone();
    let model = write(dir.path(), "escape.onnx", &m);
    let out = dir.path().join("out");
    let run = edgecert(&["certify", "--out", s(&out), "--golden", "golden/shapes", "--model", s(&model)]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains(&format!(
            "escape.onnx: initializer `{tensor}`: external data location `../../etc/passwd` climbs out of the model's folder"
        )),
        "{}",
        run.stderr
    );
    assert!(files_under(&out).is_empty());
}

#[test]
fn an_invalid_model_lists_every_defect_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = golden_model("shapes_int8.onnx");
    m.ir_version = 999;
    m.graph.as_mut().unwrap().node[2].op_type.clear();
    let model = write(dir.path(), "invalid.onnx", &m);
    let out = dir.path().join("out");
    let run = edgecert(&["certify", "--out", s(&out), "--golden", "golden/shapes", "--model", s(&model)]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(
        run.stderr.contains("invalid.onnx: 2 defects make this an invalid ONNX model:"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("ir_version is 999, expected 3 to 11"), "{}", run.stderr);
    assert!(run.stderr.contains("has an empty op_type"), "{}", run.stderr);
    assert!(files_under(&out).is_empty());
}

#[test]
fn plan_takes_the_input_shape_flag_too() {
    let dir = tempfile::tempdir().unwrap();
    let model = dynamic_shapes_model(dir.path());
    let run = edgecert(&[
        "plan",
        "--golden",
        "golden/shapes",
        "--profile",
        "profiles/rk3588.toml",
        "--model",
        s(&model),
        "--input-shape",
        "input:1x1x32x32",
        "--json",
    ]);
    let plan = json(&run);
    assert!(
        plan.to_string().contains(&edgecert::vocab::hash::sha256_hex(&std::fs::read(&model).unwrap())),
        "{plan}"
    );
}
