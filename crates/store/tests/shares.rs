//! Sharing in the index (migration 0014): a share and its ledger entries in one
//! transaction, the share outbox (notice before instances, outcomes, revocation dropping
//! what was not sent), grants, and the purge of a revoked grant's study (index rows and
//! files; this node's own report rows stay).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use dicom_dictionary_std::tags;
use lumen_store::{GrantRow, NewLedgerEntry, Origin, Scope, ShareRow, Store, share_kind};

mod support;

use support::sample_path;

/// The sample under another SOP Instance UID.
fn copy(src: &Path, sop: &str) -> Bytes {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    let mut obj = dicom_object::open_file(src).expect("sample");
    obj.put(DataElement::new(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop),
    ));
    obj.update_meta(|m| m.media_storage_sop_instance_uid = sop.into());
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes).expect("encode");
    Bytes::from(bytes)
}

const STUDY: &str = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322";

fn entry(kind: &str) -> NewLedgerEntry {
    NewLedgerEntry {
        kind: kind.into(),
        time: 1,
        commitment: [7; 32],
        salt: [9; 32],
        study_uid: Some(STUDY.into()),
        event: "{}".into(),
    }
}

fn share(id: &str) -> ShareRow {
    ShareRow {
        id: id.into(),
        study_uid: STUDY.into(),
        to: "hospital-b".into(),
        purpose: "second opinion".into(),
        consent: "consent".into(),
        status: "active".into(),
        created_by: "dr".into(),
        org: "local".into(),
        created_ms: 1,
        revoked_ms: None,
        reported_by: None,
        reported_ms: None,
    }
}

async fn with_two_instances(backend: &support::Backend, dir: &Path, src: &Path) -> Store {
    let store = Store::open(backend.config(dir)).await.expect("open");
    for sop in ["1.2.3.1", "1.2.3.2"] {
        store
            .ingest(copy(src, sop), Origin::StowRs)
            .await
            .expect("ingest");
    }
    store
}

#[tokio::test]
async fn a_share_queues_its_notice_first_and_revocation_drops_what_was_not_sent() {
    for backend in support::backends() {
        a_share_queues_its_notice_first_and_revocation_drops_what_was_not_sent_on(&backend).await;
    }
}

async fn a_share_queues_its_notice_first_and_revocation_drops_what_was_not_sent_on(
    backend: &support::Backend,
) {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let store = with_two_instances(backend, tmp.path(), &src).await;
    let queued = vec![("1.2.3.1".to_string(), 1), ("1.2.3.2".to_string(), 2)];
    let seqs = store
        .create_share(
            &share("s1"),
            &queued,
            &[entry("share.created"), entry("share.consent")],
        )
        .await
        .expect("share");
    assert_eq!(seqs, [0, 1]);
    assert_eq!(store.ledger_entries(0, 10).await.expect("entries").len(), 2);

    // Only the notice is due until the member accepted it.
    let due = store.claim_share_outbox(10).await.expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, share_kind::NOTICE);
    store
        .share_outbox_retry(&due[0], "down", Duration::ZERO)
        .await
        .expect("retry");
    let due = store.claim_share_outbox(10).await.expect("claim");
    assert_eq!((due.len(), due[0].attempts), (1, 1));
    store.share_outbox_done(&due[0]).await.expect("done");
    // Then the instances, CT (priority 1) first.
    let due = store.claim_share_outbox(10).await.expect("claim");
    let sops: Vec<&str> = due.iter().map(|e| e.sop_uid.as_str()).collect();
    assert_eq!(sops, ["1.2.3.1", "1.2.3.2"]);
    store.share_outbox_done(&due[0]).await.expect("done");
    store
        .share_outbox_retry(&due[1], "down", Duration::from_secs(60))
        .await
        .expect("retry");

    // Revoked: the instance still waiting goes, the revocation is queued, once only.
    assert!(
        store
            .revoke_share("s1", "dr", &[entry("share.revoked")])
            .await
            .expect("revoke")
    );
    assert!(
        !store
            .revoke_share("s1", "dr", &[entry("share.revoked")])
            .await
            .expect("revoke again")
    );
    let due = store.claim_share_outbox(10).await.expect("claim");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, share_kind::REVOKE);
    assert_eq!(
        store.share("s1").await.expect("share").expect("row").status,
        "revoked"
    );
    assert_eq!(store.ledger_entries(0, 10).await.expect("entries").len(), 3);
}

