//! Sharding a certification over the schedulers people already run (a Kubernetes Indexed Job,
//! a Slurm array, a CI matrix): `certify --shard K/N` certifies the (family, chip) units whose
//! index in the plan is K−1 modulo N, and writes them as usual plus `shard.json`; `edgecert
//! merge --out DIR PARTIAL...` checks that the partials are the N shards of one plan
//! ([`read_partials`]) and issues their certificates together through the run's own reporters
//! (`crate::workflow::merge`), `junit.xml` and `summary.txt` made from all of them. A unit's certificate depends only on its inputs, so a merged run holds the same
//! certificates as one process would have written (bar timestamps and ids).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::events::RunSummary;
use super::options::{BackendTarget, RunOptions};
use super::plan::{Plan, Selection};
use super::runner::ReplayPart;
use super::{Certification, InputSpec};
use crate::backend::BackendKind;
use crate::certificate::observations::{read_observations, ReplayRecord, OBSERVATIONS_FILE};
use crate::certificate::read_certificate;
use crate::certificate::schema::{Certificate, NotRunReason};
use crate::engine::EngineChoice;
use crate::vocab::{Error, Observed, Result};

/// The file a shard writes beside its reports.
pub const SHARD_FILE: &str = "shard.json";
/// The most shards a plan is cut into.
pub const MAX_SHARDS: usize = 10_000;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// What a shard is a slice of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ShardBy {
    /// (family, chip) units, round robin: each shard issues whole certificates.
    #[default]
    Units,
    /// Sample ranges of every golden set: each shard replays its range of every family, and
    /// `merge` judges the joined replays and issues the certificates.
    Samples,
}

impl Shard {
    /// This shard's samples of a golden set of `total`: `⌊(K−1)·total/N⌋..⌊K·total/N⌋`, so
    /// the N ranges tile the set in order.
    pub fn sample_range(&self, total: usize) -> std::ops::Range<usize> {
        let at = |k: usize| (k as u128 * total as u128 / self.count as u128) as usize;
        at(self.index - 1)..at(self.index)
    }

    /// Whether the unit at `unit` (its position in family-major, chip-minor order) is this
    /// shard's.
    pub fn includes(&self, unit: usize) -> bool {
        unit % self.count == self.index - 1
    }

    /// The shard a scheduler assigned through the environment, and which variable said so:
    /// a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, 0-based, with the completions in
    /// `JOB_COMPLETIONS`, which the Job's manifest sets) or a Slurm array
    /// (`SLURM_ARRAY_TASK_ID` from `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Option<(Shard, &'static str)>> {
        let number = |name: &str| -> Result<Option<usize>> {
            var(name)
                .map(|v| {
                    v.trim().parse::<usize>().map_err(|_| {
                        Error::Usage(format!("{name}={v:?} in the environment is not a whole number"))
                    })
                })
                .transpose()
        };
        let (index, count, source) = match (number("JOB_COMPLETION_INDEX")?, number("SLURM_ARRAY_TASK_ID")?) {
            (Some(index), _) => {
                let count = number("JOB_COMPLETIONS")?.ok_or_else(|| {
                    Error::Usage("JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not: set it in the Job's manifest to `.spec.completions` (docs/k8s-indexed-job.yaml), or give --shard K/N".into())
                })?;
                (index, count, "JOB_COMPLETION_INDEX")
            }
            (None, Some(id)) => {
                let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let count = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                    Error::Usage("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not".into())
                })?;
                (
                    id.checked_sub(min).ok_or_else(|| {
                        Error::Usage(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))
                    })?,
                    count,
                    "SLURM_ARRAY_TASK_ID",
                )
            }
            (None, None) => return Ok(None),
        };
        Ok(Some((Shard::new(index + 1, count)?, source)))
    }

    fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || count > MAX_SHARDS || index == 0 || index > count {
            return Err(Error::Usage(format!(
                "shard {index}/{count}: expected K/N with 1 ≤ K ≤ N ≤ {MAX_SHARDS}"
            )));
        }
        Ok(Shard { index, count })
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let (k, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected K/N, e.g. 2/4"))?;
        let parse = |x: &str| x.trim().parse::<usize>().map_err(|_| format!("`{s}`: expected K/N, e.g. 2/4"));
        Shard::new(parse(k)?, parse(n)?).map_err(|e| e.to_string())
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a shard writes in `shard.json`: which shard of which plan, and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRecord {
    pub shard: Shard,
    /// Digest of the plan's check ids and input digests: shards of one plan share it.
    pub plan_sha256: String,
    /// Every (family, chip) of the plan, in the order one process certifies them.
    pub units: Vec<(String, String)>,
    pub elapsed_s: f64,
    /// What the shard is a slice of (`units` when absent).
    #[serde(default)]
    pub by: ShardBy,
    /// For sample shards: what `merge` needs to certify the joined replays as the run would
    /// have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<SampleRun>,
}

/// The inputs and options of a sample-sharded run, recorded by every shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRun {
    pub inputs: InputSpecRecord,
    pub selection: Selection,
    pub backend: BackendKind,
    pub engine: EngineChoice,
    pub cross_check: bool,
    pub ambient_c: Option<f64>,
    /// Who issues the merged certificates (`certify --issuer` on the shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<crate::certificate::issuer::Issuer>,
}

