//! The chip emulator: where each node runs (placement from the profile's operator table and
//! fallback policy) and how long an inference takes (a roofline per node: the largest of
//! compute time, off-chip memory time and, where the profile gives its rate, on-chip streaming
//! time, after the layer's set-up). Every assumption that is not a profile figure is a named
//! constant here; `docs/emulator.md` gives the why.

mod conversion;
mod fusion;
mod host_link;
mod placement;
mod thermal;

use serde::Serialize;

use crate::model::{ModelInventory, NodeInfo};
use crate::profile::{ChipProfile, DType};
use crate::stats::SplitMix64;
use crate::vocab::{Basis, SystematicError, Timing};

use fusion::Role;
pub use host_link::HostTransfer;
pub use placement::{place, Placement, Unit};
pub use thermal::{fit_lumped, simulate_thermal, LumpedFit, ThermalRun, DEFAULT_AMBIENT_C};

/// Length of the sustained-load thermal simulation (s).
pub fn thermal_duration_s() -> f64 {
    thermal::DURATION_S
}

/// Share of peak an NPU sustains on each op class (first-principles guesses, documented).
const EFF_CONV: f64 = 0.45;
const EFF_DEPTHWISE: f64 = 0.15;
const EFF_MATMUL: f64 = 0.30;
const EFF_OTHER: f64 = 0.05;
/// Fixed cost of one inference call (driver submit, sync), in seconds.
const INFERENCE_OVERHEAD_S: f64 = 100e-6;
/// Per-layer accelerator overhead when the profile has no calibrated figure (µs): the mean of
/// the values calibrated on the RK3588 (19.9) and Edge TPU (33.1) points. The QCS6490's 17.9
/// is not averaged in: it stands for DRAM time too (`memory.dram_in_overhead`), which a chip
/// on the default costs on its own.
pub const DEFAULT_LAYER_OVERHEAD_US: f64 = 26.5;
/// Output block one GPU thread block computes, TILE × TILE outputs of a layer's GEMM view: the
/// middle of the 32–128 sizes int8 tensor-core kernels use (first-principles, documented).
const GPU_TILE: usize = 64;
/// Cost of one NPU↔CPU hand-over at a partition boundary, besides moving the tensor.
const HANDOVER_S: f64 = 50e-6;
/// fp32 MACs per cycle per CPU core: one 128-bit NEON FMA pipe, 4 lanes, at half utilisation.
const CPU_MACS_PER_CYCLE: f64 = 2.0;
/// Energy per MAC on the accelerator for int8 when the profile gives no efficiency
/// (`power.tops_per_w_int8`), system level: the Edge TPU's 2 TOPS/W is 0.5 pJ per operation,
/// 1 pJ per MAC, everything included.
const DEFAULT_PJ_PER_MAC_INT8: f64 = 1.0;
/// fp16 MACs cost about four int8 MACs (multiplier area and data width).
const FP16_ENERGY_FACTOR: f64 = 4.0;
/// A fp32 MAC on an application CPU core, instruction overhead included.
const PJ_PER_MAC_CPU: f64 = 25.0;
/// One byte to or from LPDDR4X/LPDDR5 DRAM (about 5 pJ per bit, interface and array).
const PJ_PER_DRAM_BYTE: f64 = 40.0;
/// Share of the profile's power budget drawn when idle (leakage, always-on blocks): of the
/// typical power, or of the rated maximum where no typical draw is given (then an upper
/// reading: a maximum exceeds the typical draw).
const STATIC_SHARE: f64 = 0.1;

/// The idle draw the energy and thermal models add: the board's measured one
/// (`power.idle_w`), else [`STATIC_SHARE`] of the power budget.
pub fn idle_w(profile: &ChipProfile) -> Option<f64> {
    profile
        .power
        .as_ref()
        .and_then(|p| p.idle_w)
        .or_else(|| profile.power_budget().map(|b| b.watts * STATIC_SHARE))
}

/// How the idle draw was obtained, for a check's reason.
pub fn idle_basis(profile: &ChipProfile) -> &'static str {
    match profile.power.as_ref().and_then(|p| p.idle_w) {
        Some(_) => "idle, measured (power.idle_w)",
        None => "idle, assumed 10 % of the budget",
    }
}
/// The emulator's median absolute latency error at published points it was not calibrated on
/// (`cargo xtask fidelity`, leave-one-out over the shared notes' points; an xtask test fails
/// when the cost model moves it): the cross-chip figure, for a chip whose profile gives no
/// latency error of its own. An emulated latency verdict must hold across it: jitter is the
/// emulator's own scatter, this is how far the chip may sit from the emulator.
pub const HELD_OUT_ERROR: f64 = 0.39;

