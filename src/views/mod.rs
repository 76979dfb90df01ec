//! One-shot views of one input, as text or JSON: a model's inventory (`edgecert inspect`) and
//! the emulated figures of one model on one chip (`edgecert estimate`). Every emulated figure is
//! labelled so.

mod thermal_fit;
pub use thermal_fit::{thermal_fit, ThermalFit};

use std::fmt::Write;
use std::path::PathBuf;

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use crate::emulator::Estimate;
use crate::model::{InputShapes, ModelInventory};
use crate::profile::{ChipProfile, ProfileFile};
use crate::vocab::{Error, Result};

/// Which chips `edgecert estimate` compares a model on.
#[derive(Debug, Clone)]
pub enum ProfileChoice {
    /// Every profile in a folder (a comparison, even of one).
    Dir(PathBuf),
    /// These profiles (a comparison when there are several).
    Files(Vec<PathBuf>),
}

/// One `edgecert estimate`: a model, the chips, and what to show.
#[derive(Debug, Clone)]
pub struct EstimateRequest {
    pub model: PathBuf,
    pub shapes: InputShapes,
    pub profiles: ProfileChoice,
    /// The operating rate the energy and heat figures assume (Hz).
    pub rate_hz: f64,
    /// The NPU mode every profile runs in (`npu.modes`), for one chip only.
    pub npu_mode: Option<String>,
    /// List every node, not only the accelerator's layers (one chip only).
    pub all_nodes: bool,
}

/// The emulator's estimates of one model on one or more chips.
pub struct Estimates {
    inventory: ModelInventory,
    profiles: Vec<ProfileFile>,
    estimates: Vec<Estimate>,
    rate_hz: f64,
    comparison: bool,
}

impl Estimates {
    /// Loads the model and the profiles and estimates the model on each. `--npu-mode` and
    /// `--all-nodes` describe one chip: a comparison refuses them, naming the flag.
    pub fn load(request: &EstimateRequest) -> Result<Self> {
        let comparison = match &request.profiles {
            ProfileChoice::Dir(_) => true,
            ProfileChoice::Files(files) => files.len() > 1,
        };
        if comparison && (request.npu_mode.is_some() || request.all_nodes) {
            let flag = if request.all_nodes { "--all-nodes" } else { "--npu-mode" };
            return Err(Error::Usage(format!(
                "{flag} applies to one chip: give a single --profile (a comparison across chips takes neither)"
            )));
        }
        let inventory = ModelInventory::load_with(&request.model, &request.shapes)?;
        let mut profiles = match &request.profiles {
            ProfileChoice::Dir(dir) => crate::profile::load_dir(dir)?,
            ProfileChoice::Files(files) => {
                files.iter().map(|p| ChipProfile::load(p)).collect::<Result<Vec<_>>>()?
            }
        };
        if profiles.is_empty() {
            return Err(Error::Usage(
                "no chip profile to estimate on: give --profile P or --profiles-dir DIR".into(),
            ));
        }
        if let Some(name) = &request.npu_mode {
            for prof in &mut profiles {
                prof.profile = prof.profile.in_mode(name).ok_or_else(|| {
                    Error::Usage(format!("{} has no NPU mode `{name}` (npu.modes)", prof.path.display()))
                })?;
            }
        }
        let estimates = profiles.iter().map(|p| crate::emulator::estimate(&inventory, &p.profile)).collect();
        Ok(Estimates { inventory, profiles, estimates, rate_hz: request.rate_hz, comparison })
    }

