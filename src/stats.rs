//! Statistics behind every verdict: percentiles as MLPerf defines them, distribution-free
//! confidence intervals for percentiles, percentile-bootstrap intervals for metrics, the
//! decision rule that turns an interval and a limit into PASS, FAIL or INCONCLUSIVE, and the
//! Mann–Whitney U test that compares two runs' latency samples.

use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{Binomial, DiscreteCDF};

use crate::vocab::{percentile, Interval, Outcome};

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
        method: "order statistics (binomial, distribution-free)".into(),
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
        method: "paired percentile bootstrap (2000 resamples)".into(),
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
    Interval { low, high: Some(high), confidence, method: "Clopper-Pearson (exact binomial)".into() }
}

/// Which side of the limit a passing value lies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    AtMost,
    AtLeast,
}

/// The decision rule (ISO/IEC 17025 §7.8.6 asks that it be stated): PASS only when the
/// conservative end of the interval meets the limit, FAIL when even the optimistic end misses
/// it, INCONCLUSIVE otherwise.
///
/// ```
/// use edgecert::stats::{decide, Direction};
/// use edgecert::vocab::{Interval, Outcome};
/// let p99 = Interval { low: 30.1, high: Some(34.0), confidence: 0.95, method: "example".into() };
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

/// MLPerf's early-stopping confidence (loadgen's, for every latency-bound scenario).
pub const EARLY_STOPPING_CONFIDENCE: f64 = 0.99;

/// MLPerf early stopping's odds: the chance of at most `t` of `h + t` queries over the bound
/// if the p-th percentile sat exactly at it (each query over with probability 1 − p). That is
/// the binomial CDF, P(Binomial(h + t, 1 − p) ≤ t) = I_p(h, t + 1).
fn early_stopping_odds(h: u64, t: u64, p: f64) -> f64 {
    if h == 0 {
        // No query under the bound is no evidence at all.
        return 1.0;
    }
    statrs::function::beta::beta_reg(h as f64, (t + 1) as f64, p)
}

/// MLPerf early stopping: whether `n` queries, `t` of them over the latency bound, let one
/// claim the `p`-th percentile is within the bound at confidence `c`, i.e. whether
/// I_p(n − t, t + 1) ≤ 1 − c. Smaller odds are stronger evidence, so more queries under the
/// bound can only turn a claim that does not hold into one that does.
///
/// ```
/// use edgecert::stats::early_stopping_holds;
/// // p99 at 99 % confidence: one slow query in 662 is tolerated, two in 700 are not.
/// assert!(early_stopping_holds(662, 1, 0.99, 0.99));
/// assert!(!early_stopping_holds(661, 1, 0.99, 0.99));
/// assert!(!early_stopping_holds(700, 2, 0.99, 0.99));
/// ```
pub fn early_stopping_holds(n: u64, t: u64, p: f64, c: f64) -> bool {
    t <= n && early_stopping_odds(n - t, t, p) <= 1.0 - c
}

