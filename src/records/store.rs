//! What the records need from a database, whichever it is: run the schema's migrations, one
//! transaction in which writers take turns, and a query. SQL is written once, with SQLite's
//! numbered `?N` placeholders; the PostgreSQL store rewrites them as `$N`. The SQL the two
//! dialects do not share (table definitions, triggers, the schema's version) lives beside each
//! store.

/// A value bound to a statement's placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Param<'a> {
    Text(Option<&'a str>),
    Real(Option<f64>),
    Int(i64),
}

impl<'a> Param<'a> {
    /// A text that is never null.
    pub fn text(value: &'a str) -> Param<'a> {
        Param::Text(Some(value))
    }

    /// A text that may be null.
    pub fn maybe(value: &'a Option<String>) -> Param<'a> {
        Param::Text(value.as_deref())
    }
}

/// An open transaction.
pub trait Tx {
    /// Runs a statement that returns no rows.
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<(), String>;
    /// The first column of the rows a statement returns, each as text or null.
    fn query_texts(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Option<String>>, String>;
    /// The one integer a statement returns (an `INSERT ... RETURNING` key).
    fn query_int(&mut self, sql: &str, params: &[Param<'_>]) -> Result<i64, String>;
}

/// A records database.
pub trait Store {
    /// The schema version the database holds (0 when new).
    fn schema_version(&mut self) -> Result<u32, String>;
    /// Applies the migrations after the version the database holds, up to `to`, under the
    /// database's write lock (another writer may have migrated meanwhile).
    fn migrate(&mut self, to: u32) -> Result<(), String>;
    /// Runs `body` in one transaction, writers taking turns: committed when it returns `Ok`,
    /// rolled back otherwise (and when the process dies before the commit).
    fn transaction(
        &mut self,
        body: &mut dyn FnMut(&mut dyn Tx) -> crate::vocab::Result<super::Recorded>,
    ) -> Result<crate::vocab::Result<super::Recorded>, String>;
    /// Every row a query returns, its columns as text or null.
    fn rows(
        &mut self,
        sql: &str,
        params: &[Param<'_>],
        columns: usize,
    ) -> Result<Vec<Vec<Option<String>>>, String>;
}

/// SQLite's `?N` placeholders as PostgreSQL's `$N` (the statements here hold no `?` in a
/// string literal).
pub fn numbered_dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_keep_their_numbers() {
        assert_eq!(numbered_dollars("WHERE a = ?1 OR b = ?12"), "WHERE a = $1 OR b = $12");
    }
}
