//! What every verdict is made of: PASS, FAIL or INCONCLUSIVE, the basis a figure has
//! (measured, emulated, static), a confidence interval, and a metric's FP32 / compressed pair.
//! These are the certificate's own types, defined here so that the layers below the
//! certificate (statistics, translations, checks) speak them without importing it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// PASS, FAIL or INCONCLUSIVE: a check's verdict and a certificate's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Fail,
    Inconclusive,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Inconclusive => "INCONCLUSIVE",
        }
    }
}

/// Where a figure comes from: the certificate labels every number with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Basis {
    /// Timed or metered on real hardware.
    Measured,
    /// Predicted by the chip cost model.
    Emulated,
    /// Read from the file.
    Static,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Measured => "measured",
            Basis::Emulated => "emulated",
            Basis::Static => "static",
        }
    }
}

/// A confidence interval around an estimate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Interval {
    #[serde(deserialize_with = "number_or_null")]
    #[schemars(with = "Option<f64>")]
    pub low: f64,
    /// `null` when the samples cannot bound it (too few for that percentile).
    pub high: Option<f64>,
    pub confidence: f64,
    pub method: String,
}

/// One reported metric value with its interval, for both models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValuePair {
    /// `null` when the metric is undefined for that model (written for NaN).
    #[serde(deserialize_with = "number_or_null")]
    #[schemars(with = "Option<f64>")]
    pub fp32: f64,
    pub fp32_ci: Interval,
    #[serde(deserialize_with = "number_or_null")]
    #[schemars(with = "Option<f64>")]
    pub compressed: f64,
    pub compressed_ci: Interval,
}

/// JSON has no NaN: serde_json writes it as `null`, so `null` reads back as NaN.
pub fn number_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
