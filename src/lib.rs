//! edgecert: hardware-compatibility certification of compressed ONNX models for edge chips.
//!
//! The crate follows the domain's data flow: a [`profile::ChipProfile`] and a
//! [`golden::GoldenSet`] meet a [`model::ModelInventory`] in a [`backend::Backend`], whose
//! observations feed the [`checks`]; the verdicts become a [`report::Certificate`].

pub mod backend;
pub mod checks;
pub mod cli;
pub mod config;
pub mod emulator;
pub mod engine;
pub mod error;
pub mod golden;
pub mod hash;
pub mod metrics;
pub mod model;
pub mod profile;
pub mod report;
pub mod stats;

pub use error::{Error, Result};

/// The tool's own identity, recorded in every certificate.
pub const TOOL_NAME: &str = "edgecert";
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");
