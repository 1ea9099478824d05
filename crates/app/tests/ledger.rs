//! The ledger's use cases on a real index and real files (issue 12): the checkpoint's
//! freshness is reported, flagged past the maximum age and renewed by the sequencer.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use lumen_app::ledger::Sequencer;
use lumen_app::{App, AppError, Settings};
use lumen_ledger::LogSigner;
use lumen_store::{Store, StoreConfig};

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
