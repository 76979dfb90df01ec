//! Who issues a report: the laboratory (name, address, contact, test location, accreditation)
//! and optionally the customer, read from a small TOML file (`--issuer`, see
//! `docs/issuer.example.toml`). Unknown keys are errors, as in profiles: a typo must not
//! silently drop the accreditation from a report.

use std::path::Path;

use serde::Deserialize;

use crate::vocab::{Error, Result};

/// The largest issuer file read.
const MAX_ISSUER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub lab: Lab,
    #[serde(default)]
    pub customer: Option<Customer>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub contact: Option<String>,
    #[serde(default)]
    pub test_location: Option<String>,
    #[serde(default)]
    pub accreditation: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub name: String,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub contact: Option<String>,
}

impl Issuer {
    /// Reads and validates an issuer file; every error names the file (and the line, from toml).
    pub fn load(path: &Path) -> Result<Issuer> {
        let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() > MAX_ISSUER_BYTES {
            return Err(bad(format!("larger than {MAX_ISSUER_BYTES} bytes: not an issuer file")));
        }
        let text = crate::vocab::read_to_string(path)?;
        let issuer: Issuer =
            toml::from_str(&text).map_err(|e| bad(format!("not a valid issuer file: {e}")))?;
        let blank = [("lab.name", Some(&issuer.lab.name)), ("lab.address", Some(&issuer.lab.address))]
            .into_iter()
            .chain([("customer.name", issuer.customer.as_ref().map(|c| &c.name))])
            .find(|(_, v)| v.is_some_and(|v| v.trim().is_empty()));
        if let Some((key, _)) = blank {
            return Err(bad(format!("{key} is empty")));
        }
        Ok(issuer)
    }
}
