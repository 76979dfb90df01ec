//! Whose key signed a certificate. `keygen K --issuer FILE` records the key's owner (laboratory,
//! authoriser, role, created and expiry dates) in `K.pub`, and prints the entry a verifier adds
//! to a trusted-keys file; `verify --trusted-keys FILE` accepts a signature only from a key that
//! file lists, not revoked, not expired when the certificate was issued, held by the authoriser
//! and laboratory the certificate's sealed issuer names, and says who signed.
//!
//! The trust list is the verifier's, not the signer's: a `K.pub` travels with the certificates it
//! signed, but only a list the verifier keeps says which keys a notified body accepts, and only
//! that list can revoke one.

use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::issuer::Issuer;
use super::schema::Certificate;
use super::sign::{decode_hex, public_path};
use crate::vocab::{Error, Result};

/// The largest trusted-keys file read.
const MAX_TRUST_BYTES: u64 = 4 * 1024 * 1024;

/// Who a key belongs to, as `keygen --issuer` writes it below the key in `K.pub`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyOwner {
    pub lab: String,
    pub authoriser: String,
    pub role: String,
    /// YYYY-MM-DD, the day the key was made.
    pub created: String,
    /// YYYY-MM-DD, the last day a certificate may be issued with the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
}

impl KeyOwner {
    /// The owner named by an issuer file: its authoriser (required) and laboratory.
    pub fn from_issuer(path: &Path, issuer: &Issuer, expires: Option<String>) -> Result<KeyOwner> {
        let authoriser = issuer.authoriser.as_ref().ok_or_else(|| Error::Report {
            path: path.to_path_buf(),
            message: "a key belongs to a person: the issuer file needs [authoriser] name and role".into(),
        })?;
        if let Some(date) = &expires {
            check_date(date).map_err(|why| Error::Usage(format!("--expires {date}: {why}")))?;
        }
        Ok(KeyOwner {
            lab: issuer.lab.name.clone(),
            authoriser: authoriser.name.clone(),
            role: authoriser.role.clone(),
            created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()[..10]
                .to_string(),
            expires,
        })
    }

    /// The lines `K.pub` carries below the key.
    pub fn public_file_lines(&self) -> String {
        format!(
            "# the key's owner (edgecert keygen --issuer)\n{}",
            toml::to_string(self).expect("an owner is plain data")
        )
    }

    /// The `[[key]]` entry of a trusted-keys file for this owner's key.
    pub fn trusted_entry(&self, key: &VerifyingKey) -> String {
        let entry = TrustedKey {
            public_key: crate::vocab::hash::hex(key.as_bytes()),
            lab: self.lab.clone(),
            authoriser: self.authoriser.clone(),
            role: self.role.clone(),
            expires: self.expires.clone(),
            revoked: None,
        };
        format!("[[key]]\n{}", toml::to_string(&entry).expect("an entry is plain data"))
    }
}

/// One key a verifier accepts signatures from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// The ed25519 public key, 64 hex digits (the second line of `K.pub`).
    pub public_key: String,
    pub lab: String,
    pub authoriser: String,
    pub role: String,
    /// YYYY-MM-DD: certificates issued after this day are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// YYYY-MM-DD: the key was withdrawn; every certificate it signed is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<String>,
}

/// A verifier's list of trusted keys (`verify --trusted-keys FILE`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKeys {
    #[serde(default)]
    key: Vec<TrustedKey>,
}

impl TrustedKeys {
    /// Reads a trusted-keys file; every error names the file and the entry.
    pub fn load(path: &Path) -> Result<TrustedKeys> {
        let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
        let bytes = crate::vocab::read_bounded(path, MAX_TRUST_BYTES, "a trusted-keys file")?;
        let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
        let keys: TrustedKeys =
            toml::from_str(&text).map_err(|e| bad(format!("not a valid trusted-keys file: {e}")))?;
        if keys.key.is_empty() {
            return Err(bad("lists no [[key]]: no signature could be accepted".into()));
        }
        for (i, k) in keys.key.iter().enumerate() {
            let entry = |why: String| bad(format!("[[key]] #{} ({}): {why}", i + 1, k.authoriser));
            parse_public_key(&k.public_key).map_err(entry)?;
            for (field, date) in [("expires", &k.expires), ("revoked", &k.revoked)] {
                if let Some(d) = date {
                    check_date(d).map_err(|why| entry(format!("{field} = {d:?}: {why}")))?;
                }
            }
        }
        Ok(keys)
    }

