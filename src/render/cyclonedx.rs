//! A certificate as a CycloneDX 1.6 AI bill of materials (`edgecert export --format cyclonedx`):
//! the compressed model as a `machine-learning-model` component with its hashes (each weights
//! file its own), its FP32 ancestor, the golden set and the chip; a `modelCard` whose
//! quantitative analysis holds every metric value (both models, every slice) and every check's
//! figure with its interval and basis; and `declarations` that state, per planned check, the
//! requirement (the limit), the claim, the evidence (the raw observations) and the conformance
//! the decision rule gave, by the laboratory that assessed it and the authoriser who signed.
//!
//! It restates the certificate and adds nothing: the certificate stays the record. A digest that
//! is not one file's (the golden set's, a multi-file artifact's) is a property, not a `hashes`
//! entry, which CycloneDX defines as the hash of the component's own bytes.

use std::path::Path;

use serde_json::{json, Value};

use crate::certificate::schema::{Certificate, CheckRecord, CheckStatus, Outcome, Subject};
use crate::vocab::Interval;

/// The CycloneDX document of a certificate. Deterministic: one certificate, one document.
pub fn bom(c: &Certificate) -> Value {
    let mut metadata = json!({
        "timestamp": c.issued_at,
        "tools": {"components": [{"type": "application", "name": c.tool.name, "version": c.tool.version}]},
        "component": model_component(c),
        "properties": [
            property("edgecert:certificate_id", &c.certificate_id),
            property("edgecert:verdict", c.verdict.as_str()),
            property("edgecert:verdict_reason", &c.verdict_reason),
            property("edgecert:backend", &c.backend.kind),
            property("edgecert:engine", &c.tool.engine),
        ],
    });
    if let Some(lab) = c.issuer.as_ref().map(|i| &i.lab) {
        metadata["manufacture"] = organization(&lab.name, &lab.address);
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number(&c.certificate_id),
        "version": 1,
        "metadata": metadata,
        "components": [
            subject_component(&c.reference, "reference", "the FP32 model it was compressed from"),
            golden_component(c),
            chip_component(c),
        ],
        "definitions": {"standards": [standard(c)]},
        "declarations": declarations(c),
    })
}

