//! The routing outbox: rows written by the ingest transaction (new instances only), claims,
//! outcomes and backoff, claims released at the next start, the queue beside an open store,
//! and the one-time import of an earlier version's `outbound.sqlite`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lumen_store::{
    Arrival, ConflictPolicy, IngestStatus, Origin, Router, RoutingQueue, Store, StoreConfig,
};

mod support;

use support::{copy, sample_path};

/// CT goes to PACS; what SCANNER sends over C-STORE also goes to MIRROR.
#[derive(Debug)]
struct TestRouter;

impl Router for TestRouter {
    fn destinations(&self, a: &Arrival<'_>) -> Vec<String> {
        let mut d = Vec::new();
        if a.modality == "CT" {
            d.push("PACS".to_string());
            d.push("PACS".to_string());
        }
        if a.origin.calling_ae() == Some("SCANNER") {
            d.push("MIRROR".to_string());
        }
        d
    }
}

fn config(backend: &support::Backend, dir: &Path) -> StoreConfig {
    let mut cfg = backend.config(dir);
    cfg.router = Some(Arc::new(TestRouter));
    cfg
}

#[tokio::test]
async fn new_instances_are_queued_in_their_transaction() {
    for backend in support::backends() {
        new_instances_are_queued_in_their_transaction_on(&backend).await;
    }
}

async fn new_instances_are_queued_in_their_transaction_on(backend: &support::Backend) {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let first = config(backend, tmp.path());
    let store = Store::open(first.clone()).await.expect("open");
    let original = Bytes::from(std::fs::read(&src).expect("read"));

    let a = store
        .ingest(original.clone(), Origin::c_store("SCANNER"))
        .await
        .expect("ingest");
    assert_eq!(a.status, IngestStatus::Stored);
    assert_eq!(a.modality, "CT");
    assert_eq!(a.origin, Origin::c_store("SCANNER"));
    assert_eq!(a.routed, 2);
    // An identical re-send stores nothing and routes nothing.
    let again = store
        .ingest(original.clone(), Origin::c_store("SCANNER"))
        .await
        .expect("again");
    assert_eq!(
        (again.status, again.routed),
        (IngestStatus::AlreadyPresent, 0)
    );
    // Not over DIMSE: the calling-AE rule does not apply.
    let b = store
        .ingest(
            copy(&src, "1.2.826.0.1.3680043.8.498.77.1", false),
            Origin::StowRs,
        )
        .await
        .expect("stow");
    assert_eq!(b.routed, 1);

    let e = store.outbox_entries().await.expect("entries");
    let got: Vec<(&str, &str, &str, &str)> = e
        .iter()
        .map(|e| {
            (
                e.sop_instance_uid.as_str(),
                e.destination.as_str(),
                e.origin.as_str(),
                e.state.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (a.sop_instance_uid.as_str(), "MIRROR", "c-store", "pending"),
            (a.sop_instance_uid.as_str(), "PACS", "c-store", "pending"),
            (
                "1.2.826.0.1.3680043.8.498.77.1",
                "PACS",
                "stow-rs",
                "pending"
            ),
        ]
    );
    assert!(e.iter().all(|e| e.attempts == 0 && e.queued_ms > 0));
    assert_eq!(e[0].study_uid, a.study_uid);
    assert_eq!(e[0].series_uid, a.series_uid);

    // Without a router nothing is queued.
    drop(store);
    let store = Store::open(backend.reopen(&first, tmp.path()))
        .await
        .expect("reopen");
    let c = store
        .ingest(
            copy(&src, "1.2.826.0.1.3680043.8.498.77.2", false),
            Origin::Import,
        )
        .await
        .expect("import");
    assert_eq!((c.status, c.routed), (IngestStatus::Stored, 0));
    assert_eq!(store.outbox_entries().await.expect("entries").len(), 3);
}

#[tokio::test]
async fn claims_outcomes_and_restart() {
    for backend in support::backends() {
        claims_outcomes_and_restart_on(&backend).await;
    }
}

async fn claims_outcomes_and_restart_on(backend: &support::Backend) {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let mut cfg = config(backend, tmp.path());
    cfg.on_conflict = ConflictPolicy::Replace;
    let store = Store::open(cfg.clone()).await.expect("open");
    for i in 1..=3 {
        let r = store
            .ingest(
                copy(&src, &format!("1.2.826.0.1.3680043.8.498.78.{i}"), false),
                Origin::Ai,
            )
            .await
            .expect("ingest");
        assert_eq!(r.routed, 1);
    }
    let claimed = store.claim_outbox(10).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    assert!(claimed.windows(2).all(|w| w[0].id < w[1].id));
    // Claimed rows are not handed out twice.
    assert!(store.claim_outbox(10).await.expect("claim").is_empty());

    store.outbox_sent(&claimed[0]).await.expect("sent");
    store
        .outbox_retry(&claimed[1], "connection refused", Duration::from_secs(3600))
        .await
        .expect("retry");
    store
        .outbox_refused(&claimed[2], "refused with status A700")
        .await
        .expect("refused");
    let e = store.outbox_entries().await.expect("entries");
    assert_eq!(e.len(), 2);
    assert_eq!(
        (
            e[0].state.as_str(),
            e[0].attempts,
            e[0].last_error.as_deref()
        ),
        ("pending", 1, Some("connection refused"))
    );
    assert!(e[0].next_attempt_ms > claimed[1].next_attempt_ms + 3_000_000);
    assert_eq!((e[1].state.as_str(), e[1].attempts), ("failed", 1));
    assert_eq!(e[1].origin, "ai");
    // Neither is due: one waits for its backoff, the other for an operator.
    assert!(store.claim_outbox(10).await.expect("claim").is_empty());
    assert_eq!(
        store.outbox_next_due().await.expect("due"),
        Some(e[0].next_attempt_ms)
    );
    assert_eq!(
        store
            .outbox_retry_failed(Some("OTHER"))
            .await
            .expect("retry"),
        0
    );
    assert_eq!(store.outbox_retry_failed(None).await.expect("retry"), 1);
    let again = store.claim_outbox(10).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].attempts, again[0].state.as_str()), (0, "pending"));

    // A replaced instance is queued again, even while its old row is out for sending: the
    // stale claim's outcome does not remove the new row.
    let r = store
        .ingest(
            copy(&src, &again[0].sop_instance_uid, true),
            Origin::Retrieve,
        )
        .await
        .expect("replace");
    assert_eq!((r.status, r.routed), (IngestStatus::Replaced, 1));
    store.outbox_sent(&again[0]).await.expect("sent");
    let e = store.outbox_entries().await.expect("entries");
    let row = e
        .iter()
        .find(|e| e.sop_instance_uid == again[0].sop_instance_uid)
        .expect("queued again");
    assert_eq!(
        (row.state.as_str(), row.origin.as_str()),
        ("pending", "retrieve")
    );

    // A process that dies with rows claimed: on SQLite (one process owns the index) they
    // are handed out at the next start; on PostgreSQL another process may be sending them,
    // so they wait for the end of their lease.
    let claimed = store.claim_outbox(10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    drop(store);
    let store = Store::open(cfg).await.expect("reopen");
    let claimed_again = store.claim_outbox(10).await.expect("claim");
    if backend.name() == "postgres" {
        assert!(claimed_again.is_empty(), "{claimed_again:?}");
        let due = store.outbox_next_due().await.expect("due").expect("a row");
        assert!(
            due > claimed[0].claimed_ms.expect("claimed"),
            "due at its lease's end"
        );
    } else {
        assert_eq!(claimed_again.len(), 1);
        assert_eq!(claimed_again[0].id, claimed[0].id);
    }
}