/// [`InputSpec`] as JSON (compared whole between shards).
pub type InputSpecRecord = serde_json::Value;

/// The file a sample shard writes per family.
pub const REPLAY_PART_FILE: &str = "replay-part.json";

impl ShardRecord {
    pub fn new(shard: Shard, plan: &Plan, elapsed_s: f64) -> ShardRecord {
        let mut units: Vec<(String, String)> = Vec::new();
        for c in &plan.checks {
            let unit = (c.id.family.clone(), c.id.profile.clone());
            if units.last() != Some(&unit) {
                units.push(unit);
            }
        }
        ShardRecord { shard, plan_sha256: plan_digest(plan), units, elapsed_s, by: ShardBy::Units, run: None }
    }
}

/// The plan's identity, whatever the selection: every check id and every input digest.
fn plan_digest(plan: &Plan) -> String {
    let inputs = plan.families.iter().flat_map(|f| [&f.golden, &f.model, &f.reference]).chain(&plan.profiles);
    let parts: Vec<(String, String)> = inputs
        .map(|i| (i.name.clone(), i.sha256.clone()))
        .chain(plan.checks.iter().map(|c| (c.name.clone(), String::new())))
        .collect();
    crate::vocab::hash::sha256_of_parts(parts.iter().map(|(n, d)| (n.as_str(), d.as_bytes())))
}

/// The partial results of every shard of one plan, read and checked: what `merge` issues.
pub enum Partials {
    /// Unit shards: every certificate with the bytes of the observations it is bound to, in
    /// the plan's order, and the counts one process would have closed with.
    Units { certificates: Vec<(Certificate, Vec<u8>)>, summary: RunSummary },
    /// Sample shards: the run as it was asked for, with the joined replays given, to be
    /// certified exactly as one process would have judged them.
    Samples(Box<Certification>),
}

/// Reads the partial results of every shard of one plan. A missing, repeated or foreign shard,
/// or a certificate two partials both hold, is bad input; nothing is written then.
pub fn read_partials(out: &Path, partials: &[PathBuf]) -> Result<Partials> {
    let records = partials.iter().map(|p| read_shard(p)).collect::<Result<Vec<_>>>()?;
    check_complete(partials, &records)?;
    if records[0].by == ShardBy::Samples {
        return sample_run(out, partials, &records).map(|r| Partials::Samples(Box::new(r)));
    }
    let mut certificates: Vec<(Certificate, Vec<u8>)> = Vec::new();
    for partial in partials {
        for path in certificates_under(partial)? {
            let cert = read_certificate(&path)?;
            if let Err(why) = read_observations(&path, &cert)? {
                return Err(Error::Report { path: path.clone(), message: why });
            }
            if certificates
                .iter()
                .any(|(c, _)| c.golden.name == cert.golden.name && c.profile.name == cert.profile.name)
            {
                return Err(Error::Usage(format!(
                    "{}: {} on {} is in two partial results",
                    path.display(),
                    cert.golden.name,
                    cert.profile.name
                )));
            }
            let observations = crate::vocab::read_bytes(&path.with_file_name(OBSERVATIONS_FILE))?;
            certificates.push((cert, observations));
        }
    }
    // The order one process issues them in: the plan's.
    let units = &records[0].units;
    let position =
        |c: &Certificate| units.iter().position(|(f, p)| *f == c.golden.name && *p == c.profile.name);
    if let Some((stray, _)) = certificates.iter().find(|(c, _)| position(c).is_none()) {
        return Err(Error::Usage(format!(
            "a partial result holds {} on {}, which the shards' plan does not",
            stray.golden.name, stray.profile.name
        )));
    }
    certificates.sort_by_key(|(c, _)| position(c));
    let issued: Vec<&Certificate> = certificates.iter().map(|(c, _)| c).collect();
    let summary = summary_of(&issued, records.iter().map(|r| r.elapsed_s).sum());
    Ok(Partials::Units { certificates, summary })
}

