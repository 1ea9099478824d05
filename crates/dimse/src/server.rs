//! The SCP: an async accept loop serving C-ECHO and C-STORE to a [`StoreHandler`].
//!
//! Each accepted connection runs in its own task: ARTIM-bounded association negotiation,
//! then DIMSE messages until release, abort, error or the idle timeout. A failing or
//! vanishing peer only ends its own association; the handler never sees partial data.
//!
//! With [`Server::with_tls`] the listener speaks DICOM over TLS (PS3.15 Annex B, the
//! Basic TLS Secure Transport Connection Profile): each connection first completes a TLS
//! handshake, bounded by the idle timeout, then runs the same association code.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dicom_ul::pdu::{
    AbortRQServiceProviderReason, AbortRQSource, AssociationRJ, AssociationRJResult,
    AssociationRJServiceProviderPresentationReason, AssociationRJSource, Pdu,
};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::assoc::{AcceptedContext, negotiate};
use crate::command::{Command, CommandField};
use crate::conn::{Conn, Incoming, Transport};
use crate::error::DimseError;
use crate::pdata::{Assembler, DataSet, Message, pdv_items};
use crate::sop::{STORAGE_SOP_CLASSES, STORAGE_TRANSFER_SYNTAXES, Service};
use crate::status;

/// SCP settings. `Default` gives a storage SCP called `LUMEN`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Our AE title. Default `LUMEN`.
    pub ae_title: String,
    /// Accept any called AE title instead of only [`ae_title`](Self::ae_title). Default false.
    pub accept_any_called_ae: bool,
    /// Concurrent associations; more are rejected (transient, local limit exceeded).
    /// Default 32.
    pub max_associations: usize,
    /// Maximum P-DATA-TF length we announce and accept. Default 256 KiB.
    pub max_pdu_length: u32,
    /// ARTIM: time allowed for the A-ASSOCIATE-RQ after connecting. Default 30 s.
    pub artim_timeout: Duration,
    /// Time allowed between PDUs (and for each write) once associated; a stuck association
    /// is aborted after it. Default 60 s.
    pub idle_timeout: Duration,
    /// Largest data set accepted; larger ones are drained and refused with A700.
    /// Default 1 GiB.
    pub max_dataset_size: usize,
    /// Storage SOP classes accepted (Verification is always accepted).
    /// Default [`STORAGE_SOP_CLASSES`].
    pub sop_classes: Vec<String>,
    /// Also accept every SOP class this says is a storage class the archive keeps (the
    /// archive's own rule, `lumen_dicom::sop::is_storage_sop_class`, so that negotiation and
    /// ingest agree). Default `None`: the listed classes only.
    pub accept_storage_class: Option<fn(&str) -> bool>,
    /// Transfer syntaxes accepted. Default [`STORAGE_TRANSFER_SYNTAXES`].
    pub transfer_syntaxes: Vec<String>,
    /// Known remote AEs: callers allowed where [`Access::Peers`] applies, and the C-MOVE
    /// destinations. Default none.
    pub peers: Vec<Peer>,
    /// Also require a known caller to connect from an address of its peer entry's host.
    /// Default false (the calling AE title is enough).
    pub check_peer_address: bool,
    /// Who may use each service. Default: C-ECHO and C-STORE anyone; C-FIND, C-MOVE and
    /// C-GET only known peers.
    pub access: AccessPolicy,
}

/// A known remote application entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its AE title.
    pub ae_title: String,
    /// Host name or address (where C-MOVE sends to, and, with
    /// [`ServerConfig::check_peer_address`], where it must call from).
    pub host: String,
    /// Its DICOM port.
    pub port: u16,
}

/// Who may use a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Any calling AE title.
    Anyone,
    /// Only the AE titles in [`ServerConfig::peers`].
    Peers,
    /// Nobody: the service is off.
    Nobody,
}

impl Access {
    /// Whether a caller (known or not) may use the service.
    pub fn allows(self, known_caller: bool) -> bool {
        match self {
            Access::Anyone => true,
            Access::Peers => known_caller,
            Access::Nobody => false,
        }
    }
}

