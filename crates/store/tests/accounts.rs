//! Accounts, sessions and the audit trail in the index: the rules the database itself keeps.

use lumen_model::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};

mod support;
use lumen_store::{AuditFilter, NewUser, Store};

fn event(user: &str, study: Option<&str>, time: &str) -> AuditEvent {
    AuditEvent {
        seq: 0,
        time: time.into(),
        user: user.into(),
        role: "radiologist".into(),
        org: "local".into(),
        action: AuditAction::View,
        outcome: AuditOutcome::Success,
        channel: AuditChannel::Http,
        source: Some("192.0.2.7".into()),
        study_uid: study.map(str::to_string),
        series_uid: None,
        patient_id: Some("P1".into()),
        patient_name: Some("WANG^FANG".into()),
        detail: "open review".into(),
    }
}

#[tokio::test]
async fn audit_is_append_only_and_searchable() {
    for backend in support::backends() {
        audit_is_append_only_and_searchable_on(&backend).await;
    }
}

async fn audit_is_append_only_and_searchable_on(backend: &support::Backend) {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(backend.config(tmp.path())).await.expect("open");
    store
        .append_audit(&[
            event("a", Some("1.2.3"), "2026-12-01T08:00:00.000Z"),
            event("b", Some("1.2.4"), "2026-12-02T08:00:00.000Z"),
            event("a", None, "2026-12-02T09:00:00.000Z"),
        ])
        .await
        .expect("append");
    let all = store
        .audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2, 1]);
    assert_eq!(all[2].patient_name.as_deref(), Some("WANG^FANG"));
    let by_study = store
        .audit(&AuditFilter {
            study_uid: Some("1.2.3".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(by_study.len(), 1);
    let day = store
        .audit(&AuditFilter {
            from_ms: Some(1_764_633_600_000), // 2025-12-02: everything
            to_ms: Some(1_796_169_600_000),   // 2026-12-02T00:00Z: the first only
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(day.len(), 1, "{day:?}");
    let after = store
        .audit(&AuditFilter {
            after_seq: Some(1),
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("search");
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
    // The retention sweep removes nothing younger than six months, and the index refuses
    // to: no entry changes.
    assert_eq!(store.sweep_audit(183).await.expect("sweep"), 0);
    assert!(
        store.sweep_audit(1).await.is_err(),
        "the trigger refuses early deletion"
    );
    store.set_audit_forwarded(2).await.expect("cursor");
    store.set_audit_forwarded(1).await.expect("cursor");
    assert_eq!(
        store.audit_forwarded().await.expect("cursor"),
        2,
        "never moves back"
    );
}

#[tokio::test]
async fn sessions_end_with_revocation_password_change_and_role_change() {
    for backend in support::backends() {
        sessions_end_with_revocation_password_change_and_role_change_on(&backend).await;
    }
}

async fn sessions_end_with_revocation_password_change_and_role_change_on(
    backend: &support::Backend,
) {
    let tmp = tempfile::tempdir().expect("tmp");
    let store = Store::open(backend.config(tmp.path())).await.expect("open");
    let id = store
        .create_user(&NewUser {
            username: "dr-li".into(),
            display_name: "Dr Li".into(),
            role: "radiologist".into(),
            org: "local".into(),
            password_hash: "$argon2id$x".into(),
            must_change_password: false,
        })
        .await
        .expect("create")
        .expect("new");
    let dup = store
        .create_user(&NewUser {
            username: "dr-li".into(),
            display_name: "x".into(),
            role: "admin".into(),
            org: "local".into(),
            password_hash: "h".into(),
            must_change_password: false,
        })
        .await
        .expect("create");
    assert!(dup.is_none(), "a taken name is not reused");
    let far = i64::MAX / 2;
    for t in ["t1", "t2", "t3"] {
        store
            .create_session(t, id, "csrf", far)
            .await
            .expect("session");
    }
    assert!(store.session("t1").await.expect("lookup").is_some());
    store.revoke_session("t1").await.expect("revoke");
    assert!(store.session("t1").await.expect("lookup").is_none());
    // A password change keeps the session that made it, ends the others.
    store
        .set_password(id, "$argon2id$y", false, Some("t2"))
        .await
        .expect("password");
    assert!(store.session("t2").await.expect("lookup").is_some());
    assert!(store.session("t3").await.expect("lookup").is_none());
    // A role change ends every session.
    assert!(
        store
            .update_user("dr-li", Some("referrer"), None, None, None)
            .await
            .expect("update")
    );
    assert!(store.session("t2").await.expect("lookup").is_none());
    assert_eq!(
        store
            .user_by_name("dr-li")
            .await
            .expect("user")
            .expect("exists")
            .role,
        "referrer"
    );
    // Expired sessions are not live.
    store
        .create_session("t4", id, "csrf", 1)
        .await
        .expect("session");
    assert!(store.session("t4").await.expect("lookup").is_none());
}
