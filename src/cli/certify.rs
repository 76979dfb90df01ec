//! `certify`: the plan (families × profiles), each (family, profile, check) as a libtest-mimic
//! trial, then the reports. Heavy work (inference) happens lazily inside the trials, once per
//! family, so `--list` and filters cost nothing and outputs are reused across profiles.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Failed, Trial};

use crate::backend::{replay_outputs, BackendKind, TimingInput};
use crate::checks::{self, PairedEvaluation, Verdict, CHECK_NAMES};
use crate::cli::CertifyArgs;
use crate::emulator::{self, Estimate};
use crate::engine::{default_engine, Engine, LoadedModel};
use crate::error::{exit_code, Error, Result};
use crate::golden::{self, GoldenSet};
use crate::hash::sha256_hex;
use crate::metrics::PRIMARY;
use crate::model::ModelInventory;
use crate::profile::{self, ProfileFile};
use crate::report::{self, Certificate};
use crate::stats::Outcome;

/// The accuracy verdicts of a family (they do not depend on the chip) and the full metric
/// evaluations of both models, or why the models could not be replayed.
type Accuracy = std::result::Result<(Vec<Verdict>, report::MetricsReport), String>;

/// One golden set with the models it certifies.
struct Family {
    golden: GoldenSet,
    reference: ModelInventory,
    compressed: ModelInventory,
    accuracy: OnceLock<Accuracy>,
    loaded: OnceLock<std::result::Result<Box<dyn LoadedModel>, String>>,
    host_latency: OnceLock<std::result::Result<Option<crate::backend::Timing>, String>>,
}

struct Session {
    families: Vec<Family>,
    profiles: Vec<ProfileFile>,
    /// Estimates per (family, profile).
    estimates: Vec<Vec<Estimate>>,
    backend: BackendKind,
    engine: Box<dyn Engine>,
    verdicts: Mutex<BTreeMap<(usize, usize, usize), Verdict>>,
    ambient_c: Option<f64>,
    npu_mode: Option<String>,
}

pub fn run(mut args: CertifyArgs) -> Result<i32> {
    let session = Arc::new(Session::load(&args)?);
    if args.backend == BackendKind::Host {
        // Timed runs must not share the CPU with other trials.
        args.test.test_threads = Some(1);
    }
    let trials = session.trials();
    let listing = args.test.list;
    let conclusion = libtest_mimic::run(&args.test, trials);
    if listing {
        return Ok(exit_code::PASS);
    }
    let certs = session.certificates();
    if certs.is_empty() {
        return Ok(exit_code::PASS);
    }
    write_reports(&args.out, &certs)?;
    println!("\n{}", report::verdict_table(&certs));
    println!("reports written to {}", args.out.display());
    let all_pass = certs.iter().all(|c| c.verdict == Outcome::Pass) && !conclusion.has_failed();
    Ok(if all_pass { exit_code::PASS } else { exit_code::NOT_CERTIFIED })
}

impl Session {
    /// Loads and validates every input before anything runs: bad input stops here (exit 2).
    fn load(args: &CertifyArgs) -> Result<Session> {
        let profiles = if args.profiles.is_empty() {
            profile::load_dir(&args.profiles_dir)?
        } else {
            args.profiles.iter().map(|p| profile::ChipProfile::load(p)).collect::<Result<_>>()?
        };
        let profiles = apply_mode(profiles, args.npu_mode.as_deref())?;
        let golden_dirs =
            if args.golden.is_empty() { golden::discover(&args.golden_dir)? } else { args.golden.clone() };
        let families =
            golden_dirs.iter().map(|d| load_family(d, args.model.as_deref())).collect::<Result<Vec<_>>>()?;
        let estimates = families
            .iter()
            .map(|f| profiles.iter().map(|p| emulator::estimate(&f.compressed, &p.profile)).collect())
            .collect();
        Ok(Session {
            families,
            profiles,
            estimates,
            backend: args.backend,
            engine: default_engine(),
            verdicts: Mutex::new(BTreeMap::new()),
            ambient_c: args.ambient,
            npu_mode: args.npu_mode.clone(),
        })
    }