/// Access per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccessPolicy {
    /// C-ECHO. Default anyone.
    pub echo: Access,
    /// C-STORE. Default anyone.
    pub store: Access,
    /// C-FIND. Default peers.
    pub find: Access,
    /// C-MOVE. Default peers.
    pub move_: Access,
    /// C-GET. Default peers.
    pub get: Access,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            echo: Access::Anyone,
            store: Access::Anyone,
            find: Access::Peers,
            move_: Access::Peers,
            get: Access::Peers,
        }
    }
}

impl AccessPolicy {
    /// The access rule of a service.
    pub fn of(&self, service: Service) -> Access {
        match service {
            Service::Echo => self.echo,
            Service::Store => self.store,
            Service::Find => self.find,
            Service::Move => self.move_,
            Service::Get => self.get,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ae_title: "LUMEN".into(),
            accept_any_called_ae: false,
            max_associations: 32,
            max_pdu_length: 256 * 1024,
            artim_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_dataset_size: 1 << 30,
            sop_classes: STORAGE_SOP_CLASSES.iter().map(|s| s.to_string()).collect(),
            accept_storage_class: None,
            transfer_syntaxes: STORAGE_TRANSFER_SYNTAXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            peers: Vec::new(),
            check_peer_address: false,
            access: AccessPolicy::default(),
        }
    }
}

impl ServerConfig {
    /// The peer entry of an AE title.
    pub fn peer(&self, ae_title: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.ae_title == ae_title)
    }
}

/// One received C-STORE: who sent it and the data set bytes exactly as received.
#[derive(Debug, Clone)]
pub struct StoreRequest {
    /// Calling AE title of the association.
    pub calling_ae: String,
    /// Called AE title of the association.
    pub called_ae: String,
    /// Peer address.
    pub peer: SocketAddr,
    /// Affected SOP Class UID of the C-STORE-RQ (equal to the presentation context's).
    pub sop_class_uid: String,
    /// Affected SOP Instance UID of the C-STORE-RQ. The handler should check that the
    /// data set's SOP Instance UID matches it.
    pub sop_instance_uid: String,
    /// Transfer syntax of the presentation context, the encoding of `dataset`.
    pub transfer_syntax_uid: String,
    /// The data set bytes exactly as received, in `transfer_syntax_uid` (no file meta),
    /// with room in front for one ([`DataSet::with_header`]).
    pub dataset: DataSet,
}

/// The result of storing one instance, sent back in the C-STORE-RSP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored: status 0000.
    Success,
    /// Stored with a warning (B000, B006, B007).
    Warning {
        /// The warning status.
        status: u16,
        /// Error Comment, cut to 64 characters.
        comment: String,
    },
    /// Not stored (A7xx, A9xx, Cxxx, 0122, ...).
    Failure {
        /// The failure status.
        status: u16,
        /// Error Comment, cut to 64 characters.
        comment: String,
    },
}

/// A C-FIND, C-MOVE or C-GET request: the identifier as received.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// Calling AE title of the association.
    pub calling_ae: String,
    /// Peer address.
    pub peer: SocketAddr,
    /// The information model (Affected SOP Class UID, e.g. Study Root FIND).
    pub sop_class_uid: String,
    /// Transfer syntax of the presentation context, the encoding of `identifier`
    /// (and of the identifiers a C-FIND answers with).
    pub transfer_syntax_uid: String,
    /// The identifier data set bytes.
    pub identifier: Bytes,
}

/// The answer to a C-FIND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindOutcome {
    /// The matches: one identifier per pending response, each encoded in the request's
    /// transfer syntax.
    Matches(Vec<Bytes>),
    /// No search: a failure status (A700, A900, C000...) with an Error Comment.
    Failure {
        /// The failure status.
        status: u16,
        /// Error Comment, cut to 64 characters.
        comment: String,
    },
}

/// One instance to send for a C-MOVE or C-GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveItem {
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// The transfer syntax it is stored in.
    pub transfer_syntax_uid: String,
}

/// The data set of a [`RetrieveItem`], ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedInstance {
    /// The transfer syntax of `dataset` (one of those the receiver accepted).
    pub transfer_syntax_uid: String,
    /// The data set bytes (no file meta).
    pub dataset: Bytes,
}

/// A failure status with its Error Comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status.
    pub status: u16,
    /// Error Comment, cut to 64 characters.
    pub comment: String,
}

