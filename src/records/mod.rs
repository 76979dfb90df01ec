//! A lab's technical records (ISO/IEC 17025 §7.5): every certificate a run issues, kept whole in
//! a database with the figures a history needs (`certify --record DB`, `edgecert record DB
//! PATH...`, `edgecert history DB`). SQLite, embedded: one file, no server.
//!
//! Records cannot be rewritten quietly. Every table is append-only (triggers abort an update or
//! a delete); a certificate read back is parsed and its id re-derived from its body, so an edit
//! made with another tool is named; recording a certificate already held is a no-op, and a
//! different body under a held id is refused. One run is one transaction (`BEGIN IMMEDIATE`,
//! with a busy timeout so two writers take turns): a writer killed mid-run leaves nothing of it.
//! The schema is versioned (`PRAGMA user_version`), migrated forward on open, and a database
//! written by a newer edgecert is refused with its version.

mod history;

pub use history::{history, History, HistoryFilter};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::certificate::{observations::observations_path, read_certificate, Certificate};
use crate::vocab::{Error, Result};

/// The migrations, in order: the schema at version N is the first N applied.
const MIGRATIONS: [&str; 1] = [r#"
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    label TEXT,
    host TEXT NOT NULL,
    edgecert_version TEXT NOT NULL
);
CREATE TABLE certificates (
    certificate_id TEXT PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    body TEXT NOT NULL,
    observations TEXT,
    observations_sha256 TEXT,
    model TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    family TEXT NOT NULL,
    golden_sha256 TEXT NOT NULL,
    chip TEXT NOT NULL,
    profile_sha256 TEXT NOT NULL,
    backend TEXT NOT NULL,
    verdict TEXT NOT NULL,
    issued_at TEXT NOT NULL
);
CREATE TABLE checks (
    certificate_id TEXT NOT NULL REFERENCES certificates(certificate_id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT NOT NULL,
    measured REAL,
    ci_low REAL,
    ci_high REAL,
    limit_value REAL,
    unit TEXT NOT NULL,
    basis TEXT NOT NULL,
    PRIMARY KEY (certificate_id, name)
);
CREATE INDEX certificates_by_subject ON certificates (model, chip, issued_at);
CREATE TRIGGER runs_no_update BEFORE UPDATE ON runs BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER runs_no_delete BEFORE DELETE ON runs BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER certificates_no_update BEFORE UPDATE ON certificates BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER certificates_no_delete BEFORE DELETE ON certificates BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER checks_no_update BEFORE UPDATE ON checks BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER checks_no_delete BEFORE DELETE ON checks BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
"#];

/// The schema version this edgecert writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a writer waits for another to finish its run.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

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
    path: PathBuf,
    conn: Connection,
}

