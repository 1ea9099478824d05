//! Settings of `lumen serve`: defaults, then a TOML file, then `LUMEN_*` variables, then flags.

use std::path::PathBuf;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use lumen_store::ConflictPolicy;
use serde::{Deserialize, Serialize};

/// Everything `lumen serve` can be told.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Data directory (SQLite index and object files).
    pub data: PathBuf,
    /// The index database: unset for the SQLite index in the data directory, or
    /// `postgres://USER:PASS@HOST:PORT/DB` (the object files stay in the data directory).
    pub database: Option<String>,
    /// HTTP listen address (DICOMweb under /dicom-web).
    pub http: String,
    /// DICOM listen address.
    pub dicom: String,
    /// Our AE title.
    pub aet: String,
    /// Accept associations whatever AE title the caller addresses.
    pub accept_any_called_aet: bool,
    /// What to do with a different object under a stored SOP Instance UID.
    pub on_conflict: ConflictPolicy,
    /// Accept private (non-standard) storage SOP classes.
    pub accept_unknown_sop_classes: bool,
    /// Most concurrent DICOM associations.
    pub max_associations: usize,
    /// Largest P-DATA PDU we accept, in bytes.
    pub max_pdu_length: u32,
    /// Seconds a DICOM association may stay silent before it is aborted.
    pub dimse_timeout_secs: u64,
    /// Largest single object, in bytes (C-STORE and STOW-RS).
    pub max_object_bytes: u64,
    /// Largest STOW-RS request, in bytes.
    pub max_request_bytes: u64,
    /// Origins allowed by CORS (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// The URL clients reach the HTTP server at (`https://pacs.example.org`), used in the
    /// URLs of responses; unset: taken from each request's Host header.
    pub public_url: Option<String>,
    /// Known remote AEs, each `AET=HOST:PORT`: allowed to query and retrieve, C-MOVE
    /// destinations, routing targets. `--peer` flags add to this list.
    pub peers: Vec<String>,
    /// Also require a known peer to call from an address of its host.
    pub check_peer_address: bool,
    /// Who may use each DICOM service.
    pub access: AccessConfig,
    /// When and how the AI reads arriving series (`[ai]` table).
    pub ai: lumen_app::ai::AiConfig,
    /// Routing rules (`[[route]]` tables): arriving instances forwarded to peers.
    pub route: Vec<lumen_app::routing::RouteRule>,
    /// The radiologist's web app (`[web]` table).
    pub web: WebAppConfig,
    /// The node's own organisation (its id; its name is `[web] institution`): users
    /// created without `--org`, studies from unmapped AE titles and imports without
    /// `--org` belong to it.
    pub org: String,
    /// AE titles of other organisations (`[[ae]]` tables: `title`, `org`); a C-STORE from
    /// such a title files its studies under that organisation, and its C-FIND, C-GET and
    /// C-MOVE see only that organisation's studies.
    pub ae: Vec<AeOrg>,
    /// Sessions (`[auth]` table).
    pub auth: AuthConfig,
    /// The audit trail (`[audit]` table).
    pub audit: AuditConfig,
    /// TLS for HTTP and DICOM (`[tls]` table).
    pub tls: TlsConfig,
    /// The tamper-evident ledger (`[ledger]` table).
    pub ledger: LedgerConfig,
    /// This node in a consortium (`[node]` table: `id`, `name`).
    pub node: NodeConfig,
    /// The consortium's members (`[[consortium.member]]` tables).
    pub consortium: ConsortiumConfig,
    /// Sharing by rule (`[[share.rule]]` tables).
    pub share: ShareConfig,
    /// Where objects are stored (`[storage]` table): files under `data` or an
    /// S3-compatible bucket.
    pub storage: StorageConfig,
}

/// The kind of object storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Files under the data directory (the default).
    #[default]
    Files,
    /// An S3-compatible bucket.
    S3,
}