/// Counts for one association, given to [`StoreHandler::association_ended`].
#[derive(Debug, Clone)]
pub struct AssociationSummary {
    /// Calling AE title.
    pub calling_ae: String,
    /// Called AE title.
    pub called_ae: String,
    /// Peer address.
    pub peer: SocketAddr,
    /// C-STORE operations answered with success or warning.
    pub stored: u32,
    /// C-STORE operations answered with a failure.
    pub failed: u32,
    /// Whether the association ended in abort, timeout or error rather than release.
    pub aborted: bool,
}

/// Where received instances go. The binary implements it with the archive.
pub trait StoreHandler: Send + Sync + 'static {
    /// Store one instance; called once per complete C-STORE-RQ, never with partial data.
    fn store(&self, req: StoreRequest) -> impl Future<Output = StoreOutcome> + Send;

    /// Answer a C-FIND. Default: 0211 (unrecognized operation).
    fn find(&self, _req: QueryRequest) -> impl Future<Output = FindOutcome> + Send {
        async {
            FindOutcome::Failure {
                status: status::UNRECOGNIZED_OPERATION,
                comment: "C-FIND is not offered".into(),
            }
        }
    }

    /// The instances a C-MOVE or C-GET identifier selects. Default: 0211.
    fn retrieve(
        &self,
        _req: QueryRequest,
    ) -> impl Future<Output = Result<Vec<RetrieveItem>, Failure>> + Send {
        async {
            Err(Failure {
                status: status::UNRECOGNIZED_OPERATION,
                comment: "retrieval is not offered".into(),
            })
        }
    }

    /// The data set of one instance in one of `accepted` transfer syntaxes (the receiver's
    /// accepted syntaxes for its SOP class, best first): as stored when the stored syntax
    /// is among them, else transcoded. `Err` fails this sub-operation with the message.
    fn load(
        &self,
        _item: RetrieveItem,
        _accepted: Vec<String>,
    ) -> impl Future<Output = Result<LoadedInstance, String>> + Send {
        async { Err("retrieval is not offered".to_string()) }
    }

    /// Called once when an association that was accepted ends. Default: nothing.
    fn association_ended(&self, _summary: &AssociationSummary) {}
}

impl<T: StoreHandler> StoreHandler for Arc<T> {
    fn store(&self, req: StoreRequest) -> impl Future<Output = StoreOutcome> + Send {
        (**self).store(req)
    }

    fn find(&self, req: QueryRequest) -> impl Future<Output = FindOutcome> + Send {
        (**self).find(req)
    }

    fn retrieve(
        &self,
        req: QueryRequest,
    ) -> impl Future<Output = Result<Vec<RetrieveItem>, Failure>> + Send {
        (**self).retrieve(req)
    }

    fn load(
        &self,
        item: RetrieveItem,
        accepted: Vec<String>,
    ) -> impl Future<Output = Result<LoadedInstance, String>> + Send {
        (**self).load(item, accepted)
    }

    fn association_ended(&self, summary: &AssociationSummary) {
        (**self).association_ended(summary)
    }
}

/// A bound SCP, ready to run.
pub struct Server<H> {
    listener: TcpListener,
    config: Arc<ServerConfig>,
    handler: Arc<H>,
    tls: Option<TlsAcceptor>,
}