/// The systematic error an emulated latency on `profile` is held across: the chip's own
/// (`[fidelity]`, the 90th percentile of the emulator's error over its scored corpus rows)
/// where the profile gives it, else the cross-chip [`HELD_OUT_ERROR`]; its source says which.
pub fn systematic_error(profile: &ChipProfile) -> SystematicError {
    match &profile.fidelity {
        Some(f) => SystematicError {
            relative: f.latency_error,
            source: format!(
                "the emulator's latency error on this chip, over {} scored rows of the measurement corpus (fidelity.latency_error; {})",
                f.scored_rows,
                profile.sources.get("fidelity").map_or("its source is not given", String::as_str)
            ),
        },
        None => SystematicError {
            relative: HELD_OUT_ERROR,
            source: format!(
                "the emulator's median error at published points held out from its calibration, across chips (cargo xtask fidelity); profile `{}` gives no latency error of its own (fidelity.latency_error needs {} scored rows of fidelity/measurements.csv)",
                profile.chip.name,
                crate::profile::FIDELITY_MIN_ROWS
            ),
        },
    }
}

/// Emulated inferences drawn for the latency distribution (MLPerf's p99 minimum is 662).
pub const EMULATED_RUNS: usize = 1000;
/// Relative standard deviation of run-to-run jitter, and the rate and size of rare stalls.
const JITTER_SD: f64 = 0.02;
const STALL_RATE: f64 = 0.01;
const STALL_FACTOR: f64 = 0.10;

#[derive(Debug, Clone, Serialize)]
pub struct NodeCost {
    pub node: String,
    pub op_type: String,
    pub unit: Unit,
    pub reason: String,
    pub compute_ms: f64,
    pub memory_ms: f64,
    /// Streaming the layer's output through on-chip memory, where the profile gives that rate
    /// (`memory.on_chip_gbps`); 0 otherwise.
    pub on_chip_ms: f64,
    /// The accelerator's fixed cost of starting the layer, before its compute and transfers.
    pub overhead_ms: f64,
    /// Overhead plus the largest of compute, memory and on-chip time (they overlap; set-up
    /// does not).
    pub time_ms: f64,
    /// Dynamic energy of the node (µJ).
    pub energy_uj: f64,
    /// The layer whose epilogue runs this node (activation, bias, batch norm), if any: it then
    /// costs no time of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fused_into: Option<String>,
}

/// The emulator's prediction for one model on one chip.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub chip: String,
    /// Modelled latency of one inference without jitter.
    pub latency_ms: Option<f64>,
    /// Why there is no latency figure, when there is none.
    pub latency_unknown: Option<String>,
    /// The profile field whose absence is that reason (`memory.dram_bandwidth_gbps`, say): the
    /// report then lists the gap as the profile's, not the model's. `None` when the model is the
    /// cause (a rejected node, a shape that could not be inferred).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_profile_gap: Option<&'static str>,
    /// Offline throughput: inferences per second at batch 1 with the pipeline full (see
    /// [`Scenario`]); `None` when the latency is unknown.
    pub throughput_fps: Option<f64>,
    /// How the throughput follows from the node costs.
    pub scenario: Scenario,
    pub npu_time_share: Option<f64>,
    pub weights_bytes: u64,
    pub peak_activation_bytes: u64,
    /// Whether the weights and the activations alive at any accelerator node fit its on-chip
    /// memory (then NPU nodes cause no DRAM traffic); `None` when the profile gives no on-chip
    /// size.
    pub fits_on_chip: Option<bool>,
    /// Contexts a dataflow chip runs the model in when it does not fit on chip (each one's
    /// weights reloaded over the host link every frame); `None` when it runs whole.
    pub contexts: Option<u64>,
    /// Dynamic energy of one inference (mJ): MACs by type plus DRAM traffic.
    pub energy_mj: Option<f64>,
    /// Idle power, a share of the profile's power budget (W).
    pub static_w: Option<f64>,
    pub nodes: Vec<NodeCost>,
    pub placement: Placement,
    /// What the chip's toolchain made of the model before it ran, when it changed it (a float
    /// model quantized by the toolchain): the figures are that build's.
    pub conversion: Option<String>,
    /// The figures behind the prediction that no datasheet gives: each calibrated one with its
    /// point, and each emulator default standing in for a missing one.
    pub calibration: Vec<String>,
    /// How far the chip's latency may sit from these figures beyond their scatter: the chip's
    /// own error over the measurement corpus, or the cross-chip one ([`systematic_error`]).
    pub systematic_error: SystematicError,
    /// DRAM time is not costed on its own: the calibrated per-layer overhead stands for it
    /// (`memory.dram_in_overhead`), so a verdict on this latency says so.
    pub dram_in_overhead: bool,
    /// On an accelerator card: moving the inputs in and the outputs back over the host link,
    /// which the latency (model execution on the card) leaves out.
    pub host_transfer: Option<HostTransfer>,
}

impl Estimate {
    /// Average power when inferences are requested at `rate_hz` (capped at what the modelled
    /// latency allows): idle power plus energy per inference times rate.
    pub fn avg_power_w(&self, rate_hz: f64) -> Option<f64> {
        let rate = match self.latency_ms {
            Some(ms) if ms > 0.0 => rate_hz.min(1000.0 / ms),
            _ => rate_hz,
        };
        Some(self.static_w? + self.energy_mj? * 1e-3 * rate)
    }

    /// A latency distribution around the modelled value: Gaussian jitter plus rare stalls,
    /// seeded from the model and profile digests so the same inputs give the same draws.
    pub fn latency_samples(&self, seed: u64) -> Option<Vec<f64>> {
        let base = self.latency_ms?;
        let mut rng = SplitMix64::new(seed);
        Some(
            (0..EMULATED_RUNS)
                .map(|_| {
                    let stall = if rng.next_f64() < STALL_RATE { STALL_FACTOR } else { 0.0 };
                    base * (1.0 + (JITTER_SD * rng.normal()).abs() + stall)
                })
                .collect(),
        )
    }
}

