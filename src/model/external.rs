//! External data: initializers whose bytes live in side files next to the model
//! (`data_location = EXTERNAL`, with `location`, `offset`, `length` entries), as exporters write
//! for models over protobuf's 2 GB limit. The side files are part of the model *artifact*: they
//! count towards its size and its digest, so a certificate covers the weights it was issued for.
//!
//! A location is untrusted input: it is resolved inside the model's folder only. Absolute paths,
//! `..` escapes and symlinks that lead out are refused, as are ranges beyond the file.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use tract_onnx::pb;
use tract_onnx::pb::tensor_proto::DataLocation;

use super::checker::tensor_byte_len;
use crate::vocab::hash::{sha256_hex, sha256_of_parts};
use crate::vocab::{read_bytes, Error, Result};

/// Largest side file edgecert reads (the bytes are held in memory to hash and inline them).
const MAX_FILE_BYTES: u64 = 8 << 30;

/// One file of a model artifact.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactFile {
    /// Relative to the model's folder, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size_bytes: u64,
}

/// The model file plus every external-data file it reads.
#[derive(Debug, Clone)]
pub struct Artifact {
    pub files: Vec<ArtifactFile>,
    pub size_bytes: u64,
    /// The model file's SHA-256 when it has no side files (so existing digests keep their
    /// meaning), else the digest of every (relative name, bytes) sorted by name.
    pub sha256: String,
}

pub fn is_external(t: &pb::TensorProto) -> bool {
    t.data_location == Some(DataLocation::External as i32)
}

/// Reads the external data of `graph`'s initializers into their `raw_data`, so everything
/// downstream (checks, tract's shape inference) sees one self-contained model, and returns the
/// artifact's files.
pub fn resolve(path: &Path, model_bytes: &[u8], graph: &mut pb::GraphProto) -> Result<Artifact> {
    let model_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let dir = folder_of(path);
    for t in graph.initializer.iter_mut().filter(|t| is_external(t)) {
        let fail = |what: String| Error::model(path, format!("initializer `{}`: {what}", t.name));
        let entry = Entry::parse(t).map_err(fail)?;
        if entry.location == model_name {
            return Err(fail(format!(
                "external data location `{}` is the model file itself",
                entry.location
            )));
        }
        if !files.contains_key(&entry.location) {
            let bytes = read_side_file(&dir, &entry.location).map_err(fail)?;
            files.insert(entry.location.clone(), bytes);
        }
        // Strings have no fixed size, so only typed fields can hold them, never a byte range.
        let need = tensor_byte_len(t).ok_or_else(|| {
            fail("its type has no fixed element size, so its data cannot be external".into())
        })?;
        let data = entry.slice(&files[&entry.location], need).map_err(fail)?;
        t.raw_data = data;
        t.external_data.clear();
        t.data_location = None;
    }
    Ok(artifact(&model_name, model_bytes, &files))
}

/// The artifact of a model that is one self-contained file (a TFLite flatbuffer).
pub fn single_file(path: &Path, bytes: &[u8]) -> Artifact {
    let model_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    artifact(&model_name, bytes, &BTreeMap::new())
}