    fn reports(&self) -> Vec<EstimateReport<'_>> {
        self.profiles
            .iter()
            .zip(&self.estimates)
            .map(|(prof, est)| EstimateReport::new(&self.inventory, prof, est, self.rate_hz))
            .collect()
    }

    /// The table of a comparison, or one chip's report (every node with `all_nodes`).
    pub fn text(&self, all_nodes: bool) -> String {
        let reports = self.reports();
        if self.comparison {
            comparison_text(&reports)
        } else {
            reports[0].text(all_nodes)
        }
    }

    /// A comparison's reports as a JSON array, or one chip's report as an object.
    pub fn json(&self) -> String {
        let reports = self.reports();
        let json = if self.comparison {
            serde_json::to_string_pretty(&reports)
        } else {
            serde_json::to_string_pretty(&reports[0])
        };
        json.expect("plain data") + "\n"
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

/// The inventory of one model as text: summary lines, op histogram, weight bytes by dtype,
/// per-node table, findings.
pub fn inventory_text(inv: &ModelInventory) -> String {
    let mut s = String::new();
    write_inventory(&mut s, inv).expect("writing to a String cannot fail");
    s
}

fn write_inventory(s: &mut String, inv: &ModelInventory) -> std::fmt::Result {
    writeln!(s, "model       {}", inv.path.display())?;
    writeln!(s, "size        {} bytes   sha256 {}", inv.file_size_bytes, inv.sha256)?;
    // With external data the size and digest cover several files: name each one.
    if inv.files.len() > 1 {
        for f in &inv.files {
            writeln!(s, "  file      {} {} bytes   sha256 {}", f.path, f.size_bytes, f.sha256)?;
        }
    }
    match inv.format {
        crate::model::ModelFormat::Tflite => writeln!(s, "format      TFLite   producer {}", inv.producer)?,
        crate::model::ModelFormat::Onnx => {
            writeln!(s, "opset       {}   producer {}", opt(inv.opset), inv.producer)?
        }
    }
    writeln!(
        s,
        "nodes       {}   parameters {}   weight bytes {}",
        inv.node_count, inv.parameter_count, inv.weight_bytes
    )?;
    let macs = match (inv.total_macs, inv.unknown_macs_at()) {
        (Some(macs), _) => macs.to_string(),
        (None, Some(n)) => format!(
            "? (unknown from node `{}` ({}): its shapes or its work could not be read)",
            n.name, n.op_type
        ),
        (None, None) => "?".into(),
    };
    let per_tensor = inv.quantized_tensors.map_or(String::new(), |q| {
        format!(" ({} tensors per tensor, {} per channel)", q.per_tensor, q.per_channel)
    });
    writeln!(s, "MACs        {macs}   quantization {}{per_tensor}", inv.quantization)?;
    match inv.activations_lower_bound_note() {
        None => writeln!(s, "peak activations {} bytes", inv.peak_activation_bytes())?,
        Some(note) => {
            writeln!(s, "peak activations at least {} bytes ({note})", inv.peak_activation_bytes())?
        }
    }
    for t in &inv.inputs {
        writeln!(s, "input       {} {:?} {}", t.name, t.shape, t.dtype)?;
    }
    for t in &inv.outputs {
        writeln!(s, "output      {} {} {}", t.name, t.shape_text(), t.dtype)?;
    }
    let mut ops = Table::new();
    ops.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["op", "count"]);
    for (op, n) in &inv.op_histogram {
        ops.add_row(vec![op.clone(), n.to_string()]);
    }
    writeln!(s, "{ops}")?;
    let mut bytes = Table::new();
    bytes.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["weight dtype", "bytes"]);
    for (dt, b) in &inv.weight_bytes_by_dtype {
        bytes.add_row(vec![dt.clone(), b.to_string()]);
    }
    writeln!(s, "{bytes}")?;
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
    writeln!(s, "{nodes}")?;
    for f in &inv.findings {
        writeln!(s, "finding: {} {}: {}", f.node, f.op_type, f.message)?;
    }
    Ok(())
}

#[derive(serde::Serialize)]
pub struct LatencySummary {
    p50: f64,
    p90: f64,
    p99: f64,
    /// Before jitter.
    modelled: f64,
    /// The chip's latency were the emulator off by its systematic error on this chip either
    /// way (`emulator::systematic_error`, `cargo xtask fidelity`): modelled / (1 ± error).
    held_out_range: [f64; 2],
    /// That error, and where it comes from.
    systematic_error: crate::vocab::SystematicError,
}

#[derive(serde::Serialize)]
pub struct PlacedNode<'a> {
    node: &'a str,
    op_type: &'a str,
    unit: crate::emulator::Unit,
    reason: &'a str,
    time_ms: f64,
    energy_uj: f64,
    /// The layer this node runs inside as its epilogue (activation, bias, requantization).
    #[serde(skip_serializing_if = "Option::is_none")]
    fused_into: Option<&'a str>,
}

impl PlacedNode<'_> {
    /// A node the text table lists by default: one the chip runs as a step of its own, not
    /// one computed at conversion or fused into another layer.
    fn is_layer(&self) -> bool {
        self.unit != crate::emulator::Unit::Absorbed && self.fused_into.is_none()
    }
}

