//! Reports: the certificate schema and the reporters that render a run. Each reporter consumes
//! the runner's events ([`crate::run::Event`]) and knows nothing of backends: the terminal
//! (cargo-test-like lines and a verdict table), the certificate JSON files, JUnit XML for CI,
//! and a plain-text summary. Files are written by [`write_all_atomically`]: all of them land or
//! none does, so a failed run never leaves a half-written or stale report.

mod files;
mod inventory;
mod junit;
pub mod observations;
pub mod progress;
pub mod schema;
pub mod sign;
mod table;
mod terminal;
mod verify;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

pub use files::{certificate_path, CertificateFiles, JunitFile, SummaryFile, CERTIFICATE_FILE};
pub use inventory::{inventory_text, EstimateReport, LatencySummary, PlacedNode};
pub use junit::junit_xml;
pub use schema::Certificate;
pub use table::verdict_table;
pub use terminal::{QuietPipe, TerminalFormat, TerminalReporter};
pub use verify::{verify, Verification, VerifyRequest};

/// The largest certificate `read_certificate` accepts: certificates are hostile input.
pub const MAX_CERTIFICATE_BYTES: u64 = 64 * 1024 * 1024;

/// Reads a certificate back: bounded size, the schema this version writes, every member known,
/// and an id that matches the content (a certificate edited after issue is refused).
pub fn read_certificate(path: &Path) -> Result<Certificate> {
    let cert = parse_certificate(path)?;
    let bad = |message: String| Err(Error::Report { path: path.to_path_buf(), message });
    let id = cert.content_id();
    if cert.certificate_id != id {
        return bad(format!(
            "certificate_id {} does not match the content, whose digest is {id}: the certificate was changed after it was issued",
            cert.certificate_id
        ));
    }
    let (verdict, _) = schema::overall(&cert.checks, &cert.coverage);
    if verdict != cert.verdict {
        return bad(format!(
            "the verdict says {} but its checks and coverage give {}: the certificate was changed after it was issued",
            cert.verdict.as_str(),
            verdict.as_str()
        ));
    }
    Ok(cert)
}

/// Reads a certificate without comparing its id with its content (`verify` reports that itself).
pub fn parse_certificate(path: &Path) -> Result<Certificate> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_CERTIFICATE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
    if bytes.len() as u64 > MAX_CERTIFICATE_BYTES {
        return Err(bad(format!("larger than {MAX_CERTIFICATE_BYTES} bytes: not a certificate")));
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("not JSON (line {}, column {}): {e}", e.line(), e.column())))?;
    match value.get("schema_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(schema::SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(bad(format!(
                "certificate schema_version {v}; this edgecert reads version {}",
                schema::SCHEMA_VERSION
            )))
        }
        None => return Err(bad("no schema_version: not an edgecert certificate".into())),
    }
    serde_json::from_value(value).map_err(|e| bad(format!("does not follow the certificate schema: {e}")))
}

/// What `edgecert show` prints: who and what the certificate is about, its verdict, and the
/// same verdict table as the run that wrote it.
pub fn certificate_text(c: &Certificate) -> String {
    let basis = if c.backend.emulated { "EMULATED backend" } else { "figures MEASURED" };
    format!(
        "certificate {}
issued      {} by {} {} ({} engine, {basis})
model       {} sha256 {} ({} bytes, {})
reference   {} sha256 {}
chip        {} ({}) profile sha256 {}
golden set  {} sha256 {} ({} samples, {})

{}

verdict: {}: {}
",
        c.certificate_id,
        c.issued_at,
        c.tool.name,
        c.tool.version,
        c.tool.engine,
        c.subject.model,
        c.subject.sha256,
        c.subject.size_bytes,
        c.subject.quantization,
        c.reference.model,
        c.reference.sha256,
        c.profile.name,
        c.profile.display_name,
        c.profile.sha256,
        c.golden.name,
        c.golden.sha256,
        c.golden.samples,
        c.golden.metric,
        verdict_table(std::slice::from_ref(c)),
        c.verdict.as_str(),
        c.verdict_reason,
    )
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
    // Every file is complete on disk before the first rename; a rename failing (a full or
    // read-only folder) leaves the files not yet renamed as they were, and their temporary
    // copies are removed.
    for (i, (tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            cleanup(&staged[i..]);
            return Err(Error::Report { path: path.to_path_buf(), message: e.to_string() });
        }
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
