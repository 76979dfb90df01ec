//! Power and thermal checks on the emulator's energy and lumped thermal models, and the power
//! check on a meter's trace when one ran beside the timed run.

use super::{CheckKind, Verdict};
use crate::emulator::{simulate_thermal, Estimate, ThermalRun};
use crate::power::MIN_WINDOW_SAMPLES;
use crate::profile::{ChipProfile, PowerBudget};
use crate::vocab::{Basis, MeteredWindow, Outcome, Unobserved};

/// Why a profile without a budget decides no power verdict.
const NO_BUDGET: &str = "the profile gives no power budget (power.typical_w or power.max_w)";

/// The profile's field a power or heat figure waits for when the cost model gives no energy:
/// the one the latency waits for, if any.
fn energy_gap(est: &Estimate, v: Verdict) -> Verdict {
    Verdict { profile_gap: est.latency_profile_gap.map(str::to_string), ..v }
}

/// Average power at the family's operating rate must stay within the chip's power budget.
pub fn power_check(est: &Estimate, profile: &ChipProfile, rate_hz: f64) -> Verdict {
    let Some(PowerBudget { watts: budget, field }) = profile.power_budget() else {
        return Verdict::lacking(CheckKind::Power, "W", Basis::Emulated, "power.typical_w", NO_BUDGET);
    };
    let Some(avg) = est.avg_power_w(rate_hz) else {
        let why = est.latency_unknown.clone().unwrap_or_else(|| "energy is unknown".into());
        let why = format!("the cost model cannot predict energy: {why}");
        return energy_gap(est, Verdict::inconclusive(CheckKind::Power, "W", Basis::Emulated, why));
    };
    let energy = est.energy_mj.unwrap_or(f64::NAN);
    let (outcome, word) = if avg <= budget { (Outcome::Pass, "within") } else { (Outcome::Fail, "over") };
    let reason = format!(
        "{avg:.3} W average at {rate_hz:.0} inferences/s ({energy:.4} mJ each + {:.3} W {}) is {word} the {budget} W budget ({field})",
        est.static_w.unwrap_or(0.0),
        crate::emulator::idle_basis(profile)
    );
    let mut v =
        Verdict::new(CheckKind::Power, outcome, "W", Basis::Emulated, reason).with_values(avg, Some(budget));
    v.findings = vec![format!("energy per inference {energy:.4} mJ"), format!("rate {rate_hz:.1} /s")];
    v
}

/// Average power metered over the timed run (inferences back to back, so at least the power at
/// the family's rate) must stay within the chip's typical power. Too few meter samples in the
/// window decide nothing.
pub fn measured_power_check(window: Result<&MeteredWindow, Unobserved>, profile: &ChipProfile) -> Verdict {
    let inconclusive = |why: String| Verdict::inconclusive(CheckKind::Power, "W", Basis::Measured, why);
    let w = match window {
        Ok(w) => w,
        Err(why) => return inconclusive(format!("the power meter gave no figure: {}", why.reason)),
    };
    let (from, to) = (w.from_s, w.to_s);
    let samples = w.trace.samples_in(from, to);
    let rate = w.trace.sample_rate_hz();
    if samples < MIN_WINDOW_SAMPLES {
        return inconclusive(format!(
            "only {samples} meter sample(s) in the {:.2} s timed window ({} at {rate:.1} Hz): at least {MIN_WINDOW_SAMPLES} are needed, from a longer run or a faster meter",
            to - from,
            w.trace.source
        ));
    }
    let (Some(avg), Some(per_inference)) = (w.trace.average_w(from, to), w.energy_per_inference_j()) else {
        return inconclusive(format!("the trace of {} does not cover the timed window", w.trace.source));
    };
    let measured = format!(
        "{avg:.3} W average metered by {} over the {:.2} s timed window ({samples} samples at {rate:.1} Hz, {} inferences back to back, {:.4} mJ each)",
        w.trace.source,
        to - from,
        w.inferences,
        per_inference * 1e3
    );
    let findings = vec![
        format!("energy per inference {:.4} mJ (measured)", per_inference * 1e3),
        format!("meter rate {rate:.1} Hz"),
    ];
    let Some(PowerBudget { watts: budget, field }) = profile.power_budget() else {
        let mut v = inconclusive(format!("{measured}; {NO_BUDGET}"));
        v.findings = findings;
        return v.with_values(avg, None);
    };
    let (outcome, word) = if avg <= budget { (Outcome::Pass, "within") } else { (Outcome::Fail, "over") };
    let mut v = Verdict::new(
        CheckKind::Power,
        outcome,
        "W",
        Basis::Measured,
        format!("{measured} is {word} the {budget} W budget ({field})"),
    )
    .with_values(avg, Some(budget));
    v.findings = findings;
    v.samples = Some(samples);
    v
}

/// A sustained run at the family's rate must not drive the junction to its throttle point.
pub fn thermal_check(
    est: &Estimate,
    profile: &ChipProfile,
    rate_hz: f64,
    ambient_c: f64,
) -> (Verdict, Option<ThermalRun>) {
    let t = profile.thermal.as_ref();
    let missing = |what: &str, field: &str| {
        let why = format!("the profile gives no {what} ({field}): the thermal model cannot run");
        Verdict::lacking(CheckKind::Thermal, "°C", Basis::Emulated, field, why)
    };
    let Some(r) = t.and_then(|t| t.resistance_c_per_w) else {
        return (missing("thermal resistance", "thermal.resistance_c_per_w"), None);
    };
    let Some(tau) = t.and_then(|t| t.time_constant_s) else {
        return (missing("thermal time constant", "thermal.time_constant_s"), None);
    };
    let Some(limit) = t.and_then(|t| t.throttle_c.or(t.critical_c)) else {
        return (missing("throttle or critical temperature", "thermal.throttle_c"), None);
    };
    let (Some(static_w), Some(total), Some(latency)) =
        (est.static_w, est.avg_power_w(rate_hz), est.latency_ms)
    else {
        let why = "power is unknown (see the power check), so heat is too";
        return (
            energy_gap(est, Verdict::inconclusive(CheckKind::Thermal, "°C", Basis::Emulated, why)),
            None,
        );
    };
    let run = simulate_thermal(static_w, total - static_w, latency, ambient_c, r, tau, Some(limit));
    let (outcome, reason) = match run.throttled_at_s {
        None => (
            Outcome::Pass,
            format!("junction peaks at {:.1} °C over {:.0} s at {rate_hz:.0}/s from {ambient_c} °C ambient, below the {limit} °C throttle point", run.peak_c, crate::emulator::thermal_duration_s()),
        ),
        Some(at) => (
            Outcome::Fail,
            format!("junction reaches the {limit} °C throttle point after {at:.0} s at {rate_hz:.0}/s from {ambient_c} °C ambient; throttled latency {:.3} ms", run.throttled_latency_ms.unwrap_or(f64::NAN)),
        ),
    };
    let mut v = Verdict::new(CheckKind::Thermal, outcome, "°C", Basis::Emulated, reason)
        .with_values(run.peak_c, Some(limit));
    v.findings = vec![
        format!("steady state {:.1} °C", run.steady_state_c),
        format!("throttled {:.0} % of the run", run.throttled_share * 100.0),
    ];
    // A board's R and τ from `edgecert thermal fit` say where they were measured.
    if let Some(source) = profile.sources.get("thermal_fit") {
        v.findings.push(format!("thermal resistance and time constant {source}"));
    }
    (v, Some(run))
}
