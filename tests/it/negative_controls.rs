//! Every check has a negative control: an input that must make it FAIL, for the stated reason.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use edgecert::model::writer::raw_tensor;
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataType;

/// The reference families; every per-family negative control runs on each.
const FAMILIES: [&str; 4] = ["shapes", "chassis", "smt", "adas"];

fn int8_model() -> pb::ModelProto {
    int8_model_of("shapes")
}

/// Certifies the shapes family with optional overrides; returns the certificate.
fn certify(out: &Path, profile: &Path, golden: Option<&Path>, model: Option<&Path>) -> serde_json::Value {
    certify_family("shapes", out, profile, golden, model)
}

fn certify_family(
    family: &str,
    out: &Path,
    profile: &Path,
    golden: Option<&Path>,
    model: Option<&Path>,
) -> serde_json::Value {
    let golden = golden.map_or_else(|| root().join("golden").join(family), Path::to_path_buf);
    let mut args = vec!["certify", "-q", "--out", s(out), "--profile", s(profile), "--golden", s(&golden)];
    if let Some(m) = model {
        args.extend(["--model", s(m)]);
    }
    let run = edgecert(&args);
    assert_eq!(run.code, 1, "a negative control must make the run fail: {}\n{}", run.stdout, run.stderr);
    let chip = profile.file_stem().unwrap().to_str().unwrap();
    let name = std::fs::read_to_string(profile).unwrap();
    let chip = name
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .map_or(chip.to_string(), |n| n.trim_end_matches('"').to_string());
    certificate(out, family, &chip)
}

fn assert_fails(cert: &serde_json::Value, name: &str, words: &str) {
    let c = check(cert, name);
    assert_eq!(c["verdict"], "FAIL", "{name} should FAIL: {c}");
    let reason = c["reason"].as_str().unwrap().to_string() + &c["findings"].to_string();
    assert!(reason.contains(words), "{name} should fail because of `{words}`: {reason}");
}

fn rk3588() -> PathBuf {
    root().join("profiles/rk3588.toml")
}

#[test]
fn an_oversized_model_fails_size() {
    for family in FAMILIES {
        let dir = tempfile::tempdir().unwrap();
        let mut model = int8_model_of(family);
        // 51 MB of weights the graph never reads: the artifact is what is shipped and measured.
        let pad = raw_tensor("padding", &[51_000_000], DataType::Int8, vec![7u8; 51_000_000]);
        model.graph.as_mut().unwrap().initializer.push(pad);
        let big = write_model(dir.path(), "oversized.onnx", &model);
        let cert = certify_family(family, &dir.path().join("out"), &rk3588(), None, Some(&big));
        assert_fails(&cert, "size", "exceeds the 50000000-byte limit");
        assert_eq!(check(&cert, "accuracy")["verdict"], "PASS", "{family}");
    }
}

#[test]
fn an_operator_missing_from_a_strict_profile_fails_operators() {
    let dir = tempfile::tempdir().unwrap();
    let strict = derived_profile(
        dir.path(),
        "rk3588",
        "strict-no-conv",
        &[
            ("fallback = \"per-op\"", "fallback = \"strict\""),
            ("\"Constant\", \"ConstantOfShape\", \"Conv\",", "\"Constant\", \"ConstantOfShape\","),
            ("[operators.limits.Conv]\nkernel = [1, 31]\nstride = [1, 7]\npad = [0, 15]\nchannels_max = 8192\nheight_max = 8192\nwidth_max = 8176\n", ""),
        ],
    );
    let cert = certify(&dir.path().join("out"), &strict, None, None);
    assert_fails(&cert, "operators", "conv_0 (Conv): `Conv` is not in the profile's operator list");
}

#[test]
fn a_float_model_fails_operators_where_the_toolchain_compiles_only_quantized_models() {
    let dir = tempfile::tempdir().unwrap();
    let fp32 = root().join("golden/shapes/shapes_fp32.onnx");
    let cert = certify(&dir.path().join("tpu"), &root().join("profiles/edgetpu.toml"), None, Some(&fp32));
    assert_fails(&cert, "operators", "compiles only quantized models: quantize the model first");
    assert_eq!(cert["estimate"]["latency_ms"], serde_json::Value::Null);
    // The contrast: Hailo's compiler quantizes a float model itself, so the figures are that
    // int8 build's, and the certificate says so where its latency is read.
    let cert = certify(&dir.path().join("hailo"), &root().join("profiles/hailo8.toml"), None, Some(&fp32));
    assert!(cert["estimate"]["conversion"].as_str().unwrap().contains("int8 build"), "{}", cert["estimate"]);
    let latency = check(&cert, "latency");
    assert!(latency["reason"].as_str().unwrap().contains("int8 build of the float model"), "{latency}");
    assert_eq!(check(&cert, "operators")["verdict"], "PASS");
}

