//! Review and report state: the AI original survives corrections, every edit leaves history,
//! a signed report is final (also against direct SQL), signing retries reuse the pending
//! signature, and the worklist joins studies with AI and report status.

use std::path::Path;

use bytes::Bytes;
use lumen_store::{FindingAction, Origin, ReportStatus, ReviewError, Store, WorklistFilter};
use serde_json::json;

mod support;

const STUDY: &str = "1.2.3.4";

fn act<'a>(
    id: Option<&'a str>,
    ai: Option<&'a serde_json::Value>,
    status: &'a str,
    current: &'a serde_json::Value,
) -> FindingAction<'a> {
    FindingAction {
        finding_id: id,
        ai,
        status,
        current,
        note: None,
        actor: "Dr Test",
    }
}

#[tokio::test]
async fn ai_original_is_kept_and_every_edit_is_history() {
    for backend in support::backends() {
        ai_original_is_kept_and_every_edit_is_history_on(&backend).await;
    }
}

async fn ai_original_is_kept_and_every_edit_is_history_on(backend: &support::Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = backend.config(tmp.path());
    let store = Store::open(cfg.clone()).await.unwrap();
    let ai = json!({ "type": "solid", "long_axis_mm": 10.0, "lung_rads": "4A" });
    let r = store
        .review_finding(STUDY, act(Some("ai-1"), Some(&ai), "accepted", &ai))
        .await
        .unwrap();
    assert_eq!(r.status, "accepted");
    assert_eq!(r.ai.as_ref(), Some(&ai));
    let corrected = json!({ "type": "part-solid", "long_axis_mm": 12.5, "lung_rads": "4A" });
    let other_ai = json!({ "type": "calcified" });
    let r = store
        .review_finding(
            STUDY,
            act(Some("ai-1"), Some(&other_ai), "corrected", &corrected),
        )
        .await
        .unwrap();
    assert_eq!(r.status, "corrected");
    assert_eq!(r.current, corrected);
    assert_eq!(
        r.ai.as_ref(),
        Some(&ai),
        "the AI original is never replaced"
    );
    let h = store.finding_history(STUDY, "ai-1").await.unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!((h[0].status.as_str(), &h[0].current), ("accepted", &ai));
    assert_eq!(h[1].current, corrected);

    // Doctor's findings are numbered; an unknown one is refused.
    let added = json!({ "type": "ground-glass", "long_axis_mm": 7.0 });
    let d1 = store
        .review_finding(STUDY, act(None, None, "added", &added))
        .await
        .unwrap();
    let d2 = store
        .review_finding(STUDY, act(None, None, "added", &added))
        .await
        .unwrap();
    assert_eq!(
        (d1.finding_id.as_str(), d2.finding_id.as_str()),
        ("dr-1", "dr-2")
    );
    assert_eq!(d1.origin, "doctor");
    assert!(matches!(
        store
            .review_finding(STUDY, act(Some("dr-9"), None, "corrected", &added))
            .await,
        Err(ReviewError::NoFinding(_))
    ));
    assert_eq!(store.finding_reviews(STUDY).await.unwrap().len(), 3);
    assert_eq!(
        store.report(STUDY).await.unwrap().status,
        ReportStatus::Draft
    );

    // The database itself refuses to change the AI original or rewrite history.
    let db = support::Raw::open(&cfg).await;
    for sql in [
        "UPDATE finding_reviews SET ai = '{}' WHERE finding_id = 'ai-1'",
        "UPDATE finding_history SET status = 'rejected'",
        "DELETE FROM finding_history",
        "DELETE FROM finding_reviews",
    ] {
        assert!(db.exec(sql).await.is_err(), "{sql}");
    }
    db.close().await;
}

#[tokio::test]
async fn a_signed_report_is_final() {
    for backend in support::backends() {
        a_signed_report_is_final_on(&backend).await;
    }
}

