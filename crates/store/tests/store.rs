//! Store-level round trips: ingest, duplicates, conflict policies, sweep of leftovers.

mod support;

use std::path::Path;

use bytes::Bytes;
use lumen_dicom::attrs::Level;
use lumen_dicom::query::Query;
use lumen_store::{ConflictPolicy, IngestError, IngestStatus, Origin, Scope, Store, StoreConfig};
use support::{files_under, sample};

#[tokio::test]
async fn duplicates_conflicts_and_replacement() {
    let Some(original) = sample() else { return };
    for backend in support::backends() {
        duplicates_conflicts_and_replacement_on(&backend, &original).await;
    }
}

async fn duplicates_conflicts_and_replacement_on(backend: &support::Backend, original: &[u8]) {
    let name = backend.name();
    let tmp = tempfile::tempdir().expect("tmp");
    let mut changed = original.to_vec();
    let n = changed.len();
    changed[n - 2] ^= 0x0F;
    let first = backend.config(tmp.path());
    {
        let store = Store::open(first.clone()).await.expect("open");
        let a = store
            .ingest(Bytes::from(original.to_vec()), Origin::Import)
            .await
            .expect("ingest");
        assert_eq!(a.status, IngestStatus::Stored, "{name}");
        let b = store
            .ingest(Bytes::from(original.to_vec()), Origin::Import)
            .await
            .expect("again");
        assert_eq!(b.status, IngestStatus::AlreadyPresent, "{name}");
        let c = store
            .ingest(Bytes::from(changed.clone()), Origin::Import)
            .await;
        assert!(matches!(c, Err(IngestError::Conflict(_))), "{name}: {c:?}");
        let inst = store.instances(&Scope::default()).await.expect("list");
        assert_eq!(inst.len(), 1, "{name}");
        assert_eq!(&inst[0].read().await.expect("read")[..], original);
        // A second process cannot open the same archive.
        assert!(
            Store::open(backend.reopen(&first, tmp.path()))
                .await
                .is_err(),
            "{name}"
        );
    }
    let mut cfg = backend.reopen(&first, tmp.path());
    cfg.on_conflict = ConflictPolicy::Replace;
    let store = Store::open(cfg).await.expect("reopen");
    let d = store
        .ingest(Bytes::from(changed.clone()), Origin::Import)
        .await
        .expect("replace");
    assert_eq!(d.status, IngestStatus::Replaced, "{name}");
    let inst = store.instances(&Scope::default()).await.expect("list");
    assert_eq!(inst.len(), 1, "{name}");
    assert_eq!(&inst[0].read().await.expect("read")[..], &changed[..]);
    // The replaced file is gone: one object file remains.
    assert_eq!(files_under(&tmp.path().join("objects")).len(), 1, "{name}");
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.studies, stats.series, stats.instances),
        (1, 1, 1),
        "{name}"
    );
    let found = store
        .search(&Query::new(Level::Patient), &Scope::default())
        .await
        .expect("search");
    assert_eq!(found.len(), 1, "{name}");
    let meta = store.metadata(&Scope::default()).await.expect("metadata");
    assert_eq!(meta.len(), 1, "{name}");
}

#[tokio::test]
async fn open_sweeps_unindexed_and_temporary_files() {
    let Some(original) = sample() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        store
            .ingest(Bytes::from(original), Origin::Import)
            .await
            .expect("ingest");
    }
    // What a crash between rename and commit, or mid-write, would leave.
    let orphan_dir = tmp.path().join("objects/ff/ee");
    std::fs::create_dir_all(&orphan_dir).expect("mkdir");
    std::fs::write(orphan_dir.join("1.2.3-0000000000000000.dcm"), b"orphan").expect("write");
    std::fs::write(tmp.path().join("tmp/123-4.part"), b"partial").expect("write");
    let store = Store::open(StoreConfig::new(tmp.path()))
        .await
        .expect("reopen");
    assert_eq!(files_under(&tmp.path().join("objects")).len(), 1);
    assert!(files_under(&tmp.path().join("tmp")).is_empty());
    assert_eq!(
        store
            .instances(&Scope::default())
            .await
            .expect("list")
            .len(),
        1
    );
}

#[tokio::test]
async fn invalid_bytes_store_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(StoreConfig::new(tmp.path()))
        .await
        .expect("open");
    for bad in [&b""[..], b"DICM", b"not dicom at all", &[0u8; 300][..]] {
        let r = store
            .ingest(Bytes::copy_from_slice(bad), Origin::Import)
            .await;
        assert!(matches!(r, Err(IngestError::Invalid(_))), "{r:?}");
    }
    assert!(files_under(&tmp.path().join("objects")).is_empty());
    assert!(files_under(&tmp.path().join("tmp")).is_empty());
}

