//! Media types: Accept negotiation and multipart/related bodies (PS3.18 8.7).
//!
//! axum's multipart extractor rejects multipart/related, so STOW-RS bodies are read with
//! `multer` given the boundary parsed here, and responses are written by [`Multipart`].

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use bytes::Bytes;
use futures::Stream;

/// One acceptable media range from an Accept header.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lower-cased (may be `*/*`).
    pub essence: String,
    /// The `type` parameter of multipart/related, lower-cased.
    pub related_type: Option<String>,
    /// The `transfer-syntax` parameter.
    pub transfer_syntax: Option<String>,
    /// The quality, 0..=1.
    pub q: f32,
}

/// Splits a header value on commas that are outside quoted strings.
fn split_unquoted(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Parses media-type parameters (`; a=b; c="d"`).
pub fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in s.split(';').skip(1) {
        if let Some((k, v)) = p.split_once('=') {
            out.push((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ));
        }
    }
    out
}

/// The acceptable media ranges of a request, best first (no Accept header = `*/*`).
pub fn accept(headers: &HeaderMap) -> Vec<MediaRange> {
    let mut ranges = Vec::new();
    for value in headers.get_all(header::ACCEPT) {
        let Ok(s) = value.to_str() else { continue };
        for part in split_unquoted(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let essence = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            let mut r = MediaRange {
                essence,
                related_type: None,
                transfer_syntax: None,
                q: 1.0,
            };
            for (k, v) in params(part) {
                match k.as_str() {
                    "type" => r.related_type = Some(v.to_ascii_lowercase()),
                    "transfer-syntax" => r.transfer_syntax = Some(v),
                    "q" => r.q = v.parse().unwrap_or(1.0),
                    _ => {}
                }
            }
            ranges.push(r);
        }
    }
    if ranges.is_empty() {
        ranges.push(MediaRange {
            essence: "*/*".into(),
            related_type: None,
            transfer_syntax: None,
            q: 1.0,
        });
    }
    ranges.sort_by(|a, b| b.q.total_cmp(&a.q));
    ranges.retain(|r| r.q > 0.0);
    ranges
}

impl MediaRange {
    /// Whether this range accepts `essence` (e.g. `image/jpeg`), honouring wildcards.
    pub fn accepts(&self, essence: &str) -> bool {
        if self.essence == "*/*" || self.essence == essence {
            return true;
        }
        match (self.essence.split_once('/'), essence.split_once('/')) {
            (Some((t, "*")), Some((t2, _))) => t == t2,
            _ => false,
        }
    }

    /// Whether this range accepts multipart/related parts of type `part` (e.g.
    /// `application/dicom`); a missing `type` parameter accepts the resource's default.
    pub fn accepts_related(&self, part: &str, is_default: bool) -> bool {
        if !self.accepts("multipart/related") {
            return false;
        }
        match &self.related_type {
            Some(t) => {
                t == part
                    || t == "*/*"
                    || t.ends_with("/*") && part.starts_with(t.trim_end_matches('*'))
            }
            None => is_default || self.essence == "*/*",
        }
    }
}

/// A multipart/related response body built from parts, streamed as they are produced.
pub struct Multipart {
    boundary: String,
}

impl Multipart {
    /// A new body with a fresh boundary.
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Multipart {
            boundary: format!("lumen-{t:x}-{}", N.fetch_add(1, Ordering::Relaxed)),
        }
    }

    /// The response Content-Type for parts of media type `part_type`.
    pub fn content_type(&self, part_type: &str) -> HeaderValue {
        HeaderValue::from_str(&format!(
            "multipart/related; type=\"{part_type}\"; boundary={}",
            self.boundary
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("multipart/related"))
    }

    /// The bytes that open a part with the given Content-Type (and optional Content-Location).
    pub fn part_head(&self, content_type: &str, location: Option<&str>) -> Bytes {
        let mut s = format!(
            "\r\n--{}\r\nContent-Type: {content_type}\r\n",
            self.boundary
        );
        if let Some(l) = location {
            s.push_str(&format!("Content-Location: {l}\r\n"));
        }
        s.push_str("\r\n");
        Bytes::from(s)
    }

    /// The closing delimiter.
    pub fn tail(&self) -> Bytes {
        Bytes::from(format!("\r\n--{}--\r\n", self.boundary))
    }

    /// A whole body from in-memory parts `(content type, bytes)`.
    pub fn body(&self, parts: Vec<(String, Bytes)>) -> Body {
        let mut chunks = Vec::with_capacity(parts.len() * 2 + 1);
        for (ct, data) in parts {
            chunks.push(Ok::<_, std::io::Error>(self.part_head(&ct, None)));
            chunks.push(Ok(data));
        }
        chunks.push(Ok(self.tail()));
        Body::from_stream(futures::stream::iter(chunks))
    }

    /// A body streamed from a stream of parts.
    pub fn stream<S>(self, parts: S) -> Body
    where
        S: Stream<Item = Result<(String, Bytes), std::io::Error>> + Send + 'static,
    {
        use futures::StreamExt;
        let head_boundary = self.boundary.clone();
        let tail = self.tail();
        let body = parts
            .map(move |r| {
                r.map(|(ct, data)| {
                    let head = Bytes::from(format!(
                        "\r\n--{head_boundary}\r\nContent-Type: {ct}\r\n\r\n"
                    ));
                    futures::stream::iter([Ok::<_, std::io::Error>(head), Ok(data)])
                })
            })
            .flat_map(|r| match r {
                Ok(s) => s.left_stream(),
                Err(e) => futures::stream::iter([Err(e)]).right_stream(),
            })
            .chain(futures::stream::iter([Ok(tail)]));
        Body::from_stream(body)
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dicomweb_accept() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*, application/json;q=0.5",
            ),
        );
        let a = accept(&h);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].essence, "multipart/related");
        assert_eq!(a[0].related_type.as_deref(), Some("application/dicom"));
        assert_eq!(a[0].transfer_syntax.as_deref(), Some("*"));
        assert!(a[0].accepts_related("application/dicom", true));
        assert!(!a[0].accepts_related("application/octet-stream", false));
        assert!(a[1].accepts("application/json"));
        assert_eq!(accept(&HeaderMap::new())[0].essence, "*/*");
    }
}