impl<H: StoreHandler> Server<H> {
    /// Bind a listener and prepare to serve.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        config: ServerConfig,
        handler: H,
    ) -> std::io::Result<Self> {
        Ok(Self::new(TcpListener::bind(addr).await?, config, handler))
    }

    /// Serve on an existing listener.
    pub fn new(listener: TcpListener, config: ServerConfig, handler: H) -> Self {
        Server {
            listener,
            config: Arc::new(config),
            handler: Arc::new(handler),
            tls: None,
        }
    }

    /// Speak TLS on this listener (PS3.15 Annex B): every connection must complete a TLS
    /// handshake with `acceptor` within [`ServerConfig::idle_timeout`] before its
    /// association request is read; one that fails or stalls is closed and frees its slot.
    /// Whether a client certificate is required is the acceptor's rustls configuration
    /// (a client certificate verifier for peer authentication, or none).
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// The address actually bound (to learn the port after binding port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve forever.
    pub async fn run(self) {
        self.run_until(std::future::pending()).await
    }

    /// Serve until `shutdown` completes, then stop accepting and wait for the
    /// associations in progress to end (each is bounded by the idle timeout).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            config,
            handler,
            tls,
        } = self;
        let slots = Arc::new(Semaphore::new(config.max_associations.max(1)));
        // Connections turned away also get a bounded number of tasks.
        let reject_slots = Arc::new(Semaphore::new(config.max_associations.max(1)));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        info!(ae_title = %config.ae_title, addr = ?listener.local_addr().ok(), tls = tls.is_some(), "DIMSE SCP listening");
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = listener.accept() => a,
            };
            while tasks.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            if let Ok(permit) = slots.clone().try_acquire_owned() {
                let config = config.clone();
                let handler = handler.clone();
                let tls = tls.clone();
                tasks.spawn(async move {
                    if let Some(stream) =
                        secure(stream, peer, tls.as_ref(), config.idle_timeout).await
                    {
                        serve_association(stream, peer, &config, handler).await;
                    }
                    drop(permit);
                });
            } else if let Ok(permit) = reject_slots.clone().try_acquire_owned() {
                let config = config.clone();
                let tls = tls.clone();
                tasks.spawn(async move {
                    let handshake = config.idle_timeout.min(Duration::from_secs(5));
                    if let Some(stream) = secure(stream, peer, tls.as_ref(), handshake).await {
                        reject_busy(stream, peer, &config).await;
                    }
                    drop(permit);
                });
            } else {
                warn!(%peer, "too many connections; closing without answer");
            }
        }
        // Close the port first, so that new peers are refused instead of queued.
        drop(listener);
        info!(active = tasks.len(), "DIMSE SCP stopping");
        while tasks.join_next().await.is_some() {}
    }
}

/// Serve DIMSE on `listener` forever.
pub async fn serve<H: StoreHandler>(listener: TcpListener, config: ServerConfig, handler: H) {
    Server::new(listener, config, handler).run().await
}

fn abort_pdu(reason: AbortRQServiceProviderReason) -> Pdu {
    Pdu::AbortRQ {
        source: AbortRQSource::ServiceProvider(reason),
    }
}

/// Abort reason for an error that ends an association.
fn abort_reason(e: &DimseError) -> Option<AbortRQServiceProviderReason> {
    match e {
        DimseError::Protocol(m) if m.starts_with("unrecognized PDU") => {
            Some(AbortRQServiceProviderReason::UnrecognizedPdu)
        }
        DimseError::Protocol(_) | DimseError::PduTooLarge { .. } | DimseError::Command(_) => {
            Some(AbortRQServiceProviderReason::InvalidPduParameter)
        }
        DimseError::Timeout(_) => Some(AbortRQServiceProviderReason::ReasonNotSpecified),
        _ => None,
    }
}

/// The connection's transport: the TCP stream itself, or, on a TLS listener, the stream
/// after a TLS handshake completed within `timeout` (`None`, logged, when it did not).
async fn secure(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<&TlsAcceptor>,
    timeout: Duration,
) -> Option<Transport> {
    let Some(acceptor) = tls else {
        return Some(stream.into());
    };
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => {
            let (_, session) = s.get_ref();
            debug!(
                %peer,
                version = ?session.protocol_version(),
                client_certificate = session.peer_certificates().is_some_and(|c| !c.is_empty()),
                "TLS handshake completed"
            );
            Some(s.into())
        }
        Ok(Err(e)) => {
            warn!(%peer, error = %e, "TLS handshake failed; connection closed");
            None
        }
        Err(_) => {
            warn!(%peer, timeout_s = timeout.as_secs(), "no TLS handshake in time; connection closed");
            None
        }
    }
}

/// Turn away a connection when all association slots are taken.
async fn reject_busy(stream: Transport, peer: SocketAddr, config: &ServerConfig) {
    let mut conn = Conn::new(stream, config.max_pdu_length, Duration::from_secs(5));
    let artim = config.artim_timeout.min(Duration::from_secs(5));
    if let Ok(Incoming::Other(Pdu::AssociationRQ(rq))) =
        conn.recv_within(artim, "A-ASSOCIATE-RQ").await
    {
        warn!(%peer, calling_ae = %rq.calling_ae_title, "association limit reached; rejecting");
        let rj = AssociationRJ {
            result: AssociationRJResult::Transient,
            source: AssociationRJSource::ServiceProviderPresentation(
                AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
            ),
        };
        let _ = conn.send_pdu(&Pdu::AssociationRJ(rj)).await;
    }
    conn.shutdown().await;
}

