//! The one error type of the HTTP API: client mistakes explained, failures logged.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed; the message says why.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 429: too many attempts.
    #[error("{0}")]
    TooManyRequests(String),
    /// 404: nothing matches.
    #[error("{0}")]
    NotFound(String),
    /// 406: the requested media type or transfer syntax cannot be produced.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409: the request conflicts with the resource's state (a signed report).
    #[error("{0}")]
    Conflict(String),
    /// 503: a server-side resource the request needs is not configured.
    #[error("{0}")]
    Unavailable(String),
    /// 413: the request body is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 415: the request body's media type is not supported.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500: the server failed; details go to the log, not to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// An internal failure, logged with its cause.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<lumen_store::StoreError> for ApiError {
    fn from(e: lumen_store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<lumen_app::AppError> for ApiError {
    fn from(e: lumen_app::AppError) -> Self {
        use lumen_app::AppError as A;
        match e {
            A::Invalid(m) => ApiError::BadRequest(m),
            A::NotFound(m) => ApiError::NotFound(m),
            A::Conflict(m) => ApiError::Conflict(m),
            A::Unavailable(m) => ApiError::Unavailable(m),
            A::Unauthenticated(m) => ApiError::Unauthorized(m),
            A::Forbidden(m) => ApiError::Forbidden(m),
            A::Throttled(m) => ApiError::TooManyRequests(m),
            other => ApiError::internal(other),
        }
    }
}

impl From<lumen_dicom::query::QueryError> for ApiError {
    fn from(e: lumen_dicom::query::QueryError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed");
        }
        let status = self.status();
        let mut r = (
            status,
            axum::Json(json!({ "error": self.to_string(), "status": status.as_u16() })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"lumen\""),
            );
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("900"),
            );
        }
        r
    }
}
