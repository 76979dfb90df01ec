//! Signing certificates with ed25519. The signature covers the certificate's canonical body (the
//! same bytes its id is the digest of), so changing any member breaks both. Keys are small text
//! files: `K` holds the 32-byte secret seed in hex (written with mode 0600), `K.pub` the public
//! key in hex; a key's fingerprint is the first 16 bytes of the SHA-256 of the public key.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::schema::{Certificate, SignatureRecord};
use crate::vocab::hash::{hex, sha256_hex};
use crate::vocab::{Error, Result};

const SECRET_HEADER: &str = "edgecert ed25519 secret key v1";
const PUBLIC_HEADER: &str = "edgecert ed25519 public key v1";

/// Makes a key pair at `path` (secret, mode 0600) and `path.pub`, the owner (when given) below
/// the key in `path.pub`; refuses to overwrite either. Returns the public key's path and key.
pub fn keygen(path: &Path, owner: Option<&super::trust::KeyOwner>) -> Result<(PathBuf, VerifyingKey)> {
    let public = public_path(path);
    for p in [path, public.as_path()] {
        if p.exists() {
            return Err(Error::Usage(format!("{} already exists: keys are never overwritten", p.display())));
        }
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| Error::Usage(format!("no randomness for a key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    write_secret(path, &format!("{SECRET_HEADER}\n{}\n", hex(&seed)))?;
    let verifying = key.verifying_key();
    let owner = owner.map(|o| o.public_file_lines()).unwrap_or_default();
    std::fs::write(&public, format!("{PUBLIC_HEADER}\n{}\n{owner}", hex(verifying.as_bytes())))
        .map_err(|e| Error::io(&public, e))?;
    Ok((public, verifying))
}

/// Where the public key of the secret key at `secret` is: `secret.pub`.
pub(crate) fn public_path(secret: &Path) -> PathBuf {
    let mut name = secret.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

#[cfg(unix)]
fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(text.as_bytes()).map_err(|e| Error::io(path, e))
}

#[cfg(not(unix))]
fn write_secret(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

/// The key's fingerprint: 32 hex digits of the SHA-256 of the public key.
pub fn fingerprint(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..32].to_string()
}

/// Reads one of our key files: its header line, then 64 hex digits.
fn read_key_bytes(path: &Path, header: &str) -> Result<[u8; 32]> {
    let bad = |m: &str| Error::Usage(format!("{}: {m}", path.display()));
    let mut text = String::new();
    let file = crate::vocab::open_regular(path)?;
    // Bounded, so a device or a huge file named as a key cannot stall or exhaust memory.
    std::io::Read::read_to_string(&mut std::io::Read::take(file, 4097), &mut text)
        .map_err(|e| Error::io(path, e))?;
    if text.len() > 4096 {
        return Err(bad("too large to be an edgecert key"));
    }
    let mut lines = text.lines();
    if lines.next() != Some(header) {
        return Err(bad(&format!("not an edgecert key: the first line must be `{header}`")));
    }
    let digits = lines.next().unwrap_or("").trim();
    let bytes = decode_hex(digits)
        .filter(|b| b.len() == 32)
        .ok_or_else(|| bad("expected 64 hex digits on the second line"))?;
    Ok(bytes.try_into().expect("32 bytes"))
}

pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// Loads a secret key written by [`keygen`].
pub fn load_signing_key(path: &Path) -> Result<SigningKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_err(|e| Error::io(path, e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(Error::Usage(format!(
                "{}: a secret key readable by others (mode {:o}) is not used; `chmod 600` it",
                path.display(),
                mode & 0o777
            )));
        }
    }
    Ok(SigningKey::from_bytes(&read_key_bytes(path, SECRET_HEADER)?))
}

/// Loads a public key written by [`keygen`].
pub fn load_verifying_key(path: &Path) -> Result<VerifyingKey> {
    let bytes = read_key_bytes(path, PUBLIC_HEADER)?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|e| Error::Usage(format!("{}: not a valid ed25519 public key: {e}", path.display())))
}

/// Signs the certificate's canonical body; the id must already be sealed.
pub fn sign(certificate: &mut Certificate, key: &SigningKey) {
    let signature = key.sign(&certificate.canonical_body());
    let verifying = key.verifying_key();
    certificate.signature = Some(SignatureRecord {
        algorithm: "ed25519".into(),
        public_key: hex(verifying.as_bytes()),
        key_fingerprint: fingerprint(&verifying),
        value: hex(&signature.to_bytes()),
    });
}

/// Checks the certificate's signature against the public key it names, and that key against
/// `expected` when given. `Err` says what is wrong.
pub fn check_signature(
    certificate: &Certificate,
    expected: Option<&VerifyingKey>,
) -> std::result::Result<String, String> {
    let Some(sig) = &certificate.signature else {
        return Err("the certificate is not signed".into());
    };
    if sig.algorithm != "ed25519" {
        return Err(format!("signature algorithm `{}` is not ed25519", sig.algorithm));
    }
    let key_bytes: [u8; 32] = decode_hex(&sig.public_key)
        .and_then(|b| b.try_into().ok())
        .ok_or("signature.public_key is not 64 hex digits")?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|e| format!("signature.public_key is not a valid key: {e}"))?;
    if let Some(expected) = expected {
        if expected != &key {
            return Err(format!(
                "signed by key {}, not by the expected key {}",
                fingerprint(&key),
                fingerprint(expected)
            ));
        }
    }
    let value: [u8; 64] = decode_hex(&sig.value)
        .and_then(|b| b.try_into().ok())
        .ok_or("signature.value is not 128 hex digits")?;
    key.verify(&certificate.canonical_body(), &Signature::from_bytes(&value)).map_err(|_| {
        "the signature does not match the certificate's content: it was changed after signing".to_string()
    })?;
    Ok(fingerprint(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(decode_hex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(decode_hex("0"), None);
        assert_eq!(decode_hex("zz"), None);
    }

    #[test]
    fn keys_are_written_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("lab");
        let (public, key) = keygen(&k, None).unwrap();
        let fp = fingerprint(&key);
        assert_eq!(fp.len(), 32);
        assert_eq!(fingerprint(&load_verifying_key(&public).unwrap()), fp);
        assert_eq!(fingerprint(&load_signing_key(&k).unwrap().verifying_key()), fp);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&k).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let err = keygen(&k, None).unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
    }
}
