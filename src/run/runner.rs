//! The runner executes a plan's selected checks in plan order and tells reporters what happens.
//!
//! Observations are made lazily and shared: the golden replay and the paired metric once per
//! family (they do not depend on the chip), the emulator's estimate and emulated latencies once
//! per (family, chip), host latencies once per family. A filtered-out check costs nothing. A panic
//! anywhere under a check (its own code, the metric, the engine) becomes that check's error;
//! every (family, chip) with a selected check gets a certificate that lists what did not run.

use std::cell::{OnceCell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

use ndarray::Axis;

use super::cache::ReferenceCache;
use super::certificate::{issue, UnitRecord};
use super::events::{CrossCheckValues, Event, Observation, Reporter, RunSummary, TaskValues};
use super::inputs::{Family, Inputs};
use super::options::{BackendTarget, RunOptions};
use super::plan::{Plan, PlannedCheck};
use super::replay::Replay;
use super::shard::Shard;
use crate::backend::{replay_pairs, Backend, ModelSource, ReplayModels, SampleOutputs, TimingInput};
use crate::certificate::observations::{
    append_contributions, append_outputs, CrossCheckRecord, ObservationRecord, ReplayRecord,
    OBSERVATIONS_FORMAT,
};
use crate::certificate::schema::{DeviceEnvironment, NotRunReason};
use crate::checks::{
    self, AmbientCorrection, CheckKind, EngineCrossCheck, Observations, PairedEvaluation, Verdict,
};
use crate::device::Sensors;
use crate::emulator::{self, Estimate};
use crate::engine::{counterpart, select, with_quantized_io, Engine, LoadedModel, Tensor};
use crate::golden::FamilyManifest;
use crate::metrics::{compare_outputs, Contributions, OutputSamples, OutputStatistics};
use crate::model::ModelInventory;
use crate::profile::{ChipProfile, ProfileFile};
use crate::run::progress::ReplayProgress;
use crate::vocab::hash::seed_from as seed;
use crate::vocab::{Basis, MeteredWindow, Observed, Result, SoakTrace, Timing, Unobserved};
use serde::{Deserialize, Serialize};

/// One sample shard's replay of one family: samples `first..end` of `total`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayPart {
    pub family: String,
    pub first: usize,
    pub end: usize,
    pub total: usize,
    pub replay: Observed<ReplayRecord>,
}

/// Sample shard `shard`'s part of the golden replay of every family with a selected check that
/// reads it: samples `⌊(K−1)·n/N⌋..⌊K·n/N⌋` through every model, reduced as in a whole run.
pub fn replay_parts(
    inputs: &Inputs,
    plan: &Plan,
    options: &RunOptions,
    shard: Shard,
) -> Result<Vec<ReplayPart>> {
    let runner = Runner::new(inputs, options)?;
    let _quiet = QuietPanics::install();
    let mut parts = Vec::new();
    for (f, family) in inputs.families.iter().enumerate() {
        let reads_replay = plan
            .checks
            .iter()
            .filter(|c| c.selected() && c.id.family == family.golden.name())
            .any(|c| c.id.check.reads_replay());
        if !reads_replay {
            continue;
        }
        let total = family.golden.len();
        let range = shard.sample_range(total);
        let replay = guarded(|| runner.replay_record(f, range.clone()))
            .unwrap_or_else(Err)
            .map(|(value, _)| Observed::Observed { value })
            .unwrap_or_else(Observed::unavailable);
        parts.push(ReplayPart {
            family: family.golden.name().to_string(),
            first: range.start,
            end: range.end,
            total,
            replay,
        });
    }
    Ok(parts)
}