/// How an offline stream of batch-1 inferences overlaps on the chip, as vendors publish FPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A dataflow chip (`npu.kind = "dataflow"`, Hailo-8) gives every layer its own resources,
    /// in proportion to its work: each is a pipeline stage, the stages take equal time, so
    /// throughput = 1 / Σ(work at the whole chip's rate), for the busier of its compute and its
    /// on-chip memory, while latency is still the sum of the stages with their set-up.
    Pipelined,
    /// Elsewhere one inference holds an accelerator core until it is done: throughput = cores /
    /// latency, capped by DRAM bandwidth (a card's: by its host link).
    Serial,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pipelined => "pipelined",
            Scenario::Serial => "serial",
        }
    }
}

/// Predicts placement and latency of `model` on `profile`.
pub fn estimate(model: &ModelInventory, profile: &ChipProfile) -> Estimate {
    let (compiled, conversion) = conversion::as_compiled(model, profile);
    let model = compiled.as_ref().unwrap_or(model);
    let placement = place(model, profile);
    let roles = fusion::roles(model, &placement);
    let (live_at_start, live_bytes) = model.activation_liveness();
    let peak_activation_bytes = crate::model::peak_liveness(live_at_start, &live_bytes);
    let residency = Residency::of(profile, model, &placement, &roles, &live_bytes);
    let weights = model.run_time_weight_bytes();
    let mut nodes = Vec::with_capacity(model.nodes.len());
    let mut unknown = None;
    for (index, ((((node, p), role), &weight_bytes), &live)) in
        model.nodes.iter().zip(&placement.nodes).zip(&roles).zip(&weights).zip(&live_bytes).enumerate()
    {
        let fused_into = match *role {
            Role::FusedInto(head) => Some(model.nodes[head].name.clone()),
            _ => None,
        };
        // An epilogue's tensors stay in the layer's buffers: no traffic, no overhead of its own.
        let path = match role {
            Role::FusedInto(_) => MemoryPath::OnChip,
            _ => residency.path(index, p.unit, live),
        };
        let cost = match role {
            Role::FusedInto(_) => Ok(Cost::default()),
            _ => node_cost(node, weight_bytes, p.unit, &p.reason, profile, path, *role == Role::Layer),
        };
        match cost {
            Ok(cost) => nodes.push(NodeCost {
                energy_uj: node_energy_uj(node, weight_bytes, p.unit, path, profile),
                node: node.name.clone(),
                op_type: node.op_type.clone(),
                unit: p.unit,
                reason: p.reason.clone(),
                compute_ms: cost.compute_s * 1e3,
                memory_ms: cost.memory_s * 1e3,
                on_chip_ms: cost.on_chip_s * 1e3,
                overhead_ms: cost.overhead_s * 1e3,
                time_ms: cost.time_s() * 1e3,
                fused_into,
            }),
            Err(why) => {
                unknown.get_or_insert(why);
            }
        }
    }
    let handovers = placement.boundaries as f64 * HANDOVER_S * 1e3;
    let latency_ms = unknown
        .is_none()
        .then(|| INFERENCE_OVERHEAD_S * 1e3 + handovers + nodes.iter().map(|n| n.time_ms).sum::<f64>());
    let energy_mj = unknown.is_none().then(|| nodes.iter().map(|n| n.energy_uj).sum::<f64>() * 1e-3);
    let scenario = match profile.npu.as_ref().and_then(|n| n.kind.as_deref()) {
        Some("dataflow") => Scenario::Pipelined,
        _ => Scenario::Serial,
    };
    // Only beside a latency: without one there is nothing for the transfer to add to.
    let host_transfer =
        latency_ms.and(host_link::host_transfer(model, profile, model.quantized || conversion.is_some()));
    let throughput_fps =
        latency_ms.map(|total| card_aware_fps(&nodes, total, scenario, profile, host_transfer));
    let npu_ms: f64 = nodes.iter().filter(|n| n.unit == Unit::Npu).map(|n| n.time_ms).sum();
    let total_ms: f64 = nodes.iter().map(|n| n.time_ms).sum();
    Estimate {
        chip: profile.chip.name.clone(),
        latency_ms,
        latency_profile_gap: unknown.as_ref().and_then(|u| u.profile_gap),
        latency_unknown: unknown.map(|u| u.reason),
        throughput_fps,
        scenario,
        npu_time_share: (latency_ms.is_some() && total_ms > 0.0).then(|| npu_ms / total_ms),
        weights_bytes: model.weight_bytes,
        peak_activation_bytes,
        fits_on_chip: residency.fits_on_chip,
        contexts: residency.contexts,
        energy_mj,
        static_w: idle_w(profile),
        nodes,
        placement,
        conversion,
        calibration: calibration_notes(profile),
        systematic_error: systematic_error(profile),
        dram_in_overhead: profile.memory.has_dram_in_overhead(),
        host_transfer,
    }
}

