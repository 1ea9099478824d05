//! The HTTP front door: DICOMweb (QIDO-RS, WADO-RS, STOW-RS) under `/dicom-web`, Lumen's
//! JSON API under `/api` and the radiologist's web app (`/`, `/ui/...`, embedded from `ui/`).
//!
//! This crate only translates HTTP: the web app's API calls the use cases of `lumen-app`,
//! DICOMweb reads and writes the archive (`lumen-store`, `lumen-dicom`); it owns no data. [`router`] builds the routes over one cloneable [`AppState`].

pub mod actor;
mod api;
mod auth;
mod error;
mod export;
mod film;
mod ledger;
mod media;
mod patients;
mod qido;
mod report;
mod review;
mod shares;
mod stow;
mod ui;
mod wado;
mod worklist;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{delete, get, post, put};
use lumen_store::Store;

pub use error::ApiError;

/// Limits and settings of the HTTP API.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Largest STOW-RS request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Largest single object in a STOW-RS request, in bytes.
    pub max_object_bytes: u64,
    /// How many STOW-RS parts are parsed and written at once.
    pub stow_concurrency: usize,
    /// Origins allowed by CORS (`*` for any); empty disables CORS headers.
    pub cors_origins: Vec<String>,
    /// The URL clients reach this server at (`https://pacs.example.org`), for the URLs in
    /// responses; `None`: built from each request's Host header.
    pub public_url: Option<String>,
    /// The port the server listens on (added to Host headers that lack one).
    pub listen_port: Option<u16>,
    /// Mark cookies `Secure` and build URLs with `https` (the server is reached over HTTPS).
    pub secure_cookies: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            max_body_bytes: 8 << 30,
            max_object_bytes: 2 << 30,
            stow_concurrency: 4,
            cors_origins: Vec::new(),
            public_url: None,
            listen_port: None,
            secure_cookies: false,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The use cases (review, report...).
    pub app: lumen_app::App,
    /// The archive, for DICOMweb's own protocol work.
    pub store: Store,
    /// Settings.
    pub config: Arc<WebConfig>,
}

/// The DICOMweb base URL as the client sees it (`http://host:port/dicom-web`): see
/// [`public_origin`].
pub(crate) fn base_url(config: &WebConfig, headers: &HeaderMap) -> String {
    format!("{}/dicom-web", public_origin(config, headers))
}

