//! Backends replay a golden set through a model and observe it: outputs for accuracy, latency
//! samples for timing. `emulated` times with the chip cost model; `host` times this machine's
//! CPU for real. Outputs are real inference in both, and do not depend on the chip profile, so
//! they are computed once per (model, golden set) and reused across profiles.

use std::time::Instant;

mod soak;
pub use soak::{soak_run, SoakPlan, SAMPLE_PERIOD_S};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::emulator::Estimate;
use crate::engine::{LoadedModel, Tensor};
use crate::golden::GoldenSet;
use crate::power::{PowerSource, BRACKET_TIMEOUT};
use crate::vocab::{MeteredWindow, Observed, Result, Scenarios, TimedOutputCheck, Timing, Unobserved};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Real inference on the host for outputs; latency from the chip cost model.
    Emulated,
    /// Real inference on the host for outputs and wall-clock latency of this machine's CPU.
    Host,
    /// A device behind `edgecert agent` (`--device ADDR:PORT`): its own outputs and clock.
    Remote,
    /// A vendor's command-line runtime described by `--adapter ADAPTER.toml`.
    Exec,
}

pub use crate::vocab::Basis;

/// Samples in flight per worker thread: the replay runs a window of samples in parallel, hands
/// their reductions on in order, and only then decodes the next window.
const WINDOW_PER_THREAD: usize = 16;

/// The models a golden replay runs each sample through.
#[derive(Clone, Copy)]
pub struct ReplayModels<'m> {
    pub compressed: &'m dyn LoadedModel,
    /// The FP32 reference, when there is one to run (its contributions may come from the cache).
    pub reference: Option<&'m dyn LoadedModel>,
    /// The compressed model on a second engine (`certify --cross-check`).
    pub cross_check: Option<&'m dyn LoadedModel>,
}

/// One sample's outputs from each model that ran.
pub struct SampleOutputs {
    pub compressed: Vec<Tensor>,
    pub reference: Option<Vec<Tensor>>,
    pub cross_check: Option<Vec<Tensor>>,
}

/// Replays samples `samples` of the golden set (all of them, or a sample shard's range) through
/// the models, samples in parallel (each engine call runs one
/// thread): each sample is decoded, run through every model, and the outputs go straight to
/// `reduce`; its small per-sample result is handed to `consume`, in sample order, a window at
/// a time. Memory is the models plus one window of samples, whatever the size of the set:
/// nothing per sample outlives its window except what `consume` keeps. `on_sample` is called
/// as each sample finishes (a progress bar counts them).
pub fn replay_pairs<T: Send>(
    models: ReplayModels<'_>,
    golden: &GoldenSet,
    samples: std::ops::Range<usize>,
    reduce: &(dyn Fn(usize, SampleOutputs) -> std::result::Result<T, String> + Sync),
    consume: &mut dyn FnMut(T) -> std::result::Result<(), String>,
    on_sample: &(dyn Fn() + Sync),
) -> std::result::Result<(), String> {
    let window =
        (WINDOW_PER_THREAD * rayon::current_num_threads().max(1)).max(models.compressed.preferred_batch());
    for start in samples.clone().step_by(window) {
        let indices = start..(start + window).min(samples.end);
        let inputs: Vec<Vec<Tensor>> = indices
            .clone()
            .into_par_iter()
            .map(|i| golden.sample(i).map(|x| vec![x]).map_err(|e| e.to_string()))
            .collect::<std::result::Result<_, String>>()?;
        // The compressed model takes the window at once: a runtime command runs it as a batch.
        let compressed = models.compressed.run_batch(&inputs).map_err(|e| {
            format!("the compressed model on samples {}..{}: {e}", indices.start, indices.end)
        })?;
        let reduced: Vec<T> = indices
            .into_par_iter()
            .zip(inputs.into_par_iter().zip(compressed))
            .map(|(i, (input, compressed))| {
                let run = |model: &dyn LoadedModel, which: &str| {
                    model.run(&input).map_err(|e| format!("the {which} on sample {i}: {e}"))
                };
                let outputs = SampleOutputs {
                    compressed,
                    reference: models.reference.map(|r| run(r, "FP32 reference")).transpose()?,
                    cross_check: models
                        .cross_check
                        .map(|x| run(x, "compressed model on the cross-check engine"))
                        .transpose()?,
                };
                let reduced = reduce(i, outputs);
                on_sample();
                reduced
            })
            .collect::<std::result::Result<_, String>>()?;
        reduced.into_iter().try_for_each(&mut *consume)?;
    }
    Ok(())
}

