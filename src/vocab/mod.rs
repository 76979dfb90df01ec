//! The bottom layer: the shared vocabulary every other module speaks, and imports nothing of
//! edgecert's above it. Verdicts (outcome, basis, interval), observations and what could not
//! be observed, timings and their percentiles, the systematic error a figure may carry, power
//! traces, errors that name their file, bounded reads and atomic writes, digests, and the
//! NaN-preserving float encoding. `docs/architecture.md` draws the layers above.

pub mod error;
pub mod files;
pub mod hash;
pub mod observed;
pub mod power_trace;
pub mod serde_float;
pub mod soak;
pub mod timing;
pub mod verdict;

pub use error::{exit_code, Diagnostic, Error, Result};
pub use files::{open_regular, read_bounded, read_bytes, read_to_string, write_all_atomically};
pub use observed::{Observed, Unobserved};
pub use power_trace::{MeteredWindow, PowerTrace};
pub use soak::{SoakTrace, ThermalSample};
pub use timing::{percentile, percentiles, Scenarios, SystematicError, TimedOutputCheck, Timing};
pub use verdict::{Basis, Interval, Outcome, ValuePair};
