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
