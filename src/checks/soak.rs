//! The checks a sustained-load run decides (`certify --soak`): the thermal check on the
//! hottest zone the device measured and on throttling, and the latency check on the p99 of the
//! soak's last window beside the cold run's.
//!
//! The order of the thermal decision: a clock that dropped under constant load is throttling
//! (FAIL, with the second it began); a zone at or over the profile's throttle point, after the
//! worst-case ambient correction, is a FAIL; a temperature still rising over the last window
//! means the soak was too short to know (INCONCLUSIVE, with the soak length that would
//! decide); otherwise PASS.

use super::{CheckKind, Verdict};
use crate::profile::ChipProfile;
use crate::vocab::{Basis, Outcome, SoakTrace, Timing};

/// A clock below this share of its loaded level is throttled (a governor's own wander stays
/// within a step of its table, a few percent).
pub const CLOCK_DROP_SHARE: f64 = 0.9;
/// Over the last window the hottest zone may still rise this fast (°C per minute) and count as
/// steady: a lumped chip within about 2 % of its steady state at one time constant of 5 min.
pub const STEADY_SLOPE_C_PER_MIN: f64 = 0.5;
/// The window (seconds) at each end of a soak: its first and last minute, or a third of a
/// shorter soak.
pub const WINDOW_S: f64 = 60.0;
/// The latency throttling test compares two whole windows, and a steady temperature is read
/// from a whole last minute after a first one: a soak of at least two minutes. A shorter soak
/// can still FAIL (a zone over the limit, a clock that dropped), never PASS.
pub const MIN_DECIDING_SOAK_S: f64 = 2.0 * WINDOW_S;

/// The ambient the test ran at, as the operator stated it, and the worst case the verdict must
/// hold at (`--ambient`, `--ambient-max`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AmbientCorrection {
    pub stated_c: Option<f64>,
    pub worst_c: Option<f64>,
}

fn window_s(trace: &SoakTrace) -> f64 {
    WINDOW_S.min(trace.seconds / 3.0)
}

/// The thermal verdict on a soak's measurements.
pub fn measured_thermal_check(
    trace: &SoakTrace,
    profile: &ChipProfile,
    ambient: AmbientCorrection,
) -> Verdict {
    let inconclusive = |why: String| Verdict::inconclusive(CheckKind::Thermal, "°C", Basis::Measured, why);
    let Some(limit) = profile.thermal.as_ref().and_then(|t| t.throttle_c.or(t.critical_c)) else {
        let why = "the profile gives no throttle or critical temperature (thermal.throttle_c) to hold the soak's temperature to";
        return Verdict::lacking(CheckKind::Thermal, "°C", Basis::Measured, "thermal.throttle_c", why);
    };
    let hottest: Vec<(f64, f64, &str)> = trace
        .samples
        .iter()
        .filter_map(|s| {
            let (zone, c) =
                s.zones_c.iter().filter(|(_, c)| c.is_finite()).max_by(|a, b| a.1.total_cmp(b.1))?;
            Some((s.t_s, *c, zone.as_str()))
        })
        .collect();
    let Some(&(peak_t, peak_c, peak_zone)) = hottest.iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
        return inconclusive(format!("no thermal zone could be read in {} during the soak", trace.sensors));
    };
    let (offset, correction) = match (ambient.stated_c, ambient.worst_c) {
        (Some(stated), Some(worst)) => (
            worst - stated,
            Some(format!(
                "corrected to {worst} °C ambient from the stated {stated} °C, linearly in the temperature rise: {peak_c:.1} → {:.1} °C",
                peak_c + worst - stated
            )),
        ),
        (None, Some(worst)) => {
            return inconclusive(format!(
                "--ambient-max {worst} °C needs the ambient the soak ran at (--ambient C) to correct the measured {peak_c:.1} °C"
            ))
        }
        _ => (0.0, None),
    };
    let corrected = peak_c + offset;
    let mut findings: Vec<String> = correction.into_iter().collect();
    findings.push(format!(
        "{} sensor readings from {}, {} inferences",
        trace.samples.len(),
        trace.sensors,
        trace.latencies.len()
    ));
    findings.extend(sensor_problems(trace));
    let decided = |outcome: Outcome, reason: String, findings: Vec<String>| {
        let mut v = Verdict::new(CheckKind::Thermal, outcome, "°C", Basis::Measured, reason)
            .with_values(corrected, Some(limit));
        v.findings = findings;
        v.samples = Some(trace.samples.len());
        v
    };
    if let Some(throttled) = clock_throttling(trace).or_else(|| latency_throttling(trace)) {
        return decided(Outcome::Fail, format!("throttling under constant load: {throttled}"), findings);
    }
    if corrected >= limit {
        return decided(
            Outcome::Fail,
            format!("{peak_zone} reached {corrected:.1} °C at {peak_t:.0} s of the soak, at or over the {limit} °C throttle point"),
            findings,
        );
    }
    if trace.seconds < MIN_DECIDING_SOAK_S {
        let needed = soak_to_decide(&hottest, trace.seconds).max(MIN_DECIDING_SOAK_S);
        return decided(
            Outcome::Inconclusive,
            format!("a {:.0} s soak cannot show a steady temperature ({corrected:.1} °C so far against the {limit} °C throttle point): the slope of its last minute decides, so a soak of at least {needed:.0} s would decide", trace.seconds),
            findings,
        );
    }
    let last: Vec<(f64, f64)> =
        hottest.iter().filter(|(t, _, _)| *t >= trace.seconds - WINDOW_S).map(|(t, c, _)| (*t, *c)).collect();
    match slope_per_min(&last) {
        Some(s) if s <= STEADY_SLOPE_C_PER_MIN => decided(
            Outcome::Pass,
            format!("hottest zone {peak_zone} peaked at {corrected:.1} °C, steady ({s:+.2} °C/min over the last minute), below the {limit} °C throttle point; no clock dropped under load"),
            findings,
        ),
        Some(s) => {
            let needed = soak_to_decide(&hottest, trace.seconds);
            decided(
                Outcome::Inconclusive,
                format!("still heating at {s:+.2} °C/min over the last minute (steady is at most {STEADY_SLOPE_C_PER_MIN} °C/min): {corrected:.1} °C so far against the {limit} °C throttle point; a soak of about {needed:.0} s would decide"),
                findings,
            )
        }
        None => inconclusive("too few sensor readings over the soak's last minute to tell a steady temperature (at least 3, one a second)".into()),
    }
}

