//! Who issues a certificate: the laboratory (name, address, contact, test location,
//! accreditation and its scope), the customer, the person who authorises the results and the
//! specification the limits implement, read from a small TOML file (`certify --issuer`, see
//! `docs/issuer.example.toml`) and sealed into the certificate, so a report renders what was
//! signed. Unknown keys are errors, as in profiles: a typo must not silently drop the
//! accreditation from a report.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::vocab::{Error, Result};

/// The largest issuer file read.
const MAX_ISSUER_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub lab: Lab,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    /// Who authorises the results (ISO/IEC 17025 §7.8.2.1 o).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authoriser: Option<Authoriser>,
    /// The specification the golden set's limits implement (§7.8.6.1), e.g. a customer's
    /// requirement document and its revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub specification: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    pub name: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accreditation: Option<String>,
    /// What the accreditation covers (its scope as the accreditation body states it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accreditation_scope: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Customer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authoriser {
    pub name: String,
    pub role: String,
}

impl Issuer {
    /// Reads and validates an issuer file; every error names the file (and the line, from toml).
    pub fn load(path: &Path) -> Result<Issuer> {
        let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
        let bytes = crate::vocab::read_bounded(path, MAX_ISSUER_BYTES, "an issuer file")?;
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        let issuer: Issuer =
            toml::from_str(&text).map_err(|e| bad(format!("not a valid issuer file: {e}")))?;
        let required = [("lab.name", Some(&issuer.lab.name)), ("lab.address", Some(&issuer.lab.address))]
            .into_iter()
            .chain([("customer.name", issuer.customer.as_ref().map(|c| &c.name))])
            .chain([
                ("authoriser.name", issuer.authoriser.as_ref().map(|a| &a.name)),
                ("authoriser.role", issuer.authoriser.as_ref().map(|a| &a.role)),
            ]);
        if let Some((key, _)) = required.into_iter().find(|(_, v)| v.is_some_and(|v| v.trim().is_empty())) {
            return Err(bad(format!("{key} is empty")));
        }
        Ok(issuer)
    }
}
