//! The embedded store: one SQLite file, no server. Writers take turns on SQLite's write lock
//! (`BEGIN IMMEDIATE`, with a busy timeout), readers never block them (a write-ahead log), and
//! the schema's version is SQLite's `user_version`.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params_from_iter, Connection, TransactionBehavior};

use super::store::{Param, Store, Tx};

/// The migrations, in order: the schema at version N is the first N applied.
pub const MIGRATIONS: [&str; 2] = [
    r#"
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
"#,
    // 2: the per-sample latencies a history's latency test needs, instead of the whole raw
    // observations (megabytes per certificate of a detection family); their digest beside.
    r#"
ALTER TABLE certificates ADD COLUMN timing TEXT;
ALTER TABLE certificates ADD COLUMN timing_sha256 TEXT;
"#,
];

/// How long a writer waits for another to finish its run.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    /// Opens (creating) the file at `path`, in write-ahead-log mode.
    pub fn open(path: &Path) -> Result<Sqlite, String> {
        if path.exists() && !path.is_file() {
            return Err("is not a regular file: a records database is one SQLite file".into());
        }
        let conn = Connection::open(path).map_err(|e| format!("cannot open as SQLite: {e}"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
        wal(&conn).map_err(|e| format!("cannot switch to a write-ahead log: {e}"))?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(|e| format!("not an edgecert records database: {e}"))?;
        Ok(Sqlite { conn })
    }
}

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(t) => t.to_sql(),
            Param::Real(r) => r.to_sql(),
            Param::Int(i) => i.to_sql(),
        }
    }
}

impl Tx for rusqlite::Transaction<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<(), String> {
        rusqlite::Connection::execute(self, sql, params_from_iter(params))
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn query_texts(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Option<String>>, String> {
        let mut stmt = self.prepare(sql).map_err(|e| e.to_string())?;
        let rows = stmt.query_map(params_from_iter(params), |r| r.get(0)).map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| e.to_string())
    }

    fn query_int(&mut self, sql: &str, params: &[Param<'_>]) -> Result<i64, String> {
        self.query_row(sql, params_from_iter(params), |r| r.get(0)).map_err(|e| e.to_string())
    }
}

impl Store for Sqlite {
    fn schema_version(&mut self) -> Result<u32, String> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| format!("not an edgecert records database: {e}"))
    }

    fn migrate(&mut self, to: u32) -> Result<(), String> {
        let tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
        let version: u32 =
            tx.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| e.to_string())?;
        for (i, migration) in MIGRATIONS.iter().enumerate().take(to as usize).skip(version as usize) {
            tx.execute_batch(migration)
                .map_err(|e| format!("migration to schema version {} failed: {e}", i + 1))?;
            tx.pragma_update(None, "user_version", (i + 1) as u32).map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Tx) -> crate::vocab::Result<super::Recorded>,
    ) -> Result<crate::vocab::Result<super::Recorded>, String> {
        let mut tx =
            self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
        let outcome = body(&mut tx);
        if outcome.is_ok() {
            tx.commit().map_err(|e| e.to_string())?;
        }
        Ok(outcome)
    }

    fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>, String> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(params_from_iter(params), |r| (0..columns).map(|i| r.get(i)).collect())
            .map_err(|e| e.to_string())?;
        rows.collect::<rusqlite::Result<_>>().map_err(|e| e.to_string())
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
