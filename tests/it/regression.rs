//! Regression tests named after the bugs they pin.

use crate::common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::*;

/// Runs edgecert with its standard output closed by the reader before anything is written.
fn with_closed_stdout(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgecert"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), stderr)
}

#[test]
fn inspect_into_a_closed_pipe_exits_quietly() {
    let (code, stderr) = with_closed_stdout(&["inspect", "golden/adas/adas_int8.onnx"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.is_empty(), "no panic, no error: {stderr}");
}

#[test]
fn certify_into_a_closed_pipe_still_writes_its_reports() {
    let out = tempfile::tempdir().unwrap();
    let (code, stderr) = with_closed_stdout(&[
        "certify",
        "--out",
        s(out.path()),
        "--profile",
        "profiles/rk3588.toml",
        "--golden",
        "golden/shapes",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(certificate(out.path(), "shapes", "rk3588")["coverage"]["not_run"], serde_json::json!([]));
}

#[test]
fn two_profiles_with_one_chip_name_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let twin = derived_profile(
        dir.path(),
        "rk3588",
        "rk3588-copy",
        &[("display_name = ", "display_name = \"copy\"\n# ")],
    );
    let out = dir.path().join("out");
    let run =
        edgecert(&["certify", "--out", s(&out), "--profile", "profiles/rk3588.toml", "--profile", s(&twin)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("profiles/rk3588.toml") && run.stderr.contains("rk3588-copy.toml"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("two chip profiles are named `rk3588`"), "{}", run.stderr);
    assert!(files_under(&out).is_empty());
}

#[test]
fn two_golden_sets_with_one_family_name_are_refused_naming_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let copy = copied_golden(dir.path(), "shapes");
    let out = dir.path().join("out");
    let run = edgecert(&["certify", "--out", s(&out), "--golden", "golden/shapes", "--golden", s(&copy)]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("golden/shapes/family.toml"), "{}", run.stderr);
    assert!(run.stderr.contains(s(&copy.join("family.toml"))), "{}", run.stderr);
    assert!(files_under(&out).is_empty());
}
