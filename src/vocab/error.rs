//! Structured errors. Every variant is a *bad input* (exit code 2): the run stops before any
//! report is written. Check outcomes (FAIL, INCONCLUSIVE) are not errors.

use std::fmt;
use std::path::{Path, PathBuf};

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes of the `edgecert` binary, a stable contract for scripts and CI.
pub mod exit_code {
    /// Every check passed.
    pub const PASS: i32 = 0;
    /// At least one check failed or was inconclusive.
    pub const NOT_CERTIFIED: i32 = 1;
    /// Bad input or usage; nothing was written.
    pub const BAD_INPUT: i32 = 2;
    /// `certify --baseline`: the run regressed against the baseline (whatever its verdicts).
    pub const BASELINE_REGRESSION: i32 = 3;
    /// `diff`: NEW regressed against OLD.
    pub const DIFF_REGRESSION: i32 = 1;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// One or more errors in a TOML file, each pointing at its line and field.
    #[error("{}", render_diagnostics(.0))]
    Config(Vec<Diagnostic>),

    #[error("{}: {message}", path.display())]
    Model { path: PathBuf, message: String },

    #[error("{}: {message}", path.display())]
    Golden { path: PathBuf, message: String },

    #[error("{0}")]
    Usage(String),

    #[error("inference failed for {}: {message}", path.display())]
    Inference { path: PathBuf, message: String },

    #[error("{}: {message}", path.display())]
    Report { path: PathBuf, message: String },
}

impl Error {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io { path: path.to_path_buf(), source }
    }

    pub fn model(path: &Path, message: impl Into<String>) -> Self {
        Error::Model { path: path.to_path_buf(), message: message.into() }
    }

    pub fn golden(path: &Path, message: impl Into<String>) -> Self {
        Error::Golden { path: path.to_path_buf(), message: message.into() }
    }

    pub fn exit_code(&self) -> i32 {
        exit_code::BAD_INPUT
    }
}

fn render_diagnostics(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in diags.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    out
}

/// One problem in an input file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    /// Dotted key path, e.g. `memory.dram_bandwidth_gbps` or `operators.supported.3`.
    pub field: String,
    pub message: String,
    /// The source line the problem is on, for context.
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.file.display(), self.line, self.column)?;
        if !self.field.is_empty() {
            write!(f, "field `{}`: ", self.field)?;
        }
        write!(f, "{}", self.message)?;
        if !self.source_line.trim().is_empty() {
            write!(f, "\n    | {}", self.source_line.trim_end())?;
        }
        Ok(())
    }
}
