//! A lab's technical records (ISO/IEC 17025 §7.5): every certificate a run issues, kept whole in
//! a database with the figures a history needs (`certify --record DB`, `edgecert record DB
//! PATH...`, `edgecert history DB`, `edgecert trend DB`). `DB` is a SQLite file (embedded, no
//! server: the default) or a `postgres://` URL for a lab's shared server; both hold one schema.
//!
//! Records cannot be rewritten quietly. Every table is append-only (triggers abort an update or
//! a delete); a certificate read back is parsed and its id re-derived from its body, so an edit
//! made with another tool is named; recording a certificate already held is a no-op, and a
//! different body under a held id is refused. One run is one transaction, and writers take
//! turns: a writer killed mid-run leaves nothing of it. The schema is versioned, migrated
//! forward on open, and a database written by a newer edgecert is refused with its version.

mod history;
mod postgres;
mod sqlite;
mod store;
mod trend;

pub use history::{history, History, HistoryFilter};

use std::path::{Path, PathBuf};

use store::{Param, Store, Tx};

use crate::certificate::{observations::observations_path, read_certificate, Certificate};
use crate::vocab::{Error, Result};

/// The schema version this edgecert writes and reads.
pub const SCHEMA_VERSION: u32 = sqlite::MIGRATIONS.len() as u32;

/// Who recorded a run, and when.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// `--label`, else the git commit of the working folder, if any.
    pub label: Option<String>,
    pub host: String,
}

impl RunMeta {
    /// This machine, labelled `label` or by the current folder's git commit.
    pub fn here(label: Option<String>) -> RunMeta {
        RunMeta { label: label.or_else(git_commit), host: crate::device::host_name("unnamed host") }
    }
}

/// The current folder's git commit, where git says one.
fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    let commit = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && commit.len() == 40).then(|| format!("git {commit}"))
}

/// What recording a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    pub added: Vec<String>,
    /// Certificates the database already held, byte for byte: nothing written for them.
    pub already_held: Vec<String>,
}

impl Recorded {
    pub fn text(&self, db: &Path) -> String {
        format!(
            "recorded in {}: {} certificate(s) added, {} already held\n",
            db.display(),
            self.added.len(),
            self.already_held.len()
        )
    }
}

/// An open records database.
pub struct Records {
    /// The file, or the URL with its password hidden: how messages name the database.
    location: PathBuf,
    store: Box<dyn Store>,
}

impl Records {
    /// Opens the database at `location` (a SQLite file, created if absent, or a `postgres://`
    /// URL) and migrates it to [`SCHEMA_VERSION`]; a database of a newer schema is refused with
    /// its version.
    pub fn open(location: &Path) -> Result<Records> {
        let text = location.to_string_lossy();
        let (shown, store): (PathBuf, std::result::Result<Box<dyn Store>, String>) =
            if postgres::is_url(&text) {
                let store = postgres::Postgres::connect(&text).map(|s| Box::new(s) as Box<dyn Store>);
                (postgres::redacted(&text).into(), store)
            } else {
                (
                    location.to_path_buf(),
                    sqlite::Sqlite::open(location).map(|s| Box::new(s) as Box<dyn Store>),
                )
            };
        let store = store.map_err(|message| Error::Report { path: shown.clone(), message })?;
        let mut records = Records { location: shown, store };
        records.migrate()?;
        Ok(records)
    }

    /// Whether `location` names a database that exists: a SQLite file there, or any URL (the
    /// server answers for itself on open).
    pub fn exists(location: &Path) -> bool {
        postgres::is_url(&location.to_string_lossy()) || location.is_file()
    }

    fn bad(&self, message: String) -> Error {
        Error::Report { path: self.location.clone(), message }
    }

    fn migrate(&mut self) -> Result<()> {
        let version = self.store.schema_version().map_err(|e| self.bad(e))?;
        if version > SCHEMA_VERSION {
            return Err(self.bad(format!(
                "was written with records schema version {version}; this edgecert reads versions up to {SCHEMA_VERSION}: use a newer edgecert"
            )));
        }
        self.store.migrate(SCHEMA_VERSION).map_err(|e| self.bad(e))
    }