/// Sets `synced` of every indexed instance through a second connection (the store closed).
async fn set_synced(dir: &Path, value: i64) -> Vec<(String, i64)> {
    use sqlx::{Connection, Row};
    let url = format!("sqlite://{}", dir.join("index.sqlite").display());
    let mut c = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    if value >= 0 {
        sqlx::query("UPDATE instances SET synced = ?")
            .bind(value)
            .execute(&mut c)
            .await
            .expect("update");
    }
    sqlx::query("SELECT path, synced FROM instances")
        .fetch_all(&mut c)
        .await
        .expect("select")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// The file sync runs beside the index commit; rows carry `synced = 0` until the next
/// transaction learns the file is on disk. After a power loss in that window, the start-up
/// check un-indexes an instance whose bytes did not survive, and keeps an intact one.
#[tokio::test]
async fn unsynced_rows_are_checked_at_start() {
    let Some(original) = sample() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let level_count = |store: Store| async move {
        let q = Query::from_qido(Level::Study, &[]).expect("query");
        store
            .search(&q, &Scope::default())
            .await
            .expect("search")
            .len()
    };
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        store
            .ingest(Bytes::from(original.clone()), Origin::Import)
            .await
            .expect("ingest");
        // The next transaction (an identical re-send) marks the first file synced.
        store
            .ingest(Bytes::from(original.clone()), Origin::Import)
            .await
            .expect("again");
    }
    let rows = set_synced(tmp.path(), -1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, 1, "the file sync was recorded");

    // Intact file listed as unsynced: kept, and marked synced by the start-up check.
    set_synced(tmp.path(), 0).await;
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        assert_eq!(level_count(store).await, 1);
    }
    assert_eq!(set_synced(tmp.path(), -1).await[0].1, 1);

    // A file whose bytes did not survive (torn by a power loss): un-indexed, swept.
    set_synced(tmp.path(), 0).await;
    let file = tmp.path().join(&rows[0].0);
    let torn = std::fs::read(&file).expect("read")[..1000].to_vec();
    std::fs::write(&file, torn).expect("tear");
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        assert_eq!(level_count(store.clone()).await, 0, "the study is gone");
        assert_eq!(store.stats().await.expect("stats").instances, 0);
        assert!(
            files_under(&tmp.path().join("objects")).is_empty(),
            "torn file swept"
        );
        // And the instance can be stored again.
        let again = store
            .ingest(Bytes::from(original), Origin::Import)
            .await
            .expect("re-ingest");
        assert_eq!(again.status, IngestStatus::Stored);
    }
}

/// Archives written before content hashes became BLAKE3 list SHA-256 values: they still
/// check an interrupted file at start-up, recognise an identical re-send and refuse a
/// different object under the same UID.
#[tokio::test]
async fn rows_hashed_with_sha256_by_an_earlier_version_still_work() {
    use sha2::{Digest, Sha256};
    use sqlx::{Connection, Row};
    let Some(original) = sample() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        store
            .ingest(Bytes::from(original.clone()), Origin::Import)
            .await
            .expect("ingest");
    }
    let url = format!("sqlite://{}", tmp.path().join("index.sqlite").display());
    let legacy = hex::encode(Sha256::digest(&original));
    {
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        let stored: String = sqlx::query("SELECT content_hash FROM instances")
            .fetch_one(&mut c)
            .await
            .expect("select")
            .get(0);
        assert!(stored.starts_with("blake3:"), "{stored}");
        // As an earlier version wrote the row, with its sync still unconfirmed.
        sqlx::query("UPDATE instances SET content_hash = ?, synced = 0")
            .bind(&legacy)
            .execute(&mut c)
            .await
            .expect("update");
    }
    let store = Store::open(StoreConfig::new(tmp.path()))
        .await
        .expect("reopen");
    // The start-up check found the file intact by its SHA-256.
    assert_eq!(set_synced(tmp.path(), -1).await[0].1, 1);
    let again = store
        .ingest(Bytes::from(original.clone()), Origin::Import)
        .await
        .expect("again");
    assert_eq!(again.status, IngestStatus::AlreadyPresent);
    assert_eq!(files_under(&tmp.path().join("objects")).len(), 1);
    let mut changed = original.clone();
    let n = changed.len();
    changed[n - 2] ^= 0x0F;
    let c = store.ingest(Bytes::from(changed), Origin::Import).await;
    assert!(matches!(c, Err(IngestError::Conflict(_))), "{c:?}");
    assert_eq!(files_under(&tmp.path().join("objects")).len(), 1);
    let inst = store.instances(&Scope::default()).await.expect("list");
    assert_eq!(&inst[0].read().await.expect("read")[..], &original[..]);
}

#[tokio::test]
async fn an_unreachable_postgresql_index_is_named_without_its_password() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = StoreConfig::new(tmp.path());
    cfg.database = Some("postgres://lumen:s3cret-pw@127.0.0.1:1/archive".into());
    let e = Store::open(cfg)
        .await
        .expect_err("nothing listens on port 1")
        .to_string();
    assert!(e.contains("127.0.0.1:1") && e.contains("archive"), "{e}");
    assert!(!e.contains("s3cret-pw"), "{e}");
    assert!(!tmp.path().join("index.sqlite").exists());
}
