//! Accounts, organisations, sessions and the audit trail, as rows of the index (migration
//! 0009). Passwords arrive here already hashed and tokens as their SHA-256: this module
//! stores what the application layer decided, it decides nothing.

use lumen_model::{AuditAction, AuditChannel, AuditEvent, AuditOutcome};
use sqlx::Row;

use crate::{Store, StoreError, now_ms};

/// An organisation served by this node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrgRow {
    /// Short id (`clinic-a`), used in the config and on studies.
    pub id: String,
    /// Display name, printed on reports.
    pub name: String,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Row id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown in the app and printed as signer.
    pub display_name: String,
    /// Role name (`radiologist`...).
    pub role: String,
    /// Organisation id.
    pub org: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// Whether the password must be changed before anything else.
    pub must_change_password: bool,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// When the password was last set (ms since the epoch).
    pub password_changed_at: i64,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role name.
    pub role: String,
    /// Organisation id (must exist).
    pub org: String,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// Force a password change at first login.
    pub must_change_password: bool,
}

/// A live session and its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The user.
    pub user: UserRow,
    /// The CSRF token of cookie requests.
    pub csrf: String,
    /// Expiry, ms since the epoch.
    pub expires_at: i64,
}

/// Filters of an audit search.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Entries about this study.
    pub study_uid: Option<String>,
    /// Entries of this user.
    pub user: Option<String>,
    /// From this time (ms since the epoch, inclusive).
    pub from_ms: Option<i64>,
    /// Until this time (ms since the epoch, inclusive).
    pub to_ms: Option<i64>,
    /// Entries of this organisation.
    pub org: Option<String>,
    /// Most entries (newest first).
    pub limit: usize,
    /// Entries after this sequence number (oldest first instead), for the forwarder.
    pub after_seq: Option<i64>,
}

fn user_row(r: &impl crate::db::IndexRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.col("id")?,
        username: r.col("username")?,
        display_name: r.col("display_name")?,
        role: r.col("role")?,
        org: r.col("org")?,
        password_hash: r.col("password_hash")?,
        must_change_password: r.col::<i64, _>("must_change_password")? != 0,
        disabled: r.col::<i64, _>("disabled")? != 0,
        password_changed_at: r.col("password_changed_at")?,
    })
}

const USER_COLS: &str = "u.id, u.username, u.display_name, u.role, u.org, u.password_hash,
    u.must_change_password, u.disabled, u.password_changed_at";

impl Store {
    /// Creates the organisation if it does not exist (its name is left as it was).
    pub async fn ensure_org(&self, id: &str, name: &str) -> Result<(), StoreError> {
        {
            crate::db::with_db!(&self.pools, writer, |pool, d| {
                sqlx::query(d.sql(
                "INSERT INTO orgs (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO NOTHING",
            ))
            .bind(id)
            .bind(name)
            .bind(now_ms())
            .execute(pool)
            .await?;
            });
            Ok(())
        }
    }

