//! Who is acting: local accounts (argon2id password hashes), sessions and their tokens,
//! login throttling, and the management of users and organisations.
//!
//! The seam: every way of proving who one is ends in [`App::open_session`] with a verified
//! [`Identity`]. Password login ([`App::login`]) is one such way; an OpenID Connect login
//! against a hospital's identity provider would be another, mapping the ID token's claims to
//! an [`Identity`]; the session, the token and the policy ([`crate::policy`]) stay as they
//! are.
//!
//! Tokens are 256-bit random values, handed out once; the index keeps only their SHA-256.
//! One token serves as the web app's session cookie and as the `Authorization: Bearer`
//! credential of DICOMweb and API clients; it ends at its expiry, at logout, and when its
//! user's password, role or organisation changes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use lumen_store::{NewUser, UserRow};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::{Permission, Role};
use crate::{Actor, App, AppError, AuditAction, AuditChannel, AuditOutcome};

/// Failed logins allowed per account (or per source address for unknown names) within
/// [`THROTTLE_WINDOW`]; further attempts are refused (429) until the window has passed.
pub const MAX_FAILURES: u32 = 10;

/// The window of [`MAX_FAILURES`].
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;

/// A verified identity, from whatever proved it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The account's row id.
    pub user_id: i64,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Organisation id.
    pub org: String,
    /// Must change the password before anything else.
    pub must_change_password: bool,
}

/// A session opened by a login.
#[derive(Debug, Clone, Serialize)]
pub struct Session {
    /// The token (cookie value and bearer credential); shown once.
    pub token: String,
    /// The CSRF token the web app sends with state-changing requests.
    #[serde(skip)]
    pub csrf: String,
    /// Expiry (RFC 3339 UTC).
    pub expires_at: String,
    /// The user.
    pub user: UserInfo,
}

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Organisation id.
    pub org: String,
    /// Organisation name.
    pub org_name: String,
    /// Must change the password before anything else.
    pub must_change_password: bool,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
}

/// An account to create.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Login name: 1 to 64 of letters, digits, `.`, `_`, `-`, `@`.
    pub username: String,
    /// Display name (default: the login name).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Role name.
    pub role: String,
    /// Organisation id (default: the creator's; created when absent).
    #[serde(default)]
    pub org: Option<String>,
    /// Initial password.
    pub password: String,
    /// Require a change at first login (default true when an admin creates the account).
    #[serde(default)]
    pub must_change_password: Option<bool>,
}

/// Changes to an account (`None`: unchanged).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// New role.
    #[serde(default)]
    pub role: Option<String>,
    /// New organisation (must exist).
    #[serde(default)]
    pub org: Option<String>,
    /// New display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Disable or enable.
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Set a new password (the user must change it at next login).
    #[serde(default)]
    pub password: Option<String>,
}

/// How long a session looked up in the index is trusted from memory. Everything that ends
/// sessions in this process (logout, password and account changes) empties the cache at
/// once; the bound matters only for changes made by another process on the same index.
const SESSION_CACHE_TTL: Duration = Duration::from_secs(5);

/// Recently checked sessions and organisation names, so that a viewer's hundreds of frame
/// requests do not each read the index to learn who is asking.
#[derive(Debug, Default)]
pub struct SessionCache {
    sessions: Mutex<HashMap<String, (Identity, String, i64, Instant)>>,
    orgs: Mutex<HashMap<String, String>>,
}

impl SessionCache {
    fn get(&self, hash: &str) -> Option<(Identity, String)> {
        let map = self.sessions.lock().ok()?;
        let (id, csrf, expires, at) = map.get(hash)?;
        (at.elapsed() < SESSION_CACHE_TTL && *expires > lumen_report::time::now_ms())
            .then(|| (id.clone(), csrf.clone()))
    }

    fn put(&self, hash: &str, id: &Identity, csrf: &str, expires: i64) {
        if let Ok(mut map) = self.sessions.lock() {
            if map.len() > 10_000 {
                map.clear();
            }
            map.insert(
                hash.to_string(),
                (id.clone(), csrf.to_string(), expires, Instant::now()),
            );
        }
    }

    /// Forgets every session (after anything that may end some).
    fn clear(&self) {
        if let Ok(mut map) = self.sessions.lock() {
            map.clear();
        }
    }

    fn org_name(&self, org: &str) -> Option<String> {
        self.orgs.lock().ok()?.get(org).cloned()
    }

    fn set_org_name(&self, org: &str, name: &str) {
        if let Ok(mut m) = self.orgs.lock() {
            m.insert(org.to_string(), name.to_string());
        }
    }

