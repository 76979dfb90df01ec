//! Embeds the Fluent message catalogs: every `i18n/<tag>.ftl` becomes one entry of a generated
//! `include_str!` table, so a translator adds a language by adding one file and nothing else.
//! Also fingerprints the code that turns a model's outputs into metric contributions (sample
//! decoding, the engine, the metrics), which the reference cache's keys include: a cached entry
//! made by other scoring code is never read.

use std::path::Path;

fn main() {
    scoring_fingerprint();
    println!("cargo:rerun-if-changed=i18n");
    let dir = manifest_dir().join("i18n");
    let mut catalogs: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "ftl" {
                return None;
            }
            let tag = path.file_stem()?.to_str()?.to_string();
            // The tag becomes a Rust string literal and a `--lang` value: keep it a BCP 47 shape.
            assert!(
                !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{}: a catalog's file name must be a BCP 47 tag such as `pt-BR.ftl`",
                path.display()
            );
            Some((tag, path.to_str()?.to_string()))
        })
        .collect();
    catalogs.sort();
    let mut table = String::from(
        "/// Every catalog under `i18n/`: (BCP 47 tag, Fluent source), sorted by tag.\npub(crate) static CATALOGS: &[(&str, &str)] = &[\n",
    );
    for (tag, path) in &catalogs {
        table.push_str(&format!("    ({tag:?}, include_str!({path:?})),\n"));
    }
    table.push_str("];\n");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("catalogs.rs");
    std::fs::write(&out, table).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}

/// FNV-1a over the names and bytes of every file under the scoring sources, sorted: a
/// discriminator for cache keys, not a security digest (the cache's own entries carry SHA-256).
fn scoring_fingerprint() {
    let root = &manifest_dir();
    let mut files = Vec::new();
    for dir in ["src/golden", "src/engine", "src/metrics", "src/backend"] {
        println!("cargo:rerun-if-changed={dir}");
        collect(&root.join(dir), &mut files);
    }
    files.sort();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for file in &files {
        let name = file.strip_prefix(root).unwrap_or(file).to_string_lossy().into_owned();
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for b in name.bytes().chain(bytes) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    println!("cargo:rustc-env=EDGECERT_SCORING_SOURCES={hash:016x}");
}

fn collect(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// The package's directory as cargo gives it to this run: read at run time, because a build
/// script compiled for one checkout may be reused by another sharing the target directory.
fn manifest_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
}
