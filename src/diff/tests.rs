//! Unit tests of the comparison on certificates built in memory: which verdict changes are
//! regressions, the direction of error metrics, and when latencies are compared at all.

use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::certificate::schema::MetricsReport;
use crate::vocab::{Timing, ValuePair};

fn interval(low: f64, high: f64) -> Interval {
    Interval { low, high: Some(high), confidence: 0.95, method: "test".into() }
}

/// A certificate of `shapes` on `rk3588` with these (check, verdict) pairs, all planned and run.
fn certificate(checks: &[(&str, &str)]) -> Certificate {
    let names: Vec<&str> = checks.iter().map(|c| c.0).collect();
    let records: Vec<serde_json::Value> = checks
        .iter()
        .map(|(name, verdict)| {
            serde_json::json!({"name": name, "status": "ran", "verdict": verdict, "measured": null,
                "limit": null, "unit": "-", "basis": "static", "ci": null, "reason": format!("{name} says {verdict}")})
        })
        .collect();
    let artifact = serde_json::json!({"model": "m.onnx", "sha256": "0".repeat(64), "size_bytes": 1, "quantization": "qdq"});
    let mut c: Certificate = serde_json::from_value(serde_json::json!({
        "schema_version": 2, "certificate_id": "", "tool": {"name": "edgecert", "version": "0", "engine": "tract"},
        "subject": artifact, "reference": artifact,
        "profile": {"name": "rk3588", "display_name": "RK3588", "path": "p.toml", "sha256": "1".repeat(64)},
        "golden": {"name": "shapes", "path": "g", "sha256": "2".repeat(64), "samples": 500, "metric": "top-1 accuracy"},
        "backend": {"kind": "emulated", "emulated": true, "note": ""},
        "coverage": {"planned": names, "executed": names, "not_run": []},
        "checks": records, "verdict": "PASS", "verdict_reason": "", "decision_rule": "", "statement": "",
        "issued_at": "2026-01-01T00:00:00Z",
    }))
    .unwrap();
    (c.verdict, c.verdict_reason) = crate::certificate::schema::overall(&c.checks, &c.coverage);
    c
}

fn runs(certificate: Certificate, timing: Option<Timing>) -> Runs {
    let key = CertificateKey { family: "shapes".into(), chip: "rk3588".into() };
    let entry =
        RunCertificate { path: Path::new("run/shapes/rk3588/certificate.json").into(), certificate, timing };
    Runs { source: "run".into(), certificates: BTreeMap::from([(key, entry)]) }
}

fn with_metrics(mut c: Certificate, higher_is_better: bool, values: &[(&str, f64, Interval)]) -> Certificate {
    let values = values
        .iter()
        .map(|(key, value, ci)| {
            let pair = ValuePair {
                fp32: *value,
                fp32_ci: ci.clone(),
                compressed: *value,
                compressed_ci: ci.clone(),
            };
            (key.to_string(), pair)
        })
        .collect();
    c.metrics = Some(MetricsReport {
        metric: "m".into(),
        unit: "-".into(),
        higher_is_better,
        hardest_slice: None,
        values,
    });
    c
}

fn kinds(c: &Comparison) -> Vec<&'static str> {
    c.regressions.iter().map(Regression::kind_name).collect()
}

#[test]
fn a_worse_check_is_a_regression_and_a_better_one_only_a_change() {
    let old = certificate(&[("size", "PASS"), ("latency", "FAIL"), ("memory", "INCONCLUSIVE")]);
    let new = certificate(&[("size", "INCONCLUSIVE"), ("latency", "PASS"), ("memory", "PASS")]);
    let c = diff(&runs(old, None), &runs(new, None));
    let details: Vec<&str> = c.regressions.iter().map(|r| r.detail.as_str()).collect();
    assert_eq!(details, ["size PASS → INCONCLUSIVE: size says INCONCLUSIVE"]);
    let changes: Vec<(Option<&str>, bool)> =
        c.verdict_changes.iter().map(|v| (v.check.map(|c| c.name()), v.worse)).collect();
    assert_eq!(
        changes,
        [(Some("size"), true), (Some("latency"), false), (Some("memory"), false), (None, false)]
    );
    assert_eq!(c.verdict_line(), "1 regression");
}

#[test]
fn a_certificate_made_worse_by_a_check_is_not_counted_twice() {
    let old = certificate(&[("size", "PASS"), ("memory", "PASS")]);
    let new = certificate(&[("size", "PASS"), ("memory", "FAIL")]);
    let c = diff(&runs(old, None), &runs(new, None));
    assert_eq!(kinds(&c), ["verdict"]);
    assert_eq!(c.regressions[0].detail, "memory PASS → FAIL: memory says FAIL");
    let certificate_change = c.verdict_changes.iter().find(|v| v.check.is_none()).unwrap();
    assert_eq!((certificate_change.old, certificate_change.new), (Outcome::Pass, Outcome::Fail));
}