/// What the emulated latency and throughput of `profile` rest on, in a few words: a per-layer
/// overhead calibrated on a published point of that chip (with DRAM time inside it, where
/// `memory.dram_in_overhead` says so), a dataflow chip's on-chip rate or utilization calibrated
/// on published throughput (its latency still on the default overhead), or the default overhead
/// alone.
pub fn calibration_basis(profile: &ChipProfile) -> &'static str {
    let Some(npu) = &profile.npu else { return "no accelerator figures" };
    let throughput_calibrated = npu.utilization.is_some() || profile.memory.on_chip_gbps.is_some();
    match (npu.layer_overhead_us, throughput_calibrated) {
        (Some(_), _) if profile.memory.has_dram_in_overhead() => "calibrated, DRAM inside the overhead",
        (Some(_), _) => "calibrated",
        (None, true) => "throughput calibrated, latency default",
        (None, false) => "default",
    }
}

/// [`Estimate::calibration`] for `profile`: the layer overhead, utilization and on-chip rate,
/// calibrated (quoting the profile's source, which names the point) or defaulted, and whether
/// the overhead also stands for DRAM transfers.
fn calibration_notes(profile: &ChipProfile) -> Vec<String> {
    let Some(npu) = &profile.npu else { return Vec::new() };
    let source = |field: &str| profile.calibration_source(field).unwrap_or("its source is not given");
    let mut notes = vec![match npu.layer_overhead_us {
        Some(us) => format!("npu.layer_overhead_us = {us}: {}", source("npu.layer_overhead_us")),
        None => format!(
            "per-layer overhead {DEFAULT_LAYER_OVERHEAD_US} µs: the emulator's default (the mean of the chips calibrated on published points), not calibrated for this chip"
        ),
    }];
    if let Some(u) = npu.utilization {
        notes.push(format!("npu.utilization = {u}: {}", source("npu.utilization")));
    }
    if let Some(gbps) = profile.memory.on_chip_gbps {
        notes.push(format!("memory.on_chip_gbps = {gbps}: {}", source("memory.on_chip_gbps")));
    }
    if profile.memory.has_dram_in_overhead() {
        notes.push(
            "DRAM transfers not costed on their own (memory.dram_in_overhead): no source gives the DRAM bandwidth, so the calibrated per-layer overhead stands for them at its point's ratio of bytes to layers; a model moving more bytes per layer, or falling back to the CPU, is predicted fast"
                .into(),
        );
    }
    notes
}

/// Offline throughput, on a card with its host transfers: a serial card's runtime waits for
/// each inference's transfers (libedgetpu's invoke is blocking), so they add to every stream's
/// frame time; a pipelined one streams them while the stages run. Either way the link carries
/// no more frames than its rate allows, with every byte the model streams over it each frame.
fn card_aware_fps(
    nodes: &[NodeCost],
    latency_ms: f64,
    scenario: Scenario,
    profile: &ChipProfile,
    transfer: Option<HostTransfer>,
) -> f64 {
    let Some(t) = transfer else { return offline_fps(nodes, latency_ms, scenario, profile) };
    let frame_ms = match scenario {
        Scenario::Serial => latency_ms + t.ms,
        Scenario::Pipelined => latency_ms,
    };
    let streamed_ms: f64 = nodes.iter().map(|n| n.memory_ms).sum();
    offline_fps(nodes, frame_ms, scenario, profile).min(t.link_fps(streamed_ms))
}

/// Offline inferences per second at batch 1 with the chip kept full.
///
/// Pipelined (a dataflow chip): the compiler gives every stage resources in proportion to its
/// work, so the stages take equal time and a frame leaves every Σ(work at the whole chip's
/// rate); the stages' set-up fills the pipeline once and does not recur per frame. Compute
/// (with what the link streams into a stage, which it waits for) and on-chip memory are
/// allocated apart (Hailo names compute, memory and control resources), so the period is the
/// larger of their totals, not the sum of each stage's larger one. Serial: one
/// inference per NPU core at a time (each core runs its own stream), capped by DRAM bandwidth
/// when the cores' traffic would exceed it (on a card, the host link's: [`card_aware_fps`]
/// adds the transfers).
fn offline_fps(nodes: &[NodeCost], latency_ms: f64, scenario: Scenario, profile: &ChipProfile) -> f64 {
    match scenario {
        Scenario::Pipelined => {
            let compute_ms: f64 = nodes.iter().map(|n| n.compute_ms.max(n.memory_ms)).sum();
            let on_chip_ms: f64 = nodes.iter().map(|n| n.on_chip_ms).sum();
            let period_ms = compute_ms.max(on_chip_ms);
            1000.0 / if period_ms > 0.0 { period_ms } else { latency_ms }
        }
        Scenario::Serial => {
            let streams = profile.npu.as_ref().and_then(|n| n.cores).unwrap_or(1).max(1) as f64;
            let memory_ms: f64 = nodes.iter().map(|n| n.memory_ms).sum();
            let memory_bound = if memory_ms > 0.0 { 1000.0 / memory_ms } else { f64::INFINITY };
            (streams * 1000.0 / latency_ms).min(memory_bound)
        }
    }
}