    fn clear_orgs(&self) {
        if let Ok(mut m) = self.orgs.lock() {
            m.clear();
        }
    }
}

/// Failed-login counters, in memory (a restart forgets them; the audit trail keeps every
/// failure).
#[derive(Debug, Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl Throttle {
    fn blocked(&self, key: &str) -> bool {
        let Ok(map) = self.failures.lock() else {
            return false;
        };
        map.get(key)
            .is_some_and(|(n, first)| *n >= MAX_FAILURES && first.elapsed() < THROTTLE_WINDOW)
    }

    fn fail(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 100_000 {
                map.retain(|_, (_, first)| first.elapsed() < THROTTLE_WINDOW);
            }
            let e = map.entry(key.to_string()).or_insert((0, Instant::now()));
            if e.1.elapsed() >= THROTTLE_WINDOW {
                *e = (0, Instant::now());
            }
            e.0 += 1;
        }
    }

    fn clear(&self, key: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

/// Random bytes from the operating system, as URL-safe base64 without padding.
pub fn random_token(bytes: usize) -> Result<String, AppError> {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
}

/// The SHA-256 (hex) a token is kept as.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a presented token has the shape of one of ours (checked before any lookup).
pub fn plausible_token(token: &str) -> bool {
    (20..=128).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Hashes a password with argon2id (the crate's defaults: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AppError::internal(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash nobody's password matches, verified for unknown user names so that their
/// answer takes as long as a wrong password's.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("no account has this password").unwrap_or_default())
}

/// Checks a new password: long enough, not the user name.
pub fn check_password(username: &str, password: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(AppError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        )));
    }
    if password.len() > 1024 {
        return Err(AppError::Invalid("the password is too long".into()));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(AppError::Invalid(
            "the password must not be the user name".into(),
        ));
    }
    Ok(())
}

fn check_username(u: &str) -> Result<(), AppError> {
    if u.is_empty()
        || u.len() > 64
        || !u
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
    {
        return Err(AppError::Invalid(
            "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'".into(),
        ));
    }
    Ok(())
}

fn check_org_id(o: &str) -> Result<(), AppError> {
    if o.is_empty()
        || o.len() > 64
        || !o
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(AppError::Invalid(
            "an organisation id is 1 to 64 letters, digits, '.', '_' or '-'".into(),
        ));
    }
    Ok(())
}

fn identity(u: &UserRow) -> Result<Identity, AppError> {
    Ok(Identity {
        user_id: u.id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        role: u
            .role
            .parse()
            .map_err(|_| AppError::internal("stored account has an unknown role"))?,
        org: u.org.clone(),
        must_change_password: u.must_change_password,
    })
}

impl App {
    /// The actor of someone not (yet) authenticated, for audit records of login attempts.
    pub fn anonymous(&self, name: &str, channel: AuditChannel, source: Option<String>) -> Actor {
        Actor {
            user_id: name.chars().take(64).collect(),
            display_name: String::new(),
            role: Role::Referrer,
            org: String::new(),
            institution: String::new(),
            channel,
            source,
            session: None,
            must_change_password: false,
        }
    }

    async fn org_name(&self, org: &str) -> String {
        if let Some(n) = self.sessions.org_name(org) {
            return n;
        }
        let name = self
            .store
            .orgs()
            .await
            .ok()
            .and_then(|v| v.into_iter().find(|o| o.id == org).map(|o| o.name))
            .unwrap_or_else(|| org.to_string());
        self.sessions.set_org_name(org, &name);
        name
    }

