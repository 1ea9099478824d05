//! Syslog: audit messages as RFC 5424 messages, and the connection to the audit record
//! repository over UDP (RFC 5426), TCP with octet-counting framing (RFC 6587) or TLS
//! (RFC 5425: the same framing inside TLS, the server's certificate checked against the
//! configured CA, optionally a client certificate for mutual TLS).
//!
//! The header follows IHE ATNA's Record Audit Event [ITI-20]: facility 10
//! (security/authorization), severity 5 (notice) for a success and 4 (warning) otherwise,
//! MSGID `IHE+RFC-3881`, no structured data, and the XML audit message as MSG, UTF-8 with a
//! byte order mark:
//!
//! ```text
//! <85>1 2026-12-02T17:03:04.123Z pacs01 lumen 4242 IHE+RFC-3881 - \u{FEFF}<?xml ...
//! ```
//!
//! This module opens sockets only to the configured repository address.

use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use lumen_model::{AuditEvent, AuditOutcome};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::message::{AuditSource, audit_message, event_time, format_time, outcome_indicator};

/// Facility 10: security/authorization messages (ITI-20).
const FACILITY_AUTHPRIV: u8 = 10;
/// The MSGID ITI-20 requires.
pub const MSGID: &str = "IHE+RFC-3881";
/// The APP-NAME unless configured.
pub const DEFAULT_APP_NAME: &str = "lumen";
/// The largest UDP payload over IPv4; bigger messages cannot go by UDP.
const MAX_UDP: usize = 65_507;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a new TLS connection is watched for a refusal by the server before use.
const TLS_SETTLE: Duration = Duration::from_secs(1);
/// How long TLS records waiting on an open connection are read to see whether they close it.
const TLS_PEEK: Duration = Duration::from_millis(200);

/// How to reach the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// RFC 5426: one datagram a message, no acknowledgement, no framing.
    Udp,
    /// RFC 6587 octet counting over plain TCP.
    Tcp,
    /// RFC 5425: octet counting over TLS.
    Tls,
}