/// What `estimate --json` prints: the emulated figures of one model on one chip.
#[derive(serde::Serialize)]
pub struct EstimateReport<'a> {
    model: String,
    model_sha256: &'a str,
    chip: &'a str,
    profile_sha256: &'a str,
    basis: &'static str,
    latency_ms: Option<LatencySummary>,
    latency_unknown: Option<&'a str>,
    /// The profile field whose absence left the latency unknown (as its TOML spells it), when
    /// that is why: the field to add, for a script as for a reader.
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_profile_gap: Option<&'static str>,
    /// Offline throughput (inferences/s at batch 1, pipeline full) and how it was derived.
    throughput_fps: Option<f64>,
    scenario: &'static str,
    /// Weights plus peak live activations.
    peak_memory_bytes: u64,
    /// Why `peak_memory_bytes` is only a lower bound, when it is one (tensors of unknown size).
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_memory_lower_bound: Option<String>,
    weights_bytes: u64,
    peak_activation_bytes: u64,
    fits_on_chip: Option<bool>,
    /// Contexts a dataflow chip runs the model in when it does not fit on chip.
    #[serde(skip_serializing_if = "Option::is_none")]
    contexts: Option<u64>,
    /// On an accelerator card: the inputs and outputs over the host link, left out of the
    /// latency (model execution on the card).
    #[serde(skip_serializing_if = "Option::is_none")]
    host_transfer: Option<crate::emulator::HostTransfer>,
    energy_mj: Option<f64>,
    rate_hz: f64,
    avg_power_w: Option<f64>,
    npu_time_share: Option<f64>,
    /// What the chip's toolchain made of the model first (a float model quantized by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    conversion: Option<&'a str>,
    /// The figures behind the prediction that no datasheet gives, calibrated or defaulted.
    calibration: &'a [String],
    placement: Vec<PlacedNode<'a>>,
    #[serde(skip)]
    display_name: &'a str,
    /// The profile file, named in a comparison across chips.
    #[serde(skip)]
    profile_path: &'a std::path::Path,
    #[serde(skip)]
    dram_bytes: Option<u64>,
    #[serde(skip)]
    calibration_basis: &'static str,
}

