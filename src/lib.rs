//! edgecert: hardware-compatibility certification of compressed ONNX models for edge chips.
//!
//! The crate follows the domain's data flow: a [`profile::ChipProfile`] and a
//! [`golden::GoldenSet`] meet a [`model::ModelInventory`]; [`run`] plans the checks, a
//! [`backend::Backend`] observes the model, the [`checks`] turn observations into verdicts, and
//! reporters render the [`certificate::Certificate`] and the run. [`diff`] compares two runs.

pub mod analyze;
pub mod backend;
pub mod certificate;
pub mod checks;
pub mod cli;
pub mod config;
pub mod device;
pub mod diff;
pub mod emulator;
pub mod engine;
pub mod exec;
pub mod golden;
pub mod i18n;
pub mod metrics;
pub mod model;
pub mod power;
pub mod profile;
pub mod records;
pub mod remote;
pub mod render;
pub mod reporter;
pub mod run;
pub mod stats;
pub mod views;
pub mod vocab;
pub mod workflow;

pub use vocab::{Error, Result};

/// The tool's own identity, recorded in every certificate.
pub const TOOL_NAME: &str = "edgecert";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
