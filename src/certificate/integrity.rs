//! The integrity half of `edgecert verify` ([`crate::run::verify`] is its one entry point, and
//! adds the recompute): is this certificate what was issued, signed by whom, and about these
//! files? Every check names what differs; a changed member, a swapped model or weights file, a
//! changed golden sample or profile each fail verification.

use std::path::{Path, PathBuf};

use super::observations::{observations_path, read_observations};
use super::schema::Certificate;
use super::sign::{check_signature, load_verifying_key};
use super::trust::TrustedKeys;
use crate::golden::GoldenSet;
use crate::vocab::Result;

#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    pub certificate: PathBuf,
    /// The public key the certificate must be signed with.
    pub key: Option<PathBuf>,
    /// The verifier's trusted-keys file: the signature must come from a key it lists, not
    /// revoked, not expired at issue, and held by the issuer the certificate names.
    pub trusted_keys: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub golden: Option<PathBuf>,
    pub profile: Option<PathBuf>,
    /// Decide every check again from the raw observations and the artifacts (done by
    /// [`crate::run::verify`], above the checks; this module checks integrity only).
    pub recompute: bool,
}

/// What held and what did not, one sentence each.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
    /// What was not checked, and why (neither held nor failed).
    pub notes: Vec<String>,
}

impl Verification {
    pub fn record(&mut self, outcome: std::result::Result<String, String>) {
        match outcome {
            Ok(m) => self.passed.push(m),
            Err(m) => self.failed.push(m),
        }
    }

    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for p in &self.passed {
            out.push_str(&format!("ok: {p}\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("note: {n}\n"));
        }
        for f in &self.failed {
            out.push_str(&format!("FAILED: {f}\n"));
        }
        out.push_str(if self.ok() { "verify result: ok\n" } else { "verify result: FAILED\n" });
        out
    }
}

/// Checks a certificate's integrity; `Err` only for unreadable input (exit 2), mismatches are
/// in the returned [`Verification`].
pub(crate) fn check_integrity(req: &VerifyRequest) -> Result<Verification> {
    let cert = super::parse_certificate(&req.certificate)?;
    let expected_key = req.key.as_deref().map(load_verifying_key).transpose()?;
    let trusted = req.trusted_keys.as_deref().map(|p| TrustedKeys::load(p).map(|t| (p, t))).transpose()?;
    let mut v = Verification::default();
    v.record(content(&cert));
    match (&cert.signature, &expected_key) {
        (None, None) => v.passed.push(
            "unsigned: integrity rests on the content id alone (sign with `certify --sign-key`)".into(),
        ),
        (_, None) if trusted.is_some() => {
            v.record(check_signature(&cert, None).map(|fp| format!("signature valid, by key {fp}")))
        }
        (_, None) => v.record(check_signature(&cert, None).map(|fp| {
            format!("signature valid, by key {fp} (not checked against a key you trust: pass --trusted-keys FILE or --key KEY.pub)")
        })),
        (_, Some(_)) => {
            v.record(check_signature(&cert, expected_key.as_ref()).map(|fp| format!("signed by key {fp}")))
        }
    }
    if let Some((path, trusted)) = &trusted {
        v.record(trusted.accepts(&cert, path));
    }
    observations(req, &cert, &mut v)?;
    if let Some(model) = &req.model {
        v.record(model_matches(&cert, model)?);
    }
    if let Some(golden) = &req.golden {
        let sha = GoldenSet::files_sha256(golden)?;
        v.record(same("golden set", golden, &cert.golden.sha256, &sha));
    }
    if let Some(profile) = &req.profile {
        // A board profile's digest covers the chip profiles it extends.
        let sha = crate::profile::digest(profile)?;
        v.record(same("chip profile", profile, &cert.profile.sha256, &sha));
    }
    Ok(v)
}

/// The raw observations beside the certificate must be the ones it is bound to; absent ones are
/// noted (a certificate may travel alone), unless they are needed to recompute.
fn observations(req: &VerifyRequest, cert: &Certificate, v: &mut Verification) -> Result<()> {
    let Some(path) = observations_path(&req.certificate, cert)? else {
        v.note("the certificate names no raw observations".into());
        return Ok(());
    };
    if !path.exists() && !req.recompute {
        v.note(format!("raw observations not checked: {} is not beside the certificate", path.display()));
        return Ok(());
    }
    match read_observations(&req.certificate, cert)? {
        Ok(_) => v.record(Ok(format!("raw observations {} match the certificate's digest", path.display()))),
        Err(why) if !req.recompute => v.record(Err(why)),
        // `--recompute` reports it as the reason it cannot recompute.
        Err(_) => {}
    }
    Ok(())
}

fn content(cert: &Certificate) -> std::result::Result<String, String> {
    let id = cert.content_id();
    if id == cert.certificate_id {
        Ok(format!("content matches certificate_id {id}"))
    } else {
        Err(format!(
            "the content hashes to {id}, not to certificate_id {}: a member was changed after issue ({})",
            cert.certificate_id,
            cert.changed_members()
        ))
    }
}

fn same(what: &str, path: &Path, certified: &str, actual: &str) -> std::result::Result<String, String> {
    if certified == actual {
        Ok(format!("{what} {} has the certified sha256 {actual}", path.display()))
    } else {
        Err(format!("{what} {} hashes to {actual}, the certificate covers {certified}", path.display()))
    }
}

/// The model artifact (model file and weights files) against the certificate's, naming each
/// file that differs, is missing or is extra.
fn model_matches(cert: &Certificate, path: &Path) -> Result<std::result::Result<String, String>> {
    let artifact = crate::model::artifact(path)?;
    if artifact.sha256 == cert.subject.sha256 {
        return Ok(Ok(format!(
            "model {} ({} files) has the certified sha256 {}",
            path.display(),
            artifact.files.len(),
            artifact.sha256
        )));
    }
    let certified: std::collections::BTreeMap<&str, &str> =
        cert.subject.files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())).collect();
    let mut differences: Vec<String> = artifact
        .files
        .iter()
        .filter_map(|f| match certified.get(f.path.as_str()) {
            Some(sha) if *sha == f.sha256 => None,
            Some(sha) => Some(format!("{} hashes to {}, certified {sha}", f.path, f.sha256)),
            None => Some(format!("{} is not in the certified artifact", f.path)),
        })
        .collect();
    differences.extend(
        cert.subject
            .files
            .iter()
            .filter(|c| !artifact.files.iter().any(|f| f.path == c.path))
            .map(|c| format!("{} is missing", c.path)),
    );
    Ok(Err(format!(
        "model {} hashes to {}, the certificate covers {}: {}",
        path.display(),
        artifact.sha256,
        cert.subject.sha256,
        differences.join("; ")
    )))
}
