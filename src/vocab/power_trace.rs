//! A power meter's trace, (seconds, watts), and the timed window inside it: what a metered
//! run records, whichever meter gave it (the meters themselves are in `power`).

use serde::{Deserialize, Serialize};

/// A power trace: (seconds, watts), seconds ascending.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerTrace {
    /// What metered, e.g. "RAPL /sys/class/powercap/intel-rapl:0" or "cmd: ./meter.sh".
    pub source: String,
    /// Finite by construction: parsers refuse anything else.
    pub points: Vec<(f64, f64)>,
}

impl PowerTrace {
    /// Samples per second over the trace (0 with fewer than two samples).
    pub fn sample_rate_hz(&self) -> f64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) if b.0 > a.0 => (self.points.len() - 1) as f64 / (b.0 - a.0),
            _ => 0.0,
        }
    }

    /// Samples taken inside `from..=to`.
    pub fn samples_in(&self, from: f64, to: f64) -> usize {
        self.points.iter().filter(|(t, _)| (from..=to).contains(t)).count()
    }

    /// Joules over `from..to` (seconds): the trapezoid rule over the samples, the trace linearly
    /// interpolated at the window's edges. `None` when the trace does not cover the window.
    pub fn energy_j(&self, from: f64, to: f64) -> Option<f64> {
        let (first, last) = (self.points.first()?, self.points.last()?);
        if to < from || from < first.0 || to > last.0 {
            return None;
        }
        let mut knots = vec![(from, self.watts_at(from)?)];
        knots.extend(self.points.iter().copied().filter(|(t, _)| *t > from && *t < to));
        knots.push((to, self.watts_at(to)?));
        Some(knots.windows(2).map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0).sum())
    }

    /// Mean watts over `from..to`.
    pub fn average_w(&self, from: f64, to: f64) -> Option<f64> {
        (to > from).then(|| self.energy_j(from, to).map(|e| e / (to - from))).flatten()
    }

    /// The trace's watts at `t`, linearly interpolated between the samples around it.
    fn watts_at(&self, t: f64) -> Option<f64> {
        let after = self.points.iter().position(|(s, _)| *s >= t)?;
        let (t1, w1) = self.points[after];
        if after == 0 || t1 == t {
            return Some(w1);
        }
        let (t0, w0) = self.points[after - 1];
        Some(w0 + (w1 - w0) * (t - t0) / (t1 - t0))
    }
}

/// A trace and the timed window inside it, as a backend records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeteredWindow {
    pub trace: PowerTrace,
    /// Seconds on the trace's clock when the timed inferences began and ended.
    pub from_s: f64,
    pub to_s: f64,
    /// Inferences run inside the window.
    pub inferences: usize,
}

impl MeteredWindow {
    /// Joules per inference over the window, when the trace covers it.
    pub fn energy_per_inference_j(&self) -> Option<f64> {
        let e = self.trace.energy_j(self.from_s, self.to_s)?;
        (self.inferences > 0).then(|| e / self.inferences as f64)
    }
}
