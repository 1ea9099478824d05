//! What the store's tests share: the index databases a test runs on.

#![allow(dead_code)]

pub mod pg;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use lumen_store::StoreConfig;

/// An index database for a test: SQLite in the data directory, or a private PostgreSQL
/// server (one per test; each store gets its own database on it).
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// A test server.
    Postgres(pg::PgServer),
}

/// The backends a test runs on: SQLite, and PostgreSQL when installed (see [`pg::start`]).
pub fn backends() -> Vec<Backend> {
    let mut v = vec![Backend::Sqlite];
    if let Some(server) = pg::start() {
        v.push(Backend::Postgres(server));
    }
    v
}

impl Backend {
    /// A name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// A store configuration for a data directory: on PostgreSQL with a new, empty
    /// database.
    pub fn config(&self, dir: &Path) -> StoreConfig {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let mut cfg = StoreConfig::new(dir);
        if let Backend::Postgres(server) = self {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            cfg.database = Some(server.database(&format!("store{n}")));
        }
        cfg
    }

    /// The same database again (for a reopened store): `cfg`'s.
    pub fn reopen(&self, previous: &StoreConfig, dir: &Path) -> StoreConfig {
        let mut cfg = StoreConfig::new(dir);
        cfg.database = previous.database.clone();
        cfg
    }
}

/// A direct connection to a store's index, past the store.
pub enum Raw {
    /// SQLite.
    Sqlite(sqlx::SqlitePool),
    /// PostgreSQL.
    Postgres(sqlx::PgPool),
}

impl Raw {
    /// Connects to the index of the store opened with `cfg`.
    pub async fn open(cfg: &lumen_store::StoreConfig) -> Raw {
        match &cfg.database {
            Some(url) => Raw::Postgres(sqlx::PgPool::connect(url).await.expect("connect")),
            None => {
                let opts = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(cfg.data_dir.join("index.sqlite"))
                    .busy_timeout(std::time::Duration::from_secs(10));
                Raw::Sqlite(sqlx::SqlitePool::connect_with(opts).await.expect("connect"))
            }
        }
    }

    /// Runs one statement (no parameters: the same text on both databases, but for
    /// SQLite's `zeroblob(32)`, written for PostgreSQL as 32 zero bytes).
    pub async fn exec(&self, sql: &str) -> Result<u64, String> {
        match self {
            Raw::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(p) => {
                let sql = sql.replace("zeroblob(32)", "decode(repeat('00', 32), 'hex')");
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected())
            }
        }
        .map_err(|e| e.to_string())
    }

    /// Closes the connections.
    pub async fn close(self) {
        match self {
            Raw::Sqlite(p) => p.close().await,
            Raw::Postgres(p) => p.close().await,
        }
    }
}
