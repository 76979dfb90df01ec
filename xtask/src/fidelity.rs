//! `cargo xtask fidelity`: the emulator's predicted latency for every (zoo model, profile), and
//! its error against the published on-chip calibration points (shared chip notes). Other
//! published latencies are deliberately not used here: they are kept for an independent score.

use std::path::Path;

use edgecert::emulator::estimate;
use edgecert::model::ModelInventory;
use edgecert::profile;

/// Which emulated figure a published point is compared with.
#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// Single-stream latency.
    Latency,
    /// Offline throughput, compared as ms per inference (1000 / FPS): a dataflow chip's
    /// published FPS is pipelined throughput, not 1 / latency.
    Throughput,
}

/// (chip, zoo model, published ms per inference, scenario, what was measured).
const CALIBRATION: [(&str, &str, f64, Scenario, &str); 3] = [
    (
        "rk3588",
        "mobilenet_v2",
        2.22,
        Scenario::Latency,
        "450.7 FPS, 1 NPU core, inference only, max NPU clock",
    ),
    ("hailo8", "mobilenet_v2", 1000.0 / 2597.0, Scenario::Throughput, "2597 FPS throughput, batch 1"),
    ("edgetpu", "mobilenet_v2", 2.6, Scenario::Latency, "model execution only"),
];

pub fn run(zoo: &Path, profiles_dir: &Path) -> anyhow::Result<()> {
    let profiles = profile::load_dir(profiles_dir)?;
    let names: Vec<&str> = crate::zoo::models().iter().map(|m| m.name).collect();
    print!("{:<24}", "model (int8) \\ chip, ms");
    for p in &profiles {
        print!("{:>12}", p.profile.chip.name);
    }
    println!();
    let mut predicted = std::collections::HashMap::new();
    for name in &names {
        let path = zoo.join(format!("{name}_int8.onnx"));
        anyhow::ensure!(path.exists(), "{} is missing: run `cargo xtask zoo` first", path.display());
        let inv = ModelInventory::load(&path)?;
        print!("{name:<24}");
        for p in &profiles {
            let e = estimate(&inv, &p.profile);
            match e.latency_ms {
                Some(ms) => print!("{ms:>12.3}"),
                None => print!("{:>12}", "?"),
            }
            let per_inference = e.throughput_fps.map(|fps| 1000.0 / fps);
            predicted.insert((p.profile.chip.name.clone(), name.to_string()), (e.latency_ms, per_inference));
        }
        println!("   ({:.2} GMAC)", inv.total_macs as f64 / 1e9);
    }
    println!("\ncalibration points (emulated / published):");
    let mut log_errors = Vec::new();
    for (chip, model, published, scenario, what) in CALIBRATION {
        let figures = predicted.get(&(chip.to_string(), model.to_string())).copied();
        let emulated = figures.and_then(|(latency, per_inference)| match scenario {
            Scenario::Latency => latency,
            Scenario::Throughput => per_inference,
        });
        let what = if scenario == Scenario::Throughput {
            format!("{what}; emulated 1 / throughput")
        } else {
            what.to_string()
        };
        match emulated {
            Some(ms) => {
                log_errors.push((ms / published).ln().abs());
                println!(
                    "  {chip:<10} {model:<14} {ms:>8.3} ms vs {published:>7.3} ms  ratio {:.2}  ({what})",
                    ms / published
                );
            }
            None => println!("  {chip:<10} {model:<14} no prediction: the profile lacks a figure ({what})"),
        }
    }
    if !log_errors.is_empty() {
        let mean = (log_errors.iter().sum::<f64>() / log_errors.len() as f64).exp();
        println!("geometric mean error factor over {} points: {mean:.2}x", log_errors.len());
    }
    println!("? = the cost model lacks a figure it needs (e.g. no DRAM bandwidth, no host CPU): see `edgecert estimate`.");
    Ok(())
}
