//! A lab's shared store: a PostgreSQL database named by a `postgres://` URL. The tables are
//! SQLite's, in PostgreSQL's types; the append-only rule is a trigger function that refuses
//! every update, delete and truncate; the schema's version is a row per applied migration in
//! `records_schema`. Writers take turns on a transaction-scoped advisory lock, as SQLite's
//! writers do on its write lock, so a duplicate is seen by the second writer, never raced.

use postgres::types::ToSql;
use postgres::{Client, NoTls};

use super::store::{numbered_dollars, Param, Store, Tx};

/// The advisory lock key every edgecert writer takes (the ASCII of "edgecert" as an integer).
const WRITERS_LOCK: i64 = 0x6564_6765_6365_7274;

/// The migrations, in order, as SQLite's are: version N is the first N applied.
pub const MIGRATIONS: [&str; 2] = [
    r#"
CREATE TABLE runs (
    run_id BIGSERIAL PRIMARY KEY,
    recorded_at TEXT NOT NULL,
    label TEXT,
    host TEXT NOT NULL,
    edgecert_version TEXT NOT NULL
);
CREATE TABLE certificates (
    certificate_id TEXT PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs(run_id),
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
    measured DOUBLE PRECISION,
    ci_low DOUBLE PRECISION,
    ci_high DOUBLE PRECISION,
    limit_value DOUBLE PRECISION,
    unit TEXT NOT NULL,
    basis TEXT NOT NULL,
    PRIMARY KEY (certificate_id, name)
);
CREATE INDEX certificates_by_subject ON certificates (model, chip, issued_at);
CREATE FUNCTION records_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'records are append-only'; END $$;
CREATE TRIGGER runs_no_update BEFORE UPDATE OR DELETE ON runs FOR EACH ROW EXECUTE FUNCTION records_append_only();
CREATE TRIGGER runs_no_truncate BEFORE TRUNCATE ON runs FOR EACH STATEMENT EXECUTE FUNCTION records_append_only();
CREATE TRIGGER certificates_no_update BEFORE UPDATE OR DELETE ON certificates FOR EACH ROW EXECUTE FUNCTION records_append_only();
CREATE TRIGGER certificates_no_truncate BEFORE TRUNCATE ON certificates FOR EACH STATEMENT EXECUTE FUNCTION records_append_only();
CREATE TRIGGER checks_no_update BEFORE UPDATE OR DELETE ON checks FOR EACH ROW EXECUTE FUNCTION records_append_only();
CREATE TRIGGER checks_no_truncate BEFORE TRUNCATE ON checks FOR EACH STATEMENT EXECUTE FUNCTION records_append_only();
"#,
    // 2: the per-sample latencies a history's latency test needs, instead of the whole raw
    // observations (megabytes per certificate of a detection family); their digest beside.
    r#"
ALTER TABLE certificates ADD COLUMN timing TEXT;
ALTER TABLE certificates ADD COLUMN timing_sha256 TEXT;
"#,
];

/// Whether `location` names a PostgreSQL database rather than a SQLite file.
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// The URL with any password replaced, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            format!("{scheme}://{}:***@{host}", user.split(':').next().unwrap_or_default())
        }
        _ => url.to_string(),
    }
}

pub struct Postgres {
    client: Client,
}

impl Postgres {
    /// Connects (without TLS: a lab's server on its own network, a socket or a tunnel).
    pub fn connect(url: &str) -> Result<Postgres, String> {
        let client = Client::connect(url, NoTls).map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
        Ok(Postgres { client })
    }
}

/// The parameters as the driver takes them.
fn bound<'a>(params: &'a [Param<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| match p {
            Param::Text(t) => t as &(dyn ToSql + Sync),
            Param::Real(r) => r as &(dyn ToSql + Sync),
            Param::Int(i) => i as &(dyn ToSql + Sync),
        })
        .collect()
}

fn message(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => e.to_string(),
    }
}

impl Tx for postgres::Transaction<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<(), String> {
        postgres::Transaction::execute(self, numbered_dollars(sql).as_str(), &bound(params))
            .map(drop)
            .map_err(message)
    }

    fn query_texts(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Option<String>>, String> {
        let rows = self.query(numbered_dollars(sql).as_str(), &bound(params)).map_err(message)?;
        rows.iter().map(|r| r.try_get(0).map_err(message)).collect()
    }

    fn query_int(&mut self, sql: &str, params: &[Param<'_>]) -> Result<i64, String> {
        let row = self.query_one(numbered_dollars(sql).as_str(), &bound(params)).map_err(message)?;
        row.try_get(0).map_err(message)
    }
}

impl Store for Postgres {
    fn schema_version(&mut self) -> Result<u32, String> {
        let held = self
            .client
            .query_one("SELECT to_regclass('records_schema') IS NOT NULL", &[])
            .map_err(message)?
            .get::<_, bool>(0);
        if !held {
            return Ok(0);
        }
        let version: i32 = self
            .client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM records_schema", &[])
            .map_err(message)?
            .get(0);
        Ok(version.max(0) as u32)
    }

    fn migrate(&mut self, to: u32) -> Result<(), String> {
        let mut tx = self.client.transaction().map_err(message)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITERS_LOCK]).map_err(message)?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS records_schema (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            .map_err(message)?;
        let version: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM records_schema", &[])
            .map_err(message)?
            .get(0);
        for (i, migration) in MIGRATIONS.iter().enumerate().take(to as usize).skip(version.max(0) as usize) {
            tx.batch_execute(migration)
                .map_err(|e| format!("migration to schema version {} failed: {}", i + 1, message(e)))?;
            tx.execute("INSERT INTO records_schema (version) VALUES ($1)", &[&((i + 1) as i32)])
                .map_err(message)?;
        }
        tx.commit().map_err(message)
    }

    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Tx) -> crate::vocab::Result<super::Recorded>,
    ) -> Result<crate::vocab::Result<super::Recorded>, String> {
        let mut tx = self.client.transaction().map_err(message)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITERS_LOCK]).map_err(message)?;
        let outcome = body(&mut tx);
        if outcome.is_ok() {
            tx.commit().map_err(message)?;
        }
        Ok(outcome)
    }

    fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>, String> {
        let rows = self.client.query(numbered_dollars(sql).as_str(), &bound(params)).map_err(message)?;
        rows.iter().map(|r| (0..columns).map(|i| r.try_get(i).map_err(message)).collect()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(
            redacted("postgres://lab:s3cret@db.example:5432/records"),
            "postgres://lab:***@db.example:5432/records"
        );
        assert_eq!(redacted("postgres://lab@db.example/records"), "postgres://lab@db.example/records");
        assert!(is_url("postgresql://x/y") && !is_url("lab.sqlite"));
    }

    #[test]
    fn both_stores_hold_the_same_number_of_migrations() {
        assert_eq!(MIGRATIONS.len(), super::super::sqlite::MIGRATIONS.len());
    }
}
