//! Checks turn observations into verdicts. The checks are declared as data ([`CheckKind`]); each
//! reads what it needs through [`Observations`], which the runner provides from whichever
//! backend ran: a check does not know which backend produced its observations, and a backend
//! does not know which checks will read them.

mod accuracy;
mod agreement;
mod latency;
mod physical;
mod record;
mod soak;
mod static_checks;

use serde::{Deserialize, Serialize};

use crate::emulator::Estimate;
use crate::golden::FamilyManifest;
use crate::metrics::{OutputStatistics, PRIMARY};
use crate::model::ModelInventory;
use crate::profile::ChipProfile;
use crate::vocab::{Basis, MeteredWindow, Observed, Outcome, SoakTrace, Timing, Unobserved};

pub use accuracy::{
    accuracy_floor_check, accuracy_vs_reference_check, cross_checked, EngineCrossCheck, PairedEvaluation,
};
pub use agreement::agreement_check;
pub use latency::{caching_suspected, latency_check};
pub use physical::{measured_power_check, power_check, thermal_check};
pub use record::{CheckRecord, CheckStatus};
pub use soak::{
    latency_under_heat, measured_thermal_check, AmbientCorrection, CLOCK_DROP_SHARE, STEADY_SLOPE_C_PER_MIN,
};
pub use static_checks::{memory_check, operator_check, size_check};

/// A check's outcome: the certificate's record of it.
pub type Verdict = CheckRecord;

/// Every check edgecert knows, in report order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Size,
    Operators,
    Memory,
    Latency,
    Power,
    Thermal,
    Accuracy,
    AccuracyVsFp32,
    AccuracyHardestSlice,
    OutputAgreement,
}

impl CheckKind {
    pub const ALL: [CheckKind; 10] = [
        CheckKind::Size,
        CheckKind::Operators,
        CheckKind::Memory,
        CheckKind::Latency,
        CheckKind::Power,
        CheckKind::Thermal,
        CheckKind::Accuracy,
        CheckKind::AccuracyVsFp32,
        CheckKind::AccuracyHardestSlice,
        CheckKind::OutputAgreement,
    ];

    /// The name used in check ids, filters and certificates.
    pub fn name(self) -> &'static str {
        match self {
            CheckKind::Size => "size",
            CheckKind::Operators => "operators",
            CheckKind::Memory => "memory",
            CheckKind::Latency => "latency",
            CheckKind::Power => "power",
            CheckKind::Thermal => "thermal",
            CheckKind::Accuracy => "accuracy",
            CheckKind::AccuracyVsFp32 => "accuracy_vs_fp32",
            CheckKind::AccuracyHardestSlice => "accuracy_hardest_slice",
            CheckKind::OutputAgreement => "output_agreement",
        }
    }

    pub fn from_name(name: &str) -> Option<CheckKind> {
        CheckKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Whether the check belongs in the plan of a golden set: the accuracy checks need a task
    /// metric (the hardest-slice one a named slice too); output agreement needs its limits.
    pub fn applies_to(self, family: &FamilyManifest) -> bool {
        let task = family.metric.kind.is_task();
        match self {
            CheckKind::Accuracy | CheckKind::AccuracyVsFp32 => task,
            CheckKind::AccuracyHardestSlice => task && family.metric.hardest_slice.is_some(),
            CheckKind::OutputAgreement => family.limits.agreement.is_some(),
            _ => true,
        }
    }

    /// Whether the check decides on the golden replay (and so a sample shard replays for it).
    pub fn reads_replay(self) -> bool {
        matches!(
            self,
            CheckKind::Accuracy
                | CheckKind::AccuracyVsFp32
                | CheckKind::AccuracyHardestSlice
                | CheckKind::OutputAgreement
        )
    }

    /// The unit of the measured value, also for a verdict that could not be reached.
    pub fn unit(self, family: &FamilyManifest) -> &'static str {
        match self {
            CheckKind::Size | CheckKind::Memory => "bytes",
            CheckKind::Operators => "nodes off the accelerator",
            CheckKind::Latency => "ms",
            CheckKind::Power => "W",
            CheckKind::Thermal => "°C",
            CheckKind::Accuracy => family.metric.kind.unit(),
            CheckKind::AccuracyVsFp32 | CheckKind::AccuracyHardestSlice => "ratio to FP32",
            CheckKind::OutputAgreement => "-",
        }
    }

    /// The basis of the check's figure when the backend is not consulted.
    pub fn basis(self, timing: Basis) -> Basis {
        match self {
            CheckKind::Size | CheckKind::Operators | CheckKind::Memory => Basis::Static,
            CheckKind::Latency => timing,
            CheckKind::Power | CheckKind::Thermal => Basis::Emulated,
            CheckKind::Accuracy
            | CheckKind::AccuracyVsFp32
            | CheckKind::AccuracyHardestSlice
            | CheckKind::OutputAgreement => Basis::Measured,
        }
    }
}

