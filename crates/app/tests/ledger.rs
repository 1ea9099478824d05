//! The ledger's use cases on a real index and real files (issue 12): a deletion request
//! (PIPL Art. 47) leaves the tree and its proofs intact but the commitment unopenable; the
//! checkpoint's freshness is reported, flagged past the maximum age and renewed by the
//! sequencer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use lumen_app::audit::AuditQuery;
use lumen_app::ledger::{STUDY_EXPORTED, Sequencer, record};
use lumen_app::{Actor, App, AppError, Settings};
use lumen_ledger::{Event, Hash, LedgerEntry, LogSigner};
use lumen_store::{Store, StoreConfig};

const STUDY: &str = "1.2.826.0.1.3680043.8.498.12.1";

async fn node(dir: &std::path::Path) -> (App, Sequencer) {
    let store = Store::open(StoreConfig::new(dir)).await.expect("open");
    let signer = Arc::new(LogSigner::from_seed("lumen.local/test", [5; 32]).expect("key"));
    let app = App::new(
        store.clone(),
        Settings {
            ledger_vkey: Some(signer.vkey()),
            ledger_max_age: Duration::from_secs(300),
            ..Settings::default()
        },
    );
    let sequencer = Sequencer::new(store, signer).with_max_age(Duration::from_secs(300));
    (app, sequencer)
}

/// Whether the index's event and salt open the published commitment.
fn opens(event_json: &str, salt: Option<[u8; 32]>, commitment: &[u8; 32]) -> bool {
    let Some(salt) = salt else { return false };
    let v: serde_json::Value = serde_json::from_str(event_json).expect("event json");
    let s = |k: &str| v[k].as_str().expect("field").to_string();
    let objects: Vec<String> = v["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o.as_str().expect("uid").to_string())
        .collect();
    let (kind, study, actor, org, time) =
        (s("kind"), s("study_uid"), s("actor"), s("org"), s("time"));
    let event = Event {
        kind: &kind,
        study_uid: &study,
        actor: &actor,
        org: &org,
        time: &time,
        objects: &objects,
    };
    &event.commit(&salt) == commitment
}

fn hash(b64: &str) -> Hash {
    let bytes = BASE64_STANDARD.decode(b64).expect("base64");
    Hash(bytes.try_into().expect("32 bytes"))
}

/// The proof of entry `index` served by the node verifies against its checkpoint.
async fn proof_verifies(app: &App, index: u64) -> LedgerEntry {
    let p = app.ledger_proof(index).await.expect("proof");
    let entry = LedgerEntry::parse(p.entry.as_bytes()).expect("entry");
    let proof: Vec<Hash> = p.inclusion_proof.iter().map(|h| hash(h)).collect();
    lumen_ledger::log::verify_inclusion(
        lumen_ledger::Algorithms::default().leaf_hash(p.entry.as_bytes()),
        index,
        p.tree_size,
        hash(&p.root_hash),
        &proof,
    )
    .expect("the inclusion proof verifies");
    entry
}

#[tokio::test]
async fn forgetting_a_study_keeps_the_tree_but_unlinks_its_entries() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (app, sequencer) = node(tmp.path()).await;
    let cli = Actor::command_line("local");
    // Two events of the study, one of another: all in the published tree.
    for study in [STUDY, STUDY, "1.2.826.0.1.3680043.8.498.12.2"] {
        let e = record(STUDY_EXPORTED, study, &cli, 1_790_000_000_000, &[]).expect("entry");
        app.store().append_ledger_entry(&e).await.expect("append");
    }
    assert_eq!(sequencer.integrate().await.expect("integrate"), Some(3));
    let before = app.ledger_proof(0).await.expect("proof");

    // Before: whoever holds the index can open the published commitment.
    let rows = app.store().study_ledger_entries(STUDY).await.expect("rows");
    let published = proof_verifies(&app, 0).await;
    assert!(opens(&rows[0].event, rows[0].salt, &published.commitment));
    let before_event = rows[0].event.clone();

    // Only the command line may carry out a deletion request.
    let system = Actor::system("local");
    assert!(matches!(
        app.forget_study_ledger(&system, STUDY).await,
        Err(AppError::Forbidden(_))
    ));
    assert_eq!(
        app.forget_study_ledger(&cli, STUDY).await.expect("forget"),
        2
    );
    assert_eq!(
        app.forget_study_ledger(&cli, STUDY).await.expect("again"),
        0
    );

    // After: the same proof still leads to the same signed checkpoint (the tree is
    // intact), but the salt is gone, so the event can no longer be shown to be the entry.
    let after = app.ledger_proof(0).await.expect("proof");
    assert_eq!(after, before);
    let published = proof_verifies(&app, 0).await;
    // The node's own index no longer says which study or event the entries were.
    assert!(
        app.store()
            .study_ledger_entries(STUDY)
            .await
            .expect("rows")
            .is_empty()
    );
    let rows = app.store().ledger_entries(0, 2).await.expect("rows");
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r.salt.is_none() && r.study_uid.is_none() && r.event == "{}")
    );
    assert!(!opens(&before_event, rows[0].salt, &published.commitment));
    assert!(!opens(&before_event, Some([0; 32]), &published.commitment));
    // The other study's entry still opens; the whole log still verifies.
    let other = app.store().ledger_entries(2, 1).await.expect("rows");
    assert!(opens(
        &other[0].event,
        other[0].salt,
        &proof_verifies(&app, 2).await.commitment
    ));
    let signer = LogSigner::from_seed("lumen.local/test", [5; 32]).expect("key");
    lumen_ledger::verify_log(&app.store().ledger_files(), &*signer.verifier()).expect("verifies");

    // The deletion is in the audit trail, as the command line's (the refusal too).
    app.auditor().flush().await;
    let trail = app
        .search_audit(
            &cli,
            &AuditQuery {
                study: Some(STUDY.into()),
                ..AuditQuery::default()
            },
        )
        .await
        .expect("audit");
    let forget: Vec<_> = trail
        .iter()
        .filter(|e| e.action == lumen_app::AuditAction::Forget)
        .collect();
    assert!(
        forget
            .iter()
            .any(|e| e.user == "cli" && e.detail.ends_with(": 2 entries")),
        "{trail:#?}"
    );
}