/// The fewest queries with which `t` over the bound still let early stopping claim the
/// `p`-th percentile at confidence `c`: `h + t` for the smallest passing `h`. At c = 0.99 with
/// none over (t = 0) that is 44 at p90, 459 at p99 and 4,603 at p99.9; MLPerf's published
/// minimums (64, 662, 6,636) are this count with one query over (t = 1), which loadgen's
/// single-stream scenario asks for so its estimate can discard the slowest query.
///
/// `p` and `c` must lie strictly between 0 and 1 (else no count suffices).
pub fn early_stopping_min_queries(t: u64, p: f64, c: f64) -> u64 {
    assert!(0.0 < p && p < 1.0 && 0.0 < c && c < 1.0, "percentile {p} and confidence {c} must be in (0, 1)");
    let passes = |h: u64| early_stopping_odds(h, t, p) <= 1.0 - c;
    // The odds fall as h grows: double past the answer, then bisect (lo fails, hi passes).
    let (mut lo, mut hi) = (0, 1);
    while !passes(hi) {
        (lo, hi) = (hi, hi * 2);
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if passes(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi + t
}

/// A one-sided Mann–Whitney U test: is the first sample stochastically larger than the second?
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U of the first sample: the pairs (x, y) with x > y, a tie counting one half.
    pub u: f64,
    /// U standardised under the null hypothesis, with continuity and tie corrections.
    pub z: f64,
    /// The chance of a U at least this large if both samples came from one distribution.
    pub p_value: f64,
}

/// One-sided Mann–Whitney U test that `x` is stochastically larger than `y`, by the normal
/// approximation with tie and continuity corrections (scipy's `mannwhitneyu(x, y,
/// alternative="greater", method="asymptotic")`). It compares ranks, not means, so a few slow
/// outliers cannot fake a shift and no distribution is assumed; with latency samples in the
/// hundreds the normal approximation is accurate. `None` when either sample is empty.
///
/// ```
/// // scipy's documented example: two-sided asymptotic p = 0.11134688653314041.
/// let males = [19.0, 22.0, 16.0, 29.0, 24.0];
/// let females = [20.0, 11.0, 17.0, 12.0];
/// let test = edgecert::stats::mann_whitney_greater(&males, &females).unwrap();
/// assert_eq!(test.u, 17.0);
/// assert!((2.0 * test.p_value - 0.11134688653314041).abs() < 1e-9);
/// ```
pub fn mann_whitney_greater(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    use statrs::distribution::{ContinuousCDF, Normal};
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut pooled: Vec<(f64, bool)> =
        x.iter().map(|&v| (v, true)).chain(y.iter().map(|&v| (v, false))).collect();
    pooled.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Tied values share the mean of the ranks they span; each run of t ties shrinks the
    // variance of U by t³ − t.
    let (mut rank_sum_x, mut ties) = (0.0, 0.0);
    let mut start = 0;
    while start < pooled.len() {
        let end = start + pooled[start..].iter().take_while(|p| p.0 == pooled[start].0).count().max(1);
        let t = (end - start) as f64;
        let mean_rank = (start + 1 + end) as f64 / 2.0;
        rank_sum_x += mean_rank * pooled[start..end].iter().filter(|p| p.1).count() as f64;
        ties += t * t * t - t;
        start = end;
    }
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let n = n1 + n2;
    let u = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        // Every value is the same: no evidence of any shift.
        return Some(MannWhitney { u, z: 0.0, p_value: 1.0 });
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / variance.sqrt();
    let p_value = Normal::standard().sf(z);
    Some(MannWhitney { u, z, p_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(low: f64, high: f64) -> Interval {
        Interval { low, high: Some(high), confidence: 0.95, method: "test".into() }
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

    #[test]
    fn mann_whitney_matches_scipys_documented_example() {
        // scipy.stats.mannwhitneyu docs: U1 = 17, asymptotic two-sided p = 0.11134688653314041,
        // so the one-sided p is half of it.
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let test = mann_whitney_greater(&males, &females).unwrap();
        assert_eq!(test.u, 17.0);
        // statrs's normal tail is accurate to about 1e-11.
        assert!((test.p_value - 0.11134688653314041 / 2.0).abs() < 1e-9, "{test:?}");
    }

    #[test]
    fn mann_whitney_with_ties_matches_a_hand_computed_example() {
        // Pooled ranks: 1 -> 1; the three 2s -> 3; the two 3s -> 5.5; 4 -> 7. R_x = 12.5, so
        // U = 12.5 - 4·5/2 = 2.5; Var = 4·3/12 · (8 - (24 + 6)/42) = 7.2857142857;
        // z = (2.5 - 6 - 0.5)/√Var = -1.4819171472698969; p = 1 - Φ(z) = 0.9308188290598747.
        let test = mann_whitney_greater(&[1.0, 2.0, 2.0, 3.0], &[2.0, 3.0, 4.0]).unwrap();
        assert_eq!(test.u, 2.5);
        assert!((test.z + 1.4819171472698969).abs() < 1e-12, "{test:?}");
        assert!((test.p_value - 0.9308188290598747).abs() < 1e-9, "{test:?}");
    }

    #[test]
    fn mann_whitney_sees_no_shift_between_equal_samples_and_a_clear_one_between_shifted() {
        let base: Vec<f64> = (0..200).map(|i| 1.0 + (i % 17) as f64 / 100.0).collect();
        let same = mann_whitney_greater(&base, &base).unwrap();
        assert_eq!(same.u, 200.0 * 200.0 / 2.0);
        assert!(same.p_value > 0.4, "{same:?}");
        let slower: Vec<f64> = base.iter().map(|v| v * 1.2).collect();
        assert!(mann_whitney_greater(&slower, &base).unwrap().p_value < 1e-10);
        assert!(mann_whitney_greater(&base, &slower).unwrap().p_value > 0.99);
        let constant = mann_whitney_greater(&[3.0; 5], &[3.0; 4]).unwrap();
        assert_eq!(constant.p_value, 1.0);
        assert_eq!(mann_whitney_greater(&[], &base), None);
    }

    /// P(Binomial(n, q) ≤ t) summed term by term in logs: a check on the incomplete beta
    /// that shares no code with it.
    fn binomial_cdf(n: u64, q: f64, t: u64) -> f64 {
        use statrs::function::gamma::ln_gamma;
        let ln_choose =
            |k: u64| ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0);
        (0..=t.min(n))
            .map(|k| (ln_choose(k) + k as f64 * q.ln() + (n - k) as f64 * (1.0 - q).ln()).exp())
            .sum()
    }

    #[test]
    fn early_stopping_odds_are_the_binomial_cdf() {
        for (h, t, p) in
            [(44, 0, 0.9), (63, 1, 0.9), (661, 1, 0.99), (700, 7, 0.99), (6635, 1, 0.999), (9000, 40, 0.995)]
        {
            let want = binomial_cdf(h + t, 1.0 - p, t);
            let got = early_stopping_odds(h, t, p);
            assert!(
                (got - want).abs() <= 1e-9 * want.max(1e-300) + 1e-15,
                "h {h} t {t} p {p}: {got} vs {want}"
            );
        }
        assert_eq!(early_stopping_odds(0, 3, 0.99), 1.0);
    }

    #[test]
    fn early_stopping_minimum_counts_match_mlperf() {
        let c = EARLY_STOPPING_CONFIDENCE;
        // None over: p^h ≤ 1 − c, so h = ⌈ln(0.01)/ln(p)⌉.
        assert_eq!([0.90, 0.99, 0.999].map(|p| early_stopping_min_queries(0, p, c)), [44, 459, 4603]);
        // One over: the "processed at least 64 queries" of MLPerf's single-stream summaries.
        assert_eq!([0.90, 0.99, 0.999].map(|p| early_stopping_min_queries(1, p, c)), [64, 662, 6636]);
        for (t, p) in [(0, 0.9), (1, 0.99), (5, 0.99), (2, 0.999)] {
            let n = early_stopping_min_queries(t, p, c);
            assert!(early_stopping_holds(n, t, p, c) && !early_stopping_holds(n - 1, t, p, c), "t {t} p {p}");
        }
    }

    #[test]
    fn early_stopping_needs_more_queries_the_more_are_over() {
        assert!(early_stopping_holds(459, 0, 0.99, 0.99));
        assert!(!early_stopping_holds(458, 0, 0.99, 0.99));
        assert!(!early_stopping_holds(700, 7, 0.99, 0.99));
        assert!(!early_stopping_holds(3, 4, 0.99, 0.99));
        let counts: Vec<u64> = (0..6).map(|t| early_stopping_min_queries(t, 0.99, 0.99)).collect();
        assert!(counts.windows(2).all(|w| w[1] > w[0]), "{counts:?}");
    }
}
