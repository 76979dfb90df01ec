//! TFLite files from outside: `inspect` reads TensorFlow's own exports (float, float16 weights,
//! full-integer uint8), `certify` replays them on tract-tflite and LiteRT with the golden
//! samples coded and the scores dequantized by the file's own parameters, the engines
//! cross-check each other, and what an engine cannot run is named.
//!
//! Tests that need LiteRT skip, printing why, where `ai-edge-litert` is absent (`.ci/run`
//! installs it).

use crate::common;

use std::path::Path;

use common::*;

const FIXTURES: &str = "tests/fixtures/tflite";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// Whether LiteRT can be loaded here, printing why the test skips when not.
fn litert() -> bool {
    edgecert::engine::LitertEngine::load_runtime()
        .map_err(|why| eprintln!("skipped: LiteRT is not installed here: {why}"))
        .is_ok()
}

fn inspect_json(model: &str) -> serde_json::Value {
    let run = edgecert(&["inspect", model, "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

fn accuracy(cert: &serde_json::Value) -> f64 {
    check(cert, "accuracy")["measured"].as_f64().unwrap_or_else(|| panic!("{}", check(cert, "accuracy")))
}

fn certify_shapes_with(out: &Path, model: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["--model", model];
    args.extend_from_slice(extra);
    let run = certify_quietly(out, "profiles/rk3588.toml", "golden/shapes", &args);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    certificate(out, "shapes", "rk3588")
}

#[test]
fn the_full_integer_export_inventories_with_its_own_quantization() {
    let onnx = inspect_json("golden/shapes/shapes_fp32.onnx");
    let inv = inspect_json(&fixture("shapes_uint8.tflite"));
    assert_eq!(inv["format"], "tflite");
    assert_eq!(inv["total_macs"], onnx["total_macs"], "the same network, counted from TFLite's NHWC shapes");
    assert_eq!(inv["quantization"], "full_integer");
    let input = &inv["inputs"][0];
    assert_eq!(input["dtype"], "uint8");
    assert!((input["quantization"]["scale"].as_f64().unwrap() - 1.0 / 255.0).abs() < 1e-9, "{input}");
    assert_eq!(input["quantization"]["zero_point"], 0);
    assert_eq!(input["quantization"]["source"], "model");
    assert_eq!(inv["outputs"][0]["dtype"], "uint8");
    assert!(inv["outputs"][0]["quantization"]["scale"].as_f64().unwrap() > 0.0);
    // Per channel: each convolution's weights and biases, and the fully connected layer's.
    let per_channel = inv["quantized_tensors"]["per_channel"].as_u64().unwrap();
    assert!((6..=8).contains(&per_channel), "{}", inv["quantized_tensors"]);
    assert_eq!(inv["op_histogram"]["Conv"], 3);
    assert_eq!(inv["op_histogram"]["QuantizeLinear"], 2);
    assert!(inv["weight_bytes_by_dtype"]["int8"].as_u64().unwrap() > 12_000);

    let fp16 = inspect_json(&fixture("shapes_fp16.tflite"));
    assert_eq!(fp16["quantization"], "none", "float16 weights are not integer quantization");
    assert_eq!(fp16["op_histogram"]["Cast"], 10, "TensorFlow's float16 DEQUANTIZE is a cast");
    assert!(fp16["op_histogram"].get("DequantizeLinear").is_none());
    assert!(fp16["weight_bytes_by_dtype"]["float16"].as_u64().unwrap() > 20_000);

    let text = edgecert(&["inspect", &fixture("shapes_uint8.tflite")]);
    assert!(text.stdout.contains("format      TFLite"), "{}", text.stdout);
    assert!(text.stdout.contains("quantization full_integer ("), "{}", text.stdout);
}

#[test]
fn tract_certifies_the_float_export_as_its_onnx_source_scores() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certify_shapes_with(dir.path(), &fixture("shapes_fp32.tflite"), &[]);
    let primary = &cert["metrics"]["values"]["primary"];
    assert_eq!(primary["compressed"], primary["fp32"], "{primary}");
    assert_eq!(check(&cert, "accuracy")["verdict"], "PASS");
    assert_eq!(check(&cert, "accuracy_vs_fp32")["verdict"], "PASS");
    let bytes = std::fs::read(root().join(fixture("shapes_fp32.tflite"))).unwrap();
    assert_eq!(cert["subject"]["size_bytes"], bytes.len() as u64);
    assert_eq!(cert["subject"]["files"].as_array().unwrap().len(), 1);
}

#[test]
fn tract_names_the_builtins_it_cannot_run_and_points_at_litert() {
    let dir = tempfile::tempdir().unwrap();
    let cert = certify_shapes_with(dir.path(), &fixture("shapes_uint8.tflite"), &["--engine", "tract"]);
    let accuracy = check(&cert, "accuracy");
    assert_eq!(accuracy["verdict"], "INCONCLUSIVE");
    let reason = accuracy["reason"].as_str().unwrap();
    assert!(reason.contains("does not run QUANTIZE") && reason.contains("--engine litert"), "{reason}");
    assert_ne!(cert["verdict"], "PASS");
}

#[test]
fn litert_certifies_the_full_integer_export_fed_its_uint8_codes() {
    if !litert() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = certify_shapes_with(dir.path(), &fixture("shapes_uint8.tflite"), &["--engine", "litert"]);
    let score = accuracy(&cert);
    assert!((0.97..=1.0).contains(&score), "uint8 codes of [0, 1] pixels, dequantized scores: {score}");
    assert_eq!(check(&cert, "accuracy")["verdict"], "PASS");
    let coded = &cert["subject"]["input_quantization"][0];
    assert_eq!(coded["dtype"], "uint8");
    assert_eq!(coded["source"], "model");
    assert_eq!(cert["subject"]["quantization"], "full_integer");

    // Negative control: the same file fed unscaled samples (a stated scale of 1, as if the
    // pixels were already codes) scores at chance or near it, so the coding above is what counts.
    let wrong = dir.path().join("wrong");
    let golden = copied_golden(dir.path(), "shapes");
    let toml = golden.join("family.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace("[labels]", "[input.quantization]\nscale = 1.0\nzero_point = 0\n\n[labels]"),
    )
    .unwrap();
    let run = certify_quietly(
        &wrong,
        "profiles/rk3588.toml",
        s(&golden),
        &[
            "--model",
            &root().join(fixture("shapes_uint8.tflite")).display().to_string(),
            "--engine",
            "litert",
        ],
    );
    assert_eq!(run.code, 2, "a stated quantization that contradicts the file's is refused: {}", run.stderr);
    assert!(run.stderr.contains("[input.quantization] says scale 1"), "{}", run.stderr);
}

#[test]
fn litert_and_tract_cross_check_each_other_on_the_float_export() {
    if !litert() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = certify_shapes_with(
        dir.path(),
        &fixture("shapes_fp32.tflite"),
        &["--engine", "litert", "--cross-check"],
    );
    let cross = &cert["cross_check"];
    assert!(cross["verdict_engine"].as_str().unwrap().contains("LiteRT"), "{cross}");
    assert_eq!(cross["engine"], "tract-tflite 0.23.9");
    let stats = cross["agreement"][0]["statistics"].as_array().unwrap();
    let max_abs =
        stats.iter().find(|s| s["statistic"] == "max_abs_error").unwrap()["value"].as_f64().unwrap();
    assert!(max_abs < 1e-4, "two float engines on one float file: {max_abs}");
    assert_eq!(check(&cert, "accuracy")["verdict"], "PASS");
}

#[test]
fn engine_choices_that_cannot_hold_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let run = certify_quietly(dir.path(), "profiles/rk3588.toml", "golden/shapes", &["--engine", "litert"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--engine litert runs TFLite files and this run has none"), "{}", run.stderr);

    let run = certify_quietly_with_env(
        &dir.path().join("missing"),
        "profiles/rk3588.toml",
        "golden/shapes",
        &["--model", &fixture("shapes_fp32.tflite"), "--engine", "litert"],
        &[("LITERT_PYTHON", Some("/nonexistent/python3"))],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("no LiteRT found") && run.stderr.contains("/nonexistent/python3"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_truncated_tflite_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(root().join(fixture("shapes_uint8.tflite"))).unwrap();
    let cut = dir.path().join("cut.tflite");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let run = edgecert(&["inspect", s(&cut)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cut.tflite") && run.stderr.contains("not a valid TFLite flatbuffer"),
        "{}",
        run.stderr
    );
}

#[test]
fn golden_init_takes_a_tflite_pair_and_certifies_it_on_output_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let golden = tflite_golden(dir.path(), "shapes_fp16.tflite");
    let out = dir.path().join("out");
    let run = certify_quietly(&out, "profiles/rk3588.toml", s(&golden), &[]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    // float16 DEQUANTIZE is beyond tract-tflite: the agreement check says which builtin.
    let cert = certificate(&out, "tfl", "rk3588");
    let agreement = check(&cert, "output_agreement");
    let reason = agreement["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("DEQUANTIZE"), "{agreement}");
}

/// A golden set over TensorFlow's float and full-integer exports of the shapes network.
fn tflite_golden(dir: &Path, compressed: &str) -> std::path::PathBuf {
    let compressed = match Path::new(compressed).is_absolute() {
        true => compressed.to_string(),
        false => fixture(compressed),
    };
    let golden = dir.join("tfl");
    let run = edgecert(&[
        "golden",
        "init",
        s(&golden),
        "--reference",
        &fixture("shapes_fp32.tflite"),
        "--compressed",
        &compressed,
        "--inputs",
        "golden/shapes/samples",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    golden
}

fn analysis(golden: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["analyze", "--golden", s(golden), "--engine", "litert", "--json"];
    args.extend_from_slice(extra);
    let run = edgecert(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn litert_ranks_the_layers_of_the_full_integer_export_against_the_float_one() {
    if !litert() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let golden = tflite_golden(dir.path(), "shapes_uint8.tflite");
    let report = analysis(&golden, &["--samples", "64"]);
    assert!(report["engine"].as_str().unwrap().starts_with("LiteRT"), "{report}");
    let layers = report["layers"].as_array().unwrap();
    let ops: Vec<&str> = layers.iter().map(|l| l["op_type"].as_str().unwrap()).collect();
    // Three convolutions, two pools, the mean, sub, mul and the classifier: every layer, the
    // classifier paired by order (the integer export renames its output `Identity1`).
    assert_eq!(layers.len(), 9, "{ops:?}");
    assert_eq!(ops.iter().filter(|o| **o == "Conv").count(), 3, "{ops:?}");
    assert!(ops.contains(&"Gemm"), "{ops:?}");
    assert!(report["unpaired"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(ops[0], "Mul", "worst first: the scaling after the mean, as docs/own-model.md says");
    for l in layers {
        let cosine = l["cosine"].as_f64().unwrap();
        // Integer codes read back through their scales: close, not equal, to the float layer.
        assert!(cosine > 0.9 && cosine < 0.999_999, "{l}");
    }
    let conv = layers.iter().find(|l| l["tensor"] == "Relu;Conv2D").unwrap();
    assert_eq!(conv["shape"], serde_json::json!([1, 32, 32, 8]), "NHWC, as the file stores it: {conv}");

    // The control: the float export against itself loses nothing in any layer.
    let copy = dir.path().join("float_copy.tflite");
    std::fs::copy(root().join(fixture("shapes_fp32.tflite")), &copy).unwrap();
    let same = tflite_golden(&dir.path().join("same"), s(&copy));
    for l in analysis(&same, &["--samples", "16"])["layers"].as_array().unwrap() {
        assert!(l["cosine"].as_f64().unwrap() > 0.999_999, "{l}");
    }
}

#[test]
fn per_layer_analysis_of_a_tflite_file_refuses_tract_and_an_onnx_reference() {
    let dir = tempfile::tempdir().unwrap();
    let golden = tflite_golden(dir.path(), "shapes_uint8.tflite");
    let run = edgecert(&["analyze", "--golden", s(&golden), "--engine", "tract"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("tract-tflite does not expose") && run.stderr.contains("--engine litert"),
        "{}",
        run.stderr
    );
    let run = edgecert(&["analyze", "--golden", s(&golden), "--model", "golden/shapes/shapes_int8.onnx"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("is TFLite and golden/shapes/shapes_int8.onnx is ONNX"), "{}", run.stderr);
}