/// What the soak could not read, named: each unreadable sensor (with how many readings it
/// failed), and each zone that stopped reporting partway (from when).
fn sensor_problems(trace: &SoakTrace) -> Vec<String> {
    let mut failed: std::collections::BTreeMap<&str, usize> = Default::default();
    for problem in trace.samples.iter().flat_map(|s| &s.unreadable) {
        *failed.entry(problem.as_str()).or_default() += 1;
    }
    let mut problems: Vec<String> = failed
        .into_iter()
        .map(|(p, n)| format!("sensor not read in {n} of {} readings: {p}", trace.samples.len()))
        .collect();
    let zones: std::collections::BTreeSet<&String> =
        trace.samples.iter().flat_map(|s| s.zones_c.keys()).collect();
    for zone in zones {
        let first = trace.samples.iter().position(|s| s.zones_c.contains_key(zone)).unwrap_or(0);
        if let Some(gone) = trace.samples[first..].iter().find(|s| !s.zones_c.contains_key(zone)) {
            problems.push(format!("zone {zone} stopped reporting at {:.0} s of the soak", gone.t_s));
        }
    }
    problems
}

/// The first clock reading under the level it held in the soak's first window, by more than
/// [`CLOCK_DROP_SHARE`]: which clock, from what to what, and when.
fn clock_throttling(trace: &SoakTrace) -> Option<String> {
    let window = window_s(trace);
    let names: std::collections::BTreeSet<&String> =
        trace.samples.iter().flat_map(|s| s.clocks_mhz.keys()).collect();
    names
        .into_iter()
        .filter_map(|name| {
            let at =
                |s: &crate::vocab::ThermalSample| s.clocks_mhz.get(name).copied().filter(|v| v.is_finite());
            let early: Vec<f64> =
                trace.samples.iter().filter(|s| (0.0..=window).contains(&s.t_s)).filter_map(at).collect();
            let level = crate::vocab::percentile(&sorted(early), 0.5);
            let (t, mhz) = trace
                .samples
                .iter()
                .filter(|s| s.t_s > window)
                .find_map(|s| at(s).filter(|v| *v < CLOCK_DROP_SHARE * level).map(|v| (s.t_s, v)))?;
            Some((t, format!("clock {name} dropped from {level:.0} MHz to {mhz:.0} MHz at {t:.0} s")))
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, text)| text)
}

