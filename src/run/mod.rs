//! A certification run, as a library: the request is validated ([`Certification::validate`]),
//! inputs are loaded and validated ([`Inputs`]), a [`Plan`] of stable check ids is built from
//! them and the filters, the runner executes it and emits [`Event`]s to whatever [`Reporter`]s
//! the caller gives (the standard ones are in `crate::reporter`, put together by
//! `crate::workflow`), and their files are written together at the end, atomically.
//! `docs/architecture.md` draws the flow.

mod cache;
mod certificate;
mod events;
mod inputs;
mod options;
mod plan;
mod progress;
mod recompute;
mod replay;
mod runner;
mod shard;

use std::io::Write;
use std::path::PathBuf;

use crate::vocab::{write_all_atomically, Error, Result};

pub use cache::{ReferenceCache, MAX_CACHE_BYTES};
pub use certificate::{DECISION_RULE, STATEMENT};
pub use events::{Event, Observation, ReportFile, Reporter, RunSummary};
pub use inputs::{load_family, Family, InputSpec, Inputs};
pub use options::{
    default_engine, BackendFlags, BackendTarget, RunOptions, SoakOptions, DEVICE_JOURNAL_DIR,
    MAX_MIN_DURATION_S, MAX_SOAK_S,
};
pub use plan::{
    CheckId, Exclusion, Plan, PlannedCheck, PlannedFamily, PlannedInput, Selection, PLAN_SCHEMA_VERSION,
};
pub use recompute::verify;
pub use runner::{execute, ReplayPart};
pub use shard::{
    read_partials, Partials, SampleRun, Shard, ShardBy, ShardRecord, MAX_SHARDS, REPLAY_PART_FILE, SHARD_FILE,
};

/// Everything `edgecert certify` asks of a run.
#[derive(Debug, Clone)]
pub struct Certification {
    pub inputs: InputSpec,
    pub selection: Selection,
    pub options: RunOptions,
    /// Where certificates, `junit.xml` and `summary.txt` go.
    pub out: PathBuf,
}

impl Certification {
    /// Every rule a request must meet before anything is loaded: the option combinations a
    /// library caller could otherwise get wrong, each refused with the option it names.
    pub fn validate(&self) -> Result<()> {
        self.options.validate()?;
        let backend = self.options.backend.kind();
        if self.sample_shard().is_some() && self.options.soak.is_some() {
            return Err(Error::Usage(
                "--soak heats one device for one run: it cannot be split across sample shards (run it whole)"
                    .into(),
            ));
        }
        if self.sample_shard().is_some() && backend.keeps_device_journal() {
            return Err(Error::Usage(format!(
                "--shard-by samples replays on many machines and merges on one: a {} run keeps its device outputs in its own journal instead (run it whole; a rerun resumes)",
                backend.name()
            )));
        }
        Ok(())
    }

    /// The sample shard this request replays, if it is one (it issues no certificate).
    pub fn sample_shard(&self) -> Option<Shard> {
        self.selection.shard.filter(|_| self.selection.shard_by == ShardBy::Samples)
    }
}

/// Writes the files every reporter gathered, and `extra`, all at once (all land or none does).
pub fn write_reports(reporters: &mut [&mut dyn Reporter], extra: Vec<(PathBuf, Vec<u8>)>) -> Result<()> {
    let mut files: Vec<(PathBuf, Vec<u8>)> =
        reporters.iter_mut().flat_map(|r| r.finish()).map(|f| (f.path, f.bytes)).collect();
    files.extend(extra);
    write_all_atomically(&files)
}

/// Runs the plan with `reporters` and writes their files (with the shard record of a unit
/// shard beside them).
pub fn execute_and_write(
    request: &Certification,
    inputs: &Inputs,
    plan: &Plan,
    reporters: &mut [&mut dyn Reporter],
) -> Result<RunSummary> {
    let summary = execute(inputs, plan, &request.options, reporters)?;
    let mut extra = Vec::new();
    if let Some(shard) = request.selection.shard {
        let record = ShardRecord::new(shard, plan, summary.elapsed_s);
        let bytes = serde_json::to_vec_pretty(&record).expect("a shard record is plain data");
        extra.push((request.out.join(SHARD_FILE), bytes));
    }
    write_reports(reporters, extra)?;
    Ok(summary)
}

/// Loads the request's inputs and plans it; filters that select nothing are bad input.
pub fn load_and_plan(request: &Certification) -> Result<(Inputs, Plan)> {
    request.validate()?;
    let inputs = Inputs::load(&request.inputs)?;
    let plan = Plan::build(&inputs, &request.selection);
    if plan.selected().next().is_none() {
        return Err(Error::Usage(format!(
            "no planned check matches the filters (the plan holds {} checks; `edgecert certify --list` prints them)",
            plan.checks.len()
        )));
    }
    Ok((inputs, plan))
}

/// `certify --shard K/N --shard-by samples`: this shard's sample range of every family's
/// replay, written as `<family>/replay-part.json`, and `shard.json` recording the run so
/// `merge` can judge the joined replays; no certificate is issued by a sample shard.
pub fn replay_sample_shard(
    request: &Certification,
    inputs: &Inputs,
    plan: &Plan,
    shard: Shard,
    terminal: &mut dyn Write,
) -> Result<RunSummary> {
    let started = std::time::Instant::now();
    let parts = runner::replay_parts(inputs, plan, &request.options, shard)?;
    let mut files = Vec::new();
    let mut text = String::new();
    for part in &parts {
        let bytes = serde_json::to_vec(part).expect("a replay part is plain data");
        files.push((request.out.join(&part.family).join(REPLAY_PART_FILE), bytes));
        let status = match &part.replay {
            crate::vocab::Observed::Observed { .. } => "replayed".to_string(),
            crate::vocab::Observed::Unavailable { reason, .. } => format!("not replayed: {reason}"),
        };
        text +=
            &format!("{}: samples {}..{} of {} {status}\n", part.family, part.first, part.end, part.total);
    }
    let elapsed_s = started.elapsed().as_secs_f64();
    let selection = Selection { shard: None, shard_by: ShardBy::Units, ..request.selection.clone() };
    let mut record = ShardRecord::new(shard, plan, elapsed_s);
    record.by = ShardBy::Samples;
    record.run = Some(SampleRun {
        inputs: serde_json::to_value(&request.inputs).expect("input paths are plain data"),
        selection,
        backend: request.options.backend.kind(),
        engine: request.options.engine,
        cross_check: request.options.cross_check,
        ambient_c: request.options.ambient_c,
        issuer: request.options.issuer.clone(),
    });
    files.push((request.out.join(SHARD_FILE), serde_json::to_vec_pretty(&record).expect("plain data")));
    write_all_atomically(&files)?;
    text += &format!("sample shard {shard}: {} famil(ies) replayed in {elapsed_s:.2}s; `edgecert merge` issues the certificates\n", parts.len());
    terminal.write_all(text.as_bytes()).map_err(|e| Error::io(std::path::Path::new("standard output"), e))?;
    Ok(RunSummary { elapsed_s, ..RunSummary::default() })
}

/// The plan `certify` would run, without running it.
pub fn plan(inputs: &InputSpec, selection: &Selection) -> Result<Plan> {
    Ok(Plan::build(&Inputs::load(inputs)?, selection))
}
