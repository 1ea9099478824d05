//! Patient links (云胶片, migration 0020): short-lived links to one study, opened without an
//! account. The index keeps each link's token as its SHA-256 only; creating and revoking a
//! link write its ledger entry in the same transaction as the link's row.

use crate::ledger::{NewLedgerEntry, insert_entry};
use crate::{Store, StoreError};

/// A link to create, as the application layer decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatientLink {
    /// Its random, non-secret name.
    pub id: String,
    /// SHA-256 (hex) of the token.
    pub token_hash: String,
    /// The study it opens.
    pub study_uid: String,
    /// The study's organisation.
    pub org: String,
    /// Who created it (user id).
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_at: i64,
    /// When it stops working, ms since the epoch.
    pub expires_at: i64,
}

/// A link as the index keeps it (without its token, which is nowhere).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientLinkRow {
    /// Its name.
    pub id: String,
    /// The study it opens.
    pub study_uid: String,
    /// The study's organisation.
    pub org: String,
    /// Who created it.
    pub created_by: String,
    /// When, ms since the epoch.
    pub created_at: i64,
    /// When it stops working, ms since the epoch.
    pub expires_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

const COLS: &str = "id, study_uid, org, created_by, created_at, expires_at, revoked_at, revoked_by";

fn link_row(r: &impl crate::db::IndexRow) -> Result<PatientLinkRow, StoreError> {
    Ok(PatientLinkRow {
        id: r.col("id")?,
        study_uid: r.col("study_uid")?,
        org: r.col("org")?,
        created_by: r.col("created_by")?,
        created_at: r.col("created_at")?,
        expires_at: r.col("expires_at")?,
        revoked_at: r.col("revoked_at")?,
        revoked_by: r.col("revoked_by")?,
    })
}

impl Store {
    /// Records a new link and its ledger entry in one transaction; returns the entry's
    /// index in the ledger.
    pub async fn create_patient_link(
        &self,
        link: &NewPatientLink,
        entry: &NewLedgerEntry,
    ) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            sqlx::query(d.sql(
                "INSERT INTO patient_links (id, token_hash, study_uid, org, created_by, created_at,
               expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&link.id)
            .bind(&link.token_hash)
            .bind(&link.study_uid)
            .bind(&link.org)
            .bind(&link.created_by)
            .bind(link.created_at)
            .bind(link.expires_at)
            .execute(&mut *tx)
            .await?;
            let seq = insert_entry((&mut *tx).into(), entry).await?;
            tx.commit().await?;
            Ok(seq)
        })
    }

    /// The link whose token has this SHA-256 (hex), revoked and expired ones included.
    pub async fn patient_link_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<PatientLinkRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let sql = format!("SELECT {COLS} FROM patient_links WHERE token_hash = ?");
            let row = sqlx::query(d.sql(sql))
                .bind(token_hash)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(link_row).transpose()
        })
    }

    /// The link named `id`.
    pub async fn patient_link(&self, id: &str) -> Result<Option<PatientLinkRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let sql = format!("SELECT {COLS} FROM patient_links WHERE id = ?");
            let row = sqlx::query(d.sql(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(link_row).transpose()
        })
    }

    /// A study's links, newest first.
    pub async fn patient_links(&self, study_uid: &str) -> Result<Vec<PatientLinkRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let sql = format!(
                "SELECT {COLS} FROM patient_links WHERE study_uid = ? ORDER BY created_at DESC, id"
            );
            let rows = sqlx::query(d.sql(sql))
                .bind(study_uid)
                .fetch_all(pool)
                .await?;
            rows.iter().map(link_row).collect()
        })
    }

    /// Revokes a link that is not revoked yet, with its ledger entry, in one transaction;
    /// `Ok(None)` when it was already revoked (or does not exist), else the entry's index.
    pub async fn revoke_patient_link(
        &self,
        id: &str,
        by: &str,
        at: i64,
        entry: &NewLedgerEntry,
    ) -> Result<Option<u64>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let done = sqlx::query(d.sql(
                "UPDATE patient_links SET revoked_at = ?, revoked_by = ?
             WHERE id = ? AND revoked_at IS NULL",
            ))
            .bind(at)
            .bind(by)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            let seq = insert_entry((&mut *tx).into(), entry).await?;
            tx.commit().await?;
            Ok(Some(seq))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreConfig;

    fn entry(kind: &str) -> NewLedgerEntry {
        NewLedgerEntry {
            kind: kind.into(),
            time: 1_790_000_000,
            commitment: [1; 32],
            salt: [2; 32],
            study_uid: Some("1.2.3".into()),
            event: "{}".into(),
        }
    }

    #[tokio::test]
    async fn a_link_is_kept_revoked_once_and_never_extended() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        let link = NewPatientLink {
            id: "link-one".into(),
            token_hash: "ab".repeat(32),
            study_uid: "1.2.3".into(),
            org: "local".into(),
            created_by: "dr".into(),
            created_at: 1_000,
            expires_at: 10_000,
        };
        assert_eq!(
            store
                .create_patient_link(&link, &entry("patient-link.created"))
                .await
                .expect("create"),
            0
        );
        // The same token twice is refused, and the failed transaction leaves no entry.
        let twice = NewPatientLink {
            id: "link-two".into(),
            ..link.clone()
        };
        assert!(
            store
                .create_patient_link(&twice, &entry("patient-link.created"))
                .await
                .is_err()
        );
        assert_eq!(store.ledger_entries(0, 10).await.expect("rows").len(), 1);
        let found = store
            .patient_link_by_token_hash(&"ab".repeat(32))
            .await
            .expect("find")
            .expect("the link");
        assert_eq!((found.id.as_str(), found.revoked_at), ("link-one", None));
        assert_eq!(store.patient_links("1.2.3").await.expect("list").len(), 1);

        // Revoked once, with its entry; a second revocation changes nothing.
        let revoked = entry("patient-link.revoked");
        let revoke = |at| store.revoke_patient_link("link-one", "tech", at, &revoked);
        assert_eq!(revoke(5_000).await.expect("revoke"), Some(1));
        assert_eq!(revoke(6_000).await.expect("again"), None);
        let row = store
            .patient_link("link-one")
            .await
            .expect("get")
            .expect("row");
        assert_eq!(
            (row.revoked_at, row.revoked_by.as_deref()),
            (Some(5_000), Some("tech"))
        );
        assert_eq!(store.ledger_entries(0, 10).await.expect("rows").len(), 2);

        // The index itself refuses deleting a link, un-revoking it, extending its life or
        // pointing it at another study; shortening its life is allowed.
        for sql in [
            "DELETE FROM patient_links",
            "UPDATE patient_links SET revoked_at = NULL, revoked_by = NULL",
            "UPDATE patient_links SET expires_at = 20000",
            "UPDATE patient_links SET study_uid = '9.9.9'",
            "UPDATE patient_links SET token_hash = 'x'",
        ] {
            assert!(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(store.sqlite_writer().expect("sqlite index"))
                    .await
                    .is_err(),
                "{sql}"
            );
        }
        sqlx::query("UPDATE patient_links SET expires_at = 2000")
            .execute(store.sqlite_writer().expect("sqlite index"))
            .await
            .expect("shortened");
        assert!(
            sqlx::query("UPDATE patient_links SET expires_at = 1000")
                .execute(store.sqlite_writer().expect("sqlite index"))
                .await
                .is_err(),
            "a link must expire after it was created"
        );
    }
}
