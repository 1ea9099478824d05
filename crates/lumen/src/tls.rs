//! TLS for the two front doors: the certificate and key files (checked as ssh checks its
//! keys), the rustls server configurations of HTTPS and DICOM TLS (PS3.15 Annex B), and the
//! HTTPS accept loop that serves the axum router on each TLS stream.
//!
//! Errors name the file and the problem, never what the key file holds.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lumen_dimse::tokio_rustls::TlsAcceptor;
use lumen_dimse::tokio_rustls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tower::Service;

use crate::config::TlsConfig;

/// The acceptors of a TLS-enabled server, built from `[tls]`.
pub struct TlsSetup {
    /// HTTPS on the `--http` address (ALPN `h2` and `http/1.1`).
    pub http: TlsAcceptor,
    /// DICOM TLS on `[tls] dicom`, when that is set.
    pub dicom: Option<TlsAcceptor>,
    /// Whether DICOM TLS requires a client certificate (`[tls] client_ca`).
    pub dicom_client_auth: bool,
}

impl TlsSetup {
    /// Reads and checks the configured files; `None` without `[tls] cert` and `key`.
    pub fn from_config(tls: &TlsConfig) -> anyhow::Result<Option<TlsSetup>> {
        let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
            return Ok(None);
        };
        let chain = read_certificates("certificate", cert)?;
        let key_der = read_private_key(key)?;
        let http_verifier = tls
            .http_client_ca
            .as_deref()
            .map(|ca| client_verifier("http_client_ca", ca))
            .transpose()?;
        let mut http = server_config(http_verifier, &chain, &key_der, cert, key)?;
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let dicom = match &tls.dicom {
            None => None,
            Some(_) => {
                let verifier = tls
                    .client_ca
                    .as_deref()
                    .map(|ca| client_verifier("client_ca", ca))
                    .transpose()?;
                let config = server_config(verifier, &chain, &key_der, cert, key)?;
                Some(TlsAcceptor::from(Arc::new(config)))
            }
        };
        Ok(Some(TlsSetup {
            http: TlsAcceptor::from(Arc::new(http)),
            dicom,
            dicom_client_auth: tls.client_ca.is_some(),
        }))
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration for TLS 1.2 and 1.3 with the ring provider, checking that the
/// key belongs to the certificate.
fn server_config(
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS 1.2 and 1.3 are not available")?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(chain.to_vec(), key.clone_key())
        .map_err(|e| {
            anyhow::anyhow!(
                "TLS key {} does not fit certificate {}: {}",
                key_path.display(),
                cert_path.display(),
                e
            )
        })
}

/// The certificates of a PEM file (at least one).
fn read_certificates(what: &str, path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read TLS {what} {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("TLS {what} {} is not valid PEM: {e}", path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "TLS {what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    );
    Ok(certs)
}

/// The private key of a PEM file, which only its owner may read. The parser's own error is
/// not shown: it may quote the file.
fn read_private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    check_key_permissions(path)?;
    let pem =
        std::fs::read(path).with_context(|| format!("cannot read TLS key {}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        anyhow::anyhow!(
            "TLS key {} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        )
    })
}

/// Refuses a key file that group or others may read or write, as ssh does.
fn check_key_permissions(path: &Path) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read TLS key {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        anyhow::ensure!(
            mode & 0o077 == 0,
            "TLS key {} is accessible by group or others (mode {mode:03o}); \
             make it private with: chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    #[cfg(not(unix))]
    let _ = meta;
    Ok(())
}

/// A verifier requiring a client certificate issued by one of the CAs in `path`.
fn client_verifier(
    field: &str,
    path: &Path,
) -> anyhow::Result<Arc<dyn rustls::server::danger::ClientCertVerifier>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in read_certificates(&format!("[tls] {field}"), path)? {
        roots.add(cert).map_err(|e| {
            anyhow::anyhow!(
                "[tls] {field} {}: unusable CA certificate: {e}",
                path.display()
            )
        })?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| anyhow::anyhow!("[tls] {field} {}: {e}", path.display()))
}

/// Serves `app` over HTTPS on `listener` until `shutdown` completes, then lets the requests
/// in progress finish (at most 30 s). Each connection must finish its TLS handshake within
/// `handshake_timeout`; HTTP/1.1 and HTTP/2 (ALPN) are served. Handlers see the client's
/// address as `ConnectInfo<SocketAddr>`, as with the plain listener.
pub async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    handshake_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "HTTPS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "HTTPS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "no HTTPS handshake in time; connection closed");
                    return;
                }
            };
            let service = tower::service_fn(move |mut req: axum::extract::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                app.clone().call(req)
            });
            let conn = builder
                .serve_connection_with_upgrades(
                    TokioIo::new(tls),
                    TowerToHyperService::new(service),
                )
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("HTTPS connections still open after 30 s; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    fn identity(name: &str) -> (String, String) {
        let c = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (c.cert.pem(), c.signing_key.serialize_pem())
    }

    fn config(cert: &Path, key: &Path) -> TlsConfig {
        TlsConfig {
            cert: Some(cert.to_path_buf()),
            key: Some(key.to_path_buf()),
            dicom: Some("127.0.0.1:0".into()),
            ..TlsConfig::default()
        }
    }

    fn error(tls: &TlsConfig) -> String {
        match TlsSetup::from_config(tls) {
            Ok(_) => panic!("accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn good_files_give_both_acceptors() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = identity("localhost");
        let c = write(dir.path(), "cert.pem", &cert, 0o644);
        let k = write(dir.path(), "key.pem", &key, 0o600);
        let mut tls = config(&c, &k);
        tls.client_ca = Some(c.clone());
        let setup = TlsSetup::from_config(&tls).unwrap().unwrap();
        assert!(setup.dicom.is_some() && setup.dicom_client_auth);
        assert!(
            TlsSetup::from_config(&TlsConfig::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn key_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = identity("localhost");
        let c = write(dir.path(), "cert.pem", &cert, 0o644);
        let k = write(dir.path(), "key.pem", &key, 0o640);
        let e = error(&config(&c, &k));
        assert!(e.contains("key.pem") && e.contains("chmod 600"), "{e}");
        assert!(!e.contains("PRIVATE KEY"), "{e}");
    }

    #[test]
    fn mismatched_malformed_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = identity("localhost");
        let (_, other_key) = identity("elsewhere");
        let c = write(dir.path(), "cert.pem", &cert, 0o644);
        let k = write(dir.path(), "other-key.pem", &other_key, 0o600);
        let e = error(&config(&c, &k));
        assert!(
            e.contains("does not fit") && e.contains("other-key.pem"),
            "{e}"
        );

        let garbage = write(dir.path(), "garbage.pem", "not a key\n", 0o600);
        let e = error(&config(&c, &garbage));
        assert!(
            e.contains("garbage.pem") && e.contains("no usable PEM"),
            "{e}"
        );
        let e = error(&config(&garbage, &k));
        assert!(
            e.contains("certificate") && e.contains("garbage.pem"),
            "{e}"
        );

        let missing = dir.path().join("missing.pem");
        let e = error(&config(&c, &missing));
        assert!(e.contains("missing.pem"), "{e}");
        let e = error(&config(&missing, &k));
        assert!(e.contains("missing.pem"), "{e}");
    }
}
