//! The radiologist's web app, embedded in the binary at compile time (see `build.rs`):
//! `/` is the worklist page and `/ui/...` its scripts and styles. Every response carries an
//! ETag and `Cache-Control: no-cache`, so browsers revalidate cheaply (304) and never run a
//! stale script after an upgrade.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/ui_files.rs"));

/// The embedded file at `path` (relative to `ui/`): bytes, content type, ETag.
pub(crate) fn file(path: &str) -> Option<(&'static [u8], &'static str, &'static str)> {
    FILES
        .iter()
        .find(|(p, ..)| *p == path)
        .map(|(_, b, ct, etag)| (*b, *ct, *etag))
}

/// An embedded file as a response (for pages served at other paths: `/`, `/login`).
pub(crate) fn serve_file(path: &str, headers: &HeaderMap) -> Response {
    serve(path, headers)
}

/// `GET /ui/{*path}`: a script, style sheet or image of the app.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some((bytes, ct, etag)) = file(path) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let common = [
        (header::ETAG, HeaderValue::from_static(etag)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(ct)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_module_is_embedded_with_its_type() {
        for (name, ct) in [
            ("index.html", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("i18n.js", "text/javascript; charset=utf-8"),
            ("viewer.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
        ] {
            let (bytes, got, etag) = file(name).unwrap_or_else(|| panic!("{name} not embedded"));
            assert_eq!(got, ct, "{name}");
            assert!(!bytes.is_empty(), "{name}");
            assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
        }
        assert!(file("../Cargo.toml").is_none());
    }

    #[test]
    fn index_imports_only_embedded_modules() {
        // Every `/ui/...` path the page and its modules reference must be embedded.
        for (name, bytes, ..) in FILES {
            if !(name.ends_with(".js") || name.ends_with(".html")) {
                continue;
            }
            let text = std::str::from_utf8(bytes).expect("utf-8");
            for (i, _) in text.match_indices("/ui/") {
                let rest = &text[i + 4..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "._-/".contains(c)))
                    .unwrap_or(rest.len());
                let target = &rest[..end];
                if !target.is_empty() {
                    assert!(
                        file(target).is_some(),
                        "{name} references missing /ui/{target}"
                    );
                }
            }
            for (i, _) in text.match_indices("from './") {
                let rest = &text[i + 8..];
                let target = &rest[..rest.find('\'').unwrap_or(0)];
                assert!(file(target).is_some(), "{name} imports missing ./{target}");
            }
        }
    }
}