/// Minimum timed runs on the host, so p99 can be bounded (MLPerf's minimum for p99 is 662).
pub const HOST_MIN_RUNS: usize = 700;
const HOST_WARMUP_RUNS: usize = 5;

/// With a power meter, the timed run lasts at least this long, so a 10 Hz meter gives the
/// samples the power check needs.
pub const METERED_MIN_SECONDS: f64 = 2.0;

/// Inputs held decoded for a metered window, at most: the window must hold inference alone
/// (decoding would add its watts and seconds to every inference's energy).
const METERED_INPUT_BYTES: usize = 64 << 20;

/// Single-stream latency (and how long the run took): single inferences one at a time (never
/// in parallel: concurrent runs would time each other), for at least [`HOST_MIN_RUNS`]
/// queries, the whole set, and `min_duration_s` seconds (MLPerf asks 600), each timed by the model's own clock ([`LoadedModel::run_timed`]:
/// the wall clock here, a device's for a remote one). Without a meter every sample is decoded
/// just before its run; with one, a bounded set of samples is decoded first and cycled, the
/// meter reads beside the run, which then lasts at least [`METERED_MIN_SECONDS`], and a meter
/// that fails leaves the latencies whole and says why it gave no power.
pub fn time_single_stream(
    model: &dyn LoadedModel,
    golden: &GoldenSet,
    meter: Option<&dyn PowerSource>,
    min_duration_s: f64,
    what: String,
) -> Result<(Timing, f64)> {
    let running = meter.map(|m| m.begin());
    for i in 0..HOST_WARMUP_RUNS.min(golden.len()) {
        model.run_timed(&[golden.sample(i)?])?;
    }
    let predecoded = match meter {
        Some(_) => predecode(golden, METERED_INPUT_BYTES)?,
        None => Vec::new(),
    };
    let meter_ok = running.as_ref().and_then(|r| r.as_ref().ok());
    // The trace must bracket the window: a sample before it starts and one after it ends.
    meter_ok.inspect(|r| r.wait_for_sample_after(0.0, BRACKET_TIMEOUT));
    let window_start = meter_ok.map(|r| r.now_s());
    let started = Instant::now();
    let min_seconds = if meter.is_some() { METERED_MIN_SECONDS.max(min_duration_s) } else { min_duration_s };
    let mut latencies_ms = Vec::with_capacity(HOST_MIN_RUNS);
    let mut i = 0;
    let batch = model.preferred_batch().max(1);
    while i < golden.len().max(HOST_MIN_RUNS) || started.elapsed().as_secs_f64() < min_seconds {
        let inputs = (i..i + batch)
            .map(|j| match predecoded.get(j % predecoded.len().max(1)) {
                Some(input) => Ok(vec![input.clone()]),
                None => golden.sample(j % golden.len()).map(|x| vec![x]),
            })
            .collect::<Result<Vec<_>>>()?;
        latencies_ms.extend(model.run_timed_batch(&inputs)?.into_iter().map(|(_, ms)| ms));
        i += batch;
    }
    let window = window_start.map(|from| (from, from + started.elapsed().as_secs_f64()));
    if let (Some(Ok(r)), Some((_, to))) = (running.as_ref(), window) {
        r.wait_for_sample_after(to, BRACKET_TIMEOUT);
    }
    let power = running.map(|running| match (running.and_then(|r| r.finish()), window) {
        (Ok(trace), Some((from_s, to_s))) => Observed::Observed {
            value: MeteredWindow { trace, from_s, to_s, inferences: latencies_ms.len() },
        },
        (Err(e), _) => Observed::unavailable(e.to_string()),
        (Ok(_), None) => Observed::unavailable("the meter's clock was not read"),
    });
    let what = match predecoded.len() {
        0 => what,
        n => format!("{what}; metered window cycles {n} samples decoded before it"),
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok((
        Timing {
            latencies_ms,
            basis: Basis::Measured,
            what,
            power,
            scenarios: None,
            systematic_error: None,
            soak: None,
        },
        seconds,
    ))
}

/// The first samples of the set, decoded, up to `budget` bytes (at least one).
fn predecode(golden: &GoldenSet, budget: usize) -> Result<Vec<Tensor>> {
    let mut inputs = Vec::new();
    let mut bytes = 0;
    for i in 0..golden.len() {
        let input = golden.sample(i)?;
        bytes += input.len() * 4;
        if bytes > budget && !inputs.is_empty() {
            break;
        }
        inputs.push(input);
    }
    Ok(inputs)
}

/// The compressed model, loaded on first use: the emulated backend never runs it for timing.
pub trait ModelSource {
    fn loaded(&self) -> std::result::Result<&dyn LoadedModel, String>;
    /// Milliseconds the first load of the model took in this process, and a fresh load now.
    fn load_times_ms(&self) -> std::result::Result<(f64, f64), String>;
}

/// Runs of one sample in the anti-caching run (as many of the set run beside them).
pub const REPEATED_RUNS: usize = 200;
/// Runs of the set, then of the repeated sample, in one round of the anti-caching run.
const REPEAT_BLOCK: usize = 20;

/// A set sample no runtime has seen: every value nudged by about one part in a million, in a
/// pattern fixed by `round`. A runtime answering from a cache keyed on its inputs (filled by
/// the accuracy run, which sent every sample of the set) must compute it, while its cost (the
/// same shapes, the same operators) stays the sample's.
pub fn unseen(mut x: Tensor, round: usize) -> Tensor {
    let mut state = (round as u64) ^ 0x9E37_79B9_7F4A_7C15;
    x.mapv_inplace(|v| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let nudge = v.abs() * 1e-6 + 1e-7;
        if state >> 63 == 1 {
            v + nudge
        } else {
            v - nudge
        }
    });
    x
}

