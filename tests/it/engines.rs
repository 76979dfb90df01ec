//! The engine seam from outside: `--engine onnxruntime` certifies as tract does and says so,
//! `auto` uses onnxruntime where it is installed and says why it did not, a missing or bogus
//! library is bad input, and `--cross-check` replays on both engines, reports their agreement,
//! and makes accuracy INCONCLUSIVE where they would decide it differently.
//!
//! Tests that need onnxruntime skip, printing why, where it is absent (`.ci/run` installs it).

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use edgecert::model::writer::Attr;

/// The onnxruntime library edgecert would load, or `None` after printing why the test skips.
fn onnxruntime() -> Option<PathBuf> {
    edgecert::engine::locate_onnxruntime()
        .map_err(|why| eprintln!("skipped: onnxruntime is not installed here: {why}"))
        .ok()
}

/// Whether this CPU gives onnxruntime's int8 convolutions exact products. On x86 without VNNI,
/// onnxruntime (MLAS) runs u8×s8 products through `vpmaddubsw`, whose 16-bit pair sums saturate
/// on weights quantized over the full int8 range (onnxruntime's quantization docs advise
/// `reduce_range` for such CPUs): there the shapes int8 model scores 0.934 on onnxruntime and
/// 0.996 on tract (seen on an AMD EPYC with AVX2 only), and the engines rightly disagree.
fn int8_products_exact() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return true;
    }
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let exact =
        cpuinfo.split_whitespace().any(|flag| ["avx512_vnni", "avx_vnni", "amx_int8"].contains(&flag));
    if !exact {
        eprintln!("note: this CPU has no VNNI; onnxruntime's int8 products saturate here");
    }
    exact
}

/// Certifies the shapes family on RK3588 into `out` with `extra` arguments and environment.
fn certify_shapes(out: &Path, extra: &[&str], env: &[(&str, Option<&str>)]) -> Run {
    let mut args =
        vec!["certify", "--out", s(out), "--profile", "profiles/rk3588.toml", "--golden", "golden/shapes"];
    args.extend_from_slice(extra);
    edgecert_with_env(&args, env)
}

fn metric(cert: &serde_json::Value, which: &str) -> f64 {
    cert["metrics"]["values"]["primary"][which].as_f64().unwrap_or_else(|| panic!("{}", cert["metrics"]))
}

#[test]
fn onnxruntime_certifies_as_tract_does_and_the_certificate_names_it() {
    let Some(_) = onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let env = [("EDGECERT_CACHE_DIR", Some(s(&cache)))];
    let mut certs = Vec::new();
    for engine in ["tract", "onnxruntime"] {
        let out = dir.path().join(engine);
        let run = certify_shapes(&out, &["-q", "--engine", engine], &env);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        certs.push(certificate(&out, "shapes", "rk3588"));
    }
    let (tract, ort) = (&certs[0], &certs[1]);
    assert_eq!(tract["tool"]["engine"], "tract-onnx 0.23.9");
    let name = ort["tool"]["engine"].as_str().unwrap();
    assert!(name.starts_with("onnxruntime 1."), "{name}");
    // The same int8 model on the same 500 samples: the engines agree to within a few samples
    // where the CPU's int8 products are exact; where they saturate, onnxruntime scores lower
    // and its retention against FP32 fails where tract's passes.
    let (a, b) = (metric(tract, "compressed"), metric(ort, "compressed"));
    let exact = int8_products_exact();
    if exact {
        assert!((a - b).abs() <= 0.01, "tract {a} vs onnxruntime {b}");
    } else {
        assert!(b < a - 0.01, "saturating int8 products cost accuracy: tract {a} vs onnxruntime {b}");
        assert_eq!(check(tract, "accuracy_vs_fp32")["verdict"], "PASS");
        assert_eq!(check(ort, "accuracy_vs_fp32")["verdict"], "FAIL");
    }
    let agreeing: &[&str] = if exact {
        &["accuracy", "accuracy_vs_fp32", "size", "latency"]
    } else {
        &["accuracy", "size", "latency"]
    };
    for name in agreeing {
        assert_eq!(check(tract, name)["verdict"], check(ort, name)["verdict"], "{name}");
    }
    // The FP32 reference is cached per engine: each run replayed its own.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}

#[test]
fn onnxruntime_is_found_in_a_virtualenv_without_ort_dylib_path() {
    let Some(library) = onnxruntime() else { return };
    // <venv>/lib/python3.x/site-packages/onnxruntime/capi/libonnxruntime.so.*
    let Some(venv) = library.ancestors().nth(6).filter(|v| v.join("pyvenv.cfg").is_file()) else {
        eprintln!("skipped: {} is not inside a virtualenv", library.display());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [("ORT_DYLIB_PATH", None), ("VIRTUAL_ENV", Some(s(venv)))];
    let run = certify_shapes(dir.path(), &["--engine", "onnxruntime", "shapes::rk3588::size"], &env);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("engine: onnxruntime 1."), "{}", run.stdout);
    let cert = certificate(dir.path(), "shapes", "rk3588");
    assert!(cert["tool"]["engine"].as_str().unwrap().starts_with("onnxruntime 1."));
}

#[test]
fn auto_falls_back_to_tract_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-libonnxruntime.so");
    let env = [("ORT_DYLIB_PATH", Some(s(&missing)))];
    let run = certify_shapes(dir.path(), &["--engine", "auto", "shapes::rk3588::size"], &env);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let note = format!(
        "engine: tract-onnx 0.23.9 (--engine auto fell back to tract: ORT_DYLIB_PATH names `{}`, which is not a file)",
        missing.display()
    );
    assert!(run.stdout.contains(&note), "{}", run.stdout);
    assert_eq!(certificate(dir.path(), "shapes", "rk3588")["tool"]["engine"], "tract-onnx 0.23.9");
}