impl<'a> EstimateReport<'a> {
    /// The emulated figures of `inv` on `prof`, with `est` its estimate, at `rate_hz`.
    pub fn new(inv: &'a ModelInventory, prof: &'a ProfileFile, est: &'a Estimate, rate_hz: f64) -> Self {
        let seed = crate::vocab::hash::seed_from(&[&inv.sha256, &prof.sha256]);
        // Samples exist only where the modelled latency does.
        let modelled = est.latency_ms.unwrap_or(f64::NAN);
        let latency_ms = est.latency_samples(seed).map(|v| {
            let [p50, p90, p99] = crate::vocab::percentiles(&v, [0.5, 0.9, 0.99]);
            LatencySummary {
                p50,
                p90,
                p99,
                modelled,
                held_out_range: est.systematic_error.chip_range(modelled),
                systematic_error: est.systematic_error.clone(),
            }
        });
        EstimateReport {
            model: inv.path.display().to_string(),
            model_sha256: &inv.sha256,
            chip: &prof.profile.chip.name,
            profile_sha256: &prof.sha256,
            basis: "emulated",
            latency_ms,
            latency_unknown: est.latency_unknown.as_deref(),
            latency_profile_gap: est.latency_profile_gap,
            throughput_fps: est.throughput_fps,
            scenario: est.scenario.name(),
            peak_memory_bytes: est.weights_bytes + est.peak_activation_bytes,
            peak_memory_lower_bound: inv.activations_lower_bound_note(),
            weights_bytes: est.weights_bytes,
            peak_activation_bytes: est.peak_activation_bytes,
            fits_on_chip: est.fits_on_chip,
            contexts: est.contexts,
            host_transfer: est.host_transfer,
            energy_mj: est.energy_mj,
            rate_hz,
            avg_power_w: est.avg_power_w(rate_hz),
            npu_time_share: est.npu_time_share,
            conversion: est.conversion.as_deref(),
            calibration: &est.calibration,
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
                        fused_into: cost.and_then(|c| c.fused_into.as_deref()),
                    }
                })
                .collect(),
            display_name: prof.profile.display_name(),
            profile_path: &prof.path,
            dram_bytes: prof.profile.memory.dram_bytes,
            calibration_basis: crate::emulator::calibration_basis(&prof.profile),
        }
    }

    /// The figures as text: summary lines and the placement table — the layers the chip runs,
    /// or with `all_nodes` every node, those absorbed at conversion and fused epilogues too.
    pub fn text(&self, all_nodes: bool) -> String {
        let mut s = String::new();
        self.write(&mut s, all_nodes).expect("writing to a String cannot fail");
        s
    }

    fn write(&self, s: &mut String, all_nodes: bool) -> std::fmt::Result {
        let (report, rate_hz) = (self, self.rate_hz);
        writeln!(s, "model {}  on  {} (all figures EMULATED)", report.model, report.display_name)?;
        if let Some(conversion) = report.conversion {
            writeln!(s, "conversion  {conversion}")?;
        }
        for note in report.calibration {
            writeln!(s, "calibration {note}")?;
        }
        match &report.latency_ms {
            Some(l) => {
                // From an error of 1 on the chip could be any number of times slower.
                let range = match l.held_out_range {
                    [low, high] if high.is_finite() => format!("{low:.4}–{high:.4} ms"),
                    [low, _] => format!("{low:.4} ms or any slower"),
                };
                writeln!(
                    s,
                    "latency     p50 {:.4} ms, p99 {:.4} ms (modelled {:.4} ms; {range} were it off by its systematic error, {}: {})",
                    l.p50,
                    l.p99,
                    l.modelled,
                    l.systematic_error.percent(),
                    l.systematic_error.source
                )?
            }
            None => writeln!(s, "latency     unknown: {}", opt(report.latency_unknown))?,
        }
        if let Some(fps) = report.throughput_fps {
            let how = match report.scenario {
                "pipelined" => "pipelined: the model's work at the whole chip's rate, compute or on-chip memory, whichever is busier",
                _ => "serial: one stream per NPU core, capped by DRAM or a card's host link",
            };
            writeln!(s, "throughput  {fps:.1} inferences/s offline at batch 1 ({how})")?;
        }
        let (at_least, why) = match &report.peak_memory_lower_bound {
            Some(note) => ("at least ", format!(" ({note})")),
            None => ("", String::new()),
        };
        writeln!(
            s,
            "memory      {at_least}{} bytes peak (weights {} + activations {}){why}; weights and the accelerator layers' activations on chip: {}",
            report.peak_memory_bytes,
            report.weights_bytes,
            report.peak_activation_bytes,
            opt(report.fits_on_chip)
        )?;
        if let Some(t) = report.host_transfer {
            let not_counted = match t.unsized_tensors {
                0 => String::new(),
                n => format!(" ({n} tensors of unknown size not counted)"),
            };
            writeln!(
                s,
                "host link   {} bytes in, {} out per inference{not_counted}: at least {:.3} ms more than the latency above, which is model execution on the card",
                t.input_bytes, t.output_bytes, t.ms
            )?;
        }
        if let Some(n) = report.contexts {
            writeln!(s, "contexts    {n}: the model does not fit on chip; each context's weights reload over the host link every frame")?;
        }
        writeln!(
            s,
            "energy      {} mJ per inference; average power at {rate_hz}/s: {} W",
            report.energy_mj.map_or("?".into(), |e| format!("{e:.4}")),
            report.avg_power_w.map_or("?".into(), |w| format!("{w:.3}"))
        )?;
        if let Some(share) = report.npu_time_share {
            writeln!(s, "accelerator share of time {:.1} %", share * 100.0)?;
        }
        self.write_node_counts(s, all_nodes)?;
        self.write_slowest(s)?;
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED).set_header(vec!["node", "op", "unit", "time ms", "reason"]);
        for n in report.placement.iter().filter(|n| all_nodes || n.is_layer()) {
            let reason =
                n.fused_into.map_or_else(|| n.reason.to_string(), |layer| format!("fused into {layer}"));
            t.add_row(vec![
                n.node.to_string(),
                n.op_type.to_string(),
                format!("{:?}", n.unit).to_lowercase(),
                if n.time_ms.is_finite() { format!("{:.5}", n.time_ms) } else { "?".into() },
                reason,
            ]);
        }
        writeln!(s, "{t}")
    }

    /// How the graph's nodes became the chip's layers, so a table of layers still accounts
    /// for every node.
    fn write_node_counts(&self, s: &mut String, all_nodes: bool) -> std::fmt::Result {
        use crate::emulator::Unit;
        let count = |unit: Unit| self.placement.iter().filter(|n| n.is_layer() && n.unit == unit).count();
        let absorbed = self.placement.iter().filter(|n| n.unit == Unit::Absorbed).count();
        let fused = self.placement.iter().filter(|n| n.fused_into.is_some()).count();
        writeln!(
            s,
            "nodes       {}: {} layers on the accelerator, {} on the CPU, {} rejected; {} fused into their layers, {} absorbed at conversion (constants, folded Q/DQ){}",
            self.placement.len(),
            count(Unit::Npu),
            count(Unit::Cpu),
            count(Unit::Rejected),
            fused,
            absorbed,
            if all_nodes { "" } else { "; --all-nodes lists them" }
        )
    }

    /// The layers that take most of the time, where a model's latency would be won back, each
    /// as a share of the modelled latency (which also holds the per-inference submit and the
    /// NPU↔CPU hand-overs). Without a latency there is no whole to take shares of.
    fn write_slowest(&self, s: &mut String) -> std::fmt::Result {
        const SHOWN: usize = 5;
        let Some(latency) = &self.latency_ms else { return Ok(()) };
        let mut layers: Vec<&PlacedNode> = self
            .placement
            .iter()
            .filter(|n| n.is_layer() && n.time_ms.is_finite() && n.time_ms > 0.0)
            .collect();
        layers.sort_by(|a, b| b.time_ms.total_cmp(&a.time_ms));
        let slowest: Vec<String> = layers
            .iter()
            .take(SHOWN)
            .map(|n| {
                format!("{} {:.3} ms ({:.1} %)", n.node, n.time_ms, n.time_ms / latency.modelled * 100.0)
            })
            .collect();
        if slowest.is_empty() {
            return Ok(());
        }
        writeln!(s, "slowest     {} (share of the modelled latency)", slowest.join(", "))
    }
}