    fn trials(self: &Arc<Self>) -> Vec<Trial> {
        let mut trials = Vec::new();
        for (f, fam) in self.families.iter().enumerate() {
            for (p, prof) in self.profiles.iter().enumerate() {
                for (c, check) in CHECK_NAMES.iter().enumerate() {
                    if *check == "accuracy_hardest_slice"
                        && fam.golden.manifest.metric.hardest_slice.is_none()
                    {
                        continue;
                    }
                    let name = format!("{}::{}::{check}", fam.golden.name(), prof.profile.chip.name);
                    let session = Arc::clone(self);
                    trials.push(Trial::test(name, move || session.run_check(f, p, c)));
                }
            }
        }
        trials
    }

    fn run_check(&self, f: usize, p: usize, c: usize) -> std::result::Result<(), Failed> {
        let verdict = self.evaluate(f, p, CHECK_NAMES[c]);
        let outcome = verdict.verdict;
        let message = format!("{}: {}", outcome.as_str(), verdict.reason);
        let mut details = message.clone();
        for finding in verdict.findings.iter().take(10) {
            details.push_str(&format!("\n  - {finding}"));
        }
        self.verdicts.lock().expect("no panics while holding the lock").insert((f, p, c), verdict);
        match outcome {
            Outcome::Pass => Ok(()),
            _ => Err(details.into()),
        }
    }

    fn evaluate(&self, f: usize, p: usize, check: &str) -> Verdict {
        let fam = &self.families[f];
        let prof = &self.profiles[p].profile;
        let est = &self.estimates[f][p];
        let limits = &fam.golden.manifest.limits;
        match check {
            "size" => checks::size_check(&fam.compressed, limits.size_bytes),
            "operators" => checks::operator_check(&fam.compressed, &est.placement),
            "memory" => checks::memory_check(&fam.compressed, prof),
            "latency" => self.latency(f, p),
            "power" => checks::power_check(est, prof, limits.operating_rate_hz()),
            "thermal" => checks::thermal_check(est, prof, limits.operating_rate_hz(), self.ambient(prof)).0,
            "accuracy" | "accuracy_vs_fp32" | "accuracy_hardest_slice" => self.accuracy(f, check),
            other => unreachable!("unknown check {other}"),
        }
    }

    /// Ambient for the thermal model: the command line, else the profile, else a lab's 25 °C.
    fn ambient(&self, prof: &crate::profile::ChipProfile) -> f64 {
        self.ambient_c
            .or(prof.thermal.as_ref().and_then(|t| t.ambient_c))
            .unwrap_or(crate::emulator::DEFAULT_AMBIENT_C)
    }

    fn latency(&self, f: usize, p: usize) -> Verdict {
        let fam = &self.families[f];
        let est = &self.estimates[f][p];
        let limits = &fam.golden.manifest.limits;
        let basis = match self.backend {
            BackendKind::Emulated => crate::backend::Basis::Emulated,
            BackendKind::Host => crate::backend::Basis::Measured,
        };
        let Some(budget) = limits.latency_p99_ms else {
            return Verdict::inconclusive(
                "latency",
                "ms",
                basis,
                "the golden set states no latency budget (limits.latency_p99_ms)",
            );
        };
        let timing = match self.backend {
            BackendKind::Emulated => self.backend.backend().time(&TimingInput {
                model: &NoModel,
                golden: &fam.golden,
                estimate: est,
                seed: seed(&[&fam.compressed.sha256, &self.profiles[p].sha256]),
            }),
            BackendKind::Host => match fam.host_latency.get_or_init(|| self.time_host(fam, est)) {
                Ok(t) => Ok(t.clone()),
                Err(e) => return Verdict::inconclusive("latency", "ms", basis, e.clone()),
            },
        };
        match timing {
            Ok(Some(t)) => checks::latency_check(&t, budget, limits.confidence),
            Ok(None) => Verdict::inconclusive(
                "latency",
                "ms",
                basis,
                format!(
                    "the cost model cannot predict latency: {}",
                    est.latency_unknown.clone().unwrap_or_default()
                ),
            ),
            Err(e) => Verdict::inconclusive("latency", "ms", basis, e.to_string()),
        }
    }

    fn time_host(
        &self,
        fam: &Family,
        est: &Estimate,
    ) -> std::result::Result<Option<crate::backend::Timing>, String> {
        let model = self.loaded(fam).map_err(|e| format!("the model could not be run: {e}"))?;
        let input = TimingInput { model, golden: &fam.golden, estimate: est, seed: 0 };
        BackendKind::Host.backend().time(&input).map_err(|e| e.to_string())
    }

