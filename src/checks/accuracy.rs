//! Accuracy of the compressed model: on its own against the family's absolute floor, and paired
//! with the FP32 reference on the same samples against the relative floor (MLPerf's 99 %),
//! overall and on the family's hardest slice.
//!
//! One paired bootstrap serves every verdict and every reported value: each resample of the
//! golden samples is evaluated for both models, so a ratio's interval carries the pairing (the
//! sampling noise both models share cancels).

use std::collections::BTreeMap;

use super::{CheckKind, Verdict};
use crate::metrics::{Evaluation, MetricKind, Scorer, PRIMARY};
use crate::stats::{bootstrap, decide, percentile_bootstrap_interval, samples_to_decide, Direction};
use crate::vocab::{Basis, Interval, Outcome, ValuePair};

/// Both models' metric values on the full golden set and on every bootstrap resample.
pub struct PairedEvaluation {
    pub metric: MetricKind,
    pub confidence: f64,
    pub n: usize,
    pub compressed: Evaluation,
    pub reference: Evaluation,
    resamples: Vec<(Evaluation, Evaluation)>,
}

impl PairedEvaluation {
    /// Evaluates both models on the full set and on the shared resamples.
    pub fn new(
        metric: MetricKind,
        compressed: &dyn Scorer,
        reference: &dyn Scorer,
        confidence: f64,
        seed: u64,
    ) -> Self {
        let n = compressed.len();
        let resamples = bootstrap(n, seed, |idx| (compressed.evaluate(idx), reference.evaluate(idx)));
        PairedEvaluation {
            metric,
            confidence,
            n,
            compressed: compressed.evaluate_all(),
            reference: reference.evaluate_all(),
            resamples,
        }
    }

    fn interval(&self, f: impl Fn(&Evaluation, &Evaluation) -> f64) -> Interval {
        percentile_bootstrap_interval(self.resamples.iter().map(|(c, r)| f(c, r)).collect(), self.confidence)
    }

    /// Every value of the metric with intervals, for the certificate.
    pub fn values(&self) -> BTreeMap<String, ValuePair> {
        self.reference
            .keys()
            .map(|k| {
                let get = |e: &Evaluation| e.get(k).copied().unwrap_or(f64::NAN);
                let pair = ValuePair {
                    fp32: get(&self.reference),
                    fp32_ci: self.interval(|_, r| get(r)),
                    compressed: get(&self.compressed),
                    compressed_ci: self.interval(|c, _| get(c)),
                };
                (k.clone(), pair)
            })
            .collect()
    }

    /// Quality ratio of the compressed model to FP32 on `key`: compressed / FP32 for
    /// higher-is-better metrics, FP32 / compressed for errors.
    fn ratio(&self, c: &Evaluation, r: &Evaluation, key: &str) -> f64 {
        let (q, f) = (c.get(key).copied().unwrap_or(f64::NAN), r.get(key).copied().unwrap_or(f64::NAN));
        let (num, den) = if self.metric.higher_is_better() { (q, f) } else { (f, q) };
        if den == 0.0 {
            if num == 0.0 {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            num / den
        }
    }
}

fn finish(mut v: Verdict, ci: Interval, estimate: f64, limit: f64, n: usize) -> Verdict {
    v.samples = Some(n);
    if v.verdict == Outcome::Inconclusive {
        v.samples_to_decide = samples_to_decide(n, estimate, &ci, limit);
    }
    v.ci = Some(ci);
    v
}

/// The compressed model's metric against the family's absolute floor (a ceiling for errors).
pub fn accuracy_floor_check(e: &PairedEvaluation, floor: f64) -> Verdict {
    let estimate = e.compressed[PRIMARY];
    let ci = e.interval(|c, _| c[PRIMARY]);
    let higher = e.metric.higher_is_better();
    let outcome = decide(&ci, floor, if higher { Direction::AtLeast } else { Direction::AtMost });
    let reason = format!(
        "{} {estimate:.4} on {} golden samples, {:.0} % interval [{:.4}, {:.4}], {} {floor}",
        e.metric.name(),
        e.n,
        e.confidence * 100.0,
        ci.low,
        ci.high.unwrap_or(f64::NAN),
        if higher { "floor" } else { "ceiling" },
    );
    let v = Verdict::new(CheckKind::Accuracy, outcome, e.metric.unit(), Basis::Measured, reason)
        .with_values(estimate, Some(floor));
    finish(v, ci, estimate, floor, e.n)
}

/// The compressed model's quality relative to FP32 on the same samples, for `key` (the primary
/// value or a slice).
pub fn accuracy_vs_reference_check(
    e: &PairedEvaluation,
    rel_floor: f64,
    key: &str,
    name: CheckKind,
) -> Verdict {
    let estimate = e.ratio(&e.compressed, &e.reference, key);
    let ci = e.interval(|c, r| e.ratio(c, r, key));
    let outcome = decide(&ci, rel_floor, Direction::AtLeast);
    let what =
        if key == PRIMARY { e.metric.name().to_string() } else { format!("{} on {key}", e.metric.name()) };
    let get = |ev: &Evaluation| ev.get(key).copied().unwrap_or(f64::NAN);
    let reason = format!(
        "{what}: compressed {:.4} vs FP32 {:.4}, quality ratio {estimate:.4}, {:.0} % interval [{:.4}, {:.4}], floor {rel_floor}",
        get(&e.compressed),
        get(&e.reference),
        e.confidence * 100.0,
        ci.low,
        ci.high.unwrap_or(f64::NAN)
    );
    let v = Verdict::new(name, outcome, "ratio to FP32", Basis::Measured, reason)
        .with_values(estimate, Some(rel_floor));
    finish(v, ci, estimate, rel_floor, e.n)
}

/// The compressed model's metric on a second engine (`certify --cross-check`), paired with the
/// same FP32 contributions and resamples as the first.
pub struct EngineCrossCheck {
    /// The engine the accuracy verdict rests on.
    pub primary: String,
    /// The engine that replayed the compressed model again.
    pub other: String,
    pub paired: PairedEvaluation,
}

/// `verdict`, decided on the primary engine, against the same check on the other engine: when
/// they differ the accuracy claim depends on the arithmetic, and the check is INCONCLUSIVE
/// with both figures; when they agree, the reason says so.
pub fn cross_checked(mut verdict: Verdict, other: Verdict, x: &EngineCrossCheck) -> Verdict {
    let figure = |v: &Verdict| v.measured.map_or("no figure".to_string(), |m| format!("{m:.4}"));
    if verdict.verdict == other.verdict {
        verdict.reason = format!(
            "{}; on {} (verdict rests on it); {} agrees ({})",
            verdict.reason,
            x.primary,
            x.other,
            figure(&other)
        );
        return verdict;
    }
    verdict.reason = format!(
        "the engines disagree: {} on {} ({}) but {} on {} ({}); a chip runs integer arithmetic, so decide on the engine whose kernels match it. On {}: {}",
        verdict.verdict.as_str(),
        x.primary,
        figure(&verdict),
        other.verdict.as_str(),
        x.other,
        figure(&other),
        x.primary,
        verdict.reason
    );
    verdict.verdict = Outcome::Inconclusive;
    verdict.samples_to_decide = None;
    verdict
}
