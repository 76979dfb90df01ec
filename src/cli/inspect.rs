//! `inspect`, `estimate` and `profile check`: one-shot views of one input.

use std::path::{Path, PathBuf};

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::emulator::estimate as emulate;
use crate::error::{exit_code, Error, Result};
use crate::model::ModelInventory;
use crate::profile::ChipProfile;

fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string_pretty(value).expect("plain data"));
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

pub fn inspect(path: &Path, json: bool) -> Result<i32> {
    let inv = ModelInventory::load(path)?;
    if json {
        print_json(&inv);
        return Ok(exit_code::PASS);
    }
    println!("model       {}", inv.path.display());
    println!("size        {} bytes   sha256 {}", inv.file_size_bytes, inv.sha256);
    println!("opset       {}   producer {}", opt(inv.opset), inv.producer);
    println!(
        "nodes       {}   parameters {}   weight bytes {}",
        inv.node_count, inv.parameter_count, inv.weight_bytes
    );
    println!("MACs        {}   quantization {}", inv.total_macs, inv.quantization);
    println!("peak activations {} bytes", inv.peak_activation_bytes());
    for t in &inv.inputs {
        println!("input       {} {:?} {}", t.name, t.shape, t.dtype);
    }
    for t in &inv.outputs {
        println!("output      {} {:?} {}", t.name, t.shape, t.dtype);
    }
    let mut ops = Table::new();
    ops.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["op", "count"]);
    for (op, n) in &inv.op_histogram {
        ops.add_row(vec![op.clone(), n.to_string()]);
    }
    println!("{ops}");
    let mut bytes = Table::new();
    bytes.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["weight dtype", "bytes"]);
    for (dt, b) in &inv.weight_bytes_by_dtype {
        bytes.add_row(vec![dt.clone(), b.to_string()]);
    }
    println!("{bytes}");
    let mut nodes = Table::new();
    nodes.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "node",
        "op",
        "dtype",
        "output shape",
        "MACs",
        "weight bytes",
    ]);
    for n in &inv.nodes {
        nodes.add_row(vec![
            n.name.clone(),
            n.op_type.clone(),
            n.dtype.map_or("?".into(), |d| d.name().to_string()),
            n.output_shapes.first().cloned().flatten().map_or("?".into(), |s| format!("{s:?}")),
            opt(n.macs),
            n.weight_bytes.to_string(),
        ]);
    }
    println!("{nodes}");
    for f in &inv.findings {
        println!("finding: {} {}: {}", f.node, f.op_type, f.message);
    }
    Ok(exit_code::PASS)
}

#[derive(serde::Serialize)]
struct LatencySummary {
    p50: f64,
    p90: f64,
    p99: f64,
    /// Before jitter.
    modelled: f64,
}

#[derive(serde::Serialize)]
struct PlacedNode<'a> {
    node: &'a str,
    op_type: &'a str,
    unit: crate::emulator::Unit,
    reason: &'a str,
    time_ms: f64,
    energy_uj: f64,
}

/// What `estimate --json` prints: the emulated figures of one model on one chip.
#[derive(serde::Serialize)]
struct EstimateReport<'a> {
    model: String,
    model_sha256: &'a str,
    chip: &'a str,
    profile_sha256: &'a str,
    basis: &'static str,
    latency_ms: Option<LatencySummary>,
    latency_unknown: Option<&'a str>,
    /// Weights plus peak live activations.
    peak_memory_bytes: u64,
    weights_bytes: u64,
    peak_activation_bytes: u64,
    fits_on_chip: Option<bool>,
    energy_mj: Option<f64>,
    rate_hz: f64,
    avg_power_w: Option<f64>,
    npu_time_share: Option<f64>,
    placement: Vec<PlacedNode<'a>>,
}

