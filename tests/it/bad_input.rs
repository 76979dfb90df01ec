//! Bad input gets a clear error and exit code 2, never a panic, and no report is written.

use crate::common;

use std::path::Path;

use common::*;

/// Runs `certify` with `args` into a fresh out dir; asserts exit 2, the error's words, and that
/// nothing was written.
fn certify_rejects(out: &Path, args: &[&str], words: &[&str]) {
    let mut all = vec!["certify", "--out", s(out)];
    all.extend_from_slice(args);
    let run = edgecert(&all);
    assert_eq!(run.code, 2, "expected exit 2 for {args:?}: {}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    for w in words {
        assert!(run.stderr.contains(w), "error for {args:?} should mention `{w}`: {}", run.stderr);
    }
    assert!(files_under(out).is_empty(), "no report may be written: {:?}", files_under(out));
}

#[test]
fn a_missing_profile_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    certify_rejects(
        &dir.path().join("out"),
        &["--profile", "profiles/nonexistent.toml"],
        &["profiles/nonexistent.toml", "No such file"],
    );
}

#[test]
fn broken_toml_points_at_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let broken = derived_profile(dir.path(), "rk3588", "broken", &[("[npu]", "[npu")]);
    let line = std::fs::read_to_string(&broken).unwrap().lines().position(|l| l == "[npu").unwrap() + 1;
    certify_rejects(
        &dir.path().join("out"),
        &["--profile", s(&broken)],
        &["broken.toml", &format!(":{line}:")],
    );
}

#[test]
fn a_negative_bandwidth_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let bad = derived_profile(
        dir.path(),
        "rk3588",
        "negative",
        &[("dram_bandwidth_gbps = 34.0", "dram_bandwidth_gbps = -34.0")],
    );
    certify_rejects(
        &dir.path().join("out"),
        &["--profile", s(&bad)],
        &["negative.toml", "memory.dram_bandwidth_gbps", "positive"],
    );
}

#[test]
fn a_truncated_onnx_model_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(root().join("golden/shapes/shapes_int8.onnx")).unwrap();
    let cut = dir.path().join("truncated.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    certify_rejects(
        &dir.path().join("out"),
        &["--golden", "golden/shapes", "--model", s(&cut)],
        &["truncated.onnx", "truncated"],
    );
}

#[test]
fn a_golden_sample_of_the_wrong_shape_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let golden = copied_golden(dir.path(), "shapes");
    let img = image::GrayImage::new(31, 32);
    img.save(golden.join("samples/00017.png")).unwrap();
    certify_rejects(
        &dir.path().join("out"),
        &["--golden", s(&golden)],
        &["00017.png", "31x32", "expected 32x32"],
    );
}

#[test]
fn a_changed_golden_set_fails_its_digest() {
    let dir = tempfile::tempdir().unwrap();
    let golden = copied_golden(dir.path(), "shapes");
    let labels = golden.join("labels.npy");
    let mut bytes = std::fs::read(&labels).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&labels, bytes).unwrap();
    certify_rejects(&dir.path().join("out"), &["--golden", s(&golden)], &["family.toml", "dataset.sha256"]);
}

#[test]
fn a_missing_golden_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    certify_rejects(&dir.path().join("out"), &["--golden", "golden/nope"], &["golden/nope/family.toml"]);
}

#[test]
fn a_failed_run_leaves_the_previous_reports_whole() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ok = edgecert(&[
        "certify",
        "-q",
        "--out",
        s(&out),
        "--profile",
        "profiles/ascend310b.toml",
        "--golden",
        "golden/shapes",
    ]);
    assert!(ok.code <= 1, "{}", ok.stderr);
    let before = std::fs::read(out.join("shapes/ascend310b/certificate.json")).unwrap();
    let bad = edgecert(&["certify", "--out", s(&out), "--profile", "profiles/missing.toml"]);
    assert_eq!(bad.code, 2);
    assert_eq!(std::fs::read(out.join("shapes/ascend310b/certificate.json")).unwrap(), before);
    let leftovers: Vec<_> =
        files_under(&out).into_iter().filter(|p| p.to_string_lossy().contains(".tmp-")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn usage_errors_exit_2() {
    let run = edgecert(&["certify", "--backend", "quantum"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("quantum"), "{}", run.stderr);
    let run = edgecert(&["certify", "--model", "x.onnx"]);
    assert_eq!(run.code, 2, "--model needs --golden: {}", run.stderr);
}

/// A board whose chain is broken is refused before anything runs, naming the file and field.
#[test]
fn a_board_with_a_broken_extends_chain_names_file_and_field() {
    // (text of board.toml, words the error must contain)
    let cases: &[(&str, &[&str])] = &[
        ("extends = \"no-such-chip\"\n", &["board.toml:1:", "field `extends`", "no profile `no-such-chip`"]),
        (
            "extends = \"../profiles/rk3588\"\n",
            &["board.toml:1:", "field `extends`", "paths are not accepted"],
        ),
        ("extends = \"board\"\n", &["board.toml:1:", "field `extends`", "cycle: board.toml -> board.toml"]),
    ];
    for (text, words) in cases {
        let dir = tempfile::tempdir().unwrap();
        let board = dir.path().join("board.toml");
        std::fs::write(&board, text).unwrap();
        certify_rejects(
            &dir.path().join("out"),
            &["--profile", s(&board), "--golden", "golden/shapes"],
            words,
        );
        let check = edgecert(&["profile", "check", s(&board)]);
        assert_eq!(check.code, 2, "{}", check.stderr);
        assert!(words.iter().all(|w| check.stderr.contains(w)), "{}", check.stderr);
    }
}
