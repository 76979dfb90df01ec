//! The raw observations behind a certificate, written beside it as `observations.json` and
//! bound to it by digest (the certificate's `observations` member, inside the signed body):
//! per-sample latencies, each model's per-sample contributions to the task metric, the
//! per-sample output-agreement figures, and the ambient temperature the thermal model ran at.
//! From them and the certified artifacts, `verify --recompute` decides every check again.
//!
//! The file is hostile input like the certificate: bounded size, known members only, per-sample
//! vectors of one length.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::{ArtifactFile, Basis, Certificate};
use crate::metrics::{Contributions, OutputSamples, Scorer};
use crate::vocab::hash::sha256_hex;
use crate::vocab::{Error, Observed, Result, Timing};

/// The file name beside the certificate.
pub const OBSERVATIONS_FILE: &str = "observations.json";
/// What `format` says: the layout below, version 1.
pub const OBSERVATIONS_FORMAT: &str = "edgecert-observations/1";
/// The largest observations file read back.
pub const MAX_OBSERVATIONS_BYTES: u64 = 512 * 1024 * 1024;

/// Everything the checks of one certificate read that is not in the certified artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObservationRecord {
    pub format: String,
    pub family: String,
    pub profile: String,
    /// Ambient temperature of the thermal model (°C).
    pub ambient_c: f64,
    /// The ambient the operator stated (`--ambient`) and the worst case (`--ambient-max`) a
    /// soak's temperature is corrected to; absent when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_ambient_c: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient_max_c: Option<f64>,
    /// Whether a soak was asked (`--soak`): the thermal check then decides on it, or says why
    /// it could not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soak_planned: bool,
    /// The basis latency figures have on this backend.
    pub timing_basis: Basis,
    /// The runtime the compressed model is replayed on (an engine here, a device's, a runtime
    /// command's): its operator coverage, not tract's, decides whether the model runs. Absent
    /// in older files, where tract replayed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_engine: Option<String>,
    /// Single-inference latencies; `None` when no check asked for them.
    pub timing: Option<Observed<Timing>>,
    /// The golden replay through both models; `None` when no check asked for it.
    pub replay: Option<Observed<ReplayRecord>>,
    /// Power and temperature traces over time, where a backend meters them. The emulated
    /// backend has none: its power and thermal figures are recomputed from the model and the
    /// profile.
    pub traces: Vec<Trace>,
}

/// Per-sample results of the golden replay, and the resampling they were judged with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRecord {
    pub engine: String,
    pub samples: usize,
    /// Seed of the bootstrap behind every accuracy and agreement interval.
    pub seed: u64,
    pub confidence: f64,
    /// The compressed and the FP32 model's contributions to the task metric, when there is one.
    pub compressed: Option<Contributions>,
    pub reference: Option<Contributions>,
    /// Per output tensor, when the golden set asks for output agreement.
    pub agreement: Option<Vec<OutputSamples>>,
    /// The compressed model replayed again on a second engine (`certify --cross-check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_check: Option<CrossCheckRecord>,
}

/// The compressed model on the second engine: its contributions to the task metric, and per
/// output tensor how its outputs follow the first engine's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossCheckRecord {
    pub engine: String,
    pub compressed: Option<Contributions>,
    pub agreement: Vec<OutputSamples>,
}

impl ReplayRecord {
    /// Appends `later`'s samples after these: sample shards joined in order. The two must come
    /// from one run (engine, seed, confidence, what was observed). An empty range (a shard of a
    /// set smaller than the shard count) observed nothing, not a different thing: it joins as
    /// nothing.
    pub fn append(&mut self, later: ReplayRecord) -> std::result::Result<(), String> {
        if (&self.engine, self.seed, self.confidence) != (&later.engine, later.seed, later.confidence) {
            return Err(format!(
                "replayed on {} (seed {}, confidence {}) where the earlier samples were on {} (seed {}, confidence {})",
                later.engine, later.seed, later.confidence, self.engine, self.seed, self.confidence
            ));
        }
        if later.samples == 0 {
            return Ok(());
        }
        if self.samples == 0 {
            *self = later;
            return Ok(());
        }
        self.samples += later.samples;
        append_contributions(&mut self.compressed, later.compressed)?;
        append_contributions(&mut self.reference, later.reference)?;
        match (&mut self.agreement, later.agreement) {
            (Some(gathered), Some(outputs)) => append_outputs(gathered, outputs)?,
            (None, None) => {}
            _ => return Err("output agreement was observed for some samples only".into()),
        }
        match (&mut self.cross_check, later.cross_check) {
            (Some(x), Some(y)) if x.engine == y.engine => {
                append_contributions(&mut x.compressed, y.compressed)?;
                append_outputs(&mut x.agreement, y.agreement)?;
            }
            (None, None) => {}
            _ => return Err("the engine cross-check differs between the samples".into()),
        }
        Ok(())
    }
}