/// Latency throttling: the last minute's p99 over the first minute's beyond both intervals (a
/// soak of at least two minutes; shorter ones are judged on their clocks).
fn latency_throttling(trace: &SoakTrace) -> Option<String> {
    if trace.seconds < MIN_DECIDING_SOAK_S {
        return None;
    }
    let first = sorted(trace.latencies_between(0.0, WINDOW_S));
    let last = sorted(trace.latencies_between(trace.seconds - WINDOW_S, f64::INFINITY));
    let (a, b) = (p99_interval(&first)?, p99_interval(&last)?);
    (b.low > a.high?).then(|| {
        let start = throttle_onset(trace, a.high.unwrap_or(f64::INFINITY));
        format!(
            "p99 latency rose from {:.4} ms in the first minute to {:.4} ms in the last (intervals apart){start}",
            crate::vocab::percentile(&first, 0.99),
            crate::vocab::percentile(&last, 0.99)
        )
    })
}

/// The first whole second whose p99 is over `bound`, as ", from 143 s".
fn throttle_onset(trace: &SoakTrace, bound: f64) -> String {
    (0..trace.seconds.ceil() as usize)
        .find(|&s| {
            let second = sorted(trace.latencies_between(s as f64, s as f64 + 1.0));
            !second.is_empty() && crate::vocab::percentile(&second, 0.99) > bound
        })
        .map_or(String::new(), |s| format!(", from {s} s"))
}

fn p99_interval(sorted: &[f64]) -> Option<crate::vocab::Interval> {
    (sorted.len() >= 100).then(|| crate::stats::percentile_interval(sorted, 0.99, 0.95))
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Least-squares slope of (seconds, °C) in °C per minute; `None` under 3 points.
fn slope_per_min(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let (mt, mc) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mt).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mt) * (p.1 - mc)).sum();
    (sxx > 0.0).then(|| sxy / sxx * 60.0)
}

