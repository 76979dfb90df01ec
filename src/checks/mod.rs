//! Checks turn observations into verdicts. A check does not know which backend produced its
//! observations; a backend does not know which checks will read them.

mod accuracy;
mod latency;
mod physical;
mod static_checks;

use serde::Serialize;

use crate::backend::Basis;
use crate::stats::{Interval, Outcome};

pub use accuracy::{accuracy_floor_check, accuracy_vs_reference_check, PairedEvaluation, ValuePair};
pub use latency::latency_check;
pub use physical::{power_check, thermal_check};
pub use static_checks::{memory_check, operator_check, size_check};

/// The names of the checks, in report order. `accuracy_hardest_slice` runs only for families
/// that name a hardest slice.
pub const CHECK_NAMES: [&str; 9] = [
    "size",
    "operators",
    "memory",
    "latency",
    "power",
    "thermal",
    "accuracy",
    "accuracy_vs_fp32",
    "accuracy_hardest_slice",
];

/// One check's outcome with everything needed to audit it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub name: String,
    pub verdict: Outcome,
    pub measured: Option<f64>,
    pub limit: Option<f64>,
    pub unit: String,
    pub basis: Basis,
    pub ci: Option<Interval>,
    /// One sentence: why this verdict.
    pub reason: String,
    /// Offending nodes and similar specifics.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// For INCONCLUSIVE: roughly how many samples would decide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples_to_decide: Option<usize>,
}

impl Verdict {
    fn new(name: &str, verdict: Outcome, unit: &str, basis: Basis, reason: impl Into<String>) -> Verdict {
        Verdict {
            name: name.to_string(),
            verdict,
            measured: None,
            limit: None,
            unit: unit.to_string(),
            basis,
            ci: None,
            reason: reason.into(),
            findings: Vec::new(),
            samples: None,
            samples_to_decide: None,
        }
    }

    /// A check that cannot be decided because an input figure is missing.
    pub fn inconclusive(name: &str, unit: &str, basis: Basis, reason: impl Into<String>) -> Verdict {
        Verdict::new(name, Outcome::Inconclusive, unit, basis, reason)
    }

    fn with_values(mut self, measured: f64, limit: Option<f64>) -> Verdict {
        self.measured = Some(measured);
        self.limit = limit;
        self
    }
}
