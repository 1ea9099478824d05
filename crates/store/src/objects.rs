//! Where the archive's objects live: files under the data directory (the default, see
//! [`blobs`](crate::blobs)) or an S3-compatible bucket, chosen by [`ObjectStorage`].
//!
//! In a bucket, an object is uploaded to its final key (the same relative key as the file
//! store's path) and the upload completes before the index commits, so the index never
//! lists an object that is not whole in the bucket. Objects above
//! [`MULTIPART_THRESHOLD`] go up as a multipart upload, in parts sliced from the received
//! bytes (never copied). A crash between the upload and the commit leaves a key the index
//! does not know: [`Bucket::sweep`] removes such keys once they are older than
//! [`ORPHAN_MIN_AGE`] ([`Store::sweep_orphans`], which `lumen serve` runs in the background
//! at its start and hourly: listing a large bucket would hold up every command's start).
//!
//! [`Store::sweep_orphans`]: crate::Store::sweep_orphans

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use crate::StoreError;
use crate::blobs::Blobs;

/// How old a key the index does not know must be before the orphan sweep deletes it.
///
/// A key is written before the index commits the instance that points at it: for that
/// short while it is unknown to the index but not an orphan. Other front ends may share the
/// bucket and be mid-upload (or mid-commit, behind a busy index) at the moment of a sweep,
/// and their clocks may differ from the bucket's, so only keys last written well over any
/// such window ago are taken for leftovers of a crash. An hour is far beyond a commit's
/// time and costs only an orphan's space for that long.
pub const ORPHAN_MIN_AGE: Duration = Duration::from_secs(3600);

/// Objects larger than this are uploaded in parts (multipart upload).
pub const MULTIPART_THRESHOLD: usize = 8 << 20;

/// The size of each part of a multipart upload (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 << 20;

/// Parts of one object uploaded at once.
const PART_CONCURRENCY: usize = 4;

/// The prefix of every object key (the file store's `objects/` directory).
const OBJECT_PREFIX: &str = "objects";

/// The prefix of the readiness probe's keys (outside the objects, so no sweep sees them).
const PROBE_PREFIX: &str = "lumen-ready";

/// How long the readiness probe may take before the bucket counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a store keeps its objects.
#[derive(Debug, Clone, Default)]
pub enum ObjectStorage {
    /// Files under the data directory (`objects/`), written through `tmp/`.
    #[default]
    Files,
    /// An S3-compatible bucket; nothing is written under `objects/` or `tmp/`.
    S3(S3Config),
}

/// A secret, such as a bucket's secret access key: `Debug` and `Serialize` (so any dump of
/// a configuration) show `<redacted>`, never the value; [`expose`](Self::expose) gives it
/// to the one place that uses it.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

/// An S3-compatible bucket. Settings left unset are taken from the standard AWS
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
/// `AWS_ENDPOINT`...). `Debug` never shows the secret.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// The endpoint URL of a non-AWS server (`https://s3.example.org`); addressed
    /// path-style. Plain `http://` is accepted only for a loopback address.
    pub endpoint: Option<String>,
    /// The region (its signing name; Garage's `s3_region`).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (never logged or shown).
    pub secret_access_key: Option<SecretString>,
    /// How old an unindexed key must be before the sweep deletes it ([`ORPHAN_MIN_AGE`];
    /// shorter only in tests).
    pub orphan_min_age: Duration,
}

impl S3Config {
    /// A bucket with every other setting from the environment.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3Config {
            bucket: bucket.into(),
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            orphan_min_age: ORPHAN_MIN_AGE,
        }
    }
}

/// The object backend of an open store.
#[derive(Debug, Clone)]
pub(crate) enum Objects {
    /// Files under the data directory.
    Files(Blobs),
    /// An S3-compatible bucket.
    S3(Bucket),
}

impl Objects {
    /// Where the object at the relative key `rel` is read from.
    pub(crate) fn locate(&self, rel: &str) -> Location {
        match self {
            Objects::Files(blobs) => Location::File(blobs.path(rel)),
            Objects::S3(bucket) => Location::Object(bucket.clone(), rel.to_string()),
        }
    }

    /// Removes a stored object (after the index stopped pointing at it), from a blocking
    /// thread. A missing object is not an error.
    pub(crate) fn remove_blocking(&self, rel: &str) -> Result<(), String> {
        match self {
            Objects::Files(blobs) => blobs.remove(rel).map_err(|e| e.to_string()),
            Objects::S3(bucket) => {
                let b = bucket.clone();
                let key = rel.to_string();
                bucket.wait(async move { b.delete(&key).await })
            }
        }
    }