#[test]
fn auto_uses_onnxruntime_where_installed() {
    let Some(_) = onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = certify_shapes(dir.path(), &["--engine", "auto", "shapes::rk3588::size"], &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let cert = certificate(dir.path(), "shapes", "rk3588");
    assert!(cert["tool"]["engine"].as_str().unwrap().starts_with("onnxruntime 1."), "{}", cert["tool"]);
}

#[test]
fn an_onnxruntime_that_cannot_be_loaded_is_bad_input_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.so");
    let bogus = dir.path().join("libonnxruntime.so");
    std::fs::write(&bogus, "not a shared library").unwrap();
    let cases: [(&Path, &[&str], String); 3] = [
        (
            &missing,
            &["--engine", "onnxruntime"],
            format!("--engine onnxruntime: ORT_DYLIB_PATH names `{}`", missing.display()),
        ),
        (
            &bogus,
            &["--engine", "onnxruntime"],
            format!("`{}` is not a usable onnxruntime library", bogus.display()),
        ),
        (
            &missing,
            &["--cross-check", "--engine", "tract"],
            "--cross-check replays on tract and onnxruntime: ".into(),
        ),
    ];
    for (library, args, want) in cases {
        let out = dir.path().join("out");
        let run = certify_shapes(&out, args, &[("ORT_DYLIB_PATH", Some(s(library)))]);
        assert_eq!(run.code, 2, "{args:?}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(&want), "{args:?}: expected `{want}` in\n{}", run.stderr);
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
}

#[test]
fn cross_check_reports_both_engines_and_recomputes() {
    let Some(_) = onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = certify_shapes(&dir.path().join("out"), &["-q", "--cross-check"], &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let path = dir.path().join("out/shapes/rk3588/certificate.json");
    let cert = certificate(&dir.path().join("out"), "shapes", "rk3588");
    let x = &cert["cross_check"];
    assert!(x["verdict_engine"].as_str().unwrap().starts_with("onnxruntime 1."), "{x}");
    assert_eq!(x["verdict_engine"], cert["tool"]["engine"]);
    assert_eq!(x["engine"], "tract-onnx 0.23.9");
    let output = &x["agreement"][0];
    let top1 =
        output["statistics"].as_array().unwrap().iter().find(|s| s["statistic"] == "top1_agreement").unwrap();
    if int8_products_exact() {
        assert!(top1["value"].as_f64().unwrap() >= 0.99, "{output}");
    } else {
        // Saturating int8 products: the engines part on a few percent of the samples, and the
        // retention check, which one engine passes and the other fails, is INCONCLUSIVE.
        assert!(top1["value"].as_f64().unwrap() < 0.99, "{output}");
        let retention = check(&cert, "accuracy_vs_fp32");
        assert_eq!(retention["verdict"], "INCONCLUSIVE", "{retention}");
        let reason = retention["reason"].as_str().unwrap();
        assert!(reason.starts_with("the engines disagree: FAIL on onnxruntime 1."), "{reason}");
    }
    assert_eq!(output["samples"], 500);
    let accuracy = check(&cert, "accuracy");
    assert_eq!(accuracy["verdict"], "PASS", "{accuracy}");
    let reason = accuracy["reason"].as_str().unwrap();
    assert!(reason.contains("(verdict rests on it); tract-onnx 0.23.9 agrees (0."), "{reason}");

    let recomputed = edgecert(&["verify", s(&path), "--recompute"]);
    assert_eq!(recomputed.code, 0, "{}\n{}", recomputed.stdout, recomputed.stderr);
    assert!(recomputed.stdout.contains("ok: check accuracy: PASS reproduced"), "{}", recomputed.stdout);

    // Negative control: had tract predicted the wrong class on every sample, the engines would
    // disagree, and the accuracy check could not PASS on one engine's word.
    rebind_observations(&path, |o| {
        let x = &mut o["replay"]["value"]["cross_check"]["compressed"];
        let truth: Vec<serde_json::Value> = x["truth"].as_array().unwrap().clone();
        x["predicted"] =
            truth.iter().map(|t| serde_json::Value::from((t.as_u64().unwrap() + 1) % 4)).collect();
    });
    let recomputed = edgecert(&["verify", s(&path), "--recompute"]);
    assert_eq!(recomputed.code, 1, "{}\n{}", recomputed.stdout, recomputed.stderr);
    for want in [
        "FAILED: check accuracy does not reproduce: ",
        "recomputed \"the engines disagree: PASS on onnxruntime 1.",
        "but FAIL on tract-onnx 0.23.9 (0.0000); a chip runs integer arithmetic, so decide on the engine",
        "; verdict: certified \"PASS\", recomputed \"INCONCLUSIVE\"",
    ] {
        assert!(recomputed.stdout.contains(want), "expected `{want}` in\n{}", recomputed.stdout);
    }
}

#[test]
fn an_op_only_onnxruntime_runs_is_judged_by_its_replay_not_by_tracts_register() {
    let Some(_) = onnxruntime() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The shapes model with its first Conv as com.microsoft FusedConv (the ReLU that follows it
    // applied twice changes nothing): onnxruntime implements it, tract's register does not.
    let mut model = int8_model_of("shapes");
    let graph = model.graph.as_mut().unwrap();
    let conv = graph.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    conv.op_type = "FusedConv".into();
    conv.domain = "com.microsoft".into();
    conv.attribute.push(edgecert::model::writer::attribute("activation", Attr::Str("Relu")));
    model
        .opset_import
        .push(tract_onnx::pb::OperatorSetIdProto { domain: "com.microsoft".into(), version: 1 });
    let path = write_model(dir.path(), "fusedconv.onnx", &model);
    let certify = |engine: &str| {
        let out = dir.path().join(engine);
        let args = ["-q", "--engine", engine, "--model", s(&path), "operators", "accuracy"];
        let run = certify_shapes(&out, &args, &[]);
        assert!(run.code <= 1, "{}\n{}", run.stdout, run.stderr);
        certificate(&out, "shapes", "rk3588")
    };
    // Replayed on tract, the gap decides: the model cannot run.
    let tract = certify("tract");
    assert_eq!(check(&tract, "operators")["verdict"], "FAIL", "{}", check(&tract, "operators"));
    // Replayed on onnxruntime, the gap is a finding and the replay decides: it ran.
    let ort = certify("onnxruntime");
    let operators = check(&ort, "operators");
    assert_ne!(operators["verdict"], "FAIL", "{operators}");
    let findings = operators["findings"].to_string();
    assert!(findings.contains("is outside tract's register; onnxruntime 1."), "{findings}");
    let accuracy = check(&ort, "accuracy");
    assert!(accuracy["measured"].as_f64().is_some(), "onnxruntime replayed the model: {accuracy}");
}
