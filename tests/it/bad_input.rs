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
    std::fs::write(golden.join("samples/00017.png"), encode_png(31, 32, 1, &[0; 31 * 32])).unwrap();
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
    // The last sample relabelled to another of the four classes: still a valid label.
    let last = bytes.len() - 4;
    let class = f32::from_le_bytes(bytes[last..].try_into().unwrap());
    bytes[last..].copy_from_slice(&((class + 1.0) % 4.0).to_le_bytes());
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

/// Runs `edgecert` with `args`, killed (and the test failed) if it has not ended in 30 s: a
/// command that opened a FIFO to read it would wait for a writer forever.
fn edgecert_within_30s(args: &[&str]) -> Run {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_edgecert"))
        .args(args)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`edgecert {}` was still running after 30 s: it blocked on a FIFO", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn make_fifo(path: &Path) {
    let c_path = std::ffi::CString::new(s(path)).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo(3) only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
}

/// A FIFO where a profile, a model, a golden set's labels, a certificate or a key belongs is
/// refused at once, naming it, with exit 2 (it used to hang the run waiting for a writer).
#[test]
fn a_fifo_named_as_any_input_is_refused_at_once_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let pipe = dir.path().join("input.pipe");
    make_fifo(&pipe);
    let golden = copied_golden(dir.path(), "shapes");
    let labels = golden.join("labels.npy");
    std::fs::remove_file(&labels).unwrap();
    make_fifo(&labels);
    let out = dir.path().join("out");
    let issued = dir.path().join("issued");
    let run = certify_quietly(&issued, "profiles/rk3588.toml", "golden/shapes", &[]);
    assert!(run.code <= 1, "{}", run.stderr);
    let cert = issued.join("shapes/rk3588/certificate.json");
    let cases: Vec<(Vec<&str>, &Path)> = vec![
        (vec!["certify", "--out", s(&out), "--golden", "golden/shapes", "--profile", s(&pipe)], &pipe),
        (vec!["certify", "--out", s(&out), "--golden", "golden/shapes", "--model", s(&pipe)], &pipe),
        (
            vec!["certify", "--out", s(&out), "--golden", s(&golden), "--profile", "profiles/rk3588.toml"],
            &labels,
        ),
        (vec!["inspect", s(&pipe)], &pipe),
        (vec!["profile", "check", s(&pipe)], &pipe),
        (vec!["verify", s(&pipe)], &pipe),
        (vec!["verify", s(&cert), "--key", s(&pipe)], &pipe),
    ];
    for (args, named) in cases {
        let run = edgecert_within_30s(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(s(named)) && run.stderr.contains("expected a regular file, found a FIFO"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(files_under(&out).is_empty(), "{args:?} wrote {:?}", files_under(&out));
    }
}

/// A detection label whose box leaves the image is refused before any model runs, naming the
/// label file, the row and the box; exit 2, nothing written.
#[test]
fn a_detection_box_outside_the_image_is_refused_naming_file_row_and_box() {
    let dir = tempfile::tempdir().unwrap();
    let golden = copied_golden(dir.path(), "adas");
    let labels = golden.join("labels.npy");
    let mut bytes = std::fs::read(&labels).unwrap();
    // A version-1 `.npy`: magic (6 bytes), version (2), header length (u16), header, then
    // little-endian f32 data of shape (N, K, 5).
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = String::from_utf8_lossy(&bytes[10..10 + header_len]).into_owned();
    let shape = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap().to_string();
    let objects: usize = shape.split(',').nth(1).unwrap().trim().parse().unwrap();
    let value = |bytes: &[u8], index: usize| {
        let at = 10 + header_len + 4 * index;
        f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
    };
    let row = (0..).find(|&r| value(&bytes, r * objects * 5) >= 0.0).unwrap();
    let x2 = 10 + header_len + 4 * (row * objects * 5 + 3);
    bytes[x2..x2 + 4].copy_from_slice(&10_000f32.to_le_bytes());
    std::fs::write(&labels, bytes).unwrap();
    certify_rejects(
        &dir.path().join("out"),
        &["--golden", s(&golden), "--profile", "profiles/rk3588.toml"],
        &[s(&labels), &format!("row {row}: object 0: box ("), ", 10000, ", "lies outside the 320×160 image"],
    );
}
