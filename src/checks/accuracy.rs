//! Accuracy of the compressed model: on its own against the family's absolute floor, and paired
//! with the FP32 reference on the same samples against the relative floor (MLPerf's 99 %),
//! overall and on the family's hardest slice. Intervals are bootstraps over the golden samples.

use super::Verdict;
use crate::backend::Basis;
use crate::metrics::{MetricKind, Scorer, PRIMARY};
use crate::stats::{bootstrap_interval, decide, samples_to_decide, Direction, Interval, Outcome};

pub struct AccuracyInput<'a> {
    pub metric: MetricKind,
    /// The compressed and reference models' outputs, bound to the same golden samples.
    pub compressed: &'a dyn Scorer,
    pub reference: &'a dyn Scorer,
    pub confidence: f64,
    pub seed: u64,
}

fn value(s: &dyn Scorer, idx: &[usize], key: &str) -> f64 {
    s.evaluate(idx).get(key).copied().unwrap_or(f64::NAN)
}

fn finish(mut v: Verdict, ci: Interval, estimate: f64, limit: f64, n: usize) -> Verdict {
    v.ci = Some(ci);
    v.samples = Some(n);
    if v.verdict == Outcome::Inconclusive {
        v.samples_to_decide = samples_to_decide(n, estimate, &ci, limit);
    }
    v
}

/// The compressed model's metric against the family's absolute floor (a ceiling for errors).
pub fn accuracy_floor_check(input: &AccuracyInput<'_>, floor: f64) -> Verdict {
    let n = input.compressed.len();
    let all: Vec<usize> = (0..n).collect();
    let estimate = value(input.compressed, &all, PRIMARY);
    let ci = bootstrap_interval(n, input.confidence, input.seed, |idx| value(input.compressed, idx, PRIMARY));
    let direction = if input.metric.higher_is_better() { Direction::AtLeast } else { Direction::AtMost };
    let outcome = decide(&ci, floor, direction);
    let reason = format!(
        "{} {estimate:.4} on {n} golden samples, {:.0} % interval [{:.4}, {:.4}], {} {floor}",
        input.metric.name(),
        input.confidence * 100.0,
        ci.low,
        ci.high.unwrap_or(f64::NAN),
        if input.metric.higher_is_better() { "floor" } else { "ceiling" },
    );
    let v = Verdict::new("accuracy", outcome, input.metric.unit(), Basis::Measured, reason)
        .with_values(estimate, Some(floor));
    finish(v, ci, estimate, floor, n)
}

/// The compressed model's quality relative to the FP32 reference on the same samples, for the
/// value `key` (the primary metric or a slice): compressed / FP32 for higher-is-better metrics,
/// FP32 / compressed for errors. Both models are resampled on the same indices, so the noise
/// they share cancels.
pub fn accuracy_vs_reference_check(
    input: &AccuracyInput<'_>,
    rel_floor: f64,
    key: &str,
    name: &str,
) -> Verdict {
    let n = input.compressed.len();
    let all: Vec<usize> = (0..n).collect();
    let higher = input.metric.higher_is_better();
    let pair = |idx: &[usize]| (value(input.compressed, idx, key), value(input.reference, idx, key));
    let ratio = |idx: &[usize]| {
        let (q, r) = pair(idx);
        let (num, den) = if higher { (q, r) } else { (r, q) };
        if den == 0.0 {
            if num == 0.0 {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            num / den
        }
    };
    let (q, r) = pair(&all);
    let estimate = ratio(&all);
    let ci = bootstrap_interval(n, input.confidence, input.seed ^ 0x5EED, ratio);
    let outcome = decide(&ci, rel_floor, Direction::AtLeast);
    let what = if key == PRIMARY {
        input.metric.name().to_string()
    } else {
        format!("{} on {key}", input.metric.name())
    };
    let reason = format!(
        "{what}: compressed {q:.4} vs FP32 {r:.4}, quality ratio {estimate:.4}, {:.0} % interval [{:.4}, {:.4}], floor {rel_floor}",
        input.confidence * 100.0,
        ci.low,
        ci.high.unwrap_or(f64::NAN)
    );
    let v = Verdict::new(name, outcome, "ratio to FP32", Basis::Measured, reason)
        .with_values(estimate, Some(rel_floor));
    finish(v, ci, estimate, rel_floor, n)
}