/// Whether a working set of `bytes` stays on chip: against `npu.sram_bytes` where the profile
/// gives it; a chip that keeps every tensor on chip (`memory.on_chip_only`) and gives no size
/// is taken at its word.
fn on_chip(profile: &ChipProfile, bytes: u64) -> Option<bool> {
    match profile.npu.as_ref().and_then(|n| n.sram_bytes) {
        Some(sram) => Some(bytes <= sram),
        None => profile.memory.is_on_chip_only().then_some(true),
    }
}

/// Contexts a dataflow chip (`memory.on_chip_only`) runs a model in when it does not fit the
/// on-chip memory: the compiler cuts the graph into parts that do, swapped in turn.
fn contexts(profile: &ChipProfile, fits_on_chip: Option<bool>, bytes: u64) -> Option<u64> {
    let sram = profile.npu.as_ref()?.sram_bytes?;
    (profile.memory.is_on_chip_only() && fits_on_chip == Some(false) && sram > 0)
        .then(|| bytes.div_ceil(sram))
}

/// Where a node's tensors travel besides its unit's own on-chip memory.
#[derive(Debug, Clone, Copy, PartialEq)]
enum MemoryPath {
    /// The working set stays on chip: no off-chip traffic (on-chip streaming is charged only
    /// where the profile gives its rate, `memory.on_chip_gbps`).
    OnChip,
    /// Weights once through DRAM; `spills`: the output too, written and read back (the
    /// activations alive at this node do not fit on chip, or the unit has no on-chip memory
    /// the profile describes).
    Dram { spills: bool },
    /// An accelerator card without DRAM (Coral USB): the weights that did not fit on chip come
    /// from the host every inference, and so does a spilled output. The share is of each node's
    /// weights: the on-chip memory left after peak activations caches the rest (the compiler
    /// decides which; spreading it evenly keeps the total right).
    HostLink { streamed_share: f64, spills: bool },
}

/// Where a model's tensors live on a chip, decided once per estimate: whether the whole working
/// set fits on chip, and otherwise the on-chip memory each layer's live activations are held
/// against (tiling: weights stream through once while a layer's input and output stay on chip).
struct Residency {
    /// `None` without an on-chip size, or without an accelerator layer to hold.
    fits_on_chip: Option<bool>,
    sram_bytes: Option<u64>,
    /// `Some` for a card that reaches its weights over its host link (no DRAM of its own).
    host_link_share: Option<f64>,
    /// Per node, whether its output leaves the accelerator (see [`leaves_accelerator`]).
    leaves: Vec<bool>,
    /// See [`Estimate::contexts`].
    contexts: Option<u64>,
}

impl Residency {
    /// `live_bytes`: per node, the activation bytes alive while it runs. Only the accelerator's
    /// layers count against its on-chip memory, as the compiler builds them: a tensor alive only
    /// on the host (a float input before the quantization the runtime does there), or between
    /// the nodes of one fused layer (a Conv's output before its Clip or requantization), never
    /// occupies it — so an unfused export and a folded one hold the same.
    fn of(
        profile: &ChipProfile,
        model: &ModelInventory,
        placement: &Placement,
        roles: &[Role],
        live_bytes: &[u64],
    ) -> Self {
        let mem = &profile.memory;
        let sram_bytes = profile.npu.as_ref().and_then(|n| n.sram_bytes);
        let peak = accelerator_peak(placement, roles, live_bytes);
        let fits_on_chip = peak.and_then(|peak| on_chip(profile, model.weight_bytes + peak));
        let peak = peak.unwrap_or(0);
        let host_link_share = mem.card_link_gbps().is_some().then(|| {
            if mem.is_on_chip_only() {
                // Contexts run in turn: at batch 1 each comes back over the link every
                // frame, so no weight stays resident from one frame to the next.
                return 1.0;
            }
            let cached = (sram_bytes.unwrap_or(0) as f64 - peak as f64).max(0.0);
            let weights = model.weight_bytes.max(1) as f64;
            ((weights - cached) / weights).clamp(0.0, 1.0)
        });
        let contexts = contexts(profile, fits_on_chip, model.weight_bytes + peak);
        let leaves = leaves_accelerator(model, placement, roles);
        Residency { fits_on_chip, sram_bytes, host_link_share, leaves, contexts }
    }

    /// The path of node `index` on `unit` while `live` activation bytes are alive. A layer's
    /// output spills when the live activations exceed the on-chip memory, and whenever it leaves
    /// the accelerator (the CPU or the host reads it from memory).
    fn path(&self, index: usize, unit: Unit, live: u64) -> MemoryPath {
        if unit != Unit::Npu {
            return MemoryPath::Dram { spills: true };
        }
        if self.fits_on_chip == Some(true) {
            return MemoryPath::OnChip;
        }
        let leaves = self.leaves.get(index).copied().unwrap_or(true);
        match (self.host_link_share, self.sram_bytes) {
            // A card without an on-chip size keeps its activations on chip (nothing says where else).
            (Some(streamed_share), sram) => {
                MemoryPath::HostLink { streamed_share, spills: leaves || sram.is_some_and(|s| live > s) }
            }
            (None, Some(sram)) => MemoryPath::Dram { spills: leaves || live > sram },
            (None, None) => MemoryPath::Dram { spills: true },
        }
    }
}

