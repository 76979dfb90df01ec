//! The certificate as a file format, and its integrity: the [`schema`] (owned types that read
//! back, a checked-in JSON Schema, the id as the digest of a canonical body), where a run puts
//! it, bounded read-back that re-derives the id, the raw [`observations`] a certificate is
//! bound to, Ed25519 [`sign`]atures, and the [`integrity`] checks `edgecert verify` runs.
//! Certificates are hostile input: every read is bounded and every member known.

pub mod integrity;
pub mod issuer;
pub mod observations;
pub mod schema;
pub mod sign;
pub mod trust;

use std::path::{Path, PathBuf};

use crate::vocab::{read_bounded, Error, Result};

pub(crate) use integrity::check_integrity;
pub use integrity::{Verification, VerifyRequest};
pub use schema::Certificate;

/// The name of every certificate file.
pub const CERTIFICATE_FILE: &str = "certificate.json";

/// Where a run writes the certificate of (family, chip): `<out>/<family>/<chip>/certificate.json`.
pub fn certificate_path(out: &Path, family: &str, chip: &str) -> PathBuf {
    out.join(family).join(chip).join(CERTIFICATE_FILE)
}

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
            "certificate_id {} does not match the content, whose digest is {id}: the certificate was changed after it was issued ({})",
            cert.certificate_id,
            cert.changed_members()
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
    let bytes = read_bounded(path, MAX_CERTIFICATE_BYTES, "a certificate")?;
    let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
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