#[tokio::test]
async fn a_stale_checkpoint_is_flagged_then_renewed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (app, sequencer) = node(tmp.path()).await;
    // No checkpoint yet: nothing to report.
    assert!(matches!(
        app.ledger_status().await,
        Err(AppError::NotFound(_))
    ));
    assert_eq!(sequencer.integrate().await.expect("integrate"), Some(0));
    let status = app.ledger_status().await.expect("status");
    assert!(status.fresh, "{status:?}");
    assert_eq!((status.size, status.max_age_s, status.quorum), (0, 300, 0));
    assert!(status.quorum_reached && status.cosignatures.is_empty());
    assert!(status.age_s.is_some_and(|a| a < 60), "{status:?}");

    // Written an hour ago (no cosignatures): not fresh.
    let checkpoint = tmp.path().join("ledger/checkpoint");
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&checkpoint)
        .expect("checkpoint")
        .set_modified(hour_ago)
        .expect("mtime");
    let status = app.ledger_status().await.expect("status");
    assert!(!status.fresh, "{status:?}");
    assert!(status.age_s.is_some_and(|a| a >= 3600), "{status:?}");

    // With nothing new to integrate, the sequencer re-publishes the same checkpoint.
    let bytes = std::fs::read(&checkpoint).expect("checkpoint");
    assert_eq!(sequencer.integrate().await.expect("integrate"), None);
    assert_eq!(std::fs::read(&checkpoint).expect("checkpoint"), bytes);
    let status = app.ledger_status().await.expect("status");
    assert!(status.fresh, "{status:?}");
}
