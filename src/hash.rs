//! SHA-256 digests of the artifacts a certificate names.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Digest of several named parts, order-sensitive, so a set of files hashes to one value and a
/// renamed or reordered part changes it.
pub fn sha256_of_parts<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (name, bytes) in parts {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    hex(&h.finalize())
}

/// A seed derived from input digests, so identical inputs give identical random draws.
pub fn seed_from(parts: &[&str]) -> u64 {
    let digest = sha256_hex(parts.concat().as_bytes());
    u64::from_str_radix(&digest[..16], 16).expect("hex digest")
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_matches_the_standard_vector() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn parts_digest_depends_on_names_and_order() {
        let a = sha256_of_parts([("x", &b"1"[..]), ("y", &b"2"[..])]);
        let b = sha256_of_parts([("y", &b"2"[..]), ("x", &b"1"[..])]);
        let c = sha256_of_parts([("x", &b"12"[..])]);
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
