//! Lumped thermal model: one thermal resistance and one time constant between junction and
//! ambient, dT/dt = (T_ambient + P·R − T) / τ, integrated over a sustained run at the family's
//! rate. When the junction reaches the throttle point the clock drops (latency up, dynamic power
//! down) until it has cooled by the hysteresis.

use serde::Serialize;

/// Length of the sustained-load simulation (s).
pub const DURATION_S: f64 = 600.0;
const STEP_S: f64 = 1.0;
/// Clock factor while throttled; dynamic power scales with f·V², taken here as f² (V ∝ f).
const THROTTLE_CLOCK: f64 = 0.7;
const HYSTERESIS_C: f64 = 2.0;
/// Ambient when neither the profile nor the command line gives one: a lab's 25 °C.
pub const DEFAULT_AMBIENT_C: f64 = 25.0;

#[derive(Debug, Clone, Serialize)]
pub struct ThermalRun {
    pub ambient_c: f64,
    pub power_w: f64,
    pub steady_state_c: f64,
    pub peak_c: f64,
    /// Seconds into the run when throttling first started.
    pub throttled_at_s: Option<f64>,
    /// Share of the run spent throttled.
    pub throttled_share: f64,
    /// Latency while throttled (ms).
    pub throttled_latency_ms: Option<f64>,
    /// (time s, junction °C), every 10 s.
    pub curve: Vec<(f64, f64)>,
}

/// Simulates `DURATION_S` seconds at `static_w + dynamic_w`.
pub fn simulate_thermal(
    static_w: f64,
    dynamic_w: f64,
    latency_ms: f64,
    ambient_c: f64,
    resistance: f64,
    tau: f64,
    throttle_c: Option<f64>,
) -> ThermalRun {
    let mut t = ambient_c;
    let (mut throttled, mut throttled_at, mut throttled_steps, mut peak) = (false, None, 0usize, t);
    let mut curve = vec![(0.0, t)];
    let steps = (DURATION_S / STEP_S) as usize;
    for k in 1..=steps {
        let p = static_w + dynamic_w * if throttled { THROTTLE_CLOCK * THROTTLE_CLOCK } else { 1.0 };
        t += STEP_S / tau * (ambient_c + p * resistance - t);
        peak = peak.max(t);
        if let Some(limit) = throttle_c {
            if !throttled && t >= limit {
                throttled = true;
                throttled_at.get_or_insert(k as f64 * STEP_S);
            } else if throttled && t <= limit - HYSTERESIS_C {
                throttled = false;
            }
        }
        throttled_steps += usize::from(throttled);
        if k % 10 == 0 {
            curve.push((k as f64 * STEP_S, (t * 100.0).round() / 100.0));
        }
    }
    ThermalRun {
        ambient_c,
        power_w: static_w + dynamic_w,
        steady_state_c: ambient_c + (static_w + dynamic_w) * resistance,
        peak_c: peak,
        throttled_at_s: throttled_at,
        throttled_share: throttled_steps as f64 / steps as f64,
        throttled_latency_ms: throttled_at.map(|_| latency_ms / THROTTLE_CLOCK),
        curve,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cool_run_approaches_its_steady_state_without_throttling() {
        let r = simulate_thermal(0.5, 1.5, 2.0, 25.0, 10.0, 60.0, Some(85.0));
        assert!((r.steady_state_c - 45.0).abs() < 1e-9);
        assert!(r.peak_c < 45.0 && r.peak_c > 44.0, "{}", r.peak_c);
        assert_eq!(r.throttled_at_s, None);
        assert_eq!(r.curve.len(), 61);
    }

    #[test]
    fn a_hot_ambient_throttles_and_caps_the_junction() {
        let r = simulate_thermal(0.5, 1.5, 2.0, 70.0, 10.0, 60.0, Some(85.0));
        assert!(r.throttled_at_s.is_some());
        assert!(r.peak_c < 86.0, "throttling holds the junction near its limit: {}", r.peak_c);
        assert!(r.throttled_share > 0.3);
        assert!((r.throttled_latency_ms.unwrap() - 2.0 / 0.7).abs() < 1e-9);
    }
}