/// Executes the selected checks of `plan` (built from `inputs`), feeding every reporter.
pub fn execute(
    inputs: &Inputs,
    plan: &Plan,
    options: &RunOptions,
    reporters: &mut [&mut dyn Reporter],
) -> Result<RunSummary> {
    let started = Instant::now();
    let _quiet = QuietPanics::install();
    let mut runner = Runner::new(inputs, options)?;
    let mut emit = |event: &Event<'_>| reporters.iter_mut().try_for_each(|r| r.handle(event));
    emit(&Event::RunStarted {
        plan,
        selected: plan.selected().count(),
        engine: runner.compressed_engine().name(),
        cross_check_engine: runner.cross_engine.as_deref().map(|e| e.name()),
        engine_note: runner.engine_note.as_deref(),
    })?;
    let mut summary = RunSummary::default();
    for (f, family) in inputs.families.iter().enumerate() {
        for (p, profile) in inputs.profiles.iter().enumerate() {
            let planned: Vec<&PlannedCheck> =
                plan.unit(family.golden.name(), &profile.profile.chip.name).collect();
            for excluded in planned.iter().filter_map(|c| c.not_run.as_ref()) {
                match excluded.reason {
                    NotRunReason::Skipped => summary.skipped += 1,
                    _ => summary.filtered_out += 1,
                }
            }
            if !planned.iter().any(|c| c.selected()) {
                continue;
            }
            let unit = Unit::new(&runner, f, p);
            let mut records = Vec::new();
            for check in planned.iter().filter(|c| c.selected()) {
                emit(&Event::CheckStarted { id: &check.id })?;
                let record = unit.evaluate(check.id.check);
                for (profile, observation) in runner.pending.take() {
                    let profile = profile.then_some(check.id.profile.as_str());
                    emit(&Event::ObservationRecorded {
                        family: &check.id.family,
                        profile,
                        observation: &observation,
                    })?;
                }
                summary.count(&record);
                emit(&Event::CheckFinished { id: &check.id, record: &record })?;
                records.push(record);
            }
            let observations = unit.observations().to_json();
            let mut certificate = issue(unit.record(&observations), &planned, records);
            if let Some(key) = &options.sign_with {
                crate::certificate::sign::sign(&mut certificate, key);
            }
            summary.certificates.push(certificate.verdict);
            summary.issued.push((certificate.golden.name.clone(), certificate.profile.name.clone()));
            emit(&Event::CertificateIssued { certificate: &certificate, observations: &observations })?;
        }
        runner.release(f);
    }
    summary.elapsed_s = started.elapsed().as_secs_f64();
    emit(&Event::RunFinished { summary: &summary })?;
    Ok(summary)
}

/// A runtime outside this process: its engine, how the report names it, and its own meter.
struct Device {
    engine: Box<dyn Engine>,
    described: String,
    meter: Option<Box<dyn crate::power::PowerSource>>,
    /// The device's facts as its agent or adapter reported them.
    environment: DeviceEnvironment,
    /// The device's own thermal zones and clocks, for a soak (an agent's).
    sensors: Option<Box<dyn Sensors>>,
}

/// The engine of a backend whose runtime is not this process's (`remote`, `exec`), with how
/// the report names it. Found before anything runs: an unreachable agent or a runtime that
/// cannot start is bad input.
fn device_engine(options: &RunOptions) -> Result<Option<Device>> {
    match &options.backend {
        BackendTarget::Remote(target) => {
            let engine = crate::remote::RemoteEngine::connect(target.clone())?;
            let described = format!("{} via edgecert agent at {}", engine.device().describe(), engine.addr());
            let meter = engine.meter().map(|m| Box::new(m) as Box<dyn crate::power::PowerSource>);
            let environment = DeviceEnvironment {
                reported_by: format!(
                    "edgecert agent at {} ({})",
                    engine.addr(),
                    engine.device().agent_version
                ),
                facts: engine.device().facts(),
            };
            let sensors = match options.soak {
                Some(_) => Some(Box::new(engine.sensors()?) as Box<dyn Sensors>),
                None => None,
            };
            Ok(Some(Device { engine: Box::new(engine), described, meter, environment, sensors }))
        }
        BackendTarget::Exec { adapter, journal_dir } => {
            let engine = crate::exec::ExecEngine::new(adapter, journal_dir.clone())?;
            let described =
                format!("{} (adapter {}), {}", engine.name(), adapter.display(), engine.timing_note());
            let environment = DeviceEnvironment {
                reported_by: format!("the device_command of adapter {}", adapter.display()),
                facts: engine.device_facts()?,
            };
            let sensors = match (&options.soak, engine.sensors()) {
                (None, _) => None,
                (Some(_), Some(sensors)) => Some(Box::new(sensors) as Box<dyn Sensors>),
                (Some(_), None) => {
                    return Err(crate::vocab::Error::Usage(format!(
                        "--soak reads the device's sensors, and adapter {} has no sensors_command (zone NAME: °C, clock NAME: MHz per line; see docs/devices.md)",
                        adapter.display()
                    )))
                }
            };
            Ok(Some(Device { engine: Box::new(engine), described, meter: None, environment, sensors }))
        }
        BackendTarget::Emulated | BackendTarget::Host => Ok(None),
    }
}

