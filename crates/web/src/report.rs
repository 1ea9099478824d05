//! The report API: HTTP translations of `lumen_app::report` (draft, edit, sign, addenda,
//! PDF).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use lumen_app::report::{ReportSections, ReportView, parse_lang};
use serde::Deserialize;

use crate::actor::CurrentUser;
use crate::{ApiError, AppState};

/// `?lang=` of the report.
#[derive(Debug, Default, Deserialize)]
pub struct LangParam {
    lang: Option<String>,
}

/// `GET /api/studies/{study}/report?lang=en|zh-CN`.
pub async fn get_report(
    State(s): State<AppState>,
    Path(study): Path<String>,
    Query(q): Query<LangParam>,
    CurrentUser(actor): CurrentUser,
) -> Result<Json<ReportView>, ApiError> {
    let lang = parse_lang(q.lang.as_deref())?;
    Ok(Json(s.app.report(&study, lang, &actor).await?))
}

/// Body of `PUT /api/studies/{study}/report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEdit {
    lang: String,
    sections: ReportSections,
}

/// `PUT /api/studies/{study}/report`: saves the doctor's text (status draft).
pub async fn put_report(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<ReportEdit>,
) -> Result<Json<ReportView>, ApiError> {
    let lang = parse_lang(Some(&body.lang))?.unwrap_or_default();
    Ok(Json(
        s.app
            .edit_report(&study, lang, &body.sections, &actor)
            .await?,
    ))
}

/// Body of `POST .../report/sign`.
#[derive(Debug, Default, Deserialize)]
pub struct SignBody {
    lang: Option<String>,
}

/// `POST /api/studies/{study}/report/sign`: signs the report as it reads now.
pub async fn sign(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
    body: Option<Json<SignBody>>,
) -> Result<Json<ReportView>, ApiError> {
    let lang = parse_lang(body.as_ref().and_then(|b| b.lang.as_deref()))?;
    Ok(Json(s.app.sign_report(&study, lang, &actor).await?))
}

/// Body of `POST .../report/addenda`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddendumBody {
    text: String,
}

/// `POST /api/studies/{study}/report/addenda`: a signed addendum to a signed report.
pub async fn addendum(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
    Json(body): Json<AddendumBody>,
) -> Result<Json<ReportView>, ApiError> {
    Ok(Json(s.app.add_addendum(&study, &body.text, &actor).await?))
}

/// `GET /api/studies/{study}/report.pdf`: the PDF of the latest signed version.
pub async fn report_pdf(
    State(s): State<AppState>,
    Path(study): Path<String>,
    CurrentUser(actor): CurrentUser,
) -> Result<Response, ApiError> {
    let (pdf, version) = s.app.report_pdf(&study, &actor).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"report-v{version}.pdf\""),
            ),
        ],
        pdf,
    )
        .into_response())
}
