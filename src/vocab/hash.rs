//! SHA-256 digests of the artifacts a certificate names.

use sha2::{Digest, Sha256};

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Digest of several named parts, order-sensitive, so a set of files hashes to one value and a
/// renamed or reordered part changes it.
pub fn sha256_of_parts<'a>(parts: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = PartsHasher::default();
    for (name, bytes) in parts {
        h.start(name, bytes.len() as u64);
        h.update(bytes);
    }
    h.finish()
}

/// [`sha256_of_parts`] fed piece by piece, so a large file is hashed without being held whole:
/// `start` a part with its name and length, `update` with its bytes, in order.
#[derive(Default)]
pub struct PartsHasher(Sha256);

impl PartsHasher {
    pub fn start(&mut self, name: &str, len: u64) {
        self.0.update((name.len() as u64).to_le_bytes());
        self.0.update(name.as_bytes());
        self.0.update(len.to_le_bytes());
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
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