/// Object storage settings (`[storage]` table). With `kind = "s3"`, settings left unset
/// come from the standard AWS environment variables (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT`). `Debug` hides the secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `files` or `s3`.
    pub kind: StorageKind,
    /// The bucket (required with `s3`).
    pub bucket: Option<String>,
    /// The endpoint URL of a non-AWS server (`https://s3.example.org`; `http://` only to a
    /// loopback address); addressed path-style.
    pub endpoint: Option<String>,
    /// The region (for Garage, its `s3_region`).
    pub region: Option<String>,
    /// The access key id.
    pub access_key_id: Option<String>,
    /// The secret access key (shown as `<redacted>` by `Debug` and any dump).
    pub secret_access_key: Option<lumen_store::SecretString>,
    /// Seconds an upload the index never learned of is left before the sweep deletes it
    /// (default 3600; see `lumen_store::ORPHAN_MIN_AGE`). Shorter only for tests.
    pub orphan_min_age_s: Option<u64>,
}

impl StorageConfig {
    /// The store's object storage for these settings (checked by [`Config::load`]).
    pub fn object_storage(&self) -> lumen_store::ObjectStorage {
        match self.kind {
            StorageKind::Files => lumen_store::ObjectStorage::Files,
            StorageKind::S3 => {
                let mut s3 = lumen_store::S3Config::new(self.bucket.clone().unwrap_or_default());
                s3.endpoint = self.endpoint.clone();
                s3.region = self.region.clone();
                s3.access_key_id = self.access_key_id.clone();
                s3.secret_access_key = self.secret_access_key.clone();
                if let Some(age) = self.orphan_min_age_s {
                    s3.orphan_min_age = Duration::from_secs(age);
                }
                lumen_store::ObjectStorage::S3(s3)
            }
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        match self.kind {
            StorageKind::S3 => anyhow::ensure!(
                self.bucket.as_ref().is_some_and(|b| !b.is_empty()),
                "[storage] kind = \"s3\" needs a bucket"
            ),
            StorageKind::Files => anyhow::ensure!(
                self.bucket.is_none()
                    && self.endpoint.is_none()
                    && self.region.is_none()
                    && self.access_key_id.is_none()
                    && self.secret_access_key.is_none()
                    && self.orphan_min_age_s.is_none(),
                "[storage] bucket, endpoint, region, credentials and orphan_min_age_s apply to \
                 kind = \"s3\" only"
            ),
        }
        Ok(())
    }
}

/// Sharing settings (`[share]` table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShareConfig {
    /// Rules that share arriving studies (`modality`, `calling_ae`, `to`, `purpose`,
    /// `consent`).
    pub rule: Vec<lumen_app::share::ShareRule>,
}

/// This node's identity in a consortium (`[node]`); its key is the ledger's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's id (the `keyid` of its signed requests); unset: in no consortium.
    pub id: Option<String>,
    /// Its name, shown to the other members (default `[web] institution`).
    pub name: Option<String>,
}

/// The consortium (`[consortium]` table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsortiumConfig {
    /// The members (`[[consortium.member]]`); an entry for this node itself is ignored.
    pub member: Vec<MemberConfig>,
    /// CA certificates (PEM) trusted for the members' HTTPS URLs, besides the public
    /// roots (a consortium's private CA).
    pub ca: Option<PathBuf>,
    /// How this node's own patients join consortium patients arriving in shares: `none`
    /// (only a user's explicit link, the default) or `demographics` (identical name, birth
    /// date and sex, when exactly one patient here matches).
    pub patient_match: lumen_app::patients::PatientMatch,
}

/// A consortium member (`[[consortium.member]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// Its node id.
    pub id: String,
    /// Its name (the hospital's; default: the id).
    pub name: Option<String>,
    /// Its HTTP base URL (`https://pacs.hospital-b.example`).
    pub url: String,
    /// Its verifier key (`lumen ledger key` on that node).
    pub key: String,
    /// Its DICOM address, `AET@HOST:PORT`.
    pub dicom: Option<String>,
}

