//! `cargo xtask bench records`: what the lab's records cost, as ratios against the run they
//! record, measured in this one process:
//! - **recording a reference run**: the README's reference certification (every family on every
//!   bundled profile, emulated) is certified, then recorded into a fresh SQLite file: the
//!   recording's seconds against the certification's;
//! - **history over 10,000 certificates**: the same run's certificates issued again night after
//!   night (each moved back one day and sealed afresh, so each is a certificate of its own) and
//!   recorded one night per run until 10,000 are held; then `history` of one (model, chip) over
//!   its last 30 nights (a nightly job's question), of that (model, chip) over every night, and
//!   of everything.
//!
//! The database's size on disk and this process's peak RSS are reported beside.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use edgecert::certificate::{certificate_path, read_certificate, Certificate};
use edgecert::records::{history_of, record_paths, HistoryFilter, RunMeta};
use edgecert::reporter::TerminalFormat;
use edgecert::run::{Certification, InputSpec, RunOptions, Selection};
use edgecert::workflow::certify;

/// How many certificates the history benchmark stores.
const STORED: usize = 10_000;

pub fn run(root: &Path) -> anyhow::Result<()> {
    let scratch = root.join("target/bench/records");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let reference = scratch.join("reference");
    let started = Instant::now();
    let summary = certify(&reference_run(root, &reference), TerminalFormat::Terse, &mut std::io::sink())?;
    let certify_s = started.elapsed();
    let certificates: Vec<PathBuf> =
        summary.issued.iter().map(|(family, chip)| certificate_path(&reference, family, chip)).collect();
    let checks: usize =
        certificates.iter().map(|c| read_certificate(c).map(|c| c.checks.len())).sum::<Result<_, _>>()?;

    let db = scratch.join("lab.sqlite");
    let meta = |label: String| RunMeta { label: Some(label), host: "bench".into() };
    let started = Instant::now();
    record_paths(&db, std::slice::from_ref(&reference), &meta("reference".into()))?;
    let record_s = started.elapsed();

    let nights = fill(&db, &certificates, &meta)?;
    let size_mb = std::fs::metadata(&db)?.len() as f64 / 1e6;
    let (model, chip) = {
        let first = read_certificate(&certificates[0])?;
        (first.subject.model, first.profile.name)
    };
    let since = edgecert_day(&read_certificate(&certificates[0])?, 30);
    let one_subject =
        HistoryFilter { model: Some(model.clone()), chip: Some(chip.clone()), ..Default::default() };
    let queries = [
        (
            format!("history of {model} on {chip}, last 30 nights (--model --chip --since)"),
            HistoryFilter { since: Some(since), ..one_subject.clone() },
        ),
        (format!("history of {model} on {chip}, all {nights} nights"), one_subject),
        (format!("history of all {STORED} certificates"), HistoryFilter::default()),
    ];

    println!("edgecert bench records (SQLite; ratios against the reference certification run now)");
    println!();
    println!("| measurement | certificates | checks | wall s | ratio |");
    println!("|---|---|---|---|---|");
    let secs = |d: Duration| d.as_secs_f64();
    println!(
        "| certify: the reference run (emulated) | {} | {checks} | {:.2} | 1.00 (baseline) |",
        certificates.len(),
        secs(certify_s)
    );
    println!(
        "| record it (certify --record's extra work) | {} | {checks} | {:.3} | {:.3} |",
        certificates.len(),
        secs(record_s),
        secs(record_s) / secs(certify_s)
    );
    for (what, filter) in queries {
        let started = Instant::now();
        let history = history_of(&db, &filter)?;
        let took = started.elapsed();
        let runs: usize = history.subjects.iter().map(|s| s.runs.len()).sum();
        let shown: usize = history.subjects.iter().flat_map(|s| &s.runs).map(|r| r.checks.len()).sum();
        println!("| {what} | {runs} | {shown} | {:.3} | {:.3} |", secs(took), secs(took) / secs(certify_s));
    }
    println!();
    println!(
        "database: {STORED} certificates in {size_mb:.0} MB; peak RSS of this process {:.0} MB",
        peak_rss_kb() as f64 / 1024.0
    );
    Ok(())
}

/// The README's reference certification: every family on every bundled profile.
fn reference_run(root: &Path, out: &Path) -> Certification {
    Certification {
        inputs: InputSpec {
            profiles: Vec::new(),
            profiles_dir: root.join("profiles"),
            golden: Vec::new(),
            golden_dir: root.join("golden"),
            model: None,
            npu_mode: None,
            input_shapes: Default::default(),
        },
        selection: Selection::default(),
        options: RunOptions::default(),
        out: out.to_path_buf(),
    }
}

/// Records the reference run's certificates again, one night earlier each time, until the
/// database holds [`STORED`]; returns the nights recorded.
fn fill(db: &Path, certificates: &[PathBuf], meta: &dyn Fn(String) -> RunMeta) -> anyhow::Result<usize> {
    let originals: Vec<(PathBuf, String, Certificate)> = certificates
        .iter()
        .map(|path| Ok((path.clone(), std::fs::read_to_string(path)?, read_certificate(path)?)))
        .collect::<anyhow::Result<_>>()?;
    let mut held = certificates.len();
    let mut night: u64 = 0;
    while held < STORED {
        night += 1;
        let take = (STORED - held).min(originals.len());
        for (path, _, original) in &originals[..take] {
            let mut again = original.clone();
            again.issued_at = days_before(&original.issued_at, night)?;
            let again = again.seal();
            std::fs::write(path, serde_json::to_string_pretty(&again)?)?;
        }
        let files: Vec<PathBuf> = originals[..take].iter().map(|(p, _, _)| p.clone()).collect();
        let mut records = edgecert::records::Records::open(db)?;
        records.record(&files, &meta(format!("night -{night}")))?;
        held += take;
    }
    for (path, text, _) in &originals {
        std::fs::write(path, text)?;
    }
    Ok(night as usize + 1)
}

/// An RFC 3339 instant moved back `days` days.
fn days_before(rfc3339: &str, days: u64) -> anyhow::Result<String> {
    let at = humantime::parse_rfc3339_weak(rfc3339).with_context(|| format!("issued_at {rfc3339}"))?;
    Ok(humantime::format_rfc3339_seconds(at - Duration::from_secs(days * 86_400)).to_string())
}

/// The day (`YYYY-MM-DD`) `days` before the certificate's issue.
fn edgecert_day(certificate: &Certificate, days: u64) -> String {
    days_before(&certificate.issued_at, days).map(|t| t[..10].to_string()).unwrap_or_default()
}

/// This process's peak resident set, in kB (`getrusage`).
fn peak_rss_kb() -> i64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct it is given.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss
}
