//! The consortium patient index: each hospital's patient IDs, qualified by their issuing
//! node, mapped to consortium patient IDs (migration 0025), and the studies of a patient
//! across the IDs it is known by here.

use sqlx::Row;

use crate::ledger::{NewLedgerEntry, insert_entry};
use crate::{Store, StoreError, now_ms};

/// A study of a patient, as a prior for comparison.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PatientStudy {
    /// The study.
    pub study_uid: String,
    /// The patient ID in the study (as issued by `issuer`).
    pub patient_id: String,
    /// The node that issued the patient ID: this node, or the member that shared the study.
    pub issuer: String,
    /// The member's name for a shared study; `None` for this node's own.
    pub shared_from: Option<String>,
    /// The study's organisation here.
    pub org: String,
    /// Study date (DA), possibly empty.
    pub study_date: String,
    /// Study description, if any.
    pub description: Option<String>,
    /// Modalities in the study, backslash-separated.
    pub modalities: String,
    /// Instances stored here.
    pub num_instances: i64,
}

/// A study shared with this node, as its recipient sees the transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GrantProgress {
    /// The grant.
    pub grant: crate::GrantRow,
    /// Instances the origin announced.
    pub expected: Option<i64>,
    /// Instances stored here.
    pub received: i64,
}

/// What a link would change: nothing (already so), a new link, or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The link was recorded.
    Linked,
    /// The patient ID was already linked to this consortium ID.
    Unchanged,
    /// The patient ID is linked to another consortium ID (named): nothing changed.
    LinkedElsewhere(String),
}