#[test]
fn a_tiny_memory_profile_fails_memory() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = derived_profile(
        dir.path(),
        "rk3588",
        "tiny-memory",
        &[("[memory]\n", "[memory]\ndram_bytes = 4096\n")],
    );
    let cert = certify(&dir.path().join("out"), &tiny, None, None);
    assert_fails(&cert, "memory", "exceed 4096 bytes of DRAM");
}

#[test]
fn a_too_slow_chip_fails_latency() {
    let dir = tempfile::tempdir().unwrap();
    let slow = slow_npu_profile(dir.path());
    let cert = certify(&dir.path().join("out"), &slow, None, None);
    assert_fails(
        &cert,
        "latency",
        "the 5 ms budget × (1 + 0.55): missed even if the chip's latency is 0.65 times these figures",
    );
    assert_eq!(check(&cert, "latency")["basis"], "emulated");
}

/// The shapes family's golden set, copied under `dir` with its latency budget set to `budget_ms`.
fn shapes_with_latency_budget(dir: &Path, budget_ms: &str) -> PathBuf {
    let golden = copied_golden(dir, "shapes");
    let manifest = golden.join("family.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("latency_p99_ms = 5.0", &format!("latency_p99_ms = {budget_ms}"));
    std::fs::write(&manifest, text).unwrap();
    golden
}

#[test]
fn an_impossible_latency_budget_fails_latency() {
    let dir = tempfile::tempdir().unwrap();
    let golden = shapes_with_latency_budget(dir.path(), "0.001");
    let cert = certify(&dir.path().join("out"), &rk3588(), Some(&golden), None);
    assert_fails(&cert, "latency", "the 0.001 ms budget × (1 + 0.55): missed even if");
}

/// An emulated p99 under its budget, but not by the emulator's held-out error: no PASS the
/// emulator cannot stand behind, and no promise that more emulated samples would decide it.
#[test]
fn a_budget_within_the_emulators_error_leaves_latency_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    // The shapes model's emulated p99 on the RK3588 is about 0.26 ms: under 0.35 ms, over
    // 0.35 × (1 − 0.55) = 0.1575 ms (the RK3588's own error over its scored corpus rows).
    let golden = shapes_with_latency_budget(dir.path(), "0.35");
    let cert = certify(&dir.path().join("out"), &rk3588(), Some(&golden), None);
    let latency = check(&cert, "latency");
    assert_eq!(latency["verdict"], "INCONCLUSIVE", "{latency}");
    assert_eq!(latency["systematic_error"], 0.55);
    assert!(latency["measured"].as_f64().unwrap() < 0.35, "{latency}");
    let reason = latency["reason"].as_str().unwrap();
    assert!(
        reason.contains("is too near the 0.35 ms budget for its systematic error ±55 %, the emulator's latency error on this chip")
            && reason.contains("PASS needs an upper bound at most 0.1575 ms (the budget × (1 − 0.55)), FAIL a lower bound over 0.5425 ms (× (1 + 0.55)); a p99 measured on the chip can decide it"),
        "{reason}"
    );
    assert!(latency.get("samples_to_decide").is_none(), "{latency}");
}

#[test]
fn corrupted_weights_fail_accuracy() {
    for family in FAMILIES {
        let dir = tempfile::tempdir().unwrap();
        let corrupted = corrupted_int8_model(dir.path(), family);
        let cert = certify_family(family, &dir.path().join("out"), &rk3588(), None, Some(&corrupted));
        let accuracy = check(&cert, "accuracy");
        assert_eq!(accuracy["verdict"], "FAIL", "{family}: {accuracy}");
        assert_fails(&cert, "accuracy_vs_fp32", "floor");
        assert_eq!(check(&cert, "size")["verdict"], "PASS");
    }
}

