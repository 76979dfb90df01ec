//! Statistics behind every verdict: percentiles as MLPerf defines them, distribution-free
//! confidence intervals for percentiles, percentile-bootstrap intervals for metrics, and the
//! decision rule that turns an interval and a limit into PASS, FAIL or INCONCLUSIVE.

use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{Binomial, DiscreteCDF};

/// A confidence interval around an estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    /// `None` when the samples cannot bound it (too few for that percentile).
    pub high: Option<f64>,
    pub confidence: f64,
    pub method: &'static str,
}

/// MLPerf's percentile: the value at index floor(n·p) of the sorted samples.
///
/// ```
/// let latencies_ms: Vec<f64> = (1..=200).map(f64::from).collect();
/// assert_eq!(edgecert::stats::percentile(&latencies_ms, 0.99), 199.0);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).floor() as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Distribution-free interval for the p-th percentile from order statistics: the number of
/// samples below the true percentile is Binomial(n, p), so the order statistics at that
/// binomial's α/2 and 1−α/2 quantiles bracket it with the stated confidence.
pub fn percentile_interval(sorted: &[f64], p: f64, confidence: f64) -> Interval {
    let n = sorted.len() as u64;
    let alpha = 1.0 - confidence;
    let bin = Binomial::new(p, n).expect("p in [0, 1]");
    let lo_rank = bin.inverse_cdf(alpha / 2.0) as usize; // 1-based rank l: P(B < l) <= α/2
    let hi_rank = bin.inverse_cdf(1.0 - alpha / 2.0) as usize + 1;
    Interval {
        low: sorted[lo_rank.saturating_sub(1).min(sorted.len() - 1)],
        high: (hi_rank <= sorted.len()).then(|| sorted[hi_rank - 1]),
        confidence,
        method: "order statistics (binomial, distribution-free)",
    }
}