/// A family's shared observations.
#[derive(Default)]
struct FamilyState {
    loaded: OnceCell<std::result::Result<Box<dyn LoadedModel>, String>>,
    cross_loaded: OnceCell<std::result::Result<Box<dyn LoadedModel>, String>>,
    /// Milliseconds the compressed model's first load took.
    first_load_ms: OnceCell<f64>,
    replay: OnceCell<std::result::Result<Replay, Failure>>,
    host_timing: OnceCell<std::result::Result<Timing, Unobserved>>,
}

/// Why a shared observation is missing: the backend could not make it (a check reports that
/// as INCONCLUSIVE), or the code making it panicked (every check reading it reports an error).
enum Failure {
    Unobserved(Unobserved),
    Panic(String),
}

/// A panic raised again from a kept message; [`guarded`] takes the message as it is.
struct CheckPanic(String);

struct Runner<'a> {
    inputs: &'a Inputs,
    options: &'a RunOptions,
    backend: Box<dyn Backend>,
    engine: Box<dyn Engine>,
    /// The second engine of `--cross-check`.
    cross_engine: Option<Box<dyn Engine>>,
    /// The device the compressed model runs on (`--backend remote`); the reference stays on
    /// `engine`.
    device_engine: Option<Box<dyn Engine>>,
    /// The meter of the device agent, where it has one.
    device_meter: Option<Box<dyn crate::power::PowerSource>>,
    /// Why `--engine auto` fell back to tract.
    engine_note: Option<String>,
    families: Vec<FamilyState>,
    /// Observations made since the last check finished: (per profile?, observation).
    pending: RefCell<Vec<(bool, Observation)>>,
    /// When the run began (RFC 3339), for the certificates' test conditions.
    started_at: String,
    /// The device under test (`remote`, `exec`), as reported, for the test conditions.
    device_environment: Option<DeviceEnvironment>,
    /// Where a soak reads the thermal zones and clocks: the device's agent, else
    /// `--thermal-root`, else this machine's `/`.
    sensors: Box<dyn Sensors>,
}

impl<'a> Runner<'a> {
    /// The engines are found before anything runs: asking for one that is not installed is
    /// bad input.
    fn new(inputs: &'a Inputs, options: &'a RunOptions) -> Result<Self> {
        let selected = select(options.engine, &inputs.model_formats(true))?;
        let compressed_formats = inputs.model_formats(false);
        let cross_engine = options
            .cross_check
            .then(|| counterpart(selected.engine.as_ref(), &compressed_formats))
            .transpose()?;
        let device = device_engine(options)?;
        let described = device.as_ref().map(|d| d.described.clone());
        let (device_engine, device_meter, device_environment, device_sensors) = match device {
            Some(d) => (Some(d.engine), d.meter, Some(d.environment), d.sensors),
            None => (None, None, None, None),
        };
        Ok(Runner {
            inputs,
            options,
            backend: options.backend.kind().backend(described),
            device_engine,
            device_meter,
            engine: selected.engine,
            cross_engine,
            engine_note: selected.fallback.map(|why| format!("--engine auto fell back to tract: {why}")),
            families: inputs.families.iter().map(|_| FamilyState::default()).collect(),
            pending: RefCell::new(Vec::new()),
            started_at: super::certificate::now_rfc3339(),
            device_environment,
            sensors: device_sensors.unwrap_or_else(|| {
                Box::new(match options.soak.as_ref().and_then(|s| s.thermal_root.as_deref()) {
                    Some(dir) => crate::device::SystemRoot::at(dir),
                    None => crate::device::SystemRoot::live(),
                })
            }),
        })
    }

