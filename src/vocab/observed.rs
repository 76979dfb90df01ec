//! What a backend could not observe, and why: a check reports it as INCONCLUSIVE with the
//! reason. [`Unobserved`] in memory; [`Observed`] as recorded in the raw observations file.

use serde::{Deserialize, Serialize};

use super::verdict::Basis;

/// A figure the backend could not observe, and why; the check reports it as INCONCLUSIVE.
#[derive(Debug, Clone)]
pub struct Unobserved {
    pub basis: Basis,
    pub reason: String,
    /// The chip profile's field whose absence kept the figure from being observed (the
    /// emulator's `memory.dram_bandwidth_gbps`, say); `None` when the cause lies elsewhere.
    pub profile_gap: Option<String>,
}

/// An observation as made: its figures, or why it could not be made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Observed<T> {
    Observed {
        value: T,
    },
    Unavailable {
        basis: Basis,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile_gap: Option<String>,
    },
}

impl<T> Observed<T> {
    /// A measured figure that could not be had, and why.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Observed::Unavailable { basis: Basis::Measured, reason: reason.into(), profile_gap: None }
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Observed::Observed { value } => Some(value),
            Observed::Unavailable { .. } => None,
        }
    }
}

impl Unobserved {
    /// A measured figure that could not be had (a replay, a meter, a metric), and why.
    pub fn measured(reason: impl Into<String>) -> Self {
        Unobserved { basis: Basis::Measured, reason: reason.into(), profile_gap: None }
    }
}

impl<T> Observed<T> {
    /// The value, or what kept it from being observed.
    pub fn as_result(&self) -> Result<&T, Unobserved> {
        match self {
            Observed::Observed { value } => Ok(value),
            Observed::Unavailable { basis, reason, profile_gap } => {
                Err(Unobserved { basis: *basis, reason: reason.clone(), profile_gap: profile_gap.clone() })
            }
        }
    }
}

impl<T> From<Result<T, Unobserved>> for Observed<T> {
    fn from(r: Result<T, Unobserved>) -> Self {
        match r {
            Ok(value) => Observed::Observed { value },
            Err(Unobserved { basis, reason, profile_gap }) => {
                Observed::Unavailable { basis, reason, profile_gap }
            }
        }
    }
}
