//! Comparing two runs, for a nightly job that must say what got worse since the last one
//! (`edgecert diff OLD NEW`, `certify --baseline OLD`). Certificates are matched by (family,
//! chip); for each pair the comparison reports verdict changes, changed artifacts, a latency
//! shift (a rank test on the per-sample latencies, never a difference of means) and metric
//! values of the compressed model that fell outside the baseline's own interval. A
//! [`Comparison`] is plain data; [`Comparison::markdown`] renders it for a pull-request comment
//! and it serialises as the `--json` diff.

mod markdown;
mod runs;

use std::path::PathBuf;

use serde::Serialize;

use crate::certificate::observations::observations_path;
use crate::certificate::schema::{Certificate, CheckKind, MetricsReport};
use crate::metrics::value_higher_is_better;
use crate::stats::mann_whitney_greater;
use crate::vocab::{Basis, Interval, Outcome};

pub use runs::{CertificateKey, RunCertificate, Runs};

/// Significance level of the latency test. Strict, because a nightly job runs every night: at
/// 0.05 one pair in twenty would cry wolf on pure noise.
pub const LATENCY_ALPHA: f64 = 0.01;

/// The smallest latency increase (of the median or the p99) worth a regression: with thousands
/// of samples the rank test finds shifts of a fraction of a percent that nobody should act on.
pub const LATENCY_PRACTICAL_INCREASE: f64 = 0.05;

/// What `diff` found between two runs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub old: PathBuf,
    pub new: PathBuf,
    /// Everything that got worse. Not empty: `diff` exits 1, `certify --baseline` exits 3.
    pub regressions: Vec<Regression>,
    /// Every check or certificate whose verdict differs, better or worse.
    pub verdict_changes: Vec<VerdictChange>,
    /// Inputs of a certificate that differ between the runs: they often explain the rest.
    pub artifact_changes: Vec<ArtifactChange>,
    /// One entry per certificate pair: the latency test, or why there was none.
    pub latency: Vec<LatencyComparison>,
    /// Certificates of OLD that NEW lacks, and the reverse: nothing to compare them with.
    pub only_in_old: Vec<CertificateKey>,
    pub only_in_new: Vec<CertificateKey>,
    /// What else could not be compared: checks or metric values present on one side only.
    pub not_compared: Vec<String>,
    /// Per certificate pair, what held.
    pub certificates: Vec<PairSummary>,
}

/// One thing that got worse, with the sentence that names it.
#[derive(Debug, Clone, Serialize)]
pub struct Regression {
    #[serde(flatten)]
    pub certificate: CertificateKey,
    /// What got worse and by how much, without the certificate's name.
    pub detail: String,
    #[serde(flatten)]
    pub kind: RegressionKind,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RegressionKind {
    /// A check's verdict got worse; `check` is `None` for the certificate's own verdict when no
    /// single check explains it (a planned check that no longer ran).
    Verdict {
        check: Option<CheckKind>,
        old: Outcome,
        new: Outcome,
    },
    Latency(LatencyTest),
    Accuracy(AccuracyDrop),
}

impl Regression {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RegressionKind::Verdict { .. } => "verdict",
            RegressionKind::Latency(_) => "latency",
            RegressionKind::Accuracy(_) => "accuracy",
        }
    }
}

