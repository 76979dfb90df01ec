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

pub fn estimate(model: &Path, profile: &Path, json: bool) -> Result<i32> {
    let inv = ModelInventory::load(model)?;
    let prof = ChipProfile::load(profile)?;
    let est = emulate(&inv, &prof.profile);
    if json {
        print_json(&est);
        return Ok(exit_code::PASS);
    }
    println!("model {}  on  {} (emulated)", model.display(), prof.profile.display_name());
    match est.latency_ms {
        Some(ms) => println!("latency     {ms:.4} ms per inference (emulated, before jitter)"),
        None => println!("latency     unknown: {}", opt(est.latency_unknown.clone())),
    }
    println!(
        "weights     {} bytes   peak activations {} bytes",
        est.weights_bytes, est.peak_activation_bytes
    );
    if let Some(s) = est.npu_time_share {
        println!("accelerator share of time {:.1} %", s * 100.0);
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["node", "op", "unit", "time ms", "reason"]);
    for n in &est.nodes {
        t.add_row(vec![
            n.node.clone(),
            n.op_type.clone(),
            format!("{:?}", n.unit).to_lowercase(),
            format!("{:.5}", n.time_ms),
            n.reason.clone(),
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