/// SplitMix64: a tiny, fully specified generator, so resampling (and so every certificate) is
/// reproducible bit for bit across platforms and crate upgrades.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// `BOOTSTRAP_RESAMPLES` resamples (with replacement) of `n` sample indices, each mapped
/// through `statistic`. Resample b draws from its own seeded stream, so the result does not
/// depend on thread count.
pub fn bootstrap<T, F>(n: usize, seed: u64, statistic: F) -> Vec<T>
where
    T: Send,
    F: Fn(&[usize]) -> T + Sync,
{
    (0..BOOTSTRAP_RESAMPLES)
        .into_par_iter()
        .map(|b| {
            let mut rng = SplitMix64::new(seed ^ (b as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            let idx: Vec<usize> = (0..n).map(|_| rng.below(n)).collect();
            statistic(&idx)
        })
        .collect()
}

/// Percentile interval of bootstrap replicates.
pub fn percentile_bootstrap_interval(mut replicates: Vec<f64>, confidence: f64) -> Interval {
    replicates.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    Interval {
        low: percentile(&replicates, alpha / 2.0),
        high: Some(percentile(&replicates, 1.0 - alpha / 2.0)),
        confidence,
        method: "paired percentile bootstrap (2000 resamples)",
    }
}

/// Percentile-bootstrap interval of `statistic` over `n` samples.
pub fn bootstrap_interval<F>(n: usize, confidence: f64, seed: u64, statistic: F) -> Interval
where
    F: Fn(&[usize]) -> f64 + Sync,
{
    percentile_bootstrap_interval(bootstrap(n, seed, statistic), confidence)
}

/// Clopper–Pearson (exact binomial) interval for a proportion of `successes` in `n` trials: the
/// bootstrap collapses to a point when every sample agrees, which would overstate certainty.
///
/// ```
/// let ci = edgecert::stats::proportion_interval(60, 60, 0.95);
/// assert!((ci.low - 0.9404).abs() < 1e-3 && ci.high == Some(1.0));
/// ```
pub fn proportion_interval(successes: usize, n: usize, confidence: f64) -> Interval {
    use statrs::distribution::{Beta, ContinuousCDF};
    let alpha = 1.0 - confidence;
    let (x, n_f) = (successes as f64, n as f64);
    let low = if successes == 0 {
        0.0
    } else {
        Beta::new(x, n_f - x + 1.0).map_or(0.0, |b| b.inverse_cdf(alpha / 2.0))
    };
    let high = if successes >= n {
        1.0
    } else {
        Beta::new(x + 1.0, n_f - x).map_or(1.0, |b| b.inverse_cdf(1.0 - alpha / 2.0))
    };
    Interval { low, high: Some(high), confidence, method: "Clopper-Pearson (exact binomial)" }
}

/// Which side of the limit a passing value lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    AtMost,
    AtLeast,
}

pub use crate::report::schema::Outcome;

impl From<Interval> for crate::report::schema::Interval {
    fn from(i: Interval) -> Self {
        crate::report::schema::Interval {
            low: i.low,
            high: i.high,
            confidence: i.confidence,
            method: i.method.to_string(),
        }
    }
}

/// The decision rule (ISO/IEC 17025 §7.8.6 asks that it be stated): PASS only when the
/// conservative end of the interval meets the limit, FAIL when even the optimistic end misses
/// it, INCONCLUSIVE otherwise.
///
/// ```
/// use edgecert::stats::{decide, Direction, Interval, Outcome};
/// let p99 = Interval { low: 30.1, high: Some(34.0), confidence: 0.95, method: "example" };
/// assert_eq!(decide(&p99, 33.0, Direction::AtMost), Outcome::Inconclusive);
/// assert_eq!(decide(&p99, 35.0, Direction::AtMost), Outcome::Pass);
/// ```
pub fn decide(ci: &Interval, limit: f64, direction: Direction) -> Outcome {
    let high = ci.high.unwrap_or(f64::INFINITY);
    match direction {
        Direction::AtMost if high <= limit => Outcome::Pass,
        Direction::AtMost if ci.low > limit => Outcome::Fail,
        Direction::AtLeast if ci.low >= limit => Outcome::Pass,
        Direction::AtLeast if high < limit => Outcome::Fail,
        _ => Outcome::Inconclusive,
    }
}

/// Samples that would likely shrink the interval enough to decide: half-widths scale as 1/√n.
pub fn samples_to_decide(n: usize, estimate: f64, ci: &Interval, limit: f64) -> Option<usize> {
    let half = (ci.high? - ci.low) / 2.0;
    let margin = (estimate - limit).abs();
    if margin <= f64::EPSILON * limit.abs().max(1.0) {
        return None;
    }
    Some(((n as f64) * (half / margin).powi(2)).ceil() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(low: f64, high: f64) -> Interval {
        Interval { low, high: Some(high), confidence: 0.95, method: "test" }
    }

    #[test]
    fn percentile_is_floor_index_as_in_mlperf() {
        let v: Vec<f64> = (0..100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v[..10], 0.99), 9.0);
    }

    #[test]
    fn percentile_interval_brackets_the_median_of_a_known_sample() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let i = percentile_interval(&v, 0.5, 0.95);
        // Binomial(100, 0.5): ranks 40 and 61 (the textbook 95 % interval for the median).
        assert_eq!((i.low, i.high), (40.0, Some(61.0)));
    }

    #[test]
    fn p99_of_too_few_samples_has_no_upper_bound() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_interval(&v, 0.99, 0.95).high, None);
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        assert!(percentile_interval(&v, 0.99, 0.95).high.is_some());
    }

    #[test]
    fn decision_rule_uses_the_conservative_end() {
        assert_eq!(decide(&ci(1.0, 2.0), 3.0, Direction::AtMost), Outcome::Pass);
        assert_eq!(decide(&ci(1.0, 4.0), 3.0, Direction::AtMost), Outcome::Inconclusive);
        assert_eq!(decide(&ci(3.5, 4.0), 3.0, Direction::AtMost), Outcome::Fail);
        assert_eq!(decide(&ci(0.9, 0.95), 0.8, Direction::AtLeast), Outcome::Pass);
        assert_eq!(decide(&ci(0.7, 0.85), 0.8, Direction::AtLeast), Outcome::Inconclusive);
        assert_eq!(decide(&ci(0.5, 0.7), 0.8, Direction::AtLeast), Outcome::Fail);
        let unbounded = Interval { high: None, ..ci(1.0, 0.0) };
        assert_eq!(decide(&unbounded, 3.0, Direction::AtMost), Outcome::Inconclusive);
    }

    #[test]
    fn bootstrap_of_a_mean_covers_it_and_is_reproducible() {
        let data: Vec<f64> = (0..200).map(|i| (i % 10) as f64).collect();
        let mean = |idx: &[usize]| idx.iter().map(|&i| data[i]).sum::<f64>() / idx.len() as f64;
        let a = bootstrap_interval(data.len(), 0.95, 7, mean);
        let b = bootstrap_interval(data.len(), 0.95, 7, mean);
        assert_eq!(a, b);
        assert!(a.low < 4.5 && a.high.unwrap() > 4.5);
        assert!(a.high.unwrap() - a.low < 1.0);
    }

    #[test]
    fn samples_to_decide_grows_as_the_margin_shrinks() {
        let near = samples_to_decide(100, 0.81, &ci(0.75, 0.87), 0.8).unwrap();
        let far = samples_to_decide(100, 0.84, &ci(0.78, 0.90), 0.8).unwrap();
        assert!(near > far && far > 100);
    }
}