impl std::fmt::Display for CheckKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the checks of one (compressed model, golden set, chip) may read. The runner provides it,
/// observing lazily: a check that is filtered out costs nothing.
pub trait Observations {
    fn model(&self) -> &ModelInventory;
    fn family(&self) -> &FamilyManifest;
    fn profile(&self) -> &ChipProfile;
    /// The emulator's prediction for this model on this chip (placement, cost, energy).
    fn estimate(&self) -> &Estimate;
    /// Ambient temperature for the thermal model (°C).
    fn ambient_c(&self) -> f64;
    /// The basis latency figures have here (`emulated`, `measured`).
    fn timing_basis(&self) -> Basis;
    /// Single-inference latencies of the compressed model on the chip.
    fn timing(&self) -> Result<&Timing, Unobserved>;
    /// Both models' metric values on the golden set, paired; `Err` says why they are missing.
    fn accuracy(&self) -> Result<&PairedEvaluation, Unobserved>;
    /// How closely the compressed model's outputs follow FP32's, per output tensor.
    fn agreement(&self) -> Result<&[OutputStatistics], Unobserved>;
    /// The power meter's trace over the timed run, when a meter ran (`Err`: why it gave none).
    fn metered_power(&self) -> Option<Result<&MeteredWindow, Unobserved>> {
        None
    }
    /// The runtime the compressed model is replayed on, where known (`None`: tract, as runs
    /// recorded before it was kept).
    fn replay_engine(&self) -> Option<&str> {
        None
    }
    /// The compressed model's metric on a second engine, when the run cross-checks engines.
    fn accuracy_cross_check(&self) -> Option<&EngineCrossCheck> {
        None
    }
    /// The sustained-load run, when one was asked (`Err`: why it gave nothing); `None`: the
    /// thermal check runs the emulated thermal model.
    fn soak(&self) -> Option<Result<&SoakTrace, Unobserved>> {
        None
    }
    /// The ambient the operator stated and the worst case a measured temperature is moved to.
    fn ambient_correction(&self) -> AmbientCorrection {
        AmbientCorrection::default()
    }
}

/// The soak of a timing a soak was asked of, or why there is none.
pub fn soak_of(timing: &Timing) -> Result<&SoakTrace, Unobserved> {
    match &timing.soak {
        Some(soak) => soak.as_result(),
        None => Err(Unobserved::measured(format!("{} ran no soak", timing.what))),
    }
}

/// The metered window of a timing, or why there is none.
pub fn metered_window(timing: &Timing) -> Result<&MeteredWindow, Unobserved> {
    match &timing.power {
        Some(power) => power.as_result(),
        None => Err(Unobserved::measured(format!("{} meters no power", timing.what))),
    }
}

/// Runs one check on the observations.
pub fn evaluate(kind: CheckKind, obs: &dyn Observations) -> Verdict {
    let limits = &obs.family().limits;
    match kind {
        CheckKind::Size => size_check(obs.model(), limits.size_bytes),
        CheckKind::Operators => operator_check(obs.model(), &obs.estimate().placement, obs.replay_engine()),
        CheckKind::Memory => memory_check(obs.model(), obs.profile()),
        CheckKind::Latency => latency(obs),
        CheckKind::Power => match obs.metered_power() {
            Some(window) => measured_power_check(window, obs.profile()),
            None => power_check(obs.estimate(), obs.profile(), limits.operating_rate_hz()),
        },
        CheckKind::Thermal => match obs.soak() {
            Some(Ok(trace)) => measured_thermal_check(trace, obs.profile(), obs.ambient_correction()),
            Some(Err(why)) => Verdict::unobserved(CheckKind::Thermal, "°C", why),
            None => {
                thermal_check(obs.estimate(), obs.profile(), limits.operating_rate_hz(), obs.ambient_c()).0
            }
        },
        CheckKind::Accuracy | CheckKind::AccuracyVsFp32 | CheckKind::AccuracyHardestSlice => {
            accuracy(kind, obs)
        }
        CheckKind::OutputAgreement => agreement(obs),
    }
}