/// MLPerf's TEST04, paired: rounds of set samples, then one sample repeated back to back, in
/// one call of the runtime each (a command-line runtime starts a process per call, and
/// processes differ 2× on a sub-millisecond model: comparing across them finds caching that
/// is not there). Every input is made afresh by `repeated` or `set(i)` before its round, as
/// the single-stream run decodes its samples. Returns the repeated sample's median and the
/// set's latencies from the same rounds, sorted.
pub fn repeated_sample_run(
    model: &dyn LoadedModel,
    repeated: &dyn Fn() -> Result<Tensor>,
    set: &dyn Fn(usize) -> Result<Tensor>,
    runs: usize,
) -> Result<(f64, Vec<f64>)> {
    let block = (model.preferred_batch() / 2).max(REPEAT_BLOCK);
    let (mut repeated_ms, mut set_ms) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    while repeated_ms.len() < runs {
        let n = block.min(runs - repeated_ms.len());
        let first = set_ms.len();
        let inputs = (first..first + n)
            .map(|i| set(i).map(|x| vec![x]))
            .chain((0..n).map(|_| repeated().map(|x| vec![x])))
            .collect::<Result<Vec<_>>>()?;
        let ms: Vec<f64> = model.run_timed_batch(&inputs)?.into_iter().map(|(_, ms)| ms).collect();
        set_ms.extend_from_slice(&ms[..n]);
        repeated_ms.extend_from_slice(&ms[n..]);
    }
    set_ms.sort_by(f64::total_cmp);
    let [repeated_median_ms] = crate::vocab::percentiles(&repeated_ms, [0.5]);
    Ok((repeated_median_ms, set_ms))
}

/// Offline throughput: every sample of the set (at least [`HOST_MIN_RUNS`]) through the model
/// on every worker thread at once, a window at a time; only the inference is timed.
pub fn offline_throughput(model: &dyn LoadedModel, golden: &GoldenSet) -> Result<(usize, f64)> {
    let total = golden.len().max(HOST_MIN_RUNS);
    let window = WINDOW_PER_THREAD * rayon::current_num_threads().max(1);
    let mut seconds = 0.0;
    for start in (0..total).step_by(window) {
        let inputs: Vec<Tensor> = (start..(start + window).min(total))
            .map(|i| golden.sample(i % golden.len()))
            .collect::<Result<_>>()?;
        let clock = Instant::now();
        inputs.par_iter().try_for_each(|x| model.run(std::slice::from_ref(x)).map(drop))?;
        seconds += clock.elapsed().as_secs_f64();
    }
    Ok((total, seconds))
}

/// What a backend may use to time a model on a chip.
pub struct TimingInput<'a> {
    pub model: &'a dyn ModelSource,
    pub golden: &'a GoldenSet,
    pub estimate: &'a Estimate,
    /// Seed for anything random, derived from the input digests.
    pub seed: u64,
    /// A power meter to read beside the timed run, where the backend can.
    pub power_meter: Option<&'a dyn PowerSource>,
    /// The shortest single-stream run, in seconds (`--min-duration`).
    pub min_duration_s: f64,
    /// A sustained-load run after the timed one (`--soak`), where the backend measures.
    pub soak: Option<SoakPlan<'a>>,
}

