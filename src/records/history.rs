//! `edgecert history DB`: per (model, chip), every recorded run in time order (issue time,
//! then recording order), with each check's verdict, value and interval, and what regressed
//! since the run before it, judged by `diff`'s own statistics (verdicts, metric intervals, the
//! latency test on the raw latencies). Every certificate read back is re-derived from its body
//! first: a record edited behind edgecert's back is named, never shown.

use serde::Serialize;

use super::{Param, Records};
use crate::certificate::observations::ObservationRecord;
use crate::certificate::Certificate;
use crate::checks::CheckKind;
use crate::diff::{diff, CertificateKey, RegressionKind, RunCertificate, Runs};
use crate::vocab::{Observed, Outcome, Result, Timing};

/// Which runs to show.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// The model's path or file name (a suffix of the recorded path).
    pub model: Option<String>,
    pub chip: Option<String>,
    /// Only this check's column.
    pub check: Option<String>,
    /// Runs issued on or after this day (`YYYY-MM-DD`) or instant (RFC 3339).
    pub since: Option<String>,
}

/// Every matching run, grouped by (model, chip).
#[derive(Debug, Clone, Serialize)]
pub struct History {
    pub subjects: Vec<SubjectHistory>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectHistory {
    pub model: String,
    pub chip: String,
    pub runs: Vec<RunEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunEntry {
    pub certificate_id: String,
    pub issued_at: String,
    pub label: Option<String>,
    pub verdict: Outcome,
    pub checks: Vec<CheckEntry>,
    /// What got worse since the run before it (empty for the first).
    pub regressions: Vec<String>,
    /// The checks those regressions concern (`verdict` for the certificate's own verdict).
    pub regressed_checks: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckEntry {
    pub name: String,
    pub verdict: Outcome,
    pub measured: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub limit: Option<f64>,
    pub unit: String,
    pub basis: String,
}

struct Row {
    id: String,
    body: String,
    label: Option<String>,
    /// The per-sample latencies (schema 2 on) and their digest.
    timing: Option<String>,
    timing_sha256: Option<String>,
    /// The whole raw observations, as schema 1 kept them.
    observations: Option<String>,
}

/// The columns a [`Row`] is read from, in its order.
const ROW_COLUMNS: &str = "c.certificate_id, c.body, r.label, c.timing, c.timing_sha256, c.observations";

impl Row {
    fn from_columns(mut columns: Vec<Option<String>>) -> Row {
        let mut take = |i: usize| std::mem::take(&mut columns[i]);
        Row {
            id: take(0).unwrap_or_default(),
            body: take(1).unwrap_or_default(),
            label: take(2),
            timing: take(3),
            timing_sha256: take(4),
            observations: take(5),
        }
    }
}

/// The history of the runs `filter` selects, read one (model, chip) at a time: the subjects
/// come from the index alone, and only one subject's certificates are in memory at once.
pub fn history(records: &mut Records, filter: &HistoryFilter) -> Result<History> {
    let subjects = records.rows(
        "SELECT DISTINCT model, chip FROM certificates WHERE (CAST(?1 AS TEXT) IS NULL OR chip = ?1) ORDER BY model, chip",
        &[Param::maybe(&filter.chip)],
        2,
    )?;
    let wanted = |model: &str| {
        filter.model.as_deref().is_none_or(|want| model == want || model.ends_with(&format!("/{want}")))
    };
    let mut out = Vec::new();
    for mut subject in subjects {
        let (model, chip) = (
            std::mem::take(&mut subject[0]).unwrap_or_default(),
            std::mem::take(&mut subject[1]).unwrap_or_default(),
        );
        if !wanted(&model) {
            continue;
        }
        let rows = records.rows(
            &format!(
                "SELECT {ROW_COLUMNS} FROM certificates c JOIN runs r ON r.run_id = c.run_id
                 WHERE c.model = ?1 AND c.chip = ?2 AND (CAST(?3 AS TEXT) IS NULL OR c.issued_at >= ?3)
                 ORDER BY c.issued_at, c.run_id, c.certificate_id"
            ),
            &[Param::text(&model), Param::text(&chip), Param::maybe(&filter.since)],
            6,
        )?;
        let mut runs: Vec<RunEntry> = Vec::new();
        let mut previous: Option<RunCertificate> = None;
        for row in rows.into_iter().map(Row::from_columns) {
            let current = read_back(records, &row)?;
            let regressions = previous.as_ref().map_or_else(Vec::new, |p| regressions(p, &current));
            runs.push(entry(&current.certificate, row.label, filter, regressions));
            previous = Some(current);
        }
        if !runs.is_empty() {
            out.push(SubjectHistory { model, chip, runs });
        }
    }
    Ok(History { subjects: out })
}

/// A recorded certificate, its id re-derived from its body, with the latencies beside it
/// (checked against their digest).
fn read_back(records: &Records, row: &Row) -> Result<RunCertificate> {
    let altered =
        |why: String| records.bad(format!("record {} {why}: it was changed outside edgecert", row.id));
    let certificate: Certificate = serde_json::from_str(&row.body)
        .map_err(|e| altered(format!("no longer reads as a certificate ({e})")))?;
    if certificate.certificate_id != row.id || certificate.content_id() != row.id {
        return Err(altered(format!("hashes to {}", certificate.content_id())));
    }
    let (text, digest, what) = match (&row.timing, &row.observations, &certificate.observations) {
        (Some(timing), _, _) => (timing, row.timing_sha256.clone().unwrap_or_default(), "latencies"),
        (None, Some(observations), Some(named)) => (observations, named.sha256.clone(), "observations"),
        _ => {
            return Ok(RunCertificate {
                path: format!("record {}", row.id).into(),
                certificate,
                timing: None,
            })
        }
    };
    let held = crate::vocab::hash::sha256_hex(text.as_bytes());
    if held != digest {
        return Err(altered(format!("holds {what} hashing to {held}, not {digest}")));
    }
    let timing: Option<Observed<Timing>> = if row.timing.is_some() {
        serde_json::from_str(text).map_err(|e| altered(format!("holds unreadable latencies ({e})")))?
    } else {
        serde_json::from_str::<ObservationRecord>(text)
            .map_err(|e| altered(format!("holds unreadable observations ({e})")))?
            .timing
    };
    let timing = timing.and_then(|t| t.value().cloned());
    Ok(RunCertificate { path: format!("record {}", row.id).into(), certificate, timing })
}

/// What `diff` finds worse from one run to the next: each detail, and the check it concerns.
fn regressions(before: &RunCertificate, after: &RunCertificate) -> Vec<(String, String)> {
    let side = |c: &RunCertificate| Runs {
        source: c.path.clone(),
        certificates: [(
            CertificateKey {
                family: c.certificate.golden.name.clone(),
                chip: c.certificate.profile.name.clone(),
            },
            c.clone(),
        )]
        .into(),
    };
    diff(&side(before), &side(after))
        .regressions
        .into_iter()
        .map(|r| {
            let check = match &r.kind {
                RegressionKind::Verdict { check: Some(kind), .. } => kind.name().to_string(),
                RegressionKind::Verdict { check: None, .. } => "verdict".to_string(),
                RegressionKind::Latency(_) => CheckKind::Latency.name().to_string(),
                RegressionKind::Accuracy(drop) if drop.key.starts_with("slice.") => {
                    CheckKind::AccuracyHardestSlice.name().to_string()
                }
                RegressionKind::Accuracy(_) => CheckKind::Accuracy.name().to_string(),
            };
            (r.detail, check)
        })
        .collect()
}

fn entry(
    c: &Certificate,
    label: Option<String>,
    filter: &HistoryFilter,
    regressions: Vec<(String, String)>,
) -> RunEntry {
    let checks = c
        .checks
        .iter()
        .filter(|k| filter.check.as_deref().is_none_or(|want| k.name.name() == want))
        .map(|k| CheckEntry {
            name: k.name.name().to_string(),
            verdict: k.verdict,
            measured: k.measured.filter(|v| v.is_finite()),
            ci_low: k.ci.as_ref().map(|i| i.low).filter(|v| v.is_finite()),
            ci_high: k.ci.as_ref().and_then(|i| i.high).filter(|v| v.is_finite()),
            limit: k.limit.filter(|v| v.is_finite()),
            unit: k.unit.clone(),
            basis: k.basis.as_str().to_string(),
        })
        .collect();
    RunEntry {
        certificate_id: c.certificate_id.clone(),
        issued_at: c.issued_at.clone(),
        label,
        verdict: c.verdict,
        checks,
        regressed_checks: regressions.iter().map(|(_, check)| check.clone()).collect(),
        regressions: regressions.into_iter().map(|(detail, _)| detail).collect(),
    }
}

impl History {
    /// One table per (model, chip): a row per run, a column per check.
    pub fn text(&self) -> String {
        use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
        if self.subjects.is_empty() {
            return "no recorded runs match\n".into();
        }
        let mut out = String::new();
        for s in &self.subjects {
            let names: Vec<&str> = {
                let mut n: Vec<&str> =
                    s.runs.iter().flat_map(|r| r.checks.iter().map(|c| c.name.as_str())).collect();
                n.dedup();
                let mut seen = std::collections::BTreeSet::new();
                n.retain(|x| seen.insert(*x));
                n
            };
            let mut t = Table::new();
            let mut header = vec!["issued", "label", "verdict"];
            header.extend(&names);
            header.push("regressions since the run before");
            t.load_preset(UTF8_FULL_CONDENSED).set_header(header);
            for r in &s.runs {
                let mut row = vec![
                    r.issued_at.clone(),
                    r.label.clone().unwrap_or_default(),
                    r.verdict.as_str().to_string(),
                ];
                for name in &names {
                    row.push(r.checks.iter().find(|c| c.name == *name).map_or(String::new(), cell));
                }
                row.push(if r.regressions.is_empty() { "-".into() } else { r.regressions.join("; ") });
                t.add_row(row);
            }
            out.push_str(&format!("{} on {} ({} runs)\n{t}\n", s.model, s.chip, s.runs.len()));
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data") + "\n"
    }

    /// Whether any run regressed from the one before it.
    pub fn has_regressions(&self) -> bool {
        self.subjects.iter().flat_map(|s| &s.runs).any(|r| !r.regressions.is_empty())
    }
}

/// A check's cell: verdict, value and interval.
fn cell(c: &CheckEntry) -> String {
    let value = c.measured.map_or(String::new(), |v| format!(" {}", short(v)));
    let ci = match (c.ci_low, c.ci_high) {
        (Some(l), Some(h)) => format!(" [{}, {}]", short(l), short(h)),
        (Some(l), None) => format!(" [{}, ?]", short(l)),
        _ => String::new(),
    };
    format!("{}{value}{ci}", c.verdict.as_str())
}

/// A whole number as one (bytes, nodes), anything else to four decimals.
fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// The body of the certificate recorded under `id` (or a unique prefix of at least 8 hex
/// digits), after checking that it still gives its id.
pub fn recorded_certificate(records: &mut Records, id: &str) -> Result<String> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() < 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(crate::vocab::Error::Usage(format!(
            "--certificate {id}: expected a certificate id, or 8 or more of its leading hex digits"
        )));
    }
    let pattern = format!("{id}%");
    let found = records.rows(
        &format!(
            "SELECT {ROW_COLUMNS} FROM certificates c JOIN runs r ON r.run_id = c.run_id
             WHERE c.certificate_id LIKE ?1 ORDER BY c.certificate_id LIMIT 2"
        ),
        &[Param::text(&pattern)],
        6,
    )?;
    let mut rows = found.into_iter().map(Row::from_columns);
    let (Some(row), None) = (rows.next(), rows.next()) else {
        return Err(records.bad(format!("no single recorded certificate has an id starting {id}")));
    };
    read_back(records, &row)?;
    Ok(row.body)
}