    /// Lets go of a family's loaded models once its units are done: a device agent serves a
    /// bounded number of connections, and a finished device run closes its journal.
    fn release(&mut self, f: usize) {
        self.families[f].loaded.take();
        self.families[f].cross_loaded.take();
    }

    fn record(&self, per_profile: bool, observation: Observation) {
        self.pending.borrow_mut().push((per_profile, observation));
    }

    fn loaded(&self, f: usize) -> std::result::Result<&dyn LoadedModel, String> {
        let state = &self.families[f];
        let clock = Instant::now();
        let loaded = load_once(&state.loaded, self.compressed_engine(), &self.inputs.families[f]);
        // The first call loads; later ones return at once and leave the figure alone.
        state.first_load_ms.get_or_init(|| clock.elapsed().as_secs_f64() * 1e3);
        loaded
    }

    /// The meter read beside timed runs: the user's (`--power-meter`), else the device agent's.
    fn power_source(&self) -> Option<&dyn crate::power::PowerSource> {
        match &self.options.power_meter {
            Some(meter) => Some(meter),
            None => self.device_meter.as_deref(),
        }
    }

    /// The engine the compressed model's outputs come from: the device's, or the run's.
    fn compressed_engine(&self) -> &dyn Engine {
        self.device_engine.as_deref().unwrap_or(self.engine.as_ref())
    }

    /// The compressed model on the cross-check engine, when the run cross-checks.
    fn cross_loaded(&self, f: usize) -> std::result::Result<Option<&dyn LoadedModel>, String> {
        let Some(engine) = self.cross_engine.as_deref() else { return Ok(None) };
        load_once(&self.families[f].cross_loaded, engine, &self.inputs.families[f]).map(Some)
    }

    /// The family's golden replay. A panic while making it is kept and raised again in every
    /// check that reads it, so each of them reports the error rather than a lost check.
    fn replay(&self, f: usize) -> std::result::Result<&Replay, Unobserved> {
        let judged = self.families[f].replay.get_or_init(|| {
            let judged = guarded(|| {
                self.replay_and_score(f).map_err(|reason| Failure::Unobserved(Unobserved::measured(reason)))
            })
            .unwrap_or_else(|panic| Err(Failure::Panic(panic)));
            let observation = match &judged {
                Ok(r) => Observation::Replay {
                    engine: self.compressed_engine().name().to_string(),
                    samples: r.record.samples,
                    metric: r.task.as_ref().map(|(p, m)| TaskValues {
                        metric: m.metric.clone(),
                        compressed: p.compressed[crate::metrics::PRIMARY],
                        reference: p.reference[crate::metrics::PRIMARY],
                    }),
                    outputs_compared: r.agreement.as_ref().map_or(0, Vec::len),
                    reference_cached: r.reference_cached,
                    cross_check: r.record.cross_check.as_ref().map(|x| CrossCheckValues {
                        engine: x.engine.clone(),
                        compressed: r
                            .cross_check
                            .as_ref()
                            .and_then(|c| c.accuracy.as_ref())
                            .map(|a| a.paired.compressed[crate::metrics::PRIMARY]),
                    }),
                },
                Err(Failure::Unobserved(Unobserved { reason, .. }) | Failure::Panic(reason)) => {
                    Observation::Unavailable { what: "golden replay".into(), reason: reason.clone() }
                }
            };
            self.record(false, observation);
            judged
        });
        match judged {
            Ok(a) => Ok(a),
            Err(Failure::Unobserved(why)) => Err(why.clone()),
            Err(Failure::Panic(message)) => std::panic::resume_unwind(Box::new(CheckPanic(message.clone()))),
        }
    }

    /// Replays the golden set through both models (real inference), reads each model's outputs
    /// into per-sample contributions (to the task metric, and to output agreement), and judges
    /// them. A replay given in the options (merged sample shards) is judged as it is.
    fn replay_and_score(&self, f: usize) -> std::result::Result<Replay, String> {
        let family = &self.inputs.families[f];
        let m = &family.golden.manifest;
        if let Some(given) = self.options.given_replays.as_ref() {
            return match given.get(family.golden.name()) {
                Some(Observed::Observed { value }) => Replay::judge(value.clone(), m),
                Some(Observed::Unavailable { reason, .. }) => Err(reason.clone()),
                None => Err(format!("no shard replayed `{}`", family.golden.name())),
            };
        }
        let (record, reference_cached) = self.replay_record(f, 0..family.golden.len())?;
        let mut replay = Replay::judge(record, m)?;
        replay.reference_cached = reference_cached;
        Ok(replay)
    }

