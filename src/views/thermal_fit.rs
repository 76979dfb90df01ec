//! `edgecert thermal fit CERT`: a board's thermal resistance and time constant, measured. A
//! soak with a power meter (`certify --soak S --power-meter M --ambient C`) records the hottest
//! zone's heating curve and the board's draw; the lumped model's step response,
//! T(t) = T∞ − (T∞ − T0)·e^(−t/τ), fitted to the zone that ended hottest gives τ, and
//! R = (T∞ − ambient) / P. The result is a `[thermal]` snippet for a board profile with a
//! `[sources] thermal_fit` entry naming the certificate, so the figure says it was measured and
//! where, and emulated certificates on that board get a thermal verdict.

use std::path::{Path, PathBuf};

use crate::certificate::{observations::read_observations, read_certificate};
use crate::emulator::{fit_lumped, LumpedFit};
use crate::vocab::{Error, Result, SoakTrace};

/// A soak covering fewer fitted time constants than this leaves T∞ an extrapolation.
pub const MIN_TIME_CONSTANTS: f64 = 2.0;

/// The fit of one soak.
#[derive(Debug, Clone)]
pub struct ThermalFit {
    pub certificate: PathBuf,
    pub certificate_id: String,
    pub soak_s: f64,
    pub ambient_c: f64,
    pub mean_power_w: f64,
    pub power_source: String,
    pub zone: String,
    pub readings: usize,
    pub fit: LumpedFit,
    pub resistance_c_per_w: f64,
    /// The board's idle draw (W) over the seconds before the load, and those seconds.
    pub idle: Option<(f64, f64)>,
}

/// Fits the soak recorded beside the certificate at `path`; every refusal names the file and
/// what the soak lacks (exit 2).
pub fn thermal_fit(path: &Path) -> Result<ThermalFit> {
    let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
    let cert = read_certificate(path)?;
    let record = read_observations(path, &cert)?.map_err(bad)?;
    let trace: &SoakTrace = record
        .timing
        .as_ref()
        .and_then(|t| t.value())
        .and_then(|t| t.soak.as_ref())
        .ok_or_else(|| bad("records no soak: certify with --soak S --power-meter M --ambient C".into()))?
        .as_result()
        .map_err(|why| bad(format!("its soak failed: {}", why.reason)))?;
    let ambient_c = cert.environment.as_ref().and_then(|e| e.ambient_c).ok_or_else(|| {
        bad("states no ambient (certify --ambient C): the rise over ambient cannot be known".into())
    })?;
    let power = trace
        .power
        .as_ref()
        .ok_or_else(|| bad("its soak ran without a power meter (--power-meter)".into()))?;
    let power_source = power
        .as_result()
        .map_err(|why| bad(format!("its soak's meter gave no power: {}", why.reason)))?
        .source
        .clone();
    let mean_power_w = trace
        .mean_power_w()
        .ok_or_else(|| bad("its soak's meter traced no sample during the load".into()))?;
    let zone =
        hottest_at_end(trace).ok_or_else(|| bad(format!("no thermal zone was read in {}", trace.sensors)))?;
    let points: Vec<(f64, f64)> = trace
        .samples
        .iter()
        .filter_map(|s| Some((s.t_s, *s.zones_c.get(&zone)?)))
        .filter(|(t, _)| *t >= 0.0)
        .collect();
    let fit = fit_lumped(&points).ok_or_else(|| {
        bad(format!(
            "{zone} did not heat along a lumped curve over the soak ({} readings): nothing to fit",
            points.len()
        ))
    })?;
    if trace.seconds < MIN_TIME_CONSTANTS * fit.tau_s {
        return Err(bad(format!(
            "the {:.0} s soak covers under {MIN_TIME_CONSTANTS} fitted time constants (τ ≈ {:.0} s): its steady state would be extrapolated; soak at least {:.0} s",
            trace.seconds,
            fit.tau_s,
            (5.0 * fit.tau_s).ceil()
        )));
    }
    let rise = fit.steady_c - ambient_c;
    if rise <= 0.0 || mean_power_w <= 0.0 {
        return Err(bad(format!(
            "{zone} settles at {:.1} °C, not above the stated {ambient_c} °C ambient at {mean_power_w:.2} W: no resistance to fit",
            fit.steady_c
        )));
    }
    Ok(ThermalFit {
        certificate: path.to_path_buf(),
        certificate_id: cert.certificate_id,
        soak_s: trace.seconds,
        ambient_c,
        mean_power_w,
        power_source,
        zone,
        readings: points.len(),
        fit,
        resistance_c_per_w: rise / mean_power_w,
        idle: trace.mean_idle_power_w().map(|w| (w, trace.idle_s)),
    })
}

/// The zone with the highest reading in the soak's last sample.
fn hottest_at_end(trace: &SoakTrace) -> Option<String> {
    let last = trace.samples.iter().rev().find(|s| !s.zones_c.is_empty())?;
    last.zones_c
        .iter()
        .filter(|(_, c)| c.is_finite())
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(z, _)| z.clone())
}

impl ThermalFit {
    /// The `[thermal]` snippet for a board profile, with its `[sources]` entry.
    pub fn snippet(&self) -> String {
        let f = &self.fit;
        let source = format!(
            "measured: edgecert thermal fit of certificate {} ({}): a {:.0} s soak at {} °C stated ambient, {:.2} W mean ({}), zone {} fitted T∞ {:.1} °C, τ {:.0} s, RMS {:.2} °C over {} readings; R = (T∞ − ambient) / P",
            self.certificate_id,
            self.certificate.display(),
            self.soak_s,
            self.ambient_c,
            self.mean_power_w,
            self.power_source,
            self.zone,
            f.steady_c,
            f.tau_s,
            f.rms_c,
            self.readings
        );
        let (idle_table, idle_source) = match self.idle {
            Some((watts, seconds)) => (
                format!("\n[power]\nidle_w = {watts:.3}\n"),
                format!("; idle {watts:.3} W over the {seconds:.0} s before the load"),
            ),
            None => (String::new(), String::new()),
        };
        format!(
            "# Measured by `edgecert thermal fit` from certificate {}: paste into the board's profile.\n[thermal]\nresistance_c_per_w = {:.3}\ntime_constant_s = {:.1}\n{idle_table}\n[sources]\nthermal_fit = {}\n",
            self.certificate_id,
            self.resistance_c_per_w,
            f.tau_s,
            toml::Value::String(source + &idle_source)
        )
    }
}
