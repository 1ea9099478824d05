//! What the store's tests share: the index databases a test runs on, the sample object and
//! a file listing.

#![allow(dead_code)]

pub mod pg;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use dicom_dictionary_std::tags;
use lumen_store::StoreConfig;

/// pydicom's CT_small.dcm in ../shared/data, or `None` (with a message) when the data is
/// absent; a failure when `LUMEN_REQUIRE_DATA=1`.
pub fn sample_path() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    if !p.exists() {
        assert!(
            std::env::var("LUMEN_REQUIRE_DATA").as_deref() != Ok("1"),
            "../shared/data missing"
        );
        eprintln!("SKIP: ../shared/data not found");
        return None;
    }
    Some(p)
}

/// The sample's bytes (see [`sample_path`]).
pub fn sample() -> Option<Vec<u8>> {
    sample_path().map(|p| std::fs::read(p).expect("read sample"))
}

/// Every file below `p`.
pub fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// The sample under another SOP Instance UID (and, with `tweak`, other content).
pub fn copy(src: &Path, sop: &str, tweak: bool) -> Bytes {
    copy_in(src, None, sop, tweak)
}

/// As [`copy`], in series `series` (of the sample's study) when given.
pub fn copy_in(src: &Path, series: Option<&str>, sop: &str, tweak: bool) -> Bytes {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let mut obj = dicom_object::open_file(src).expect("sample");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop),
    ));
    if let Some(series) = series {
        obj.put(DataElement::new(
            tags::SERIES_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(series),
        ));
    }
    if tweak {
        obj.put(DataElement::new(
            tags::IMAGE_COMMENTS,
            VR::LT,
            PrimitiveValue::from("changed"),
        ));
    }
    obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.into());
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes).expect("encode");
    Bytes::from(bytes)
}

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

/// Two stores over one PostgreSQL database, each with a data directory of its own (two
/// processes' worth), configured by `configure`; `None` on SQLite, whose one process owns
/// the index. The directories live as long as the returned guard.
pub async fn two_stores(
    backend: &Backend,
    configure: impl Fn(&mut StoreConfig),
) -> Option<(
    lumen_store::Store,
    lumen_store::Store,
    [tempfile::TempDir; 2],
)> {
    if !matches!(backend, Backend::Postgres(_)) {
        return None;
    }
    let dirs = [
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    ];
    let mut a_cfg = backend.config(dirs[0].path());
    configure(&mut a_cfg);
    let mut b_cfg = backend.reopen(&a_cfg, dirs[1].path());
    configure(&mut b_cfg);
    let a = lumen_store::Store::open(a_cfg).await.expect("open a");
    let b = lumen_store::Store::open(b_cfg).await.expect("open b");
    Some((a, b, dirs))
}

/// Runs `claim` on both stores at once until each gets nothing back; what each claimed.
pub async fn claim_concurrently<T, F, Fut>(
    a: &lumen_store::Store,
    b: &lumen_store::Store,
    claim: F,
) -> (Vec<T>, Vec<T>)
where
    T: Send + 'static,
    F: Fn(lumen_store::Store) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Vec<T>> + Send,
{
    let drain = |store: lumen_store::Store| {
        let claim = claim.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = claim(store.clone()).await;
                if got.is_empty() {
                    return mine;
                }
                mine.extend(got);
                tokio::task::yield_now().await;
            }
        })
    };
    let (from_a, from_b) = (drain(a.clone()), drain(b.clone()));
    (from_a.await.expect("a"), from_b.await.expect("b"))
}
