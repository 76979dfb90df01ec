//! Accuracy of the compressed model: on its own against the family's absolute floor, and paired
//! with the FP32 reference on the same samples against the relative floor (MLPerf's 99 %).
//! Intervals are paired bootstraps over the golden samples.

use super::Verdict;
use crate::backend::Basis;
use crate::metrics::{mean_over, MetricKind};
use crate::stats::{bootstrap_interval, decide, samples_to_decide, Direction, Interval, Outcome};

pub struct AccuracyInput<'a> {
    pub metric: MetricKind,
    /// Per-sample scores of the compressed and reference models, same sample order.
    pub compressed: &'a [f64],
    pub reference: &'a [f64],
    pub confidence: f64,
    pub seed: u64,
}

fn finish(mut v: Verdict, ci: Interval, estimate: f64, limit: f64, n: usize) -> Verdict {
    v.ci = Some(ci);
    v.samples = Some(n);
    if v.verdict == Outcome::Inconclusive {
        v.samples_to_decide = samples_to_decide(n, estimate, &ci, limit);
    }
    v
}

fn direction(metric: MetricKind) -> Direction {
    if metric.higher_is_better() {
        Direction::AtLeast
    } else {
        Direction::AtMost
    }
}

/// The compressed model's metric against the family's absolute floor.
pub fn accuracy_floor_check(input: &AccuracyInput<'_>, floor: f64) -> Verdict {
    let n = input.compressed.len();
    let all: Vec<usize> = (0..n).collect();
    let value = mean_over(input.compressed, &all);
    let ci = bootstrap_interval(n, input.confidence, input.seed, |idx| mean_over(input.compressed, idx));
    let outcome = decide(&ci, floor, direction(input.metric));
    let reason = format!(
        "{} {value:.4} on {n} golden samples, {:.0} % interval [{:.4}, {:.4}], floor {floor}",
        input.metric.name(),
        input.confidence * 100.0,
        ci.low,
        ci.high.unwrap_or(f64::NAN)
    );
    let v = Verdict::new("accuracy", outcome, input.metric.unit(), Basis::Measured, reason)
        .with_values(value, Some(floor));
    finish(v, ci, value, floor, n)
}

/// The compressed model's metric relative to the FP32 reference's on the same samples: the
/// quality ratio (compressed / FP32 for higher-is-better metrics, FP32 / compressed for errors),
/// with a paired bootstrap interval, resampling both models on the same samples so the noise
/// they share cancels.
pub fn accuracy_vs_reference_check(input: &AccuracyInput<'_>, rel_floor: f64) -> Verdict {
    let n = input.compressed.len();
    let all: Vec<usize> = (0..n).collect();
    let higher = input.metric.higher_is_better();
    let ratio = |idx: &[usize]| {
        let (q, r) = (mean_over(input.compressed, idx), mean_over(input.reference, idx));
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
    let (q, r) = (mean_over(input.compressed, &all), mean_over(input.reference, &all));
    let estimate = ratio(&all);
    let ci = bootstrap_interval(n, input.confidence, input.seed ^ 0x5EED, ratio);
    let outcome = decide(&ci, rel_floor, Direction::AtLeast);
    let reason = format!(
        "compressed {q:.4} vs FP32 {r:.4}: quality ratio {estimate:.4}, {:.0} % interval [{:.4}, {:.4}], floor {rel_floor}",
        input.confidence * 100.0,
        ci.low,
        ci.high.unwrap_or(f64::NAN)
    );
    let v = Verdict::new("accuracy_vs_fp32", outcome, "ratio to FP32", Basis::Measured, reason)
        .with_values(estimate, Some(rel_floor));
    finish(v, ci, estimate, rel_floor, n)
}