    /// Password login. Wrong password and unknown user answer alike (401, same time);
    /// after [`MAX_FAILURES`] failures within [`THROTTLE_WINDOW`] the account (or, for
    /// unknown names, the source address) is refused with 429. Every attempt is audited.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        channel: AuditChannel,
        source: Option<String>,
    ) -> Result<Session, AppError> {
        let who = self.anonymous(username, channel, source.clone());
        let user = if check_username(username).is_ok() {
            self.store.user_by_name(username).await?
        } else {
            None
        };
        let key = match &user {
            Some(u) => format!("user:{}", u.username),
            None => format!("addr:{}", source.as_deref().unwrap_or("unknown")),
        };
        if self.throttle.blocked(&key) {
            self.audit_event(
                &who,
                AuditAction::LoginFailed,
                AuditOutcome::Denied,
                None,
                "login throttled",
            )
            .await;
            return Err(AppError::Throttled(
                "too many failed logins; try again in 15 minutes".into(),
            ));
        }
        let phc = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_string());
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
            .await
            .unwrap_or(false);
        let Some(user) = user.filter(|u| ok && !u.disabled) else {
            self.throttle.fail(&key);
            self.audit_event(
                &who,
                AuditAction::LoginFailed,
                AuditOutcome::Denied,
                None,
                "wrong user name or password",
            )
            .await;
            return Err(AppError::Unauthenticated(
                "wrong user name or password".into(),
            ));
        };
        self.throttle.clear(&key);
        let id = identity(&user)?;
        self.open_session(&id, channel, source).await
    }

    /// Opens a session for a verified identity (password login today; an external identity
    /// provider tomorrow) and audits the login.
    pub async fn open_session(
        &self,
        id: &Identity,
        channel: AuditChannel,
        source: Option<String>,
    ) -> Result<Session, AppError> {
        let token = random_token(32)?;
        let csrf = random_token(32)?;
        let ttl = i64::try_from(self.settings.session_ttl.as_millis()).unwrap_or(i64::MAX);
        let expires = lumen_report::time::now_ms().saturating_add(ttl);
        self.store
            .create_session(&token_hash(&token), id.user_id, &csrf, expires)
            .await?;
        let actor = self.actor_of(id, channel, source, None).await;
        self.audit_event(
            &actor,
            AuditAction::Login,
            AuditOutcome::Success,
            None,
            "login",
        )
        .await;
        Ok(Session {
            token,
            csrf,
            expires_at: lumen_report::time::iso(expires),
            user: UserInfo {
                username: id.username.clone(),
                display_name: id.display_name.clone(),
                role: id.role,
                org: id.org.clone(),
                org_name: actor.institution.clone(),
                must_change_password: id.must_change_password,
                disabled: false,
            },
        })
    }

    async fn actor_of(
        &self,
        id: &Identity,
        channel: AuditChannel,
        source: Option<String>,
        session: Option<String>,
    ) -> Actor {
        Actor {
            user_id: id.username.clone(),
            display_name: id.display_name.clone(),
            role: id.role,
            org: id.org.clone(),
            institution: self.org_name(&id.org).await,
            channel,
            source,
            session,
            must_change_password: id.must_change_password,
        }
    }

    /// The actor a token stands for, with its CSRF token; `Unauthenticated` when the token
    /// is malformed, unknown, expired or revoked (audited as a refused access).
    pub async fn authenticate(
        &self,
        token: &str,
        channel: AuditChannel,
        source: Option<String>,
    ) -> Result<(Actor, String), AppError> {
        let refused = || AppError::Unauthenticated("the token is not valid".into());
        if !plausible_token(token) {
            return Err(refused());
        }
        let hash = token_hash(token);
        if let Some((id, csrf)) = self.sessions.get(&hash) {
            return Ok((self.actor_of(&id, channel, source, Some(hash)).await, csrf));
        }
        let Some(s) = self.store.session(&hash).await? else {
            let who = self.anonymous("", channel, source);
            self.audit_event(
                &who,
                AuditAction::AccessDenied,
                AuditOutcome::Denied,
                None,
                "invalid, expired or revoked token",
            )
            .await;
            return Err(refused());
        };
        let id = identity(&s.user)?;
        self.sessions.put(&hash, &id, &s.csrf, s.expires_at);
        Ok((
            self.actor_of(&id, channel, source, Some(hash)).await,
            s.csrf,
        ))
    }

    /// Ends the actor's session (its token stops working at once).
    pub async fn logout(&self, actor: &Actor) -> Result<(), AppError> {
        if let Some(h) = &actor.session {
            self.store.revoke_session(h).await?;
        }
        self.sessions.clear();
        self.audit_event(
            actor,
            AuditAction::Logout,
            AuditOutcome::Success,
            None,
            "logout",
        )
        .await;
        Ok(())
    }

    /// Changes the actor's own password; every other session of the user ends.
    pub async fn change_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
    ) -> Result<(), AppError> {
        let Some(user) = self.store.user_by_name(&actor.user_id).await? else {
            return Err(AppError::Unauthenticated("no such account".into()));
        };
        let (pw, phc) = (current.to_string(), user.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
            .await
            .unwrap_or(false);
        if !ok {
            self.audit_event(
                actor,
                AuditAction::PasswordChange,
                AuditOutcome::Denied,
                None,
                "wrong current password",
            )
            .await;
            return Err(AppError::Forbidden("the current password is wrong".into()));
        }
        check_password(&user.username, new)?;
        if new == current {
            return Err(AppError::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        let new = new.to_string();
        let hash = tokio::task::spawn_blocking(move || hash_password(&new))
            .await
            .map_err(AppError::internal)??;
        self.store
            .set_password(user.id, &hash, false, actor.session.as_deref())
            .await?;
        self.sessions.clear();
        self.audit_event(
            actor,
            AuditAction::PasswordChange,
            AuditOutcome::Success,
            None,
            "password changed",
        )
        .await;
        Ok(())
    }

    /// Who the actor is, as the API shows it.
    pub async fn me(&self, actor: &Actor) -> Result<UserInfo, AppError> {
        Ok(UserInfo {
            username: actor.user_id.clone(),
            display_name: actor.display_name.clone(),
            role: actor.role,
            org: actor.org.clone(),
            org_name: actor.institution.clone(),
            must_change_password: actor.must_change_password,
            disabled: false,
        })
    }

    fn manages(&self, actor: &Actor, org: &str) -> bool {
        actor.role.all_orgs() || actor.org == self.settings.node_org || actor.org == org
    }

    /// Creates an account (admins: in their organisation, or any when they are the
    /// node's; the command line: any). An organisation that does not exist yet is created.
    pub async fn create_user(&self, actor: &Actor, u: &CreateUser) -> Result<UserInfo, AppError> {
        let detail = format!(
            "create user {}",
            u.username.chars().take(64).collect::<String>()
        );
        self.require(
            actor,
            Permission::ManageUsers,
            AuditAction::UserCreate,
            &detail,
        )
        .await?;
        check_username(&u.username)?;
        let role: Role = u.role.parse()?;
        let org = u.org.clone().unwrap_or_else(|| actor.org.clone());
        check_org_id(&org)?;
        if !self.manages(actor, &org) {
            self.audit_event(
                actor,
                AuditAction::UserCreate,
                AuditOutcome::Denied,
                None,
                &detail,
            )
            .await;
            return Err(AppError::Forbidden(
                "admins manage the users of their own organisation".into(),
            ));
        }
        check_password(&u.username, &u.password)?;
        self.store.ensure_org(&org, &org).await?;
        let pw = u.password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(AppError::internal)??;
        let must_change = u
            .must_change_password
            .unwrap_or(actor.role != Role::Operator);
        let display_name = u
            .display_name
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| u.username.clone());
        if display_name.chars().count() > 128 {
            return Err(AppError::Invalid("the display name is too long".into()));
        }
        let created = self
            .store
            .create_user(&NewUser {
                username: u.username.clone(),
                display_name: display_name.clone(),
                role: role.as_str().into(),
                org: org.clone(),
                password_hash: hash,
                must_change_password: must_change,
            })
            .await?;
        if created.is_none() {
            return Err(AppError::Conflict(format!(
                "a user named {} exists",
                u.username
            )));
        }
        let detail = format!(
            "create user {} role {} org {org}",
            u.username,
            role.as_str()
        );
        self.audit_event(
            actor,
            AuditAction::UserCreate,
            AuditOutcome::Success,
            None,
            &detail,
        )
        .await;
        Ok(UserInfo {
            username: u.username.clone(),
            display_name,
            role,
            org_name: self.org_name(&org).await,
            org,
            must_change_password: must_change,
            disabled: false,
        })
    }

    /// Changes an account; its sessions end.
    pub async fn update_user(
        &self,
        actor: &Actor,
        username: &str,
        u: &UpdateUser,
    ) -> Result<UserInfo, AppError> {
        let detail = format!(
            "change user {}",
            username.chars().take(64).collect::<String>()
        );
        self.require(
            actor,
            Permission::ManageUsers,
            AuditAction::UserChange,
            &detail,
        )
        .await?;
        let not_found = || AppError::NotFound("no such user".into());
        let Some(existing) = self.store.user_by_name(username).await? else {
            return Err(not_found());
        };
        if !self.manages(actor, &existing.org) {
            return Err(not_found());
        }
        let role = u.role.as_deref().map(str::parse::<Role>).transpose()?;
        if let Some(org) = &u.org {
            check_org_id(org)?;
            if !self.manages(actor, org) || !self.store.orgs().await?.iter().any(|o| &o.id == org) {
                return Err(AppError::Invalid("no such organisation".into()));
            }
        }
        if existing.username == actor.user_id
            && (role.is_some_and(|r| r != Role::Admin) || u.disabled == Some(true))
        {
            return Err(AppError::Invalid(
                "an admin cannot take away their own admin role or disable themselves".into(),
            ));
        }
        self.sessions.clear();
        self.store
            .update_user(
                username,
                role.map(|r| r.as_str()),
                u.org.as_deref(),
                u.display_name.as_deref(),
                u.disabled,
            )
            .await?;
        self.sessions.clear();
        if let Some(pw) = &u.password {
            check_password(username, pw)?;
            let pw = pw.clone();
            let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
                .await
                .map_err(AppError::internal)??;
            self.store
                .set_password(existing.id, &hash, true, None)
                .await?;
        }
        let mut changes = Vec::new();
        if let Some(r) = role {
            changes.push(format!("role {}", r.as_str()));
        }
        if let Some(o) = &u.org {
            changes.push(format!("org {o}"));
        }
        if let Some(d) = u.disabled {
            changes.push(if d {
                "disabled".into()
            } else {
                "enabled".into()
            });
        }
        if u.password.is_some() {
            changes.push("password reset".into());
        }
        if u.display_name.is_some() {
            changes.push("display name".into());
        }
        let detail = format!("change user {username}: {}", changes.join(", "));
        self.audit_event(
            actor,
            AuditAction::UserChange,
            AuditOutcome::Success,
            None,
            &detail,
        )
        .await;
        let Some(now) = self.store.user_by_name(username).await? else {
            return Err(not_found());
        };
        self.user_info(&now).await
    }

    async fn user_info(&self, u: &UserRow) -> Result<UserInfo, AppError> {
        Ok(UserInfo {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            role: identity(u)?.role,
            org: u.org.clone(),
            org_name: self.org_name(&u.org).await,
            must_change_password: u.must_change_password,
            disabled: u.disabled,
        })
    }

    /// The accounts an admin manages.
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<UserInfo>, AppError> {
        self.require(
            actor,
            Permission::ManageUsers,
            AuditAction::UserChange,
            "list users",
        )
        .await?;
        let org = (!self.manages(actor, "")).then(|| actor.org.clone());
        let mut out = Vec::new();
        for u in self.store.users(org.as_deref()).await? {
            out.push(self.user_info(&u).await?);
        }
        Ok(out)
    }

    /// The organisations (admins).
    pub async fn list_orgs(&self, actor: &Actor) -> Result<Vec<lumen_store::OrgRow>, AppError> {
        self.require(
            actor,
            Permission::ManageUsers,
            AuditAction::OrgChange,
            "list organisations",
        )
        .await?;
        let all = self.store.orgs().await?;
        Ok(if self.manages(actor, "") {
            all
        } else {
            all.into_iter().filter(|o| o.id == actor.org).collect()
        })
    }

    /// Creates an organisation (admins of the node's own organisation, the command line).
    pub async fn create_org(&self, actor: &Actor, id: &str, name: &str) -> Result<(), AppError> {
        let detail = format!("create org {}", id.chars().take(64).collect::<String>());
        self.require(
            actor,
            Permission::ManageUsers,
            AuditAction::OrgChange,
            &detail,
        )
        .await?;
        check_org_id(id)?;
        if !(actor.role.all_orgs() || actor.org == self.settings.node_org) {
            return Err(AppError::Forbidden(
                "only the node's own admins create organisations".into(),
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::Invalid(
                "an organisation needs a name of at most 200 characters".into(),
            ));
        }
        self.store.ensure_org(id, name).await?;
        self.sessions.clear_orgs();
        self.audit_event(
            actor,
            AuditAction::OrgChange,
            AuditOutcome::Success,
            None,
            &detail,
        )
        .await;
        Ok(())
    }

    /// At the first start (no accounts at all): creates `admin` in the node's organisation
    /// with a random one-time password, which must be changed at first login; the password
    /// is returned to be shown once. `None` when accounts exist.
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, AppError> {
        if self.store.user_count().await? > 0 {
            return Ok(None);
        }
        let password = random_token(15)?;
        let pw = password.clone();
        let hash = tokio::task::spawn_blocking(move || hash_password(&pw))
            .await
            .map_err(AppError::internal)??;
        let created = self
            .store
            .create_user(&NewUser {
                username: "admin".into(),
                display_name: "Administrator".into(),
                role: Role::Admin.as_str().into(),
                org: self.settings.node_org.clone(),
                password_hash: hash,
                must_change_password: true,
            })
            .await?;
        if created.is_none() {
            return Ok(None);
        }
        let system = Actor::system(&self.settings.node_org);
        self.audit_event(
            &system,
            AuditAction::UserCreate,
            AuditOutcome::Success,
            None,
            "create user admin role admin (first start)",
        )
        .await;
        Ok(Some(password))
    }
}
