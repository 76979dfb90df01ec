//! A sustained-load run (`certify --soak S`): the compressed model run back to back (or at a
//! fixed rate) for S seconds after the latency run, each inference's latency kept with the
//! second it finished in, and once a second the device's thermal zones and clocks as its
//! kernel reports them. The thermal check decides on the hottest zone and on throttling; the
//! latency check on the last window's p99 beside the cold one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One reading of the device's sensors, `t_s` seconds into the soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalSample {
    pub t_s: f64,
    /// Each thermal zone's temperature (°C), by the zone's type (`soc-thermal`, `npu-thermal`).
    pub zones_c: BTreeMap<String, f64>,
    /// Each clock (MHz): CPU clusters (`cpu.policy4`) and devfreq devices (`fdab0000.npu`).
    pub clocks_mhz: BTreeMap<String, f64>,
    /// Sensors that could not be read this time, each named with why (a missing file, a value
    /// that is not a number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreadable: Vec<String>,
}

impl ThermalSample {
    /// The hottest zone's temperature, if any zone was read.
    pub fn hottest_c(&self) -> Option<f64> {
        self.zones_c.values().copied().filter(|t| t.is_finite()).reduce(f64::max)
    }
}

/// The whole soak: what ran, for how long, the latencies and the sensor readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SoakTrace {
    /// How long the load ran (seconds), and the rate it was paced at (`None`: back to back).
    pub seconds: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_hz: Option<f64>,
    /// Where the sensors were read (`/sys of the host`, a recorded tree, a device's agent).
    pub sensors: String,
    /// (seconds into the soak at which it finished, latency ms) of every inference.
    pub latencies: Vec<(f64, f64)>,
    pub samples: Vec<ThermalSample>,
    /// The power meter's trace over the soak, its times on the soak's clock, where a meter ran
    /// (`edgecert thermal fit` divides the temperature rise by its mean).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<crate::vocab::Observed<crate::vocab::PowerTrace>>,
    /// Seconds the meter read the idle device before the load began (its samples at negative
    /// times): the board's idle draw.
    #[serde(default)]
    pub idle_s: f64,
}

impl SoakTrace {
    /// The mean metered power (W) over the load, where a meter traced it.
    pub fn mean_power_w(&self) -> Option<f64> {
        let trace = self.power.as_ref()?.value()?;
        let watts: Vec<f64> =
            trace.points.iter().filter(|(t, _)| (0.0..=self.seconds).contains(t)).map(|(_, w)| *w).collect();
        (!watts.is_empty()).then(|| watts.iter().sum::<f64>() / watts.len() as f64)
    }

    /// The mean metered power (W) over the idle seconds before the load, where a meter read them.
    pub fn mean_idle_power_w(&self) -> Option<f64> {
        let trace = self.power.as_ref()?.value()?;
        let watts: Vec<f64> =
            trace.points.iter().filter(|(t, _)| (-self.idle_s..0.0).contains(t)).map(|(_, w)| *w).collect();
        (!watts.is_empty()).then(|| watts.iter().sum::<f64>() / watts.len() as f64)
    }

    /// The latencies (ms) of the inferences that finished in `[from_s, to_s)`.
    pub fn latencies_between(&self, from_s: f64, to_s: f64) -> Vec<f64> {
        self.latencies.iter().filter(|(t, _)| (from_s..to_s).contains(t)).map(|(_, ms)| *ms).collect()
    }

    /// Figures no soak could produce: a latency or a time that is not finite and non-negative.
    pub fn check_consistent(&self) -> std::result::Result<(), String> {
        let bad = |v: f64| !(v.is_finite() && v >= 0.0);
        if let Some((i, _)) = self.latencies.iter().enumerate().find(|(_, (t, ms))| bad(*t) || bad(*ms)) {
            return Err(format!(
                "soak latencies[{i}] is not a (time, latency) pair of finite non-negative numbers"
            ));
        }
        if let Some((i, _)) = self.samples.iter().enumerate().find(|(_, s)| bad(s.t_s)) {
            return Err(format!("soak samples[{i}].t_s is not a finite non-negative time"));
        }
        Ok(())
    }
}