/// Whether `calling_ae` is a configured peer (calling from its host's address, when that
/// is checked).
async fn is_known_caller(config: &ServerConfig, calling_ae: &str, peer: SocketAddr) -> bool {
    let Some(p) = config.peer(calling_ae) else {
        return false;
    };
    if !config.check_peer_address {
        return true;
    }
    let lookup = tokio::net::lookup_host((p.host.as_str(), p.port));
    match tokio::time::timeout(Duration::from_secs(5), lookup).await {
        Ok(Ok(mut addrs)) => addrs.any(|a| a.ip() == peer.ip()),
        _ => {
            warn!(%calling_ae, host = %p.host, "cannot resolve the peer's host");
            false
        }
    }
}

/// Something the requestor sent, in arrival order.
#[allow(clippy::large_enum_variant)] // Messages are the common case; boxing buys nothing.
pub(crate) enum Event {
    /// A complete DIMSE message.
    Message(Message),
    /// A-RELEASE-RQ.
    Release,
}

/// Per-association state.
pub(crate) struct Session<'a, H> {
    pub(crate) conn: Conn,
    pub(crate) config: &'a ServerConfig,
    pub(crate) handler: Arc<H>,
    pub(crate) peer: SocketAddr,
    pub(crate) calling_ae: String,
    pub(crate) called_ae: String,
    /// Accepted context index by context ID.
    by_id: [Option<u8>; 256],
    pub(crate) contexts: Vec<AcceptedContext>,
    /// Storage classes for which the requestor took the SCP role (C-GET).
    pub(crate) scp_role_classes: Vec<String>,
    asm: Assembler,
    /// Received but not yet handled (messages that arrived during an operation).
    pub(crate) queue: VecDeque<Event>,
    /// Message ID of the next C-STORE sub-operation we send.
    pub(crate) next_sub_id: u16,
    stored: u32,
    failed: u32,
    echoed: u32,
    /// C-FIND responses with a match sent.
    pub(crate) found: u32,
    /// Instances sent by C-GET or C-MOVE sub-operations.
    pub(crate) sent: u32,
    bytes: u64,
}

async fn serve_association<H: StoreHandler>(
    stream: Transport,
    peer: SocketAddr,
    config: &ServerConfig,
    handler: Arc<H>,
) {
    let mut conn = Conn::new(stream, config.max_pdu_length, config.idle_timeout);
    let rq = match conn
        .recv_within(config.artim_timeout, "A-ASSOCIATE-RQ")
        .await
    {
        Ok(Incoming::Other(Pdu::AssociationRQ(rq))) => rq,
        Ok(other) => {
            warn!(%peer, pdu = ?std::mem::discriminant(&other), "expected A-ASSOCIATE-RQ; aborting");
            let _ = conn
                .send_pdu(&abort_pdu(AbortRQServiceProviderReason::UnexpectedPdu))
                .await;
            conn.shutdown().await;
            return;
        }
        Err(e) => {
            warn!(%peer, error = %e, "no valid association request");
            if let Some(reason) = abort_reason(&e) {
                let _ = conn.send_pdu(&abort_pdu(reason)).await;
            }
            conn.shutdown().await;
            return;
        }
    };
    let calling_ae = rq.calling_ae_title.trim().to_string();
    let called_ae = rq.called_ae_title.trim().to_string();
    let known_caller = is_known_caller(config, &calling_ae, peer).await;
    let negotiated = match negotiate(config, &rq, known_caller) {
        Ok(n) => n,
        Err(rj) => {
            warn!(%peer, %calling_ae, %called_ae, known_caller, reason = %rj.source, "association rejected");
            let _ = conn.send_pdu(&Pdu::AssociationRJ(rj)).await;
            conn.shutdown().await;
            return;
        }
    };
    conn.peer_max = negotiated.peer_max_pdu;
    if let Err(e) = conn
        .send_pdu(&Pdu::AssociationAC(negotiated.ac.clone()))
        .await
    {
        warn!(%peer, error = %e, "cannot send A-ASSOCIATE-AC");
        return;
    }
    info!(
        %peer, %calling_ae, %called_ae, known_caller,
        accepted = negotiated.contexts.len(),
        rejected = negotiated.rejected,
        peer_max_pdu = negotiated.peer_max_pdu,
        "association accepted"
    );
    for c in &negotiated.contexts {
        debug!(%peer, id = c.id, abstract_syntax = %c.abstract_syntax, transfer_syntax = %c.transfer_syntax, "context accepted");
    }
    let mut by_id = [None; 256];
    for (i, c) in negotiated.contexts.iter().enumerate() {
        by_id[c.id as usize] = Some(i as u8);
    }
    let mut s = Session {
        conn,
        config,
        handler: handler.clone(),
        peer,
        calling_ae,
        called_ae,
        by_id,
        contexts: negotiated.contexts,
        scp_role_classes: negotiated.scp_role_classes,
        asm: Assembler::new(config.max_dataset_size),
        queue: VecDeque::new(),
        next_sub_id: 1,
        stored: 0,
        failed: 0,
        echoed: 0,
        found: 0,
        sent: 0,
        bytes: 0,
    };
    let started = Instant::now();
    let outcome = s.run().await;
    let aborted = outcome.is_err();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &outcome {
        Ok(()) => info!(
            peer = %s.peer, calling_ae = %s.calling_ae, stored = s.stored, failed = s.failed,
            echoed = s.echoed, found = s.found, sent = s.sent, bytes = s.bytes, elapsed_ms,
            "association released"
        ),
        Err(e) => warn!(
            peer = %s.peer, calling_ae = %s.calling_ae, stored = s.stored, failed = s.failed,
            echoed = s.echoed, found = s.found, sent = s.sent, bytes = s.bytes, elapsed_ms,
            error = %e, "association ended abnormally"
        ),
    }
    if let Err(e) = &outcome
        && let Some(reason) = abort_reason(e)
    {
        let _ = s.conn.send_pdu(&abort_pdu(reason)).await;
    }
    s.conn.shutdown().await;
    handler.association_ended(&AssociationSummary {
        calling_ae: s.calling_ae,
        called_ae: s.called_ae,
        peer,
        stored: s.stored,
        failed: s.failed,
        aborted,
    });
}