    /// The per-sample record of replaying `samples` (the whole set, or a sample shard's
    /// range), and whether the reference's contributions came from the cache.
    fn replay_record(
        &self,
        f: usize,
        samples: std::ops::Range<usize>,
    ) -> std::result::Result<(ReplayRecord, bool), String> {
        let family = &self.inputs.families[f];
        let m = &family.golden.manifest;
        let compressed = self.loaded(f).map_err(|e| format!("the compressed model could not be run: {e}"))?;
        let cross_check = self
            .cross_loaded(f)
            .map_err(|e| format!("the compressed model could not be run on the cross-check engine: {e}"))?;
        // Agreement compares raw outputs, which are not cached: only task metrics use the cache,
        // and only for the whole set.
        let whole = samples == (0..family.golden.len());
        let cache = self.options.reference_cache.as_ref().filter(|_| m.limits.agreement.is_none() && whole);
        let key = ReferenceCache::key(
            &family.reference.sha256,
            &family.golden.sha256,
            self.engine.name(),
            m.metric.kind.name(),
        );
        let cached = cache.and_then(|c| c.get(&key, family.golden.len()));
        let reference = match cached {
            Some(_) => None,
            None => Some(
                self.engine
                    .load(&family.reference.path, &family.reference.inputs)
                    .map(|m| with_quantized_io(m, &family.reference.inputs, &family.reference.outputs))
                    .map_err(|e| format!("the FP32 reference could not be run: {e}"))?,
            ),
        };
        let bar = ReplayProgress::start(self.options.progress, family.golden.name(), samples.len() as u64);
        let reduce = |i: usize, outputs: SampleOutputs| reduce_sample(family, i, outputs);
        let mut record = ReplayRecord {
            engine: self.compressed_engine().name().to_string(),
            samples: samples.len(),
            seed: family_seed(family),
            confidence: m.limits.confidence,
            compressed: None,
            reference: None,
            agreement: None,
            cross_check: self.cross_engine.as_deref().map(|e| CrossCheckRecord {
                engine: e.name().to_string(),
                compressed: None,
                agreement: Vec::new(),
            }),
        };
        let mut append = |sample: SampleContribution| sample.append_to(&mut record);
        let models = ReplayModels { compressed, reference: reference.as_deref(), cross_check };
        let replayed = replay_pairs(models, &family.golden, samples, &reduce, &mut append, &|| bar.tick());
        bar.finish();
        replayed?;
        match (cached, cache) {
            (Some(reference), _) => record.reference = Some(reference),
            (None, Some(cache)) => {
                if let Some(reference) = &record.reference {
                    cache.put(&key, reference);
                }
            }
            (None, None) => {}
        }
        Ok((record, reference.is_none()))
    }
}

/// What one golden sample contributes, read from every model's outputs at once so the
/// outputs themselves need not be kept.
struct SampleContribution {
    compressed: Option<Contributions>,
    reference: Option<Contributions>,
    agreement: Option<Vec<OutputSamples>>,
    /// On the cross-check engine: the compressed model's contribution, and its outputs
    /// against the first engine's.
    cross_check: Option<(Option<Contributions>, Vec<OutputSamples>)>,
}