    /// Records one run's certificates (read back and checked as `show` does, with their raw
    /// observations), all in one transaction: all land or none does.
    pub fn record(&mut self, certificates: &[PathBuf], meta: &RunMeta) -> Result<Recorded> {
        let read: Vec<ReadCertificate> = certificates
            .iter()
            .map(|path| {
                let certificate = read_certificate(path)?;
                let body = crate::vocab::read_to_string(path)?;
                let timing = match observations_path(path, &certificate)? {
                    Some(o) if o.is_file() => timing_of(&o)?,
                    _ => None,
                };
                Ok(ReadCertificate { path: path.clone(), certificate, body, timing })
            })
            .collect::<Result<_>>()?;
        let location = self.location.clone();
        let recorded_at = now();
        let mut write = |tx: &mut dyn Tx| write_run(tx, &location, &read, meta, &recorded_at);
        self.store.transaction(&mut write).map_err(|e| self.bad(e))?
    }

    /// Every row `sql` returns, `columns` of text each.
    fn rows(&mut self, sql: &str, params: &[Param<'_>], columns: usize) -> Result<Vec<Vec<Option<String>>>> {
        self.store.rows(sql, params, columns).map_err(|e| self.bad(e))
    }

    /// The file, or the URL with its password hidden.
    pub fn location(&self) -> &Path {
        &self.location
    }
}

/// A certificate file as read for recording: parsed, its text, and the per-sample latencies of
/// its raw observations (as JSON), where it has them.
struct ReadCertificate {
    path: PathBuf,
    certificate: Certificate,
    body: String,
    timing: Option<String>,
}

/// One run's inserts, inside its transaction.
fn write_run(
    tx: &mut dyn Tx,
    location: &Path,
    read: &[ReadCertificate],
    meta: &RunMeta,
    recorded_at: &str,
) -> Result<Recorded> {
    let fail = |message: String| Error::Report { path: location.to_path_buf(), message };
    let mut outcome = Recorded::default();
    let mut run_id: Option<i64> = None;
    for ReadCertificate { path, certificate: cert, body, timing } in read {
        let held = tx
            .query_texts(
                "SELECT body FROM certificates WHERE certificate_id = ?1",
                &[Param::Text(Some(&cert.certificate_id))],
            )
            .map_err(fail)?;
        match held.into_iter().next().flatten() {
            Some(held) if same_certificate(&held, cert) => {
                outcome.already_held.push(cert.certificate_id.clone());
                continue;
            }
            Some(_) => {
                return Err(Error::Report {
                    path: path.clone(),
                    message: format!(
                        "{} already holds certificate {} with a different body: a record is never rewritten",
                        location.display(),
                        cert.certificate_id
                    ),
                })
            }
            None => {}
        }
        let run = match run_id {
            Some(id) => id,
            None => *run_id.insert(insert_run(tx, meta, recorded_at).map_err(fail)?),
        };
        insert_certificate(tx, run, cert, body, timing.as_deref()).map_err(fail)?;
        outcome.added.push(cert.certificate_id.clone());
        stall_for_tests(&outcome);
    }
    Ok(outcome)
}

/// A test seam for the killed-writer test: with `EDGECERT_TEST_STALL_RECORD=FILE` set, the
/// writer, its first certificate inserted and its transaction still open, creates FILE and
/// waits to be killed.
fn stall_for_tests(outcome: &Recorded) {
    let Some(flag) = std::env::var_os("EDGECERT_TEST_STALL_RECORD") else { return };
    if outcome.added.len() == 1 {
        let _ = std::fs::write(&flag, b"inserted, not committed\n");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

/// Whether a held body is this certificate: the same canonical content (whitespace aside).
fn same_certificate(held: &str, cert: &Certificate) -> bool {
    serde_json::from_str::<Certificate>(held)
        .is_ok_and(|h| h.canonical_body() == cert.canonical_body() && h.signature == cert.signature)
}

fn insert_run(tx: &mut dyn Tx, meta: &RunMeta, recorded_at: &str) -> std::result::Result<i64, String> {
    tx.query_int(
        "INSERT INTO runs (recorded_at, label, host, edgecert_version) VALUES (?1, ?2, ?3, ?4) RETURNING run_id",
        &[
            Param::Text(Some(recorded_at)),
            Param::Text(meta.label.as_deref()),
            Param::Text(Some(&meta.host)),
            Param::Text(Some(crate::TOOL_VERSION)),
        ],
    )
}

/// The per-sample latencies of an observations file, as JSON (`None` when it holds none).
fn timing_of(observations: &Path) -> Result<Option<String>> {
    let text = crate::vocab::read_to_string(observations)?;
    let record: crate::certificate::observations::ObservationRecord =
        serde_json::from_str(&text).map_err(|e| Error::Report {
            path: observations.to_path_buf(),
            message: format!("not an observations file: {e}"),
        })?;
    Ok(record.timing.map(|t| serde_json::to_string(&t).expect("plain data")))
}

fn insert_certificate(
    tx: &mut dyn Tx,
    run: i64,
    c: &Certificate,
    body: &str,
    timing: Option<&str>,
) -> std::result::Result<(), String> {
    let timing_sha256 = timing.map(|t| crate::vocab::hash::sha256_hex(t.as_bytes()));
    tx.execute(
        "INSERT INTO certificates (certificate_id, run_id, body, timing, timing_sha256, observations_sha256, model, model_sha256, family, golden_sha256, chip, profile_sha256, backend, verdict, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        &[
            Param::text(&c.certificate_id),
            Param::Int(run),
            Param::text(body),
            Param::Text(timing),
            Param::Text(timing_sha256.as_deref()),
            Param::Text(c.observations.as_ref().map(|o| o.sha256.as_str())),
            Param::text(&c.subject.model),
            Param::text(&c.subject.sha256),
            Param::text(&c.golden.name),
            Param::text(&c.golden.sha256),
            Param::text(&c.profile.name),
            Param::text(&c.profile.sha256),
            Param::text(&c.backend.kind),
            Param::text(c.verdict.as_str()),
            Param::text(&c.issued_at),
        ],
    )?;
    for check in &c.checks {
        let ci = check.ci.as_ref();
        let finite = |v: Option<f64>| Param::Real(v.filter(|v| v.is_finite()));
        let status = format!("{:?}", check.status).to_lowercase();
        tx.execute(
            "INSERT INTO checks (certificate_id, name, status, verdict, measured, ci_low, ci_high, limit_value, unit, basis)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            &[
                Param::text(&c.certificate_id),
                Param::text(check.name.name()),
                Param::text(&status),
                Param::text(check.verdict.as_str()),
                finite(check.measured),
                finite(ci.map(|i| i.low)),
                finite(ci.and_then(|i| i.high)),
                finite(check.limit),
                Param::text(&check.unit),
                Param::text(check.basis.as_str()),
            ],
        )?;
    }
    Ok(())
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// `certify --record DB` and `edgecert record DB PATH...`: every certificate under the paths
/// (files, certificate folders, `certify --out` folders) recorded as one run.
pub fn record_paths(db: &Path, paths: &[PathBuf], meta: &RunMeta) -> Result<Recorded> {
    let mut files = Vec::new();
    for path in paths {
        let runs = crate::diff::Runs::load(path)?;
        files.extend(runs.certificates.into_values().map(|c| c.path));
    }
    Records::open(db)?.record(&files, meta)
}

/// `certify --record DB`: the certificates this run issued (`<out>/<family>/<chip>`), one run.
pub fn record_issued(db: &Path, out: &Path, issued: &[(String, String)], meta: &RunMeta) -> Result<Recorded> {
    let files: Vec<PathBuf> =
        issued.iter().map(|(family, chip)| crate::certificate::certificate_path(out, family, chip)).collect();
    Records::open(db)?.record(&files, meta)
}

/// `edgecert history DB`: the history of an existing database.
pub fn history_of(db: &Path, filter: &HistoryFilter) -> Result<History> {
    history(&mut open_existing(db)?, filter)
}

/// `edgecert history DB --certificate ID`: a recorded certificate's body, checked against its id.
pub fn recorded_certificate(db: &Path, id: &str) -> Result<String> {
    history::recorded_certificate(&mut open_existing(db)?, id)
}

/// `edgecert trend DB --out FILE`: the history as a page in `lang`, written whole or not at all.
pub fn write_trend(db: &Path, filter: &HistoryFilter, out: &Path, lang: &str) -> Result<PathBuf> {
    let catalog = crate::i18n::Catalog::load(lang)?;
    let mut records = open_existing(db)?;
    let history = history(&mut records, filter)?;
    let page = trend::trend_page(&history, &records.location().to_string_lossy(), &now(), &catalog);
    crate::vocab::write_all_atomically(&[(out.to_path_buf(), page.into_bytes())])?;
    Ok(out.to_path_buf())
}

/// A database to read: a SQLite file must already be there (reading never creates one).
fn open_existing(db: &Path) -> Result<Records> {
    if !Records::exists(db) {
        return Err(Error::Usage(format!("{}: no records database there", db.display())));
    }
    Records::open(db)
}
