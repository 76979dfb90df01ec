//! The run's reporters (nextest's model): each consumes the runner's events
//! ([`crate::run::Event`]) and knows nothing of backends. The terminal (cargo-test-like lines,
//! a JSON event stream, the verdict table), the certificate files, JUnit XML for CI, and a
//! plain-text summary. Each hands its files back at the end; the run writes them all at once.

mod files;
mod junit;
mod terminal;

pub use files::{CertificateFiles, JunitFile, SummaryFile};
pub use junit::junit_xml;
pub use terminal::{QuietPipe, TerminalFormat, TerminalReporter};