    fn loaded<'a>(&self, fam: &'a Family) -> std::result::Result<&'a dyn LoadedModel, String> {
        fam.loaded
            .get_or_init(|| {
                self.engine.load(&fam.compressed.path, &fam.compressed.inputs).map_err(|e| e.to_string())
            })
            .as_ref()
            .map(|m| m.as_ref())
            .map_err(Clone::clone)
    }

    fn accuracy(&self, f: usize, check: &str) -> Verdict {
        let fam = &self.families[f];
        let kind = fam.golden.manifest.metric.kind;
        match fam.accuracy.get_or_init(|| self.judge_accuracy(fam)) {
            Ok((verdicts, _)) => {
                verdicts.iter().find(|v| v.name == check).cloned().expect("every accuracy check")
            }
            Err(e) => Verdict::inconclusive(check, kind.unit(), crate::backend::Basis::Measured, e.clone()),
        }
    }

    /// Replays the golden set through both models (real inference) and judges accuracy once
    /// per family: it does not depend on the chip.
    fn judge_accuracy(&self, fam: &Family) -> Accuracy {
        let m = &fam.golden.manifest;
        let compressed =
            self.loaded(fam).map_err(|e| format!("the compressed model could not be run: {e}"))?;
        let reference = self
            .engine
            .load(&fam.reference.path, &fam.reference.inputs)
            .map_err(|e| format!("the FP32 reference could not be run: {e}"))?;
        let out_c = replay_outputs(compressed, &fam.golden).map_err(|e| e.to_string())?;
        let out_r = replay_outputs(reference.as_ref(), &fam.golden).map_err(|e| e.to_string())?;
        let bind = |out: &[Vec<crate::engine::Tensor>]| {
            m.metric.kind.scorer(out, &fam.golden.labels, &m.labels.classes, &m.input.shape)
        };
        let (sc, sr) = (bind(&out_c), bind(&out_r));
        let seed = seed(&[&fam.compressed.sha256, &fam.golden.sha256]);
        let paired =
            PairedEvaluation::new(m.metric.kind, sc.as_ref(), sr.as_ref(), m.limits.confidence, seed);
        let rel = m.limits.metric_rel_floor;
        let mut verdicts = vec![
            checks::accuracy_floor_check(&paired, m.limits.metric_abs_floor),
            checks::accuracy_vs_reference_check(&paired, rel, PRIMARY, "accuracy_vs_fp32"),
        ];
        if let Some(slice) = &m.metric.hardest_slice {
            let key = format!("slice.{slice}");
            verdicts.push(checks::accuracy_vs_reference_check(&paired, rel, &key, "accuracy_hardest_slice"));
        }
        let metrics = report::MetricsReport {
            metric: m.metric.kind.name().to_string(),
            unit: m.metric.kind.unit().to_string(),
            higher_is_better: m.metric.kind.higher_is_better(),
            hardest_slice: m.metric.hardest_slice.clone(),
            values: paired.values(),
        };
        Ok((verdicts, metrics))
    }

    fn certificates(&self) -> Vec<Certificate> {
        let verdicts = self.verdicts.lock().expect("trials are done");
        let mut certs = Vec::new();
        for (f, fam) in self.families.iter().enumerate() {
            for (p, prof) in self.profiles.iter().enumerate() {
                let checks: Vec<Verdict> =
                    (0..CHECK_NAMES.len()).filter_map(|c| verdicts.get(&(f, p, c)).cloned()).collect();
                if !checks.is_empty() {
                    certs.push(self.certificate(fam, prof, checks, &self.estimates[f][p]));
                }
            }
        }
        certs
    }

    fn certificate(
        &self,
        fam: &Family,
        prof: &ProfileFile,
        checks: Vec<Verdict>,
        est: &Estimate,
    ) -> Certificate {
        let issued_at = report::now_rfc3339();
        let verdict = report::overall(&checks);
        let m = &fam.golden.manifest;
        Certificate {
            schema_version: report::CERTIFICATE_SCHEMA_VERSION,
            certificate_id: sha256_hex(format!("{}{}{}{issued_at}", fam.compressed.sha256, prof.sha256, fam.golden.sha256).as_bytes())[..16].to_string(),
            tool: report::Tool { name: crate::TOOL_NAME, version: crate::TOOL_VERSION, engine: self.engine.name().to_string() },
            subject: subject(&fam.compressed),
            reference: subject(&fam.reference),
            profile: report::ProfileRef {
                name: prof.profile.chip.name.clone(),
                npu_mode: self.npu_mode.clone().filter(|m| prof.profile.in_mode(m).is_some()),
                display_name: prof.profile.display_name().to_string(),
                path: display(&prof.path),
                sha256: prof.sha256.clone(),
            },
            golden: report::GoldenRef {
                name: fam.golden.name().to_string(),
                path: display(&fam.golden.dir),
                sha256: fam.golden.sha256.clone(),
                samples: fam.golden.len(),
                metric: m.metric.kind.name().to_string(),
            },
            backend: report::BackendRef {
                kind: self.backend,
                emulated: self.backend == BackendKind::Emulated,
                note: match self.backend {
                    BackendKind::Emulated => "latency is EMULATED by edgecert's roofline cost model of the chip, not measured on it".into(),
                    BackendKind::Host => "latency is MEASURED on the host CPU running edgecert, not on the chip".into(),
                },
            },
            checks,
            verdict,
            decision_rule: report::DECISION_RULE,
            statement: report::STATEMENT,
            metrics: fam.accuracy.get().and_then(|a| a.as_ref().ok()).map(|a| a.1.clone()),
            thermal: checks::thermal_check(est, &prof.profile, m.limits.operating_rate_hz(), self.ambient(&prof.profile)).1,
            estimate: Some(est.clone()),
            issued_at,
        }
    }
}

