//! Embeds the Fluent message catalogs: every `i18n/<tag>.ftl` becomes one entry of a generated
//! `include_str!` table, so a translator adds a language by adding one file and nothing else.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=i18n");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("i18n");
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