#[tokio::test]
async fn the_queue_beside_an_open_store() {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    assert!(
        RoutingQueue::open(tmp.path())
            .await
            .expect("open")
            .is_none()
    );
    let store = Store::open(config(&support::Backend::Sqlite, tmp.path()))
        .await
        .expect("open");
    store
        .ingest(
            copy(&src, "1.2.826.0.1.3680043.8.498.79.1", false),
            Origin::Report,
        )
        .await
        .expect("ingest");
    let claimed = store.claim_outbox(1).await.expect("claim");
    store
        .outbox_refused(&claimed[0], "no presentation context")
        .await
        .expect("refused");
    // The store holds the data directory's lock; the queue opens beside it.
    let q = RoutingQueue::open(tmp.path())
        .await
        .expect("open")
        .expect("an outbox");
    let e = q.entries().await.expect("entries");
    assert_eq!(e, store.outbox_entries().await.expect("entries"));
    assert_eq!(e[0].state, "failed");
    assert_eq!(q.retry_failed(Some("PACS")).await.expect("retry"), 1);
    assert_eq!(store.claim_outbox(10).await.expect("claim").len(), 1);
}

#[tokio::test]
async fn an_earlier_versions_queue_is_imported_once() {
    let tmp = tempfile::tempdir().expect("tmp");
    let legacy = tmp.path().join("outbound.sqlite");
    {
        // The schema of outbound.sqlite as earlier versions wrote it (its first release,
        // then the two columns added later).
        let c = rusqlite::Connection::open(&legacy).expect("legacy");
        c.execute_batch(
            "CREATE TABLE outbound (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                study_uid TEXT NOT NULL,
                series_uid TEXT NOT NULL,
                sop_instance_uid TEXT NOT NULL,
                destination TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                next_attempt_ms INTEGER NOT NULL,
                last_error TEXT,
                UNIQUE (sop_instance_uid, destination)
            );
            ALTER TABLE outbound ADD COLUMN state TEXT NOT NULL DEFAULT 'pending';
            ALTER TABLE outbound ADD COLUMN queued_ms INTEGER NOT NULL DEFAULT 0;
            INSERT INTO outbound (study_uid, series_uid, sop_instance_uid, destination,
                attempts, next_attempt_ms, last_error, state, queued_ms)
            VALUES ('1.2', '1.2.3', '1.2.3.4', 'PACS', 2, 5000, 'connection refused',
                    'pending', 1000),
                   ('1.2', '1.2.3', '1.2.3.5', 'PACS', 1, 6000, 'refused with status A700',
                    'failed', 1001);",
        )
        .expect("legacy rows");
    }
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        let e = store.outbox_entries().await.expect("entries");
        assert_eq!(e.len(), 2);
        assert_eq!(
            (
                e[0].sop_instance_uid.as_str(),
                e[0].state.as_str(),
                e[0].attempts,
                e[0].queued_ms,
                e[0].next_attempt_ms,
                e[0].last_error.as_deref(),
                e[0].origin.as_str(),
            ),
            (
                "1.2.3.4",
                "pending",
                2,
                1000,
                5000,
                Some("connection refused"),
                "outbound.sqlite"
            )
        );
        assert_eq!((e[1].state.as_str(), e[1].attempts), ("failed", 1));
        // The pending row is due (its time has passed); the refused one is not.
        let claimed = store.claim_outbox(10).await.expect("claim");
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].sop_instance_uid, "1.2.3.4");
    }
    assert!(!legacy.exists());
    assert!(tmp.path().join("outbound.sqlite.imported").exists());
    let store = Store::open(StoreConfig::new(tmp.path()))
        .await
        .expect("reopen");
    assert_eq!(store.outbox_entries().await.expect("entries").len(), 2);
}