impl std::fmt::Display for Regression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.certificate, self.detail)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerdictChange {
    #[serde(flatten)]
    pub certificate: CertificateKey,
    /// `None` for the certificate's overall verdict.
    pub check: Option<CheckKind>,
    pub old: Outcome,
    pub new: Outcome,
    /// PASS → INCONCLUSIVE → FAIL is the way down.
    pub worse: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArtifactChange {
    #[serde(flatten)]
    pub certificate: CertificateKey,
    /// `model`, `reference model`, `golden set`, `chip profile`, `NPU mode`, `backend`,
    /// `edgecert`.
    pub artifact: &'static str,
    pub old: String,
    pub new: String,
}

impl ArtifactChange {
    /// "the model changed (sha256 21a1ddd3… → 5f3e09aa…)".
    pub fn sentence(&self) -> String {
        format!("the {} changed ({} → {})", self.artifact, short(&self.old), short(&self.new))
    }
}

/// Digests are long; eight hex digits identify one among a night's artifacts.
fn short(value: &str) -> String {
    let is_digest = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
    if is_digest {
        format!("sha256 {}…", &value[..8])
    } else {
        value.to_string()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LatencyComparison {
    #[serde(flatten)]
    pub certificate: CertificateKey,
    #[serde(flatten)]
    pub outcome: LatencyOutcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum LatencyOutcome {
    Compared(LatencyTest),
    NotCompared { reason: String },
}

/// The per-sample latencies of NEW against OLD's.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyTest {
    pub basis: Basis,
    pub samples_old: usize,
    pub samples_new: usize,
    pub median_old_ms: f64,
    pub median_new_ms: f64,
    pub p99_old_ms: f64,
    pub p99_new_ms: f64,
    /// Mann–Whitney U of NEW against OLD.
    pub u: f64,
    /// One-sided: NEW stochastically larger (slower) than OLD.
    pub p_value: f64,
    /// `p_value` below [`LATENCY_ALPHA`].
    pub significant: bool,
    /// The median or the p99 at least [`LATENCY_PRACTICAL_INCREASE`] above OLD's.
    pub practical: bool,
    /// Both.
    pub regression: bool,
}

impl LatencyTest {
    /// "median 1.000 → 1.200 ms (+20.0 %), p99 …; one-sided Mann–Whitney U = 38000, p = 1.2e-30 (n = 200 → 200)".
    pub fn sentence(&self) -> String {
        format!(
            "median {:.3} → {:.3} ms ({}), p99 {:.3} → {:.3} ms ({}); one-sided Mann–Whitney U = {}, p = {} (n = {} → {}, {})",
            self.median_old_ms,
            self.median_new_ms,
            relative_change(self.median_old_ms, self.median_new_ms),
            self.p99_old_ms,
            self.p99_new_ms,
            relative_change(self.p99_old_ms, self.p99_new_ms),
            self.u,
            p_value_text(self.p_value),
            self.samples_old,
            self.samples_new,
            self.basis.as_str(),
        )
    }
}

fn relative_change(old: f64, new: f64) -> String {
    if old > 0.0 {
        format!("{:+.1} %", (new / old - 1.0) * 100.0)
    } else {
        "from 0".into()
    }
}

/// Small p-values in scientific notation, the others to three decimals.
pub fn p_value_text(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.2e}")
    } else {
        format!("{p:.3}")
    }
}

/// A metric value of the compressed model that fell outside the baseline's interval.
#[derive(Debug, Clone, Serialize)]
pub struct AccuracyDrop {
    /// The family metric (`mAP@0.5`, `sideslip RMSE`, ...).
    pub metric: String,
    /// The value's key in `metrics.values` (`primary`, `slice.hard`, `recall.car`, ...).
    pub key: String,
    pub higher_is_better: bool,
    pub old: f64,
    /// OLD's interval for the compressed model's value.
    pub old_interval: Interval,
    pub new: f64,
}

/// What held for one certificate pair.
#[derive(Debug, Clone, Serialize)]
pub struct PairSummary {
    #[serde(flatten)]
    pub certificate: CertificateKey,
    pub old_verdict: Outcome,
    pub new_verdict: Outcome,
    /// Checks that ran on both sides with the same verdict, of those that ran on both.
    pub checks_unchanged: usize,
    pub checks_compared: usize,
    /// Metric values within (or better than) the baseline's interval, of those compared.
    pub values_held: usize,
    pub values_compared: usize,
}

impl Comparison {
    pub fn regressions(&self) -> &[Regression] {
        &self.regressions
    }

    pub fn has_regressions(&self) -> bool {
        !self.regressions.is_empty()
    }

    /// `no regression` or `N regressions`.
    pub fn verdict_line(&self) -> String {
        match self.regressions.len() {
            0 => "no regression".into(),
            1 => "1 regression".into(),
            n => format!("{n} regressions"),
        }
    }