async fn a_signed_report_is_final_on(backend: &support::Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = backend.config(tmp.path());
    let store = Store::open(cfg.clone()).await.unwrap();
    assert_eq!(
        store.report(STUDY).await.unwrap().status,
        ReportStatus::Unread
    );
    let sections =
        json!({ "findings": "A nodule.", "impression": "4A", "recommendation": "3 months" });
    store
        .save_report_draft(STUDY, "en", &sections, "Dr Test")
        .await
        .unwrap();
    let rep = store.report(STUDY).await.unwrap();
    assert_eq!(rep.status, ReportStatus::Draft);
    assert_eq!(rep.sections.as_ref(), Some(&sections));

    let p = store
        .begin_signature(STUDY, "report", "en", &sections, "local", "Dr Test")
        .await
        .unwrap();
    assert_eq!(p.version, 1);
    // A retry of the same signature (after a crash) gets the same version and time.
    let again = store
        .begin_signature(STUDY, "report", "en", &sections, "local", "Dr Test")
        .await
        .unwrap();
    assert_eq!(again, p);
    assert!(matches!(
        store
            .begin_signature(
                STUDY,
                "addendum",
                "en",
                &json!({"text": "x"}),
                "local",
                "Dr Test"
            )
            .await,
        Err(ReviewError::NotSigned)
    ));
    store
        .commit_signature(STUDY, &p, "1.2.3.4.100", "1.2.3.4.101", Some(&entry(1)))
        .await
        .unwrap();
    // A retry of the commit records nothing more (not even a second ledger entry).
    store
        .commit_signature(STUDY, &p, "1.2.3.4.100", "1.2.3.4.101", Some(&entry(9)))
        .await
        .unwrap();
    let rep = store.report(STUDY).await.unwrap();
    assert_eq!(rep.status, ReportStatus::Signed);
    assert_eq!(rep.versions.len(), 1);
    assert_eq!(rep.versions[0].signer, "Dr Test");
    assert_eq!(rep.versions[0].signed_at, p.signed_at);

    let other = json!({ "findings": "changed", "impression": "", "recommendation": "" });
    assert!(matches!(
        store
            .save_report_draft(STUDY, "en", &other, "Dr Test")
            .await,
        Err(ReviewError::Signed)
    ));
    assert!(matches!(
        store
            .begin_signature(STUDY, "report", "en", &other, "local", "Dr Test")
            .await,
        Err(ReviewError::Signed)
    ));
    let m = json!({ "type": "solid" });
    assert!(matches!(
        store
            .review_finding(STUDY, act(Some("ai-1"), Some(&m), "accepted", &m))
            .await,
        Err(ReviewError::Signed)
    ));

    // Addenda get their own version and signature.
    let add = json!({ "text": "Addendum: compared with outside CT." });
    let pa = store
        .begin_signature(STUDY, "addendum", "en", &add, "local", "Dr Test")
        .await
        .unwrap();
    assert_eq!(pa.version, 2);
    store
        .commit_signature(STUDY, &pa, "1.2.3.4.200", "1.2.3.4.201", Some(&entry(2)))
        .await
        .unwrap();
    let rep = store.report(STUDY).await.unwrap();
    assert_eq!(rep.versions.len(), 2);
    assert_eq!(rep.versions[1].content, add);
    assert_eq!(
        rep.sections.as_ref(),
        Some(&sections),
        "the signed text stays"
    );

    // Direct SQL cannot change or remove what was signed.
    let db = support::Raw::open(&cfg).await;
    for sql in [
        "UPDATE report_versions SET content = '{}'",
        "UPDATE report_versions SET signer = 'someone else'",
        "DELETE FROM report_versions",
        "UPDATE reports SET sections = '{}'",
        "UPDATE reports SET status = 'draft'",
        "DELETE FROM reports",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_entries SET commitment = zeroblob(32)",
        "UPDATE ledger_entries SET seq = seq + 10",
        "UPDATE ledger_entries SET salt = zeroblob(32)",
        "UPDATE ledger_entries SET study_uid = '1.2.3'",
        "UPDATE ledger_entries SET event = '{\"actor\":\"x\"}'",
    ] {
        assert!(db.exec(sql).await.is_err(), "{sql}");
    }
    db.close().await;
    assert_eq!(store.report(STUDY).await.unwrap().versions.len(), 2);

    // One ledger entry per signature, indexed 0, 1 in the tree.
    let entries = store.study_ledger_entries(STUDY).await.unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.seq, e.commitment[0]))
            .collect::<Vec<_>>(),
        vec![(0, 1), (1, 2)]
    );
    assert_eq!(store.ledger_entries(1, 10).await.unwrap().len(), 1);
    // A deletion request (PIPL Art. 47) is the one change allowed: the salts, the study and
    // the events go; the tree's entries stay.
    assert_eq!(store.forget_ledger_salts(STUDY).await.unwrap(), 2);
    assert!(store.study_ledger_entries(STUDY).await.unwrap().is_empty());
    let entries = store.ledger_entries(0, 10).await.unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e.salt.is_none() && e.study_uid.is_none() && e.event == "{}")
    );
    assert_eq!(entries[0].commitment, [1; 32]);
    // Nothing forgotten can be put back.
    let db = support::Raw::open(&cfg).await;
    for sql in [
        "UPDATE ledger_entries SET study_uid = '1.2.3'",
        "UPDATE ledger_entries SET salt = zeroblob(32)",
        "UPDATE ledger_entries SET event = 'x'",
    ] {
        assert!(db.exec(sql).await.is_err(), "{sql}");
    }
    db.close().await;
}