/// An instance whose bytes a power loss took before its sync finished was never
/// acknowledged: the start-up check un-indexes it, and its outbox rows go with it.
#[tokio::test]
async fn an_instance_lost_before_its_sync_is_not_routed() {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    {
        let store = Store::open(config(&support::Backend::Sqlite, tmp.path()))
            .await
            .expect("open");
        let r = store
            .ingest(
                copy(&src, "1.2.826.0.1.3680043.8.498.80.1", false),
                Origin::StowRs,
            )
            .await
            .expect("ingest");
        assert_eq!(r.routed, 1);
    }
    let path: String = {
        let c = rusqlite::Connection::open(tmp.path().join("index.sqlite")).expect("index");
        c.execute("UPDATE instances SET synced = 0", [])
            .expect("unsynced");
        c.query_row("SELECT path FROM instances", [], |r| r.get(0))
            .expect("path")
    };
    let file = tmp.path().join(path);
    let torn = std::fs::read(&file).expect("read")[..1000].to_vec();
    std::fs::write(&file, torn).expect("tear");
    let store = Store::open(config(&support::Backend::Sqlite, tmp.path()))
        .await
        .expect("reopen");
    assert_eq!(store.stats().await.expect("stats").instances, 0);
    assert!(store.outbox_entries().await.expect("entries").is_empty());
}

/// A claim whose outcome was never recorded keeps its row from being claimed (and from
/// counting as due) until its lease ends.
#[tokio::test]
async fn an_unsettled_claim_is_due_at_the_end_of_its_lease() {
    for backend in support::backends() {
        an_unsettled_claim_is_due_at_the_end_of_its_lease_on(&backend).await;
    }
}

async fn an_unsettled_claim_is_due_at_the_end_of_its_lease_on(backend: &support::Backend) {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(config(backend, tmp.path()))
        .await
        .expect("open");
    store
        .ingest(
            copy(&src, "1.2.826.0.1.3680043.8.498.82.1", false),
            Origin::StowRs,
        )
        .await
        .expect("ingest");
    let queued = store.outbox_next_due().await.expect("due").expect("a row");
    let claimed = store.claim_outbox(10).await.expect("claim");
    assert_eq!(claimed.len(), 1);
    let due = store.outbox_next_due().await.expect("due").expect("a row");
    let claim = claimed[0].claimed_ms.expect("claimed");
    assert!(due >= claim + 59_000 && due > queued, "{due} {claim}");
}

#[tokio::test]
async fn two_stores_on_one_postgresql_index_never_claim_the_same_row() {
    let Some(src) = sample_path() else { return };
    for backend in support::backends() {
        let Some((a, b, _dirs)) = support::two_stores(&backend, |cfg| {
            cfg.router = Some(Arc::new(TestRouter));
        })
        .await
        else {
            continue;
        };
        const N: usize = 30;
        for n in 0..N {
            let sop = format!("1.2.826.0.1.3680043.8.498.5200.{n}");
            a.ingest(copy(&src, &sop, false), Origin::Import)
                .await
                .expect("ingest");
        }
        let (from_a, from_b) = support::claim_concurrently(&a, &b, |store: Store| async move {
            let rows = store.claim_outbox(3).await.expect("claim");
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        })
        .await;
        let all: std::collections::HashSet<&i64> = from_a.iter().chain(&from_b).collect();
        // Each CT instance is queued once for PACS (import: not for MIRROR).
        assert_eq!(all.len(), N, "a {from_a:?}, b {from_b:?}");
        assert_eq!(from_a.len() + from_b.len(), N, "a row claimed twice");
    }
}
