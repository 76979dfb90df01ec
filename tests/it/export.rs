//! `edgecert export --format cyclonedx`: a certificate as a CycloneDX 1.6 AI bill of materials,
//! validated against the official CycloneDX 1.6 JSON schema (`cyclonedx-python-lib`'s strict
//! validator, where the active virtualenv has it; `.ci/run` installs it), with every metric and
//! check figure in the model card, every planned check in the attestation, every reference
//! resolving, and the authoriser who signed.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::*;

/// A signed certificate of shapes on rk3588 with the example issuer, its latency budget
/// impossible (a FAIL) and the power check skipped (a planned check not run).
fn certified(dir: &Path) -> PathBuf {
    let key = dir.join("jane");
    let issuer = root().join("docs/issuer.example.toml");
    assert_eq!(edgecert(&["keygen", s(&key), "--issuer", s(&issuer)]).code, 0);
    let golden = copied_golden(dir, "shapes");
    let manifest = golden.join("family.toml");
    let text =
        std::fs::read_to_string(&manifest).unwrap().replace("latency_p99_ms = 5.0", "latency_p99_ms = 0.001");
    std::fs::write(&manifest, text).unwrap();
    let out = dir.join("out");
    let args = ["--sign-key", s(&key), "--issuer", s(&issuer), "--skip", "power"];
    let run = certify_quietly(&out, "profiles/rk3588.toml", s(&golden), &args);
    assert_eq!(run.code, 1, "{}", run.stderr);
    out.join("shapes/rk3588/certificate.json")
}

fn export(cert: &Path) -> (PathBuf, serde_json::Value) {
    let run = edgecert(&["export", s(cert), "--format", "cyclonedx"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = cert.with_file_name("bom.cdx.json");
    assert!(run.stdout.contains(&path.display().to_string()), "{}", run.stdout);
    let bom = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    (path, bom)
}

/// Every `bom-ref` in the document, and every value that refers to one.
fn refs(value: &serde_json::Value, defined: &mut BTreeSet<String>, used: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("bom-ref", serde_json::Value::String(r)) => {
                        assert!(defined.insert(r.clone()), "bom-ref {r} defined twice");
                    }
                    ("target" | "assessor" | "requirement" | "ref", serde_json::Value::String(r)) => {
                        used.push(r.clone())
                    }
                    ("claims" | "evidence", serde_json::Value::Array(items))
                        if items.iter().all(|i| i.is_string()) =>
                    {
                        used.extend(items.iter().map(|i| i.as_str().unwrap().to_string()))
                    }
                    _ => refs(v, defined, used),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| refs(i, defined, used)),
        _ => {}
    }
}

