//! Sign-in and administration over HTTP: login, logout, who am I, password change, users
//! and organisations, and the audit trail. Thin translations of `lumen_app::auth` and
//! `lumen_app::audit`; the cookies are set here.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use lumen_app::audit::AuditQuery;
use lumen_app::auth::{CreateUser, Session, UpdateUser, UserInfo};
use lumen_app::{AuditChannel, AuditEvent};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::actor::{CSRF_COOKIE, CurrentUser, SESSION_COOKIE};
use crate::{ApiError, AppState};

/// Body of `POST /api/auth/login` (JSON or a form).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    username: String,
    password: String,
}

fn cookies(
    state: &AppState,
    session: Option<&Session>,
) -> axum::response::AppendHeaders<[(header::HeaderName, HeaderValue); 2]> {
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let (token, csrf, age) = match session {
        Some(s) => (
            s.token.as_str(),
            s.csrf.as_str(),
            state.app.settings().session_ttl.as_secs().to_string(),
        ),
        None => ("", "", "0".to_string()),
    };
    let c = |v: String| HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static(""));
    axum::response::AppendHeaders([
        (
            header::SET_COOKIE,
            c(format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={age}{secure}"
            )),
        ),
        (
            header::SET_COOKIE,
            c(format!(
                "{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={age}{secure}"
            )),
        ),
    ])
}

/// A login body that could not be read: too large (413), else malformed (400).
fn rejected(status: StatusCode, message: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(format!(
            "the request body exceeds {} bytes",
            crate::API_BODY_LIMIT
        ))
    } else {
        ApiError::BadRequest(message)
    }
}

/// `POST /api/auth/login`: JSON `{username, password}` answers the token and sets the
/// session cookie; the login page's form (urlencoded) is redirected to the app.
pub async fn login(State(s): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let src = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body: LoginBody = if is_form {
        axum::Form::<LoginBody>::from_request(req, &s)
            .await
            .map_err(|e| rejected(e.status(), format!("login form: {}", e.body_text())))?
            .0
    } else {
        Json::<LoginBody>::from_request(req, &s)
            .await
            .map_err(|e| {
                rejected(
                    e.status(),
                    format!(
                        "login takes JSON {{\"username\": ..., \"password\": ...}}: {}",
                        e.body_text()
                    ),
                )
            })?
            .0
    };
    if body.username.len() > 256 || body.password.len() > 1024 {
        return Err(ApiError::BadRequest(
            "user name or password too long".into(),
        ));
    }
    let session = match s
        .app
        .login(&body.username, &body.password, AuditChannel::Http, src)
        .await
    {
        Ok(session) => session,
        Err(e) if is_form => {
            let why = match e {
                lumen_app::AppError::Throttled(_) => "throttled",
                _ => "failed",
            };
            return Ok(Redirect::to(&format!("/login?error={why}")).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let set = cookies(&s, Some(&session));
    if is_form {
        return Ok((set, Redirect::to("/")).into_response());
    }
    Ok((
        set,
        Json(json!({
            "token": session.token,
            "expires_at": session.expires_at,
            "user": session.user,
        })),
    )
        .into_response())
}

/// `POST /api/auth/logout`: ends the session (its token stops working) and clears the
/// cookies.
pub async fn logout(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> Result<Response, ApiError> {
    s.app.logout(&actor).await?;
    Ok((cookies(&s, None), StatusCode::NO_CONTENT).into_response())
}

/// `GET /api/auth/me`: who is signed in.
pub async fn me(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(s.app.me(&actor).await?))
}

/// Body of `POST /api/auth/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/auth/password`: changes the signed-in user's password; their other sessions
/// end.
pub async fn password(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    s.app
        .change_password(&actor, &body.current_password, &body.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/users` (admins).
pub async fn list_users(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(s.app.list_users(&actor).await?))
}

/// `POST /api/users` (admins): creates an account.
pub async fn create_user(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<CreateUser>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.app.create_user(&actor, &body).await?),
    ))
}

/// `PUT /api/users/{username}` (admins): role, organisation, display name, disabled,
/// password reset.
pub async fn update_user(
    State(s): State<AppState>,
    Path(username): Path<String>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<UpdateUser>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(s.app.update_user(&actor, &username, &body).await?))
}

/// `GET /api/orgs` (admins).
pub async fn list_orgs(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!(s.app.list_orgs(&actor).await?)))
}

/// Body of `POST /api/orgs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgBody {
    id: String,
    name: String,
}

/// `POST /api/orgs` (the node's admins): creates an organisation.
pub async fn create_org(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<OrgBody>,
) -> Result<StatusCode, ApiError> {
    s.app.create_org(&actor, &body.id, &body.name).await?;
    Ok(StatusCode::CREATED)
}

/// Query of `GET /api/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    study: Option<String>,
    user: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/audit?study=&user=&from=&to=&limit=` (admins): newest first.
pub async fn audit(
    State(s): State<AppState>,
    CurrentUser(actor): CurrentUser,
    Query(p): Query<AuditParams>,
) -> Result<Json<Vec<AuditEvent>>, ApiError> {
    let q = AuditQuery {
        study: p.study,
        user: p.user,
        from: p.from,
        to: p.to,
        limit: p.limit,
    };
    Ok(Json(s.app.search_audit(&actor, &q).await?))
}

/// `GET /login`: the sign-in page (public).
pub async fn login_page(headers: HeaderMap) -> Response {
    crate::ui::serve_file("login.html", &headers)
}

/// `GET /`: the app for a signed-in user, else the sign-in page.
pub async fn index(State(s): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    match crate::actor::authenticate(&parts, &s).await {
        Ok(_) => crate::ui::serve_file("index.html", &parts.headers),
        Err(_) => {
            let _ = &mut parts;
            Redirect::to("/login").into_response()
        }
    }
}
