//! Project tasks: `cargo xtask golden` regenerates every golden set and reference model,
//! deterministically from fixed seeds.

mod family;
mod quantize;
mod run;
mod shapes;
mod train;

use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the repo").to_path_buf()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("golden") => {
            let out = args.get(1).map(PathBuf::from).unwrap_or_else(|| repo_root().join("golden"));
            let families = [shapes::build(&out)?];
            for f in &families {
                println!("{}", family::write(f)?);
            }
            Ok(())
        }
        _ => {
            eprintln!("usage: cargo xtask golden [OUT_DIR]\n  golden   regenerate every golden set and reference model");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgecert::golden::GoldenSet;

    /// `cargo xtask golden` must reproduce the committed golden sets: data byte for byte (the
    /// digest in family.toml is checked on load), models up to the host's float rounding.
    #[test]
    fn golden_sets_regenerate_identically() {
        let tmp = std::env::temp_dir().join(format!("edgecert-golden-test-{}", std::process::id()));
        let family = shapes::build(&tmp).unwrap();
        family::write(&family).unwrap();
        let committed = repo_root().join("golden/shapes");
        for file in ["family.toml", "labels.npy", "samples/00000.png", "samples/00499.png"] {
            let a = std::fs::read(committed.join(file)).unwrap();
            let b = std::fs::read(tmp.join("shapes").join(file)).unwrap();
            assert!(a == b, "{file} differs from the committed golden set");
        }
        let fresh = GoldenSet::load(&tmp.join("shapes")).unwrap();
        let old = GoldenSet::load(&committed).unwrap();
        assert_eq!(fresh.sha256, old.sha256);
        for model in ["shapes_fp32.onnx", "shapes_int8.onnx"] {
            let proto = |dir: &std::path::Path| {
                use prost::Message;
                tract_onnx::pb::ModelProto::decode(std::fs::read(dir.join(model)).unwrap().as_slice())
                    .unwrap()
            };
            let run = |dir: &std::path::Path| run::run_model(&proto(dir), &old.inputs[..100]).unwrap();
            let (a, b) = (run(&committed), run(&tmp.join("shapes")));
            for (x, y) in a.iter().zip(&b) {
                let diff = (&x[0] - &y[0]).mapv(f32::abs).iter().copied().fold(0.0, f32::max);
                assert!(diff < 1e-3, "{model}: regenerated outputs differ by {diff}");
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