/// A way of observing a model's latency on a chip. Outputs for accuracy come from
/// [`replay_pairs`] whatever the backend.
pub trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// The basis of the latencies it observes.
    fn basis(&self) -> Basis;
    /// Whether its figures depend on the chip profile (emulated) or only on the model (host).
    fn per_profile(&self) -> bool;
    /// `Err` says why no figure could be observed (e.g. the profile lacks a number the cost
    /// model needs, or the model could not run).
    fn time(&self, input: &TimingInput<'_>) -> std::result::Result<Timing, Unobserved>;
    /// Whether the golden replay must run before timing (a device compares its timed outputs
    /// with the replay's).
    fn replays_first(&self) -> bool {
        false
    }
}

pub struct EmulatedBackend;
pub struct HostBackend;

impl Backend for EmulatedBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Emulated
    }

    fn basis(&self) -> Basis {
        Basis::Emulated
    }

    fn per_profile(&self) -> bool {
        true
    }

    fn time(&self, input: &TimingInput<'_>) -> std::result::Result<Timing, Unobserved> {
        crate::emulator::time_emulated(input.estimate, input.seed).ok_or_else(|| Unobserved {
            basis: Basis::Emulated,
            reason: format!(
                "the cost model cannot predict latency: {}",
                input.estimate.latency_unknown.clone().unwrap_or_default()
            ),
            profile_gap: input.estimate.latency_profile_gap.map(str::to_string),
        })
    }
}

impl Backend for HostBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Host
    }

    fn basis(&self) -> Basis {
        Basis::Measured
    }

    fn per_profile(&self) -> bool {
        false
    }

    /// Offline: every core busy at once; compliance runs reported, not enforced.
    fn time(&self, input: &TimingInput<'_>) -> std::result::Result<Timing, Unobserved> {
        time_measured(input, "host CPU, one inference at a time".into(), true, &|model, _| {
            let (inferences, seconds) = offline_throughput(model, input.golden)?;
            Ok((inferences, seconds, rayon::current_num_threads()))
        })
    }
}

/// A runtime outside this process: a device behind an edgecert agent (`Remote`) or a vendor's
/// command-line runtime driven by an adapter (`Exec`). Its outputs feed the accuracy checks and
/// its own clock (or the invocation's wall clock, as the adapter says) the latency.
pub struct DeviceBackend {
    /// `Remote` or `Exec`.
    pub kind: BackendKind,
    /// How the report names the target: the device, its engine and the agent's address, or
    /// the runtime, its version and how it is timed.
    pub what: String,
}

impl Backend for DeviceBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn basis(&self) -> Basis {
        Basis::Measured
    }

    fn per_profile(&self) -> bool {
        false
    }

    fn replays_first(&self) -> bool {
        true
    }

    /// The runtime runs one inference at a time, so offline throughput is the single-stream
    /// run's inferences per second of its own time; compliance runs are enforced.
    fn time(&self, input: &TimingInput<'_>) -> std::result::Result<Timing, Unobserved> {
        let what = match self.kind {
            BackendKind::Remote => {
                format!("device {}, one inference at a time, timed on the device", self.what)
            }
            _ => format!("runtime command {}", self.what),
        };
        time_measured(input, what, false, &serial_offline)
    }
}

/// Offline throughput of a runtime that runs one inference at a time: the single-stream run's
/// inferences per second of its own time.
fn serial_offline(_: &dyn LoadedModel, timing: &Timing) -> Result<(usize, f64, usize)> {
    let seconds = timing.latencies_ms.iter().sum::<f64>() / 1e3;
    Ok((timing.latencies_ms.len(), seconds, 1))
}

/// Offline throughput of a loaded model after its single-stream run: (inferences, seconds,
/// threads).
type Offline<'a> = dyn Fn(&dyn LoadedModel, &Timing) -> Result<(usize, f64, usize)> + 'a;