/// This server's URL as the client sees it (`http://host:port`, no trailing slash): the
/// configured public URL, else built from the Host header. Some clients (dicomweb-client)
/// send a Host header without the port; the port we listen on is added then.
pub(crate) fn public_origin(config: &WebConfig, headers: &HeaderMap) -> String {
    if let Some(url) = &config.public_url {
        return url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("localhost");
    // Served over TLS (cookies are `Secure` then), or behind a proxy that says it is.
    let scheme = if config.secure_cookies {
        "https"
    } else {
        headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http")
    };
    let has_port = host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        && !host.ends_with(']');
    match config.listen_port {
        Some(port)
            if !has_port
                && ((scheme == "http" && port != 80) || (config.secure_cookies && port != 443)) =>
        {
            format!("{scheme}://{host}:{port}")
        }
        _ => format!("{scheme}://{host}"),
    }
}

/// Largest body of a JSON API request (a report's three sections are at most 64 KiB each).
pub const API_BODY_LIMIT: usize = 1 << 20;

/// All routes: `/health`, the web app at `/` and `/ui/`, the JSON API and DICOMweb under
/// `/dicom-web`.
pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_origins);
    let dicomweb = Router::new()
        .route("/studies", get(qido::studies).post(stow::store_any))
        .route("/series", get(qido::series))
        .route("/instances", get(qido::instances))
        .route(
            "/studies/{study}",
            get(wado::study).post(stow::store_in_study),
        )
        .route("/studies/{study}/metadata", get(wado::study_metadata))
        .route("/studies/{study}/rendered", get(wado::study_rendered))
        .route("/studies/{study}/thumbnail", get(wado::study_thumbnail))
        .route("/studies/{study}/series", get(qido::study_series))
        .route("/studies/{study}/instances", get(qido::study_instances))
        .route("/studies/{study}/series/{series}", get(wado::series))
        .route(
            "/studies/{study}/series/{series}/metadata",
            get(wado::series_metadata),
        )
        .route(
            "/studies/{study}/series/{series}/rendered",
            get(wado::series_rendered),
        )
        .route(
            "/studies/{study}/series/{series}/thumbnail",
            get(wado::series_thumbnail),
        )
        .route(
            "/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}",
            get(wado::instance),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/metadata",
            get(wado::instance_metadata),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/rendered",
            get(wado::instance_rendered),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/thumbnail",
            get(wado::instance_thumbnail),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}",
            get(wado::frames),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/rendered",
            get(wado::frames_rendered),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/frames/{frames}/thumbnail",
            get(wado::frames_thumbnail),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{sop}/bulkdata/{tag}",
            get(wado::bulkdata),
        );
    // The JSON API reads small bodies: capped, so that nobody (the login is public) can
    // make the server buffer an unbounded request. STOW-RS streams and has its own limits.
    let api = Router::new()
        .route("/api/auth/login", post(auth::login))
        .route("/api/auth/logout", post(auth::logout))
        .route("/api/auth/me", get(auth::me))
        .route("/api/auth/password", post(auth::password))
        .route("/api/users", get(auth::list_users).post(auth::create_user))
        .route("/api/users/{username}", put(auth::update_user))
        .route("/api/orgs", get(auth::list_orgs).post(auth::create_org))
        .route("/api/audit", get(auth::audit))
        .route(
            "/api/studies/{study}/ai",
            get(api::study_ai).post(api::requeue_ai),
        )
        // The radiologist's web app: worklist, review, report (issue 6).
        .route("/api/worklist", get(worklist::worklist))
        .route("/api/studies/{study}/review", get(review::review))
        .route("/api/studies/{study}/findings", post(review::add))
        .route("/api/studies/{study}/findings/{id}", put(review::correct))
        .route(
            "/api/studies/{study}/findings/{id}/accept",
            post(review::accept),
        )
        .route(
            "/api/studies/{study}/findings/{id}/reject",
            post(review::reject),
        )
        .route("/api/studies/{study}/seg-overlay", get(review::seg_overlay))
        .route(
            "/api/studies/{study}/report",
            get(report::get_report).put(report::put_report),
        )
        .route("/api/studies/{study}/report/sign", post(report::sign))
        .route(
            "/api/studies/{study}/report/addenda",
            post(report::addendum),
        )
        .route("/api/studies/{study}/report.pdf", get(report::report_pdf))
        .route("/api/studies/{study}/export", get(export::export))
        // Patient links (云胶片, issue 13).
        .route("/api/studies/{study}/patient-link", post(film::create_link))
        .route("/api/studies/{study}/patient-links", get(film::list_links))
        .route(
            "/api/studies/{study}/patient-copy",
            post(film::patient_copy),
        )
        .route("/api/patient-links/{id}", delete(film::revoke_link))
        .route("/api/ledger/entries/{index}/proof", get(ledger::proof))
        .route("/api/ledger/status", get(ledger::status))
        .route("/ledger/add-checkpoint", post(ledger::add_checkpoint))
        // Sharing with consortium members (issue 13).
        .route("/api/shares", get(shares::list).post(shares::create))
        .route("/api/studies/{study}/priors", get(patients::priors))
        .route("/api/studies/{study}/shared", get(patients::shared))
        .route(
            "/api/studies/{study}/consortium-patient",
            post(patients::link),
        )
        .route("/api/shares/{id}", delete(shares::revoke))
        .route("/consortium/shares", post(shares::notice))
        .route("/consortium/shares/{id}", get(shares::status))
        .route("/consortium/shares/{id}/revoke", post(shares::revoked))
        .layer(axum::extract::DefaultBodyLimit::max(API_BODY_LIMIT));
    // Node-to-node STOW-RS: signed over the whole body, read whole (a batch of instances)
    // once the headers passed (`shares::store` applies its own limit). Members read
    // nothing through this door.
    let consortium = Router::new()
        .route(
            "/consortium/studies/{study}",
            post(shares::store).get(shares::no_reads),
        )
        .route("/consortium/studies/{study}/{*rest}", get(shares::no_reads));
    let mut app = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/", get(auth::index))
        .route("/login", get(auth::login_page))
        .route("/ui/{*path}", get(ui::asset))
        // The published ledger: public, read-only (issue 12).
        .route("/ledger/checkpoint", get(ledger::checkpoint))
        .route("/ledger/tile/{*path}", get(ledger::tile))
        .merge(api)
        // The patient's viewer: public, authorised by the link's token alone; never
        // DICOMweb.
        .merge(film::router())
        .merge(consortium)
        .nest("/dicom-web", dicomweb)
        .with_state(state)
        .layer(axum::middleware::from_fn(track))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    app
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods(Any)
        .allow_headers(Any)
        .expose_headers(Any);
    Some(if origins.iter().any(|o| o == "*") {
        layer.allow_origin(Any)
    } else {
        let list: Vec<_> = origins.iter().filter_map(|o| o.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(list))
    })
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.store.ping().await?;
    Ok("ok")
}