/// Sample shards: every family's parts joined in sample order (each range once, the set
/// covered), and the run they recorded, with those replays given.
fn sample_run(out: &Path, partials: &[PathBuf], records: &[ShardRecord]) -> Result<Certification> {
    let run = records[0].run.clone().ok_or_else(|| {
        Error::Usage(format!(
            "{}: a sample shard that records no run",
            partials[0].join(SHARD_FILE).display()
        ))
    })?;
    if let Some((partial, _)) = partials.iter().zip(records).find(|(_, r)| r.run.as_ref() != Some(&run)) {
        return Err(Error::Usage(format!(
            "{} was certified with other inputs or options than {}",
            partial.display(),
            partials[0].display()
        )));
    }
    let backend = match run.backend {
        BackendKind::Emulated => BackendTarget::Emulated,
        BackendKind::Host => BackendTarget::Host,
        other => {
            return Err(Error::Usage(format!(
                "{}: a sample shard of a {} run, which is never sharded by samples",
                partials[0].join(SHARD_FILE).display(),
                other.name()
            )))
        }
    };
    let mut parts: BTreeMap<String, Vec<(PathBuf, ReplayPart)>> = BTreeMap::new();
    for partial in partials {
        for family in read_dirs(partial)? {
            let path = family.join(REPLAY_PART_FILE);
            if path.is_file() {
                let part: ReplayPart =
                    serde_json::from_slice(&crate::vocab::read_bytes(&path)?).map_err(|e| Error::Report {
                        path: path.clone(),
                        message: format!("not a replay part: {e}"),
                    })?;
                parts.entry(part.family.clone()).or_default().push((path, part));
            }
        }
    }
    let replays =
        parts.into_iter().map(|(family, parts)| Ok((family, join_parts(parts)?))).collect::<Result<_>>()?;
    let inputs: InputSpec = serde_json::from_value(run.inputs.clone()).map_err(|e| {
        Error::Usage(format!("{}: the recorded inputs do not read: {e}", partials[0].display()))
    })?;
    let request = Certification {
        inputs,
        selection: run.selection.clone(),
        options: RunOptions {
            backend,
            ambient_c: run.ambient_c,
            sign_with: None,
            issuer: run.issuer.clone(),
            progress: false,
            reference_cache: None,
            engine: run.engine,
            cross_check: run.cross_check,
            given_replays: Some(replays),
            min_duration_s: 0.0,
            power_meter: None,
            // Sample shards replay for accuracy; a soak is never sharded (refused with one).
            soak: None,
            ambient_max_c: None,
        },
        out: out.to_path_buf(),
    };
    let plan = super::plan(&request.inputs, &request.selection)?;
    if plan_digest(&plan) != records[0].plan_sha256 {
        return Err(Error::Usage(
            "the inputs the shards recorded have changed since they ran (another model, golden set or profile): certify the shards again".into(),
        ));
    }
    Ok(request)
}

/// One family's parts in sample order, checked as they join: every part within one set of
/// `total` samples and as long as its record, the ranges tiling `0..total` exactly. A part's
/// file is bad input however it fails; an unavailable part makes the family's replay
/// unavailable, its file named.
fn join_parts(mut parts: Vec<(PathBuf, ReplayPart)>) -> Result<Observed<ReplayRecord>> {
    // By end too: an empty range sorts before the range starting where it does.
    parts.sort_by_key(|(_, p)| (p.first, p.end));
    let Some((set_by, total)) = parts.first().map(|(path, p)| (path.clone(), p.total)) else {
        return Err(Error::Usage("no replay parts".into()));
    };
    let (mut next, mut last) = (0, set_by.clone());
    let mut joined: Option<ReplayRecord> = None;
    let mut unavailable = None;
    for (path, part) in parts {
        check_part(&path, &part, next, (total, &set_by))?;
        (next, last) = (part.end, path);
        match part.replay {
            Observed::Observed { value } => match joined.as_mut() {
                None => joined = Some(value),
                Some(j) => {
                    j.append(value).map_err(|message| Error::Report { path: last.clone(), message })?
                }
            },
            Observed::Unavailable { basis, reason, profile_gap } => {
                let reason = format!("{}: {reason}", last.display());
                unavailable.get_or_insert(Observed::Unavailable { basis, reason, profile_gap });
            }
        }
    }
    let short = |message: String| Error::Report { path: last.clone(), message };
    if next != total {
        return Err(short(format!(
            "the parts end at sample {next}, expected {total}: the part of samples {next}..{total} is missing"
        )));
    }
    if let Some(unavailable) = unavailable {
        return Ok(unavailable);
    }
    let joined = joined.expect("a part, every part observed");
    if joined.samples != total {
        return Err(short(format!("the joined replay holds {} samples, expected {total}", joined.samples)));
    }
    Ok(Observed::Observed { value: joined })
}