#[test]
fn a_certificate_exports_as_a_cyclonedx_ai_bom_with_every_figure_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = certified(dir.path());
    let cert = read_json(&cert_path);
    let (bom_path, bom) = export(&cert_path);
    assert_eq!((bom["bomFormat"].as_str(), bom["specVersion"].as_str()), (Some("CycloneDX"), Some("1.6")));
    let id = cert["certificate_id"].as_str().unwrap();
    assert!(bom["serialNumber"]
        .as_str()
        .unwrap()
        .replace('-', "")
        .starts_with(&format!("urn:uuid:{}", &id[..32])));

    let model = &bom["metadata"]["component"];
    assert_eq!(model["type"], "machine-learning-model");
    assert_eq!(model["hashes"][0]["content"], cert["subject"]["sha256"]);
    let metrics = model["modelCard"]["quantitativeAnalysis"]["performanceMetrics"].as_array().unwrap();
    // Both models' value of every slice, and every executed check's figure.
    let values = cert["metrics"]["values"].as_object().unwrap();
    let slices = metrics.iter().filter(|m| values.contains_key(m["slice"].as_str().unwrap())).count();
    assert_eq!(slices, 2 * values.len());
    let latency =
        metrics.iter().find(|m| m["type"].as_str().unwrap().starts_with("latency (ms, emulated)")).unwrap();
    assert_eq!(latency["value"], check(&cert, "latency")["measured"].as_f64().unwrap().to_string());
    assert!(latency["confidenceInterval"]["upperBound"].is_string(), "{latency}");

    // Every planned check in the attestation: a FAIL scores 0, a check not run says why.
    let map = bom["declarations"]["attestations"][0]["map"].as_array().unwrap();
    assert_eq!(map.len(), cert["coverage"]["planned"].as_array().unwrap().len());
    let entry = |name: &str| map.iter().find(|m| m["requirement"] == format!("requirement-{name}")).unwrap();
    assert_eq!(entry("latency")["conformance"]["score"], 0);
    assert_eq!(entry("size")["conformance"]["score"], 1);
    assert!(entry("power")["conformance"]["rationale"].as_str().unwrap().starts_with("not run (skipped)"));
    assert!(entry("power")["claims"].is_null() && entry("power")["conformance"]["score"].is_null());
    let affirmation = &bom["declarations"]["affirmation"]["signatories"][0];
    assert_eq!(
        (affirmation["name"].as_str(), affirmation["role"].as_str()),
        (Some("Dr. Jane Example"), Some("Technical Manager"))
    );
    assert!(affirmation["externalReference"]["comment"].as_str().unwrap().contains("ed25519 signature"));

    let (mut defined, mut used) = (BTreeSet::new(), Vec::new());
    refs(&bom, &mut defined, &mut used);
    let dangling: Vec<&String> = used.iter().filter(|r| !defined.contains(*r)).collect();
    assert!(dangling.is_empty(), "references to no bom-ref: {dangling:?}");

    // One certificate, one document, byte for byte.
    let first = std::fs::read(&bom_path).unwrap();
    export(&cert_path);
    assert_eq!(first, std::fs::read(&bom_path).unwrap());
    validate_against_cyclonedx_schema(&bom_path);
}

/// The official CycloneDX 1.6 JSON schema, strict, through cyclonedx-python-lib.
fn validate_against_cyclonedx_schema(bom: &Path) {
    let python = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python3"));
    let script = "import sys\nfrom cyclonedx.validation.json import JsonStrictValidator\nfrom cyclonedx.schema import SchemaVersion\nerror = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\nprint(error if error else 'valid')";
    let have = python.as_ref().is_some_and(|p| {
        std::process::Command::new(p)
            .args(["-c", "import cyclonedx.validation.json, jsonschema"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !have {
        eprintln!("skipped: no python3 importing cyclonedx-python-lib[json-validation] in VIRTUAL_ENV");
        return;
    }
    let python = python.unwrap();
    let validate = |path: &Path| {
        let out = std::process::Command::new(&python).args(["-c", script]).arg(path).output().unwrap();
        format!("{}{}", String::from_utf8_lossy(&out.stdout).trim(), String::from_utf8_lossy(&out.stderr))
    };
    assert_eq!(validate(bom), "valid");
    // The control: the validator refuses a model type CycloneDX does not define.
    let broken = bom.with_file_name("broken.cdx.json");
    let text = std::fs::read_to_string(bom).unwrap();
    std::fs::write(&broken, text.replacen("\"machine-learning-model\"", "\"neural-network\"", 1)).unwrap();
    assert_ne!(validate(&broken), "valid");
}

#[test]
fn an_edited_certificate_is_not_exported() {
    let dir = tempfile::tempdir().unwrap();
    let cert_path = certified(dir.path());
    let text = std::fs::read_to_string(&cert_path).unwrap().replace("Dr. Jane Example", "Someone Else");
    std::fs::write(&cert_path, text).unwrap();
    let run = edgecert(&["export", s(&cert_path), "--format", "cyclonedx"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("changed: `issuer`"), "{}", run.stderr);
    assert!(!cert_path.with_file_name("bom.cdx.json").exists(), "no partial export");
}
