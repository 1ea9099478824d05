//! The index database: SQLite (the embedded default) or PostgreSQL, chosen by
//! [`StoreConfig::database`](crate::StoreConfig::database).
//!
//! One code path per use case: SQL is written once, with `?` placeholders, in the subset both
//! databases run (`ON CONFLICT`, `RETURNING`, `LIKE ... ESCAPE`, `||`, `coalesce`). Where the
//! two differ, the difference lives here ([`Dialect`]). [`with_db!`] runs the same Rust code
//! on whichever pool the store has: the code is compiled once per database, so SQLite keeps
//! its native driver (no `Any` conversions on the hot read paths).
//!
//! The schemas are `migrations/` (SQLite) and `migrations-pg/` (PostgreSQL): every change
//! comes as a pair.

use std::borrow::Cow;

use sqlx::postgres::{PgConnection, PgPool, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteConnection, SqliteRow};
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, SqlitePool, Type};

/// Which SQL the index speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// SQLite (`?` placeholders).
    Sqlite,
    /// PostgreSQL (`$n` placeholders).
    Postgres,
}

/// The index's connection pools.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// SQLite: readers, and one writer connection (transactions begin IMMEDIATE).
    Sqlite {
        /// Read-only connections.
        reader: SqlitePool,
        /// The one writing connection of sqlx (the ingest writer thread has its own).
        writer: SqlitePool,
    },
    /// PostgreSQL: one pool reads and writes.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool for `$role` (`reader` or `writer`)
