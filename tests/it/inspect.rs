//! `inspect`, `estimate` and `profile check` on real files.

use crate::common;

use common::*;
use prost::Message;
use tract_onnx::pb;

/// Counts straight from the protobuf, independent of edgecert's inventory code.
fn independent_counts(path: &str) -> (usize, u64) {
    let bytes = std::fs::read(root().join(path)).unwrap();
    let model = pb::ModelProto::decode(bytes.as_slice()).unwrap();
    let g = model.graph.unwrap();
    let params = g.initializer.iter().map(|t| t.dims.iter().product::<i64>() as u64).sum();
    (g.node.len(), params)
}

#[test]
fn inspect_json_agrees_with_an_independent_count() {
    for path in ["golden/shapes/shapes_fp32.onnx", "golden/shapes/shapes_int8.onnx"] {
        let run = edgecert(&["inspect", path, "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let inv: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let (nodes, params) = independent_counts(path);
        assert_eq!(inv["node_count"], nodes as u64, "{path}");
        assert_eq!(inv["parameter_count"], params, "{path}");
        assert_eq!(inv["file_size_bytes"], std::fs::metadata(root().join(path)).unwrap().len());
        let histogram_total: u64 =
            inv["op_histogram"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(histogram_total, nodes as u64);
    }
    let run = edgecert(&["inspect", "golden/shapes/shapes_int8.onnx", "--json"]);
    let inv: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(inv["quantization"], "qdq");
    assert!(inv["weight_bytes_by_dtype"]["int8"].as_u64().unwrap() > 0);
    // conv 1->8 on 32x32, 8->24 on 16x16, 24->48 on 8x8, gemm 48->4: all 3x3.
    let macs = 8 * 32 * 32 * 9 + 24 * 16 * 16 * 72 + 48 * 8 * 8 * 216 + 4 * 48;
    assert_eq!(inv["total_macs"], macs);
}

#[test]
fn inspect_prints_tables_for_people() {
    let run = edgecert(&["inspect", "golden/shapes/shapes_fp32.onnx"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("GlobalAveragePool"));
    assert!(run.stdout.contains("parameters"));
}

#[test]
fn estimate_gives_placement_and_latency() {
    let run = edgecert(&[
        "estimate",
        "golden/shapes/shapes_int8.onnx",
        "--profile",
        "profiles/rk3588.toml",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let est: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let (p50, p99) = (est["latency_ms"]["p50"].as_f64().unwrap(), est["latency_ms"]["p99"].as_f64().unwrap());
    assert!(p50 > 0.0 && p99 >= p50);
    for key in ["peak_memory_bytes", "weights_bytes", "energy_mj"] {
        assert!(est[key].as_f64().unwrap() > 0.0, "{key}: {est}");
    }
    assert_eq!(est["basis"], "emulated");
    assert_eq!(
        est["placement"].as_array().unwrap().len(),
        independent_counts("golden/shapes/shapes_int8.onnx").0
    );
    assert_eq!(est["placement"][3]["unit"], "npu");
    // A board with a power figure also gives the average power.
    let run = edgecert(&[
        "estimate",
        "golden/shapes/shapes_int8.onnx",
        "--profile",
        "profiles/atlas200i-dk-a2.toml",
        "--json",
    ]);
    let est: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(est["avg_power_w"].as_f64().unwrap() > 0.0);
}

#[test]
fn profile_check_accepts_the_bundled_profiles_and_names_errors() {
    let run = edgecert(&[
        "profile",
        "check",
        "profiles/rk3588.toml",
        "profiles/qcs6490.toml",
        "profiles/ascend310b.toml",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let dir = tempfile::tempdir().unwrap();
    let bad = derived_profile(
        dir.path(),
        "rk3588",
        "typo",
        &[("peak_tops_int8 = 6.0", "peak_tops_int8 = 6.0\npeak_tops_in8 = 6.0")],
    );
    let run = edgecert(&["profile", "check", s(&bad)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("typo.toml:")
            && run.stderr.contains("npu.peak_tops_in8")
            && run.stderr.contains("unknown key"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_faster_npu_mode_lowers_the_emulated_latency() {
    let latency = |extra: &[&str]| {
        let mut args =
            vec!["estimate", "golden/smt/smt_int8.onnx", "--profile", "profiles/ascend310b.toml", "--json"];
        args.extend_from_slice(extra);
        let run = edgecert(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let est: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        est["latency_ms"]["modelled"].as_f64().unwrap()
    };
    assert!(latency(&["--npu-mode", "20T"]) < latency(&[]));
    let bad = edgecert(&[
        "estimate",
        "golden/smt/smt_int8.onnx",
        "--profile",
        "profiles/ascend310b.toml",
        "--npu-mode",
        "99T",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("99T"), "{}", bad.stderr);
}

#[test]
fn estimate_text_lists_the_chips_layers_and_accounts_for_every_node() {
    let args = ["estimate", "golden/shapes/shapes_int8.onnx", "--profile", "profiles/rk3588.toml"];
    let layers = edgecert(&args);
    assert_eq!(layers.code, 0, "{}", layers.stderr);
    // The default table holds the layers the chip runs: no Q/DQ folded at conversion, no
    // epilogue fused into its convolution; the counts line still accounts for them.
    assert!(!layers.stdout.contains("folded by the toolchain"), "{}", layers.stdout);
    assert!(!layers.stdout.contains("│ relu"), "{}", layers.stdout);
    let json = edgecert(&[&args[..], &["--json"]].concat());
    let est: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let placement = est["placement"].as_array().unwrap();
    let fused = placement.iter().filter(|n| n["fused_into"].is_string()).count();
    let absorbed = placement.iter().filter(|n| n["unit"] == "absorbed").count();
    assert!(fused > 0 && absorbed > 0, "{est}");
    let counts = format!(
        "nodes       {}: {} layers on the accelerator, 0 on the CPU, 0 rejected; {fused} fused into their layers, {absorbed} absorbed at conversion",
        placement.len(),
        placement.len() - fused - absorbed
    );
    assert!(layers.stdout.contains(&counts), "{counts}\n{}", layers.stdout);
    assert!(layers.stdout.contains("slowest     conv_"), "{}", layers.stdout);
    // A model the chip would not compile has no latency to take shares of: no slowest line.
    let refused =
        edgecert(&["estimate", "golden/shapes/shapes_fp32.onnx", "--profile", "profiles/coral-usb.toml"]);
    assert!(refused.stdout.contains("latency     unknown"), "{}", refused.stdout);
    assert!(!refused.stdout.contains("slowest"), "{}", refused.stdout);
    // --all-nodes shows the rest, each fused node naming its layer.
    let all = edgecert(&[&args[..], &["--all-nodes"]].concat());
    assert!(all.stdout.contains("folded by the toolchain"), "{}", all.stdout);
    let relu = placement.iter().find(|n| n["fused_into"].is_string()).unwrap();
    let row = all.stdout.lines().find(|l| l.contains(relu["node"].as_str().unwrap())).unwrap();
    assert!(row.contains(&format!("fused into {}", relu["fused_into"].as_str().unwrap())), "{row}");
}

#[test]
fn estimate_compares_one_model_across_chips() {
    let model = "golden/shapes/shapes_fp32.onnx";
    let args =
        ["estimate", model, "--profile", "profiles/coral-usb.toml", "--profile", "profiles/rk3588.toml"];
    let text = edgecert(&args);
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("on 2 profiles (all figures EMULATED)"), "{}", text.stdout);
    // The Coral refuses a float model: its row says unknown and the reason follows the table.
    let coral = text.stdout.lines().find(|l| l.contains("│ coral-usb")).unwrap();
    assert!(coral.contains("unknown"), "{coral}");
    assert!(text.stdout.contains("coral-usb: latency unknown: node"), "{}", text.stdout);
    let rk = text.stdout.lines().find(|l| l.contains("│ rk3588")).unwrap();
    assert!(rk.contains("calibrated") && !rk.contains("unknown"), "{rk}");
    // --json: one report per profile, in the order given, each the single-profile report.
    let json = edgecert(&[&args[..], &["--json"]].concat());
    let reports: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), 2);
    assert_eq!(reports[0]["latency_ms"], serde_json::Value::Null);
    let single = edgecert(&["estimate", model, "--profile", "profiles/rk3588.toml", "--json"]);
    assert_eq!(reports[1], serde_json::from_str::<serde_json::Value>(&single.stdout).unwrap());
    // --profiles-dir: every bundled profile, one row each.
    let all = edgecert(&["estimate", model, "--profiles-dir", "profiles", "--json"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let bundled = std::fs::read_dir("profiles")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "toml"))
        .count();
    let reports: serde_json::Value = serde_json::from_str(&all.stdout).unwrap();
    assert_eq!(reports.as_array().unwrap().len(), bundled);
    // A folder holding one profile is still a comparison: an array, not a single report.
    let one = tempfile::tempdir().unwrap();
    // The Hailo-8 without its fitted per-layer set-up: a chip calibrated on throughput alone.
    let hailo8 = std::fs::read_to_string("profiles/hailo8.toml").unwrap();
    let throughput_only: String = hailo8
        .lines()
        .filter(|l| !l.starts_with("layer_overhead_us =") && !l.starts_with("layer_overhead ="))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(throughput_only.len() < hailo8.len(), "hailo8.toml no longer sets layer_overhead_us");
    std::fs::write(one.path().join("hailo8.toml"), throughput_only).unwrap();
    let dir = one.path().to_str().unwrap();
    let reports: serde_json::Value =
        serde_json::from_str(&edgecert(&["estimate", model, "--profiles-dir", dir, "--json"]).stdout)
            .unwrap();
    assert_eq!(reports.as_array().map(Vec::len), Some(1), "{reports}");
    // Its calibration is throughput's: its latency is on the default overhead, and says so.
    let hailo = edgecert(&["estimate", model, "--profiles-dir", dir]);
    let row = hailo.stdout.lines().find(|l| l.contains("│ hailo8")).unwrap();
    assert!(row.contains("throughput calibrated, latency default"), "{row}");
    // One chip's options in a comparison are a usage error naming the option.
    let moded = edgecert(&[&args[..], &["--npu-mode", "20T"]].concat());
    assert_eq!(moded.code, 2);
    assert!(moded.stderr.contains("--npu-mode applies to one chip"), "{}", moded.stderr);
    // Both at once is a usage error, exit 2.
    let both =
        edgecert(&["estimate", model, "--profiles-dir", "profiles", "--profile", "profiles/rk3588.toml"]);
    assert_eq!(both.code, 2);
    assert!(both.stderr.contains("--profiles-dir"), "{}", both.stderr);
}

#[test]
fn a_float_model_crosses_a_quantizing_cards_link_as_its_int8_build() {
    // Hailo's Dataflow Compiler quantizes a float model: its 1×1×32×32 input and 4 scores cross
    // PCIe as 8-bit tensors, as the Coral's QDQ model's do; a chip with DRAM reports no transfer.
    let run = |profile: &str, model: &str| {
        let run = edgecert(&["estimate", model, "--profile", profile, "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    for (profile, model) in [
        ("profiles/hailo8.toml", "golden/shapes/shapes_fp32.onnx"),
        ("profiles/coral-usb.toml", "golden/shapes/shapes_int8.onnx"),
    ] {
        let t = &run(profile, model)["host_transfer"];
        assert_eq!(
            (t["input_bytes"].as_u64(), t["output_bytes"].as_u64()),
            (Some(1024), Some(4)),
            "{profile}: {t}"
        );
    }
    assert!(run("profiles/rk3588.toml", "golden/shapes/shapes_int8.onnx").get("host_transfer").is_none());
    let text =
        edgecert(&["estimate", "golden/shapes/shapes_int8.onnx", "--profile", "profiles/coral-usb.toml"]);
    assert!(
        text.stdout.contains("host link   1024 bytes in, 4 out per inference: at least"),
        "{}",
        text.stdout
    );
}

/// The weights of `xtask/paddle_export.py`'s detector, from its layer list: convolutions
/// (3×3 unless 1×1 lateral or 2×2 transposed), biases where the layer has one, and four
/// figures per BatchNorm channel.
const PADDLE_DETECTOR_FLOAT_PARAMETERS: u64 = (3 * 8 * 9 + 4 * 8)
    + (8 * 16 * 9 + 4 * 16)
    + (16 * 24 * 9 + 4 * 24)
    + (24 * 32 * 9 + 4 * 32)
    + (16 * 16 + 16)
    + (24 * 16 + 16)
    + (32 * 16 + 16)
    + (48 * 16 * 9 + 16)
    + (16 * 8 * 9 + 4 * 8)
    + (8 * 8 * 4 + 8)
    + (8 * 4 + 1);

/// Its multiply-accumulates at 640×640, layer by layer (output pixels × output channels × the
/// kernel's inputs; a transposed convolution's input pixels × its kernel).
const PADDLE_DETECTOR_MACS_640: u64 = 320 * 320 * 8 * 27
    + 160 * 160 * 16 * 72
    + 80 * 80 * 24 * 144
    + 40 * 40 * 32 * 216
    + 160 * 160 * 16 * 16
    + 80 * 80 * 16 * 24
    + 40 * 40 * 16 * 32
    + 160 * 160 * 16 * 432
    + 160 * 160 * 8 * 144
    + 160 * 160 * 8 * 8 * 4
    + 320 * 320 * 8 * 4;

/// A detector exported by PaddlePaddle's own tools (paddle2onnx 2.1, opset 11, every weight in a
/// `Constant` node), and the same file after onnxruntime's symbolic shape inference, which
/// writes every intermediate shape as an expression (`floor(DynamicDimension.1/2 - 1/2) + 1`):
/// the second once inventoried as "MACs 0" with every shape unknown.
#[test]
fn paddle_exports_inventory_whole_whatever_shapes_they_declare() {
    let mut inventories = Vec::new();
    for file in ["db_det_opset11.onnx", "db_det_opset11_symbolic.onnx"] {
        let path = format!("tests/fixtures/paddle/{file}");
        let run = edgecert(&["inspect", &path, "--input-shape", "x:1x3x640x640", "--json"]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let inv: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(inv["opset"], 11, "{file}");
        assert_eq!(inv["total_macs"], PADDLE_DETECTOR_MACS_640, "{file}");
        assert_eq!(inv["outputs"][0]["shape"], serde_json::json!([1, 1, 640, 640]), "{file}");
        assert_eq!(inv["weight_bytes_by_dtype"]["float32"], 4 * PADDLE_DETECTOR_FLOAT_PARAMETERS, "{file}");
        inventories.push(inv);
    }
    assert!(inventories[0]["findings"].as_array().unwrap().is_empty(), "{}", inventories[0]["findings"]);
    let findings = inventories[1]["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "one finding for all the dropped declarations: {findings:?}");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains("183 intermediate tensors"), "{message}");
    assert!(message.contains("written as expressions"), "{message}");
    assert!(message.contains("`floor(DynamicDimension.1/2 - 1/2) + 1`"), "{message}");
}

/// A model with an operator no engine here knows, in the middle: every figure after it is
/// unknown and printed so (`?`, "at least"), never as 0, on `inspect` and `estimate` alike.
#[test]
fn figures_past_an_unknown_operator_read_unknown_never_zero() {
    use edgecert::model::writer::{encode, value_info_dims, Attr, Graph};
    let mut g = Graph::default();
    let x = g.input("input", &[1, 3, 16, 16]);
    let w = g.init_f32("w", &[8, 3, 3, 3], &[0.1; 8 * 27]);
    let c = g.node("Conv", &[&x, &w], vec![("pads", Attr::Ints(vec![1, 1, 1, 1]))]);
    let odd = g.node("Inverse", &[&c], vec![]);
    let p = g.node("GlobalAveragePool", &[&odd], vec![]);
    let f = g.node("Flatten", &[&p], vec![("axis", Attr::Int(1))]);
    let fw = g.init_f32("fw", &[5, 8], &[0.5; 40]);
    g.node_named("Gemm", &[&f, &fw], "logits", vec![("transB", Attr::Int(1))]);
    let mut m = g.into_model("test");
    let graph = m.graph.as_mut().unwrap();
    graph.node[1].domain = "com.microsoft".into();
    graph.output.push(value_info_dims("logits", pb::tensor_proto::DataType::Float, &["N", "5"]));
    m.opset_import.push(pb::OperatorSetIdProto { domain: "com.microsoft".into(), version: 1 });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unknown.onnx");
    std::fs::write(&path, encode(&m)).unwrap();
    let inspect = edgecert(&["inspect", s(&path)]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    let odd_node = "node `inverse_1` (Inverse)";
    assert!(
        inspect.stdout.contains(&format!("MACs        ? (unknown from {odd_node}")),
        "{}",
        inspect.stdout
    );
    assert!(inspect.stdout.contains("output      logits [?, 5] float32"), "{}", inspect.stdout);
    assert!(inspect.stdout.contains("peak activations at least "), "{}", inspect.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&edgecert(&["inspect", s(&path), "--json"]).stdout).unwrap();
    assert_eq!(json["total_macs"], serde_json::Value::Null);
    assert_eq!(json["outputs"][0]["shape"], serde_json::json!([null, 5]));
    let estimate = edgecert(&["estimate", s(&path), "--profile", "profiles/rk3588.toml"]);
    assert!(
        estimate.stdout.contains("latency     unknown: shapes of node `inverse_1` are unknown"),
        "{}",
        estimate.stdout
    );
    assert!(estimate.stdout.contains("memory      at least "), "{}", estimate.stdout);
    assert!(!estimate.stdout.contains("NaN"), "{}", estimate.stdout);
}

/// The estimate states the latency range the chip's own systematic error leaves: bounded on the
/// RK3588 (±55 %), open above on the Hailo-8 (±100 %: the chip could be any number of times
/// slower), in the text and in the JSON.
#[test]
fn estimate_states_the_range_the_chip_s_systematic_error_leaves() {
    let model = "golden/shapes/shapes_int8.onnx";
    let latency_line = |profile: &str| {
        let run = edgecert(&["estimate", model, "--profile", profile]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.lines().find(|l| l.starts_with("latency ")).unwrap().to_string()
    };
    let bounded = latency_line("profiles/rk3588.toml");
    assert!(bounded.contains(" ms were it off by its systematic error, ±55 %"), "{bounded}");
    assert!(!bounded.contains("or any slower"), "{bounded}");
    let open = latency_line("profiles/hailo8.toml");
    assert!(open.contains(" ms or any slower were it off by its systematic error, ±100 %"), "{open}");
    let json: serde_json::Value = serde_json::from_str(
        &edgecert(&["estimate", model, "--profile", "profiles/hailo8.toml", "--json"]).stdout,
    )
    .unwrap();
    let range = &json["latency_ms"]["held_out_range"];
    assert!(range[0].as_f64().is_some_and(|low| low > 0.0) && range[1].is_null(), "{range}");
    assert_eq!(json["latency_ms"]["systematic_error"]["relative"], 1.0, "{json}");
}