/// How long a soak would reach steady state: five time constants of a lumped model fitted
/// to three equally spaced thirds of the hottest zone's trace (within 1 % of its step); twice
/// this soak where the trace does not fit one (not rising and slowing).
fn soak_to_decide(hottest: &[(f64, f64, &str)], seconds: f64) -> f64 {
    let third = seconds / 3.0;
    let mean = |from: f64| {
        let v: Vec<f64> =
            hottest.iter().filter(|(t, _, _)| (from..from + third).contains(t)).map(|p| p.1).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    let fitted = match (mean(0.0), mean(third), mean(2.0 * third)) {
        (Some(a), Some(b), Some(c)) if b > a && c > b => {
            let ratio = (c - b) / (b - a);
            (ratio > 0.0 && ratio < 1.0).then(|| 5.0 * (-third / ratio.ln()))
        }
        _ => None,
    };
    fitted.filter(|s| s.is_finite() && *s > seconds).unwrap_or(2.0 * seconds).ceil()
}

/// The latency verdict with the soak: the cold run's and the soak's last window's, the worse
/// decides (FAIL over INCONCLUSIVE over PASS; between equals, the higher p99).
pub fn latency_under_heat(
    cold: Verdict,
    hot_timing: &Timing,
    trace: &SoakTrace,
    decide: impl Fn(&Timing) -> Verdict,
) -> Verdict {
    let window = window_s(trace);
    let hot_latencies = trace.latencies_between(trace.seconds - window, f64::INFINITY);
    if hot_latencies.is_empty() {
        let mut v = cold;
        v.findings.push(format!("the soak's last {window:.0} s finished no inference: cold p99 only"));
        return v;
    }
    let hot_timing = Timing {
        latencies_ms: hot_latencies,
        what: format!("{}; the last {window:.0} s of a {:.0} s soak", hot_timing.what, trace.seconds),
        power: None,
        scenarios: None,
        soak: None,
        ..hot_timing.clone()
    };
    let hot = decide(&hot_timing);
    let rank = |v: &Verdict| match v.verdict {
        Outcome::Fail => 2,
        Outcome::Inconclusive => 1,
        Outcome::Pass => 0,
    };
    let line = |label: &str, v: &Verdict| {
        format!("{label} p99 {:.4} ms ({})", v.measured.unwrap_or(f64::NAN), v.verdict.as_str())
    };
    let both =
        format!("{}; {}", line("cold", &cold), line(&format!("hot (last {window:.0} s of the soak)"), &hot));
    let hot_decides = (rank(&hot), hot.measured.unwrap_or(0.0)) > (rank(&cold), cold.measured.unwrap_or(0.0));
    let (mut decided, label) = if hot_decides { (hot, "hot") } else { (cold, "cold") };
    decided.findings.insert(0, format!("{both}: the {label} run decides"));
    decided
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ThermalSample;

    /// A soak of `seconds` whose hottest zone follows `temp(t)` and whose big-core clock
    /// follows `clock(t)`, one reading a second, 1 ms inferences every 10 ms.
    fn trace(seconds: usize, temp: impl Fn(f64) -> f64, clock: impl Fn(f64) -> f64) -> SoakTrace {
        let samples = (0..=seconds)
            .map(|s| {
                let t = s as f64;
                ThermalSample {
                    t_s: t,
                    zones_c: [
                        ("soc-thermal".to_string(), temp(t) - 1.0),
                        ("npu-thermal".to_string(), temp(t)),
                    ]
                    .into(),
                    clocks_mhz: [("cpu.policy4".to_string(), clock(t))].into(),
                    unreadable: Vec::new(),
                }
            })
            .collect();
        let latencies = (0..seconds * 100).map(|i| (i as f64 / 100.0, 1.0 + (i % 7) as f64 * 0.01)).collect();
        SoakTrace {
            seconds: seconds as f64,
            rate_hz: None,
            sensors: "test".into(),
            latencies,
            samples,
            power: None,
            idle_s: 0.0,
        }
    }

    fn heating(from: f64, to: f64, tau: f64) -> impl Fn(f64) -> f64 {
        move |t| to - (to - from) * (-t / tau).exp()
    }

    fn rk3588() -> ChipProfile {
        crate::profile::bundled("rk3588")
    }

    fn decide(trace: &SoakTrace, ambient: AmbientCorrection) -> Verdict {
        measured_thermal_check(trace, &rk3588(), ambient)
    }

    #[test]
    fn a_chip_that_settles_below_its_throttle_point_passes_on_the_measured_peak() {
        let v = decide(&trace(300, heating(40.0, 70.0, 40.0), |_| 2352.0), AmbientCorrection::default());
        assert_eq!(v.verdict, Outcome::Pass, "{}", v.reason);
        assert_eq!(v.basis, Basis::Measured);
        assert!((v.measured.unwrap() - 70.0).abs() < 0.05, "{:?}", v.measured);
        assert_eq!(v.limit, Some(85.0));
        assert!(v.reason.contains("npu-thermal peaked at 70.0 °C, steady"), "{}", v.reason);
    }

    #[test]
    fn a_chip_still_heating_is_inconclusive_with_the_soak_that_would_decide() {
        let v = decide(&trace(300, heating(40.0, 80.0, 400.0), |_| 2352.0), AmbientCorrection::default());
        assert_eq!(v.verdict, Outcome::Inconclusive, "{}", v.reason);
        assert!(v.reason.contains("still heating at +"), "{}", v.reason);
        // Five time constants of 400 s, fitted from the trace's thirds.
        let needed: f64 =
            v.reason.split("a soak of about ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
        assert!((1500.0..2600.0).contains(&needed), "{needed}");
    }

    #[test]
    fn a_short_soak_never_passes_but_says_how_long_would() {
        let v = decide(&trace(30, |_| 45.0, |_| 2352.0), AmbientCorrection::default());
        assert_eq!(v.verdict, Outcome::Inconclusive);
        assert!(
            v.reason.contains("a 30 s soak cannot show a steady temperature")
                && v.reason.contains("at least 120 s"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn a_zone_over_the_throttle_point_fails_with_when() {
        let v = decide(&trace(30, |t| 60.0 + t, |_| 2352.0), AmbientCorrection::default());
        assert_eq!(v.verdict, Outcome::Fail);
        assert!(
            v.reason.contains(
                "npu-thermal reached 90.0 °C at 30 s of the soak, at or over the 85 °C throttle point"
            ),
            "{}",
            v.reason
        );
    }

    #[test]
    fn a_clock_dropping_under_load_is_throttling_from_the_second_it_began() {
        let v = decide(
            &trace(300, heating(40.0, 70.0, 40.0), |t| if t < 200.0 { 2352.0 } else { 1800.0 }),
            AmbientCorrection::default(),
        );
        assert_eq!(v.verdict, Outcome::Fail);
        assert!(
            v.reason.contains("clock cpu.policy4 dropped from 2352 MHz to 1800 MHz at 200 s"),
            "{}",
            v.reason
        );
        // A governor's wander of a few percent is not throttling.
        let v = decide(
            &trace(300, heating(40.0, 70.0, 40.0), |t| if t < 200.0 { 2352.0 } else { 2208.0 }),
            AmbientCorrection::default(),
        );
        assert_eq!(v.verdict, Outcome::Pass, "{}", v.reason);
    }

    #[test]
    fn latency_rising_over_the_soak_is_throttling() {
        let mut t = trace(180, heating(40.0, 70.0, 40.0), |_| 2352.0);
        for (at, ms) in t.latencies.iter_mut() {
            if *at >= 100.0 {
                *ms *= 2.0;
            }
        }
        let v = decide(&t, AmbientCorrection::default());
        assert_eq!(v.verdict, Outcome::Fail);
        assert!(
            v.reason.contains("p99 latency rose from 1.0600 ms in the first minute to 2.1200 ms")
                && v.reason.contains("from 100 s"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn the_worst_case_ambient_moves_the_peak_by_its_rise_and_needs_the_stated_one() {
        let settled = trace(300, heating(40.0, 70.0, 40.0), |_| 2352.0);
        let hot = AmbientCorrection { stated_c: Some(25.0), worst_c: Some(45.0) };
        let v = decide(&settled, hot);
        assert_eq!(v.verdict, Outcome::Fail, "70 °C at 25 °C ambient is 90 °C at 45 °C: {}", v.reason);
        assert!(
            v.findings[0].contains("linearly in the temperature rise: 70.0 → 90.0 °C"),
            "{:?}",
            v.findings
        );
        let v = decide(&settled, AmbientCorrection { stated_c: None, worst_c: Some(45.0) });
        assert_eq!(v.verdict, Outcome::Inconclusive);
        assert!(v.reason.contains("needs the ambient the soak ran at (--ambient C)"), "{}", v.reason);
    }

    #[test]
    fn a_zone_that_disappears_mid_run_and_an_unreadable_one_are_named() {
        let mut t = trace(300, heating(40.0, 70.0, 40.0), |_| 2352.0);
        for s in t.samples.iter_mut().filter(|s| s.t_s >= 120.0) {
            s.zones_c.remove("soc-thermal");
            s.unreadable.push("sys/class/thermal/thermal_zone0/temp: `hot` is not millidegrees".into());
        }
        let v = decide(&t, AmbientCorrection::default());
        assert_eq!(v.verdict, Outcome::Pass, "decided on the zones that were read: {}", v.reason);
        let findings = v.findings.join("\n");
        assert!(findings.contains("zone soc-thermal stopped reporting at 120 s of the soak"), "{findings}");
        assert!(
            findings.contains("sensor not read in 181 of 301 readings: sys/class/thermal/thermal_zone0/temp: `hot` is not millidegrees"),
            "{findings}"
        );
    }

    #[test]
    fn a_soak_with_no_readable_zone_or_no_throttle_point_decides_nothing() {
        let mut empty = trace(300, |_| 50.0, |_| 2352.0);
        empty.samples.iter_mut().for_each(|s| s.zones_c.clear());
        let v = decide(&empty, AmbientCorrection::default());
        assert!(
            v.verdict == Outcome::Inconclusive && v.reason.contains("no thermal zone could be read in test"),
            "{}",
            v.reason
        );
        let mut profile = rk3588();
        profile.thermal = None;
        let v =
            measured_thermal_check(&trace(300, |_| 50.0, |_| 2352.0), &profile, AmbientCorrection::default());
        assert!(
            v.verdict == Outcome::Inconclusive && v.reason.contains("no throttle or critical temperature"),
            "{}",
            v.reason
        );
    }
}
