//! Project tasks, deterministic from fixed seeds:
//! - `cargo xtask golden [FAMILY...]` regenerates the golden sets (samples, labels, family.toml);
//! - `cargo xtask train [FAMILY...]` trains each family's FP32 model on data held apart from the
//!   golden split, quantizes it to int8 QDQ, and writes both models;
//! - `cargo xtask bench` measures harness overhead and peak memory against golden-set size.
//! - `cargo xtask bench records` measures what recording a run and reading the history cost.

mod adas;
mod bench;
mod bench_records;
mod chassis;
mod corpus;
mod family;
mod fidelity;
mod fit;
mod layers;
mod networks;
mod quantize;
mod run;
mod shapes;
mod smt;
mod train;
mod zoo;

use std::path::PathBuf;

use family::FamilyBuilder;

fn zoo_dir() -> PathBuf {
    repo_root().join("target").join("zoo")
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the repo").to_path_buf()
}

pub fn families() -> Vec<Box<dyn FamilyBuilder>> {
    vec![Box::new(shapes::Shapes), Box::new(chassis::Chassis), Box::new(smt::Smt), Box::new(adas::Adas)]
}

fn selected(names: &[String]) -> anyhow::Result<Vec<Box<dyn FamilyBuilder>>> {
    let all = families();
    let known: Vec<&str> = all.iter().map(|f| f.meta().name).collect();
    if let Some(bad) = names.iter().find(|n| !known.contains(&n.as_str())) {
        anyhow::bail!("unknown family `{bad}`; known: {}", known.join(", "));
    }
    Ok(all.into_iter().filter(|f| names.is_empty() || names.iter().any(|n| n == f.meta().name)).collect())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let golden = repo_root().join("golden");
    match args.first().map(String::as_str) {
        Some("golden") => {
            for f in selected(&args[1..])? {
                let meta = f.meta();
                let digest = family::write_golden(&meta, &f.golden(), &golden.join(meta.name))?;
                println!("{}: golden set written, sha256 {digest}", meta.name);
            }
            Ok(())
        }
        Some("train") => {
            for f in selected(&args[1..])? {
                let meta = f.meta();
                let trained = f.train()?;
                println!("{}", family::write_models(&meta, &trained, &f.golden(), &golden.join(meta.name))?);
            }
            Ok(())
        }
        Some("zoo") => {
            let dir = zoo_dir();
            std::fs::create_dir_all(&dir)?;
            for m in zoo::models() {
                let (fp32, int8) = zoo::build(&m)?;
                std::fs::write(
                    dir.join(format!("{}_fp32.onnx", m.name)),
                    edgecert::model::writer::encode(&fp32),
                )?;
                std::fs::write(
                    dir.join(format!("{}_int8.onnx", m.name)),
                    edgecert::model::writer::encode(&int8),
                )?;
                println!("{}: written to {}", m.name, dir.display());
            }
            zoo::quantize_with_onnxruntime(&dir)
        }
        Some("corpus-networks") => networks::write(&args[1..]),
        Some("fidelity") => match args.get(1).map(String::as_str) {
            Some("--chip") => {
                let chip = args.get(2).ok_or_else(|| anyhow::anyhow!("--chip needs a profile's name"))?;
                fidelity::run_chip(chip, &repo_root().join("profiles"))
            }
            _ => fidelity::run(&zoo_dir(), &repo_root().join("profiles")),
        },
        Some("bench") if args.get(1).is_some_and(|a| a == "records") => bench_records::run(&repo_root()),
        Some("bench") => bench::run(&repo_root()),
        Some("bench-child") => bench::child_main(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask golden|train [FAMILY...] | cargo xtask zoo | cargo xtask corpus-networks [NAME...] | cargo xtask fidelity [--chip NAME] | cargo xtask bench [records]\n  golden    regenerate golden sets\n  train     train, quantize and write the reference models\n  zoo       write the standard-architecture zoo to target/zoo\n  corpus-networks  rebuild the corpus's networks as TFLite (tensorflow-cpu) and keep their inventories in fidelity/networks\n  fidelity  emulated latency of every zoo model on every profile, its error at the calibration points, the corpus scored per chip (--chip NAME: that chip's rows only, no zoo needed) and docs/fidelity.svg\n  bench     harness overhead against a bare engine loop, and peak RSS against golden-set size\n  bench records  recording a reference run, and history over 10,000 recorded certificates"
            );
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgecert::golden::GoldenSet;

    /// `cargo xtask golden` reproduces every golden set byte for byte: regenerated into a
    /// temporary folder, each must load (its digest checked) with the digest the repository's
    /// family.toml records.
    #[test]
    fn golden_sets_regenerate_identically() {
        let tmp = std::env::temp_dir().join(format!("edgecert-golden-test-{}", std::process::id()));
        for f in families() {
            let meta = f.meta();
            let dir = tmp.join(meta.name);
            family::write_golden(&meta, &f.golden(), &dir).unwrap();
            let committed =
                std::fs::read_to_string(repo_root().join("golden").join(meta.name).join("family.toml"));
            let fresh = std::fs::read_to_string(dir.join("family.toml")).unwrap();
            assert_eq!(committed.unwrap(), fresh, "{}: family.toml differs", meta.name);
            // The models are not regenerated here: point the manifest at nothing it loads.
            let set = GoldenSet::load(&dir).unwrap();
            assert_eq!(set.len(), set.manifest.dataset.samples);
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