/// and `$d` to its [`Dialect`]. The body is compiled for each database, so the same code
/// (SQL through [`Dialect::sql`], `bind`, `try_get`) serves both.
macro_rules! with_db {
    ($pools:expr, $role:ident, |$pool:ident, $d:ident| $body:expr) => {
        match $pools {
            $crate::db::Pools::Sqlite { $role: $pool, .. } => {
                let $d = $crate::db::Dialect::Sqlite;
                $body
            }
            $crate::db::Pools::Postgres($pool) => {
                let $d = $crate::db::Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_db;

/// A connection (inside a transaction) of either database, for helpers that run within
/// their caller's transaction.
pub(crate) enum Conn<'a> {
    /// SQLite.
    Sqlite(&'a mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'a mut PgConnection),
}

impl<'a> From<&'a mut SqliteConnection> for Conn<'a> {
    fn from(c: &'a mut SqliteConnection) -> Self {
        Conn::Sqlite(c)
    }
}

impl<'a> From<&'a mut PgConnection> for Conn<'a> {
    fn from(c: &'a mut PgConnection) -> Self {
        Conn::Postgres(c)
    }
}

/// [`with_db!`] for a [`Conn`]: runs `$body` with `$c` bound to the connection and `$d`
/// to its dialect.
macro_rules! with_conn {
    ($conn:expr, |$c:ident, $d:ident| $body:expr) => {
        match $conn {
            $crate::db::Conn::Sqlite($c) => {
                let $d = $crate::db::Dialect::Sqlite;
                $body
            }
            $crate::db::Conn::Postgres($c) => {
                let $d = $crate::db::Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_conn;

/// A value both drivers decode (`i64`, `String`, `Vec<u8>`, `bool`, their `Option`s).
pub(crate) trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}
impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

/// A column position or name, on either driver's rows.
pub(crate) trait ColumnRef:
    ColumnIndex<SqliteRow> + ColumnIndex<PgRow> + std::fmt::Debug
{
}
impl<I> ColumnRef for I where I: ColumnIndex<SqliteRow> + ColumnIndex<PgRow> + std::fmt::Debug {}

/// A result row of either database: what the row-mapping helpers take, so that one helper
/// serves both.
pub(crate) trait IndexRow {
    /// The value of a column (`sqlx::Row::try_get`).
    fn col<T: Column, I: ColumnRef>(&self, index: I) -> Result<T, sqlx::Error>;
}

impl IndexRow for SqliteRow {
    fn col<T: Column, I: ColumnRef>(&self, index: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

impl IndexRow for PgRow {
    fn col<T: Column, I: ColumnRef>(&self, index: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

impl Pools {
    /// The database's dialect.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Connections the reading pool holds open.
    pub(crate) fn reader_size(&self) -> u32 {
        match self {
            Pools::Sqlite { reader, .. } => reader.size(),
            Pools::Postgres(pool) => pool.size(),
        }
    }

    /// Of those, how many are idle.
    pub(crate) fn reader_idle(&self) -> usize {
        match self {
            Pools::Sqlite { reader, .. } => reader.num_idle(),
            Pools::Postgres(pool) => pool.num_idle(),
        }
    }
}

impl Dialect {
    /// `sql` for this database: `?` placeholders become `$1, $2, ...` on PostgreSQL
    /// (`?N` becomes `$N`). SQLite gets the text unchanged.
    pub(crate) fn sql(self, sql: impl Into<Cow<'static, str>>) -> AssertSqlSafe<Cow<'static, str>> {
        let sql = sql.into();
        AssertSqlSafe(match self {
            Dialect::Sqlite => sql,
            Dialect::Postgres => Cow::Owned(numbered(&sql)),
        })
    }

    /// The function that returns the greatest of its arguments (SQLite's scalar `max`).
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Dialect::Sqlite => "max",
            Dialect::Postgres => "greatest",
        }
    }

    /// An expression for the milliseconds since the epoch of the ISO 8601 time `arg` (a
    /// placeholder), NULL when it cannot be read.
    pub(crate) fn time_ms(self, arg: &str) -> String {
        match self {
            Dialect::Sqlite => {
                format!("CAST(round((julianday({arg}) - 2440587.5) * 86400000.0) AS INTEGER)")
            }
            // A function of the PostgreSQL schema: a cast would fail the statement instead.
            Dialect::Postgres => format!("lumen_time_ms({arg})"),
        }
    }

    /// What ends a `SELECT` of queue rows to claim: on PostgreSQL the rows are locked, and
    /// rows another process is claiming are skipped, so that concurrent workers never take
    /// the same row; SQLite serialises writers (its claims run in IMMEDIATE transactions).
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// How a write transaction begins: IMMEDIATE on SQLite, so that one that reads first
    /// can still write when the ingest writer committed meanwhile; PostgreSQL's row locks
    /// need nothing special.
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// `?` placeholders as PostgreSQL's `$n`, outside quoted strings, quoted identifiers and
/// comments. Hand-written: sqlx passes SQL through untouched, and a tokenizer crate for
/// this one rule would be more code to trust than the scan.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0usize;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                // Up to the closing quote; a doubled quote is an escaped one and is copied
                // as two quotes by going round again.
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                out.push('$');
                if digits.is_empty() {
                    next += 1;
                    out.push_str(&next.to_string());
                } else {
                    out.push_str(&digits);
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(
            numbered("SELECT a FROM t WHERE b = ? AND c IN (?, ?) LIMIT ? OFFSET ?"),
            "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3) LIMIT $4 OFFSET $5"
        );
        assert_eq!(
            numbered("UPDATE t SET x = ?1 WHERE y <= ?1 AND z < ?2"),
            "UPDATE t SET x = $1 WHERE y <= $1 AND z < $2"
        );
        assert_eq!(
            numbered("SELECT '?', 'it''s ?', \"odd?\" -- why?\n FROM t WHERE a = ?"),
            "SELECT '?', 'it''s ?', \"odd?\" -- why?\n FROM t WHERE a = $1"
        );
        assert_eq!(
            numbered("x LIKE ? ESCAPE '!' AND ('\\' || m || '\\') LIKE ?"),
            "x LIKE $1 ESCAPE '!' AND ('\\' || m || '\\') LIKE $2"
        );
    }

    #[test]
    fn the_database_password_is_not_in_debug_output() {
        let mut cfg = crate::StoreConfig::new("/tmp/x");
        cfg.database = Some("postgres://lumen:s3cret@db.example:5432/pacs".into());
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://lumen:***@db.example:5432/pacs"),
            "{shown}"
        );
    }

    #[test]
    fn sqlite_sql_is_unchanged() {
        let AssertSqlSafe(s) = Dialect::Sqlite.sql("SELECT ?");
        assert!(matches!(s, Cow::Borrowed("SELECT ?")));
    }
}