/// Sample `i`'s contributions to the task metric (scored against its label row), to output
/// agreement, and to the engine cross-check, as the golden set and the run ask.
fn reduce_sample(
    family: &Family,
    i: usize,
    out: SampleOutputs,
) -> std::result::Result<SampleContribution, String> {
    let m = &family.golden.manifest;
    let contribution = |out: &Vec<Tensor>| {
        let (labels, spec) = (family.golden.labels.as_ref()?, m.labels.as_ref()?);
        let row = labels.select(Axis(0), &[i]);
        m.metric.kind.scorer(std::slice::from_ref(out), &row, &spec.classes, &m.input.shape)
    };
    let compare = |a: &Vec<Tensor>, b: &Vec<Tensor>, names: &[crate::model::OutputInfo]| {
        let names: Vec<String> = names.iter().map(|o| o.name.clone()).collect();
        compare_outputs(std::slice::from_ref(a), std::slice::from_ref(b), &names)
            .map_err(|e| format!("sample {i}: {e}"))
    };
    let agreement = match m.limits.agreement {
        Some(_) => {
            let out_r = out.reference.as_ref().ok_or("output agreement needs the reference's outputs")?;
            Some(compare(&out.compressed, out_r, &family.reference.outputs)?)
        }
        None => None,
    };
    let cross_check = match &out.cross_check {
        Some(x) => Some((contribution(x), compare(x, &out.compressed, &family.compressed.outputs)?)),
        None => None,
    };
    Ok(SampleContribution {
        compressed: contribution(&out.compressed),
        reference: out.reference.as_ref().and_then(contribution),
        agreement,
        cross_check,
    })
}

impl SampleContribution {
    /// Appends this sample to the record, after the samples before it.
    fn append_to(self, record: &mut ReplayRecord) -> std::result::Result<(), String> {
        let (cross_compressed, cross_agreement) = match (self.cross_check, record.cross_check.as_mut()) {
            (Some((c, outputs)), Some(x)) => {
                (Some((&mut x.compressed, c)), Some((&mut x.agreement, outputs)))
            }
            _ => (None, None),
        };
        let contributions =
            [(&mut record.compressed, self.compressed), (&mut record.reference, self.reference)];
        for (into, c) in contributions.into_iter().chain(cross_compressed) {
            append_contributions(into, c)?;
        }
        if let Some(outputs) = self.agreement {
            append_outputs(record.agreement.get_or_insert_with(Vec::new), outputs)?;
        }
        if let Some((gathered, outputs)) = cross_agreement {
            append_outputs(gathered, outputs)?;
        }
        Ok(())
    }
}

