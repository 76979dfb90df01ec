//! `verify --recompute`: every verdict decided again from the certificate's raw observations and
//! the certified artifacts, by the same checks. The static and emulated figures (size,
//! operators, memory, power, thermal, emulated latency's estimate) come from the model and the
//! profile, whose digests must match; the measured ones (latencies, accuracy, agreement) from
//! the per-sample observations, whose digest the certificate carries. A verifier who trusts this
//! code, the artifacts and the observations gets the certificate's verdicts back, or is told
//! which check, and which of its members, came out differently.

use std::cell::OnceCell;
use std::path::PathBuf;

use super::inputs::{apply_mode, load_family, Family};
use super::replay::Replay;
use crate::certificate::observations::{read_observations, ObservationRecord};
use crate::certificate::schema::{overall, Certificate, CheckRecord, CheckStatus};
use crate::certificate::{Verification, VerifyRequest};
use crate::checks::{self, Observations, PairedEvaluation};
use crate::emulator::{self, Estimate};
use crate::golden::FamilyManifest;
use crate::metrics::OutputStatistics;
use crate::model::{InputShapes, ModelInventory};
use crate::profile::{ChipProfile, ProfileFile};
use crate::vocab::{Basis, Error, Observed, Result, SoakTrace, Timing, Unobserved};

/// `edgecert verify`: the certificate's integrity (its id, signature and the digests of the
/// artifacts named), and with `recompute`, every verdict decided again.
pub fn verify(req: &VerifyRequest) -> Result<Verification> {
    let mut v = crate::certificate::check_integrity(req)?;
    if req.recompute {
        let cert = crate::certificate::parse_certificate(&req.certificate)?;
        recompute(req, &cert, &mut v)?;
    }
    Ok(v)
}

fn recompute(req: &VerifyRequest, cert: &Certificate, v: &mut Verification) -> Result<()> {
    let record = match read_observations(&req.certificate, cert)? {
        Ok(record) => record,
        Err(why) => {
            v.record(Err(format!("cannot recompute: {why}")));
            return Ok(());
        }
    };
    let (family, profile) = match load_certified(req, cert)? {
        Ok(loaded) => loaded,
        Err(why) => {
            v.record(Err(format!("cannot recompute: {why}")));
            return Ok(());
        }
    };
    let replay = record.replay.as_ref().map(|r| match r {
        Observed::Observed { value } => Replay::judge(value.clone(), &family.golden.manifest),
        Observed::Unavailable { reason, .. } => Err(reason.clone()),
    });
    let obs = Recorded {
        family: &family,
        profile: &profile.profile,
        record: &record,
        estimate: OnceCell::new(),
        replay,
    };
    let mut recomputed = Vec::new();
    // Every check the coverage says ran has its record, once: none can be left out of the
    // recompute by leaving its record out of the certificate.
    for kind in &cert.coverage.executed {
        match cert.checks.iter().filter(|c| c.name == *kind).count() {
            1 => {}
            n => v.record(Err(format!("check {kind} is listed as executed but has {n} records"))),
        }
    }
    for certified in &cert.checks {
        recomputed.push(match certified.status {
            CheckStatus::Error => {
                v.note(format!(
                    "check {} not recomputed: it stopped on an internal error in the run ({})",
                    certified.name, certified.reason
                ));
                certified.clone()
            }
            CheckStatus::Ran => {
                let again = checks::evaluate(certified.name, &obs);
                v.record(compare_check(certified, &again));
                again
            }
        });
    }
    if let Some(note) = decided_without_systematic_error(&record) {
        v.note(note);
    }
    let (verdict, _) = overall(&recomputed, &cert.coverage);
    v.record(if verdict == cert.verdict {
        Ok(format!(
            "overall verdict {} reproduced from {} recomputed checks",
            verdict.as_str(),
            recomputed.len()
        ))
    } else {
        Err(format!(
            "the recomputed checks give {}, the certificate says {}",
            verdict.as_str(),
            cert.verdict.as_str()
        ))
    });
    if let Some(Ok(replay)) = &obs.replay {
        let metrics = replay.task.as_ref().map(|(_, m)| m);
        v.record(same_figures("metrics", cert.metrics.as_ref(), metrics));
        v.record(same_figures("agreement", cert.agreement.as_ref(), replay.agreement_records().as_ref()));
    }
    Ok(())
}

/// Emulated latencies whose observations carry no systematic error were decided on their
/// scatter alone: the rule of certificates issued before the emulator's held-out error was
/// recorded. Recomputing reproduces that rule; the reader is told it is the laxer one.
fn decided_without_systematic_error(record: &ObservationRecord) -> Option<String> {
    let timing = record.timing.as_ref().and_then(Observed::value)?;
    (timing.basis == Basis::Emulated && timing.systematic_error.is_none()).then(|| {
        format!(
            "the observations' emulated latencies carry no systematic error: latency was recomputed on their scatter alone, not across the emulator's systematic error (±{:.0} % across chips, or the chip's own) as this edgecert issues it",
            crate::emulator::HELD_OUT_ERROR * 100.0
        )
    })
}

