//! The append-only and immutability rules are the database's own, on SQLite and on
//! PostgreSQL: an UPDATE or DELETE written directly in SQL, past the store, is refused for
//! audit entries, signed reports and their versions, finding history, ledger entries and
//! patient links.

use lumen_store::Store;

mod support;

/// Each statement must fail with a message containing `why`.
async fn refused(raw: &support::Raw, name: &str, cases: &[(&'static str, &str)]) {
    for (sql, why) in cases {
        match raw.exec(sql).await {
            Ok(n) => panic!("{name}: `{sql}` was allowed ({n} rows)"),
            Err(e) => assert!(e.contains(why), "{name}: `{sql}` failed otherwise: {e}"),
        }
    }
}

#[tokio::test]
async fn audit_and_signed_reports_cannot_be_changed_in_sql() {
    for backend in support::backends() {
        let name = backend.name();
        let tmp = tempfile::tempdir().expect("tempdir");
        let cfg = backend.config(tmp.path());
        let _store = Store::open(cfg.clone()).await.expect("open");
        let raw = support::Raw::open(&cfg).await;
        // Rows as the store writes them (recent: within the audit's six months).
        for sql in [
            "INSERT INTO audit (time, time_ms, \"user\", role, org, action, outcome, channel, detail)
             VALUES ('2026-01-01T00:00:00Z', 9000000000000, 'u', 'radiologist', 'local', 'view',
                     'success', 'web', '{}')",
            "INSERT INTO reports (study_uid, status, lang, sections, updated_at)
             VALUES ('1.2.3', 'draft', 'en', '{}', 1)",
            "INSERT INTO report_versions (study_uid, version, kind, lang, content, signer_id,
               signer, signed_at, pdf_sop_uid, sr_sop_uid)
             VALUES ('1.2.3', 1, 'report', 'en', '{}', '1', 'Dr', 2, '1.2.3.4', '1.2.3.5')",
            "UPDATE reports SET status = 'signed' WHERE study_uid = '1.2.3'",
            "INSERT INTO finding_history (study_uid, finding_id, status, current, actor, at)
             VALUES ('1.2.3', 'ai-1', 'accepted', '{}', 'u', 1)",
            "INSERT INTO patient_links (id, token_hash, study_uid, org, created_by, created_at,
               expires_at) VALUES ('l1', 'h1', '1.2.3', 'local', 'u', 1, 100)",
        ] {
            raw.exec(sql)
                .await
                .unwrap_or_else(|e| panic!("{name}: {sql}: {e}"));
        }
        refused(
            &raw,
            name,
            &[
                ("UPDATE audit SET detail = 'x'", "append-only"),
                ("DELETE FROM audit", "six months"),
                (
                    "UPDATE reports SET sections = '{\"x\":1}'",
                    "report is signed",
                ),
                ("UPDATE reports SET status = 'draft'", "report is signed"),
                ("DELETE FROM reports", "report is signed"),
                ("UPDATE report_versions SET content = 'x'", "immutable"),
                ("DELETE FROM report_versions", "immutable"),
                ("UPDATE finding_history SET note = 'x'", "append-only"),
                ("DELETE FROM finding_history", "append-only"),
                (
                    "INSERT INTO finding_reviews (study_uid, finding_id, origin, status, current)
                     VALUES ('1.2.3', 'dr-1', 'doctor', 'added', '{}')",
                    "report is signed",
                ),
                ("DELETE FROM patient_links", "revoke them instead"),
                (
                    "UPDATE patient_links SET expires_at = 1000",
                    "expire earlier",
                ),
            ],
        )
        .await;
        // What the rules allow still works: a link's revocation, a report's working fields.
        assert_eq!(
            raw.exec("UPDATE patient_links SET revoked_at = 50, revoked_by = 'u'")
                .await,
            Ok(1),
            "{name}"
        );
        assert_eq!(
            raw.exec("UPDATE reports SET pending = NULL").await,
            Ok(1),
            "{name}"
        );
    }
}