#[test]
fn an_operator_no_runtime_implements_fails_operators() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = int8_model();
    let relu = model.graph.as_mut().unwrap().node.iter_mut().find(|n| n.op_type == "Relu").unwrap();
    relu.op_type = "FusedGelu".into();
    relu.domain = "com.microsoft".into();
    let odd = write_model(dir.path(), "custom-op.onnx", &model);
    let cert = certify(&dir.path().join("out"), &rk3588(), None, Some(&odd));
    assert_fails(&cert, "operators", "not implemented by the tract engine");
    assert_eq!(check(&cert, "accuracy")["verdict"], "INCONCLUSIVE");
}

/// The positive control beside a negative one: the same profile family, within its limits.
fn certify_passing(out: &Path, profile: &Path) -> serde_json::Value {
    let golden = root().join("golden/shapes");
    let run = edgecert(&["certify", "-q", "--out", s(out), "--profile", s(profile), "--golden", s(&golden)]);
    assert!(run.code <= 1, "{}", run.stderr);
    certificate(out, "shapes", "atlas200i-dk-a2")
}

/// The Atlas 200I DK A2 board (the Ascend 310B with its power figure), given a thermal model.
fn ascend_with_thermal(dir: &Path, name: &str, typical_w: &str) -> PathBuf {
    derived_profile(
        dir,
        "atlas200i-dk-a2",
        name,
        &[
            ("typical_w = 24.0", typical_w),
            (
                "[power]",
                "[thermal]\nthrottle_c = 85.0\nresistance_c_per_w = 2.0\ntime_constant_s = 30.0\n\n[power]",
            ),
        ],
    )
}

#[test]
fn an_over_budget_power_profile_fails_power() {
    let dir = tempfile::tempdir().unwrap();
    let within =
        certify_passing(&dir.path().join("a"), &ascend_with_thermal(dir.path(), "ok", "typical_w = 24.0"));
    assert_eq!(check(&within, "power")["verdict"], "PASS", "{}", check(&within, "power"));
    let tight = ascend_with_thermal(dir.path(), "tight", "typical_w = 0.0001");
    let cert = certify(&dir.path().join("b"), &tight, None, None);
    assert_fails(&cert, "power", "over the 0.0001 W budget (power.typical_w)");
    assert_eq!(check(&cert, "power")["basis"], "emulated");
    // A board that gives only its rated maximum (a supply) is held to that instead.
    let rated = ascend_with_thermal(dir.path(), "rated", "max_w = 0.0001");
    let cert = certify(&dir.path().join("c"), &rated, None, None);
    assert_fails(&cert, "power", "over the 0.0001 W budget (power.max_w)");
}

#[test]
fn a_hot_ambient_fails_thermal() {
    let dir = tempfile::tempdir().unwrap();
    let profile = ascend_with_thermal(dir.path(), "thermal", "typical_w = 24.0");
    let cool = certify_passing(&dir.path().join("cool"), &profile);
    assert_eq!(check(&cool, "thermal")["verdict"], "PASS", "{}", check(&cool, "thermal"));
    assert!(cool["thermal"]["curve"].as_array().unwrap().len() > 10);
    let golden = root().join("golden/shapes");
    let out = dir.path().join("hot");
    let args = [
        "certify",
        "-q",
        "--out",
        s(&out),
        "--profile",
        s(&profile),
        "--golden",
        s(&golden),
        "--ambient",
        "83",
    ];
    assert_eq!(edgecert(&args).code, 1);
    let hot = certificate(&out, "shapes", "atlas200i-dk-a2");
    assert_fails(&hot, "thermal", "throttle point");
    let peak = |c: &serde_json::Value| check(c, "thermal")["measured"].as_f64().unwrap();
    assert!(peak(&hot) > peak(&cool));
}

/// A board's DRAM decides memory: the bundled ROCK 5B's 8 GB pass, the same board cut to 4 KB
/// fails — through the inherited chip profile, beside a copy of it.
#[test]
fn a_board_with_too_little_dram_fails_memory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(rk3588(), dir.path().join("rk3588.toml")).unwrap();
    let board = std::fs::read_to_string(root().join("profiles/rock5b-8gb.toml")).unwrap();
    let tiny = dir.path().join("rock5b-8gb.toml");
    std::fs::write(&tiny, board.replace("dram_bytes = 8589934592", "dram_bytes = 4096")).unwrap();
    let cert = certify(&dir.path().join("tiny"), &tiny, None, None);
    assert_fails(&cert, "memory", "exceed 4096 bytes of DRAM");
    let cert = certify(&dir.path().join("bundled"), &root().join("profiles/rock5b-8gb.toml"), None, None);
    assert_eq!(check(&cert, "memory")["verdict"], "PASS", "{}", check(&cert, "memory"));
}
