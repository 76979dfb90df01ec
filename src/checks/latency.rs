//! Latency: the p99 of single-inference latency, with a distribution-free interval, against the
//! family's budget.

use super::{CheckKind, Verdict};
use crate::stats::{
    decide, early_stopping_holds, early_stopping_min_queries, percentile_interval, samples_to_decide,
    Direction, EARLY_STOPPING_CONFIDENCE,
};
use crate::vocab::{percentile, Interval, Outcome, SystematicError, Timing};

pub const PERCENTILE: f64 = 0.99;
/// MLPerf TEST04: one sample repeated may be at most this much faster than the set.
pub const REPEAT_SPEEDUP_LIMIT: f64 = 0.10;

/// The set's percentile a repeated sample must also beat to be suspected: a cached answer comes
/// back faster than nearly every real inference, while a runtime that starts a process per
/// batch varies 2× between processes on a sub-millisecond model without caching anything.
pub const REPEAT_BELOW_PERCENTILE: f64 = 0.05;

/// Why latencies cannot be trusted, when one sample repeated ran more than
/// [`REPEAT_SPEEDUP_LIMIT`] faster than the set's median and faster than its
/// [`REPEAT_BELOW_PERCENTILE`] quantile: the backend may return cached results.
pub fn caching_suspected(sorted_set_ms: &[f64], repeated_median_ms: f64) -> Option<String> {
    let set_median_ms = percentile(sorted_set_ms, 0.5);
    let floor_ms = percentile(sorted_set_ms, REPEAT_BELOW_PERCENTILE);
    let faster = 1.0 - repeated_median_ms / set_median_ms;
    (faster > REPEAT_SPEEDUP_LIMIT && repeated_median_ms < floor_ms).then(|| {
        format!(
            "MLPerf TEST04: one sample repeated ran {:.0} % faster than the set (median {repeated_median_ms:.4} vs {set_median_ms:.4} ms; at most {:.0} % allowed) and faster than the set's p5 ({floor_ms:.4} ms): the backend may be caching results",
            faster * 100.0,
            REPEAT_SPEEDUP_LIMIT * 100.0
        )
    })
}

/// MLPerf's early-stopping reading of the run against the budget. It is stated beside the
/// verdict, not folded into it: the order-statistics interval decides, while this is the
/// claim an MLPerf submission would make from the same latencies, at MLPerf's confidence.
fn early_stopping_finding(latencies_ms: &[f64], limit_ms: f64, error: Option<&SystematicError>) -> String {
    let n = latencies_ms.len() as u64;
    let over = latencies_ms.iter().filter(|&&ms| ms > limit_ms).count() as u64;
    let c = EARLY_STOPPING_CONFIDENCE;
    // MLPerf's claim is about the queries as timed; a systematic error is outside it.
    let alone = error
        .map_or(String::new(), |e| format!(" (these figures alone, before the {})", Thresholds::band(e)));
    let head = format!("MLPerf early stopping: {over} of {n} queries over the {limit_ms} ms budget{alone}");
    if early_stopping_holds(n, over, PERCENTILE, c) {
        format!("{head}; the p99 bound holds at {:.0} % confidence", c * 100.0)
    } else {
        let more = early_stopping_min_queries(over, PERCENTILE, c).saturating_sub(n);
        format!(
            "{head}; the p99 bound is not shown at {:.0} % confidence: it needs {more} more queries with none over",
            c * 100.0
        )
    }
}

/// The thresholds a p99 interval is decided against. Without a systematic error both are the
/// budget. With one, e = |figure / chip's − 1|, the chip's p99 may be the figures' divided by
/// (1 − e) (figures e low) or by (1 + e) (figures e high), so PASS needs the upper bound at
/// most budget × (1 − e) and FAIL the lower bound over budget × (1 + e).
struct Thresholds<'e> {
    limit_ms: f64,
    error: Option<&'e SystematicError>,
    pass_at_ms: f64,
    fail_above_ms: f64,
}

