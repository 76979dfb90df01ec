//! A certification run, as a library: inputs are loaded and validated ([`Inputs`]), a [`Plan`]
//! of stable check ids is built from them and the filters, the runner executes it and emits
//! [`Event`]s, and [`Reporter`]s render them (terminal, certificate JSON, JUnit, summary). The
//! files of every reporter are written together at the end, atomically. `docs/architecture.md`
//! draws the flow.

mod cache;
mod certificate;
mod events;
mod inputs;
mod plan;
mod recompute;
mod replay;
mod runner;
mod shard;

use std::io::Write;
use std::path::PathBuf;

use crate::diff::{self, Comparison, Runs};
use crate::error::{Error, Result};
use crate::report::{self, CertificateFiles, JunitFile, SummaryFile, TerminalFormat, TerminalReporter};

pub use cache::{ReferenceCache, MAX_CACHE_BYTES};
pub use certificate::{DECISION_RULE, STATEMENT};
pub use events::{Event, Observation, ReportFile, Reporter, RunSummary};
pub use inputs::{load_family, Family, InputSpec, Inputs};
pub use plan::{
    CheckId, Exclusion, Plan, PlannedCheck, PlannedFamily, PlannedInput, Selection, PLAN_SCHEMA_VERSION,
};
pub use recompute::verify;
pub use runner::{execute, ReplayPart, RunOptions};
pub use shard::{
    merge, Merged, SampleRun, Shard, ShardBy, ShardRecord, MAX_SHARDS, REPLAY_PART_FILE, SHARD_FILE,
};

/// Everything `edgecert certify` does.
#[derive(Debug, Clone)]
pub struct Certification {
    pub inputs: InputSpec,
    pub selection: Selection,
    pub options: RunOptions,
    /// Where certificates, `junit.xml` and `summary.txt` go.
    pub out: PathBuf,
    pub format: TerminalFormat,
}

/// Loads the inputs, plans, runs with the standard reporters, and writes every report at once.
/// Bad input, or filters that select nothing, stop before anything runs or is written.
pub fn certify(request: &Certification, terminal: &mut dyn Write) -> Result<RunSummary> {
    let inputs = Inputs::load(&request.inputs)?;
    let plan = Plan::build(&inputs, &request.selection);
    if plan.selected().next().is_none() {
        return Err(Error::Usage(format!(
            "no planned check matches the filters (the plan holds {} checks; `edgecert certify --list` prints them)",
            plan.checks.len()
        )));
    }
    if let (Some(shard), ShardBy::Samples) = (request.selection.shard, request.selection.shard_by) {
        return replay_sample_shard(request, &inputs, &plan, shard, terminal);
    }
    let mut screen = TerminalReporter::new(terminal, request.format);
    let mut certificates = CertificateFiles::new(request.out.clone());
    let mut junit = JunitFile::new(request.out.clone());
    let mut summary_file = SummaryFile::new(request.out.clone());
    let summary = {
        let mut reporters: [&mut dyn Reporter; 4] =
            [&mut screen, &mut certificates, &mut junit, &mut summary_file];
        let summary = execute(&inputs, &plan, &request.options, &mut reporters)?;
        let mut files: Vec<(PathBuf, Vec<u8>)> =
            reporters.iter_mut().flat_map(|r| r.finish()).map(|f| (f.path, f.bytes)).collect();
        if let Some(shard) = request.selection.shard {
            let record = ShardRecord::new(shard, &plan, summary.elapsed_s);
            let bytes = serde_json::to_vec_pretty(&record).expect("a shard record is plain data");
            files.push((request.out.join(SHARD_FILE), bytes));
        }
        report::write_all_atomically(&files)?;
        summary
    };
    Ok(summary)
}

/// `certify --shard K/N --shard-by samples`: this shard's sample range of every family's
/// replay, written as `<family>/replay-part.json`, and `shard.json` recording the run so
/// `merge` can judge the joined replays; no certificate is issued by a sample shard.
fn replay_sample_shard(
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
            report::observations::Observed::Observed { .. } => "replayed".to_string(),
            report::observations::Observed::Unavailable { reason, .. } => format!("not replayed: {reason}"),
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
        backend: request.options.backend,
        engine: request.options.engine,
        cross_check: request.options.cross_check,
        ambient_c: request.options.ambient_c,
    });
    files.push((request.out.join(SHARD_FILE), serde_json::to_vec_pretty(&record).expect("plain data")));
    report::write_all_atomically(&files)?;
    text += &format!("sample shard {shard}: {} famil(ies) replayed in {elapsed_s:.2}s; `edgecert merge` issues the certificates\n", parts.len());
    terminal.write_all(text.as_bytes()).map_err(|e| Error::io(std::path::Path::new("standard output"), e))?;
    Ok(RunSummary { elapsed_s, ..RunSummary::default() })
}

/// The Markdown comparison `certify --baseline` writes beside the reports.
pub const DIFF_FILE: &str = "diff.md";

/// `certify --baseline`: the run exactly as [`certify`] (its reports written first), then the
/// certificates it issued compared with the baseline's as `edgecert diff` compares them, the
/// Markdown written to `<out>/diff.md`. Read the baseline ([`Runs::load`]) before calling, so
/// a bad baseline stops everything before anything runs.
pub fn certify_against_baseline(
    request: &Certification,
    baseline: &Runs,
    terminal: &mut dyn Write,
) -> Result<(RunSummary, Comparison)> {
    let summary = certify(request, terminal)?;
    // Only what this run issued: the output folder may still hold other runs' certificates.
    let issued: Vec<PathBuf> = summary
        .issued
        .iter()
        .map(|(family, chip)| report::certificate_path(&request.out, family, chip))
        .collect();
    let comparison = diff::diff(baseline, &Runs::from_files(&request.out, &issued)?);
    report::write_all_atomically(&[(request.out.join(DIFF_FILE), comparison.markdown().into_bytes())])?;
    Ok((summary, comparison))
}

/// The plan `certify` would run, without running it.
pub fn plan(inputs: &InputSpec, selection: &Selection) -> Result<Plan> {
    Ok(Plan::build(&Inputs::load(inputs)?, selection))
}