/// The ledger's settings (`[ledger]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// The log's origin line and key name, a schema-less URL (default
    /// `lumen.local/<org>`); used when the key is created at the first start.
    pub origin: Option<String>,
    /// The logs this node witnesses (`{ url, key }`: the log's URL prefix and verifier key);
    /// they send their checkpoints to this node's `POST /ledger/add-checkpoint`.
    pub witness_of: Vec<LedgerPeer>,
    /// The witnesses this node's log asks to cosign each checkpoint (`{ url, key }`: the
    /// witness's URL prefix, e.g. `https://node-b/ledger`, and its cosignature key).
    pub witnesses: Vec<LedgerPeer>,
    /// How many of `witnesses` must cosign for a checkpoint to be final.
    pub quorum: usize,
    /// The age in seconds past which the latest checkpoint is flagged as not fresh (a
    /// warning in the log, `"fresh": false` in `GET /api/ledger/status`); the node renews
    /// its checkpoint and the witnesses' cosignatures after half of it. Default 300.
    pub max_checkpoint_age_s: u64,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            origin: None,
            witness_of: Vec::new(),
            witnesses: Vec::new(),
            quorum: 0,
            max_checkpoint_age_s: 300,
        }
    }
}

/// Another node's ledger endpoint and key (`[[ledger.witness_of]]`, `[[ledger.witnesses]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerPeer {
    /// The URL prefix (`https://node/ledger`).
    pub url: String,
    /// The verifier key (`name+keyid+base64`).
    pub key: String,
}

/// TLS settings (`[tls]` table). With `cert` and `key`, the HTTP address serves HTTPS only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The server's certificate chain (PEM, leaf first); `--tls-cert`.
    pub cert: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1), readable by its owner only; `--tls-key`.
    pub key: Option<PathBuf>,
    /// Listen address of DICOM over TLS (PS3.15 Annex B), e.g. `0.0.0.0:2762`; unset: no
    /// DICOM TLS listener; `--dicom-tls`.
    pub dicom: Option<String>,
    /// CA certificates (PEM) whose client certificates DICOM TLS accepts; when set, DICOM
    /// TLS clients must present one (peer authentication).
    pub client_ca: Option<PathBuf>,
    /// CA certificates (PEM) whose client certificates HTTPS accepts; when set, HTTPS
    /// clients must present one (besides signing in).
    pub http_client_ca: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether the server has a certificate and key (HTTPS, and DICOM TLS if configured).
    pub fn enabled(&self) -> bool {
        self.cert.is_some() && self.key.is_some()
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.cert.is_some() == self.key.is_some(),
            "[tls] needs both cert and key (--tls-cert and --tls-key)"
        );
        if !self.enabled() {
            for (set, what) in [
                (self.dicom.is_some(), "dicom (--dicom-tls)"),
                (self.client_ca.is_some(), "client_ca"),
                (self.http_client_ca.is_some(), "http_client_ca"),
            ] {
                anyhow::ensure!(!set, "[tls] {what} needs a certificate and key (cert, key)");
            }
        }
        anyhow::ensure!(
            self.client_ca.is_none() || self.dicom.is_some(),
            "[tls] client_ca applies to DICOM TLS: set [tls] dicom (--dicom-tls) too"
        );
        Ok(())
    }
}

/// An AE title and the organisation it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeOrg {
    /// The calling AE title.
    pub title: String,
    /// The organisation's id (created at start if absent).
    pub org: String,
}

/// Session settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Hours a login (its cookie and token) lasts.
    pub session_hours: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { session_hours: 12 }
    }
}

/// Audit trail settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Days entries are kept (at least 183: six months, 网络安全法 Art. 21).
    pub retention_days: u32,
    /// The hospital's audit record repository (`[audit.syslog]`): every entry is also sent
    /// there as a DICOM audit message over syslog (UDP, TCP, or TLS per RFC 5425).
    pub syslog: Option<lumen_audit::SyslogConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention_days: 183,
            syslog: None,
        }
    }
}

/// The web app's settings: what reports show.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebAppConfig {
    /// Institution name printed on reports and written as Verifying Organization.
    pub institution: String,
    /// A TrueType/OpenType font (or collection) that shows Chinese, for report PDFs; unset:
    /// the first of Debian's CJK fonts found (fonts-noto-cjk, fonts-droid-fallback...).
    pub report_font: Option<PathBuf>,
}

impl Default for WebAppConfig {
    fn default() -> Self {
        WebAppConfig {
            institution: "Lumen".into(),
            report_font: None,
        }
    }
}

/// Who may use a DICOM service: `any` caller, only declared `peers`, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessRule {
    /// Any calling AE title.
    Any,
    /// Only the AE titles in `peers`.
    Peers,
    /// The service is off.
    None,
}