impl Records {
    /// Opens (creating) the database at `path` and migrates it to [`SCHEMA_VERSION`]; a
    /// database of a newer schema is refused with its version.
    pub fn open(path: &Path) -> Result<Records> {
        let bad = |message: String| Error::Report { path: path.to_path_buf(), message };
        if path.exists() && !path.is_file() {
            return Err(bad("is not a regular file: a records database is one SQLite file".into()));
        }
        let conn = Connection::open(path).map_err(|e| bad(format!("cannot open as SQLite: {e}")))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| bad(e.to_string()))?;
        let sql = |e: rusqlite::Error| bad(format!("not an edgecert records database: {e}"));
        wal(&conn).map_err(|e| bad(format!("cannot switch to a write-ahead log: {e}")))?;
        conn.pragma_update(None, "foreign_keys", true).map_err(sql)?;
        let mut records = Records { path: path.to_path_buf(), conn };
        records.migrate()?;
        Ok(records)
    }

    fn bad(&self, message: String) -> Error {
        Error::Report { path: self.path.clone(), message }
    }

    fn migrate(&mut self) -> Result<()> {
        let version: u32 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.bad(format!("not an edgecert records database: {e}")))?;
        if version > SCHEMA_VERSION {
            return Err(self.bad(format!(
                "was written with records schema version {version}; this edgecert reads versions up to {SCHEMA_VERSION}: use a newer edgecert"
            )));
        }
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::Report { path: path.clone(), message: e.to_string() })?;
        // Read again inside the write lock: another process may have migrated meanwhile.
        let version: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap_or(version);
        for (i, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration).map_err(|e| Error::Report {
                path: path.clone(),
                message: format!("migration to schema version {} failed: {e}", i + 1),
            })?;
            tx.pragma_update(None, "user_version", (i + 1) as u32)
                .map_err(|e| Error::Report { path: path.clone(), message: e.to_string() })?;
        }
        tx.commit().map_err(|e| Error::Report { path, message: e.to_string() })
    }

    /// Records one run's certificates (read back and checked as `show` does, with their raw
    /// observations), all in one transaction: all land or none does.
    pub fn record(&mut self, certificates: &[PathBuf], meta: &RunMeta) -> Result<Recorded> {
        let read: Vec<(PathBuf, Certificate, String, Option<String>)> = certificates
            .iter()
            .map(|path| {
                let cert = read_certificate(path)?;
                let body = crate::vocab::read_to_string(path)?;
                let observations = match observations_path(path, &cert)? {
                    Some(o) if o.is_file() => Some(crate::vocab::read_to_string(&o)?),
                    _ => None,
                };
                Ok((path.clone(), cert, body, observations))
            })
            .collect::<Result<_>>()?;
        let db = self.path.clone();
        let fail = |e: rusqlite::Error| Error::Report { path: db.clone(), message: e.to_string() };
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(fail)?;
        let mut outcome = Recorded::default();
        let mut run_id: Option<i64> = None;
        for (path, cert, body, observations) in &read {
            let held: Option<String> = tx
                .query_row(
                    "SELECT body FROM certificates WHERE certificate_id = ?1",
                    params![cert.certificate_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(fail)?;
            match held {
                Some(held) if same_certificate(&held, cert) => {
                    outcome.already_held.push(cert.certificate_id.clone());
                    continue;
                }
                Some(_) => {
                    return Err(Error::Report {
                        path: path.clone(),
                        message: format!(
                        "{} already holds certificate {} with a different body: a record is never rewritten",
                        db.display(),
                        cert.certificate_id
                    ),
                    })
                }
                None => {}
            }
            let run = match run_id {
                Some(id) => id,
                None => {
                    tx.execute(
                        "INSERT INTO runs (recorded_at, label, host, edgecert_version) VALUES (?1, ?2, ?3, ?4)",
                        params![now(), meta.label, meta.host, crate::TOOL_VERSION],
                    )
                    .map_err(fail)?;
                    *run_id.insert(tx.last_insert_rowid())
                }
            };
            insert_certificate(&tx, run, cert, body, observations.as_deref()).map_err(fail)?;
            outcome.added.push(cert.certificate_id.clone());
        }
        tx.commit().map_err(fail)?;
        Ok(outcome)
    }

    fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Switches to a write-ahead log (readers never block the writer). SQLite answers "busy" at
/// once, without its busy handler, while another process holds the file to create or switch
/// it, so this waits its turn here, up to [`BUSY_TIMEOUT`].
fn wal(conn: &Connection) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(())) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// Whether a held body is this certificate: the same canonical content (whitespace aside).
fn same_certificate(held: &str, cert: &Certificate) -> bool {
    serde_json::from_str::<Certificate>(held)
        .is_ok_and(|h| h.canonical_body() == cert.canonical_body() && h.signature == cert.signature)
}

fn insert_certificate(
    tx: &rusqlite::Transaction<'_>,
    run: i64,
    c: &Certificate,
    body: &str,
    observations: Option<&str>,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO certificates (certificate_id, run_id, body, observations, observations_sha256, model, model_sha256, family, golden_sha256, chip, profile_sha256, backend, verdict, issued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            c.certificate_id,
            run,
            body,
            observations,
            c.observations.as_ref().map(|o| o.sha256.clone()),
            c.subject.model,
            c.subject.sha256,
            c.golden.name,
            c.golden.sha256,
            c.profile.name,
            c.profile.sha256,
            c.backend.kind,
            c.verdict.as_str(),
            c.issued_at,
        ],
    )?;
    for check in &c.checks {
        let ci = check.ci.as_ref();
        tx.execute(
            "INSERT INTO checks (certificate_id, name, status, verdict, measured, ci_low, ci_high, limit_value, unit, basis)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                c.certificate_id,
                check.name.name(),
                format!("{:?}", check.status).to_lowercase(),
                check.verdict.as_str(),
                check.measured.filter(|v| v.is_finite()),
                ci.map(|i| i.low).filter(|v| v.is_finite()),
                ci.and_then(|i| i.high).filter(|v| v.is_finite()),
                check.limit.filter(|v| v.is_finite()),
                check.unit,
                check.basis.as_str(),
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