/// Readiness for a load balancer or an orchestrator: 200 when the index answers and an
/// object can be written, else 503 (liveness is `/health`).
async fn ready(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<&'static str, ApiError> {
    state.app.ready().await?;
    Ok("ready")
}

/// Prometheus metrics in the text format. No login: they hold counts, durations and
/// states, never UIDs, names or IDs (restrict the path at a proxy where even the
/// volume of work is not to be seen).
async fn metrics_text(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let text = state.app.metrics_text().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Counts and times every request by method and route template (`/dicom-web/studies/{study}`:
/// never the UIDs of the path), and status class.
async fn track(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = method_label(req.method());
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    metrics::counter!(lumen_app::metrics::HTTP_REQUESTS,
        "method" => method, "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!(lumen_app::metrics::HTTP_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label from a fixed set (a client can send any token as a method).
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// The trace span of a request: method and path only. The query string is left out
/// because QIDO-RS and worklist queries carry patient names and IDs
/// (`?PatientName=...`, `?q=...`), which must not reach the log at any level; a patient
/// link's token, a secret in its path, is replaced by `…` (`/film/…/api/study`).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let path = film::redacted_path(req.uri().path());
    tracing::debug_span!("request", method = %req.method(), path = %path)
}

#[cfg(test)]
mod trace_tests {
    use super::*;

    #[test]
    fn request_spans_name_the_path_without_the_query() {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt;

        #[derive(Clone, Default)]
        struct Fields(Arc<Mutex<String>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Fields {
            fn on_new_span(
                &self,
                attrs: &tracing::span::Attributes<'_>,
                _: &tracing::span::Id,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                struct V<'a>(&'a mut String);
                impl tracing::field::Visit for V<'_> {
                    fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                        self.0.push_str(&format!("{}={:?} ", f.name(), v));
                    }
                }
                if let Ok(mut s) = self.0.lock() {
                    attrs.record(&mut V(&mut s));
                }
            }
        }
        let fields = Fields::default();
        let subscriber = tracing_subscriber::registry().with(fields.clone());
        tracing::subscriber::with_default(subscriber, || {
            let req = axum::http::Request::get(
                "/dicom-web/studies?PatientName=WANG%5EFANG&PatientID=P123",
            )
            .body(axum::body::Body::empty())
            .expect("request");
            let _span = request_span(&req);
        });
        let logged = fields.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(logged.contains("/dicom-web/studies"), "{logged}");
        // A patient link's token never reaches the log.
        let fields = Fields::default();
        let subscriber = tracing_subscriber::registry().with(fields.clone());
        tracing::subscriber::with_default(subscriber, || {
            let req = axum::http::Request::get(
                "/film/S3CRET-tok3n_abcdefghijklmnopqrstuvwxyz0123456/series/1.2/instances/1.3/rendered",
            )
            .body(axum::body::Body::empty())
            .expect("request");
            let _span = request_span(&req);
        });
        let film = fields.0.lock().map(|s| s.clone()).unwrap_or_default();
        assert!(
            film.contains("/film/…/series/1.2/instances/1.3/rendered"),
            "{film}"
        );
        assert!(!film.contains("S3CRET"), "{film}");
        assert!(
            !logged.contains("WANG") && !logged.contains("P123"),
            "{logged}"
        );
    }
}