/// `urn:uuid:` from the certificate id's first 128 bits: the same certificate, the same serial.
fn serial_number(id: &str) -> String {
    let hex: String =
        id.chars().filter(char::is_ascii_hexdigit).chain(std::iter::repeat('0')).take(32).collect();
    let hex = hex.to_ascii_lowercase();
    format!("urn:uuid:{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn organization(name: &str, address: &str) -> Value {
    json!({"name": name, "address": {"streetAddress": address}})
}

/// The compressed model, with its model card.
fn model_component(c: &Certificate) -> Value {
    let mut model = subject_component(&c.subject, "model", "the compressed model certified");
    model["pedigree"] = json!({"ancestors": [{"type": "machine-learning-model", "name": file_name(&c.reference.model), "bom-ref": "model-ancestor"}]});
    model["modelCard"] = model_card(c);
    model
}

/// A model artifact: one file's hash, or each file of a multi-file artifact as a sub-component.
fn subject_component(s: &Subject, bom_ref: &str, description: &str) -> Value {
    let mut component = json!({
        "type": "machine-learning-model",
        "bom-ref": bom_ref,
        "name": file_name(&s.model),
        "description": description,
        "properties": [
            property("edgecert:path", &s.model),
            property("edgecert:artifact_sha256", &s.sha256),
            property("edgecert:size_bytes", &s.size_bytes.to_string()),
            property("edgecert:quantization", &s.quantization),
        ],
    });
    match s.files.as_slice() {
        [] => component["hashes"] = json!([{"alg": "SHA-256", "content": s.sha256}]),
        [only] => component["hashes"] = json!([{"alg": "SHA-256", "content": only.sha256}]),
        files => {
            component["components"] = files
                .iter()
                .map(|f| {
                    json!({
                        "type": "file",
                        "name": f.path,
                        "hashes": [{"alg": "SHA-256", "content": f.sha256}],
                        "properties": [property("edgecert:size_bytes", &f.size_bytes.to_string())],
                    })
                })
                .collect()
        }
    }
    component
}

fn golden_component(c: &Certificate) -> Value {
    let g = &c.golden;
    json!({
        "type": "data",
        "bom-ref": "golden",
        "name": g.name,
        "description": format!("golden set: {} samples scored by {}", g.samples, g.metric),
        "data": [{"type": "dataset", "name": g.name, "description": format!("{} samples from {}", g.samples, g.path)}],
        "properties": [property("edgecert:path", &g.path), property("edgecert:dataset_sha256", &g.sha256)],
    })
}

fn chip_component(c: &Certificate) -> Value {
    let p = &c.profile;
    json!({
        "type": "device",
        "bom-ref": "chip",
        "name": p.display_name,
        "description": format!("chip profile {} ({})", p.name, p.path),
        "properties": [property("edgecert:profile", &p.name), property("edgecert:profile_sha256", &p.sha256)],
    })
}

/// The model card: what was measured (every metric value and check figure) and under which
/// conditions the figures hold (the chip, the decision rule, the statement).
fn model_card(c: &Certificate) -> Value {
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(m) = &c.metrics {
        for (slice, pair) in &m.values {
            metrics.push(metric(
                &format!("{} ({}, compressed)", m.metric, m.unit),
                pair.compressed,
                &pair.compressed_ci,
                slice,
            ));
            metrics.push(metric(
                &format!("{} ({}, FP32 reference)", m.metric, m.unit),
                pair.fp32,
                &pair.fp32_ci,
                slice,
            ));
        }
    }
    let chip = format!("{} ({})", c.profile.display_name, c.profile.name);
    for check in c.checks.iter().filter(|r| r.status == CheckStatus::Ran) {
        if let (Some(value), Some(ci)) = (check.measured, &check.ci) {
            let kind = format!("{} ({}, {})", check.name.name(), check.unit, check.basis.as_str());
            metrics.push(metric(&kind, value, ci, &chip));
        } else if let Some(value) = check.measured {
            metrics.push(json!({"type": format!("{} ({}, {})", check.name.name(), check.unit, check.basis.as_str()), "value": figure(value), "slice": chip}));
        }
    }
    json!({
        "bom-ref": "model-card",
        "modelParameters": {
            "task": c.golden.metric,
            "datasets": [{"ref": "golden"}],
        },
        "quantitativeAnalysis": {"performanceMetrics": metrics},
        "considerations": {
            "useCases": [format!("inference on {chip}, as its profile {} states the chip", c.profile.path)],
            "technicalLimitations": [c.statement.clone(), c.decision_rule.clone()],
        },
    })
}

/// One performance metric; an undefined value (NaN) is said to be undefined, never a number.
fn metric(kind: &str, value: f64, ci: &Interval, slice: &str) -> Value {
    let mut m = json!({"type": kind, "value": figure(value), "slice": slice});
    let mut bounds = serde_json::Map::new();
    if ci.low.is_finite() {
        bounds.insert("lowerBound".into(), figure(ci.low).into());
    }
    if let Some(high) = ci.high.filter(|h| h.is_finite()) {
        bounds.insert("upperBound".into(), figure(high).into());
    }
    if !bounds.is_empty() {
        m["confidenceInterval"] = Value::Object(bounds);
    }
    m
}

fn figure(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "undefined".into()
    }
}

fn file_name(path: &str) -> String {
    Path::new(path).file_name().map_or(path.to_string(), |n| n.to_string_lossy().into_owned())
}

/// The requirements: one per planned check, its limit as the golden set and profile state it.
fn standard(c: &Certificate) -> Value {
    let requirements: Vec<Value> = c
        .coverage
        .planned
        .iter()
        .map(|kind| {
            let limit = record(c, kind.name())
                .and_then(|r| r.limit.map(|l| format!("limit {} {}", figure(l), r.unit)))
                .unwrap_or_else(|| "no numeric limit: the check decides on its own rule".into());
            json!({"bom-ref": format!("requirement-{}", kind.name()), "identifier": kind.name(), "title": kind.name(), "text": limit})
        })
        .collect();
    json!({
        "bom-ref": "edgecert-plan",
        "name": format!("edgecert certification plan for {} on {}", c.golden.name, c.profile.name),
        "version": c.tool.version,
        "description": c.decision_rule,
        "owner": c.issuer.as_ref().and_then(|i| i.specification.clone()).unwrap_or_else(|| format!("golden set {} and chip profile {}", c.golden.path, c.profile.path)),
        "requirements": requirements,
    })
}

fn record<'a>(c: &'a Certificate, name: &str) -> Option<&'a CheckRecord> {
    c.checks.iter().find(|r| r.name.name() == name)
}

