//! A certificate covers exactly what it claims: a filtered, skipped or crashed check is listed as
//! not run, the certificate can then never PASS, and the terminal counts the three outcomes apart.

use crate::common;

use common::*;
use edgecert::model::writer::{encode, Graph};

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap_or_else(|| x["check"].as_str().unwrap()).to_string())
        .collect()
}

#[test]
fn a_filtered_run_never_yields_a_pass_certificate() {
    let out = tempfile::tempdir().unwrap();
    let run = edgecert(&[
        "certify",
        "--out",
        s(out.path()),
        "--profile",
        "profiles/ascend310b.toml",
        "--golden",
        "golden/shapes",
        "shapes::ascend310b::size",
    ]);
    assert_eq!(run.code, 1, "a partial certificate must not exit 0: {}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("check shapes::ascend310b::size ... PASS"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("certify result: INCONCLUSIVE. 1 passed; 0 failed; 0 inconclusive; 7 filtered out"),
        "{}",
        run.stdout
    );
    let cert = certificate(out.path(), "shapes", "ascend310b");
    assert_eq!(cert["verdict"], "INCONCLUSIVE");
    assert_eq!(names(&cert["coverage"]["executed"]), ["size"]);
    assert_eq!(names(&cert["coverage"]["planned"]).len(), 8);
    let not_run = cert["coverage"]["not_run"].as_array().unwrap();
    assert_eq!(not_run.len(), 7);
    assert!(not_run.iter().all(|n| n["reason"] == "filtered"), "{not_run:?}");
    assert!(
        cert["verdict_reason"].as_str().unwrap().starts_with("incomplete: 7 checks of 8 planned did not run"),
        "{}",
        cert["verdict_reason"]
    );
    let junit = std::fs::read_to_string(out.path().join("junit.xml")).unwrap();
    assert!(junit.contains("skipped=\"7\""), "{junit}");
}