/// The activation bytes alive at the busiest accelerator layer (fused epilogues run in their
/// layer's buffers); `None` when no layer runs on the accelerator.
fn accelerator_peak(placement: &Placement, roles: &[Role], live_bytes: &[u64]) -> Option<u64> {
    placement
        .nodes
        .iter()
        .zip(roles)
        .zip(live_bytes)
        .filter(|((p, role), _)| p.unit == Unit::Npu && !matches!(role, Role::FusedInto(_)))
        .map(|(_, &live)| live)
        .max()
}

/// What `profile`'s on-chip memory must hold for `model` to run whole on it, counted as the
/// estimate counts it (`fits_on_chip`, `contexts`): the weights of the build the toolchain
/// compiles plus the activations alive at its busiest accelerator layer. `None` when no layer
/// runs on the accelerator.
pub fn on_chip_working_set(model: &ModelInventory, profile: &ChipProfile) -> Option<u64> {
    let (compiled, _) = conversion::as_compiled(model, profile);
    let model = compiled.as_ref().unwrap_or(model);
    let placement = place(model, profile);
    let roles = fusion::roles(model, &placement);
    let (_, live_bytes) = model.activation_liveness();
    accelerator_peak(&placement, &roles, &live_bytes).map(|peak| model.weight_bytes + peak)
}

/// Per node, whether what it writes leaves the accelerator: a graph output, or read by a node
/// off it (the CPU), seen through absorbed Q/DQ nodes and fused epilogues, which pass a layer's
/// output on. ONNX nodes are topologically sorted, so consumers are decided first, walking back.
fn leaves_accelerator(model: &ModelInventory, placement: &Placement, roles: &[Role]) -> Vec<bool> {
    let graph_outputs: std::collections::HashSet<&str> =
        model.outputs.iter().map(|t| t.name.as_str()).collect();
    let mut consumers: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (j, n) in model.nodes.iter().enumerate() {
        for t in n.inputs.iter().filter(|t| !t.is_empty()) {
            consumers.entry(t.as_str()).or_default().push(j);
        }
    }
    let mut leaves = vec![false; model.nodes.len()];
    for i in (0..model.nodes.len()).rev() {
        let off_accelerator = |j: usize| {
            let unit = placement.nodes.get(j).map_or(Unit::Cpu, |p| p.unit);
            let transparent = unit == Unit::Absorbed || matches!(roles.get(j), Some(Role::FusedInto(_)));
            if transparent {
                j > i && leaves[j]
            } else {
                unit != Unit::Npu
            }
        };
        leaves[i] = model.nodes[i].outputs.iter().any(|t| {
            graph_outputs.contains(t.as_str())
                || consumers.get(t.as_str()).is_some_and(|cs| cs.iter().any(|&j| off_accelerator(j)))
        });
    }
    leaves
}

/// Bytes a node moves along `path`, reading `weight_bytes` of weights.
fn node_bytes(node: &NodeInfo, weight_bytes: u64, path: MemoryPath) -> f64 {
    let spilled = |spills: bool| if spills { node.output_bytes.unwrap_or(0) as f64 * 2.0 } else { 0.0 };
    match path {
        MemoryPath::OnChip => 0.0,
        MemoryPath::Dram { spills } => weight_bytes as f64 + spilled(spills),
        MemoryPath::HostLink { streamed_share, spills } => {
            weight_bytes as f64 * streamed_share + spilled(spills)
        }
    }
}

/// The accelerator's int8 energy per MAC (pJ): 2 operations per MAC at the profile's TOPS/W.
pub fn pj_per_mac_int8(profile: &ChipProfile) -> f64 {
    match profile.power.as_ref().and_then(|p| p.tops_per_w_int8) {
        Some(tops_per_w) => 2.0 / tops_per_w,
        None => DEFAULT_PJ_PER_MAC_INT8,
    }
}

fn node_energy_uj(
    node: &NodeInfo,
    weight_bytes: u64,
    unit: Unit,
    path: MemoryPath,
    profile: &ChipProfile,
) -> f64 {
    let macs = (node.macs.unwrap_or(0) + node.other_ops.unwrap_or(0) / 2) as f64;
    let pj_per_mac = match unit {
        Unit::Absorbed => return 0.0,
        Unit::Npu if matches!(node.dtype, Some(DType::Int8 | DType::Uint8 | DType::Int4)) => {
            pj_per_mac_int8(profile)
        }
        Unit::Npu => pj_per_mac_int8(profile) * FP16_ENERGY_FACTOR,
        Unit::Cpu | Unit::Rejected => PJ_PER_MAC_CPU,
    };
    // A host-link byte is charged as a DRAM byte: it is read from the host's DRAM, and the
    // link's own energy per byte has no source here.
    let memory = node_bytes(node, weight_bytes, path) * PJ_PER_DRAM_BYTE;
    (macs * pj_per_mac + memory) * 1e-6
}

/// Why the cost model gives a node no time: the model's doing, or a figure the profile lacks.
#[derive(Debug)]
struct Unknown {
    reason: String,
    profile_gap: Option<&'static str>,
}

impl Unknown {
    fn of_model(reason: String) -> Self {
        Unknown { reason, profile_gap: None }
    }

