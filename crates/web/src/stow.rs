//! STOW-RS: storing instances sent as `multipart/related; type="application/dicom"`
//! (PS3.18 10.5), with a per-instance result in the response body.
//!
//! The body is streamed: each part is read, handed to the archive's one ingest path and
//! dropped, with a few parts in flight at once, so memory stays bounded by the part size.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dicom_dictionary_std::tags;
use futures::TryStreamExt;
use lumen_dicom::json::tag_key;
use lumen_store::{IngestError, Ingested};
use serde_json::{Map, Value, json};
use tokio::task::JoinSet;

use crate::actor::{Actor, CurrentUser};
use crate::{ApiError, AppState, base_url, media};

/// DICOM failure reasons used in FailedSOPSequence (PS3.18 Table 10.5.3-2, PS3.7 C).
mod reason {
    pub const PROCESSING_FAILURE: u16 = 0x0110;
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const STUDY_MISMATCH: u16 = 0xA900;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Refused: Not Authorized (PS3.4 C.4.2.1.4, 0x0124).
    pub const REFUSED_NOT_AUTHORIZED: u16 = 0x0124;
}

/// `POST /studies`
pub async fn store_any(
    State(s): State<AppState>,
    CurrentUser(user): CurrentUser,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    store(s, user, h, None, body).await
}

/// `POST /studies/{study}`: every instance must belong to that study.
pub async fn store_in_study(
    State(s): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(study): Path<String>,
    h: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    lumen_dicom::attrs::check_uid("StudyInstanceUID", &study)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    store(s, user, h, Some(study), body).await
}

struct Failure {
    sop_class_uid: Option<String>,
    sop_instance_uid: Option<String>,
    reason: u16,
    comment: String,
}

async fn store(
    state: AppState,
    user: Actor,
    headers: HeaderMap,
    study: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    // Refused before the body is read when the user may not store at all.
    state
        .app
        .require(
            &user,
            lumen_app::Permission::Store,
            lumen_app::AuditAction::Store,
            "STOW-RS",
        )
        .await?;
    let app = state.app.clone();
    let ingest = move |bytes: bytes::Bytes| {
        let (app, user) = (app.clone(), user.clone());
        async move { app.receive(&user, bytes, lumen_store::Origin::StowRs).await }
    };
    store_with(state, headers, study, body, ingest).await
}

