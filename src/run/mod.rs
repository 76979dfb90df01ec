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
pub use runner::{execute, RunOptions};
pub use shard::{merge, Merged, Shard, ShardRecord, MAX_SHARDS, SHARD_FILE};

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