impl<H: StoreHandler> Session<'_, H> {
    async fn run(&mut self) -> Result<(), DimseError> {
        loop {
            while let Some(event) = self.queue.pop_front() {
                match event {
                    Event::Message(msg) => self.dispatch(msg).await?,
                    Event::Release => {
                        self.conn.send_pdu(&Pdu::ReleaseRP).await?;
                        return Ok(());
                    }
                }
            }
            self.read_pdu(true).await?;
        }
    }

    /// Read one PDU (waiting for it when `wait`, else only if one has arrived) and queue
    /// what it completes. Returns whether a PDU was read.
    pub(crate) async fn read_pdu(&mut self, wait: bool) -> Result<bool, DimseError> {
        let incoming = if wait {
            self.conn.recv().await?
        } else {
            match self.conn.try_recv().await? {
                Some(i) => i,
                None => return Ok(false),
            }
        };
        match incoming {
            Incoming::PData(body) => {
                for pdv in pdv_items(body)? {
                    if self.by_id[pdv.context_id as usize].is_none() {
                        return Err(DimseError::Protocol(format!(
                            "PDV on presentation context {} that was not accepted",
                            pdv.context_id
                        )));
                    }
                    if let Some(msg) = self.asm.push(pdv)? {
                        self.queue.push_back(Event::Message(msg));
                    }
                }
            }
            Incoming::Other(Pdu::ReleaseRQ) => {
                if self.asm.in_progress() {
                    warn!(peer = %self.peer, "release during a message; partial message dropped");
                }
                self.queue.push_back(Event::Release);
            }
            Incoming::Other(Pdu::AbortRQ { .. }) => return Err(DimseError::Aborted),
            Incoming::Other(other) => {
                return Err(DimseError::Protocol(format!(
                    "unexpected PDU {}",
                    other.short_description()
                )));
            }
        }
        Ok(true)
    }

    /// Whether a C-CANCEL-RQ for `message_id` has arrived (reads what has arrived without
    /// waiting; the cancel is consumed, other messages stay queued).
    pub(crate) async fn cancelled(&mut self, message_id: Option<u16>) -> Result<bool, DimseError> {
        while self.read_pdu(false).await? {}
        let before = self.queue.len();
        self.queue.retain(|e| {
            !matches!(e, Event::Message(m) if m.command.field == CommandField::CCancelRq
                && m.command.message_id_being_responded_to == message_id)
        });
        Ok(self.queue.len() != before)
    }

    async fn dispatch(&mut self, mut msg: Message) -> Result<(), DimseError> {
        let ctx_index = self.by_id[msg.context_id as usize].unwrap_or_default() as usize;
        let ctx = self.contexts[ctx_index].clone();
        match msg.command.field {
            CommandField::CFindRq => return self.c_find(&ctx, msg).await,
            CommandField::CGetRq => return self.c_get(&ctx, msg).await,
            CommandField::CMoveRq => return self.c_move(&ctx, msg).await,
            _ => {}
        }
        let cmd = &msg.command;
        let rsp = match cmd.field {
            CommandField::CEchoRq => {
                self.echoed += 1;
                cmd.response(status::SUCCESS)
            }
            CommandField::CStoreRq => {
                let rsp = self.store(&ctx, &mut msg).await;
                match status::kind(rsp.status.unwrap_or_default()) {
                    status::StatusKind::Success | status::StatusKind::Warning => self.stored += 1,
                    _ => self.failed += 1,
                }
                rsp
            }
            // A cancel for an operation that already ended: nothing to do.
            CommandField::CCancelRq => return Ok(()),
            f if f.is_response() => {
                debug!(peer = %self.peer, field = f.value(), "ignoring unsolicited response");
                return Ok(());
            }
            f => {
                debug!(peer = %self.peer, field = f.value(), "unsupported operation");
                cmd.response(status::UNRECOGNIZED_OPERATION)
            }
        };
        let bytes = rsp.encode()?;
        self.conn.send_message(msg.context_id, &bytes, None).await
    }

    async fn store(&mut self, ctx: &AcceptedContext, msg: &mut Message) -> Command {
        let cmd = &msg.command;
        let fail = |status: u16, comment: &str| cmd.response(status).with_error_comment(comment);
        self.bytes += msg.data_len as u64;
        if msg.oversized {
            warn!(peer = %self.peer, size = msg.data_len, limit = self.config.max_dataset_size, "data set too large; refused");
            return fail(
                status::REFUSED_OUT_OF_RESOURCES,
                "data set exceeds the size limit of this archive",
            );
        }
        let (Some(class), Some(instance)) = (
            cmd.affected_sop_class_uid.as_deref(),
            cmd.affected_sop_instance_uid.as_deref(),
        ) else {
            return fail(
                status::CANNOT_UNDERSTAND,
                "missing Affected SOP Class or Instance UID",
            );
        };
        if cmd.message_id.is_none() {
            return fail(status::CANNOT_UNDERSTAND, "missing Message ID");
        }
        if class != ctx.abstract_syntax {
            return fail(
                status::SOP_CLASS_NOT_SUPPORTED,
                "SOP class differs from the presentation context",
            );
        }
        // Taken, not cloned: the handler may write a header in front of it only while it is
        // the buffer's one owner.
        let Some(dataset) = msg.data.take() else {
            return fail(status::CANNOT_UNDERSTAND, "C-STORE-RQ without a data set");
        };
        let req = StoreRequest {
            calling_ae: self.calling_ae.clone(),
            called_ae: self.called_ae.clone(),
            peer: self.peer,
            sop_class_uid: class.to_string(),
            sop_instance_uid: instance.to_string(),
            transfer_syntax_uid: ctx.transfer_syntax.clone(),
            dataset,
        };
        // Run the handler as its own task: a panic fails only this instance, and a peer
        // that vanishes meanwhile cannot cancel a store halfway.
        let handler = self.handler.clone();
        let outcome = match tokio::spawn(async move { handler.store(req).await }).await {
            Ok(outcome) => outcome,
            Err(e) => {
                warn!(peer = %self.peer, error = %e, "store handler failed");
                return fail(status::PROCESSING_FAILURE, "internal error while storing");
            }
        };
        match outcome {
            StoreOutcome::Success => cmd.response(status::SUCCESS),
            StoreOutcome::Warning { status, comment }
            | StoreOutcome::Failure { status, comment } => {
                debug!(peer = %self.peer, status, "C-STORE answered with non-success status");
                fail(status, &comment)
            }
        }
    }
}