impl<'e> Thresholds<'e> {
    fn new(limit_ms: f64, error: Option<&'e SystematicError>) -> Self {
        // A zero error is no error: the plain rule, and no sentence about it.
        let error = error.filter(|e| e.relative > 0.0);
        let e = error.map_or(0.0, |e| e.relative);
        // From an error of 1 the chip could be any number of times slower: no bound passes,
        // not even a p99 of zero.
        let pass_at_ms =
            if error.is_some_and(|e| !e.can_pass()) { f64::NEG_INFINITY } else { limit_ms * (1.0 - e) };
        Thresholds { limit_ms, error, pass_at_ms, fail_above_ms: limit_ms * (1.0 + e) }
    }

    fn decide(&self, ci: &Interval) -> Outcome {
        match (
            decide(ci, self.pass_at_ms, Direction::AtMost),
            decide(ci, self.fail_above_ms, Direction::AtMost),
        ) {
            (Outcome::Pass, _) => Outcome::Pass,
            (_, Outcome::Fail) => Outcome::Fail,
            _ => Outcome::Inconclusive,
        }
    }

    /// The threshold more samples could carry the interval past, if any: none once the p99
    /// itself lies between the two, where only the chip's own p99 decides.
    fn nearest(&self, p99: f64) -> Option<f64> {
        if p99 < self.pass_at_ms {
            Some(self.pass_at_ms)
        } else if p99 > self.fail_above_ms {
            Some(self.fail_above_ms)
        } else {
            self.error.is_none().then_some(self.limit_ms)
        }
    }

    /// "systematic error ±39 %, where from".
    fn band(e: &SystematicError) -> String {
        format!("systematic error {}, {}", e.percent(), e.source)
    }

    /// The threshold a side of the rule holds the interval to, the sign that gives it from the
    /// budget, and the factor the chip's latency may be of the figures with the verdict
    /// standing: PASS, budget × (1 − e), up to 1 / (1 − e); FAIL, budget × (1 + e), down to
    /// 1 / (1 + e).
    fn side(&self, outcome: Outcome, r: f64) -> (f64, char, f64) {
        match outcome {
            Outcome::Fail => (self.fail_above_ms, '+', 1.0 / (1.0 + r)),
            _ => (self.pass_at_ms, '−', 1.0 / (1.0 - r)),
        }
    }

    /// What the bound was held to, for a decided verdict: the budget, or the threshold the
    /// error leaves of it, and what holding it means for the chip.
    fn held_to(&self, outcome: Outcome) -> String {
        let limit_ms = self.limit_ms;
        let Some(e) = self.error else { return format!("the {limit_ms} ms budget") };
        let r = e.relative;
        let (threshold, sign, factor) = self.side(outcome, r);
        let verb = if outcome == Outcome::Fail { "missed" } else { "met" };
        format!(
            "{threshold:.4} ms, the {limit_ms} ms budget × (1 {sign} {r:.2}): {verb} even if the chip's latency is {factor:.2} times these figures ({})",
            Self::band(e)
        )
    }

    /// Why an interval that clears neither threshold is undecided, and what would decide it.
    fn undecided(&self, p99: f64, ci: &Interval, bound: &str) -> String {
        let limit_ms = self.limit_ms;
        let Some(e) = self.error else {
            return format!(
                "p99 {p99:.4} ms but its interval [{:.4}, {bound}] straddles the {limit_ms} ms budget",
                ci.low
            );
        };
        let r = e.relative;
        if !e.can_pass() {
            return format!(
                "p99 {p99:.4} ms (interval [{:.4}, {bound}]) cannot pass on emulated figures with a {}: the chip could be any number of times slower (the budget × (1 − {r:.2}) is not a positive time); FAIL needs a lower bound over {:.4} ms (× (1 + {r:.2})); a p99 measured on the chip can decide it",
                ci.low,
                Self::band(e),
                self.fail_above_ms
            );
        }
        match self.nearest(p99) {
            None => format!(
                "p99 {p99:.4} ms (interval [{:.4}, {bound}]) is too near the {limit_ms} ms budget for its {}: PASS needs an upper bound at most {:.4} ms (the budget × (1 − {r:.2})), FAIL a lower bound over {:.4} ms (× (1 + {r:.2})); a p99 measured on the chip can decide it",
                ci.low,
                Self::band(e),
                self.pass_at_ms,
                self.fail_above_ms
            ),
            Some(threshold) => {
                let which = if threshold < limit_ms { Outcome::Pass } else { Outcome::Fail };
                let (_, sign, _) = self.side(which, r);
                format!(
                    "p99 {p99:.4} ms but its interval [{:.4}, {bound}] straddles {threshold:.4} ms, the {} threshold (the {limit_ms} ms budget × (1 {sign} {r:.2}); {})",
                    ci.low,
                    which.as_str(),
                    Self::band(e)
                )
            }
        }
    }
}