    /// A Markdown summary fit for a pull-request comment or a CI job summary.
    pub fn markdown(&self) -> String {
        markdown::render(self)
    }

    /// The machine-readable diff: the comparison with its one-line verdict.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Diff<'a> {
            verdict: String,
            #[serde(flatten)]
            comparison: &'a Comparison,
        }
        let diff = Diff { verdict: self.verdict_line(), comparison: self };
        serde_json::to_string_pretty(&diff).expect("plain data") + "\n"
    }
}

/// Compares every certificate of NEW with OLD's for the same (family, chip).
pub fn diff(old: &Runs, new: &Runs) -> Comparison {
    let mut comparison = Comparison {
        old: old.source.clone(),
        new: new.source.clone(),
        regressions: Vec::new(),
        verdict_changes: Vec::new(),
        artifact_changes: Vec::new(),
        latency: Vec::new(),
        only_in_old: Vec::new(),
        only_in_new: Vec::new(),
        not_compared: Vec::new(),
        certificates: Vec::new(),
    };
    for (key, before) in &old.certificates {
        match new.certificates.get(key) {
            Some(after) => compare_pair(&mut comparison, key, before, after),
            None => comparison.only_in_old.push(key.clone()),
        }
    }
    comparison.only_in_new =
        new.certificates.keys().filter(|key| !old.certificates.contains_key(*key)).cloned().collect();
    comparison
}

fn compare_pair(out: &mut Comparison, key: &CertificateKey, before: &RunCertificate, after: &RunCertificate) {
    let (old, new) = (&before.certificate, &after.certificate);
    out.artifact_changes.extend(artifact_changes(key, old, new));
    let (checks_unchanged, checks_compared) = compare_checks(out, key, old, new);
    let (values_held, values_compared) = match (&old.metrics, &new.metrics) {
        (Some(a), Some(b)) => compare_metrics(out, key, a, b),
        _ => (0, 0),
    };
    let latency = compare_latency(before, after);
    if let LatencyOutcome::Compared(test) = &latency {
        if test.regression {
            out.regressions.push(Regression {
                certificate: key.clone(),
                detail: format!("latency slower: {}", test.sentence()),
                kind: RegressionKind::Latency(test.clone()),
            });
        }
    }
    out.latency.push(LatencyComparison { certificate: key.clone(), outcome: latency });
    out.certificates.push(PairSummary {
        certificate: key.clone(),
        old_verdict: old.verdict,
        new_verdict: new.verdict,
        checks_unchanged,
        checks_compared,
        values_held,
        values_compared,
    });
}

fn artifact_changes(key: &CertificateKey, old: &Certificate, new: &Certificate) -> Vec<ArtifactChange> {
    let none = || "default".to_string();
    let pairs: [(&'static str, String, String); 7] = [
        ("model", old.subject.sha256.clone(), new.subject.sha256.clone()),
        ("reference model", old.reference.sha256.clone(), new.reference.sha256.clone()),
        ("golden set", old.golden.sha256.clone(), new.golden.sha256.clone()),
        ("chip profile", old.profile.sha256.clone(), new.profile.sha256.clone()),
        (
            "NPU mode",
            old.profile.npu_mode.clone().unwrap_or_else(none),
            new.profile.npu_mode.clone().unwrap_or_else(none),
        ),
        ("backend", old.backend.kind.clone(), new.backend.kind.clone()),
        ("edgecert", old.tool.version.clone(), new.tool.version.clone()),
    ];
    pairs
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(artifact, old, new)| ArtifactChange { certificate: key.clone(), artifact, old, new })
        .collect()
}

/// How far down a verdict is: PASS, then INCONCLUSIVE, then FAIL.
fn severity(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Pass => 0,
        Outcome::Inconclusive => 1,
        Outcome::Fail => 2,
    }
}

/// A verdict that changed: of one check, or (`check: None`) of the certificate.
struct Change<'a> {
    check: Option<CheckKind>,
    old: Outcome,
    new: Outcome,
    reason: &'a str,
}

