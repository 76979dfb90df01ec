//! Reports: the certificate (JSON), the terminal verdict table, and JUnit XML for CI. Every file
//! is written to a temporary name and renamed into place, so a failed run never leaves a
//! half-written or stale report.

mod junit;
mod table;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::backend::BackendKind;
use crate::checks::Verdict;
use crate::emulator::Estimate;
use crate::error::{Error, Result};
use crate::stats::Outcome;

pub use junit::junit_xml;
pub use table::verdict_table;

pub const CERTIFICATE_SCHEMA_VERSION: u32 = 1;

pub const DECISION_RULE: &str = "PASS only when the conservative end of the confidence interval meets the limit; FAIL when the optimistic end misses it; otherwise INCONCLUSIVE. The risk accepted is that of the stated confidence level (two-sided), per check.";

#[derive(Debug, Clone, Serialize)]
pub struct Certificate {
    pub schema_version: u32,
    pub certificate_id: String,
    pub tool: Tool,
    pub subject: Subject,
    pub reference: Subject,
    pub profile: ProfileRef,
    pub golden: GoldenRef,
    pub backend: BackendRef,
    pub checks: Vec<Verdict>,
    pub verdict: Outcome,
    pub decision_rule: &'static str,
    pub statement: &'static str,
    /// Every value of the family metric for both models (overall, per class, per slice).
    pub metrics: Option<MetricsReport>,
    /// The sustained-load junction temperature curve, when the profile allows the model.
    pub thermal: Option<crate::emulator::ThermalRun>,
    pub estimate: Option<Estimate>,
    pub issued_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricsReport {
    pub metric: String,
    pub unit: String,
    pub higher_is_better: bool,
    pub hardest_slice: Option<String>,
    /// Every value (`primary`, per class, `slice.<name>`, ...) for FP32 and compressed, each
    /// with its bootstrap interval over the golden samples.
    pub values: std::collections::BTreeMap<String, crate::checks::ValuePair>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: &'static str,
    pub version: &'static str,
    pub engine: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    pub model: String,
    pub sha256: String,
    pub size_bytes: u64,
    pub quantization: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProfileRef {
    pub name: String,
    /// The NPU compute mode the profile was certified in, when not its default.
    pub npu_mode: Option<String>,
    pub display_name: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GoldenRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
    pub samples: usize,
    pub metric: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackendRef {
    pub kind: BackendKind,
    pub emulated: bool,
    pub note: String,
}

pub const STATEMENT: &str = "Results relate only to the model, golden set and chip profile identified by the digests above. Figures with basis \"emulated\" are predictions of edgecert's cost model, not measurements on the chip; accuracy is measured by real inference on the host.";

/// The overall verdict: PASS only if every check passed; FAIL beats INCONCLUSIVE.
pub fn overall(checks: &[Verdict]) -> Outcome {
    if checks.iter().any(|c| c.verdict == Outcome::Fail) {
        Outcome::Fail
    } else if checks.iter().all(|c| c.verdict == Outcome::Pass) && !checks.is_empty() {
        Outcome::Pass
    } else {
        Outcome::Inconclusive
    }
}

/// Now, as RFC 3339 UTC (the one field, with the ID, that differs between identical runs).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Writes several files so that either all of them land or none does: each is written under a
/// temporary name in its final folder, then all are renamed into place.
pub fn write_all_atomically(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    let cleanup = |staged: &[(PathBuf, &PathBuf)]| {
        for (tmp, _) in staged {
            let _ = std::fs::remove_file(tmp);
        }
    };
    for (path, bytes) in files {
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Err(e) = std::fs::create_dir_all(dir) {
            cleanup(&staged);
            return Err(Error::io(dir, e));
        }
        let tmp = dir.join(format!(".{}.tmp-{}", file_name(path), std::process::id()));
        if let Err(e) = std::fs::write(&tmp, bytes) {
            cleanup(&staged);
            return Err(Error::io(&tmp, e));
        }
        staged.push((tmp, path));
    }
    for (tmp, path) in &staged {
        std::fs::rename(tmp, path)
            .map_err(|e| Error::Report { path: path.to_path_buf(), message: e.to_string() })?;
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Serialises a certificate; the same inputs give the same bytes apart from `issued_at` and
/// `certificate_id`.
pub fn certificate_json(cert: &Certificate) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(cert).expect("certificate is plain data");
    out.push(b'\n');
    out
}