#[test]
fn a_certificate_worse_only_by_its_coverage_is_a_regression_of_the_certificate() {
    let old = certificate(&[("size", "PASS"), ("latency", "PASS")]);
    let mut new = old.clone();
    new.checks.truncate(1);
    new.coverage.executed.truncate(1);
    new.coverage.not_run = vec![crate::certificate::schema::NotRun {
        check: crate::checks::CheckKind::Latency,
        reason: crate::certificate::schema::NotRunReason::Filtered,
        detail: "size".into(),
    }];
    (new.verdict, new.verdict_reason) = crate::certificate::schema::overall(&new.checks, &new.coverage);
    let c = diff(&runs(old, None), &runs(new, None));
    assert_eq!(kinds(&c), ["verdict"]);
    assert!(
        c.regressions[0].detail.starts_with("certificate PASS → INCONCLUSIVE: incomplete"),
        "{:?}",
        c.regressions
    );
    assert_eq!(c.not_compared, ["shapes on rk3588: check `latency` ran only in OLD"]);
}

#[test]
fn an_error_metric_regresses_above_the_interval_and_an_accuracy_below_it() {
    let old = with_metrics(
        certificate(&[]),
        false,
        &[("primary", 0.60, interval(0.55, 0.67)), ("slice.snow", 0.79, interval(0.65, 0.92))],
    );
    // RMSE 0.70 is above [0.55, 0.67]: worse. 0.50 is below the interval: better, not a drop.
    let new = with_metrics(
        certificate(&[]),
        false,
        &[("primary", 0.70, interval(0.6, 0.8)), ("slice.snow", 0.50, interval(0.4, 0.6))],
    );
    let c = diff(&runs(old, None), &runs(new, None));
    assert_eq!(kinds(&c), ["accuracy"]);
    assert_eq!(
        c.regressions[0].detail,
        "m primary 0.600 → 0.700, above the baseline's 95 % interval [0.550, 0.670]"
    );
    assert_eq!((c.certificates[0].values_held, c.certificates[0].values_compared), (1, 2));

    // A higher-is-better family still has error values (SMT's escape rate): they go down.
    let old = with_metrics(
        certificate(&[]),
        true,
        &[("escape_rate", 0.03, interval(0.02, 0.04)), ("recall.good", 1.0, interval(1.0, 1.0))],
    );
    let new = with_metrics(
        certificate(&[]),
        true,
        &[("escape_rate", 0.05, interval(0.04, 0.06)), ("recall.good", 0.99, interval(0.98, 1.0))],
    );
    let c = diff(&runs(old, None), &runs(new, None));
    let details: Vec<&str> = c.regressions.iter().map(|r| r.detail.as_str()).collect();
    assert_eq!(
        details,
        [
            "escape_rate 0.030 → 0.050, above the baseline's 95 % interval [0.020, 0.040]",
            "recall.good 1.000 → 0.990, below the baseline's 95 % interval [1.000, 1.000]",
        ]
    );
}

fn timing(basis: Basis, latencies_ms: Vec<f64>) -> Option<Timing> {
    Some(Timing {
        basis,
        what: "test".into(),
        latencies_ms,
        power: None,
        scenarios: None,
        systematic_error: None,
        soak: None,
    })
}

#[test]
fn latency_is_compared_only_with_samples_on_both_sides_and_one_basis() {
    let c = certificate(&[("latency", "PASS")]);
    let samples: Vec<f64> = (1..=100).map(f64::from).collect();
    let outcome = |old: Option<Timing>, new: Option<Timing>| {
        diff(&runs(c.clone(), old), &runs(c.clone(), new)).latency.remove(0).outcome
    };
    let LatencyOutcome::NotCompared { reason } = outcome(None, timing(Basis::Measured, samples.clone()))
    else {
        panic!("compared without OLD's latencies")
    };
    assert_eq!(reason, "no per-sample latencies in run/shapes/rk3588/certificate.json");
    let LatencyOutcome::NotCompared { reason } =
        outcome(timing(Basis::Emulated, samples.clone()), timing(Basis::Measured, samples.clone()))
    else {
        panic!("emulated compared with measured")
    };
    assert_eq!(reason, "OLD latencies are emulated, NEW measured: not comparable");
    let slower: Vec<f64> = samples.iter().map(|v| v * 1.5).collect();
    let LatencyOutcome::Compared(test) =
        outcome(timing(Basis::Measured, samples), timing(Basis::Measured, slower))
    else {
        panic!("not compared")
    };
    assert!(test.significant && test.practical && test.regression, "{test:?}");
    assert_eq!((test.median_old_ms, test.median_new_ms), (51.0, 76.5));
}

#[test]
fn a_value_outside_its_own_interval_is_no_drop_when_unchanged() {
    // A skewed bootstrap can leave the estimate outside its percentile interval.
    let skewed = || with_metrics(certificate(&[]), true, &[("primary", 0.50, interval(0.52, 0.60))]);
    let c = diff(&runs(skewed(), None), &runs(skewed(), None));
    assert_eq!(c.verdict_line(), "no regression");
    assert_eq!(c.certificates[0].values_held, 1);
}
