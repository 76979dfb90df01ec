//! The certificates of one side of a comparison, read back from disk: a single
//! `certificate.json`, a certificate's folder, or a `certify --out` folder
//! (`<out>/<family>/<chip>/certificate.json`). Beside each certificate, the optional
//! `observations.json` may hold the run's per-sample latencies; only its `timing` member is read.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::report::schema::{Basis, Certificate};
use crate::report::{self, CERTIFICATE_FILE};

/// The raw observations written beside a certificate.
pub const OBSERVATIONS_FILE: &str = "observations.json";

/// The largest observations file read: per-sample figures of a long run, but hostile input all
/// the same.
pub const MAX_OBSERVATIONS_BYTES: u64 = 256 * 1024 * 1024;

/// Which certificate: the golden set (family) and the chip profile it was issued for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct CertificateKey {
    pub family: String,
    pub chip: String,
}

impl std::fmt::Display for CertificateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {}", self.family, self.chip)
    }
}

/// Per-sample single-inference latencies of the certified model, as the run observed them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Timing {
    pub basis: Basis,
    /// What was timed (the backend's own words).
    pub what: String,
    pub latencies_ms: Vec<f64>,
}

/// One certificate as read, with the latencies observed beside it (when there are any).
#[derive(Debug, Clone)]
pub struct RunCertificate {
    pub path: PathBuf,
    pub certificate: Certificate,
    pub timing: Option<Timing>,
}

/// Every certificate of one side, keyed by (family, chip).
#[derive(Debug, Clone)]
pub struct Runs {
    /// The path given: a file or a folder.
    pub source: PathBuf,
    pub certificates: BTreeMap<CertificateKey, RunCertificate>,
}

impl Runs {
    /// Reads a certificate file, a certificate's folder, or every `*/*/certificate.json` under a
    /// `certify --out` folder. A folder without any certificate is bad input, as is an invalid
    /// certificate or observations file, or two certificates for the same (family, chip).
    pub fn load(source: &Path) -> Result<Runs> {
        let meta = std::fs::metadata(source).map_err(|e| Error::io(source, e))?;
        let files = if meta.is_file() {
            vec![source.to_path_buf()]
        } else if source.join(CERTIFICATE_FILE).is_file() {
            vec![source.join(CERTIFICATE_FILE)]
        } else {
            certificates_under(source)?
        };
        if files.is_empty() {
            return Err(Error::Report {
                path: source.to_path_buf(),
                message: format!(
                    "no certificates found: neither a {CERTIFICATE_FILE} nor a certify output folder (<family>/<chip>/{CERTIFICATE_FILE})"
                ),
            });
        }
        Runs::from_files(source, &files)
    }

    /// Reads exactly these certificate files (e.g. the ones a run just wrote).
    pub fn from_files(source: &Path, files: &[PathBuf]) -> Result<Runs> {
        let mut certificates = BTreeMap::new();
        for path in files {
            let certificate = report::read_certificate(path)?;
            let key = CertificateKey {
                family: certificate.golden.name.clone(),
                chip: certificate.profile.name.clone(),
            };
            let observations = path.with_file_name(OBSERVATIONS_FILE);
            let timing = read_timing(&observations)?;
            let entry = RunCertificate { path: path.clone(), certificate, timing };
            if let Some(first) = certificates.insert(key.clone(), entry) {
                return Err(Error::Report {
                    path: path.clone(),
                    message: format!(
                        "a second certificate for {key} (the first is {}): which one to compare is ambiguous",
                        first.path.display()
                    ),
                });
            }
        }
        Ok(Runs { source: source.to_path_buf(), certificates })
    }
}

/// `<dir>/*/*/certificate.json`, in name order. Only that depth: an output folder is never
/// walked further, so a stray deep tree (or a link cycle) costs nothing.
fn certificates_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for family in sorted_subfolders(dir)? {
        for chip in sorted_subfolders(&family)? {
            let file = chip.join(CERTIFICATE_FILE);
            if file.is_file() {
                found.push(file);
            }
        }
    }
    Ok(found)
}

fn sorted_subfolders(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut folders = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        // Follows links (an artifact folder may link a family in): the depth is fixed, so a
        // link cycle cannot make the walk endless.
        if path.is_dir() {
            folders.push(path);
        }
    }
    folders.sort();
    Ok(folders)
}

/// The only member read; whatever else the file holds is someone else's concern.
#[derive(Deserialize)]
struct ObservationsFile {
    #[serde(default)]
    timing: Option<Timing>,
}

/// The `timing` member of an observations file; `None` when the file or the member is absent
/// or holds no latency.
fn read_timing(path: &Path) -> Result<Option<Timing>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
    let mut bytes = Vec::new();
    file.take(MAX_OBSERVATIONS_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_OBSERVATIONS_BYTES {
        return Err(bad(format!("larger than {MAX_OBSERVATIONS_BYTES} bytes: not an observations file")));
    }
    let parsed: ObservationsFile = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!("not an observations file (line {}, column {}): {e}", e.line(), e.column()))
    })?;
    let Some(timing) = parsed.timing else { return Ok(None) };
    if let Some(i) = timing.latencies_ms.iter().position(|v| !v.is_finite() || *v < 0.0) {
        return Err(bad(format!(
            "timing.latencies_ms[{i}] is {}: a latency is a finite number of milliseconds, not negative",
            timing.latencies_ms[i]
        )));
    }
    Ok((!timing.latencies_ms.is_empty()).then_some(timing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(OBSERVATIONS_FILE);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn timing_is_read_and_other_members_ignored() {
        let (_dir, path) = written(
            r#"{"accuracy": {"x": 1}, "timing": {"basis": "measured", "what": "tract on host", "latencies_ms": [1.5, 2.0]}}"#,
        );
        let timing = read_timing(&path).unwrap().unwrap();
        assert_eq!((timing.basis, timing.latencies_ms), (Basis::Measured, vec![1.5, 2.0]));
    }

    #[test]
    fn absent_file_null_timing_and_no_latency_mean_no_timing() {
        assert_eq!(read_timing(Path::new("/nonexistent/observations.json")).unwrap(), None);
        let (_dir, path) = written(r#"{"timing": null}"#);
        assert_eq!(read_timing(&path).unwrap(), None);
        let (_dir, path) = written(r#"{"timing": {"basis": "emulated", "what": "x", "latencies_ms": []}}"#);
        assert_eq!(read_timing(&path).unwrap(), None);
    }

    #[test]
    fn a_malformed_observations_file_is_refused_naming_it() {
        for (text, words) in [
            ("not json", "not an observations file"),
            (r#"{"timing": {"basis": "guessed", "what": "x", "latencies_ms": [1]}}"#, "unknown variant"),
            (r#"{"timing": {"basis": "measured", "what": "x", "latencies_ms": [1, -2]}}"#, "latencies_ms[1]"),
        ] {
            let (_dir, path) = written(text);
            let message = read_timing(&path).unwrap_err().to_string();
            assert!(message.contains(OBSERVATIONS_FILE) && message.contains(words), "{text}: {message}");
        }
    }
}