/// The measured scenarios on a model that really runs: single-stream latency (with the meter,
/// if any), load times, offline throughput, and the compliance runs.
/// `loads_here`: the model runs in this process, whose load times are measured here; else the
/// runtime reports its own, if it can.
fn time_measured(
    input: &TimingInput<'_>,
    what: String,
    loads_here: bool,
    offline: &Offline<'_>,
) -> std::result::Result<Timing, Unobserved> {
    let compliance_enforced = !loads_here;
    let unobserved = |reason: String| Unobserved::measured(reason);
    let model = input.model.loaded().map_err(|e| unobserved(format!("the model could not be run: {e}")))?;
    let (mut timing, single_stream_s) =
        time_single_stream(model, input.golden, input.power_meter, input.min_duration_s, what)
            .map_err(|e| unobserved(e.to_string()))?;
    let load_times = match loads_here {
        true => Some(input.model.load_times_ms().map_err(unobserved)?),
        false => model.device_load_times_ms(),
    };
    let (first_load_ms, reload_ms) = (load_times.map(|t| t.0), load_times.map(|t| t.1));
    let (offline_inferences, offline_seconds, offline_threads) =
        offline(model, &timing).map_err(|e| unobserved(e.to_string()))?;
    let golden = input.golden;
    let first = || golden.sample(0);
    // The set's samples after the repeated one, cycling (all of them, in a set of one), each
    // made unlike anything the accuracy run sent.
    let set = |i: usize| {
        golden.sample((1 + i % golden.len().saturating_sub(1).max(1)) % golden.len()).map(|x| unseen(x, i))
    };
    let (repeated_sample_median_ms, repeat_round_set_ms) =
        repeated_sample_run(model, &first, &set, REPEATED_RUNS).map_err(|e| unobserved(e.to_string()))?;
    let timed_outputs = model
        .timed_output_consistency()
        .map(|(compared, differing)| TimedOutputCheck { compared, differing });
    timing.soak = input.soak.map(|plan| match soak_run(model, golden, &plan, input.power_meter) {
        Ok(trace) => Observed::Observed { value: trace },
        Err(e) => Observed::unavailable(format!("the soak failed: {e}")),
    });
    timing.scenarios = Some(Scenarios {
        first_load_ms,
        reload_ms,
        offline_inferences,
        offline_seconds,
        offline_threads,
        repeated_sample_median_ms,
        repeat_round_set_ms,
        timed_outputs,
        compliance_enforced,
        single_stream_s,
        min_duration_s: input.min_duration_s,
    });
    Ok(timing)
}

impl BackendKind {
    /// The backend of this kind; a remote one is named after its device, an exec one after
    /// its runtime.
    pub fn backend(self, device: Option<String>) -> Box<dyn Backend> {
        let named = device.unwrap_or_else(|| "unnamed".into());
        match self {
            BackendKind::Emulated => Box::new(EmulatedBackend),
            BackendKind::Host => Box::new(HostBackend),
            kind @ (BackendKind::Remote | BackendKind::Exec) => Box::new(DeviceBackend { kind, what: named }),
        }
    }

    /// Whether a run on it keeps the device's outputs in a journal of its own (under the
    /// output folder, where a rerun resumes), so it cannot be split into sample shards.
    pub fn keeps_device_journal(self) -> bool {
        matches!(self, BackendKind::Remote | BackendKind::Exec)
    }

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Emulated => "emulated",
            BackendKind::Host => "host",
            BackendKind::Remote => "remote",
            BackendKind::Exec => "exec",
        }
    }

    /// What the certificate says about the figures this backend gives.
    pub fn note(self) -> &'static str {
        match self {
            BackendKind::Emulated => {
                "latency is EMULATED by edgecert's roofline cost model of the chip, not measured on it"
            }
            BackendKind::Host => "latency is MEASURED on the host CPU running edgecert, not on the chip",
            BackendKind::Remote => {
                "latency is MEASURED on the device behind an edgecert agent, and the compressed model's outputs are the device's own"
            }
            BackendKind::Exec => {
                "latency is MEASURED by a vendor runtime command (as its adapter says it reports time), and the compressed model's outputs are that runtime's"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::SystematicError;

    #[test]
    fn a_systematic_error_outside_zero_to_ten_is_refused() {
        let with_error = |relative| Timing {
            latencies_ms: vec![10.0; 1000],
            basis: Basis::Emulated,
            what: "test".into(),
            power: None,
            scenarios: None,
            systematic_error: Some(SystematicError { relative, source: "fidelity".into() }),
            soak: None,
        };
        for relative in [10.0, -0.1, f64::NAN, f64::INFINITY] {
            let e = with_error(relative).check_consistent().unwrap_err();
            assert!(e.starts_with("timing systematic_error.relative holds"), "{e}");
        }
        // From 1 on no verdict can pass, but the figure is a real error: it stands.
        for relative in [0.0, 1.0, 2.5] {
            assert_eq!(with_error(relative).check_consistent(), Ok(()));
        }
    }
}
