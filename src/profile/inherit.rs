//! Profiles built from several files. A board profile says `extends = "rk3588"` and adds what the
//! board fixes (DRAM size and bandwidth, power supply, thermal solution, host link) to its chip's
//! profile. This module reads the chain of files, merges it and hashes it as one.
//!
//! Rules, and why:
//! - The parent is a *bare* name resolved as `<name>.toml` beside the extending file, never a
//!   path: a profile must not reach outside the folder it was certified from.
//! - At most [`MAX_CHAIN`] files, and no file twice: a loop or a runaway chain is an error, not a
//!   hang.
//! - Merge: tables merge key by key, recursively (a board's `[memory]` sets `dram_bytes` and
//!   keeps the chip's `dram_bandwidth_gbps`; its `[sources]` add to the chip's); any other value,
//!   arrays included, replaces the parent's whole (an operator list is never half inherited).
//! - Digest: a lone file hashes to the SHA-256 of its bytes, as before inheritance existed; a
//!   chain hashes every file's name and bytes in order, the extending file first, so changing
//!   the chip file under a board changes the board's certified digest.

use std::path::{Path, PathBuf};

use crate::config::{is_identifier, parse_toml, Diagnostic, Document};
use crate::vocab::hash::{sha256_hex, sha256_of_parts};
use crate::vocab::{read_to_string, Error, Result};

/// Most files one profile may be built from: a board, its chip, and two levels more.
pub const MAX_CHAIN: usize = 4;

/// One file of a profile's chain, parsed but not yet merged.
pub(super) struct ChainFile {
    pub bytes: Vec<u8>,
    /// The file's table without its `extends` key.
    pub table: toml::Table,
    pub doc: Document,
}

/// The files a profile is built from, the profile's own file first, its root chip last.
pub(super) fn read_chain(path: &Path) -> Result<Vec<ChainFile>> {
    let mut chain: Vec<ChainFile> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut next = path.to_path_buf();
    loop {
        let text = read_to_string(&next)?;
        let (mut table, doc) = parse_toml::<toml::Table>(&next, text.clone())?;
        let parent = match table.remove("extends") {
            None => None,
            Some(toml::Value::String(name)) => Some(name),
            Some(_) => {
                return Err(one(
                    &doc,
                    "extends",
                    "expected a chip profile's name in quotes, e.g. extends = \"rk3588\"",
                ))
            }
        };
        seen.push(canonical(&next));
        chain.push(ChainFile { bytes: text.into_bytes(), table, doc });
        let Some(name) = parent else { return Ok(chain) };
        let doc = &chain.last().expect("just pushed").doc;
        if !is_identifier(&name) {
            return Err(one(
                doc,
                "extends",
                format!(
                    "`{name}` is not a bare profile name: give the chip's name (a-z, 0-9, '-', '_'), read from <name>.toml beside this file; paths are not accepted"
                ),
            ));
        }
        let parent_path = next.parent().unwrap_or(Path::new("")).join(format!("{name}.toml"));
        if !parent_path.is_file() {
            return Err(one(
                doc,
                "extends",
                format!("no profile `{name}` beside this file: {} does not exist", parent_path.display()),
            ));
        }
        if seen.contains(&canonical(&parent_path)) {
            let mut names: Vec<String> = chain.iter().map(|f| file_name(&f.doc.path)).collect();
            names.push(file_name(&parent_path));
            return Err(one(doc, "extends", format!("`extends` makes a cycle: {}", names.join(" -> "))));
        }
        if chain.len() >= MAX_CHAIN {
            return Err(one(
                doc,
                "extends",
                format!("a profile may be built from at most {MAX_CHAIN} files; this chain is longer"),
            ));
        }
        next = parent_path;
    }
}

/// The chain's tables merged (module rules): the root chip first, each extending file over it.
pub(super) fn merged(chain: &[ChainFile]) -> toml::Table {
    let mut out = toml::Table::new();
    for file in chain.iter().rev() {
        overlay(&mut out, &file.table);
    }
    out
}

fn overlay(base: &mut toml::Table, over: &toml::Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => overlay(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The digest a certificate records for the profile (module rules).
pub(super) fn digest(chain: &[ChainFile]) -> String {
    if let [only] = chain {
        return sha256_hex(&only.bytes);
    }
    let names: Vec<String> = chain.iter().map(|f| file_name(&f.doc.path)).collect();
    sha256_of_parts(names.iter().zip(chain).map(|(n, f)| (n.as_str(), f.bytes.as_slice())))
}

/// The file that wrote `field`: the nearest in the chain (the profile's own file first) that
/// writes it or, failing that, its closest enclosing table; the profile's own file otherwise.
pub(super) fn owner<'a>(docs: &[&'a Document], field: &str) -> &'a Document {
    let mut key = field;
    loop {
        if let Some(doc) = docs.iter().find(|d| d.has(key)) {
            return doc;
        }
        match key.rfind('.') {
            Some(i) => key = &key[..i],
            None => return docs[0],
        }
    }
}

fn one(doc: &Document, field: &str, message: impl Into<String>) -> Error {
    Error::Config(vec![doc.error(field, message)])
}

/// Re-points diagnostics found in the merged text at the files that wrote their fields.
pub(super) fn attribute(docs: &[&Document], diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.into_iter().map(|d| owner(docs, &d.field).error(&d.field, d.message)).collect()
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}