pub fn estimate(model: &Path, profile: &Path, json: bool, rate_hz: f64, mode: Option<&str>) -> Result<i32> {
    let inv = ModelInventory::load(model)?;
    let mut prof = ChipProfile::load(profile)?;
    if let Some(name) = mode {
        prof.profile = prof.profile.in_mode(name).ok_or_else(|| {
            Error::Usage(format!("{} has no NPU mode `{name}` (npu.modes)", profile.display()))
        })?;
    }
    let est = emulate(&inv, &prof.profile);
    let seed = u64::from_str_radix(
        &crate::hash::sha256_hex(format!("{}{}", inv.sha256, prof.sha256).as_bytes())[..16],
        16,
    )
    .expect("hex");
    let latency_ms = est.latency_samples(seed).map(|mut v| {
        v.sort_by(f64::total_cmp);
        LatencySummary {
            p50: crate::stats::percentile(&v, 0.5),
            p90: crate::stats::percentile(&v, 0.9),
            p99: crate::stats::percentile(&v, 0.99),
            modelled: est.latency_ms.unwrap_or(f64::NAN),
        }
    });
    let report = EstimateReport {
        model: model.display().to_string(),
        model_sha256: &inv.sha256,
        chip: &prof.profile.chip.name,
        profile_sha256: &prof.sha256,
        basis: "emulated",
        latency_ms,
        latency_unknown: est.latency_unknown.as_deref(),
        peak_memory_bytes: est.weights_bytes + est.peak_activation_bytes,
        weights_bytes: est.weights_bytes,
        peak_activation_bytes: est.peak_activation_bytes,
        fits_on_chip: est.fits_on_chip,
        energy_mj: est.energy_mj,
        rate_hz,
        avg_power_w: est.avg_power_w(rate_hz),
        npu_time_share: est.npu_time_share,
        placement: est
            .placement
            .nodes
            .iter()
            .map(|p| {
                let cost = est.nodes.iter().find(|n| n.node == p.node);
                PlacedNode {
                    node: &p.node,
                    op_type: &p.op_type,
                    unit: p.unit,
                    reason: &p.reason,
                    time_ms: cost.map_or(f64::NAN, |c| c.time_ms),
                    energy_uj: cost.map_or(f64::NAN, |c| c.energy_uj),
                }
            })
            .collect(),
    };
    if json {
        print_json(&report);
        return Ok(exit_code::PASS);
    }
    println!("model {}  on  {} (all figures EMULATED)", model.display(), prof.profile.display_name());
    match &report.latency_ms {
        Some(l) => {
            println!("latency     p50 {:.4} ms, p99 {:.4} ms (modelled {:.4} ms)", l.p50, l.p99, l.modelled)
        }
        None => println!("latency     unknown: {}", opt(report.latency_unknown)),
    }
    println!(
        "memory      {} bytes peak (weights {} + activations {}), on chip: {}",
        report.peak_memory_bytes,
        report.weights_bytes,
        report.peak_activation_bytes,
        opt(report.fits_on_chip)
    );
    println!(
        "energy      {} mJ per inference; average power at {rate_hz}/s: {} W",
        report.energy_mj.map_or("?".into(), |e| format!("{e:.4}")),
        report.avg_power_w.map_or("?".into(), |w| format!("{w:.3}"))
    );
    if let Some(s) = est.npu_time_share {
        println!("accelerator share of time {:.1} %", s * 100.0);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["node", "op", "unit", "time ms", "reason"]);
    for n in &report.placement {
        t.add_row(vec![
            n.node.to_string(),
            n.op_type.to_string(),
            format!("{:?}", n.unit).to_lowercase(),
            format!("{:.5}", n.time_ms),
            n.reason.to_string(),
        ]);
    }
    println!("{t}");
    Ok(exit_code::PASS)
}

pub fn check_profiles(paths: &[PathBuf]) -> Result<i32> {
    if paths.is_empty() {
        return Err(Error::Usage("profile check needs at least one profile path".into()));
    }
    let mut errors = Vec::new();
    for p in paths {
        match ChipProfile::load(p) {
            Ok(f) => println!("ok: {} ({}) sha256 {}", p.display(), f.profile.display_name(), f.sha256),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Ok(exit_code::PASS),
        1 => Err(errors.remove(0)),
        _ => {
            for e in &errors[1..] {
                eprintln!("error: {e}");
            }
            Err(errors.remove(0))
        }
    }
}
