//! What a check hands on: its verdict with everything needed to audit it, as the certificate
//! records it (`crate::certificate::schema` carries it as is).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CheckKind;
use crate::vocab::{Basis, Interval, Outcome};

/// Whether a check reached its verdict by its own rule or was stopped by an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ran,
    /// The check panicked or hit an internal error; its verdict is INCONCLUSIVE.
    Error,
}

/// One check's outcome with everything needed to audit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckRecord {
    pub name: CheckKind,
    pub status: CheckStatus,
    pub verdict: Outcome,
    pub measured: Option<f64>,
    pub limit: Option<f64>,
    pub unit: String,
    pub basis: Basis,
    pub ci: Option<Interval>,
    /// A relative error the figures may carry as a whole beyond the interval (the emulator's
    /// error on the chip, or across chips where the profile gives none), which the verdict was decided
    /// across: PASS needs the interval's upper end at most limit × (1 − e), FAIL its lower end
    /// over limit × (1 + e).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systematic_error: Option<f64>,
    /// For INCONCLUSIVE: the chip profile's field whose absence left the check undecided
    /// (`memory.dram_bytes`, `power.typical_w`, ...). The report lists such a verdict as a gap
    /// in the profile, not in the model; `None` when the cause lies elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_gap: Option<String>,
    /// One sentence: why this verdict.
    pub reason: String,
    /// Offending nodes and similar specifics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<usize>,
    /// For INCONCLUSIVE: roughly how many samples would decide it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples_to_decide: Option<usize>,
}
