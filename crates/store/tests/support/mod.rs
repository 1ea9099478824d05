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