/// The family's compressed model on `engine`, loaded once.
fn load_once<'c>(
    cell: &'c OnceCell<std::result::Result<Box<dyn LoadedModel>, String>>,
    engine: &dyn Engine,
    family: &Family,
) -> std::result::Result<&'c dyn LoadedModel, String> {
    cell.get_or_init(|| {
        engine
            .load(&family.compressed.path, &family.compressed.inputs)
            .map(|m| with_quantized_io(m, &family.compressed.inputs, &family.compressed.outputs))
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map(|m| m.as_ref())
    .map_err(Clone::clone)
}

/// The compressed model of one family, loaded on first use.
struct FamilyModel<'r, 'a> {
    runner: &'r Runner<'a>,
    family: usize,
}

impl ModelSource for FamilyModel<'_, '_> {
    fn loaded(&self) -> std::result::Result<&dyn LoadedModel, String> {
        self.runner.loaded(self.family)
    }

    fn load_times_ms(&self) -> std::result::Result<(f64, f64), String> {
        self.loaded()?;
        let first =
            *self.runner.families[self.family].first_load_ms.get().ok_or("the model was never loaded")?;
        let family = &self.runner.inputs.families[self.family];
        let clock = Instant::now();
        let again = self.runner.engine.load(&family.compressed.path, &family.compressed.inputs);
        let reload = clock.elapsed().as_secs_f64() * 1e3;
        again.map(|_| (first, reload)).map_err(|e| e.to_string())
    }
}

/// One (family, chip): what its checks observe.
struct Unit<'r, 'a> {
    runner: &'r Runner<'a>,
    f: usize,
    p: usize,
    estimate: OnceCell<Estimate>,
    timing: OnceCell<std::result::Result<Timing, Unobserved>>,
}

impl<'r, 'a> Unit<'r, 'a> {
    fn new(runner: &'r Runner<'a>, f: usize, p: usize) -> Self {
        Unit { runner, f, p, estimate: OnceCell::new(), timing: OnceCell::new() }
    }

    fn family_inputs(&self) -> &'a Family {
        &self.runner.inputs.families[self.f]
    }

    fn profile_file(&self) -> &'a ProfileFile {
        &self.runner.inputs.profiles[self.p]
    }

    /// Runs one check; a panic under it becomes its error.
    fn evaluate(&self, kind: CheckKind) -> Verdict {
        guarded(|| checks::evaluate(kind, self)).unwrap_or_else(|error| {
            Verdict::error(kind, kind.unit(self.family()), kind.basis(self.timing_basis()), &error)
        })
    }

    fn observe_timing(&self) -> std::result::Result<Timing, Unobserved> {
        let family = self.family_inputs();
        let seed = if self.runner.backend.per_profile() {
            seed(&[&family.compressed.sha256, &self.profile_file().sha256])
        } else {
            0
        };
        let model = FamilyModel { runner: self.runner, family: self.f };
        let input = TimingInput {
            model: &model,
            golden: &family.golden,
            estimate: self.estimate(),
            seed,
            power_meter: self.runner.power_source(),
            min_duration_s: self.runner.options.min_duration_s,
            soak: self.runner.options.soak.as_ref().map(|s| crate::backend::SoakPlan {
                seconds: s.seconds,
                rate_hz: s.rate_hz,
                sensors: self.runner.sensors.as_ref(),
            }),
        };
        if self.runner.backend.replays_first() {
            // Only its order matters here: a failed replay is reported by the checks reading it.
            let _ = guarded(|| self.runner.replay(self.f).map(drop));
        }
        let timing = self.runner.backend.time(&input);
        let observation = match &timing {
            Ok(t) => latency_observation(t),
            Err(why) => Observation::Unavailable { what: "latency".into(), reason: why.reason.clone() },
        };
        self.runner.record(self.runner.backend.per_profile(), observation);
        timing
    }

    /// The raw observations this unit's checks read, as far as they were made.
    fn observations(&self) -> ObservationRecord {
        let state = &self.runner.families[self.f];
        let timing = if self.runner.backend.per_profile() { &self.timing } else { &state.host_timing };
        let timing = timing.get().map(|t| Observed::from(t.clone()));
        let replay = state.replay.get().map(|r| match r {
            Ok(r) => Observed::Observed { value: r.record.clone() },
            Err(Failure::Unobserved(why)) => Observed::from(Err(why.clone())),
            Err(Failure::Panic(why)) => Observed::unavailable(why.as_str()),
        });
        ObservationRecord {
            format: OBSERVATIONS_FORMAT.to_string(),
            family: self.family_inputs().golden.name().to_string(),
            profile: self.profile().chip.name.clone(),
            ambient_c: self.ambient_c(),
            stated_ambient_c: self.runner.options.ambient_c,
            ambient_max_c: self.runner.options.ambient_max_c,
            soak_planned: self.runner.options.soak.is_some(),
            timing_basis: self.timing_basis(),
            replay_engine: self.replay_engine().map(str::to_string),
            timing,
            replay,
            traces: Vec::new(),
        }
    }

    /// What the certificate needs of this unit; the figures no check asked for are observed
    /// now (the estimate is cheap and static; accuracy only if a check already replayed).
    /// `observations` are the raw observations' bytes, which the certificate is bound to.
    fn record(&self, observations: &[u8]) -> UnitRecord<'r> {
        let family = self.family_inputs();
        let estimate = guarded(|| self.estimate().clone()).ok();
        // A soak's thermal verdict rests on measurements: no emulated curve beside it.
        let emulated_heat = self.runner.options.soak.is_none();
        let thermal = estimate.as_ref().filter(|_| emulated_heat).and_then(|est| {
            let rate = family.golden.manifest.limits.operating_rate_hz();
            guarded(|| checks::thermal_check(est, self.profile(), rate, self.ambient_c()).1).ok().flatten()
        });
        let replay = self.runner.families[self.f].replay.get().and_then(|r| r.as_ref().ok());
        let metrics = replay.and_then(|r| r.task.as_ref()).map(|(_, m)| m.clone());
        let agreement = replay.and_then(Replay::agreement_records);
        let cross_check = replay.and_then(Replay::cross_check_report);
        UnitRecord {
            family,
            profile: self.profile_file(),
            npu_mode: self.runner.inputs.npu_modes[self.p].clone(),
            engine: self.runner.engine.name(),
            backend: self.runner.options.backend.kind(),
            estimate,
            thermal,
            metrics,
            agreement,
            cross_check,
            observations: ObservationRecord::artifact(observations),
            started_at: &self.runner.started_at,
            device: self.runner.device_environment.as_ref(),
            ambient_c: self.runner.options.ambient_c,
            issuer: self.runner.options.issuer.clone(),
        }
    }
}