pub fn latency_check(timing: &Timing, limit_ms: f64, confidence: f64) -> Verdict {
    let mut sorted = timing.latencies_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let p50 = percentile(&sorted, 0.5);
    let p90 = percentile(&sorted, 0.9);
    let p99 = percentile(&sorted, PERCENTILE);
    let ci = percentile_interval(&sorted, PERCENTILE, confidence);
    let thresholds = Thresholds::new(limit_ms, timing.systematic_error.as_ref());
    let outcome = thresholds.decide(&ci);
    let bound = ci.high.map_or("unbounded".to_string(), |h| format!("{h:.4} ms"));
    let reason = match outcome {
        Outcome::Pass => format!(
            "p99 {p99:.4} ms (upper bound {bound}) within {}; p50 {p50:.4}, p90 {p90:.4} ms; {}",
            thresholds.held_to(outcome),
            timing.what
        ),
        Outcome::Fail => format!(
            "p99 {p99:.4} ms (lower bound {:.4} ms) over {}; {}",
            ci.low,
            thresholds.held_to(outcome),
            timing.what
        ),
        Outcome::Inconclusive => format!("{}; {}", thresholds.undecided(p99, &ci, &bound), timing.what),
    };
    let mut v = Verdict::new(CheckKind::Latency, outcome, "ms", timing.basis, reason)
        .with_values(p99, Some(limit_ms));
    v.ci = Some(ci.clone());
    v.systematic_error = thresholds.error.map(|e| e.relative);
    v.samples = Some(n);
    if outcome == Outcome::Inconclusive {
        // More samples narrow the scatter, not a systematic error: past the thresholds, only
        // the chip's own p99 decides.
        v.samples_to_decide = thresholds
            .nearest(p99)
            .map(|threshold| samples_to_decide(n, p99, &ci, threshold).unwrap_or(662.max(n * 2)));
    }
    v.findings = vec![
        format!("p50 {p50:.4} ms"),
        format!("p90 {p90:.4} ms"),
        format!("p99 {p99:.4} ms"),
        early_stopping_finding(&sorted, limit_ms, thresholds.error),
    ];
    if let Some(s) = &timing.scenarios {
        // On the host CPU (no result cache), sub-millisecond models repeat a sample up to ~20 %
        // faster from cache and branch-predictor warmth alone: the compliance runs are reported
        // there, and enforced on a device, which may cache or compute less when timed.
        let mut failed = Vec::new();
        let paired = if s.repeat_round_set_ms.is_empty() { &sorted } else { &s.repeat_round_set_ms };
        let caching = caching_suspected(paired, s.repeated_sample_median_ms);
        failed.extend(caching.clone());
        v.findings.push(caching.unwrap_or_else(|| {
            format!(
                "MLPerf TEST04: one sample repeated, median {:.4} ms vs the set's {:.4} ms in the same rounds: no sign of cached results",
                s.repeated_sample_median_ms,
                percentile(paired, 0.5)
            )
        }));
        if s.timed_outputs.is_some_and(|t| t.compared == 0) {
            failed.push("MLPerf TEST01 was not performed: no timed run found the accuracy run's outputs for its sample".into());
        }
        if let Some(t) = s.timed_outputs.filter(|t| t.compared > 0) {
            let test01 = format!(
                "MLPerf TEST01: {} of {} timed runs gave outputs other than the accuracy run's for the same sample",
                t.differing, t.compared
            );
            if t.differing > 0 {
                failed.push(format!("{test01}: the timed runs did not compute what was judged accurate"));
            }
            v.findings.push(test01);
        }
        // A compliance failure makes a pass unproven; a budget already missed stays failed.
        if s.compliance_enforced && !failed.is_empty() && v.verdict == Outcome::Pass {
            v.verdict = Outcome::Inconclusive;
            v.reason = format!("{}; {}", failed.join("; "), v.reason);
            v.samples_to_decide = None;
        }
        v.findings.push(format!(
            "offline {:.1} inferences/s ({} inferences on {} threads)",
            s.offline_fps(),
            s.offline_inferences,
            s.offline_threads
        ));
        if s.single_stream_s > 0.0 {
            v.findings.push(format!(
                "single-stream: {n} queries in {:.1} s (at least 700 queries and {:.0} s asked; MLPerf asks 600 s)",
                s.single_stream_s, s.min_duration_s
            ));
        }
        if let (Some(first), Some(reload)) = (s.first_load_ms, s.reload_ms) {
            v.findings.push(format!("first load {first:.1} ms, reload {reload:.1} ms"));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::Basis;

    /// `n` latencies spread under a 5 ms budget, the last `over` of them at 9 ms.
    fn timing(n: usize, over: usize) -> Timing {
        let latencies_ms =
            (0..n).map(|i| if i < n - over { 1.0 + (i % 30) as f64 / 10.0 } else { 9.0 }).collect();
        Timing {
            latencies_ms,
            basis: Basis::Measured,
            what: "test".into(),
            power: None,
            scenarios: None,
            systematic_error: None,
            soak: None,
        }
    }

    /// 1,000 latencies of 10 ms, as an emulator that reads ±39 % off the chip would give them.
    fn emulated(relative: Option<f64>) -> Timing {
        let systematic_error =
            relative.map(|relative| SystematicError { relative, source: "fidelity".into() });
        Timing { latencies_ms: vec![10.0; 1000], basis: Basis::Emulated, systematic_error, ..timing(10, 0) }
    }

    #[test]
    fn an_emulated_pass_must_hold_across_the_emulators_error() {
        let v = latency_check(&emulated(Some(0.39)), 20.0, 0.95);
        assert_eq!(v.verdict, Outcome::Pass);
        assert!(
            v.reason.starts_with("p99 10.0000 ms (upper bound 10.0000 ms) within 12.2000 ms, the 20 ms budget × (1 − 0.39): met even if the chip's latency is 1.64 times these figures (systematic error ±39 %, fidelity); "),
            "{}",
            v.reason
        );
        assert_eq!(v.systematic_error, Some(0.39));
        // 10 ms against 15 ms: the scatter passes it, the error does not, and more samples cannot.
        let near = latency_check(&emulated(Some(0.39)), 15.0, 0.95);
        assert_eq!(near.verdict, Outcome::Inconclusive);
        assert_eq!(
            near.reason,
            "p99 10.0000 ms (interval [10.0000, 10.0000 ms]) is too near the 15 ms budget for its systematic error ±39 %, fidelity: PASS needs an upper bound at most 9.1500 ms (the budget × (1 − 0.39)), FAIL a lower bound over 20.8500 ms (× (1 + 0.39)); a p99 measured on the chip can decide it; test"
        );
        assert_eq!(near.samples_to_decide, None);
        assert!(
            near.findings.iter().any(|f| f.starts_with(
                "MLPerf early stopping: 0 of 1000 queries over the 15 ms budget (these figures alone, before the systematic error ±39 %, fidelity); the p99 bound holds"
            )),
            "{:?}",
            near.findings
        );
        // Negative control: without the error the same figures pass.
        assert_eq!(latency_check(&emulated(None), 15.0, 0.95).verdict, Outcome::Pass);
    }

    #[test]
    fn an_emulated_fail_must_hold_across_the_emulators_error() {
        assert_eq!(latency_check(&emulated(Some(0.39)), 8.0, 0.95).verdict, Outcome::Inconclusive);
        assert_eq!(latency_check(&emulated(None), 8.0, 0.95).verdict, Outcome::Fail);
        let far = latency_check(&emulated(Some(0.39)), 7.0, 0.95);
        assert_eq!(far.verdict, Outcome::Fail);
        assert!(
            far.reason.starts_with("p99 10.0000 ms (lower bound 10.0000 ms) over 9.7300 ms, the 7 ms budget × (1 + 0.39): missed even if the chip's latency is 0.72 times these figures (systematic error ±39 %, fidelity); "),
            "{}",
            far.reason
        );
    }

    #[test]
    fn an_interval_straddling_what_the_error_leaves_is_a_matter_of_samples() {
        let error = emulated(Some(0.39)).systematic_error;
        // p99 3.9 ms, upper bound 9 ms: under a 10 ms budget, over the 6.1 ms the error leaves.
        let v = latency_check(&Timing { systematic_error: error, ..timing(700, 3) }, 10.0, 0.95);
        assert_eq!(v.verdict, Outcome::Inconclusive);
        assert!(v.reason.contains("straddles 6.1000 ms, the PASS threshold (the 10 ms budget × (1 − 0.39); systematic error ±39 %, fidelity)"), "{}", v.reason);
        assert!(v.samples_to_decide.is_some_and(|n| n > 700), "{:?}", v.samples_to_decide);
        assert_eq!(latency_check(&timing(700, 3), 10.0, 0.95).verdict, Outcome::Pass);
    }

    /// From an error of 1 on the chip could be any number of times slower: no emulated p99
    /// passes, however far under the budget, and the reason says so; a p99 far enough over
    /// still fails.
    #[test]
    fn an_error_of_one_or_more_never_passes_and_says_why() {
        let mut t = emulated(Some(1.0));
        t.latencies_ms = vec![0.01; 1000];
        let v = latency_check(&t, 100.0, 0.95);
        assert_eq!(v.verdict, Outcome::Inconclusive, "{}", v.reason);
        assert!(
            v.reason.contains("cannot pass on emulated figures with a systematic error ±100 %"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("FAIL needs a lower bound over 200.0000 ms"), "{}", v.reason);
        t.latencies_ms = vec![0.0; 1000];
        assert_eq!(latency_check(&t, 100.0, 0.95).verdict, Outcome::Inconclusive, "a p99 of zero");
        t.latencies_ms = vec![300.0; 1000];
        assert_eq!(latency_check(&t, 100.0, 0.95).verdict, Outcome::Fail);
    }

    #[test]
    fn a_zero_systematic_error_is_the_plain_rule() {
        let plain = latency_check(&emulated(None), 15.0, 0.95);
        let zero = latency_check(&emulated(Some(0.0)), 15.0, 0.95);
        assert_eq!((zero.verdict, &zero.reason, zero.systematic_error), (plain.verdict, &plain.reason, None));
    }

    fn early_stopping(v: &Verdict) -> &str {
        v.findings.iter().find(|f| f.starts_with("MLPerf early stopping")).expect("an early-stopping finding")
    }

    #[test]
    fn early_stopping_is_stated_for_a_run_that_meets_it() {
        let v = latency_check(&timing(700, 1), 5.0, 0.95);
        assert_eq!(
            early_stopping(&v),
            "MLPerf early stopping: 1 of 700 queries over the 5 ms budget; the p99 bound holds at 99 % confidence"
        );
        assert_eq!(v.verdict, Outcome::Pass);
    }

    #[test]
    fn early_stopping_says_how_many_more_queries_a_run_that_misses_it_needs() {
        // Three over at p99 need 1,001 queries in all (I_0.99(998, 4) ≤ 0.01).
        let v = latency_check(&timing(700, 3), 5.0, 0.95);
        assert_eq!(
            early_stopping(&v),
            "MLPerf early stopping: 3 of 700 queries over the 5 ms budget; the p99 bound is not shown at 99 % confidence: it needs 301 more queries with none over"
        );
        // The verdict is still the interval's: p99 itself is under the budget, but the upper
        // end of its interval reaches the slow queries.
        assert_eq!(v.verdict, Outcome::Inconclusive);
    }

    #[test]
    fn a_pass_near_the_margin_can_fall_short_of_early_stopping() {
        // The 95 % interval's upper end is a one-sided 97.5 % claim; MLPerf's is 99 %.
        let v = latency_check(&timing(600, 1), 5.0, 0.95);
        assert_eq!(v.verdict, Outcome::Pass);
        assert!(early_stopping(&v)
            .ends_with("not shown at 99 % confidence: it needs 62 more queries with none over"));
    }

    /// MLPerf's TEST04 as the host and device backends run it, judged by this check's
    /// criterion: a runtime answering from a cache is caught, an honest one is not.
    mod caching {
        use std::sync::Mutex;

        use super::*;
        use crate::backend::{repeated_sample_run, unseen};
        use crate::engine::{LoadedModel, Tensor};
        use crate::vocab::Result;

        /// The device clock of the test models: 2 ms to compute, 0.1 ms to answer from a cache.
        /// Reported, not slept, so the verdicts do not hang on this machine's scheduling.
        const COMPUTE_MS: f64 = 2.0;
        const CACHED_MS: f64 = 0.1;

        /// Computes an input it has not just seen, and answers a repeated one from its cache.
        struct CachingModel {
            last: Mutex<Option<Vec<f32>>>,
            caches: bool,
        }

        /// Answers every input it has ever seen from its cache; computes a new one.
        struct RememberingModel {
            seen: Mutex<std::collections::HashSet<Vec<u32>>>,
        }

        impl LoadedModel for RememberingModel {
            fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
                Ok(self.run_timed(inputs)?.0)
            }

            fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
                let key: Vec<u32> = inputs[0].iter().map(|x| x.to_bits()).collect();
                let ms = if self.seen.lock().unwrap().insert(key) { COMPUTE_MS } else { CACHED_MS };
                Ok((vec![inputs[0].clone()], ms))
            }
        }

        #[test]
        fn a_runtime_remembering_the_accuracy_runs_inputs_is_caught_on_unseen_set_samples() {
            // 64 values, so the nudges' signs give every round's samples a pattern of their own.
            let set: Vec<Tensor> = (0..4).map(|i| Tensor::from_elem(vec![1, 64], i as f32)).collect();
            let model = RememberingModel { seen: Mutex::new(Default::default()) };
            // The accuracy run sends every sample of the set first.
            set.iter().for_each(|x| drop(model.run(std::slice::from_ref(x))));
            let repeated = || Ok(set[0].clone());
            let (fast, as_seen) =
                repeated_sample_run(&model, &repeated, &|i| Ok(set[1 + i % 3].clone()), 40).unwrap();
            assert_eq!(caching_suspected(&as_seen, fast), None, "blind on samples the cache holds");
            let fresh = |i: usize| Ok(unseen(set[1 + i % 3].clone(), i));
            let (fast, unseen_ms) = repeated_sample_run(&model, &repeated, &fresh, 40).unwrap();
            let why = caching_suspected(&unseen_ms, fast).expect("caught on unseen samples");
            assert!(why.contains("may be caching results"), "{why}");
            assert_ne!(unseen(set[1].clone(), 3), set[1], "every value is nudged");
        }

        impl LoadedModel for CachingModel {
            fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
                Ok(self.run_timed(inputs)?.0)
            }

            fn run_timed(&self, inputs: &[Tensor]) -> Result<(Vec<Tensor>, f64)> {
                let key: Vec<f32> = inputs[0].iter().copied().collect();
                let mut last = self.last.lock().unwrap();
                let ms = if self.caches && last.as_ref() == Some(&key) { CACHED_MS } else { COMPUTE_MS };
                *last = Some(key);
                Ok((vec![inputs[0].clone()], ms))
            }
        }

        #[test]
        fn a_backend_that_caches_results_is_caught_repeating_one_sample() {
            let samples = [Tensor::zeros(vec![1, 4]), Tensor::ones(vec![1, 4])];
            let caching = CachingModel { last: Mutex::new(None), caches: true };
            let sample = |i: usize| Ok(samples[i % 2].clone());
            let (repeated, set) =
                repeated_sample_run(&caching, &|| Ok(samples[0].clone()), &sample, 40).unwrap();
            let why = caching_suspected(&set, repeated).expect("caching is caught");
            assert!(why.contains("MLPerf TEST04") && why.contains("may be caching results"), "{why}");

            let honest = CachingModel { last: Mutex::new(None), caches: false };
            let (repeated, set) =
                repeated_sample_run(&honest, &|| Ok(samples[0].clone()), &sample, 40).unwrap();
            assert_eq!(caching_suspected(&set, repeated), None, "{set:?} vs {repeated} ms");
        }
    }
}