/// STOW-RS with each part kept by `ingest` (a user's `App::receive`, or a consortium
/// member's `App::receive_from_node`).
pub(crate) async fn store_with<F, Fut>(
    state: AppState,
    headers: HeaderMap,
    study: Option<String>,
    body: Body,
    ingest: F,
) -> Result<Response, ApiError>
where
    F: Fn(bytes::Bytes) -> Fut,
    Fut: std::future::Future<Output = Result<Ingested, IngestError>> + Send + 'static,
{
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::UnsupportedMediaType("missing Content-Type".into()))?;
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "multipart/related" {
        return Err(ApiError::UnsupportedMediaType(format!(
            "STOW-RS takes multipart/related; type=\"application/dicom\", not {essence}"
        )));
    }
    let params = media::params(ct);
    let get = |k: &str| params.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    if let Some(t) = get("type")
        && !t.eq_ignore_ascii_case("application/dicom")
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "only type=\"application/dicom\" parts are accepted, not {t}"
        )));
    }
    let boundary = get("boundary")
        .ok_or_else(|| ApiError::BadRequest("multipart/related without boundary".into()))?;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > state.config.max_body_bytes
    {
        return Err(ApiError::TooLarge(format!(
            "request body of {len} bytes exceeds the limit of {} bytes",
            state.config.max_body_bytes
        )));
    }
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(state.config.max_body_bytes)
            .per_field(state.config.max_object_bytes),
    );
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut tasks: JoinSet<(usize, Result<Ingested, IngestError>)> = JoinSet::new();
    let mut results: Vec<Option<Result<Ingested, IngestError>>> = Vec::new();
    let mut early: Vec<Failure> = Vec::new();
    let limit = state.config.stow_concurrency.max(1);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tasks.abort_all();
                return Err(multipart_error(e));
            }
        };
        if let Some(ct) = field.content_type() {
            let e = ct.essence_str().to_ascii_lowercase();
            if e != "application/dicom" && e != "application/octet-stream" {
                early.push(Failure {
                    sop_class_uid: None,
                    sop_instance_uid: None,
                    reason: reason::SOP_CLASS_NOT_SUPPORTED,
                    comment: format!("part of type {e} is not application/dicom"),
                });
                continue;
            }
        }
        let bytes = match field.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tasks.abort_all();
                return Err(multipart_error(e));
            }
        };
        while tasks.len() >= limit {
            if let Some(Ok((i, r))) = tasks.join_next().await {
                results[i] = Some(r);
            }
        }
        let idx = results.len();
        results.push(None);
        let fut = ingest(bytes);
        tasks.spawn(async move { (idx, fut.await) });
    }
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((i, r)) => results[i] = Some(r),
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    if results.is_empty() && early.is_empty() {
        return Err(ApiError::BadRequest("the request contains no parts".into()));
    }

    let base = base_url(&state.config, &headers);
    let mut referenced = Vec::new();
    let mut failed: Vec<Failure> = early;
    for r in results.into_iter().flatten() {
        match r {
            Ok(ing) => {
                if let Some(st) = &study
                    && *st != ing.study_uid
                {
                    // Stored under its own study; reported so the sender sees the mismatch.
                    failed.push(Failure {
                        sop_class_uid: Some(ing.sop_class_uid),
                        sop_instance_uid: Some(ing.sop_instance_uid),
                        reason: reason::STUDY_MISMATCH,
                        comment: "instance belongs to another study than the request URL".into(),
                    });
                    continue;
                }
                referenced.push(ing);
            }
            Err(e) => {
                let (code, ids) = match &e {
                    IngestError::Invalid(_) => (reason::CANNOT_UNDERSTAND, None),
                    IngestError::UnsupportedSopClass(c) => {
                        (reason::SOP_CLASS_NOT_SUPPORTED, Some(c.clone()))
                    }
                    IngestError::Conflict(_) => (reason::DUPLICATE_SOP_INSTANCE, None),
                    IngestError::Internal(_) => (reason::OUT_OF_RESOURCES, None),
                    IngestError::Forbidden(_) => (reason::REFUSED_NOT_AUTHORIZED, None),
                    _ => (reason::PROCESSING_FAILURE, None),
                };
                if let IngestError::Internal(cause) = &e {
                    tracing::error!(%cause, "STOW-RS instance not stored");
                }
                failed.push(Failure {
                    sop_class_uid: ids,
                    sop_instance_uid: None,
                    reason: code,
                    comment: e.to_string(),
                });
            }
        }
    }
    tracing::info!(
        stored = referenced.len(),
        failed = failed.len(),
        "STOW-RS request"
    );
    let mut out = Map::new();
    if let Some(st) = study.as_ref().or(referenced.first().map(|r| &r.study_uid)) {
        out.insert(
            tag_key(tags::RETRIEVE_URL),
            json!({"vr": "UR", "Value": [format!("{base}/studies/{st}")]}),
        );
    }
    if !referenced.is_empty() {
        let items: Vec<Value> = referenced
            .iter()
            .map(|r| {
                json!({
                    tag_key(tags::REFERENCED_SOP_CLASS_UID): {"vr": "UI", "Value": [r.sop_class_uid]},
                    tag_key(tags::REFERENCED_SOP_INSTANCE_UID): {"vr": "UI", "Value": [r.sop_instance_uid]},
                    tag_key(tags::RETRIEVE_URL): {"vr": "UR", "Value": [format!(
                        "{base}/studies/{}/series/{}/instances/{}", r.study_uid, r.series_uid, r.sop_instance_uid)]},
                })
            })
            .collect();
        out.insert(
            tag_key(tags::REFERENCED_SOP_SEQUENCE),
            json!({"vr": "SQ", "Value": items}),
        );
    }
    if !failed.is_empty() {
        let items: Vec<Value> = failed
            .iter()
            .map(|f| {
                let mut m = Map::new();
                if let Some(c) = &f.sop_class_uid {
                    m.insert(
                        tag_key(tags::REFERENCED_SOP_CLASS_UID),
                        json!({"vr": "UI", "Value": [c]}),
                    );
                }
                if let Some(i) = &f.sop_instance_uid {
                    m.insert(
                        tag_key(tags::REFERENCED_SOP_INSTANCE_UID),
                        json!({"vr": "UI", "Value": [i]}),
                    );
                }
                m.insert(
                    tag_key(tags::FAILURE_REASON),
                    json!({"vr": "US", "Value": [f.reason]}),
                );
                // (0000,0902) Error Comment: the human-readable reason.
                m.insert(
                    "00000902".into(),
                    json!({"vr": "LO", "Value": [truncate(&f.comment, 64)]}),
                );
                Value::Object(m)
            })
            .collect();
        out.insert(
            tag_key(tags::FAILED_SOP_SEQUENCE),
            json!({"vr": "SQ", "Value": items}),
        );
    }
    let status = if failed.is_empty() {
        StatusCode::OK
    } else if referenced.is_empty() {
        StatusCode::CONFLICT
    } else {
        StatusCode::ACCEPTED
    };
    let body = serde_json::to_vec(&Value::Object(out)).map_err(ApiError::internal)?;
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/dicom+json"),
        )],
        body,
    )
        .into_response())
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn multipart_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::StreamSizeExceeded { limit } => {
            ApiError::TooLarge(format!("request body exceeds the limit of {limit} bytes"))
        }
        multer::Error::FieldSizeExceeded { limit, .. } => {
            ApiError::TooLarge(format!("an instance exceeds the limit of {limit} bytes"))
        }
        other => ApiError::BadRequest(format!("malformed multipart body: {other}")),
    }
}
