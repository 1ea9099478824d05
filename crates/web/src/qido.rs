//! QIDO-RS: searches for studies, series and instances (PS3.18 10.6).

use axum::extract::{Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use dicom_dictionary_std::tags;
use lumen_dicom::attrs::Level;
use lumen_dicom::json::{first_string, tag_key};
use lumen_dicom::query::Query;
use lumen_store::Scope;
use serde_json::{Value, json};

use crate::actor::{Actor, CurrentUser};
use crate::{ApiError, AppState, base_url, media};

type Params = UrlQuery<Vec<(String, String)>>;

/// Answers a search at `level` within `scope`.
async fn search(
    state: AppState,
    user: Actor,
    headers: HeaderMap,
    level: Level,
    scope: Scope,
    params: Vec<(String, String)>,
) -> Result<Response, ApiError> {
    let acceptable = media::accept(&headers);
    let media_type = if acceptable
        .iter()
        .any(|r| r.accepts("application/dicom+json"))
    {
        "application/dicom+json"
    } else if acceptable.iter().any(|r| r.accepts("application/json")) {
        "application/json"
    } else {
        return Err(ApiError::NotAcceptable(
            "QIDO-RS answers application/dicom+json only".into(),
        ));
    };
    for (uid, name) in [
        (&scope.study_uid, "StudyInstanceUID"),
        (&scope.series_uid, "SeriesInstanceUID"),
    ] {
        if let Some(uid) = uid {
            lumen_dicom::attrs::check_uid(name, uid)
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        }
    }
    let query = Query::from_qido(level, &params)?;
    let mut results = state.app.search(&user, &query, &scope).await?;
    let base = base_url(&state.config, &headers);
    for r in &mut results {
        let url = match level {
            Level::Patient => continue,
            Level::Study => {
                first_string(r, tags::STUDY_INSTANCE_UID).map(|s| format!("{base}/studies/{s}"))
            }
            Level::Series => match (
                first_string(r, tags::STUDY_INSTANCE_UID),
                first_string(r, tags::SERIES_INSTANCE_UID),
            ) {
                (Some(st), Some(se)) => Some(format!("{base}/studies/{st}/series/{se}")),
                _ => None,
            },
            Level::Instance => match (
                first_string(r, tags::STUDY_INSTANCE_UID),
                first_string(r, tags::SERIES_INSTANCE_UID),
                first_string(r, tags::SOP_INSTANCE_UID),
            ) {
                (Some(st), Some(se), Some(i)) => {
                    Some(format!("{base}/studies/{st}/series/{se}/instances/{i}"))
                }
                _ => None,
            },
        };
        if let Some(url) = url {
            r.insert(
                tag_key(tags::RETRIEVE_URL),
                json!({"vr": "UR", "Value": [url]}),
            );
        }
    }
    let body = serde_json::to_vec(&Value::Array(
        results.into_iter().map(Value::Object).collect(),
    ))
    .map_err(ApiError::internal)?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        body,
    )
        .into_response())
}

/// `GET /studies`
pub async fn studies(
    State(s): State<AppState>,
    CurrentUser(u): CurrentUser,
    h: HeaderMap,
    UrlQuery(p): Params,
) -> Result<Response, ApiError> {
    search(s, u, h, Level::Study, Scope::default(), p).await
}

/// `GET /series`
pub async fn series(
    State(s): State<AppState>,
    CurrentUser(u): CurrentUser,
    h: HeaderMap,
    UrlQuery(p): Params,
) -> Result<Response, ApiError> {
    search(s, u, h, Level::Series, Scope::default(), p).await
}

/// `GET /instances`
pub async fn instances(
    State(s): State<AppState>,
    CurrentUser(u): CurrentUser,
    h: HeaderMap,
    UrlQuery(p): Params,
) -> Result<Response, ApiError> {
    search(s, u, h, Level::Instance, Scope::default(), p).await
}

/// `GET /studies/{study}/series`
pub async fn study_series(
    State(s): State<AppState>,
    CurrentUser(u): CurrentUser,
    Path(study): Path<String>,
    h: HeaderMap,
    UrlQuery(p): Params,
) -> Result<Response, ApiError> {
    let scope = Scope {
        study_uid: Some(study),
        ..Scope::default()
    };
    search(s, u, h, Level::Series, scope, p).await
}

/// `GET /studies/{study}/instances`
pub async fn study_instances(
    State(s): State<AppState>,
    CurrentUser(u): CurrentUser,
    Path(study): Path<String>,
    h: HeaderMap,
    UrlQuery(p): Params,
) -> Result<Response, ApiError> {
    let scope = Scope {
        study_uid: Some(study),
        ..Scope::default()
    };
    search(s, u, h, Level::Instance, scope, p).await
}

/// `GET /studies/{study}/series/{series}/instances`
pub async fn series_instances(
    State(s): State<AppState>,
    CurrentUser(u): CurrentUser,
    Path((study, series)): Path<(String, String)>,
    h: HeaderMap,
    UrlQuery(p): Params,
) -> Result<Response, ApiError> {
    let scope = Scope {
        study_uid: Some(study),
        series_uid: Some(series),
        ..Scope::default()
    };
    search(s, u, h, Level::Instance, scope, p).await
}
