//! One way to ask either store a question. The read queries are written
//! once, in the SQL that SQLite and PostgreSQL both speak, and run through
//! [`Sql`] on whichever store the collector was given, so the two answer
//! alike by construction rather than by two copies kept in step.
//!
//! The dialect both accept, and so the only one queries here use:
//! - parameters `$1`, `$2`… as PostgreSQL numbers them (the SQLite side
//!   renames them `?1`, `?2`… before preparing);
//! - every integer column and parameter is 64-bit (`i64`; `BIGINT` in
//!   PostgreSQL), every real one `f64` (`DOUBLE PRECISION`);
//! - aggregates that PostgreSQL widens (`sum` of integers is `numeric`
//!   there) are cast back: `CAST(sum(x) AS BIGINT)`; `CAST(x AS DOUBLE
//!   PRECISION)` for a real;
//! - `COALESCE`, `CASE`, `ON CONFLICT … DO NOTHING` and `RETURNING`, never
//!   SQLite's `IFNULL`, two-argument `max`/`min`, `INSERT OR IGNORE` or
//!   `GLOB`, nor PostgreSQL's `::` casts, `GREATEST` or `ILIKE`;
//! - no boolean in a result column (PostgreSQL's are not integers).

use super::StoreError;

/// A query parameter either store can bind: `i64`, `f64`, `&str`,
/// `String`, an `Option` of one of them, or a reference to one.
pub trait Param: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync {}

impl<T: rusqlite::ToSql + tokio_postgres::types::ToSql + Sync> Param for T {}

/// One row of an answer, read by column index.
pub trait Row {
    fn i64(&self, column: usize) -> Result<i64, StoreError>;
    fn opt_i64(&self, column: usize) -> Result<Option<i64>, StoreError>;
    fn f64(&self, column: usize) -> Result<f64, StoreError>;
    fn opt_f64(&self, column: usize) -> Result<Option<f64>, StoreError>;
    fn text(&self, column: usize) -> Result<String, StoreError>;
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError>;
}

/// A connection to either store.
pub trait Sql {
    /// Runs `sql`, calling `each` on every row in order.
    fn each(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;

    /// Runs a statement that answers no rows; how many rows it changed.
    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, StoreError>;
}

impl dyn Sql + '_ {
    /// Every row, each made into a `T`.
    pub fn rows<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&dyn Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.each(sql, params, &mut |row| {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The first row, if any.
    pub fn row<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnOnce(&dyn Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        self.each(sql, params, &mut |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// A query that always answers one row of one integer (`count(*)`, a
    /// `COALESCE`d aggregate).
    pub fn one_i64(&self, sql: &str, params: &[&dyn Param]) -> Result<i64, StoreError> {
        self.row(sql, params, |r| r.i64(0))?
            .ok_or_else(|| StoreError::NoRow(sql.to_string()))
    }
}

/// `$1`, `$2`… renamed `?1`, `?2`… for SQLite, leaving string literals,
/// quoted names and comments as they are.
pub fn sqlite_params(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    let mut comment = false;
    while let Some(c) = chars.next() {
        if comment {
            out.push(c);
            comment = c != '\n';
            continue;
        }
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '-') if chars.peek() == Some(&'-') => comment = true,
            (None, '$') if chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            (None, _) => {}
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

/// SQLite's side: a connection of the read pool or the writer.
impl Sql for rusqlite::Connection {
    fn each(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.prepare_cached(&sqlite_params(sql))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(
            params.iter().map(|p| *p as &dyn rusqlite::ToSql),
        ))?;
        while let Some(row) = rows.next()? {
            each(row)?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, StoreError> {
        let mut stmt = self.prepare_cached(&sqlite_params(sql))?;
        let n = stmt.execute(rusqlite::params_from_iter(
            params.iter().map(|p| *p as &dyn rusqlite::ToSql),
        ))?;
        Ok(n as u64)
    }
}

impl Row for rusqlite::Row<'_> {
    fn i64(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_i64(&self, column: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(column)?)
    }
    fn f64(&self, column: usize) -> Result<f64, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_f64(&self, column: usize) -> Result<Option<f64>, StoreError> {
        Ok(self.get(column)?)
    }
    fn text(&self, column: usize) -> Result<String, StoreError> {
        Ok(self.get(column)?)
    }
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(column)?)
    }
}

/// PostgreSQL's side: one client of the pool, used from a blocking thread
/// (the API's queries run on tokio's blocking pool, as SQLite's do).
pub struct PgSql<'a> {
    pub client: &'a tokio_postgres::Client,
    pub runtime: &'a tokio::runtime::Handle,
}

impl PgSql<'_> {
    fn params<'p>(
        params: &'p [&'p dyn Param],
    ) -> Vec<&'p (dyn tokio_postgres::types::ToSql + Sync)> {
        params
            .iter()
            .map(|p| *p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect()
    }
}

impl Sql for PgSql<'_> {
    fn each(
        &self,
        sql: &str,
        params: &[&dyn Param],
        each: &mut dyn FnMut(&dyn Row) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let rows = self
            .runtime
            .block_on(self.client.query(sql, &PgSql::params(params)))?;
        for row in &rows {
            each(row)?;
        }
        Ok(())
    }

    fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, StoreError> {
        Ok(self
            .runtime
            .block_on(self.client.execute(sql, &PgSql::params(params)))?)
    }
}

/// SQLite keeps a whole real as an integer, so it answers a stored `-0.0`
/// as `0.0`; adding `0.0` does the same here, and nothing else.
impl Row for tokio_postgres::Row {
    fn i64(&self, column: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_i64(&self, column: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn f64(&self, column: usize) -> Result<f64, StoreError> {
        Ok(self.try_get::<_, f64>(column)? + 0.0)
    }
    fn opt_f64(&self, column: usize) -> Result<Option<f64>, StoreError> {
        Ok(self.try_get::<_, Option<f64>>(column)?.map(|x| x + 0.0))
    }
    fn text(&self, column: usize) -> Result<String, StoreError> {
        Ok(self.try_get(column)?)
    }
    fn opt_text(&self, column: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(column)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renamed_for_sqlite_outside_quotes_and_comments() {
        assert_eq!(
            sqlite_params("SELECT a FROM t WHERE b = $1 AND c > $12 -- not $3\n AND d = '$4'"),
            "SELECT a FROM t WHERE b = ?1 AND c > ?12 -- not $3\n AND d = '$4'"
        );
        assert_eq!(
            sqlite_params(r#"SELECT "$1" FROM t"#),
            r#"SELECT "$1" FROM t"#
        );
        assert!(matches!(
            sqlite_params("SELECT 1"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_same_query_reads_sqlite_through_the_trait() {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE t (a INTEGER, b REAL, c TEXT);
             INSERT INTO t VALUES (1, 0.5, 'x'), (2, NULL, NULL);",
        )
        .unwrap();
        let db: &dyn Sql = &db;
        let rows = db
            .rows(
                "SELECT a, b, c FROM t WHERE a >= $1 ORDER BY a",
                &[&1_i64],
                |r| Ok((r.i64(0)?, r.opt_f64(1)?, r.opt_text(2)?)),
            )
            .unwrap();
        assert_eq!(rows, [(1, Some(0.5), Some("x".into())), (2, None, None)]);
        assert_eq!(
            db.one_i64("SELECT CAST(sum(a) AS BIGINT) FROM t", &[])
                .unwrap(),
            3
        );
        assert_eq!(
            db.execute("UPDATE t SET c = $2 WHERE a = $1", &[&2_i64, &"y"])
                .unwrap(),
            1
        );
    }
}