    /// `field` is the profile's, as its TOML spells it; the reason names it too.
    fn of_profile(field: &'static str, reason: String) -> Self {
        Unknown { reason, profile_gap: Some(field) }
    }
}

/// One node's time on its unit, in seconds.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    compute_s: f64,
    memory_s: f64,
    on_chip_s: f64,
    overhead_s: f64,
}

impl Cost {
    /// Compute and transfers overlap (a roofline); the layer's set-up comes before them.
    fn time_s(&self) -> f64 {
        self.overhead_s + self.compute_s.max(self.memory_s).max(self.on_chip_s)
    }
}

/// The cost of one node on its unit, its tensors moving along `path`. `layer`: the node is a
/// layer of its own on the accelerator, paying the per-layer overhead.
fn node_cost(
    node: &NodeInfo,
    weight_bytes: u64,
    unit: Unit,
    reason: &str,
    profile: &ChipProfile,
    path: MemoryPath,
    layer: bool,
) -> Result<Cost, Unknown> {
    match unit {
        Unit::Absorbed => return Ok(Cost::default()),
        Unit::Rejected => {
            return Err(Unknown::of_model(format!(
                "node `{}` ({}) is rejected ({reason}), so the toolchain would not compile the model",
                node.name, node.op_type
            )))
        }
        _ => {}
    }
    let (macs, other) = match (node.macs, node.other_ops) {
        (Some(m), Some(o)) => (m as f64, o as f64),
        _ => {
            return Err(Unknown::of_model(format!(
                "shapes of node `{}` are unknown, so its work is unknown",
                node.name
            )))
        }
    };
    // The unit first: a node on a CPU the profile does not describe is unknown for that
    // reason, whatever its tensors' path.
    let compute_s = match unit {
        Unit::Npu => npu_compute_s(node, macs, other, profile)?,
        _ => cpu_compute_s(macs, other, profile)?,
    };
    let memory_s = match path {
        // Off-chip time only: on-chip streaming is its own term below.
        MemoryPath::OnChip => 0.0,
        MemoryPath::Dram { .. } => match profile.memory.dram_bandwidth_gbps {
            Some(bw) => node_bytes(node, weight_bytes, path) / (bw * 1e9),
            // Validation ties this to a calibrated layer overhead, which stands for the transfers.
            None if profile.memory.has_dram_in_overhead() => 0.0,
            None if profile.memory.is_on_chip_only() => {
                return Err(Unknown::of_profile("memory.host_link_gbps", format!(
                    "the model does not fit the on-chip memory of `{}` (npu.sram_bytes), so it runs in contexts reloaded from the host, over a link the profile does not give (memory.host_link_gbps)",
                    profile.chip.name
                )))
            }
            None => {
                return Err(Unknown::of_profile(
                    "memory.dram_bandwidth_gbps",
                    format!("profile `{}` gives no DRAM bandwidth (memory.dram_bandwidth_gbps)", profile.chip.name),
                ))
            }
        },
        MemoryPath::HostLink { .. } => {
            let bw = profile.memory.host_link_gbps.expect("memory_path checked the link");
            node_bytes(node, weight_bytes, path) / (bw * 1e9)
        }
    };
    let overhead_s = match (unit, layer, profile.npu.as_ref()) {
        (Unit::Npu, true, Some(npu)) => npu.layer_overhead_us.unwrap_or(DEFAULT_LAYER_OVERHEAD_US) * 1e-6,
        _ => 0.0,
    };
    let on_chip_s = match (unit, profile.memory.on_chip_gbps) {
        (Unit::Npu, Some(bw)) => on_chip_bytes(node, path) / (bw * 1e9),
        _ => 0.0,
    };
    Ok(Cost { compute_s, memory_s, on_chip_s, overhead_s })
}

/// Ops that re-describe a tensor without moving it: nothing streams through on-chip memory.
const VIEW_OPS: [&str; 5] = ["Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"];

/// Bytes an accelerator node streams through on-chip memory along `path`: its output, written
/// and read by the next layer, unless the path already sends it off chip or the node is a view.
fn on_chip_bytes(node: &NodeInfo, path: MemoryPath) -> f64 {
    let spills = match path {
        MemoryPath::OnChip => false,
        MemoryPath::Dram { spills } | MemoryPath::HostLink { spills, .. } => spills,
    };
    if spills || VIEW_OPS.contains(&node.op_type.as_str()) {
        0.0
    } else {
        node.output_bytes.unwrap_or(0) as f64 * 2.0
    }
}