/// Access per DICOM service (defaults as Orthanc ships: echo and store from anyone,
/// query and retrieve from declared peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// C-ECHO.
    pub echo: AccessRule,
    /// C-STORE.
    pub store: AccessRule,
    /// C-FIND.
    pub find: AccessRule,
    /// C-MOVE.
    #[serde(rename = "move")]
    pub move_: AccessRule,
    /// C-GET.
    pub get: AccessRule,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            echo: AccessRule::Any,
            store: AccessRule::Any,
            find: AccessRule::Peers,
            move_: AccessRule::Peers,
            get: AccessRule::Peers,
        }
    }
}

/// A declared remote AE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAe {
    /// AE title.
    pub aet: String,
    /// Host name or address.
    pub host: String,
    /// DICOM port.
    pub port: u16,
}

impl std::str::FromStr for PeerAe {
    type Err = anyhow::Error;

    /// Parses `AET=HOST:PORT` (`AET=[v6addr]:PORT` for IPv6).
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let (aet, addr) = s
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("peer '{s}' is not AET=HOST:PORT"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("peer '{s}' is not AET=HOST:PORT"))?;
        let aet = aet.trim();
        check_aet(aet)?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        anyhow::ensure!(!host.is_empty(), "peer '{s}' has no host");
        let port = port
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("peer '{s}' has an invalid port"))?;
        Ok(PeerAe {
            aet: aet.to_string(),
            host: host.to_string(),
            port,
        })
    }
}

fn check_aet(aet: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !aet.is_empty()
            && aet.len() <= 16
            && aet.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
            && !aet.contains('\\'),
        "AE title '{aet}' must be 1 to 16 printable ASCII characters"
    );
    Ok(())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./lumen-data"),
            database: None,
            http: "127.0.0.1:8080".into(),
            dicom: "127.0.0.1:11112".into(),
            aet: "LUMEN".into(),
            accept_any_called_aet: false,
            on_conflict: ConflictPolicy::Reject,
            accept_unknown_sop_classes: false,
            max_associations: 32,
            max_pdu_length: 256 * 1024,
            dimse_timeout_secs: 60,
            max_object_bytes: 2 << 30,
            max_request_bytes: 16 << 30,
            cors_origins: Vec::new(),
            public_url: None,
            peers: Vec::new(),
            check_peer_address: false,
            access: AccessConfig::default(),
            ai: lumen_app::ai::AiConfig::default(),
            route: Vec::new(),
            web: WebAppConfig::default(),
            org: "local".into(),
            ae: Vec::new(),
            auth: AuthConfig::default(),
            audit: AuditConfig::default(),
            tls: TlsConfig::default(),
            ledger: LedgerConfig::default(),
            node: NodeConfig::default(),
            consortium: ConsortiumConfig::default(),
            share: ShareConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

/// Command-line overrides (only the flags that were given).
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dicom: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<ConflictPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors_origins: Option<Vec<String>>,
    /// `--peer` flags: added to the configured peers.
    #[serde(skip)]
    pub extra_peers: Vec<String>,
    /// `--tls-cert`, `--tls-key`, `--dicom-tls`: merged into `[tls]`.
    #[serde(skip_serializing_if = "TlsOverrides::is_empty")]
    pub tls: TlsOverrides,
}

/// The `[tls]` flags that were given.
#[derive(Debug, Default, Serialize)]
pub struct TlsOverrides {
    /// `--tls-cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// `--tls-key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// `--dicom-tls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dicom: Option<String>,
}

impl TlsOverrides {
    fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.dicom.is_none()
    }
}

/// The keys that `LUMEN_*` variables may set (other `LUMEN_*` variables, such as
/// `LUMEN_LOG`, belong to other parts of the program or to the tests).
const KEYS: &[&str] = &[
    "data",
    "database",
    "http",
    "dicom",
    "aet",
    "org",
    "accept_any_called_aet",
    "on_conflict",
    "accept_unknown_sop_classes",
    "max_associations",
    "max_pdu_length",
    "dimse_timeout_secs",
    "max_object_bytes",
    "max_request_bytes",
    "cors_origins",
    "public_url",
    "peers",
    "check_peer_address",
    "access",
    "ai",
    "route",
    "web",
    "tls",
    "storage",
];