/// The assessor, a claim and its evidence per executed check, the attestation mapping every
/// planned requirement to its claim and conformance, and the authoriser's affirmation.
fn declarations(c: &Certificate) -> Value {
    let ran: Vec<&CheckRecord> = c.checks.iter().filter(|r| r.status == CheckStatus::Ran).collect();
    let observations = c.observations.as_ref();
    let claims: Vec<Value> = ran
        .iter()
        .map(|r| {
            json!({
                "bom-ref": format!("claim-{}", r.name.name()),
                "target": "model",
                "predicate": predicate(c, r),
                "reasoning": r.reason,
                "evidence": [format!("evidence-{}", r.name.name())],
            })
        })
        .collect();
    let evidence: Vec<Value> = ran
        .iter()
        .map(|r| {
            let mut e = json!({
                "bom-ref": format!("evidence-{}", r.name.name()),
                "propertyName": r.name.name(),
                "description": evidence_text(r),
                "created": c.issued_at,
            });
            if let Some(o) = observations {
                e["data"] = json!([{"name": format!("{} (sha256 {})", o.path, o.sha256), "contents": {"url": o.path}}]);
            }
            e
        })
        .collect();
    let map: Vec<Value> = c
        .coverage
        .planned
        .iter()
        .map(|kind| {
            let mut entry = json!({"requirement": format!("requirement-{}", kind.name())});
            match record(c, kind.name()).filter(|r| r.status == CheckStatus::Ran) {
                Some(r) => {
                    entry["claims"] = json!([format!("claim-{}", r.name.name())]);
                    entry["conformance"] = conformance(r);
                    if let Some(ci) = &r.ci {
                        entry["confidence"] = json!({"score": ci.confidence, "rationale": format!("two-sided {}% interval by {}", ci.confidence * 100.0, ci.method)});
                    }
                }
                None => {
                    let why = c.coverage.not_run.iter().find(|n| n.check == *kind).map_or_else(
                        || "not run".to_string(),
                        |n| format!("not run ({}): {}", n.reason.as_str(), n.detail),
                    );
                    entry["conformance"] = json!({"rationale": why});
                }
            }
            entry
        })
        .collect();
    let mut declarations = json!({
        "assessors": [assessor(c)],
        "attestations": [{
            "summary": format!("{}: {}", c.verdict.as_str(), c.verdict_reason),
            "assessor": "assessor",
            "map": map,
        }],
        "claims": claims,
        "evidence": evidence,
        "targets": {"components": [{"type": "machine-learning-model", "bom-ref": "target-model", "name": file_name(&c.subject.model), "hashes": [{"alg": "SHA-256", "content": c.subject.sha256}]}]},
    });
    if let Some(affirmation) = affirmation(c) {
        declarations["affirmation"] = affirmation;
    }
    declarations
}

fn assessor(c: &Certificate) -> Value {
    match &c.issuer {
        // A laboratory testing for a named customer assesses a third party's claims.
        Some(i) => {
            json!({"bom-ref": "assessor", "thirdParty": i.customer.is_some(), "organization": organization(&i.lab.name, &i.lab.address)})
        }
        None => {
            json!({"bom-ref": "assessor", "thirdParty": false, "organization": {"name": "not stated (certified without --issuer)"}})
        }
    }
}

fn predicate(c: &Certificate, r: &CheckRecord) -> String {
    let measured = r.measured.map_or("no figure".to_string(), |m| format!("{} {}", figure(m), r.unit));
    let limit = r.limit.map_or(String::new(), |l| format!(" against a limit of {} {}", figure(l), r.unit));
    format!(
        "{} on {}: {measured}{limit} ({}), {}",
        r.name.name(),
        c.profile.name,
        r.basis.as_str(),
        r.verdict.as_str()
    )
}

fn evidence_text(r: &CheckRecord) -> String {
    let mut text = format!("{} figure", r.basis.as_str());
    if let Some(n) = r.samples {
        text.push_str(&format!(" over {n} samples"));
    }
    if !r.findings.is_empty() {
        text.push_str(&format!("; findings: {}", r.findings.join("; ")));
    }
    text
}

/// PASS conforms (1), FAIL does not (0); INCONCLUSIVE states no score, only why.
fn conformance(r: &CheckRecord) -> Value {
    match r.verdict {
        Outcome::Pass => json!({"score": 1, "rationale": r.reason}),
        Outcome::Fail => json!({"score": 0, "rationale": r.reason}),
        Outcome::Inconclusive => json!({"rationale": format!("INCONCLUSIVE: {}", r.reason)}),
    }
}

/// The authoriser's affirmation, pointing at the certificate whose ed25519 signature is theirs.
fn affirmation(c: &Certificate) -> Option<Value> {
    let issuer = c.issuer.as_ref()?;
    let authoriser = issuer.authoriser.as_ref()?;
    let signed = match &c.signature {
        Some(s) => format!("the certificate's {} signature, key {}", s.algorithm, s.key_fingerprint),
        None => "the certificate, unsigned".to_string(),
    };
    Some(json!({
        "statement": format!("{} Overall verdict {}: {}", c.statement, c.verdict.as_str(), c.verdict_reason),
        "signatories": [{
            "name": authoriser.name,
            "role": authoriser.role,
            "organization": organization(&issuer.lab.name, &issuer.lab.address),
            "externalReference": {"type": "digital-signature", "url": "certificate.json", "comment": format!("{signed}; certificate id {}", c.certificate_id)},
        }],
    }))
}
