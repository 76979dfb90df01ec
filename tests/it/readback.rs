//! The certificate reads back: `edgecert show` prints the table the run printed, the checked-in
//! JSON Schema matches the code, the id is the digest of the canonical body (so an edited
//! certificate is refused), and a snapshot pins the whole layout.

use crate::common;

use std::path::Path;

use common::*;
use edgecert::certificate::schema::{canonical_json, Certificate};

/// The verdict table in a run's or `show`'s output: from its top border to its bottom border.
fn table(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.iter().position(|l| l.starts_with('┌')).unwrap_or_else(|| panic!("no table in {text}"));
    let end = lines.iter().position(|l| l.starts_with('└')).unwrap();
    lines[start..=end].join("\n")
}

fn certify_shapes_on_ascend(out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "certify",
        "--out",
        s(out),
        "--profile",
        "profiles/ascend310b.toml",
        "--golden",
        "golden/shapes",
    ];
    args.extend_from_slice(extra);
    let run = edgecert(&args);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    run
}

#[test]
fn show_prints_the_table_of_the_run_that_wrote_the_certificate() {
    let out = tempfile::tempdir().unwrap();
    let run = certify_shapes_on_ascend(out.path(), &["--skip", "power"]);
    let path = out.path().join("shapes/ascend310b/certificate.json");
    let shown = edgecert(&["show", s(&path)]);
    assert_eq!(shown.code, 1, "show exits as the certificate's verdict: {}", shown.stderr);
    assert_eq!(table(&shown.stdout), table(&run.stdout));
    assert!(table(&shown.stdout).contains("NOT RUN (skipped)"), "{}", shown.stdout);
    let cert = certificate(out.path(), "shapes", "ascend310b");
    assert!(shown.stdout.contains(&format!("certificate {}", cert["certificate_id"].as_str().unwrap())));
    assert!(
        shown
            .stdout
            .contains("verdict: INCONCLUSIVE: incomplete: 1 check of 8 planned did not run: power (skipped)"),
        "{}",
        shown.stdout
    );
}

#[test]
fn the_certificate_id_is_the_digest_of_the_canonical_body() {
    let out = tempfile::tempdir().unwrap();
    certify_shapes_on_ascend(out.path(), &[]);
    let path = out.path().join("shapes/ascend310b/certificate.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = value["certificate_id"].as_str().unwrap().to_string();
    value.as_object_mut().unwrap().remove("certificate_id");
    // The member digests only help name an edited member: outside the id.
    let digests = value.as_object_mut().unwrap().remove("member_digests").expect("member digests");
    assert!(digests["issuer"].is_null() && digests["checks"].as_str().unwrap().len() == 64, "{digests}");
    // Recomputed independently of the library: sorted keys, compact, SHA-256.
    use sha2::{Digest, Sha256};
    assert_eq!(format!("{:x}", Sha256::digest(canonical_json(&value))), id);
    let typed: Certificate = serde_json::from_str(&text).unwrap();
    assert_eq!(typed.content_id(), id);
    assert_eq!(
        String::from_utf8(typed.to_json()).unwrap(),
        text,
        "reading back and writing again changes nothing"
    );
}

#[test]
fn an_edited_certificate_is_refused_naming_the_file() {
    let out = tempfile::tempdir().unwrap();
    certify_shapes_on_ascend(out.path(), &[]);
    let path = out.path().join("shapes/ascend310b/certificate.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"verdict\": \"INCONCLUSIVE\"", "\"verdict\": \"PASS\"", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let run = edgecert(&["show", s(&path)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("certificate.json") && run.stderr.contains("changed after it was issued"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_verdict_that_does_not_follow_from_its_checks_is_refused_even_with_a_recomputed_id() {
    let out = tempfile::tempdir().unwrap();
    certify_shapes_on_ascend(out.path(), &[]);
    let path = out.path().join("shapes/ascend310b/certificate.json");
    let mut cert: Certificate = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cert.verdict = edgecert::vocab::Outcome::Pass;
    let cert = cert.seal();
    std::fs::write(&path, cert.to_json()).unwrap();
    let run = edgecert(&["show", s(&path)]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("the verdict says PASS but its checks and coverage give INCONCLUSIVE"),
        "{}",
        run.stderr
    );
}

#[test]
fn malformed_certificates_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 4] = [
        ("truncated.json", "{\"schema_version\": 3, \"tool\": ", "not JSON"),
        ("old.json", "{\"schema_version\": 1}", "schema_version 1; this edgecert reads version 3"),
        ("other.json", "[1, 2, 3]", "no schema_version"),
        (
            "partial.json",
            "{\"schema_version\": 3, \"certificate_id\": \"x\"}",
            "does not follow the certificate schema",
        ),
    ];
    for (name, text, words) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let run = edgecert(&["show", s(&path)]);
        assert_eq!(run.code, 2, "{name}");
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(run.stderr.contains(name) && run.stderr.contains(words), "{name}: {}", run.stderr);
    }
}

#[test]
fn the_checked_in_json_schema_matches_the_code() {
    let run = edgecert(&["schema", "certificate"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = root().join("docs/schema/certificate.schema.json");
    if std::env::var_os("EDGECERT_BLESS").is_some() {
        std::fs::write(&path, &run.stdout).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == run.stdout,
        "docs/schema/certificate.schema.json differs from the code's schema: run `cargo run -- schema certificate > docs/schema/certificate.schema.json` (or the tests with EDGECERT_BLESS=1) and review the diff"
    );
    let schema: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    let required: Vec<&str> =
        schema["required"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for field in ["schema_version", "certificate_id", "coverage", "checks", "verdict", "issued_at"] {
        assert!(required.contains(&field), "{field} is required by the schema");
    }
}

/// The certificate of a run with no inference (accuracy skipped): every figure comes from pure
/// Rust arithmetic, so the snapshot holds on every machine. Volatile members are redacted.
#[test]
fn the_certificate_layout_matches_its_snapshot() {
    let out = tempfile::tempdir().unwrap();
    certify_shapes_on_ascend(out.path(), &["--skip", "accuracy"]);
    let mut cert = certificate(out.path(), "shapes", "ascend310b");
    for volatile in ["issued_at", "certificate_id"] {
        cert[volatile] = serde_json::Value::String("[redacted]".into());
    }
    cert["tool"]["version"] = serde_json::Value::String("[version]".into());
    // The test conditions are this host's and this run's: the snapshot keeps the members every
    // host has (kernel, CPU model and governor are left out where a host does not expose them).
    let environment = cert["environment"].as_object_mut().expect("test conditions");
    environment.retain(|key, _| ["os", "arch", "cores", "started_at", "finished_at"].contains(&key.as_str()));
    assert_eq!(environment.len(), 5, "{environment:?}");
    for value in environment.values_mut() {
        *value = serde_json::Value::String("[this host]".into());
    }
    let actual = serde_json::to_string_pretty(&cert).unwrap() + "\n";
    let path = root().join("tests/snapshots/shapes-ascend310b-without-accuracy.certificate.json");
    if std::env::var_os("EDGECERT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected.lines().zip(actual.lines()).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "certificate differs from {} from line {}:\n  expected: {:?}\n  actual:   {:?}\n(rerun with EDGECERT_BLESS=1 to accept)",
            path.display(),
            first + 1,
            expected.lines().nth(first),
            actual.lines().nth(first)
        );
    }
}