    /// Every organisation.
    pub async fn orgs(&self) -> Result<Vec<OrgRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let rows = sqlx::query(d.sql("SELECT id, name FROM orgs ORDER BY id"))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    Ok(OrgRow {
                        id: r.try_get(0)?,
                        name: r.try_get(1)?,
                    })
                })
                .collect()
        })
    }

    /// The organisation a study belongs to, if the study exists.
    pub async fn study_org(&self, study_uid: &str) -> Result<Option<String>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            Ok(sqlx::query_scalar::<_, String>(
                d.sql("SELECT org FROM studies WHERE study_uid = ?"),
            )
            .bind(study_uid)
            .fetch_optional(pool)
            .await?)
        })
    }

    /// The organisation and the patient (ID, name; for audit records only) of a study, if
    /// it exists.
    pub async fn study_access(
        &self,
        study_uid: &str,
    ) -> Result<Option<(String, String, String)>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let row = sqlx::query(
                d.sql("SELECT patient_id, attrs, org FROM studies WHERE study_uid = ?"),
            )
            .bind(study_uid)
            .fetch_optional(pool)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let attrs = crate::parse_map(&row.try_get::<String, _>(1)?)?;
            let name = lumen_dicom::json::person_name_values(
                &attrs,
                dicom_dictionary_std::tags::PATIENT_NAME,
            )
            .join("=");
            Ok(Some((row.try_get(2)?, row.try_get(0)?, name)))
        })
    }

    /// How many user accounts exist.
    pub async fn user_count(&self) -> Result<i64, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            Ok(sqlx::query_scalar(d.sql("SELECT count(*) FROM users"))
                .fetch_one(pool)
                .await?)
        })
    }

    /// Creates an account; `Ok(None)` when the user name is taken.
    pub async fn create_user(&self, u: &NewUser) -> Result<Option<i64>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let r = sqlx::query(d.sql(
                "INSERT INTO users (username, display_name, role, org, password_hash,
               must_change_password, created_at, password_changed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(username) DO NOTHING RETURNING id",
            ))
            .bind(&u.username)
            .bind(&u.display_name)
            .bind(&u.role)
            .bind(&u.org)
            .bind(&u.password_hash)
            .bind(i64::from(u.must_change_password))
            .bind(now)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(r.map(|r| r.try_get::<i64, _>(0)).transpose()?)
        })
    }

    /// The account with this user name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let sql = format!("SELECT {USER_COLS} FROM users u WHERE u.username = ?");
            let row = sqlx::query(d.sql(sql))
                .bind(username)
                .fetch_optional(pool)
                .await?;
            row.as_ref().map(user_row).transpose()
        })
    }

    /// Every account (of one organisation when given).
    pub async fn users(&self, org: Option<&str>) -> Result<Vec<UserRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let sql = format!(
                "SELECT {USER_COLS} FROM users u WHERE (? IS NULL OR u.org = ?) ORDER BY u.username"
            );
            let rows = sqlx::query(d.sql(sql))
                .bind(org)
                .bind(org)
                .fetch_all(pool)
                .await?;
            rows.iter().map(user_row).collect()
        })
    }

    /// Changes an account's role, organisation, display name or disabled flag (`None`:
    /// unchanged); disabling revokes its sessions. `false` when there is no such user.
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<&str>,
        org: Option<&str>,
        display_name: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<bool, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let mut tx = pool.begin_with(d.begin()).await?;
            let r = sqlx::query(d.sql(
                "UPDATE users SET role = coalesce(?, role), org = coalesce(?, org),
               display_name = coalesce(?, display_name), disabled = coalesce(?, disabled)
             WHERE username = ?",
            ))
            .bind(role)
            .bind(org)
            .bind(display_name)
            .bind(disabled.map(i64::from))
            .bind(username)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            // Any change of who a user is or may do ends their sessions: the next request
            // authenticates afresh with the new role.
            sqlx::query(d.sql(
                "UPDATE sessions SET revoked_at = ? WHERE revoked_at IS NULL
               AND user_id = (SELECT id FROM users WHERE username = ?)",
            ))
            .bind(now_ms())
            .bind(username)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    /// Sets a user's password hash, clears or sets the must-change flag, and revokes every
    /// session of the user except `keep` (the token hash of the session that changed it).
    pub async fn set_password(
        &self,
        user_id: i64,
        password_hash: &str,
        must_change: bool,
        keep: Option<&str>,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let now = now_ms();
            let mut tx = pool.begin_with(d.begin()).await?;
            sqlx::query(
            d.sql("UPDATE users SET password_hash = ?, must_change_password = ?, password_changed_at = ?
             WHERE id = ?"),
        )
        .bind(password_hash)
        .bind(i64::from(must_change))
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
            sqlx::query(d.sql(
                "UPDATE sessions SET revoked_at = ?
             WHERE user_id = ? AND revoked_at IS NULL AND token_hash <> coalesce(?, '')",
            ))
            .bind(now)
            .bind(user_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Records a new session.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        csrf: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?)",
            ))
            .bind(token_hash)
            .bind(user_id)
            .bind(csrf)
            .bind(now_ms())
            .bind(expires_at)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The live (unexpired, unrevoked) session of a token hash, with its enabled user.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let sql = format!(
            "SELECT {USER_COLS}, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.disabled = 0"
        );
            let row = sqlx::query(d.sql(sql))
                .bind(token_hash)
                .bind(now_ms())
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
                Ok(SessionRow {
                    user: user_row(&r)?,
                    csrf: r.try_get("csrf")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .transpose()
        })
    }

    /// Revokes one session.
    pub async fn revoke_session(&self, token_hash: &str) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(
                "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            ))
            .bind(now_ms())
            .bind(token_hash)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Appends audit entries in one transaction; their sequence numbers are assigned here.
    pub async fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            if events.is_empty() {
                return Ok(());
            }
            let mut tx = pool.begin_with(d.begin()).await?;
            for e in events {
                // The time's milliseconds, for range searches and the retention sweep; an
                // unreadable time is recorded as now.
                sqlx::query(
                d.sql(format!("INSERT INTO audit (time, time_ms, \"user\", role, org, action, outcome, channel,
                   source, study_uid, series_uid, patient_id, patient_name, detail)
                 VALUES (?1, coalesce({}, ?2),
                   ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)", d.time_ms("?1"))),
            )
            .bind(&e.time)
            .bind(now_ms())
            .bind(&e.user)
            .bind(&e.role)
            .bind(&e.org)
            .bind(e.action.as_str())
            .bind(e.outcome.as_str())
            .bind(e.channel.as_str())
            .bind(&e.source)
            .bind(&e.study_uid)
            .bind(&e.series_uid)
            .bind(&e.patient_id)
            .bind(&e.patient_name)
            .bind(&e.detail)
            .execute(&mut *tx)
            .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Audit entries matching `f`: newest first, or, with `after_seq`, oldest first.
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            let mut sql = String::from(
                "SELECT seq, time, \"user\", role, org, action, outcome, channel, source, study_uid,
               series_uid, patient_id, patient_name, detail FROM audit WHERE 1 = 1",
            );
            enum Bind {
                Text(String),
                Int(i64),
            }
            let mut binds = Vec::new();
            for (cond, v) in [
                (" AND study_uid = ?", &f.study_uid),
                (" AND \"user\" = ?", &f.user),
                (" AND org = ?", &f.org),
            ] {
                if let Some(v) = v {
                    sql.push_str(cond);
                    binds.push(Bind::Text(v.clone()));
                }
            }
            for (cond, v) in [
                (" AND time_ms >= ?", f.from_ms),
                (" AND time_ms <= ?", f.to_ms),
                (" AND seq > ?", f.after_seq),
            ] {
                if let Some(v) = v {
                    sql.push_str(cond);
                    binds.push(Bind::Int(v));
                }
            }
            sql.push_str(if f.after_seq.is_some() {
                " ORDER BY seq ASC LIMIT ?"
            } else {
                " ORDER BY seq DESC LIMIT ?"
            });
            let mut q = sqlx::query(d.sql(sql));
            for b in binds {
                q = match b {
                    Bind::Text(t) => q.bind(t),
                    Bind::Int(i) => q.bind(i),
                };
            }
            let rows = q
                .bind(i64::try_from(f.limit).unwrap_or(i64::MAX))
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let parse = |e: lumen_model::ModelError| StoreError::Corrupt(e.to_string());
                    let channel: String = r.try_get(7)?;
                    Ok(AuditEvent {
                        seq: r.try_get(0)?,
                        time: r.try_get(1)?,
                        user: r.try_get(2)?,
                        role: r.try_get(3)?,
                        org: r.try_get(4)?,
                        action: r
                            .try_get::<String, _>(5)?
                            .parse::<AuditAction>()
                            .map_err(parse)?,
                        outcome: r
                            .try_get::<String, _>(6)?
                            .parse::<AuditOutcome>()
                            .map_err(parse)?,
                        channel: match channel.as_str() {
                            "http" => AuditChannel::Http,
                            "dicom" => AuditChannel::Dicom,
                            "cli" => AuditChannel::Cli,
                            _ => AuditChannel::System,
                        },
                        source: r.try_get(8)?,
                        study_uid: r.try_get(9)?,
                        series_uid: r.try_get(10)?,
                        patient_id: r.try_get(11)?,
                        patient_name: r.try_get(12)?,
                        detail: r.try_get(13)?,
                    })
                })
                .collect()
        })
    }

    /// Removes audit entries older than `days` (the index refuses to remove any younger
    /// than six months); the number removed.
    pub async fn sweep_audit(&self, days: u32) -> Result<u64, StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            let cutoff = now_ms() - i64::from(days) * 86_400_000;
            let r = sqlx::query(d.sql("DELETE FROM audit WHERE time_ms < ?"))
                .bind(cutoff)
                .execute(pool)
                .await?;
            Ok(r.rows_affected())
        })
    }

    /// How far the audit trail was forwarded to the audit repository.
    pub async fn audit_forwarded(&self) -> Result<i64, StoreError> {
        crate::db::with_db!(&self.pools, reader, |pool, d| {
            Ok(
                sqlx::query_scalar::<_, i64>(d.sql("SELECT seq FROM audit_forwarded WHERE id = 1"))
                    .fetch_optional(pool)
                    .await?
                    .unwrap_or(0),
            )
        })
    }

    /// Records how far the audit trail was forwarded.
    pub async fn set_audit_forwarded(&self, seq: i64) -> Result<(), StoreError> {
        crate::db::with_db!(&self.pools, writer, |pool, d| {
            sqlx::query(d.sql(format!(
                "INSERT INTO audit_forwarded (id, seq) VALUES (1, ?)
             ON CONFLICT(id) DO UPDATE SET seq = {}(audit_forwarded.seq, excluded.seq)",
                d.greatest()
            )))
            .bind(seq)
            .execute(pool)
            .await?;
            Ok(())
        })
    }
}