/// The emulated backend never runs the model for timing.
struct NoModel;
impl LoadedModel for NoModel {
    fn run(&self, _: &[crate::engine::Tensor]) -> Result<Vec<crate::engine::Tensor>> {
        Err(Error::Usage("the emulated backend does not run models for timing".into()))
    }
}

/// Switches every profile that lists `mode` into it; a mode no profile lists is a usage error.
fn apply_mode(profiles: Vec<ProfileFile>, mode: Option<&str>) -> Result<Vec<ProfileFile>> {
    let Some(name) = mode else { return Ok(profiles) };
    if !profiles.iter().any(|p| p.profile.in_mode(name).is_some()) {
        return Err(Error::Usage(format!("no selected profile has an NPU mode `{name}` (npu.modes)")));
    }
    Ok(profiles
        .into_iter()
        .map(|mut p| {
            if let Some(m) = p.profile.in_mode(name) {
                p.profile = m;
            }
            p
        })
        .collect())
}

fn subject(m: &ModelInventory) -> report::Subject {
    report::Subject {
        model: display(&m.path),
        sha256: m.sha256.clone(),
        size_bytes: m.file_size_bytes,
        quantization: m.quantization.clone(),
    }
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

fn seed(parts: &[&str]) -> u64 {
    let digest = sha256_hex(parts.concat().as_bytes());
    u64::from_str_radix(&digest[..16], 16).expect("hex digest")
}

fn load_family(dir: &Path, model_override: Option<&Path>) -> Result<Family> {
    let golden = GoldenSet::load(dir)?;
    let reference = ModelInventory::load(&golden.reference_model())?;
    let compressed_path = model_override.map(Path::to_path_buf).unwrap_or_else(|| golden.compressed_model());
    let compressed = ModelInventory::load(&compressed_path)?;
    for model in [&reference, &compressed] {
        check_input_shape(&golden, model)?;
    }
    Ok(Family {
        golden,
        reference,
        compressed,
        accuracy: OnceLock::new(),
        loaded: OnceLock::new(),
        host_latency: OnceLock::new(),
    })
}

/// The golden samples must have the shape the model takes.
fn check_input_shape(golden: &GoldenSet, model: &ModelInventory) -> Result<()> {
    let want = &golden.manifest.input.shape;
    match model.inputs.as_slice() {
        [only] if &only.shape == want => Ok(()),
        [only] => Err(Error::golden(
            &golden.manifest_path,
            format!(
                "input.shape is {want:?} but model {} takes `{}` of shape {:?}",
                model.path.display(),
                only.name,
                only.shape
            ),
        )),
        inputs => Err(Error::model(
            &model.path,
            format!("edgecert replays single-input models; this one has {} inputs", inputs.len()),
        )),
    }
}

fn write_reports(out: &Path, certs: &[Certificate]) -> Result<()> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = certs
        .iter()
        .map(|c| {
            (
                out.join(&c.golden.name).join(&c.profile.name).join("certificate.json"),
                report::certificate_json(c),
            )
        })
        .collect();
    files.push((out.join("junit.xml"), report::junit_xml(certs).into_bytes()));
    let table = report::verdict_table(certs);
    files.push((out.join("summary.txt"), format!("{table}\n").into_bytes()));
    report::write_all_atomically(&files)
}