/// Records the change, and a regression when it is worse and `counts`; returns whether it is
/// worse.
fn record_change(out: &mut Comparison, key: &CertificateKey, change: Change<'_>, counts: bool) -> bool {
    let worse = severity(change.new) > severity(change.old);
    let check = change.check;
    out.verdict_changes.push(VerdictChange {
        certificate: key.clone(),
        check,
        old: change.old,
        new: change.new,
        worse,
    });
    if worse && counts {
        let what = check.map_or("certificate", CheckKind::name);
        out.regressions.push(Regression {
            certificate: key.clone(),
            detail: format!("{what} {} → {}: {}", change.old.as_str(), change.new.as_str(), change.reason),
            kind: RegressionKind::Verdict { check, old: change.old, new: change.new },
        });
    }
    worse
}

/// Records verdict changes (and regressions) of the checks and of the certificate; returns
/// (unchanged, compared) over the checks that ran on both sides.
fn compare_checks(
    out: &mut Comparison,
    key: &CertificateKey,
    old: &Certificate,
    new: &Certificate,
) -> (usize, usize) {
    let (mut unchanged, mut compared, mut a_check_got_worse) = (0, 0, false);
    for name in union(&old.coverage.planned, &new.coverage.planned) {
        let planned = |c: &Certificate| c.coverage.planned.contains(name);
        let record = |c: &'_ Certificate| c.checks.iter().find(|r| &r.name == name).cloned();
        match (planned(old), planned(new), record(old), record(new)) {
            (true, false, ..) => out.not_compared.push(format!("{key}: check `{name}` planned only in OLD")),
            (false, true, ..) => out.not_compared.push(format!("{key}: check `{name}` planned only in NEW")),
            (_, _, Some(a), Some(b)) => {
                compared += 1;
                if a.verdict == b.verdict {
                    unchanged += 1;
                    continue;
                }
                let change = Change { check: Some(*name), old: a.verdict, new: b.verdict, reason: &b.reason };
                a_check_got_worse |= record_change(out, key, change, true);
            }
            (_, _, a, b) => {
                let side = if a.is_some() {
                    "OLD"
                } else if b.is_some() {
                    "NEW"
                } else {
                    "neither run"
                };
                out.not_compared.push(format!("{key}: check `{name}` ran only in {side}"));
            }
        }
    }
    if old.verdict != new.verdict {
        let change = Change { check: None, old: old.verdict, new: new.verdict, reason: &new.verdict_reason };
        // One regression per cause: a check that got worse already explains the certificate.
        record_change(out, key, change, !a_check_got_worse);
    }
    (unchanged, compared)
}

/// Names of both lists, OLD's order first, each once.
fn union<'a, T: PartialEq>(a: &'a [T], b: &'a [T]) -> Vec<&'a T> {
    let mut names: Vec<&T> = a.iter().collect();
    names.extend(b.iter().filter(|n| !a.contains(n)));
    names
}

/// Records every compressed-model value of NEW beyond OLD's interval on the worse side;
/// returns (held, compared).
fn compare_metrics(
    out: &mut Comparison,
    key: &CertificateKey,
    old: &MetricsReport,
    new: &MetricsReport,
) -> (usize, usize) {
    if old.metric != new.metric {
        out.not_compared.push(format!(
            "{key}: metric values not compared: the metric changed ({} → {})",
            old.metric, new.metric
        ));
        return (0, 0);
    }
    let (mut held, mut compared) = (0, 0);
    for (name, before) in &old.values {
        let Some(after) = new.values.get(name) else {
            out.not_compared.push(format!("{key}: metric value `{name}` only in OLD"));
            continue;
        };
        if before.compressed.is_nan() || after.compressed.is_nan() {
            out.not_compared.push(format!("{key}: metric value `{name}` undefined on one side"));
            continue;
        }
        compared += 1;
        let higher_is_better = value_higher_is_better(old.higher_is_better, name);
        let interval = &before.compressed_ci;
        // Worse than OLD's own value too: a percentile-bootstrap interval need not contain its
        // estimate (a skewed statistic), and an unchanged value is never a drop.
        let beyond = if higher_is_better {
            after.compressed < interval.low && after.compressed < before.compressed
        } else {
            interval.high.is_some_and(|high| after.compressed > high) && after.compressed > before.compressed
        };
        if !beyond {
            held += 1;
            continue;
        }
        let drop = AccuracyDrop {
            metric: old.metric.clone(),
            key: name.clone(),
            higher_is_better,
            old: before.compressed,
            old_interval: interval.clone(),
            new: after.compressed,
        };
        out.regressions.push(Regression {
            certificate: key.clone(),
            detail: drop_sentence(&drop),
            kind: RegressionKind::Accuracy(drop),
        });
    }
    for name in new.values.keys().filter(|n| !old.values.contains_key(*n)) {
        out.not_compared.push(format!("{key}: metric value `{name}` only in NEW"));
    }
    (held, compared)
}