#[test]
fn skipped_checks_are_listed_with_the_pattern_that_skipped_them() {
    let out = tempfile::tempdir().unwrap();
    let run = edgecert(&[
        "certify",
        "-q",
        "--out",
        s(out.path()),
        "--profile",
        "profiles/ascend310b.toml",
        "--golden",
        "golden/shapes",
        "--skip",
        "accuracy",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stdout.contains("; 2 skipped;"), "{}", run.stdout);
    let cert = certificate(out.path(), "shapes", "ascend310b");
    assert_ne!(cert["verdict"], "PASS");
    let not_run = cert["coverage"]["not_run"].as_array().unwrap();
    assert_eq!(names(&cert["coverage"]["not_run"]), ["accuracy", "accuracy_vs_fp32"]);
    assert_eq!(not_run[0]["reason"], "skipped");
    assert_eq!(not_run[0]["detail"], "excluded by --skip `accuracy`");
    assert!(cert.get("metrics").is_none(), "no replay ran, so no metric values are claimed");
}

#[test]
fn a_filter_that_selects_nothing_is_a_usage_error() {
    let out = tempfile::tempdir().unwrap();
    let run = edgecert(&["certify", "--out", s(out.path()), "no-such-check"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no planned check matches the filters"), "{}", run.stderr);
    assert!(files_under(out.path()).is_empty());
}

/// A model that takes the ADAS input but emits a flat vector where the detection metric expects
/// a grid: the metric code indexes out of bounds.
fn flat_output_model(dir: &std::path::Path) -> std::path::PathBuf {
    let mut g = Graph::default();
    let x = g.input("input", &[1, 3, 160, 320]);
    let pooled = g.node("GlobalAveragePool", &[&x], vec![]);
    g.node_named("Flatten", &[&pooled], "scores", vec![]);
    g.output("scores", Some(&[1, 3]));
    let path = dir.join("flat.onnx");
    std::fs::write(&path, encode(&g.into_model("edgecert-test"))).unwrap();
    path
}

#[test]
fn a_panic_inside_a_check_becomes_that_checks_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = flat_output_model(dir.path());
    let out = dir.path().join("out");
    let run = edgecert(&[
        "certify",
        "--out",
        s(&out),
        "--profile",
        "profiles/rk3588.toml",
        "--golden",
        "golden/adas",
        "--model",
        s(&model),
    ]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        !run.stderr.contains("panicked"),
        "the panic is the check's error, not the terminal's: {}",
        run.stderr
    );
    assert!(run.stdout.contains("check adas::rk3588::accuracy ... ERROR"), "{}", run.stdout);
    assert!(run.stdout.contains("(3 errors)"), "{}", run.stdout);
    let cert = certificate(&out, "adas", "rk3588");
    assert_eq!(cert["verdict"], "INCONCLUSIVE");
    for name in ["accuracy", "accuracy_vs_fp32", "accuracy_hardest_slice"] {
        let c = check(&cert, name);
        assert_eq!(c["status"], "error", "{c}");
        assert_eq!(c["verdict"], "INCONCLUSIVE");
        let reason = c["reason"].as_str().unwrap();
        assert!(reason.contains("panicked at") && reason.contains("index out of bounds"), "{reason}");
    }
    let errors: Vec<_> =
        cert["coverage"]["not_run"].as_array().unwrap().iter().filter(|n| n["reason"] == "error").collect();
    assert_eq!(errors.len(), 3);
    assert_eq!(check(&cert, "size")["verdict"], "PASS", "the other checks still ran");
}

#[test]
fn the_closing_line_counts_fail_and_inconclusive_apart() {
    let dir = tempfile::tempdir().unwrap();
    // A slow NPU fails latency; the stock profile leaves thermal INCONCLUSIVE.
    let slow = slow_npu_profile(dir.path());
    let out = dir.path().join("out");
    let run = edgecert(&["certify", "--out", s(&out), "--profile", s(&slow), "--golden", "golden/shapes"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cert = certificate(&out, "shapes", "rk3588");
    let count = |v: &str| cert["checks"].as_array().unwrap().iter().filter(|c| c["verdict"] == v).count();
    let (pass, fail, inconclusive) = (count("PASS"), count("FAIL"), count("INCONCLUSIVE"));
    assert!(fail >= 1 && inconclusive >= 1, "the fixture needs both outcomes: {cert}");
    let closing =
        format!("certify result: FAILED. {pass} passed; {fail} failed; {inconclusive} inconclusive;");
    assert!(run.stdout.contains(&closing), "expected `{closing}` in {}", run.stdout);
    assert!(run.stdout.contains("check shapes::rk3588::latency ... FAIL"), "{}", run.stdout);
    assert!(run.stdout.contains("check shapes::rk3588::thermal ... INCONCLUSIVE"), "{}", run.stdout);
}

#[test]
fn plan_json_lists_every_planned_check_and_marks_the_unselected() {
    let run = edgecert(&[
        "plan",
        "--json",
        "--profile",
        "profiles/rk3588.toml",
        "--golden",
        "golden/smt",
        "latency",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let checks = plan["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 9, "smt names a hardest slice, so all nine checks are planned");
    let selected: Vec<_> =
        checks.iter().filter(|c| c.get("not_run").is_none()).map(|c| c["name"].clone()).collect();
    assert_eq!(selected, ["smt::rk3588::latency"]);
    assert_eq!(checks[0]["id"], serde_json::json!({"family": "smt", "profile": "rk3588", "check": "size"}));
    assert_eq!(plan["families"][0]["golden"]["sha256"].as_str().unwrap().len(), 64);
    let listed = edgecert(&[
        "certify",
        "--list",
        "--profile",
        "profiles/rk3588.toml",
        "--golden",
        "golden/smt",
        "latency",
    ]);
    assert_eq!(listed.stdout, "smt::rk3588::latency: test\n");
}

#[test]
fn the_json_format_streams_every_event_in_order() {
    let out = tempfile::tempdir().unwrap();
    let run = edgecert(&[
        "certify",
        "--format",
        "json",
        "--out",
        s(out.path()),
        "--profile",
        "profiles/rk3588.toml",
        "--golden",
        "golden/shapes",
        "--skip",
        "thermal",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let events: Vec<serde_json::Value> =
        run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    assert_eq!(kinds.iter().filter(|k| **k == "check_started").count(), 7);
    assert_eq!(kinds.iter().filter(|k| **k == "certificate_issued").count(), 1);
    let finished: Vec<_> = events.iter().filter(|e| e["event"] == "check_finished").collect();
    assert_eq!(
        finished[0]["id"],
        serde_json::json!({"family": "shapes", "profile": "rk3588", "check": "size"})
    );
    assert_eq!(finished[0]["record"]["verdict"], "PASS");
    let latency = events
        .iter()
        .find(|e| e["event"] == "observation_recorded" && e["observation"]["kind"] == "latency")
        .expect("the latency observation is an event");
    assert_eq!(latency["observation"]["basis"], "emulated");
    assert_eq!(latency["observation"]["samples"], 1000);
    let summary = &events.last().unwrap()["summary"];
    assert_eq!(summary["skipped"], 1);
    let issued = &events.iter().find(|e| e["event"] == "certificate_issued").unwrap()["certificate"];
    assert_eq!(
        issued,
        &certificate(out.path(), "shapes", "rk3588"),
        "the stream carries the certificate written"
    );
}