/// The golden set, model and profile the certificate names (or the ones given instead), loaded
/// as a run loads them; `Ok(Err(why))` when one is not the certified file.
fn load_certified(
    req: &VerifyRequest,
    cert: &Certificate,
) -> Result<std::result::Result<(Family, ProfileFile), String>> {
    let pick =
        |given: &Option<PathBuf>, certified: &str| given.clone().unwrap_or_else(|| PathBuf::from(certified));
    let golden = pick(&req.golden, &cert.golden.path);
    let model = pick(&req.model, &cert.subject.model);
    let profile_path = pick(&req.profile, &cert.profile.path);
    for (what, path, flag) in [
        ("golden set", &golden, "--golden"),
        ("model", &model, "--model"),
        ("profile", &profile_path, "--profile"),
    ] {
        if !path.exists() {
            return Ok(Err(format!(
                "the {what} is needed to recompute the static and emulated checks; {} does not exist (give it with {flag})",
                path.display()
            )));
        }
    }
    let family = load_family(&golden, Some(&model), &InputShapes::default())?;
    let profile = crate::profile::ChipProfile::load(&profile_path)?;
    let mode = cert.profile.npu_mode.as_deref();
    let (mut profiles, _) = apply_mode(vec![profile], mode)?;
    let profile = profiles.pop().ok_or_else(|| Error::Usage("no profile".into()))?;
    let differs = [
        ("golden set", &golden, &family.golden.sha256, &cert.golden.sha256),
        ("model", &model, &family.compressed.sha256, &cert.subject.sha256),
        ("chip profile", &profile_path, &profile.sha256, &cert.profile.sha256),
    ]
    .into_iter()
    .find(|(_, _, actual, certified)| actual != certified);
    Ok(match differs {
        Some((what, path, actual, certified)) => Err(format!(
            "the {what} {} hashes to {actual}, the certificate covers {certified}",
            path.display()
        )),
        None => Ok((family, profile)),
    })
}

/// The certified check and the recomputed one must agree member for member. A certificate from
/// before checks named the profile's gap (`profile_gap`) has none to compare: its reason, which
/// names the field, is compared as ever.
fn compare_check(certified: &CheckRecord, again: &CheckRecord) -> std::result::Result<String, String> {
    let mut again = again.clone();
    if certified.profile_gap.is_none() {
        again.profile_gap = None;
    }
    if *certified == again {
        return Ok(format!("check {}: {} reproduced", certified.name, certified.verdict.as_str()));
    }
    let (a, b) = (json(certified), json(&again));
    let differing: Vec<String> = a
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, value)| b.get(k.as_str()) != Some(*value))
        .map(|(k, value)| {
            format!(
                "{k}: certified {value}, recomputed {}",
                b.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
            )
        })
        .collect();
    Err(format!("check {} does not reproduce: {}", certified.name, differing.join("; ")))
}

fn same_figures<T: serde::Serialize + PartialEq>(
    what: &str,
    certified: Option<&T>,
    again: Option<&T>,
) -> std::result::Result<String, String> {
    match (certified, again) {
        (None, None) => Ok(format!("no {what} certified, none recomputed")),
        (Some(c), Some(a)) if c == a => Ok(format!("every {what} value and interval reproduced")),
        (c, a) => Err(format!(
            "{what} do not reproduce: certified {}, recomputed {}",
            c.map(json).unwrap_or_default(),
            a.map(json).unwrap_or_default()
        )),
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// What the checks read when recomputing: the artifacts, and the raw observations.
struct Recorded<'a> {
    family: &'a Family,
    profile: &'a ChipProfile,
    record: &'a ObservationRecord,
    estimate: OnceCell<Estimate>,
    replay: Option<std::result::Result<Replay, String>>,
}

impl Recorded<'_> {
    fn replay(&self) -> std::result::Result<&Replay, Unobserved> {
        match &self.replay {
            Some(Ok(replay)) => Ok(replay),
            Some(Err(why)) => Err(Unobserved::measured(why.as_str())),
            None => Err(Unobserved::measured("the raw observations hold no golden replay")),
        }
    }
}

impl Observations for Recorded<'_> {
    fn model(&self) -> &ModelInventory {
        &self.family.compressed
    }

    fn family(&self) -> &FamilyManifest {
        &self.family.golden.manifest
    }

    fn profile(&self) -> &ChipProfile {
        self.profile
    }

    fn estimate(&self) -> &Estimate {
        self.estimate.get_or_init(|| emulator::estimate(self.model(), self.profile()))
    }

    fn ambient_c(&self) -> f64 {
        self.record.ambient_c
    }

    fn timing_basis(&self) -> Basis {
        self.record.timing_basis
    }

    fn timing(&self) -> std::result::Result<&Timing, Unobserved> {
        match &self.record.timing {
            Some(timing) => timing.as_result(),
            None => Err(Unobserved {
                basis: self.record.timing_basis,
                reason: "the raw observations hold no latencies".into(),
                profile_gap: None,
            }),
        }
    }

    fn accuracy(&self) -> std::result::Result<&PairedEvaluation, Unobserved> {
        self.replay()?.paired()
    }

    fn agreement(&self) -> std::result::Result<&[OutputStatistics], Unobserved> {
        self.replay()?.agreement()
    }

    fn metered_power(&self) -> Option<std::result::Result<&crate::vocab::MeteredWindow, Unobserved>> {
        let timing = self.timing().ok()?;
        timing.power.as_ref()?;
        Some(crate::checks::metered_window(timing))
    }

    fn accuracy_cross_check(&self) -> Option<&crate::checks::EngineCrossCheck> {
        self.replay().ok()?.cross_check.as_ref()?.accuracy.as_ref()
    }

    fn replay_engine(&self) -> Option<&str> {
        self.record.replay_engine.as_deref()
    }

    fn soak(&self) -> Option<std::result::Result<&SoakTrace, Unobserved>> {
        self.record.soak_planned.then(|| self.timing().and_then(crate::checks::soak_of))
    }

    fn ambient_correction(&self) -> crate::checks::AmbientCorrection {
        crate::checks::AmbientCorrection {
            stated_c: self.record.stated_ambient_c,
            worst_c: self.record.ambient_max_c,
        }
    }
}
