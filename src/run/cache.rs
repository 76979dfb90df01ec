//! The FP32 reference's contributions, cached: they depend only on the reference model, the
//! golden set, the engine, the metric and the code that scores (edgecert's version and a
//! fingerprint of its decoding, engine and metric sources, made at build time), so a nightly run of a new compressed model replays
//! one model, not two. The cache is a folder of content-addressed entries (the file name is the
//! digest of what the entry depends on); entries are written to a temporary name and renamed,
//! so concurrent runs never read half an entry; an entry that does not read back whole, or
//! names another key, is ignored and overwritten; the folder is kept under a size bound by
//! removing the least recently written entries.
//!
//! Golden sets that ask for output agreement need the reference's raw outputs, which are not
//! cached: those replay both models every time.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::metrics::{Contributions, Scorer};
use crate::vocab::hash::{sha256_hex, sha256_of_parts};

/// The most bytes the cache folder keeps.
pub const MAX_CACHE_BYTES: u64 = 1 << 30;
/// Layout of an entry; part of every key, so a new layout never reads an old one.
const ENTRY_FORMAT: &str = "edgecert-reference-cache/1";

/// A cache folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceCache {
    pub dir: PathBuf,
}

/// One entry: the key it answers and the contributions, with their digest.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    key: String,
    contributions_sha256: String,
    contributions: Contributions,
}

impl ReferenceCache {
    /// The default folder: `EDGECERT_CACHE_DIR`, else `$XDG_CACHE_HOME/edgecert`, else
    /// `$HOME/.cache/edgecert`; `None` when none is set.
    pub fn default_dir(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        set("EDGECERT_CACHE_DIR")
            .or_else(|| set("XDG_CACHE_HOME").map(|d| d.join("edgecert")))
            .or_else(|| set("HOME").map(|d| d.join(".cache").join("edgecert")))
    }

    /// What an entry depends on, as its name.
    pub fn key(reference_sha256: &str, golden_sha256: &str, engine: &str, metric: &str) -> String {
        sha256_of_parts([
            ("format", ENTRY_FORMAT.as_bytes()),
            ("edgecert", crate::TOOL_VERSION.as_bytes()),
            // The code that made the contributions: another build's entries are never read.
            ("scoring sources", env!("EDGECERT_SCORING_SOURCES").as_bytes()),
            ("reference", reference_sha256.as_bytes()),
            ("golden", golden_sha256.as_bytes()),
            ("engine", engine.as_bytes()),
            ("metric", metric.as_bytes()),
        ])
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The cached contributions for `key`, when a whole entry for it is there.
    pub fn get(&self, key: &str, samples: usize) -> Option<Contributions> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        let digest = sha256_hex(&serde_json::to_vec(&entry.contributions).ok()?);
        let whole = entry.key == key
            && entry.contributions_sha256 == digest
            && entry.contributions.check_consistent().is_ok()
            && entry.contributions.len() == samples;
        whole.then_some(entry.contributions)
    }

    /// Stores the contributions under `key`, then trims the folder to its bound. A cache that
    /// cannot be written costs the next run a replay, nothing more: errors are ignored.
    pub fn put(&self, key: &str, contributions: &Contributions) {
        let Ok(payload) = serde_json::to_vec(contributions) else { return };
        let entry = Entry {
            key: key.to_string(),
            contributions_sha256: sha256_hex(&payload),
            contributions: contributions.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&entry) else { return };
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let temp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        if std::fs::write(&temp, bytes).is_ok() && std::fs::rename(&temp, self.path(key)).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        trim(&self.dir, MAX_CACHE_BYTES);
    }
}

/// Removes the least recently written entries until the folder holds at most `max_bytes`.
fn trim(dir: &Path, max_bytes: u64) {
    let Ok(read) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = read
        .filter_map(|e| {
            let e = e.ok()?;
            let meta = e.metadata().ok()?;
            let is_entry = meta.is_file() && e.path().extension().is_some_and(|x| x == "json");
            if !is_entry {
                return None;
            }
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::MetricKind;
    use ndarray::{ArrayD, IxDyn};

    fn contributions(n: usize) -> Contributions {
        let outputs: Vec<Vec<crate::engine::Tensor>> =
            (0..n).map(|i| vec![ArrayD::from_elem(IxDyn(&[1, 2]), i as f32)]).collect();
        let labels = ArrayD::from_elem(IxDyn(&[n]), 1.0f32);
        MetricKind::Top1Accuracy.scorer(&outputs, &labels, &["a".into(), "b".into()], &[1, 2]).unwrap()
    }

    #[test]
    fn an_entry_reads_back_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ReferenceCache { dir: dir.path().join("cache") };
        let key = ReferenceCache::key("ref", "golden", "tract", "top1");
        assert_ne!(key, ReferenceCache::key("ref", "golden", "onnxruntime", "top1"));
        assert_eq!(cache.get(&key, 3), None);
        cache.put(&key, &contributions(3));
        assert_eq!(cache.get(&key, 3), Some(contributions(3)));
        assert_eq!(cache.get(&key, 4), None, "another sample count is another set");
        let path = cache.path(&key);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"truth\":[1,", "\"truth\":[0,", 1)).unwrap();
        assert_eq!(cache.get(&key, 3), None, "an edited entry is ignored");
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        assert_eq!(cache.get(&key, 3), None, "a truncated entry is ignored");
    }

    #[test]
    fn the_folder_is_trimmed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for (i, name) in ["a.json", "b.json", "c.json"].iter().enumerate() {
            std::fs::write(dir.path().join(name), vec![b'x'; 100]).unwrap();
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        trim(dir.path(), 250);
        assert!(!dir.path().join("a.json").exists() && dir.path().join("c.json").exists());
    }

    #[test]
    fn the_default_folder_follows_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(
            ReferenceCache::default_dir(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/edgecert"))
        );
        assert_eq!(
            ReferenceCache::default_dir(env(&[("HOME", "/h"), ("EDGECERT_CACHE_DIR", "/c")])),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(ReferenceCache::default_dir(env(&[])), None);
    }
}
