//! What a backend could not observe, and why: a check reports it as INCONCLUSIVE with the
//! reason. [`Unobserved`] in memory; [`Observed`] as recorded in the raw observations file.

use serde::{Deserialize, Serialize};

use super::verdict::Basis;

/// A figure the backend could not observe, and why; the check reports it as INCONCLUSIVE.
#[derive(Debug, Clone)]
pub struct Unobserved {
    pub basis: Basis,
    pub reason: String,
}

/// An observation as made: its figures, or why it could not be made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Observed<T> {
    Observed { value: T },
    Unavailable { basis: Basis, reason: String },
}

impl<T> Observed<T> {
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
        Unobserved { basis: Basis::Measured, reason: reason.into() }
    }
}

impl<T> Observed<T> {
    /// The value, or what kept it from being observed.
    pub fn as_result(&self) -> Result<&T, Unobserved> {
        match self {
            Observed::Observed { value } => Ok(value),
            Observed::Unavailable { basis, reason } => {
                Err(Unobserved { basis: *basis, reason: reason.clone() })
            }
        }
    }
}

impl<T> From<Result<T, Unobserved>> for Observed<T> {
    fn from(r: Result<T, Unobserved>) -> Self {
        match r {
            Ok(value) => Observed::Observed { value },
            Err(Unobserved { basis, reason }) => Observed::Unavailable { basis, reason },
        }
    }
}
