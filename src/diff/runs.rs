//! The certificates of one side of a comparison, read back from disk: a single
//! `certificate.json`, a certificate's folder, or a `certify --out` folder
//! (`<out>/<family>/<chip>/certificate.json`), each with the per-sample latencies of the raw
//! observations it is bound to, when they are there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::certificate::schema::Certificate;
use crate::certificate::{observations, CERTIFICATE_FILE};
use crate::vocab::{Error, Result, Timing};

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
    /// certificate, observations that are not the ones a certificate is bound to, or two
    /// certificates for the same (family, chip).
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
            let certificate = crate::certificate::read_certificate(path)?;
            let key = CertificateKey {
                family: certificate.golden.name.clone(),
                chip: certificate.profile.name.clone(),
            };
            let timing = observations::read_timing(path, &certificate)?;
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