fn npu_compute_s(node: &NodeInfo, macs: f64, other: f64, profile: &ChipProfile) -> Result<f64, Unknown> {
    let npu = profile.npu.as_ref().ok_or_else(|| Unknown::of_profile("npu", "profile has no NPU".into()))?;
    let quantized = matches!(node.dtype, Some(DType::Int8 | DType::Uint8 | DType::Int4));
    let tops = if quantized {
        npu.peak_tops_int8
    } else {
        npu.peak_tflops_fp16.or(npu.peak_tops_int8.map(|t| t / 2.0))
    }
    .ok_or_else(|| {
        Unknown::of_profile(
            "npu.peak_tops_int8",
            format!("profile `{}` gives no NPU peak throughput (npu.peak_tops_int8)", profile.chip.name),
        )
    })?;
    // A batch-1 inference runs on one NPU core (RKNN's default core mask); splitting one
    // inference across cores is a toolchain option this model does not assume.
    let macs_per_s = tops * 1e12 / 2.0 / npu.cores.unwrap_or(1).max(1) as f64;
    let eff = match node.op_type.as_str() {
        "Conv" | "ConvTranspose" if node.attrs.group.unwrap_or(1) > 1 => EFF_DEPTHWISE,
        "Conv" | "ConvTranspose" => EFF_CONV,
        "MatMul" | "Gemm" | "LSTM" | "GRU" => EFF_MATMUL,
        _ => EFF_OTHER,
    };
    // A calibrated utilization scales every class's efficiency (a dataflow compiler's
    // allocation, a runtime's scheduling); absent, the first-principles figures stand.
    let utilization = npu.utilization.unwrap_or(1.0);
    let occupancy = match npu.kind.as_deref() {
        Some("gpu") => gpu_occupancy(node, npu.compute_units),
        _ => 1.0,
    };
    Ok((macs / (macs_per_s * eff * occupancy) + other / (macs_per_s * EFF_OTHER)) / utilization)
}

/// Share of a GPU's streaming multiprocessors a layer keeps busy. A convolution or matmul runs
/// as an implicit GEMM (M = batch × output positions, N = output channels) cut into
/// `GPU_TILE` × `GPU_TILE` output blocks, one block per unit at a time: the blocks run in waves,
/// and the last wave's idle units are lost (wave quantization). A layer of 5 blocks on 8 units
/// keeps 5/8 of the GPU busy. Other layers (depthwise, pooling, elementwise), and profiles
/// without `npu.compute_units`, keep 1.
fn gpu_occupancy(node: &NodeInfo, units: Option<u32>) -> f64 {
    let gemm = matches!(node.op_type.as_str(), "Conv" | "ConvTranspose" | "Gemm" | "MatMul")
        && node.attrs.group.unwrap_or(1) == 1;
    let out = node.output_shapes.first().cloned().flatten().unwrap_or_default();
    let (Some(units), true, true) = (units.filter(|u| *u > 0), gemm, out.len() >= 2) else {
        return 1.0;
    };
    // f64 throughout: a hostile shape must not overflow.
    let product = |dims: &[usize]| dims.iter().map(|&d| d as f64).product::<f64>();
    let (m, n) = match node.op_type.as_str() {
        "Conv" | "ConvTranspose" => (out[0] as f64 * product(&out[2..]), out[1] as f64),
        _ => (product(&out[..out.len() - 1]), out[out.len() - 1] as f64),
    };
    let tile = GPU_TILE as f64;
    let blocks = (m / tile).ceil() * (n / tile).ceil();
    if !(blocks >= 1.0 && blocks.is_finite()) {
        return 1.0;
    }
    let units = units as f64;
    blocks / ((blocks / units).ceil() * units)
}

fn cpu_compute_s(macs: f64, other: f64, profile: &ChipProfile) -> Result<f64, Unknown> {
    let fastest = profile.cpu.clusters.iter().map(|c| c.cores as f64 * c.clock_ghz).fold(0.0, f64::max);
    if fastest <= 0.0 {
        return Err(Unknown::of_profile(
            "cpu.clusters",
            format!(
                "profile `{}` describes no CPU to run the nodes the accelerator does not",
                profile.chip.name
            ),
        ));
    }
    Ok((macs + other) / (fastest * 1e9 * CPU_MACS_PER_CYCLE))
}

/// Latency drawn from the emulator's distribution for this chip.
pub fn time_emulated(estimate: &Estimate, seed: u64) -> Option<Timing> {
    Some(Timing {
        latencies_ms: estimate.latency_samples(seed)?,
        basis: Basis::Emulated,
        what: emulated_what(estimate),
        power: None,
        scenarios: None,
        systematic_error: Some(estimate.systematic_error.clone()),
        soak: None,
    })
}

/// How an emulated latency was obtained, said where the verdict is read: the cost model, whether
/// DRAM time stands inside a calibrated overhead, and whose build it times when the toolchain
/// converted the model (the figure is then not the submitted model's).
fn emulated_what(estimate: &Estimate) -> String {
    let on_cpu = estimate.nodes.iter().any(|n| n.unit == Unit::Cpu);
    let dram = match (estimate.dram_in_overhead, on_cpu) {
        (false, _) => "",
        (true, false) => ", DRAM time inside the calibrated per-layer overhead",
        (true, true) => {
            ", DRAM time inside the calibrated per-layer overhead; the CPU nodes' DRAM time not costed"
        }
    };
    let build =
        if estimate.conversion.is_some() { " for the toolchain's int8 build of the float model" } else { "" };
    let link = estimate.host_transfer.map_or(String::new(), |t| {
        format!(
            "; model execution on the card: moving the inputs and outputs over the host link adds at least {:.3} ms (emulated, at the link's nominal rate)",
            t.ms
        )
    });
    format!("emulated {} (roofline cost model{dram}){build}{link}", estimate.chip)
}

#[cfg(test)]
mod tests;