/// `later`'s contributions after `gathered` (either may be absent for an empty range).
pub(crate) fn append_contributions(
    gathered: &mut Option<Contributions>,
    later: Option<Contributions>,
) -> std::result::Result<(), String> {
    match (gathered.as_mut(), later) {
        (Some(g), Some(l)) => g.extend(l),
        (None, l) => {
            *gathered = l;
            Ok(())
        }
        (Some(_), None) => Ok(()),
    }
}

/// Per-output figures of later samples after those gathered (empty: the first ones).
pub(crate) fn append_outputs(
    gathered: &mut Vec<OutputSamples>,
    outputs: Vec<OutputSamples>,
) -> std::result::Result<(), String> {
    if gathered.is_empty() {
        *gathered = outputs;
        return Ok(());
    }
    if outputs.is_empty() {
        return Ok(());
    }
    if gathered.len() != outputs.len() {
        return Err(format!("the models gave {} outputs, then {}", gathered.len(), outputs.len()));
    }
    gathered.iter_mut().zip(outputs).for_each(|(g, o)| g.extend(o));
    Ok(())
}

/// A quantity metered over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    pub quantity: String,
    pub unit: String,
    pub basis: Basis,
    /// (seconds, value) pairs.
    pub points: Vec<(f64, f64)>,
}

impl ObservationRecord {
    /// The bytes written: compact JSON, the same for the same observations.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("observations serialise")
    }

    /// The file these bytes make, as the certificate names it.
    pub fn artifact(bytes: &[u8]) -> ArtifactFile {
        ArtifactFile {
            path: OBSERVATIONS_FILE.to_string(),
            sha256: sha256_hex(bytes),
            size_bytes: bytes.len() as u64,
        }
    }

    /// Per-sample vectors that disagree in length, or a contribution for another metric than
    /// the certificate's, would make figures no run produced.
    fn check_consistent(&self) -> std::result::Result<(), String> {
        if let Some(timing) = self.timing.as_ref().and_then(Observed::value) {
            timing.check_consistent()?;
        }
        let Some(replay) = self.replay.as_ref().and_then(Observed::value) else { return Ok(()) };
        for (which, c) in [("compressed", &replay.compressed), ("reference", &replay.reference)] {
            if let Some(c) = c {
                c.check_consistent().map_err(|e| format!("replay.{which}: {e}"))?;
                if c.len() != replay.samples {
                    return Err(format!(
                        "replay.{which} has {} samples, replay.samples {}",
                        c.len(),
                        replay.samples
                    ));
                }
            }
        }
        let cross = replay.cross_check.as_ref();
        if let Some(c) = cross.and_then(|x| x.compressed.as_ref()) {
            c.check_consistent().map_err(|e| format!("replay.cross_check.compressed: {e}"))?;
            if c.len() != replay.samples {
                return Err(format!(
                    "replay.cross_check.compressed has {} samples, replay.samples {}",
                    c.len(),
                    replay.samples
                ));
            }
        }
        let outputs = replay.agreement.iter().flatten().map(|o| ("agreement", o));
        for (which, out) in
            outputs.chain(cross.into_iter().flat_map(|x| &x.agreement).map(|o| ("cross_check", o)))
        {
            out.check_consistent().map_err(|e| format!("replay.{which}: {e}"))?;
            if out.len() != replay.samples {
                return Err(format!(
                    "replay.{which} `{}` has {} samples, replay.samples {}",
                    out.output,
                    out.len(),
                    replay.samples
                ));
            }
        }
        Ok(())
    }
}

/// Where the observations of `certificate` (read from `certificate_path`) are: beside it, under
/// the file name it records. A name with a directory in it is refused: no path escapes.
pub fn observations_path(certificate_path: &Path, certificate: &Certificate) -> Result<Option<PathBuf>> {
    let Some(named) = &certificate.observations else { return Ok(None) };
    let plain = Path::new(&named.path).file_name().is_some_and(|f| f == named.path.as_str());
    if !plain || named.path == ".." {
        return Err(Error::Report {
            path: certificate_path.to_path_buf(),
            message: format!("observations.path `{}` must be a file name beside the certificate", named.path),
        });
    }
    let dir = certificate_path.parent().unwrap_or(Path::new("."));
    Ok(Some(dir.join(&named.path)))
}