#[tokio::test]
async fn a_revoked_grant_purges_the_study_rows_and_files() {
    for backend in support::backends() {
        a_revoked_grant_purges_the_study_rows_and_files_on(&backend).await;
    }
}

async fn a_revoked_grant_purges_the_study_rows_and_files_on(backend: &support::Backend) {
    let Some(src) = sample_path() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let store = with_two_instances(backend, tmp.path(), &src).await;
    let files = |s: &Store| {
        let s = s.clone();
        async move {
            s.instances(&Scope {
                study_uid: Some(STUDY.into()),
                ..Default::default()
            })
            .await
            .expect("instances")
        }
    };
    let paths: Vec<PathBuf> = {
        let inst = files(&store).await;
        assert_eq!(inst.len(), 2);
        // The stored objects are under objects/.
        walk(&tmp.path().join("objects"))
    };
    assert_eq!(paths.len(), 2);
    let g = GrantRow {
        origin: "clinic-a".into(),
        share_id: "s1".into(),
        study_uid: STUDY.into(),
        origin_name: "Clinic A".into(),
        purpose: "second opinion".into(),
        consent: "consent".into(),
        status: "active".into(),
        created_ms: 1,
        checked_ms: 1,
    };
    assert!(
        store
            .record_grant(&g, &[entry("share.granted")])
            .await
            .expect("grant")
    );
    // A notice received again changes nothing.
    assert!(
        !store
            .record_grant(&g, &[entry("share.granted")])
            .await
            .expect("again")
    );
    assert!(store.grant_of_study(STUDY).await.expect("grant").is_some());
    // The study is here: not "incoming". A grant whose study has not arrived is.
    assert!(store.incoming_grants().await.expect("incoming").is_empty());
    let early = GrantRow {
        share_id: "s2".into(),
        study_uid: "1.2.3.4.5".into(),
        ..g.clone()
    };
    assert!(store.record_grant(&early, &[]).await.expect("grant"));
    let incoming = store.incoming_grants().await.expect("incoming");
    assert_eq!(incoming.len(), 1);
    assert_eq!(incoming[0].study_uid, "1.2.3.4.5");
    store
        .queue_report_objects(&g, &["1.2.3.9".to_string()])
        .await
        .expect("queue");

    let (was, purged) = store
        .revoke_grant("clinic-a", "s1", &[entry("share.revoked")])
        .await
        .expect("revoke");
    assert_eq!((was, purged), (true, 2));
    assert!(files(&store).await.is_empty());
    assert!(store.study_access(STUDY).await.expect("access").is_none());
    assert!(walk(&tmp.path().join("objects")).is_empty());
    assert!(store.grant_of_study(STUDY).await.expect("grant").is_none());
    assert!(store.study_revoked_here(STUDY).await.expect("revoked"));
    // Nothing more goes back to the origin for it.
    assert!(
        store
            .claim_share_outbox(10)
            .await
            .expect("claim")
            .is_empty()
    );
    // Once only.
    let again = store
        .revoke_grant("clinic-a", "s1", &[entry("share.revoked")])
        .await
        .expect("again");
    assert_eq!(again, (false, 0));
    assert_eq!(store.ledger_entries(0, 10).await.expect("entries").len(), 2);
    let stats = store.stats().await.expect("stats");
    assert_eq!((stats.studies, stats.instances), (0, 0));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}