fn agreement(obs: &dyn Observations) -> Verdict {
    let family = obs.family();
    let limits = family.limits.agreement.clone().unwrap_or_default();
    match obs.agreement() {
        Ok(outputs) => agreement_check(outputs, &limits),
        Err(why) => Verdict::unobserved(CheckKind::OutputAgreement, "-", why),
    }
}

fn latency(obs: &dyn Observations) -> Verdict {
    let limits = &obs.family().limits;
    let Some(budget) = limits.latency_p99_ms else {
        return Verdict::inconclusive(
            CheckKind::Latency,
            "ms",
            obs.timing_basis(),
            "the golden set states no latency budget (limits.latency_p99_ms)",
        );
    };
    let decide = |timing: &Timing| latency_check(timing, budget, limits.confidence);
    match obs.timing() {
        Ok(timing) => match &timing.soak {
            Some(Observed::Observed { value }) => latency_under_heat(decide(timing), timing, value, decide),
            Some(Observed::Unavailable { reason, .. }) => {
                let mut v = decide(timing);
                v.findings.push(format!("no hot p99: {reason}"));
                v
            }
            None => decide(timing),
        },
        Err(why) => Verdict::unobserved(CheckKind::Latency, "ms", why),
    }
}

fn accuracy(kind: CheckKind, obs: &dyn Observations) -> Verdict {
    let family = obs.family();
    let paired = match obs.accuracy() {
        Ok(p) => p,
        Err(why) => return Verdict::unobserved(kind, kind.unit(family), why),
    };
    let limits = &family.limits;
    let (Some(abs_floor), Some(rel_floor)) = (limits.metric_abs_floor, limits.metric_rel_floor) else {
        let why = "the golden set states no metric floors (limits.metric_abs_floor, limits.metric_rel_floor)";
        return Verdict::inconclusive(kind, kind.unit(family), Basis::Measured, why);
    };
    let decide = |paired: &PairedEvaluation| match kind {
        CheckKind::Accuracy => accuracy_floor_check(paired, abs_floor),
        CheckKind::AccuracyVsFp32 => accuracy_vs_reference_check(paired, rel_floor, PRIMARY, kind),
        _ => {
            let slice = family.metric.hardest_slice.as_deref().unwrap_or_default();
            let key = format!("slice.{slice}");
            accuracy_vs_reference_check(paired, rel_floor, &key, kind)
        }
    };
    let verdict = decide(paired);
    match obs.accuracy_cross_check() {
        Some(x) => cross_checked(verdict, decide(&x.paired), x),
        None => verdict,
    }
}

impl CheckRecord {
    fn new(
        name: CheckKind,
        verdict: Outcome,
        unit: &str,
        basis: Basis,
        reason: impl Into<String>,
    ) -> Verdict {
        CheckRecord {
            name,
            status: CheckStatus::Ran,
            verdict,
            measured: None,
            limit: None,
            unit: unit.to_string(),
            basis,
            ci: None,
            systematic_error: None,
            profile_gap: None,
            reason: reason.into(),
            findings: Vec::new(),
            samples: None,
            samples_to_decide: None,
        }
    }

    /// A check that cannot be decided because an input figure is missing.
    pub fn inconclusive(name: CheckKind, unit: &str, basis: Basis, reason: impl Into<String>) -> Verdict {
        CheckRecord::new(name, Outcome::Inconclusive, unit, basis, reason)
    }

    /// A check the chip profile cannot decide: it lacks `field` (as its TOML spells it).
    pub fn lacking(
        name: CheckKind,
        unit: &str,
        basis: Basis,
        field: &str,
        reason: impl Into<String>,
    ) -> Verdict {
        let mut v = CheckRecord::inconclusive(name, unit, basis, reason);
        v.profile_gap = Some(field.to_string());
        v
    }

    /// A check whose observation could not be made: INCONCLUSIVE with the reason, and with the
    /// profile's gap when that was the cause.
    pub fn unobserved(name: CheckKind, unit: &str, why: Unobserved) -> Verdict {
        let mut v = CheckRecord::inconclusive(name, unit, why.basis, why.reason);
        v.profile_gap = why.profile_gap;
        v
    }

    /// A check stopped by an internal error: INCONCLUSIVE, marked as an error, never lost.
    pub fn error(name: CheckKind, unit: &str, basis: Basis, error: &str) -> Verdict {
        let mut v = CheckRecord::inconclusive(name, unit, basis, format!("internal error: {error}"));
        v.status = CheckStatus::Error;
        v
    }

    fn with_values(mut self, measured: f64, limit: Option<f64>) -> Verdict {
        self.measured = Some(measured);
        self.limit = limit;
        self
    }
}
