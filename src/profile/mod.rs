//! Chip profiles: what a chip offers (compute, memory, power, thermal limits, operators), read
//! from `profiles/<chip>.toml`, or from a board profile that `extends` a chip's (see
//! [`inherit`]). A figure not found in a cited source is left out (`None`), never invented;
//! checks that need it say INCONCLUSIVE.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{parse_toml, Diagnostic, Document};
use crate::vocab::{Error, Result};

pub mod inherit;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChipProfile {
    pub schema_version: u32,
    pub chip: ChipIdentity,
    /// Where each figure comes from: key = section or field, value = citation.
    pub sources: BTreeMap<String, String>,
    pub npu: Option<Npu>,
    pub cpu: Cpu,
    pub memory: Memory,
    pub power: Option<Power>,
    pub thermal: Option<Thermal>,
    /// How far the emulator's latency sits from this chip's published figures.
    pub fidelity: Option<Fidelity>,
    pub quantization: Quantization,
    pub operators: OperatorTable,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChipIdentity {
    /// Short identifier, used in trial names and report paths (`rk3588`).
    pub name: String,
    pub vendor: String,
    pub display_name: Option<String>,
    pub toolchain: Option<String>,
    pub notes: Option<String>,
}

/// The accelerator: NPU, TPU or GPU-class unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Npu {
    /// `npu`, `tpu`, `gpu`, `dataflow`: informs the emulator's efficiency assumptions.
    pub kind: Option<String>,
    pub cores: Option<u32>,
    /// Units a GPU spreads one layer's thread blocks over (streaming multiprocessors): the
    /// emulator loses the idle units of a layer's last wave of blocks. GPU-class only.
    pub compute_units: Option<u32>,
    pub peak_tops_int8: Option<f64>,
    pub peak_tflops_fp16: Option<f64>,
    pub clock_mhz: Option<f64>,
    /// On-chip memory usable by the accelerator (SRAM, VTCM, ...).
    pub sram_bytes: Option<u64>,
    /// Fixed cost per layer the accelerator runs (descriptor set-up, DMA start, sync), in µs.
    /// A calibrated figure, not a datasheet one: its source says which calibration point.
    pub layer_overhead_us: Option<f64>,
    /// Share of the emulator's per-op-class efficiencies this accelerator reaches (0-1]: a
    /// derating for a chip whose measured figures are compute-bound, its source naming the
    /// measurement. (On a dataflow chip, `cargo xtask fidelity` calibrates
    /// `memory.on_chip_gbps` instead.)
    pub utilization: Option<f64>,
    /// Selectable compute modes (Ascend's npu-smi modes, Jetson's power modes); the figures
    /// above are the default mode.
    #[serde(default)]
    pub modes: Vec<NpuMode>,
}

/// One compute mode: the figures it changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NpuMode {
    pub name: String,
    pub peak_tops_int8: Option<f64>,
    pub peak_tflops_fp16: Option<f64>,
    /// The CPU clock in this mode, applied to every cluster.
    pub cpu_clock_ghz: Option<f64>,
}

