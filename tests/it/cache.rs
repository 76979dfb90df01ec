//! The FP32 reference's contributions are cached by what they depend on: a second run replays
//! only the compressed model and issues the same certificate; an edited entry is ignored and
//! replaced; `--no-cache` replays both.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Certifies shapes on one chip with the cache in `cache`; whether the run took the
/// reference from it, and the certificate without its volatile members.
fn certify_with_cache(cache: &Path, out: &Path, extra: &[&str]) -> (bool, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_edgecert"))
        .args([
            "certify",
            "--format",
            "json",
            "--golden",
            "golden/shapes",
            "--profile",
            "profiles/rk3588.toml",
        ])
        .args(["--out", s(out)])
        .args(extra)
        .env("EDGECERT_CACHE_DIR", cache)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let replay = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["observation"]["kind"] == "replay")
        .expect("a replay observation in the event stream");
    let cert = without_volatile(certificate(out, "shapes", "rk3588"));
    (replay["observation"]["reference_cached"].as_bool().unwrap(), cert)
}

#[test]
fn a_second_run_takes_the_reference_from_the_cache_and_issues_the_same_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (first, a) = certify_with_cache(&cache, &dir.path().join("a"), &[]);
    assert!(!first, "an empty cache cannot answer");
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (second, b) = certify_with_cache(&cache, &dir.path().join("b"), &[]);
    assert!(second, "the reference's contributions came from the cache");
    assert_eq!(a, b);
    let observations =
        |p: &str| std::fs::read(dir.path().join(p).join("shapes/rk3588/observations.json")).unwrap();
    assert!(observations("a") == observations("b"), "the raw observations are the same bytes");

    // An edited entry is not trusted: the reference runs again and the entry is rewritten.
    let text = std::fs::read_to_string(&entries[0]).unwrap();
    std::fs::write(&entries[0], text.replacen("\"predicted\":[", "\"predicted\":[null,", 1)).unwrap();
    let (third, c) = certify_with_cache(&cache, &dir.path().join("c"), &[]);
    assert!(!third, "an edited entry is ignored");
    assert_eq!(a, c);
    assert_eq!(std::fs::read_to_string(&entries[0]).unwrap(), text, "and replaced by a whole one");

    let (uncached, d) = certify_with_cache(&cache, &dir.path().join("d"), &["--no-cache"]);
    assert!(!uncached, "--no-cache replays both models");
    assert_eq!(a, d);
}
