//! Patient links (云胶片) over HTTP: thin translations of `lumen_app::film`.
//!
//! Signed-in staff (radiologists, technologists) create, list and revoke a study's links
//! under `/api/`; the patient's viewer lives under `/film/<token>/`, public and authorised by
//! the token alone:
//!
//! - `GET /film/{token}`: the viewer page (`ui/film.html`), or a 404 page that says the link
//!   is not valid (unknown, expired and revoked alike);
//! - `GET /film/{token}/api/study`: the study as the viewer shows it (non-identifying);
//! - `GET /film/{token}/series/{series}/instances/{sop}/rendered`: one image (JPEG) of the
//!   link's study; anything else is 404;
//! - `GET /film/{token}/report.pdf`: the signed report.
//!
//! No DICOMweb route is reachable with a token. Every film response says `Cache-Control:
//! no-store`, `Referrer-Policy: no-referrer` (the token is in the URL), `X-Robots-Tag:
//! noindex` and a strict Content Security Policy, and the request log shows `/film/…`
//! instead of the token ([`redacted_path`]).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lumen_app::AppError;
use lumen_app::film::{FilmRead, NewLink, PatientLinkView};
use serde_json::{Value, json};

use crate::actor::CurrentUser;
use crate::{ApiError, AppState, public_origin};

/// The content security policy of the film page: its own script, style and images only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The routes under `/film/`.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/film/{token}", get(page))
        .route("/film/{token}/api/study", get(study))
        .route(
            "/film/{token}/series/{series}/instances/{sop}/rendered",
            get(image),
        )
        .route("/film/{token}/report.pdf", get(report_pdf))
        .layer(axum::middleware::map_response(film_headers))
}

/// A request path as the log may show it: a patient link's token replaced by `…`.
pub(crate) fn redacted_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/film/") {
        Some(rest) => {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            format!("/film/…{tail}").into()
        }
        None => path.into(),
    }
}

async fn film_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(
        "x-robots-tag",
        HeaderValue::from_static("noindex, nofollow"),
    );
    h.remove(header::ETAG);
    r
}

/// The source address of a film request.
struct Source(Option<String>);

impl FromRequestParts<AppState> for Source {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        Ok(Source(crate::actor::source(parts)))
    }
}

/// The page answered for a link that does not open (unknown, expired or revoked).
fn invalid_page() -> Response {
    // No conditional request: never a 304 (nothing of a film page is cached).
    let mut r = crate::ui::serve_file("film-invalid.html", &HeaderMap::new());
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// `GET /film/{token}`: the viewer page, each opening audited.
async fn page(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Source(src): Source,
) -> Result<Response, ApiError> {
    match s.app.open_film(&token, src, FilmRead::Page).await {
        // Never a 304: the page is not cached (`no-store`), and each opening counts.
        Ok(_) => Ok(crate::ui::serve_file("film.html", &HeaderMap::new())),
        Err(AppError::NotFound(_)) => Ok(invalid_page()),
        Err(e) => Err(e.into()),
    }
}

/// `GET /film/{token}/api/study`.
async fn study(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Source(src): Source,
) -> Result<Json<lumen_app::film::FilmStudy>, ApiError> {
    let film = s.app.open_film(&token, src, FilmRead::Study).await?;
    Ok(Json(s.app.film_study(&film).await?))
}

/// `GET /film/{token}/series/{series}/instances/{sop}/rendered`: a JPEG of the link's study.
async fn image(
    State(s): State<AppState>,
    Path((token, series, sop)): Path<(String, String, String)>,
    Source(src): Source,
) -> Result<Response, ApiError> {
    let film = s
        .app
        .open_film(&token, src, FilmRead::Image(&series))
        .await?;
    let jpeg = s.app.film_image(&film, &series, &sop).await?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], jpeg).into_response())
}

/// `GET /film/{token}/report.pdf`: the signed report.
async fn report_pdf(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Source(src): Source,
) -> Result<Response, ApiError> {
    let film = s.app.open_film(&token, src, FilmRead::Report).await?;
    let pdf = s.app.film_report_pdf(&film).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf"),
            (
                header::CONTENT_DISPOSITION,
                "inline; filename=\"report.pdf\"",
            ),
        ],
        pdf,
    )
        .into_response())
}