/// The CPU that runs what the accelerator does not. Empty for an accelerator card whose host
/// is not part of the profile (Hailo-8, Coral): CPU-placed nodes then have no modelled cost.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cpu {
    pub clusters: Vec<CpuCluster>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CpuCluster {
    pub cores: u32,
    pub core: String,
    pub clock_ghz: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Memory {
    pub dram_bytes: Option<u64>,
    pub dram_bandwidth_gbps: Option<f64>,
    /// True for dataflow accelerators that keep every tensor on chip (Hailo-8): no DRAM traffic.
    pub on_chip_only: Option<bool>,
    /// Data rate of an accelerator card's link to its host (GB/s, like `dram_bandwidth_gbps`):
    /// USB 3.0 for the Coral USB Accelerator, PCIe for M.2 cards. A card with no DRAM of its own
    /// streams the weights that do not fit on chip over it every inference.
    pub host_link_gbps: Option<f64>,
    /// Rate at which the accelerator's layers stream their activations through its on-chip
    /// memory (GB/s: each layer's output written and read by the next), where that, not its MACs,
    /// can limit it: a dataflow chip's distributed memory, allocated per layer beside its compute.
    /// A calibrated figure (no datasheet gives it): its source names the point. Without it,
    /// on-chip memory is never the bottleneck.
    pub on_chip_gbps: Option<f64>,
    /// True when no source gives the DRAM bandwidth and the calibrated `npu.layer_overhead_us`
    /// stands for the transfers too (the QCS6490): DRAM time is not costed on its own, it is
    /// inside the per-layer figure at its calibration point's ratio of bytes to layers.
    pub dram_in_overhead: Option<bool>,
}

/// A profile bundled under `profiles/`, for tests.
#[cfg(test)]
pub(crate) fn bundled(name: &str) -> ChipProfile {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{name}.toml"));
    ChipProfile::load(&path).unwrap().profile
}

impl Memory {
    /// Whether the chip keeps every tensor on chip (`on_chip_only = true`, a dataflow chip).
    pub fn is_on_chip_only(&self) -> bool {
        self.on_chip_only == Some(true)
    }

    /// Whether the calibrated per-layer overhead stands for the DRAM time
    /// (`dram_in_overhead = true`).
    pub fn has_dram_in_overhead(&self) -> bool {
        self.dram_in_overhead == Some(true)
    }

    /// The host link's rate when the chip is a card with no DRAM of its own, whose every
    /// off-chip byte crosses that link.
    pub fn card_link_gbps(&self) -> Option<f64> {
        self.host_link_gbps.filter(|_| self.dram_bandwidth_gbps.is_none())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Power {
    pub typical_w: Option<f64>,
    /// The most the chip or board may draw: a board's rated maximum system load, or the supply
    /// its vendor requires. The power budget when no typical draw is given.
    pub max_w: Option<f64>,
    /// The accelerator's int8 efficiency (TOPS per watt), published or derived from its peak and
    /// power: the emulator's energy per MAC is 2 / this, in pJ. Absent, a documented default.
    pub tops_per_w_int8: Option<f64>,
    /// The board's idle draw (W), measured (`edgecert thermal fit` of a soak with a meter, over
    /// the seconds before its load; cited in `[sources]` as `thermal_fit`). Absent, the
    /// emulator assumes a share of the power budget.
    #[serde(default)]
    pub idle_w: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Thermal {
    pub throttle_c: Option<f64>,
    pub critical_c: Option<f64>,
    pub ambient_c: Option<f64>,
    /// Junction-to-ambient thermal resistance of the chip in its package and board (°C/W).
    pub resistance_c_per_w: Option<f64>,
    /// Time constant of the lumped thermal model (s).
    pub time_constant_s: Option<f64>,
}

/// The emulator's latency error on this chip, from its scored rows of the measurement corpus
/// (`fidelity/measurements.csv`, `cargo xtask fidelity`): the systematic error an emulated
/// latency verdict is held across, in place of the cross-chip figure. Cite it in `[sources]` as
/// `fidelity`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fidelity {
    /// The 90th percentile of |emulated / published − 1| over the scored rows; from 1 on, no
    /// emulated latency on the chip can pass.
    pub latency_error: f64,
    /// How many scored rows it comes from (at least [`FIDELITY_MIN_ROWS`]).
    pub scored_rows: u32,
}

/// Scored corpus rows a chip needs before its own latency error replaces the cross-chip one.
pub const FIDELITY_MIN_ROWS: u32 = 10;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Quantization {
    pub dtypes: Vec<DType>,
    pub granularity: Vec<Granularity>,
    /// What the chip's toolchain does with a float (unquantized) model; cite it in `[sources]`.
    #[serde(default)]
    pub float_graphs: FloatGraphs,
}

/// What a chip's toolchain does with a float model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FloatGraphs {
    /// Compiled as it is: float nodes run where the accelerator takes their type (fp32 as fp16),
    /// elsewhere per the fallback policy.
    #[default]
    AsFloat,
    /// The toolchain quantizes the model itself, from a calibration set (Hailo's Dataflow
    /// Compiler): a float graph is predicted as its int8 build.
    Quantized,
    /// The toolchain compiles only quantized models (edgetpu_compiler): a float graph is refused.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    Int4,
    Int8,
    Uint8,
    Int16,
    Fp16,
    Bf16,
    Fp32,
}

impl DType {
    /// Whether values of this type are floating point (not quantized integers).
    pub fn is_float(self) -> bool {
        matches!(self, DType::Fp32 | DType::Fp16 | DType::Bf16)
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::Int4 => "int4",
            DType::Int8 => "int8",
            DType::Uint8 => "uint8",
            DType::Int16 => "int16",
            DType::Fp16 => "fp16",
            DType::Bf16 => "bf16",
            DType::Fp32 => "fp32",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    PerTensor,
    PerChannel,
}

/// What happens to a node the accelerator cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackPolicy {
    /// Each unsupported node runs on the CPU; the graph hops back to the NPU after it (RKNN, QNN).
    PerOp,
    /// The accelerator runs the graph up to the first unsupported node, the CPU the rest (Edge TPU).
    SinglePartition,
    /// Any unsupported node makes the model unfit for the chip.
    Strict,
}

impl FallbackPolicy {
    pub fn name(self) -> &'static str {
        match self {
            FallbackPolicy::PerOp => "per-op",
            FallbackPolicy::SinglePartition => "single-partition",
            FallbackPolicy::Strict => "strict",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OperatorTable {
    pub fallback: FallbackPolicy,
    /// False when the vendor's full list was not read: absence from `supported` is then weaker
    /// evidence, and the report says so.
    pub complete: bool,
    /// Data types the listed operators accept unless `limits.<Op>.dtypes` narrows them.
    pub dtypes: Vec<DType>,
    pub supported: Vec<String>,
    /// Operators the vendor toolchain folds away at conversion (e.g. QuantizeLinear and
    /// DequantizeLinear become quantization parameters of their neighbours).
    #[serde(default)]
    pub absorbed: Vec<String>,
    #[serde(default)]
    pub limits: BTreeMap<String, OpLimits>,
}

/// Parameter limits of one operator on the accelerator; inclusive `[min, max]` ranges.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpLimits {
    pub dtypes: Option<Vec<DType>>,
    pub kernel: Option<[u32; 2]>,
    pub stride: Option<[u32; 2]>,
    pub pad: Option<[u32; 2]>,
    pub channels_max: Option<u64>,
    pub height_max: Option<u64>,
    pub width_max: Option<u64>,
    pub batch_max: Option<u64>,
}

/// A profile as loaded from disk, with the digest a certificate records.
#[derive(Debug, Clone)]
pub struct ProfileFile {
    pub path: PathBuf,
    /// SHA-256 of the file, or of the whole chain when it `extends` others ([`inherit`]).
    pub sha256: String,
    /// The files it extends, nearest first (empty for a chip profile that stands alone).
    pub extends: Vec<PathBuf>,
    pub profile: ChipProfile,
}

/// The digest [`ChipProfile::load`] would record for `path`, without validating the figures:
/// what `verify --profile` compares with a certificate.
pub fn digest(path: &Path) -> Result<String> {
    Ok(inherit::digest(&inherit::read_chain(path)?))
}

/// What a run's average power is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerBudget {
    pub watts: f64,
    /// The profile field it comes from: `power.typical_w`, else `power.max_w`.
    pub field: &'static str,
}

/// The smallest figure a profile may give in any unit (GB/s, TOPS, W, µs, ...).
pub(crate) const SMALLEST_FIGURE: f64 = 1e-9;

/// The figures no datasheet gives, each set on a published point (or a measurement), with the
/// `[sources]` key that must name that point: a calibrated figure says so.
const CALIBRATED_FIGURES: [(&str, &str); 4] = [
    ("npu.layer_overhead_us", "layer_overhead"),
    ("npu.utilization", "utilization"),
    ("memory.on_chip_gbps", "on_chip"),
    // The emulator's error over the chip's corpus rows: a board that sets its own cites its own.
    ("fidelity.latency_error", "fidelity"),
];

impl ChipProfile {
    /// The `[sources]` entry naming the point the calibrated figure `field` (e.g.
    /// `npu.layer_overhead_us`) was set on; `None` for a field that is not calibrated.
    pub fn calibration_source(&self, field: &str) -> Option<&str> {
        let (_, key) = CALIBRATED_FIGURES.iter().find(|(f, _)| *f == field)?;
        self.sources.get(*key).map(String::as_str)
    }

    /// Every calibrated figure the profile gives must cite its point, in the file that sets the
    /// figure or one nearer the profile: a board that recalibrates its chip's figure cites its
    /// own point, not the chip's.
    fn validate_calibrated(&self, v: &mut Validator<'_>) {
        let npu = self.npu.as_ref();
        let given = [
            npu.and_then(|n| n.layer_overhead_us).is_some(),
            npu.and_then(|n| n.utilization).is_some(),
            self.memory.on_chip_gbps.is_some(),
            self.fidelity.is_some(),
        ];
        // The file nearest the profile that writes a field (0 = the profile's own).
        let docs = v.docs;
        let writer = |field: &str| docs.iter().position(|d| d.has(field));
        for (&(field, key), given) in CALIBRATED_FIGURES.iter().zip(given) {
            let cited = match (writer(field), writer(&format!("sources.{key}"))) {
                (Some(figure), Some(source)) => source <= figure,
                (Some(_), None) => false,
                // Not written by any file read (a profile built in code): cited if present.
                (None, _) => self.sources.contains_key(key),
            };
            if given && !cited {
                v.err(
                    field,
                    format!("is calibrated, not a datasheet figure: cite its point in [sources] as `{key}`, in the file that sets it"),
                );
            }
        }
    }

    /// The power budget: the typical draw where the profile gives one, else the rated maximum
    /// (a board's supply or maximum system load), which only a model's own draw can exceed.
    pub fn power_budget(&self) -> Option<PowerBudget> {
        let p = self.power.as_ref()?;
        match (p.typical_w, p.max_w) {
            (Some(watts), _) => Some(PowerBudget { watts, field: "power.typical_w" }),
            (None, Some(watts)) => Some(PowerBudget { watts, field: "power.max_w" }),
            (None, None) => None,
        }
    }

    /// Loads and validates a profile, reporting every problem with file, line and field.
    /// A board profile is merged with the chip profiles it extends first; each problem then
    /// names the file that wrote the field.
    pub fn load(path: &Path) -> Result<ProfileFile> {
        let chain = inherit::read_chain(path)?;
        let docs: Vec<&Document> = chain.iter().map(|f| &f.doc).collect();
        let profile: ChipProfile = if let [only] = &chain[..] {
            parse_toml(path, only.doc.text.clone())?.0
        } else {
            let text = toml::to_string(&inherit::merged(&chain)).map_err(|e| {
                Error::Usage(format!("{}: cannot merge the profiles it extends: {e}", path.display()))
            })?;
            match parse_toml(path, text) {
                Ok((profile, _)) => profile,
                Err(Error::Config(diags)) => return Err(Error::Config(inherit::attribute(&docs, diags))),
                Err(e) => return Err(e),
            }
        };
        let mut diags = profile.validate(&docs);
        if chain.len() > 1 && !docs[0].has("chip.name") {
            // Inheriting the chip's name would collide with the chip's own profile in reports.
            diags.push(docs[0].error(
                "chip.name",
                "a profile that extends another must give its own chip.name ([chip] name = \"...\")",
            ));
        }
        if !diags.is_empty() {
            return Err(Error::Config(diags));
        }
        Ok(ProfileFile {
            path: path.to_path_buf(),
            sha256: inherit::digest(&chain),
            extends: docs[1..].iter().map(|d| d.path.clone()).collect(),
            profile,
        })
    }

    /// This profile in NPU compute mode `name`, or `None` if the profile has no such mode.
    pub fn in_mode(&self, name: &str) -> Option<ChipProfile> {
        let mode = self.npu.as_ref()?.modes.iter().find(|m| m.name == name)?.clone();
        let mut p = self.clone();
        let npu = p.npu.as_mut().expect("checked above");
        npu.peak_tops_int8 = mode.peak_tops_int8.or(npu.peak_tops_int8);
        npu.peak_tflops_fp16 = mode.peak_tflops_fp16;
        if let Some(ghz) = mode.cpu_clock_ghz {
            p.cpu.clusters.iter_mut().for_each(|c| c.clock_ghz = ghz);
        }
        p.chip.notes = Some(format!("NPU mode {name}. {}", p.chip.notes.unwrap_or_default()));
        Some(p)
    }

    pub fn display_name(&self) -> &str {
        self.chip.display_name.as_deref().unwrap_or(&self.chip.name)
    }

    /// Every value-level problem, in one pass; `docs` are the files it was built from, its own
    /// first, so each problem names the file that wrote the field.
    fn validate(&self, docs: &[&Document]) -> Vec<Diagnostic> {
        let mut v = Validator { docs, diags: Vec::new() };
        if self.schema_version != SCHEMA_VERSION {
            v.err("schema_version", format!("expected {SCHEMA_VERSION}, found {}", self.schema_version));
        }
        if !crate::config::is_identifier(&self.chip.name) {
            v.err("chip.name", "expected a short identifier of a-z, 0-9, '-' or '_'");
        }
        if self.sources.is_empty() {
            v.err("sources", "cite at least one source for the profile's figures");
        }
        if let Some(npu) = &self.npu {
            v.at_least("npu.cores", npu.cores.unwrap_or(1) as f64, 1.0);
            v.at_least("npu.compute_units", npu.compute_units.unwrap_or(1) as f64, 1.0);
            v.positive("npu.peak_tops_int8", npu.peak_tops_int8);
            v.positive("npu.peak_tflops_fp16", npu.peak_tflops_fp16);
            v.positive("npu.clock_mhz", npu.clock_mhz);
            v.positive("npu.sram_bytes", npu.sram_bytes.map(|b| b as f64));
            v.positive("npu.layer_overhead_us", npu.layer_overhead_us);
            v.positive("npu.utilization", npu.utilization);
            if npu.utilization.is_some_and(|u| u > 1.0) {
                v.err("npu.utilization", "must be a share of the efficiencies, at most 1");
            }
            for (i, m) in npu.modes.iter().enumerate() {
                v.positive(&format!("npu.modes.{i}.peak_tops_int8"), m.peak_tops_int8);
                v.positive(&format!("npu.modes.{i}.peak_tflops_fp16"), m.peak_tflops_fp16);
                v.positive(&format!("npu.modes.{i}.cpu_clock_ghz"), m.cpu_clock_ghz);
            }
        }
        for (i, c) in self.cpu.clusters.iter().enumerate() {
            v.at_least(&format!("cpu.clusters.{i}.cores"), c.cores as f64, 1.0);
            v.positive(&format!("cpu.clusters.{i}.clock_ghz"), Some(c.clock_ghz));
        }
        v.positive("memory.dram_bytes", self.memory.dram_bytes.map(|b| b as f64));
        v.positive("memory.dram_bandwidth_gbps", self.memory.dram_bandwidth_gbps);
        v.positive("memory.host_link_gbps", self.memory.host_link_gbps);
        v.positive("memory.on_chip_gbps", self.memory.on_chip_gbps);
        if self.memory.has_dram_in_overhead() {
            if self.memory.dram_bandwidth_gbps.is_some() {
                v.err("memory.dram_in_overhead", "contradicts memory.dram_bandwidth_gbps: with a bandwidth, DRAM time is costed on its own (a board that finds its chip's bandwidth sets dram_in_overhead = false and recalibrates npu.layer_overhead_us, which held the DRAM time)");
            }
            if self.memory.host_link_gbps.is_some() {
                v.err("memory.dram_in_overhead", "contradicts memory.host_link_gbps: a card's transfers cross its link, which is costed on its own");
            }
            if self.npu.as_ref().and_then(|n| n.layer_overhead_us).is_none() {
                v.err(
                    "memory.dram_in_overhead",
                    "needs a calibrated npu.layer_overhead_us to stand for the transfers",
                );
            }
        }
        if let Some(p) = &self.power {
            v.positive("power.typical_w", p.typical_w);
            v.positive("power.max_w", p.max_w);
            v.positive("power.tops_per_w_int8", p.tops_per_w_int8);
            v.positive("power.idle_w", p.idle_w);
            if p.idle_w.is_some() && !self.sources.contains_key("thermal_fit") {
                v.err(
                    "power.idle_w",
                    "is a measured figure: cite its measurement in [sources] as `thermal_fit` (edgecert thermal fit writes both)",
                );
            }
            if let (Some(t), Some(m)) = (p.typical_w, p.max_w) {
                if t > m {
                    v.err("power.typical_w", format!("typical power {t} W exceeds max_w {m} W"));
                }
            }
        }
        if let Some(t) = &self.thermal {
            v.positive("thermal.resistance_c_per_w", t.resistance_c_per_w);
            v.positive("thermal.time_constant_s", t.time_constant_s);
            if let (Some(th), Some(cr)) = (t.throttle_c, t.critical_c) {
                if th > cr {
                    v.err("thermal.throttle_c", format!("throttle point {th} °C is above critical {cr} °C"));
                }
            }
        }
        if let Some(f) = &self.fidelity {
            let max = crate::vocab::SystematicError::MAX;
            if !(0.0..max).contains(&f.latency_error) {
                v.err(
                    "fidelity.latency_error",
                    format!("holds {}: expected a relative error in [0, {max})", f.latency_error),
                );
            }
            if f.scored_rows < FIDELITY_MIN_ROWS {
                v.err("fidelity.scored_rows", format!("{} scored rows: a chip's own latency error needs {FIDELITY_MIN_ROWS}; below that the cross-chip figure stands (leave [fidelity] out)", f.scored_rows));
            }
        }
        self.operators.validate(&mut v);
        self.validate_calibrated(&mut v);
        v.diags
    }
}

impl OperatorTable {
    fn validate(&self, v: &mut Validator<'_>) {
        let mut seen = HashSet::new();
        for (i, op) in self.supported.iter().enumerate() {
            let field = format!("operators.supported.{i}");
            if !is_op_name(op) {
                v.err(&field, format!("`{op}` is not an ONNX operator name (expected e.g. `Conv`)"));
            } else if !seen.insert(op.as_str()) {
                v.err(&field, format!("duplicate operator `{op}`"));
            }
        }
        if self.dtypes.is_empty() {
            v.err("operators.dtypes", "list the data types the operators accept");
        }
        for (op, limits) in &self.limits {
            let base = format!("operators.limits.{op}");
            if !seen.contains(op.as_str()) {
                v.err(&base, format!("limits given for `{op}`, which is not in operators.supported"));
            }
            for (name, range) in [("kernel", limits.kernel), ("stride", limits.stride), ("pad", limits.pad)] {
                if let Some([lo, hi]) = range {
                    if lo > hi {
                        v.err(&format!("{base}.{name}"), format!("range [{lo}, {hi}] is empty (min > max)"));
                    }
                }
            }
        }
    }

    /// The limits of `op` if it is supported at all.
    pub fn lookup(&self, op: &str) -> Option<OpLimits> {
        if !self.supported.iter().any(|s| s == op) {
            return None;
        }
        Some(self.limits.get(op).cloned().unwrap_or_default())
    }

    pub fn dtypes_for(&self, limits: &OpLimits) -> Vec<DType> {
        limits.dtypes.clone().unwrap_or_else(|| self.dtypes.clone())
    }
}

struct Validator<'a> {
    docs: &'a [&'a Document],
    diags: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn err(&mut self, field: &str, message: impl Into<String>) {
        self.diags.push(inherit::owner(self.docs, field).error(field, message));
    }

    /// A positive, finite figure, and not vanishingly small: no figure of a chip is below
    /// [`SMALLEST_FIGURE`] in its unit, and a rate that small would make a time infinite.
    fn positive(&mut self, field: &str, value: Option<f64>) {
        if let Some(x) = value {
            if !(x >= SMALLEST_FIGURE && x.is_finite()) {
                // Scientific notation where plain decimals would run to hundreds of digits.
                let found = if x != 0.0 && x.abs() < 1e-6 { format!("{x:e}") } else { format!("{x}") };
                let message =
                    format!("must be a positive number of at least {SMALLEST_FIGURE:e}, found {found}");
                self.err(field, message);
            }
        }
    }

    fn at_least(&mut self, field: &str, value: f64, min: f64) {
        if value < min {
            self.err(field, format!("must be at least {min}, found {value}"));
        }
    }
}

fn is_op_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Every `*.toml` in a folder, sorted by file name so runs are deterministic.
pub fn load_dir(dir: &Path) -> Result<Vec<ProfileFile>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::Usage(format!("no chip profiles (*.toml) in {}", dir.display())));
    }
    paths.iter().map(|p| ChipProfile::load(p)).collect()
}

#[cfg(test)]
mod tests;