    /// Whether the certificate's (already verified) signature comes from a key this list
    /// accepts for it; `Ok` says who signed, `Err` why the key is not accepted.
    pub fn accepts(&self, cert: &Certificate, source: &Path) -> std::result::Result<String, String> {
        let Some(sig) = &cert.signature else {
            return Err("the certificate is not signed, and --trusted-keys accepts only signatures".into());
        };
        let fp = &sig.key_fingerprint;
        let Some(k) = self.key.iter().find(|k| k.public_key.eq_ignore_ascii_case(&sig.public_key)) else {
            return Err(format!("signed by key {fp}, which {} does not list", source.display()));
        };
        let who = format!("{} ({}, {})", k.authoriser, k.role, k.lab);
        if let Some(date) = &k.revoked {
            return Err(format!("signed by key {fp} of {who}, revoked on {date}"));
        }
        let issued = cert.issued_at.get(..10).unwrap_or_default();
        if let Some(date) = k.expires.as_ref().filter(|d| issued > d.as_str()) {
            return Err(format!("signed by key {fp} of {who}, which expired on {date}; the certificate was issued on {issued}"));
        }
        if let Some(issuer) = &cert.issuer {
            if let Some(named) = issuer.authoriser.as_ref().filter(|a| a.name != k.authoriser) {
                return Err(format!(
                    "the certificate names {} as its authoriser, but key {fp} belongs to {who}",
                    named.name
                ));
            }
            if issuer.lab.name != k.lab {
                return Err(format!(
                    "the certificate names the laboratory {}, but key {fp} belongs to {who}",
                    issuer.lab.name
                ));
            }
        }
        Ok(format!("signed by {who} with trusted key {fp}"))
    }
}

/// Loads the secret key for `certify --sign-key`, and refuses a key whose `K.pub` names an owner
/// other than the authoriser and laboratory of the issuer being sealed.
pub fn load_signer(path: &Path, issuer: Option<&Issuer>) -> Result<SigningKey> {
    let key = super::sign::load_signing_key(path)?;
    let public = public_path(path);
    let (Some(owner), Some(issuer)) = (read_owner(&public)?, issuer) else { return Ok(key) };
    let named = issuer.authoriser.as_ref().map(|a| a.name.as_str());
    if named != Some(owner.authoriser.as_str()) || issuer.lab.name != owner.lab {
        return Err(Error::Usage(format!(
            "{} belongs to {} of {}, but the issuer names {} of {}: sign with the authoriser's own key",
            path.display(),
            owner.authoriser,
            owner.lab,
            named.unwrap_or("no authoriser"),
            issuer.lab.name
        )));
    }
    Ok(key)
}

/// The owner recorded below the key in a `K.pub`, if any (an absent `K.pub` records none).
pub fn read_owner(public: &Path) -> Result<Option<KeyOwner>> {
    if !public.exists() {
        return Ok(None);
    }
    let bytes = crate::vocab::read_bounded(public, 64 * 1024, "a public key")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::Usage(format!("{}: a public key file is UTF-8 text", public.display())))?;
    let rest: String = text.lines().skip(2).map(|l| format!("{l}\n")).collect();
    if rest.trim().is_empty() {
        return Ok(None);
    }
    toml::from_str(&rest).map(Some).map_err(|e| {
        Error::Usage(format!("{}: the key's owner (from line 3) is not valid: {e}", public.display()))
    })
}

fn parse_public_key(hex: &str) -> std::result::Result<VerifyingKey, String> {
    let bytes: [u8; 32] = decode_hex(hex)
        .and_then(|b| b.try_into().ok())
        .ok_or("public_key must be 64 hex digits (the second line of K.pub)")?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("public_key is not a valid ed25519 key: {e}"))
}

/// A calendar date as `YYYY-MM-DD`.
fn check_date(date: &str) -> std::result::Result<(), String> {
    let shape_ok = date.len() == 10 && date.as_bytes()[4] == b'-' && date.as_bytes()[7] == b'-';
    match shape_ok && humantime::parse_rfc3339(&format!("{date}T00:00:00Z")).is_ok() {
        true => Ok(()),
        false => Err("expected a date as YYYY-MM-DD".into()),
    }
}