    /// Removes stored objects (after the index stopped pointing at them), from async
    /// code; a failure is logged (the objects are unlisted: the sweep removes them).
    pub(crate) async fn remove_all(&self, rels: Vec<String>) {
        match self {
            Objects::Files(blobs) => {
                let blobs = blobs.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    for rel in rels {
                        if let Err(e) = blobs.remove(&rel) {
                            tracing::warn!(error = %e, "could not remove an object file");
                        }
                    }
                })
                .await;
            }
            Objects::S3(bucket) => {
                for rel in rels {
                    if let Err(e) = bucket.delete(&rel).await {
                        tracing::warn!(error = %e, "could not delete an object");
                    }
                }
            }
        }
    }
}

/// Where one stored object is.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A file.
    File(PathBuf),
    /// A key in a bucket.
    Object(Bucket, String),
}

/// An S3-compatible bucket holding the objects under `objects/`.
#[derive(Clone)]
pub(crate) struct Bucket {
    store: Arc<AmazonS3>,
    name: Arc<str>,
    /// The runtime the store was opened on: blocking callers run requests there.
    runtime: tokio::runtime::Handle,
    min_age: Duration,
    /// Failed requests so far (for `/metrics`).
    errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for Bucket {
    // By hand: the client's own Debug output includes its credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

/// Whether `url` is plain HTTP to a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
fn loopback_http(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Bucket {
    /// Connects to the bucket described by `cfg` (and the AWS environment variables for
    /// what it leaves unset). Sends no request: [`probe`](Self::probe) checks it.
    pub(crate) fn open(cfg: &S3Config) -> Result<Bucket, StoreError> {
        let bad = |m: String| StoreError::Objects(m);
        if cfg.bucket.is_empty() {
            return Err(bad("[storage] bucket is not set".into()));
        }
        // The HTTP client's TLS is rustls on ring, as elsewhere in Lumen; an already
        // installed process default is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&cfg.bucket)
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    // A whole object is read in one request: allow for large ones.
                    .with_timeout(Duration::from_secs(600)),
            );
        if let Some(endpoint) = &cfg.endpoint {
            let http = endpoint.starts_with("http://");
            if http && !loopback_http(endpoint) {
                return Err(bad(format!(
                    "[storage] endpoint {endpoint} is plain HTTP to another host: use https:// \
                     (http:// only to a loopback address)"
                )));
            }
            if !http && !endpoint.starts_with("https://") {
                return Err(bad(format!(
                    "[storage] endpoint {endpoint} must be an http(s):// URL"
                )));
            }
            // Path-style addressing (`endpoint/bucket/key`): custom servers seldom have
            // a DNS name per bucket.
            b = b
                .with_endpoint(endpoint)
                .with_virtual_hosted_style_request(false)
                .with_allow_http(http);
        }
        if let Some(region) = &cfg.region {
            b = b.with_region(region);
        }
        if let Some(id) = &cfg.access_key_id {
            b = b.with_access_key_id(id);
        }
        if let Some(secret) = &cfg.secret_access_key {
            b = b.with_secret_access_key(secret.expose());
        }
        let store = b
            .build()
            .map_err(|e| bad(format!("cannot use bucket {}: {e}", cfg.bucket)))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| bad("the S3 store must be opened inside a tokio runtime".into()))?;
        Ok(Bucket {
            store: Arc::new(store),
            name: cfg.bucket.as_str().into(),
            runtime,
            min_age: cfg.orphan_min_age,
            errors: Arc::default(),
        })
    }

    /// Failed requests to the bucket since the store was opened.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    fn counted<T>(&self, r: object_store::Result<T>) -> object_store::Result<T> {
        if r.is_err() {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Runs `fut` on the store's runtime and waits for it, from a blocking thread. (A
    /// channel rather than `Handle::block_on`, which panics when called on an async
    /// thread; a runtime that is shutting down yields an error.)
    pub(crate) fn wait<T: Send + 'static>(
        &self,
        fut: impl Future<Output = object_store::Result<T>> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let runtime = tokio::runtime::Handle::try_current().unwrap_or(self.runtime.clone());
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        match rx.recv() {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("the object storage request was cancelled".into()),
        }
    }

    /// Uploads `bytes` to `rel`, whole or not at all: a single PUT up to
    /// [`MULTIPART_THRESHOLD`], else a multipart upload of slices of `bytes` (no copy),
    /// aborted on failure. The object is visible only once complete.
    pub(crate) async fn put(&self, rel: &str, bytes: Bytes) -> object_store::Result<()> {
        let r = self.put_uncounted(rel, bytes).await;
        self.counted(r)
    }

    async fn put_uncounted(&self, rel: &str, mut bytes: Bytes) -> object_store::Result<()> {
        let key = Key::from(rel);
        if bytes.len() <= MULTIPART_THRESHOLD {
            self.store.put(&key, PutPayload::from_bytes(bytes)).await?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&key).await?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        while !bytes.is_empty() {
            if let Err(e) = w.wait_for_capacity(PART_CONCURRENCY).await {
                let _ = w.abort().await;
                return Err(e);
            }
            let part = bytes.split_to(bytes.len().min(PART_SIZE));
            w.put(part);
        }
        w.finish().await?;
        Ok(())
    }

    /// Reads the object at `rel` whole.
    pub(crate) async fn get(&self, rel: &str) -> object_store::Result<Bytes> {
        let key = Key::from(rel);
        let r = match self.store.get(&key).await {
            Ok(g) => g.bytes().await,
            Err(e) => Err(e),
        };
        self.counted(r)
    }

    /// Deletes the object at `rel`; a missing one is not an error.
    pub(crate) async fn delete(&self, rel: &str) -> object_store::Result<()> {
        match self.store.delete(&Key::from(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => self.counted(Err(e)),
        }
    }

    /// Deletes the keys under `objects/` that `known` (the index's keys) does not list
    /// and that were last written at least the orphan age ago; returns how many.
    pub(crate) async fn sweep(&self, known: &HashSet<String>) -> object_store::Result<usize> {
        let cutoff = crate::now_ms() - i64::try_from(self.min_age.as_millis()).unwrap_or(i64::MAX);
        let mut listing = self.store.list(Some(&Key::from(OBJECT_PREFIX)));
        let mut removed = 0;
        while let Some(meta) = self.counted(listing.try_next().await)? {
            let key = meta.location.as_ref();
            if known.contains(key) || meta.last_modified.timestamp_millis() > cutoff {
                continue;
            }
            self.delete(key).await?;
            removed += 1;
        }
        Ok(removed)
    }

    /// Checks the bucket takes, returns and deletes a small object, within
    /// [`PROBE_TIMEOUT`].
    pub(crate) async fn probe(&self) -> Result<(), StoreError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let rel = format!(
            "{PROBE_PREFIX}/{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let check = async {
            self.put(&rel, Bytes::from_static(b"ready")).await?;
            let back = self.get(&rel).await;
            self.delete(&rel).await?;
            back
        };
        match tokio::time::timeout(PROBE_TIMEOUT, check).await {
            Ok(Ok(b)) if b.as_ref() == b"ready" => Ok(()),
            Ok(Ok(_)) => Err(StoreError::Objects(format!(
                "bucket {} returned other bytes than were put",
                self.name
            ))),
            Ok(Err(e)) => Err(StoreError::Objects(format!("bucket {}: {e}", self.name))),
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::Objects(format!(
                    "bucket {} did not answer within {}s",
                    self.name,
                    PROBE_TIMEOUT.as_secs()
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_may_be_plain_http() {
        for ok in [
            "http://127.0.0.1:3900",
            "http://localhost:3900/",
            "http://[::1]:3900",
            "http://127.0.0.2",
        ] {
            assert!(loopback_http(ok), "{ok}");
        }
        for no in [
            "http://10.0.0.5:3900",
            "http://s3.example.org",
            "https://127.0.0.1:3900",
            "http://127.0.0.1.example.org",
        ] {
            assert!(!loopback_http(no), "{no}");
        }
    }

    #[test]
    fn the_secret_is_never_shown() {
        let mut c = S3Config::new("b");
        c.secret_access_key = Some(SecretString::new("very-secret-key"));
        c.access_key_id = Some("GKid".into());
        let shown = format!("{c:?} {:?}", ObjectStorage::S3(c.clone()));
        assert!(!shown.contains("very-secret-key"), "{shown}");
        assert!(shown.contains("GKid") && shown.contains("<redacted>"));
        let dumped = serde_json::to_string(&c.secret_access_key).expect("serialize");
        assert_eq!(dumped, "\"<redacted>\"");
    }

    #[tokio::test]
    async fn a_remote_plain_http_endpoint_is_refused() {
        let mut c = S3Config::new("b");
        c.endpoint = Some("http://10.1.2.3:3900".into());
        c.secret_access_key = Some(SecretString::new("very-secret-key"));
        let e = Bucket::open(&c).expect_err("refused").to_string();
        assert!(e.contains("https://"), "{e}");
        assert!(!e.contains("very-secret-key"));
        c.endpoint = Some("http://127.0.0.1:3900".into());
        c.region = Some("garage".into());
        c.access_key_id = Some("GK1".into());
        let b = Bucket::open(&c).expect("loopback http");
        assert!(!format!("{b:?}").contains("very-secret-key"));
    }
}
