//! Latency observations of one model as a backend records them, the systematic error they may
//! carry as a whole, and the percentiles every reader takes of them (MLPerf's definition).

use serde::{Deserialize, Serialize};

use super::observed::Observed;
use super::power_trace::MeteredWindow;
use super::verdict::Basis;

/// Latency observations of one model: per sample, in the order observed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    #[serde(with = "crate::vocab::serde_float::vec")]
    pub latencies_ms: Vec<f64>,
    pub basis: Basis,
    /// What was timed, for the report (e.g. "host CPU, 1 thread" or "emulated rk3588").
    pub what: String,
    /// The power meter's trace over the timed window, where a meter ran beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<Observed<MeteredWindow>>,
    /// Load times and offline throughput, where the backend measures them (host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<Scenarios>,
    /// How far the chip's own latencies may sit from these beyond their scatter (an
    /// emulator's error at points it was not calibrated on); a verdict must hold across it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systematic_error: Option<SystematicError>,
    /// The sustained-load run after the timed one (`certify --soak`), where one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<crate::vocab::Observed<crate::vocab::SoakTrace>>,
}

/// A relative error the timed figures may carry as a whole, not sample by sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystematicError {
    /// The largest |figure / chip's − 1| assumed, below [`SystematicError::MAX`]. At 1 or
    /// beyond, the chip could be any number of times slower than the figures: no verdict on
    /// them can PASS.
    pub relative: f64,
    /// Where it comes from, as the report says it.
    pub source: String,
}

impl SystematicError {
    /// The largest relative error a figure may carry (an emulator ten times off is no emulator).
    pub const MAX: f64 = 10.0;

    /// Whether figures with this error could still pass: the chip could not be infinitely slower.
    pub fn can_pass(&self) -> bool {
        self.relative < 1.0
    }

    /// "±39 %".
    pub fn percent(&self) -> String {
        format!("±{:.0} %", self.relative * 100.0)
    }

    /// The chip's figure if `figure` errs by this much either way: figure / (1 ± e), with no
    /// upper end (infinity) from an error of 1 on.
    pub fn chip_range(&self, figure: f64) -> [f64; 2] {
        let upper = if self.can_pass() { figure / (1.0 - self.relative) } else { f64::INFINITY };
        [figure / (1.0 + self.relative), upper]
    }
}

impl Timing {
    /// Figures no run could produce: a latency that is not a finite non-negative number, or a
    /// systematic error outside [0, [`SystematicError::MAX`]).
    pub fn check_consistent(&self) -> std::result::Result<(), String> {
        if let Some((i, v)) =
            self.latencies_ms.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v >= 0.0))
        {
            return Err(format!("timing latencies_ms[{i}] holds {v}, not a latency"));
        }
        if let Some(crate::vocab::Observed::Observed { value }) = &self.soak {
            value.check_consistent()?;
        }
        match &self.systematic_error {
            Some(e) if !(0.0..SystematicError::MAX).contains(&e.relative) => Err(format!(
                "timing systematic_error.relative holds {}, not a relative error in [0, {})",
                e.relative,
                SystematicError::MAX
            )),
            _ => Ok(()),
        }
    }
}

/// What a measured backend observes besides single-stream latency, after MLPerf's scenarios:
/// load times (cold: the first load, parsing and optimising included; warm: a reload), offline
/// throughput, and the compliance runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenarios {
    /// Cold and warm load times; absent where the runtime cannot tell them from its inference
    /// (a command timed by its wall clock alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_load_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_ms: Option<f64>,
    pub offline_inferences: usize,
    pub offline_seconds: f64,
    pub offline_threads: usize,
    /// Median latency of one sample run again and again (MLPerf's TEST04): a backend that
    /// caches results runs it much faster than the set.
    pub repeated_sample_median_ms: f64,
    /// The set's latencies in the same rounds as the repeated sample's, sorted: what TEST04
    /// compares it with (empty in observations older than the paired run).
    #[serde(default, with = "crate::vocab::serde_float::vec")]
    pub repeat_round_set_ms: Vec<f64>,
    /// MLPerf's TEST01: timed runs whose outputs were compared bit for bit with the accuracy
    /// run's, and how many differed (a device that computes less when timed is caught).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timed_outputs: Option<TimedOutputCheck>,
    /// Whether the compliance runs decide the latency check: on a device, which may cache or
    /// cut corners; not on the host CPU, which runs edgecert's own engine.
    #[serde(default)]
    pub compliance_enforced: bool,
    /// How long the single-stream run took, and the least it was asked to take.
    #[serde(default)]
    pub single_stream_s: f64,
    #[serde(default)]
    pub min_duration_s: f64,
}

/// Timed-run outputs compared with the accuracy run's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimedOutputCheck {
    pub compared: usize,
    pub differing: usize,
}

impl Scenarios {
    pub fn offline_fps(&self) -> f64 {
        self.offline_inferences as f64 / self.offline_seconds
    }
}

/// MLPerf's percentile: the value at index floor(n·p) of the sorted samples.
///
/// ```
/// let latencies_ms: Vec<f64> = (1..=200).map(f64::from).collect();
/// assert_eq!(edgecert::vocab::percentile(&latencies_ms, 0.99), 199.0);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).floor() as usize).min(sorted.len() - 1);
    sorted[i]
}

/// Several percentiles of unsorted figures, sorted once; NaN for each where there are none.
///
/// ```
/// let [p50, p99] = edgecert::vocab::percentiles(&[3.0, 1.0, 2.0], [0.5, 0.99]);
/// assert_eq!((p50, p99), (2.0, 3.0));
/// ```
pub fn percentiles<const N: usize>(values: &[f64], ps: [f64; N]) -> [f64; N] {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    ps.map(|p| if sorted.is_empty() { f64::NAN } else { percentile(&sorted, p) })
}