impl Observations for Unit<'_, '_> {
    fn model(&self) -> &ModelInventory {
        &self.family_inputs().compressed
    }

    fn family(&self) -> &FamilyManifest {
        &self.family_inputs().golden.manifest
    }

    fn profile(&self) -> &ChipProfile {
        &self.profile_file().profile
    }

    fn estimate(&self) -> &Estimate {
        self.estimate.get_or_init(|| emulator::estimate(self.model(), self.profile()))
    }

    fn ambient_c(&self) -> f64 {
        self.runner
            .options
            .ambient_c
            .or(self.profile().thermal.as_ref().and_then(|t| t.ambient_c))
            .unwrap_or(emulator::DEFAULT_AMBIENT_C)
    }

    fn timing_basis(&self) -> Basis {
        self.runner.backend.basis()
    }

    fn timing(&self) -> std::result::Result<&Timing, Unobserved> {
        let cell = if self.runner.backend.per_profile() {
            &self.timing
        } else {
            &self.runner.families[self.f].host_timing
        };
        cell.get_or_init(|| self.observe_timing()).as_ref().map_err(Clone::clone)
    }

    fn accuracy(&self) -> std::result::Result<&PairedEvaluation, Unobserved> {
        self.runner.replay(self.f)?.paired()
    }

    fn agreement(&self) -> std::result::Result<&[OutputStatistics], Unobserved> {
        self.runner.replay(self.f)?.agreement()
    }

    fn accuracy_cross_check(&self) -> Option<&EngineCrossCheck> {
        self.runner.replay(self.f).ok()?.cross_check.as_ref()?.accuracy.as_ref()
    }

    fn replay_engine(&self) -> Option<&str> {
        Some(self.runner.compressed_engine().name())
    }

    fn soak(&self) -> Option<std::result::Result<&SoakTrace, Unobserved>> {
        self.runner.options.soak.as_ref()?;
        Some(self.timing().and_then(checks::soak_of))
    }

    fn ambient_correction(&self) -> AmbientCorrection {
        AmbientCorrection {
            stated_c: self.runner.options.ambient_c,
            worst_c: self.runner.options.ambient_max_c,
        }
    }

    fn metered_power(&self) -> Option<std::result::Result<&MeteredWindow, Unobserved>> {
        self.runner.power_source()?;
        Some(self.timing().and_then(checks::metered_window))
    }
}

/// The resampling seed of a family's accuracy figures: the same inputs give the same intervals.
pub(super) fn family_seed(family: &Family) -> u64 {
    seed(&[&family.compressed.sha256, &family.golden.sha256])
}

fn latency_observation(t: &Timing) -> Observation {
    let [p50_ms, p99_ms] = crate::vocab::percentiles(&t.latencies_ms, [0.5, 0.99]);
    Observation::Latency {
        basis: t.basis,
        samples: t.latencies_ms.len(),
        p50_ms,
        p99_ms,
        what: t.what.clone(),
    }
}

/// Where and why the last panic happened, recorded by the quiet hook.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

/// Runs `f`; a panic becomes `Err` with its message and location.
fn guarded<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        if let Some(CheckPanic(message)) = payload.downcast_ref::<CheckPanic>() {
            return message.clone();
        }
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        let location = LAST_PANIC.lock().map(|mut l| l.take()).unwrap_or_default();
        match location {
            Some(at) => format!("panicked at {at}: {message}"),
            None => format!("panicked: {message}"),
        }
    })
}

/// While a run executes, panics are recorded for the check's error instead of printed; the
/// hook that was installed before comes back when the run ends.
struct QuietPanics {
    previous: Option<PanicHook>,
}

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send + 'static>;

impl QuietPanics {
    fn install() -> QuietPanics {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| {
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = at;
            }
        }));
        QuietPanics { previous: Some(previous) }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            std::panic::set_hook(previous);
        }
    }
}