fn entry(n: u8) -> lumen_store::NewLedgerEntry {
    lumen_store::NewLedgerEntry {
        kind: "report.signed".into(),
        time: 1_790_000_000,
        commitment: [n; 32],
        salt: [n; 32],
        study_uid: Some(STUDY.into()),
        event: "{}".into(),
    }
}

#[tokio::test]
async fn worklist_joins_ai_and_report_status() {
    for backend in support::backends() {
        worklist_joins_ai_and_report_status_on(&backend).await;
    }
}

async fn worklist_joins_ai_and_report_status_on(backend: &support::Backend) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/dicom-samples/pydicom-3.0.2-test-files/CT_small.dcm");
    if !p.exists() {
        assert!(
            std::env::var("LUMEN_REQUIRE_DATA").as_deref() != Ok("1"),
            "../shared/data missing"
        );
        eprintln!("SKIP: ../shared/data not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = backend.config(tmp.path());
    let store = Store::open(cfg.clone()).await.unwrap();
    let ing = store
        .ingest(Bytes::from(std::fs::read(p).unwrap()), Origin::Import)
        .await
        .unwrap();
    let all = WorklistFilter {
        limit: 50,
        ..Default::default()
    };
    let wl = store.worklist(&all).await.unwrap();
    assert_eq!(wl.total, 1);
    let row = &wl.items[0];
    assert_eq!(row.study_uid, ing.study_uid);
    assert_eq!(row.modalities, ["CT"]);
    assert_eq!(row.ai_status, "queued", "a CT series waits for the AI");
    assert_eq!(row.report_status, "unread");
    assert_eq!(row.lung_rads, None);

    let count = |f: WorklistFilter| {
        let store = store.clone();
        async move { store.worklist(&f).await.unwrap().total }
    };
    let with = |f: fn(&mut WorklistFilter)| {
        let mut w = all.clone();
        f(&mut w);
        w
    };
    // CT_small's patient name is "CompressedSamples^CT1", its ID "1CT1".
    assert_eq!(
        count(with(|w| w.q = Some("compressedsamples".into()))).await,
        1
    );
    assert_eq!(count(with(|w| w.q = Some("1ct1".into()))).await, 1);
    assert_eq!(count(with(|w| w.q = Some("nobody".into()))).await, 0);
    assert_eq!(count(with(|w| w.modality = Some("ct".into()))).await, 1);
    assert_eq!(count(with(|w| w.modality = Some("MR".into()))).await, 0);
    assert_eq!(
        count(with(|w| w.date_from = Some("99990101".into()))).await,
        0
    );
    assert_eq!(count(with(|w| w.ai = Some("queued".into()))).await, 1);
    assert_eq!(count(with(|w| w.ai = Some("done".into()))).await, 0);
    assert_eq!(count(with(|w| w.report = Some("draft".into()))).await, 0);

    let m = json!({ "type": "solid", "lung_rads": "4A" });
    store
        .review_finding(&ing.study_uid, act(Some("ai-1"), Some(&m), "accepted", &m))
        .await
        .unwrap();
    let wl = store
        .worklist(&with(|w| w.report = Some("draft".into())))
        .await
        .unwrap();
    assert_eq!(wl.total, 1);
    assert_eq!(wl.items[0].lung_rads.as_deref(), Some("4A"));
    assert_eq!(
        store
            .worklist(&with(|w| w.offset = 1))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}
