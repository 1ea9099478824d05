//! The SCP over TLS (PS3.15 Annex B): DCMTK's `echoscu +tls` against a TLS listener, peer
//! authentication with client certificates, and the handshake timeout.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use lumen_dimse::tokio_rustls::TlsAcceptor;
use lumen_dimse::tokio_rustls::rustls;
use lumen_dimse::{Server, ServerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncReadExt;

/// PEM files of a test CA, a server certificate for 127.0.0.1 and a client certificate.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    server_cert: String,
    server_key: String,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "Lumen test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |cn: &str| {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost");
    let (client_cert, client_key) = leaf("TESTSCU");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    Pki {
        ca: write("ca.pem", &issuer.pem()),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
        server_cert,
        server_key,
        _dir: dir,
    }
}

fn acceptor(pki: &Pki, require_client_cert: bool) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = if require_client_cert {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&pki.ca).unwrap())
            .unwrap();
        builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap(),
        )
    } else {
        builder.with_no_client_auth()
    };
    let chain = vec![CertificateDer::from_pem_slice(pki.server_cert.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    TlsAcceptor::from(Arc::new(builder.with_single_cert(chain, key).unwrap()))
}

async fn start_tls(config: ServerConfig, acceptor: TlsAcceptor) -> std::net::SocketAddr {
    init_tracing();
    let handler = Arc::new(MemHandler::default());
    let server = Server::bind("127.0.0.1:0", config, handler)
        .await
        .unwrap()
        .with_tls(acceptor);
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run());
    addr
}

/// `echoscu` with TLS flags; whether it succeeded, and its output.
async fn echoscu(bin: &Path, addr: std::net::SocketAddr, tls: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(bin);
    cmd.args(tls)
        .args(["-aet", "TESTSCU", "-aec", "LUMEN", "-to", "10"])
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string());
    run(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_over_tls_with_and_without_peer_authentication() {
    let Some(bin) = dcmtk("echoscu") else { return };
    let pki = pki();
    let ca = pki.ca.to_str().unwrap();
    let (key, cert) = (
        pki.client_key.to_str().unwrap(),
        pki.client_cert.to_str().unwrap(),
    );

    // Server authentication only: an anonymous TLS client is served.
    let addr = start_tls(ServerConfig::default(), acceptor(&pki, false)).await;
    let (ok, out) = echoscu(&bin, addr, &["+tla", "+cf", ca]).await;
    assert!(ok, "echoscu +tla: {out}");
    // A plain client on the TLS port gets no association.
    let (ok, out) = echoscu(&bin, addr, &[]).await;
    assert!(!ok, "plain echoscu on the TLS port succeeded: {out}");

    // Peer authentication: a client certificate from the CA is required.
    let addr = start_tls(ServerConfig::default(), acceptor(&pki, true)).await;
    let (ok, out) = echoscu(&bin, addr, &["+tla", "+cf", ca]).await;
    assert!(!ok, "echoscu without a client certificate succeeded: {out}");
    let (ok, out) = echoscu(&bin, addr, &["+tls", key, cert, "-pw", "+cf", ca]).await;
    assert!(ok, "echoscu +tls with a client certificate: {out}");
}

/// A client that connects and never starts the handshake holds its association slot only
/// for the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_is_dropped_after_the_idle_timeout() {
    let pki = pki();
    let config = ServerConfig {
        max_associations: 1,
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let addr = start_tls(config, acceptor(&pki, false)).await;
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut buf))
        .await
        .expect("the server kept a silent client open")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server sent bytes to a client that sent none");
    assert!(started.elapsed() >= Duration::from_millis(900));
    // The slot is free again: a real client is served, not turned away as busy.
    let Some(bin) = dcmtk("echoscu") else { return };
    let (ok, out) = echoscu(&bin, addr, &["+tla", "+cf", pki.ca.to_str().unwrap()]).await;
    assert!(ok, "echoscu after the silent client: {out}");
}
