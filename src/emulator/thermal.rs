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

/// A lumped model fitted to a measured heating curve: T(t) = T∞ − (T∞ − T0)·e^(−t/τ), the step
/// response of [`simulate_thermal`]'s model under constant power.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LumpedFit {
    pub steady_c: f64,
    pub start_c: f64,
    pub tau_s: f64,
    /// Root-mean-square residual of the fit (°C).
    pub rms_c: f64,
}

/// Least squares over τ (log grid, then golden-section refinement), T∞ and T0 linear given τ.
/// `None` under four points or a curve with no rise to fit.
pub fn fit_lumped(points: &[(f64, f64)]) -> Option<LumpedFit> {
    if points.len() < 4 || points.iter().any(|(t, c)| !(t.is_finite() && c.is_finite())) {
        return None;
    }
    let span = points.last()?.0 - points.first()?.0;
    if span <= 0.0 {
        return None;
    }
    let sse = |tau: f64| linear_given_tau(points, tau).map_or(f64::INFINITY, |(_, _, e)| e);
    let (lo, hi) = (0.05 * span, 50.0 * span);
    let grid: Vec<f64> = (0..=400).map(|i| lo * (hi / lo).powf(i as f64 / 400.0)).collect();
    let best = (1..grid.len() - 1).min_by(|&a, &b| sse(grid[a]).total_cmp(&sse(grid[b])))?;
    let (mut a, mut b) = (grid[best - 1], grid[best + 1]);
    let golden = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..60 {
        let (c, d) = (b - golden * (b - a), a + golden * (b - a));
        if sse(c) < sse(d) {
            b = d;
        } else {
            a = c;
        }
    }
    let tau = (a + b) / 2.0;
    let (steady, start, e) = linear_given_tau(points, tau)?;
    (steady > start).then(|| LumpedFit {
        steady_c: steady,
        start_c: start,
        tau_s: tau,
        rms_c: (e / points.len() as f64).sqrt(),
    })
}

/// For a given τ: T = T∞ + (T0 − T∞)·x with x = e^(−t/τ), by least squares; (T∞, T0, SSE).
fn linear_given_tau(points: &[(f64, f64)], tau: f64) -> Option<(f64, f64, f64)> {
    let t0 = points.first()?.0;
    let xs: Vec<f64> = points.iter().map(|(t, _)| (-(t - t0) / tau).exp()).collect();
    let n = points.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(points).map(|(x, p)| (x - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    let steady = my - slope * mx;
    let sse = xs.iter().zip(points).map(|(x, p)| (p.1 - steady - slope * x).powi(2)).sum();
    Some((steady, steady + slope, sse))
}

#[cfg(test)]
mod fit_tests {
    use super::*;

    #[test]
    fn a_heating_curve_gives_back_its_time_constant_and_steady_state() {
        let points: Vec<(f64, f64)> = (0..=600)
            .map(|t| {
                (
                    t as f64,
                    70.0 - 30.0 * (-(t as f64) / 85.0).exp() + 0.05 * ((t * 7 % 11) as f64 - 5.0) / 5.0,
                )
            })
            .collect();
        let fit = fit_lumped(&points).unwrap();
        assert!((fit.tau_s - 85.0).abs() < 1.0, "{fit:?}");
        assert!((fit.steady_c - 70.0).abs() < 0.1, "{fit:?}");
        assert!((fit.start_c - 40.0).abs() < 0.2, "{fit:?}");
        assert!(fit.rms_c < 0.06, "{fit:?}");
    }

    #[test]
    fn a_flat_or_cooling_curve_fits_nothing() {
        assert_eq!(fit_lumped(&(0..100).map(|t| (t as f64, 40.0)).collect::<Vec<_>>()), None);
        let cooling: Vec<(f64, f64)> =
            (0..100).map(|t| (t as f64, 40.0 + 20.0 * (-(t as f64) / 30.0).exp())).collect();
        assert_eq!(fit_lumped(&cooling), None);
        assert_eq!(fit_lumped(&[(0.0, 1.0), (1.0, 2.0)]), None);
    }
}