/// The requested life of a link from a JSON body `{"expires_in_hours": N}` (empty: the
/// default).
fn requested_hours(body: &Bytes) -> Result<Option<i64>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let bad = || {
        ApiError::BadRequest(format!(
            "the body is JSON {{\"expires_in_hours\": N}}, N a whole number from {} to {}",
            lumen_app::film::MIN_HOURS,
            lumen_app::film::MAX_HOURS
        ))
    };
    let v: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    let obj = v.as_object().ok_or_else(bad)?;
    if obj.keys().any(|k| k != "expires_in_hours") {
        return Err(bad());
    }
    match obj.get("expires_in_hours") {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n.as_i64().map(Some).ok_or_else(bad),
    }
}

fn created(origin: &str, link: &NewLink) -> Result<Value, ApiError> {
    let url = format!("{origin}{}", link.path);
    let qr_svg = lumen_app::film::qr_svg(&url)?;
    Ok(json!({
        "id": link.link.id,
        "url": url,
        "study_uid": link.link.study_uid,
        "expires_at": link.link.expires_at,
        "created_at": link.link.created_at,
        "state": link.link.state,
        "qr_svg": qr_svg,
        "ledger_index": link.ledger_index,
    }))
}

/// `POST /api/studies/{study}/patient-link` with `{"expires_in_hours": N}` (1 to 720,
/// default 72): creates a link; answers its URL (shown once), id, expiry and QR code (SVG).
pub async fn create_link(
    State(s): State<AppState>,
    Path(study): Path<String>,
    headers: HeaderMap,
    CurrentUser(actor): CurrentUser,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let hours = requested_hours(&body)?;
    let link = s.app.create_patient_link(&study, hours, &actor).await?;
    let origin = public_origin(&s.config, &headers);
    // 200, as the API's contract has it (the link is created, and its one answer is the URL).
    Ok((StatusCode::OK, Json(created(&origin, &link)?)))
}

/// `POST /api/studies/{study}/patient-copy` with `{"expires_in_hours": N}`: creates a link
/// and answers the patient's copy of the signed report (PDF) with the link's QR code; the
/// link's id and URL are in `X-Patient-Link-Id` and `X-Patient-Link-Url`.
pub async fn patient_copy(
    State(s): State<AppState>,
    Path(study): Path<String>,
    headers: HeaderMap,
    CurrentUser(actor): CurrentUser,
    body: Bytes,
) -> Result<Response, ApiError> {
    let hours = requested_hours(&body)?;
    let origin = public_origin(&s.config, &headers);
    let (link, pdf) = s
        .app
        .patient_copy(&study, hours, &actor, |path| format!("{origin}{path}"))
        .await?;
    let value = |v: String| HeaderValue::from_str(&v).map_err(ApiError::internal);
    Ok((
        StatusCode::CREATED,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"patient-copy.pdf\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static("x-patient-link-id"),
                value(link.link.id.clone())?,
            ),
            (
                header::HeaderName::from_static("x-patient-link-url"),
                value(format!("{origin}{}", link.path))?,
            ),
        ],
        pdf,
    )
        .into_response())
}

/// `GET /api/studies/{study}/patient-links`: the study's links, newest first, without
/// tokens.
pub async fn list_links(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<Vec<PatientLinkView>>, ApiError> {
    Ok(Json(s.app.patient_links(&study, &actor).await?))
}

/// `DELETE /api/patient-links/{id}`: revokes a link (it stops working at once).
pub async fn revoke_link(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<PatientLinkView>, ApiError> {
    Ok(Json(s.app.revoke_patient_link(&id, &actor).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_left_out_of_logged_paths() {
        assert_eq!(redacted_path("/film/abc"), "/film/…");
        assert_eq!(redacted_path("/film/abc/api/study"), "/film/…/api/study");
        assert_eq!(redacted_path("/film/"), "/film/…");
        assert_eq!(redacted_path("/api/worklist"), "/api/worklist");
        assert_eq!(redacted_path("/filmstrip/x"), "/filmstrip/x");
    }

    #[test]
    fn the_life_of_a_link_is_read_strictly() {
        let b = |s: &str| Bytes::from(s.to_string());
        assert_eq!(requested_hours(&b("")).ok(), Some(None));
        assert_eq!(requested_hours(&b("{}")).ok(), Some(None));
        assert_eq!(
            requested_hours(&b(r#"{"expires_in_hours": 24}"#)).ok(),
            Some(Some(24))
        );
        // Range checks are the application's (400 there too); shape checks are here.
        assert_eq!(
            requested_hours(&b(r#"{"expires_in_hours": 0}"#)).ok(),
            Some(Some(0))
        );
        for bad in [
            r#"{"expires_in_hours": 1.5}"#,
            r#"{"expires_in_hours": "24"}"#,
            r#"{"hours": 24}"#,
            "[24]",
            "24h",
        ] {
            assert!(
                matches!(requested_hours(&b(bad)), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