/// The `[audit.syslog]` table of the configuration file.
///
/// ```toml
/// [audit.syslog]
/// address = "arr.hospital.example:6514"
/// transport = "tls"
/// ca = "/etc/lumen/arr-ca.pem"
/// client_cert = "/etc/lumen/lumen.pem"   # optional, for mutual TLS
/// client_key = "/etc/lumen/lumen.key"    # optional, with client_cert
/// ```
///
/// The repository must accept messages of a few KiB (IHE has long allowed audit messages of
/// up to 32 KiB; rsyslog's default `maxMessageSize` is 8 KiB, enough for most events).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// The repository, `host:port` (`[v6]:port` for an IPv6 literal).
    pub address: String,
    /// `udp`, `tcp` or `tls`.
    pub transport: Transport,
    /// PEM file of the CA certificates the repository's certificate must chain to (TLS,
    /// required there).
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM file of this node's certificate chain, for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM file of this node's private key, with `client_cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// The name the repository's certificate must carry; the host part of `address` by
    /// default.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The syslog HOSTNAME; the machine's host name by default.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The syslog APP-NAME; `lumen` by default.
    #[serde(default)]
    pub app_name: Option<String>,
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `address` is not `host:port`.
    #[error("audit.syslog.address {0:?} is not host:port")]
    Address(String),
    /// TLS without `ca`.
    #[error("audit.syslog: transport \"tls\" needs ca (a PEM file of the repository's CA)")]
    MissingCa,
    /// A TLS option with another transport.
    #[error("audit.syslog.{0} is only used with transport \"tls\"")]
    TlsOptionWithoutTls(&'static str),
    /// Only one of `client_cert` and `client_key`.
    #[error("audit.syslog: client_cert and client_key go together")]
    ClientCertWithoutKey,
    /// A file could not be read.
    #[error("audit.syslog.{field}: cannot read {}: {source}", path.display())]
    Read {
        /// The configuration key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM of the expected kind.
    #[error("audit.syslog.{field}: {}: {problem}", path.display())]
    Pem {
        /// The configuration key.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// `server_name` (or the address's host) is not a DNS name or IP address.
    #[error("audit.syslog.server_name {0:?} is not a DNS name or IP address")]
    ServerName(String),
    /// rustls refused the client certificate and key.
    #[error("audit.syslog: client certificate and key: {0}")]
    Tls(String),
    /// `hostname` or `app_name` is not what RFC 5424 allows.
    #[error("audit.syslog.{0} must be 1 to {1} printable ASCII characters without spaces")]
    HeaderField(&'static str, usize),
}

/// A failure to deliver one message; the forwarder reconnects and tries again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// Connecting, writing or the TLS handshake failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The repository did not answer in time.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// The repository closed the connection.
    #[error("the repository closed the connection")]
    Closed,
    /// The message is larger than a UDP datagram can carry.
    #[error("message of {0} bytes is too large for UDP")]
    TooLarge(usize),
}

/// The RFC 5424 header fields that do not change from message to message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// PROCID.
    pub procid: String,
}

impl Header {
    /// The header for this process: the given host name (else the machine's), the given
    /// APP-NAME (else `lumen`), and this process's id.
    pub fn new(hostname: Option<&str>, app_name: Option<&str>) -> Self {
        let hostname = hostname
            .map(str::to_owned)
            .or_else(machine_hostname)
            .unwrap_or_else(|| "-".to_owned());
        Header {
            hostname: header_field(&hostname, 255),
            app_name: header_field(app_name.unwrap_or(DEFAULT_APP_NAME), 48),
            procid: std::process::id().to_string(),
        }
    }
}

/// The machine's host name, from the kernel.
fn machine_hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// True when RFC 5424 allows `s` as a header field of at most `max` characters
/// (PRINTUSASCII, 33 to 126).
fn valid_header_field(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.bytes().all(|b| (33..=126).contains(&b))
}

/// `s` made a valid header field: other characters replaced by `_`, cut to `max`.
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if (33..=126).contains(&(c as u32)) {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if out.is_empty() { "-".to_owned() } else { out }
}

/// The syslog severity of an event: 5 (notice) for a success, 4 (warning) otherwise.
pub fn severity(event: &AuditEvent) -> u8 {
    if event.outcome == AuditOutcome::Success && outcome_indicator(event.action, event.outcome) == 0
    {
        5
    } else {
        4
    }
}

/// The RFC 5424 message (without transport framing) carrying the event's audit message.
pub fn syslog_message(event: &AuditEvent, source: &AuditSource, header: &Header) -> Vec<u8> {
    let pri = FACILITY_AUTHPRIV * 8 + severity(event);
    let timestamp = format_time(event_time(event));
    let xml = audit_message(event, source);
    let mut out = Vec::with_capacity(xml.len() + 128);
    out.extend_from_slice(
        format!(
            "<{pri}>1 {timestamp} {} {} {} {MSGID} - \u{FEFF}",
            header.hostname, header.app_name, header.procid
        )
        .as_bytes(),
    );
    out.extend_from_slice(xml.as_bytes());
    out
}

/// RFC 6587 octet counting: `LEN SP MSG`.
pub fn octet_counted(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    out.extend_from_slice(message.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(message);
    out
}

/// The host part of `host:port` and the port.
fn split_address(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    (!host.is_empty() && port != 0).then_some((host, port))
}

fn read_file(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        field,
        path: path.to_owned(),
        source,
    })
}

fn pem_error(field: &'static str, path: &Path, problem: impl ToString) -> ConfigError {
    ConfigError::Pem {
        field,
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

/// A checked configuration, ready to connect: the header, and for TLS the rustls client
/// configuration (CA and client certificate read once, at start).
#[derive(Clone)]
pub struct Sender {
    address: String,
    transport: Transport,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    header: Header,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("address", &self.address)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// Checks the configuration and reads its files.
    pub fn new(config: &SyslogConfig) -> Result<Self, ConfigError> {
        let (host, _) = split_address(&config.address)
            .ok_or_else(|| ConfigError::Address(config.address.clone()))?;
        if let Some(h) = &config.hostname
            && !valid_header_field(h, 255)
        {
            return Err(ConfigError::HeaderField("hostname", 255));
        }
        if let Some(a) = &config.app_name
            && !valid_header_field(a, 48)
        {
            return Err(ConfigError::HeaderField("app_name", 48));
        }
        let tls = if config.transport == Transport::Tls {
            Some(tls_connector(config, host)?)
        } else {
            for (field, set) in [
                ("ca", config.ca.is_some()),
                ("client_cert", config.client_cert.is_some()),
                ("client_key", config.client_key.is_some()),
                ("server_name", config.server_name.is_some()),
            ] {
                if set {
                    return Err(ConfigError::TlsOptionWithoutTls(field));
                }
            }
            None
        };
        Ok(Sender {
            address: config.address.clone(),
            transport: config.transport,
            tls,
            header: Header::new(config.hostname.as_deref(), config.app_name.as_deref()),
        })
    }

    /// The RFC 5424 header this sender writes.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The repository's address, as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Opens a connection to the repository (for TLS: with the handshake done).
    pub async fn connect(&self) -> Result<Connection, SendError> {
        match self.transport {
            Transport::Udp => {
                let addr = tokio::net::lookup_host(&self.address)
                    .await?
                    .next()
                    .ok_or_else(|| std::io::Error::other("the address resolves to nothing"))?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let socket = UdpSocket::bind(local).await?;
                socket.connect(addr).await?;
                Ok(Connection::Udp(socket))
            }
            Transport::Tcp | Transport::Tls => {
                let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
                    .await
                    .map_err(|_| SendError::Timeout("connecting"))??;
                tcp.set_nodelay(true)?;
                match &self.tls {
                    None => Ok(Connection::Tcp(tcp)),
                    Some((connector, name)) => {
                        let tls = tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            connector.connect(name.clone(), tcp),
                        )
                        .await
                        .map_err(|_| SendError::Timeout("in the TLS handshake"))??;
                        let mut tls = Box::new(tls);
                        // With TLS 1.3 the client's side of the handshake ends before the
                        // server has judged the client certificate; give a refusal a moment
                        // to arrive so that it is not mistaken for a delivered message.
                        if tokio::time::timeout(TLS_SETTLE, closed(tls.as_mut()))
                            .await
                            .is_ok()
                        {
                            return Err(SendError::Closed);
                        }
                        Ok(Connection::Tls(tls))
                    }
                }
            }
        }
    }

    /// The bytes to write for one event on this transport (framed for TCP and TLS).
    pub fn frame(&self, event: &AuditEvent, source: &AuditSource) -> Vec<u8> {
        let message = syslog_message(event, source, &self.header);
        match self.transport {
            Transport::Udp => message,
            Transport::Tcp | Transport::Tls => octet_counted(&message),
        }
    }
}

fn tls_connector(
    config: &SyslogConfig,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), ConfigError> {
    let ca_path = config.ca.as_deref().ok_or(ConfigError::MissingCa)?;
    let ca_pem = read_file("ca", ca_path)?;
    let mut roots = rustls::RootCertStore::empty();
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| pem_error("ca", ca_path, e))?;
        roots
            .add(cert)
            .map_err(|e| pem_error("ca", ca_path, format!("unusable certificate: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(pem_error("ca", ca_path, "no PEM certificate in the file"));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(e.to_string()))?
        .with_root_certificates(roots);
    let client = match (&config.client_cert, &config.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert_path), Some(key_path)) => {
            let cert_pem = read_file("client_cert", cert_path)?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pem_error("client_cert", cert_path, e))?;
            if chain.is_empty() {
                return Err(pem_error(
                    "client_cert",
                    cert_path,
                    "no PEM certificate in the file",
                ));
            }
            let key_pem = read_file("client_key", key_path)?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem)
                .map_err(|e| pem_error("client_key", key_path, e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| ConfigError::Tls(e.to_string()))?
        }
        _ => return Err(ConfigError::ClientCertWithoutKey),
    };
    let name = config.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| ConfigError::ServerName(name.to_owned()))?;
    Ok((TlsConnector::from(Arc::new(client)), server_name))
}

/// An open connection to the repository.
pub enum Connection {
    /// A connected UDP socket.
    Udp(UdpSocket),
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Udp(_) => "Connection::Udp",
            Connection::Tcp(_) => "Connection::Tcp",
            Connection::Tls(_) => "Connection::Tls",
        })
    }
}

impl Connection {
    /// Writes one framed message (from [`Sender::frame`]) completely, with a timeout.
    ///
    /// For TCP and TLS it first checks, on the socket itself, that the repository has not
    /// closed the connection (a repository never sends anything, so an end of stream means
    /// it is gone): without that check, the first write after the repository went away would
    /// succeed into the socket's buffer and be lost.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), SendError> {
        match self {
            Connection::Udp(socket) => {
                if frame.len() > MAX_UDP {
                    return Err(SendError::TooLarge(frame.len()));
                }
                socket.send(frame).await?;
                Ok(())
            }
            Connection::Tcp(stream) => {
                ensure_open_tcp(stream)?;
                write_all(stream, frame).await
            }
            Connection::Tls(stream) => {
                ensure_open_tls(stream.as_mut()).await?;
                write_all(stream.as_mut(), frame).await
            }
        }
    }
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> Result<(), SendError> {
    tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(frame).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| SendError::Timeout("writing"))??;
    Ok(())
}

/// What the kernel says about a TCP connection's receiving side, now.
enum Peek {
    /// Nothing to read and no end of stream: open.
    Idle,
    /// Bytes are waiting.
    Data,
}

/// Looks at the socket itself (a non-blocking `MSG_PEEK`), not at tokio's cached readiness,
/// which may not have seen the peer's FIN yet.
fn peek(stream: &TcpStream) -> Result<Peek, SendError> {
    let mut buf = [MaybeUninit::<u8>::uninit(); 1];
    match SockRef::from(stream).peek(&mut buf) {
        Ok(0) => Err(SendError::Closed),
        Ok(_) => Ok(Peek::Data),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(Peek::Idle),
        Err(e) => Err(SendError::Io(e)),
    }
}

/// Fails with [`SendError::Closed`] (or the socket's error) when the repository has closed
/// a plain TCP connection; discards anything it sent, since syslog defines no replies.
fn ensure_open_tcp(stream: &TcpStream) -> Result<(), SendError> {
    let sock = SockRef::from(stream);
    let mut buf = [MaybeUninit::<u8>::uninit(); 512];
    loop {
        match peek(stream)? {
            Peek::Idle => return Ok(()),
            Peek::Data => match sock.recv(&mut buf) {
                Ok(0) => return Err(SendError::Closed),
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(SendError::Io(e)),
            },
        }
    }
}

/// The same for TLS: the socket is peeked; when TLS records are waiting (a close_notify
/// alert, session tickets), rustls reads them, for a short while, to tell which.
async fn ensure_open_tls(stream: &mut TlsStream<TcpStream>) -> Result<(), SendError> {
    match peek(stream.get_ref().0)? {
        Peek::Idle => Ok(()),
        Peek::Data => match tokio::time::timeout(TLS_PEEK, closed(stream)).await {
            Ok(()) => Err(SendError::Closed),
            Err(_) => Ok(()),
        },
    }
}

/// Completes when the peer closes the connection (end of stream or an error); anything
/// the peer sends before is discarded.
async fn closed<S: AsyncRead + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lumen_model::{AuditAction, AuditChannel};

    fn event(outcome: AuditOutcome) -> AuditEvent {
        AuditEvent {
            seq: 1,
            time: "2026-12-02T17:03:04.123Z".into(),
            user: "dr-li".into(),
            role: String::new(),
            org: String::new(),
            action: AuditAction::View,
            outcome,
            channel: AuditChannel::Http,
            source: None,
            study_uid: Some("1.2.3".into()),
            series_uid: None,
            patient_id: None,
            patient_name: None,
            detail: String::new(),
        }
    }

    fn header() -> Header {
        Header {
            hostname: "pacs01".into(),
            app_name: "lumen".into(),
            procid: "4242".into(),
        }
    }

    #[test]
    fn header_is_rfc5424_with_atna_fields() {
        let msg = syslog_message(
            &event(AuditOutcome::Success),
            &AuditSource::new("LUMEN"),
            &header(),
        );
        let text = String::from_utf8(msg).unwrap_or_default();
        assert!(
            text.starts_with(
                "<85>1 2026-12-02T17:03:04.123Z pacs01 lumen 4242 IHE+RFC-3881 - \u{FEFF}<?xml"
            ),
            "{text}"
        );
        let denied = syslog_message(
            &event(AuditOutcome::Denied),
            &AuditSource::new("LUMEN"),
            &header(),
        );
        assert!(denied.starts_with(b"<84>1 "));
    }

    #[test]
    fn octet_counting_counts_bytes() {
        assert_eq!(octet_counted("é".as_bytes()), b"2 \xc3\xa9".to_vec());
    }

    #[test]
    fn addresses() {
        assert_eq!(split_address("arr:6514"), Some(("arr", 6514)));
        assert_eq!(split_address("[::1]:514"), Some(("::1", 514)));
        assert_eq!(split_address("arr"), None);
        assert_eq!(split_address("arr:x"), None);
        assert_eq!(split_address(":514"), None);
    }

    #[test]
    fn header_fields_are_sanitised() {
        assert_eq!(header_field("my host", 255), "my_host");
        assert_eq!(header_field("", 48), "-");
        assert_eq!(header_field(&"a".repeat(60), 48).len(), 48);
    }

    fn config(toml_text: &str) -> Result<SyslogConfig, toml::de::Error> {
        toml::from_str(toml_text)
    }

    #[test]
    fn config_errors_are_clear() {
        assert!(config("address = \"a:1\"\ntransport = \"udp\"\nbogus = 1").is_err());
        assert!(config("address = \"a:1\"\ntransport = \"smtp\"").is_err());
        let c = config("address = \"a:1\"\ntransport = \"tls\"").expect("parses");
        assert!(matches!(Sender::new(&c), Err(ConfigError::MissingCa)));
        let c = config("address = \"a:1\"\ntransport = \"tls\"\nca = \"/nonexistent/ca.pem\"")
            .expect("parses");
        let err = Sender::new(&c).expect_err("no CA file").to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let c = config("address = \"a:1\"\ntransport = \"tcp\"\nca = \"/x\"").expect("parses");
        assert!(matches!(
            Sender::new(&c),
            Err(ConfigError::TlsOptionWithoutTls("ca"))
        ));
        let c = config("address = \"nohost\"\ntransport = \"tcp\"").expect("parses");
        assert!(matches!(Sender::new(&c), Err(ConfigError::Address(_))));
        let c = config("address = \"a:1\"\ntransport = \"udp\"\napp_name = \"two words\"")
            .expect("parses");
        assert!(matches!(
            Sender::new(&c),
            Err(ConfigError::HeaderField("app_name", 48))
        ));
    }

    #[tokio::test]
    async fn udp_sends_one_datagram_per_message() {
        let server = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let port = server.local_addr().expect("addr").port();
        let c = config(&format!(
            "address = \"127.0.0.1:{port}\"\ntransport = \"udp\"\nhostname = \"pacs01\""
        ))
        .expect("parses");
        let sender = Sender::new(&c).expect("valid");
        let mut conn = sender.connect().await.expect("udp socket");
        let e = event(AuditOutcome::Success);
        let frame = sender.frame(&e, &AuditSource::new("LUMEN"));
        conn.send(&frame).await.expect("sent");
        let mut buf = vec![0u8; 70_000];
        let n = tokio::time::timeout(Duration::from_secs(30), server.recv(&mut buf))
            .await
            .expect("datagram within 30 s")
            .expect("recv");
        assert_eq!(&buf[..n], &frame[..]);
        assert!(buf[..n].starts_with(b"<85>1 2026-12-02T17:03:04.123Z pacs01 lumen "));
    }
}