/// One model's emulated figures on several chips, one row per profile: what a user choosing a
/// chip reads first. A latency the emulator cannot give says why under the table.
pub fn comparison_text(reports: &[EstimateReport]) -> String {
    let mut s = String::new();
    write_comparison(&mut s, reports).expect("writing to a String cannot fail");
    s
}

fn write_comparison(s: &mut String, reports: &[EstimateReport]) -> std::fmt::Result {
    let Some(first) = reports.first() else { return Ok(()) };
    writeln!(s, "model {}  on {} profiles (all figures EMULATED)", first.model, reports.len())?;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "profile",
        "chip",
        "p50 ms",
        "p99 ms",
        "offline FPS",
        "peak memory MB",
        "fits DRAM",
        "energy mJ",
        "latency basis",
    ]);
    let mut unknown = Vec::new();
    for r in reports {
        let profile =
            r.profile_path.file_stem().map_or_else(String::new, |f| f.to_string_lossy().into_owned());
        let (p50, p99) = match &r.latency_ms {
            Some(l) => (format!("{:.3}", l.p50), format!("{:.3}", l.p99)),
            None => {
                unknown.push(format!("{profile}: latency unknown: {}", opt(r.latency_unknown)));
                ("unknown".into(), "unknown".into())
            }
        };
        let fits = r.dram_bytes.map_or("? (no memory.dram_bytes)".into(), |dram| {
            match (r.peak_memory_bytes <= dram, &r.peak_memory_lower_bound) {
                (false, _) => "NO".to_string(),
                (true, None) => "yes".to_string(),
                (true, Some(_)) => "? (tensors of unknown size)".to_string(),
            }
        });
        t.add_row(vec![
            profile,
            r.display_name.to_string(),
            p50,
            p99,
            r.throughput_fps.map_or("?".into(), |f| format!("{f:.1}")),
            format!("{:.1}", r.peak_memory_bytes as f64 / 1e6),
            fits,
            r.energy_mj.map_or("?".into(), |e| format!("{e:.3}")),
            latency_basis(r).to_string(),
        ]);
    }
    writeln!(s, "{t}")?;
    for line in unknown {
        writeln!(s, "{line}")?;
    }
    writeln!(s, "fits DRAM: emulated peak memory (weights + peak activations) <= the profile's memory.dram_bytes, nothing more; ? where the profile gives no DRAM size (a bare chip, or a card using its host's)")?;
    writeln!(s, "latency basis: calibrated = a figure set on a published point of that chip; default = the emulator's default per-layer overhead, no point on that chip. `estimate --profile P` alone gives each chip's calibration notes and layers")
}

fn latency_basis(r: &EstimateReport) -> &'static str {
    if r.latency_ms.is_some() {
        r.calibration_basis
    } else {
        "-"
    }
}