/// "mAP@0.5 primary 0.222 → 0.150, below the baseline's 95 % interval [0.204, 0.248]".
fn drop_sentence(d: &AccuracyDrop) -> String {
    let high = d.old_interval.high.map_or("unbounded".to_string(), |h| format!("{h:.3}"));
    format!(
        "{} {:.3} → {:.3}, {} the baseline's {:.0} % interval [{:.3}, {high}]",
        value_label(&d.metric, &d.key),
        d.old,
        d.new,
        if d.higher_is_better { "below" } else { "above" },
        d.old_interval.confidence * 100.0,
        d.old_interval.low,
    )
}

/// The primary value and its slices are the family metric's; other values name themselves
/// (`recall.car`, `escape_rate`).
fn value_label(metric: &str, key: &str) -> String {
    if key == crate::metrics::PRIMARY || key.starts_with("slice.") {
        format!("{metric} {key}")
    } else {
        key.to_string()
    }
}

fn compare_latency(before: &RunCertificate, after: &RunCertificate) -> LatencyOutcome {
    let (old, new) = match (&before.timing, &after.timing) {
        (Some(old), Some(new)) => (old, new),
        (old, new) => {
            let missing: Vec<String> = [(old, before), (new, after)]
                .iter()
                .filter(|(timing, _)| timing.is_none())
                .map(|(_, side)| {
                    // The observations it names, or the certificate itself when it names none.
                    let named = observations_path(&side.path, &side.certificate).ok().flatten();
                    named.unwrap_or_else(|| side.path.clone()).display().to_string()
                })
                .collect();
            return LatencyOutcome::NotCompared {
                reason: format!("no per-sample latencies in {}", missing.join(" or in ")),
            };
        }
    };
    if old.basis != new.basis {
        return LatencyOutcome::NotCompared {
            reason: format!(
                "OLD latencies are {}, NEW {}: not comparable",
                old.basis.as_str(),
                new.basis.as_str()
            ),
        };
    }
    let test = mann_whitney_greater(&new.latencies_ms, &old.latencies_ms)
        .expect("timings hold at least one latency (runs.rs drops empty ones)");
    let [median_old_ms, p99_old_ms] = crate::vocab::percentiles(&old.latencies_ms, [0.5, 0.99]);
    let [median_new_ms, p99_new_ms] = crate::vocab::percentiles(&new.latencies_ms, [0.5, 0.99]);
    let grew = |old: f64, new: f64| new > old && new >= old * (1.0 + LATENCY_PRACTICAL_INCREASE);
    let significant = test.p_value < LATENCY_ALPHA;
    let practical = grew(median_old_ms, median_new_ms) || grew(p99_old_ms, p99_new_ms);
    LatencyOutcome::Compared(LatencyTest {
        basis: new.basis,
        samples_old: old.latencies_ms.len(),
        samples_new: new.latencies_ms.len(),
        median_old_ms,
        median_new_ms,
        p99_old_ms,
        p99_new_ms,
        u: test.u,
        p_value: test.p_value,
        significant,
        practical,
        regression: significant && practical,
    })
}

#[cfg(test)]
mod tests;
