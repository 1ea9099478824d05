//! The SCP: an async accept loop serving C-ECHO and C-STORE to a [`StoreHandler`].
//!
//! Each accepted connection runs in its own task: ARTIM-bounded association negotiation,
//! then DIMSE messages until release, abort, error or the idle timeout. A failing or
//! vanishing peer only ends its own association; the handler never sees partial data.

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
use tracing::{debug, info, warn};

use crate::assoc::{AcceptedContext, negotiate};
use crate::command::{Command, CommandField};
use crate::conn::{Conn, Incoming};
use crate::error::DimseError;
use crate::pdata::{Assembler, Message, pdv_items};
use crate::sop::{STORAGE_SOP_CLASSES, STORAGE_TRANSFER_SYNTAXES};
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
    /// Also accept any other standard Storage SOP class. Default false.
    pub accept_any_storage_class: bool,
    /// Transfer syntaxes accepted. Default [`STORAGE_TRANSFER_SYNTAXES`].
    pub transfer_syntaxes: Vec<String>,
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
            accept_any_storage_class: false,
            transfer_syntaxes: STORAGE_TRANSFER_SYNTAXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
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
    /// The data set bytes exactly as received, in `transfer_syntax_uid` (no file meta).
    pub dataset: Bytes,
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

    /// Called once when an association that was accepted ends. Default: nothing.
    fn association_ended(&self, _summary: &AssociationSummary) {}
}

impl<T: StoreHandler> StoreHandler for Arc<T> {
    fn store(&self, req: StoreRequest) -> impl Future<Output = StoreOutcome> + Send {
        (**self).store(req)
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
        }
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
        } = self;
        let slots = Arc::new(Semaphore::new(config.max_associations.max(1)));
        // Connections turned away also get a bounded number of tasks.
        let reject_slots = Arc::new(Semaphore::new(config.max_associations.max(1)));
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        info!(ae_title = %config.ae_title, addr = ?listener.local_addr().ok(), "DIMSE SCP listening");
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
                tasks.spawn(async move {
                    serve_association(stream, peer, &config, handler).await;
                    drop(permit);
                });
            } else if let Ok(permit) = reject_slots.clone().try_acquire_owned() {
                let config = config.clone();
                tasks.spawn(async move {
                    reject_busy(stream, peer, &config).await;
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

/// Turn away a connection when all association slots are taken.
async fn reject_busy(stream: TcpStream, peer: SocketAddr, config: &ServerConfig) {
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

/// Per-association state.
struct Session<'a, H> {
    conn: Conn,
    config: &'a ServerConfig,
    handler: Arc<H>,
    peer: SocketAddr,
    calling_ae: String,
    called_ae: String,
    /// Accepted context index by context ID.
    by_id: [Option<u8>; 256],
    contexts: Vec<AcceptedContext>,
    stored: u32,
    failed: u32,
    echoed: u32,
    bytes: u64,
}

async fn serve_association<H: StoreHandler>(
    stream: TcpStream,
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
    let negotiated = match negotiate(config, &rq) {
        Ok(n) => n,
        Err(rj) => {
            warn!(%peer, %calling_ae, %called_ae, reason = %rj.source, "association rejected");
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
        %peer, %calling_ae, %called_ae,
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
        stored: 0,
        failed: 0,
        echoed: 0,
        bytes: 0,
    };
    let started = Instant::now();
    let outcome = s.run().await;
    let aborted = outcome.is_err();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match &outcome {
        Ok(()) => info!(
            peer = %s.peer, calling_ae = %s.calling_ae, stored = s.stored, failed = s.failed,
            echoed = s.echoed, bytes = s.bytes, elapsed_ms, "association released"
        ),
        Err(e) => warn!(
            peer = %s.peer, calling_ae = %s.calling_ae, stored = s.stored, failed = s.failed,
            echoed = s.echoed, bytes = s.bytes, elapsed_ms, error = %e, "association ended abnormally"
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
        let mut asm = Assembler::new(self.config.max_dataset_size);
        loop {
            match self.conn.recv().await? {
                Incoming::PData(body) => {
                    for pdv in pdv_items(body)? {
                        if self.by_id[pdv.context_id as usize].is_none() {
                            return Err(DimseError::Protocol(format!(
                                "PDV on presentation context {} that was not accepted",
                                pdv.context_id
                            )));
                        }
                        if let Some(msg) = asm.push(pdv)? {
                            self.dispatch(msg).await?;
                        }
                    }
                }
                Incoming::Other(Pdu::ReleaseRQ) => {
                    if asm.in_progress() {
                        warn!(peer = %self.peer, "release during a message; partial message dropped");
                    }
                    self.conn.send_pdu(&Pdu::ReleaseRP).await?;
                    return Ok(());
                }
                Incoming::Other(Pdu::AbortRQ { .. }) => return Err(DimseError::Aborted),
                Incoming::Other(other) => {
                    return Err(DimseError::Protocol(format!(
                        "unexpected PDU {}",
                        other.short_description()
                    )));
                }
            }
        }
    }

    async fn dispatch(&mut self, msg: Message) -> Result<(), DimseError> {
        let ctx_index = self.by_id[msg.context_id as usize].unwrap_or_default() as usize;
        let ctx = self.contexts[ctx_index].clone();
        let cmd = &msg.command;
        let rsp = match cmd.field {
            CommandField::CEchoRq => {
                self.echoed += 1;
                cmd.response(status::SUCCESS)
            }
            CommandField::CStoreRq => {
                let rsp = self.store(&ctx, &msg).await;
                match status::kind(rsp.status.unwrap_or_default()) {
                    status::StatusKind::Success | status::StatusKind::Warning => self.stored += 1,
                    _ => self.failed += 1,
                }
                rsp
            }
            // No operation is ever pending, so there is nothing to cancel.
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

    async fn store(&mut self, ctx: &AcceptedContext, msg: &Message) -> Command {
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
        let Some(dataset) = msg.data.clone() else {
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