impl Store {
    /// The consortium ID of `issuer`'s `patient_id`, if linked.
    pub async fn consortium_patient(
        &self,
        issuer: &str,
        patient_id: &str,
    ) -> Result<Option<String>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            Ok(sqlx::query_scalar(
                d.sql("SELECT consortium_id FROM patient_xref WHERE issuer = ? AND patient_id = ?"),
            )
            .bind(issuer)
            .bind(patient_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// Links `issuer`'s `patient_id` to `consortium_id` (with the ledger entries of the
    /// link in the same transaction), unless it is linked already.
    pub async fn link_patient(
        &self,
        issuer: &str,
        patient_id: &str,
        consortium_id: &str,
        how: &str,
        linked_by: &str,
        entries: &[NewLedgerEntry],
    ) -> Result<LinkOutcome, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let done = sqlx::query(d.sql(
                "INSERT INTO patient_xref (issuer, patient_id, consortium_id, how, linked_by,
                created_ms) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (issuer, patient_id) DO NOTHING",
            ))
            .bind(issuer)
            .bind(patient_id)
            .bind(consortium_id)
            .bind(how)
            .bind(linked_by)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                let existing: String = sqlx::query_scalar(d.sql(
                    "SELECT consortium_id FROM patient_xref WHERE issuer = ? AND patient_id = ?",
                ))
                .bind(issuer)
                .bind(patient_id)
                .fetch_one(&mut *tx)
                .await?;
                return Ok(if existing == consortium_id {
                    LinkOutcome::Unchanged
                } else {
                    LinkOutcome::LinkedElsewhere(existing)
                });
            }
            for e in entries {
                insert_entry((&mut *tx).into(), e).await?;
            }
            tx.commit().await?;
            Ok(LinkOutcome::Linked)
        })
    }

    /// The patient IDs linked to `consortium_id`, as (issuer, patient ID).
    pub async fn consortium_members_of(
        &self,
        consortium_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            Ok(sqlx::query_as(d.sql(
                "SELECT issuer, patient_id FROM patient_xref WHERE consortium_id = ?
             ORDER BY issuer, patient_id",
            ))
            .bind(consortium_id)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Remembers the consortium patient a member's share notice named.
    pub async fn set_grant_patient(
        &self,
        origin: &str,
        share_id: &str,
        consortium_id: &str,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "INSERT INTO grant_patients (origin, share_id, consortium_id) VALUES (?, ?, ?)
             ON CONFLICT (origin, share_id) DO NOTHING",
            ))
            .bind(origin)
            .bind(share_id)
            .bind(consortium_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The consortium patient a member's share notice named, if any.
    pub async fn grant_patient(
        &self,
        origin: &str,
        share_id: &str,
    ) -> Result<Option<String>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            Ok(sqlx::query_scalar(
                d.sql("SELECT consortium_id FROM grant_patients WHERE origin = ? AND share_id = ?"),
            )
            .bind(origin)
            .bind(share_id)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The studies stored here under `patient_id` as issued by `issuer`: for this node
    /// (`issuer == node_id`) its own studies (no active grant), for a member the studies it
    /// shared with this node under an active grant.
    pub async fn patient_studies(
        &self,
        node_id: &str,
        issuer: &str,
        patient_id: &str,
    ) -> Result<Vec<PatientStudy>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql(
                "SELECT st.study_uid, st.patient_id, st.org, st.study_date, st.description,
                    st.modalities, st.num_instances,
                    (SELECT g.origin FROM grants g WHERE g.study_uid = st.study_uid
                       AND g.status = 'active' ORDER BY g.created_ms LIMIT 1) AS origin,
                    (SELECT g.origin_name FROM grants g WHERE g.study_uid = st.study_uid
                       AND g.status = 'active' ORDER BY g.created_ms LIMIT 1) AS origin_name
             FROM studies st WHERE st.patient_id = ?
             ORDER BY st.study_date DESC, st.study_uid",
            ))
            .bind(patient_id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::new();
            for r in rows {
                let origin: Option<String> = r.try_get("origin")?;
                let own = origin.is_none();
                if (issuer == node_id) != own || origin.as_deref().is_some_and(|o| o != issuer) {
                    continue;
                }
                out.push(PatientStudy {
                    study_uid: r.try_get("study_uid")?,
                    patient_id: r.try_get("patient_id")?,
                    issuer: issuer.to_string(),
                    shared_from: r.try_get("origin_name")?,
                    org: r.try_get("org")?,
                    study_date: r.try_get("study_date")?,
                    description: r.try_get("description")?,
                    modalities: r.try_get("modalities")?,
                    num_instances: r.try_get("num_instances")?,
                });
            }
            Ok(out)
        })
    }

    /// The patient ID and the study-level attributes of a stored study.
    pub async fn study_patient(
        &self,
        study_uid: &str,
    ) -> Result<Option<(String, serde_json::Map<String, serde_json::Value>)>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let row =
                sqlx::query(d.sql("SELECT patient_id, attrs FROM studies WHERE study_uid = ?"))
                    .bind(study_uid)
                    .fetch_optional(pool)
                    .await?;
            row.map(|r| {
                Ok((
                    r.try_get("patient_id")?,
                    crate::parse_map(&r.try_get::<String, _>("attrs")?)?,
                ))
            })
            .transpose()
        })
    }

    /// This node's own studies (without an active grant) whose patient's name (alphabetic
    /// group, compared as the index keeps it, case-insensitively) is that of `attrs`: their
    /// patient IDs and study attributes, for a matching rule to check further. Read through
    /// the name's index; empty when `attrs` has no name.
    pub async fn own_studies_named_as(
        &self,
        attrs: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Vec<(String, serde_json::Map<String, serde_json::Value>)>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let Some(name) = crate::query_sql::StudyColumns::of(attrs).pn[0].clone() else {
                return Ok(Vec::new());
            };
            let rows = sqlx::query(d.sql(
                "SELECT st.patient_id, st.attrs FROM studies st
             WHERE st.pn_alphabetic = ?
               AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.study_uid = st.study_uid
                                 AND g.status = 'active')
             LIMIT 1000",
            ))
            .bind(name)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("patient_id")?,
                        crate::parse_map(&r.try_get::<String, _>("attrs")?)?,
                    ))
                })
                .collect()
        })
    }

    /// Records how many instances a member's share notice announced.
    pub async fn set_grant_expected(
        &self,
        origin: &str,
        share_id: &str,
        instances: i64,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(
                d.sql("UPDATE grants SET expected_instances = ? WHERE origin = ? AND share_id = ?"),
            )
            .bind(instances)
            .bind(origin)
            .bind(share_id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The active grant of `study_uid` with what has arrived of it, if it was shared here.
    pub async fn grant_progress(
        &self,
        study_uid: &str,
    ) -> Result<Option<GrantProgress>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let Some(grant) = self.grant_of_study(study_uid).await? else {
                return Ok(None);
            };
            let expected: Option<i64> = sqlx::query_scalar(
                d.sql("SELECT expected_instances FROM grants WHERE origin = ? AND share_id = ?"),
            )
            .bind(&grant.origin)
            .bind(&grant.share_id)
            .fetch_optional(pool)
            .await?
            .flatten();
            let received: Option<i64> =
                sqlx::query_scalar(d.sql("SELECT num_instances FROM studies WHERE study_uid = ?"))
                    .bind(study_uid)
                    .fetch_optional(pool)
                    .await?;
            Ok(Some(GrantProgress {
                grant,
                expected,
                received: received.unwrap_or(0),
            }))
        })
    }
}