fn artifact(model_name: &str, model_bytes: &[u8], side: &BTreeMap<String, Vec<u8>>) -> Artifact {
    let mut all: BTreeMap<&str, &[u8]> = side.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    all.insert(model_name, model_bytes);
    let files: Vec<ArtifactFile> = all
        .iter()
        .map(|(name, bytes)| ArtifactFile {
            path: name.to_string(),
            sha256: sha256_hex(bytes),
            size_bytes: bytes.len() as u64,
        })
        .collect();
    let sha256 = if side.is_empty() { sha256_hex(model_bytes) } else { sha256_of_parts(all) };
    Artifact { size_bytes: files.iter().map(|f| f.size_bytes).sum(), files, sha256 }
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The `location`, `offset` and `length` of one tensor, with the location normalised to a
/// relative `/`-separated name.
struct Entry {
    location: String,
    offset: u64,
    length: Option<u64>,
}

impl Entry {
    fn parse(t: &pb::TensorProto) -> std::result::Result<Entry, String> {
        let get = |key: &str| t.external_data.iter().find(|e| e.key == key).map(|e| e.value.as_str());
        let number = |key: &str| -> std::result::Result<Option<u64>, String> {
            get(key)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| format!("external data {key} `{v}` is not a byte count"))
                })
                .transpose()
        };
        let raw = get("location").ok_or("external data has no `location` entry")?;
        Ok(Entry {
            location: relative_name(raw)?,
            offset: number("offset")?.unwrap_or(0),
            length: number("length")?,
        })
    }

    /// The tensor's bytes out of its file: `length` bytes at `offset`, or everything after it,
    /// which must be exactly the `need` bytes the dims and type declare.
    fn slice(&self, file: &[u8], need: u64) -> std::result::Result<Vec<u8>, String> {
        let size = file.len() as u64;
        let loc = &self.location;
        if self.offset > size {
            return Err(format!(
                "external data offset {} is beyond the end of `{loc}` ({size} bytes)",
                self.offset
            ));
        }
        let length = self.length.unwrap_or(size - self.offset);
        let end = self.offset.checked_add(length).filter(|&e| e <= size).ok_or_else(|| {
            format!(
                "external data range {}+{length} is beyond the end of `{loc}` ({size} bytes)",
                self.offset
            )
        })?;
        if need != length {
            return Err(format!(
                "its dims and type need {need} bytes but external data gives {length} (offset {}, {} in `{loc}`)",
                self.offset,
                if self.length.is_some() { "length entry" } else { "to the end of the file" }
            ));
        }
        Ok(file[self.offset as usize..end as usize].to_vec())
    }
}

/// A location as a relative name inside the model folder, or why it is refused.
fn relative_name(location: &str) -> std::result::Result<String, String> {
    let p = Path::new(location);
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!("external data location `{location}` climbs out of the model's folder (`..`)"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "external data location `{location}` is an absolute path; it must be relative to the model's folder"
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("external data location `{location}` names no file"));
    }
    Ok(parts.join("/"))
}

/// Reads `name` inside `dir`, refusing a file that a symlink places outside the folder.
fn read_side_file(dir: &Path, name: &str) -> std::result::Result<Vec<u8>, String> {
    let full = dir.join(name);
    let missing = |e: std::io::Error| format!("external data file `{name}` cannot be read: {e}");
    let real = full.canonicalize().map_err(missing)?;
    let folder = dir.canonicalize().map_err(missing)?;
    if !real.starts_with(&folder) {
        return Err(format!("external data file `{name}` resolves outside the model's folder (a symlink?)"));
    }
    let meta = std::fs::metadata(&real).map_err(missing)?;
    if !meta.is_file() {
        return Err(format!("external data location `{name}` is not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "external data file `{name}` is {} bytes, over the {MAX_FILE_BYTES}-byte bound",
            meta.len()
        ));
    }
    read_bytes(&real).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_stay_inside_the_model_folder() {
        assert_eq!(relative_name("weights.bin").unwrap(), "weights.bin");
        assert_eq!(relative_name("./data/w.bin").unwrap(), "data/w.bin");
        assert!(relative_name("../../etc/passwd").unwrap_err().contains("climbs out"));
        assert!(relative_name("data/../../w.bin").unwrap_err().contains("climbs out"));
        assert!(relative_name("/etc/passwd").unwrap_err().contains("absolute path"));
        assert!(relative_name("").unwrap_err().contains("names no file"));
    }

    #[test]
    fn ranges_must_lie_inside_the_file_and_match_the_declared_size() {
        let file = vec![7u8; 16];
        let entry = |offset, length| Entry { location: "w.bin".into(), offset, length };
        assert_eq!(entry(4, Some(8)).slice(&file, 8).unwrap(), vec![7; 8]);
        assert_eq!(entry(8, None).slice(&file, 8).unwrap().len(), 8);
        assert!(entry(20, None).slice(&file, 8).unwrap_err().contains("offset 20 is beyond the end"));
        assert!(entry(8, Some(16)).slice(&file, 16).unwrap_err().contains("range 8+16 is beyond"));
        assert!(entry(u64::MAX, Some(2)).slice(&file, 2).is_err());
        let short = entry(0, None).slice(&file, 64).unwrap_err();
        assert!(short.contains("need 64 bytes but external data gives 16"), "{short}");
    }
}
