//! The commands as library calls, one layer above the run and its reporters: a certification
//! with the standard reporters (terminal, certificate files, JUnit, summary) and its files
//! written at once, the same against a baseline, and the merge of shards, whose files are issued
//! through the very reporters a run uses. `cli` parses arguments and calls these.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::certificate::certificate_path;
use crate::diff::{self, Comparison, Runs};
use crate::reporter::{CertificateFiles, JunitFile, SummaryFile, TerminalFormat, TerminalReporter};
use crate::run::{self, Certification, Event, Partials, Reporter, RunSummary};
use crate::vocab::{write_all_atomically, Result};

/// The Markdown comparison `certify --baseline` writes beside the reports.
pub const DIFF_FILE: &str = "diff.md";

/// The reporters every run writes its folder with: one certificate (with its observations and
/// JUnit file) per (family, chip), and the run's `junit.xml` and `summary.txt`.
struct FileReporters {
    certificates: CertificateFiles,
    junit: JunitFile,
    summary: SummaryFile,
}

impl FileReporters {
    fn new(out: &Path) -> Self {
        FileReporters {
            certificates: CertificateFiles::new(out.to_path_buf()),
            junit: JunitFile::new(out.to_path_buf()),
            summary: SummaryFile::new(out.to_path_buf()),
        }
    }
}

/// Validates the request, loads the inputs, plans, runs with the standard reporters, and writes
/// every report at once. Bad input, or filters that select nothing, stop before anything runs
/// or is written.
pub fn certify(
    request: &Certification,
    format: TerminalFormat,
    terminal: &mut dyn Write,
) -> Result<RunSummary> {
    let (inputs, plan) = run::load_and_plan(request)?;
    if let Some(shard) = request.sample_shard() {
        return run::replay_sample_shard(request, &inputs, &plan, shard, terminal);
    }
    let mut screen = TerminalReporter::new(terminal, format);
    let mut files = FileReporters::new(&request.out);
    let mut reporters: [&mut dyn Reporter; 4] =
        [&mut screen, &mut files.certificates, &mut files.junit, &mut files.summary];
    run::execute_and_write(request, &inputs, &plan, &mut reporters)
}

/// `certify --baseline`: the run exactly as [`certify`] (its reports written first), then the
/// certificates it issued compared with the baseline's as `edgecert diff` compares them, the
/// Markdown written to `<out>/diff.md`. Read the baseline ([`Runs::load`]) before calling, so
/// a bad baseline stops everything before anything runs.
pub fn certify_against_baseline(
    request: &Certification,
    format: TerminalFormat,
    baseline: &Runs,
    terminal: &mut dyn Write,
) -> Result<(RunSummary, Comparison)> {
    let summary = certify(request, format, terminal)?;
    // Only what this run issued: the output folder may still hold other runs' certificates.
    let issued: Vec<PathBuf> =
        summary.issued.iter().map(|(family, chip)| certificate_path(&request.out, family, chip)).collect();
    let comparison = diff::diff(baseline, &Runs::from_files(&request.out, &issued)?);
    write_all_atomically(&[(request.out.join(DIFF_FILE), comparison.markdown().into_bytes())])?;
    Ok((summary, comparison))
}

/// What `merge` put together.
pub struct Merged {
    pub summary: RunSummary,
    pub certificates: usize,
}

impl Merged {
    /// `merge result: ok. 420 passed; ...` and what went where.
    pub fn closing_text(&self, shards: usize, out: &Path) -> String {
        format!(
            "{}\nmerged {} certificates from {shards} shards into {}\n",
            self.summary.closing_line_of("merge"),
            self.certificates,
            out.display()
        )
    }
}

/// `edgecert merge --out DIR PARTIAL...`: the partial results of every shard of one plan put
/// together under `out`. Unit shards' certificates are issued again through the run's file
/// reporters (each certificate with its observations and JUnit file, the run's `junit.xml` and
/// `summary.txt` for them all); sample shards' joined replays are certified as one process
/// would have, with a terse terminal. Nothing is written unless every partial checks out.
pub fn merge(out: &Path, partials: &[PathBuf], terminal: &mut dyn Write) -> Result<Merged> {
    match run::read_partials(out, partials)? {
        Partials::Samples(request) => {
            let summary = certify(&request, TerminalFormat::Terse, terminal)?;
            Ok(Merged { certificates: summary.certificates.len(), summary })
        }
        Partials::Units { certificates, summary } => {
            let mut files = FileReporters::new(out);
            let mut reporters: [&mut dyn Reporter; 3] =
                [&mut files.certificates, &mut files.junit, &mut files.summary];
            for (certificate, observations) in &certificates {
                let event = Event::CertificateIssued { certificate, observations };
                reporters.iter_mut().try_for_each(|r| r.handle(&event))?;
            }
            let finished = Event::RunFinished { summary: &summary };
            reporters.iter_mut().try_for_each(|r| r.handle(&finished))?;
            run::write_reports(&mut reporters, Vec::new())?;
            Ok(Merged { certificates: certificates.len(), summary })
        }
    }
}