impl Config {
    /// Loads the layered configuration. `file` is read if given (it must exist), else
    /// `./lumen.toml` if present.
    pub fn load(file: Option<&PathBuf>, overrides: Overrides) -> anyhow::Result<Self> {
        let overrides_peers = overrides.extra_peers.clone();
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                anyhow::ensure!(f.exists(), "config file {} does not exist", f.display());
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("lumen.toml")),
        }
        fig = fig
            .merge(Env::prefixed("LUMEN_").only(KEYS))
            .merge(Serialized::defaults(overrides));
        let extra_peers = overrides_peers;
        let mut cfg: Config = fig.extract()?;
        anyhow::ensure!(
            !cfg.aet.is_empty()
                && cfg.aet.len() <= 16
                && cfg.aet.bytes().all(|b| b.is_ascii_graphic() || b == b' '),
            "AE title must be 1 to 16 printable ASCII characters"
        );
        cfg.peers.extend(extra_peers);
        let peers = cfg.peer_list()?;
        for (i, p) in peers.iter().enumerate() {
            anyhow::ensure!(
                !peers[..i].iter().any(|q| q.aet == p.aet),
                "peer AE title {} declared twice",
                p.aet
            );
        }
        cfg.tls.check()?;
        cfg.storage.check()?;
        anyhow::ensure!(
            cfg.ledger.quorum <= cfg.ledger.witnesses.len(),
            "[ledger] quorum {} exceeds the {} witnesses",
            cfg.ledger.quorum,
            cfg.ledger.witnesses.len()
        );
        anyhow::ensure!(
            cfg.ledger.max_checkpoint_age_s >= 10,
            "[ledger] max_checkpoint_age_s must be at least 10 seconds"
        );
        anyhow::ensure!(
            cfg.audit.retention_days >= 183,
            "[audit] retention_days must be at least 183 (six months)"
        );
        anyhow::ensure!(
            (1..=24 * 30).contains(&cfg.auth.session_hours),
            "[auth] session_hours must be between 1 and 720"
        );
        for a in &cfg.ae {
            check_aet(&a.title)?;
            anyhow::ensure!(
                !a.org.is_empty()
                    && a.org.len() <= 64
                    && a.org
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
                "[[ae]] org '{}' must be 1 to 64 letters, digits, '.', '_' or '-'",
                a.org
            );
        }
        let consortium = cfg.consortium_members()?;
        for r in &cfg.share.rule {
            anyhow::ensure!(
                consortium
                    .as_ref()
                    .is_some_and(|c| c.member(&r.to).is_some()),
                "[[share.rule]] to = \"{}\" is not a consortium member",
                r.to
            );
            anyhow::ensure!(
                lumen_share::wire::ConsentBasis::parse(&r.consent).is_some(),
                "[[share.rule]] consent must be recorded-at-registration, consent or emergency"
            );
            anyhow::ensure!(
                !r.purpose.trim().is_empty() && (r.modality.is_some() || r.calling_ae.is_some()),
                "[[share.rule]] needs a purpose and a modality or calling_ae"
            );
        }
        for r in &cfg.route {
            anyhow::ensure!(
                peers.iter().any(|p| p.aet == r.destination),
                "route destination {} is not a declared peer",
                r.destination
            );
        }
        Ok(cfg)
    }

    /// The declared peers, parsed.
    pub fn peer_list(&self) -> anyhow::Result<Vec<PeerAe>> {
        self.peers.iter().map(|p| p.parse()).collect()
    }

    /// The peers as routing destinations.
    pub fn destinations(&self) -> anyhow::Result<Vec<lumen_app::routing::Destination>> {
        Ok(self
            .peer_list()?
            .into_iter()
            .map(|p| lumen_app::routing::Destination {
                aet: p.aet,
                host: p.host,
                port: p.port,
            })
            .collect())
    }

    /// This node's consortium (`None` without `[node] id`).
    pub fn consortium_members(&self) -> anyhow::Result<Option<lumen_share::Consortium>> {
        let Some(id) = &self.node.id else {
            anyhow::ensure!(
                self.consortium.member.is_empty(),
                "[[consortium.member]] needs this node's id ([node] id)"
            );
            return Ok(None);
        };
        let members = self
            .consortium
            .member
            .iter()
            .map(|m| {
                lumen_share::Member::new(
                    &m.id,
                    m.name.as_deref(),
                    &m.url,
                    m.dicom.as_deref(),
                    &m.key,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let name = self
            .node
            .name
            .clone()
            .unwrap_or_else(|| self.web.institution.clone());
        Ok(Some(lumen_share::Consortium::new(id, &name, members)?))
    }

    /// The router the store asks for every new instance (`None` without `[[route]]` rules).
    pub fn router(&self) -> Option<std::sync::Arc<dyn lumen_store::Router>> {
        lumen_app::routing::RouteRules::router(&self.route)
    }
}

impl Config {
    /// How the store is opened for this configuration (data directory, conflicts, routing,
    /// the node's organisation, object storage).
    pub fn store_config(&self) -> lumen_store::StoreConfig {
        lumen_store::StoreConfig {
            data_dir: self.data.clone(),
            on_conflict: self.on_conflict,
            accept_unknown_sop_classes: self.accept_unknown_sop_classes,
            ai_modalities: self.ai.modalities.clone(),
            router: self.router(),
            default_org: self.org.clone(),
            default_org_name: self.web.institution.clone(),
            database: self.database.clone(),
            storage: self.storage.object_storage(),
        }
    }

    /// The ledger's origin (and key name) for a key created now.
    pub fn ledger_origin(&self) -> String {
        self.ledger
            .origin
            .clone()
            .unwrap_or_else(|| format!("lumen.local/{}", self.org))
    }

    /// The name of this node's witness key (for a key created now).
    pub fn ledger_witness_name(&self) -> String {
        format!("{}/witness", self.ledger_origin())
    }

    /// The use cases' settings for this configuration.
    pub fn app_settings(&self) -> lumen_app::Settings {
        lumen_app::Settings {
            institution: self.web.institution.clone(),
            node_org: self.org.clone(),
            ae_orgs: self
                .ae
                .iter()
                .map(|a| (a.title.clone(), a.org.clone()))
                .collect(),
            session_ttl: Duration::from_secs(self.auth.session_hours * 3600),
            report_font: None,
            ledger_vkey: None,
            witness: None,
            ledger_witnesses: Vec::new(),
            ledger_quorum: self.ledger.quorum,
            ledger_max_age: Duration::from_secs(self.ledger.max_checkpoint_age_s),
            // Checked by `Config::load`. With it, `lumen import` queues what arrives for
            // the studies' shares (and share rules), sent once `lumen serve` runs.
            consortium: self
                .consortium_members()
                .ok()
                .flatten()
                .map(std::sync::Arc::new),
            share_rules: self.share.rule.clone(),
            patient_match: self.consortium.patient_match,
        }
    }
}

impl Config {
    /// The DIMSE idle timeout.
    pub fn dimse_timeout(&self) -> Duration {
        Duration::from_secs(self.dimse_timeout_secs.max(1))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "lumen.toml",
                "aet = \"FROMFILE\"\nhttp = \"127.0.0.1:9000\"\n",
            )?;
            jail.set_env("LUMEN_HTTP", "127.0.0.1:9001");
            jail.set_env("LUMEN_REQUIRE_DATA", "1");
            let cfg = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(cfg.aet, "FROMFILE");
            assert_eq!(cfg.http, "127.0.0.1:9001");
            let cfg = Config::load(
                None,
                Overrides {
                    http: Some("127.0.0.1:9002".into()),
                    ..Overrides::default()
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(cfg.http, "127.0.0.1:9002");
            Ok(())
        });
    }

    #[test]
    fn peers_from_file_and_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "lumen.toml",
                "peers = [\"PACS=10.0.0.5:104\"]\n[access]\nfind = \"any\"\n",
            )?;
            let cfg = Config::load(
                None,
                Overrides {
                    extra_peers: vec!["ORTHANC=127.0.0.1:4242".into()],
                    ..Overrides::default()
                },
            )
            .map_err(|e| e.to_string())?;
            let peers = cfg.peer_list().map_err(|e| e.to_string())?;
            assert_eq!(peers.len(), 2);
            assert_eq!(peers[1].aet, "ORTHANC");
            assert_eq!(peers[1].port, 4242);
            assert_eq!(cfg.access.find, AccessRule::Any);
            assert_eq!(cfg.access.move_, AccessRule::Peers);
            jail.create_file("lumen.toml", "peers = [\"PACS=nohost\"]\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file("lumen.toml", "peers = [\"A=h:1\", \"A=h:2\"]\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("lumen.toml", "aet = \"THIS-AE-TITLE-IS-TOO-LONG\"\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file("lumen.toml", "no_such_key = 1\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            // A route to an undeclared peer.
            jail.create_file("lumen.toml", "[[route]]\ndestination = \"PACS\"\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file(
                "lumen.toml",
                "peers = [\"PACS=h:104\"]\n[[route]]\nmodality = \"CT\"\ndestination = \"PACS\"\n",
            )?;
            let cfg = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(cfg.route[0].modality.as_deref(), Some("CT"));
            Ok(())
        });
    }

    #[test]
    fn storage_table_selects_a_bucket_and_hides_its_secret() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "lumen.toml",
                "[storage]\nkind = \"s3\"\nbucket = \"lumen\"\nendpoint = \"http://127.0.0.1:3900\"\n\
                 region = \"garage\"\naccess_key_id = \"GK1\"\nsecret_access_key = \"s3cr3t-value\"\n",
            )?;
            let cfg = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(cfg.storage.kind, StorageKind::S3);
            let shown = format!("{cfg:?} {:?}", cfg.store_config());
            assert!(!shown.contains("s3cr3t-value"), "{shown}");
            match cfg.store_config().storage {
                lumen_store::ObjectStorage::S3(s3) => {
                    assert_eq!(s3.bucket, "lumen");
                    assert_eq!(
                        s3.secret_access_key.as_ref().map(|s| s.expose()),
                        Some("s3cr3t-value")
                    );
                    assert_eq!(s3.orphan_min_age, lumen_store::ORPHAN_MIN_AGE);
                }
                other => panic!("not S3: {other:?}"),
            }
            jail.create_file("lumen.toml", "[storage]\nkind = \"s3\"\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file("lumen.toml", "[storage]\nbucket = \"b\"\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file("lumen.toml", "")?;
            let cfg = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(matches!(
                cfg.store_config().storage,
                lumen_store::ObjectStorage::Files
            ));
            // The whole table from the environment (as the S3 test runs set it).
            jail.set_env(
                "LUMEN_STORAGE",
                "{kind=\"s3\",bucket=\"env-bucket\",endpoint=\"http://127.0.0.1:3900\"}",
            );
            let cfg = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(cfg.storage.bucket.as_deref(), Some("env-bucket"));
            assert_eq!(
                cfg.storage.endpoint.as_deref(),
                Some("http://127.0.0.1:3900")
            );
            Ok(())
        });
    }

    #[test]
    fn tls_flags_override_the_table() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "lumen.toml",
                "[tls]\ncert = \"/etc/a.pem\"\nkey = \"/etc/a.key\"\nclient_ca = \"/etc/ca.pem\"\n\
                 dicom = \"0.0.0.0:2762\"\n",
            )?;
            let cfg = Config::load(
                None,
                Overrides {
                    tls: TlsOverrides {
                        cert: Some("/etc/b.pem".into()),
                        ..TlsOverrides::default()
                    },
                    ..Overrides::default()
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(cfg.tls.cert.as_deref(), Some(Path::new("/etc/b.pem")));
            assert_eq!(cfg.tls.key.as_deref(), Some(Path::new("/etc/a.key")));
            assert_eq!(cfg.tls.dicom.as_deref(), Some("0.0.0.0:2762"));
            assert!(cfg.tls.enabled());
            jail.create_file("lumen.toml", "[tls]\ncert = \"/etc/a.pem\"\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file("lumen.toml", "[tls]\ndicom = \"0.0.0.0:2762\"\n")?;
            assert!(Config::load(None, Overrides::default()).is_err());
            jail.create_file("lumen.toml", "")?;
            let cfg = Config::load(None, Overrides::default()).map_err(|e| e.to_string())?;
            assert!(!cfg.tls.enabled());
            Ok(())
        });
    }
}