/// Reads the observations the certificate names and checks they are the ones it was issued
/// with. `Ok(Err(why))` is a mismatch `verify` reports; `Err` is an unreadable file.
pub fn read_observations(
    certificate_path: &Path,
    certificate: &Certificate,
) -> Result<std::result::Result<ObservationRecord, String>> {
    let Some(path) = observations_path(certificate_path, certificate)? else {
        return Ok(Err(
            "the certificate names no raw observations (it was issued before they were recorded)".into(),
        ));
    };
    let named = certificate.observations.as_ref().expect("named above");
    let bytes = match read_bounded(&path) {
        Ok(bytes) => bytes,
        Err(e) if !path.exists() => return Ok(Err(format!("{} is missing: {e}", path.display()))),
        Err(e) => return Err(e),
    };
    let sha = sha256_hex(&bytes);
    if sha != named.sha256 {
        return Ok(Err(format!(
            "observations {} hash to {sha}, the certificate is bound to {}: they were changed after issue",
            path.display(),
            named.sha256
        )));
    }
    let bad = |message: String| Error::Report { path: path.clone(), message };
    let record: ObservationRecord =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not edgecert observations: {e}")))?;
    if record.format != OBSERVATIONS_FORMAT {
        return Err(bad(format!("format `{}`; this edgecert reads `{OBSERVATIONS_FORMAT}`", record.format)));
    }
    record.check_consistent().map_err(bad)?;
    Ok(Ok(record))
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = crate::vocab::open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_OBSERVATIONS_BYTES + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_OBSERVATIONS_BYTES {
        return Err(Error::Report {
            path: path.to_path_buf(),
            message: format!("larger than {MAX_OBSERVATIONS_BYTES} bytes: not edgecert observations"),
        });
    }
    Ok(bytes)
}

/// Only the per-sample latencies of a certificate's observations, for comparing runs
/// (`edgecert diff`): the file is bounded and must be the one the certificate is bound to (its
/// digest), but only its `timing` member is parsed, so a comparison does not depend on the rest
/// of the layout. `None` when the certificate names no observations, the file is absent (a
/// copy of the certificate alone), or no latency was observed.
pub fn read_timing(certificate_path: &Path, certificate: &Certificate) -> Result<Option<Timing>> {
    let Some(path) = observations_path(certificate_path, certificate)? else { return Ok(None) };
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_bounded(&path)?;
    let bad = |message: String| Error::Report { path: path.clone(), message };
    let named = certificate.observations.as_ref().expect("observations_path found it named");
    let sha = sha256_hex(&bytes);
    if sha != named.sha256 {
        return Err(bad(format!(
            "hashes to {sha}, the certificate is bound to {}: the observations were changed after issue",
            named.sha256
        )));
    }
    #[derive(Deserialize)]
    struct TimingOnly {
        timing: Option<Observed<Timing>>,
    }
    let parsed: TimingOnly = serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("no readable `timing` in these observations: {e}")))?;
    let Some(timing) = parsed.timing.and_then(|t| t.value().cloned()) else { return Ok(None) };
    timing.check_consistent().map_err(bad)?;
    Ok((!timing.latencies_ms.is_empty()).then_some(timing))
}

/// What a report knows of a certificate's per-sample latencies.
pub enum LatencyObservations {
    /// No observations file beside the certificate (it travelled alone), or none named.
    Absent,
    /// The observations hold no latencies (no check asked for them, or none could be made).
    NotRecorded,
    /// The file exists and could not be used: changed after issue, or malformed.
    Unreadable {
        path: PathBuf,
        error: String,
    },
    Present(Box<Timing>),
}

/// The latencies a report plots: [`read_timing`], with what went wrong kept for the report to
/// say rather than failing it.
pub fn read_latencies(certificate_path: &Path, certificate: &Certificate) -> LatencyObservations {
    let path = match observations_path(certificate_path, certificate) {
        Ok(Some(path)) => path,
        Ok(None) => return LatencyObservations::Absent,
        Err(e) => {
            return LatencyObservations::Unreadable {
                path: certificate_path.to_path_buf(),
                error: e.to_string(),
            }
        }
    };
    if !path.exists() {
        return LatencyObservations::Absent;
    }
    match read_timing(certificate_path, certificate) {
        Ok(Some(timing)) => LatencyObservations::Present(Box::new(timing)),
        Ok(None) => LatencyObservations::NotRecorded,
        Err(e) => LatencyObservations::Unreadable { path, error: e.to_string() },
    }
}