/// A part read in order, where the one before it ended at `next`: of the same set of `total`
/// samples as `set_by` says, a range within it starting at `next`, its record as long as the
/// range.
fn check_part(path: &Path, part: &ReplayPart, next: usize, (total, set_by): (usize, &Path)) -> Result<()> {
    let range = format!("samples {}..{} of {}", part.first, part.end, part.total);
    let expected = if part.total != total {
        format!("a golden set of {total} samples, as {} says", set_by.display())
    } else if part.end < part.first {
        "a range that ends at or after its first sample".into()
    } else if part.end > total {
        format!("a range that ends at or before sample {total}")
    } else if part.first < next {
        format!("the range starting at {next} of {total} (it overlaps the part before)")
    } else if part.first > next {
        format!("the range starting at {next} of {total} (samples {next}..{} are missing)", part.first)
    } else {
        match part.replay.value().map(|r| r.samples) {
            Some(samples) if samples != part.end - part.first => {
                format!("a replay of {} samples, but it records {samples}", part.end - part.first)
            }
            _ => return Ok(()),
        }
    };
    Err(Error::Report { path: path.to_path_buf(), message: format!("{range}: expected {expected}") })
}

fn read_shard(partial: &Path) -> Result<ShardRecord> {
    let path = partial.join(SHARD_FILE);
    if !path.exists() {
        return Err(Error::Usage(format!(
            "{} has no {SHARD_FILE}: not the output of `certify --shard K/N`",
            partial.display()
        )));
    }
    let bytes = crate::vocab::read_bytes(&path)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Report { path, message: format!("not a shard record: {e}") })
}

/// The partials must be shards 1..N of one N and one plan, each once.
fn check_complete(partials: &[PathBuf], records: &[ShardRecord]) -> Result<()> {
    let Some(first) = records.first() else {
        return Err(Error::Usage("merge needs the partial results of every shard".into()));
    };
    for (partial, r) in partials.iter().zip(records) {
        if r.plan_sha256 != first.plan_sha256 || r.shard.count != first.shard.count {
            return Err(Error::Usage(format!(
                "{} is shard {} of another plan than {} (shard {}): certify every shard with the same inputs and --shard K/{}",
                partial.display(),
                r.shard,
                partials[0].display(),
                first.shard,
                first.shard.count
            )));
        }
    }
    for index in 1..=first.shard.count {
        let holding: Vec<&PathBuf> =
            partials.iter().zip(records).filter(|(_, r)| r.shard.index == index).map(|(p, _)| p).collect();
        match holding.as_slice() {
            [_] => {}
            [] => {
                return Err(Error::Usage(format!(
                    "shard {index}/{} is missing from the partial results",
                    first.shard.count
                )))
            }
            [a, b, ..] => {
                return Err(Error::Usage(format!(
                    "shard {index}/{} is given twice: {} and {}",
                    first.shard.count,
                    a.display(),
                    b.display()
                )))
            }
        }
    }
    Ok(())
}

/// `<partial>/<family>/<chip>/certificate.json`, sorted.
fn certificates_under(partial: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for family in read_dirs(partial)? {
        for chip in read_dirs(&family)? {
            let cert = chip.join(crate::certificate::CERTIFICATE_FILE);
            if cert.is_file() {
                found.push(cert);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn read_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_type().map_err(|e| Error::io(&entry.path(), e))?.is_dir() {
            dirs.push(entry.path());
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The counts a single run would have closed with, from the certificates it issued.
fn summary_of(certificates: &[&Certificate], elapsed_s: f64) -> RunSummary {
    let mut summary = RunSummary { elapsed_s, ..RunSummary::default() };
    for cert in certificates {
        cert.checks.iter().for_each(|c| summary.count(c));
        for not_run in &cert.coverage.not_run {
            match not_run.reason {
                NotRunReason::Skipped => summary.skipped += 1,
                NotRunReason::Filtered => summary.filtered_out += 1,
                NotRunReason::Error => {}
            }
        }
        summary.certificates.push(cert.verdict);
        summary.issued.push((cert.golden.name.clone(), cert.profile.name.clone()));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_units_round_robin_and_parse_k_of_n() {
        let shards: Vec<Shard> = ["1/3", "2/3", "3/3"].iter().map(|s| s.parse().unwrap()).collect();
        for unit in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.includes(unit)).count(), 1, "unit {unit} in one shard");
        }
        assert!(shards[1].includes(4) && !shards[1].includes(5));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_environment_gives_a_zero_based_index() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let k8s = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "0"), ("JOB_COMPLETIONS", "2")])).unwrap();
        assert_eq!(k8s, Some((Shard { index: 1, count: 2 }, "JOB_COMPLETION_INDEX")));
        assert_eq!(Shard::from_env(env(&[])).unwrap(), None);
        let past = Shard::from_env(env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "3")]));
        assert!(past.unwrap_err().to_string().contains("shard 4/3"));
        let word = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "one")])).unwrap_err().to_string();
        assert!(word.contains("not a whole number"), "{word}");
    }
}
