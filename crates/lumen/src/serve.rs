//! `lumen serve`: wires the archive to its two front doors (HTTP and DIMSE) and runs them,
//! each over TLS when `[tls]` has a certificate (HTTPS on the HTTP address; DICOM TLS on a
//! second DIMSE listener, `[tls] dicom`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use lumen_dimse::{
    Access, AccessPolicy, Failure, FindOutcome, LoadedInstance, Peer, QueryRequest, RetrieveItem,
    ServerConfig, StoreHandler, StoreOutcome, StoreRequest,
};
use lumen_store::{IngestError, Origin, Store};

use crate::config::{AccessRule, Config, Overrides};

/// Flags of `lumen serve` (each may also come from the config file or `LUMEN_*`).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (default: ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory [env: LUMEN_DATA] (default ./lumen-data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// HTTP listen address [env: LUMEN_HTTP] (default 127.0.0.1:8080).
    #[arg(long)]
    http: Option<String>,
    /// DICOM listen address [env: LUMEN_DICOM] (default 127.0.0.1:11112).
    #[arg(long)]
    dicom: Option<String>,
    /// Our AE title [env: LUMEN_AET] (default LUMEN).
    #[arg(long)]
    aet: Option<String>,
    /// reject (default) or replace a different object under a stored SOP Instance UID.
    #[arg(long, value_parser = ["reject", "replace"])]
    on_conflict: Option<String>,
    /// Allow CORS from these origins (repeatable; `*` for any).
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// A known remote AE, AET=HOST:PORT (repeatable): may query and retrieve, is a C-MOVE
    /// destination and a routing target. Added to `peers` of the config file.
    #[arg(long = "peer", value_name = "AET=HOST:PORT")]
    peers: Vec<String>,
    /// TLS certificate chain (PEM): with --tls-key, the HTTP address serves HTTPS only
    /// ([tls] cert).
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM, mode 600 or stricter) ([tls] key).
    #[arg(long, value_name = "PEM")]
    tls_key: Option<PathBuf>,
    /// Listen address of DICOM over TLS, e.g. 0.0.0.0:2762 ([tls] dicom; needs the
    /// certificate and key).
    #[arg(long, value_name = "ADDR")]
    dicom_tls: Option<String>,
}

/// The DIMSE side's handle on the archive: every C-STORE goes through `Store::ingest`.
struct ArchiveHandler {
    store: Store,
    /// The use cases (C-FIND and C-GET/C-MOVE selections are searches of the application
    /// layer, made as the calling AE).
    app: lumen_app::App,
    /// Our AE title (the Retrieve AE Title of C-FIND responses).
    aet: String,
    /// Locations and read-ahead of C-GET/C-MOVE selections.
    retrieve_cache: crate::qr::RetrieveCache,
}

/// Counts and times one DIMSE operation (`lumen_dimse_*` metrics).
fn dimse_done(op: &'static str, ok: bool, started: std::time::Instant) {
    let outcome = if ok { "success" } else { "failure" };
    metrics::counter!(lumen_app::metrics::DIMSE_OPERATIONS, "operation" => op, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(lumen_app::metrics::DIMSE_SECONDS, "operation" => op)
        .record(started.elapsed().as_secs_f64());
}

impl StoreHandler for ArchiveHandler {
    async fn store(&self, req: StoreRequest) -> StoreOutcome {
        let started = std::time::Instant::now();
        let outcome = self.store_instance(req).await;
        dimse_done("c-store", outcome == StoreOutcome::Success, started);
        outcome
    }

    async fn find(&self, req: QueryRequest) -> FindOutcome {
        let started = std::time::Instant::now();
        let outcome = crate::qr::find(&self.app, &self.aet, req).await;
        dimse_done(
            "c-find",
            !matches!(outcome, FindOutcome::Failure { .. }),
            started,
        );
        outcome
    }

    async fn retrieve(&self, req: QueryRequest) -> Result<Vec<RetrieveItem>, Failure> {
        let started = std::time::Instant::now();
        let selected = crate::qr::retrieve(&self.app, &self.retrieve_cache, req).await;
        dimse_done("retrieve-select", selected.is_ok(), started);
        selected
    }

    async fn load(
        &self,
        item: RetrieveItem,
        accepted: Vec<String>,
    ) -> Result<LoadedInstance, String> {
        let started = std::time::Instant::now();
        let loaded = crate::qr::load(&self.store, &self.retrieve_cache, item, accepted).await;
        dimse_done("retrieve-load", loaded.is_ok(), started);
        loaded
    }
}

impl ArchiveHandler {
    async fn store_instance(&self, req: StoreRequest) -> StoreOutcome {
        // The file meta goes into the room left in front of the received data set: the
        // instance (often half a megabyte) is not copied to become a file.
        let bytes = match lumen_dicom::part10::file_header(
            &req.sop_class_uid,
            &req.sop_instance_uid,
            &req.transfer_syntax_uid,
            Some(&req.calling_ae),
        ) {
            Ok(header) => req.dataset.with_header(&header),
            Err(e) => {
                return StoreOutcome::Failure {
                    status: 0xC000,
                    comment: e.to_string(),
                };
            }
        };
        let actor = self
            .app
            .dicom_actor(&req.calling_ae, Some(req.peer.ip().to_string()));
        match self
            .app
            .receive(&actor, bytes, Origin::c_store(req.calling_ae.clone()))
            .await
        {
            // Routed by the store: the outbox rows committed with the instance.
            Ok(_) => StoreOutcome::Success,
            Err(e) => {
                let status = match &e {
                    IngestError::Forbidden(_) => 0x0124,
                    IngestError::Invalid(_) => 0xC000,
                    IngestError::UnsupportedSopClass(_) => 0x0122,
                    IngestError::Conflict(_) => 0x0111,
                    _ => 0xA700,
                };
                if let IngestError::Internal(cause) = &e {
                    tracing::error!(%cause, calling_ae = %req.calling_ae, "C-STORE not stored");
                } else {
                    tracing::warn!(reason = %e, calling_ae = %req.calling_ae, "C-STORE refused");
                }
                StoreOutcome::Failure {
                    status,
                    comment: e.to_string(),
                }
            }
        }
    }
}

fn access(rule: AccessRule) -> Access {
    match rule {
        AccessRule::Any => Access::Anyone,
        AccessRule::Peers => Access::Peers,
        AccessRule::None => Access::Nobody,
    }
}

/// Runs `lumen serve` until interrupted.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        data: args.data,
        http: args.http,
        dicom: args.dicom,
        aet: args.aet,
        on_conflict: args.on_conflict.map(|p| {
            if p == "replace" {
                lumen_store::ConflictPolicy::Replace
            } else {
                lumen_store::ConflictPolicy::Reject
            }
        }),
        cors_origins: (!args.cors_origins.is_empty()).then_some(args.cors_origins),
        extra_peers: args.peers,
        tls: crate::config::TlsOverrides {
            cert: args.tls_cert,
            key: args.tls_key,
            dicom: args.dicom_tls,
        },
    };
    let config = Config::load(args.config.as_ref(), overrides)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Before anything is counted: what is recorded earlier is not kept.
    lumen_app::metrics::install();
    // Certificate problems stop the start before the archive is opened or a port bound.
    let tls = crate::tls::TlsSetup::from_config(&config.tls)?;
    let store = Store::open(config.store_config())
        .await
        .with_context(|| format!("cannot open the archive in {}", config.data.display()))?;
    for a in &config.ae {
        store.ensure_org(&a.org, &a.org).await?;
    }
    // Objects in a bucket: uploads a crash left unindexed are swept in the background,
    // now and then hourly (other front ends may share the bucket).
    let orphan_sweep = match &config.store_config().storage {
        lumen_store::ObjectStorage::S3(s3) => {
            tracing::info!(bucket = %s3.bucket, "objects are stored in an S3-compatible bucket");
            if s3.orphan_min_age < lumen_store::ORPHAN_MIN_AGE {
                tracing::warn!(
                    seconds = s3.orphan_min_age.as_secs(),
                    "[storage] orphan_min_age_s is below an hour: an upload by another front end \
                     on this bucket, not yet committed, could be taken for an orphan"
                );
            }
            Some(spawn_orphan_sweep(store.clone()))
        }
        lumen_store::ObjectStorage::Files => None,
    };
    // The node's ledger key (created at the first start, mode 600; a key others can read
    // is refused) and the sequencer that publishes new entries every second.
    let ledger_signer = Arc::new(
        lumen_store::ledger_key(&config.data, &config.ledger_origin()).context("the ledger key")?,
    );
    tracing::info!(vkey = %ledger_signer.vkey(), "ledger verifier key");
    // Temporary files a crash left half-written in DATA/ledger/.tmp (this process holds the
    // data directory's lock: no other writes the log).
    match store.ledger_files().sweep_tmp() {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed leftover ledger temporary files"),
        Err(e) => tracing::warn!(error = %e, "cannot sweep the ledger's temporary files"),
    }
    // As a witness of other nodes' logs: a cosigning key of its own.
    let witness_role = if config.ledger.witness_of.is_empty() {
        None
    } else {
        let cosigner = lumen_store::witness_key(&config.data, &config.ledger_witness_name())
            .context("the ledger witness key")?;
        let keys: Vec<String> = config
            .ledger
            .witness_of
            .iter()
            .map(|p| p.key.clone())
            .collect();
        let role =
            lumen_app::ledger::WitnessRole::new(cosigner, &keys).context("[ledger] witness_of")?;
        tracing::info!(vkey = %role.vkey(), logs = keys.len(), "ledger witness key");
        Some(Arc::new(role))
    };
    let log_witnesses = config
        .ledger
        .witnesses
        .iter()
        .map(|p| {
            Ok(lumen_app::ledger::LogWitness {
                url: format!("{}/add-checkpoint", p.url.trim_end_matches('/')),
                key: lumen_ledger::cosign::CosignatureVerifier::new(&p.key)
                    .with_context(|| format!("[ledger] witnesses: key of {}", p.url))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let scheme = if tls.is_some() { "https" } else { "http" };
    let http = tokio::net::TcpListener::bind(&config.http)
        .await
        .with_context(|| {
            format!(
                "cannot listen for {} on {}",
                scheme.to_uppercase(),
                config.http
            )
        })?;
    let web_config = lumen_web::WebConfig {
        max_body_bytes: config.max_request_bytes,
        max_object_bytes: config.max_object_bytes,
        stow_concurrency: 4,
        cors_origins: config.cors_origins.clone(),
        public_url: config.public_url.clone(),
        listen_port: Some(http.local_addr()?.port()),
        secure_cookies: tls.is_some(),
    };
    // The consortium: this node's id and the members' keys (the node key is the ledger's).
    let consortium = config.consortium_members()?.map(Arc::new);
    if let Some(c) = &consortium {
        tracing::info!(node = %c.node_id, members = c.members.len(), "consortium member");
    }
    let use_cases = lumen_app::App::new(
        store.clone(),
        lumen_app::Settings {
            consortium: consortium.clone(),
            report_font: report_font(&config.web)?,
            ledger_vkey: Some(ledger_signer.vkey()),
            witness: witness_role,
            ledger_witnesses: log_witnesses.iter().map(|w| w.key.clone()).collect(),
            ..config.app_settings()
        },
    );
    // No default credentials: the first start creates `admin` with a one-time password,
    // shown here once (it must be changed at first login).
    if let Some(password) = use_cases.bootstrap_admin().await? {
        eprintln!(
            "\nNo accounts existed: created user 'admin' with one-time password {password}\n\
             Sign in at {scheme}://{}/login and choose a new password; this is not shown again.\n",
            http.local_addr()?
        );
    }
    let audit_sweep = spawn_audit_sweep(store.clone(), config.audit.retention_days);
    // The hospital's audit repository gets every entry, in order, from the index: what
    // was recorded while it was unreachable is sent when it is back.
    let audit_forward = match &config.audit.syslog {
        Some(syslog) => {
            let source = lumen_audit::AuditSource {
                source_id: config.aet.clone(),
                enterprise_site_id: Some(config.web.institution.clone()),
                host: None,
            };
            let fwd = lumen_audit::Forwarder::new(
                syslog,
                source,
                lumen_app::audit::IndexLog(store.clone()),
            )
            .context("[audit.syslog]")?
            .with_notify(use_cases.auditor().committed());
            tracing::info!(repository = %syslog.address, "audit trail forwarded to the audit repository");
            Some(fwd.spawn())
        }
        None => None,
    };
    let app = lumen_web::router(lumen_web::AppState {
        app: use_cases.clone(),
        store: store.clone(),
        config: Arc::new(web_config),
    });

    let dimse_config = ServerConfig {
        ae_title: config.aet.clone(),
        accept_any_called_ae: config.accept_any_called_aet,
        max_associations: config.max_associations,
        max_pdu_length: config.max_pdu_length,
        idle_timeout: config.dimse_timeout(),
        max_dataset_size: usize::try_from(config.max_object_bytes).unwrap_or(usize::MAX),
        accept_storage_class: config
            .accept_unknown_sop_classes
            .then_some(lumen_dicom::sop::is_storage_sop_class as fn(&str) -> bool),
        peers: config
            .peer_list()?
            .into_iter()
            .map(|p| Peer {
                ae_title: p.aet,
                host: p.host,
                port: p.port,
            })
            .collect(),
        check_peer_address: config.check_peer_address,
        access: AccessPolicy {
            echo: access(config.access.echo),
            store: access(config.access.store),
            find: access(config.access.find),
            move_: access(config.access.move_),
            get: access(config.access.get),
        },
        ..ServerConfig::default()
    };
    // The worker runs even without rules: rows an earlier run queued were acknowledged
    // and are still sent.
    let routing_task =
        lumen_app::routing::RoutingWorker::new(store.clone(), config.destinations()?, &config.aet)
            .spawn();
    // Shares pushed to members, grants re-checked with their origins (issue 13).
    let share_tasks = match &consortium {
        Some(_) => {
            let client = crate::share_client::HttpNodeClient::new(config.consortium.ca.as_deref())
                .context("[consortium] ca")?;
            Some(
                lumen_app::share::ShareWorker::new(
                    use_cases.clone(),
                    ledger_signer.clone(),
                    Arc::new(client),
                )
                .spawn(),
            )
        }
        None => None,
    };
    let ledger_task = lumen_app::ledger::Sequencer::new(store.clone(), ledger_signer)
        .with_witnesses(
            log_witnesses,
            Arc::new(crate::ledger_cli::HttpWitnessClient::new()),
            config.ledger.quorum,
        )
        .with_max_age(std::time::Duration::from_secs(
            config.ledger.max_checkpoint_age_s,
        ))
        .spawn(std::time::Duration::from_secs(1));
    let audit_app = use_cases.clone();
    // One handler for both DIMSE listeners: same access rules, same retrieve cache.
    let handler = Arc::new(ArchiveHandler {
        store: store.clone(),
        app: use_cases,
        aet: config.aet.clone(),
        retrieve_cache: crate::qr::RetrieveCache::default(),
    });
    let dimse_tls = match (
        tls.as_ref().and_then(|t| t.dicom.clone()),
        &config.tls.dicom,
    ) {
        (Some(acceptor), Some(addr)) => Some(
            lumen_dimse::Server::bind(addr, dimse_config.clone(), handler.clone())
                .await
                .with_context(|| format!("cannot listen for DICOM TLS on {addr}"))?
                .with_tls(acceptor),
        ),
        _ => None,
    };
    let dimse = lumen_dimse::Server::bind(&config.dicom, dimse_config, handler)
        .await
        .with_context(|| format!("cannot listen for DICOM on {}", config.dicom))?;

    let stats = store.stats().await?;
    let dicom_tls_addr = dimse_tls.as_ref().map(|s| s.local_addr()).transpose()?;
    tracing::info!(
        http = %http.local_addr()?,
        dicom = %dimse.local_addr()?,
        dicom_tls = %dicom_tls_addr.map_or_else(|| "off".to_string(), |a| a.to_string()),
        dicom_tls_client_certificates = tls.as_ref().is_some_and(|t| t.dicom_client_auth),
        aet = %config.aet,
        data = %config.data.display(),
        studies = stats.studies,
        instances = stats.instances,
        "Lumen ready: DICOMweb at {scheme}://{}/dicom-web",
        http.local_addr()?
    );

    let ai_task = lumen_app::ai::spawn(store.clone(), config.ai.clone());

    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let http_task = match tls {
        Some(tls) => {
            let shutdown = stopped(rx.clone());
            let handshake = config.dimse_timeout();
            tokio::spawn(async move {
                crate::tls::serve_https(http, tls.http, app, handshake, shutdown).await;
                Ok(())
            })
        }
        None => {
            let shutdown = stopped(rx.clone());
            tokio::spawn(async move {
                axum::serve(
                    http,
                    app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
            })
        }
    };
    let dimse_task = tokio::spawn(dimse.run_until(stopped(rx.clone())));
    let dimse_tls_task = dimse_tls.map(|s| tokio::spawn(s.run_until(stopped(rx))));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    ai_task.abort();
    routing_task.abort();
    ledger_task.abort();
    if let Some((sender, checker)) = share_tasks {
        // What was not sent stays queued in the index and is sent after the next start.
        sender.abort();
        checker.abort();
    }
    audit_sweep.abort();
    if let Some(t) = orphan_sweep {
        t.abort();
    }
    if let Some(f) = audit_forward {
        // Whatever was not sent yet is sent after the next start.
        f.abort();
    }
    let _ = dimse_task.await;
    if let Some(t) = dimse_tls_task {
        let _ = t.await;
    }
    http_task.await??;
    audit_app.auditor().flush().await;
    Ok(())
}

/// Removes audit entries older than the retention, at start and daily.
fn spawn_audit_sweep(store: Store, days: u32) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.sweep_audit(days).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, days, "audit entries past retention removed"),
                Err(e) => tracing::error!(error = %e, "audit retention sweep failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(86_400)).await;
        }
    })
}

/// Removes uploads the index never learned of from the bucket, at start and hourly.
fn spawn_orphan_sweep(store: Store) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.sweep_orphans().await {
                Ok(n) => tracing::debug!(removed = n, "orphan object sweep done"),
                Err(e) => tracing::error!(error = %e, "orphan object sweep failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    })
}

/// Returns at SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The report font: the configured file (which must be usable), else the first CJK font
/// found where Debian installs them; without one, signing reports is refused with a message.
fn report_font(
    web: &crate::config::WebAppConfig,
) -> anyhow::Result<Option<lumen_report::pdf::ReportFont>> {
    if let Some(p) = &web.report_font {
        let bytes =
            std::fs::read(p).with_context(|| format!("cannot read report font {}", p.display()))?;
        let font = lumen_report::pdf::ReportFont::new(bytes)
            .with_context(|| format!("report font {}", p.display()))?;
        return Ok(Some(font));
    }
    for p in lumen_report::pdf::KNOWN_CJK_FONTS {
        if let Ok(bytes) = std::fs::read(p) {
            match lumen_report::pdf::ReportFont::new(bytes) {
                Ok(f) => return Ok(Some(f)),
                Err(e) => tracing::warn!(font = %p, error = %e, "report font unusable"),
            }
        }
    }
    tracing::warn!(
        "no font that shows Chinese found (install fonts-noto-cjk or set [web] report_font): \
         reports cannot be signed"
    );
    Ok(None)
}

#[cfg(test)]
mod sop_tests {
    /// Negotiation and ingest agree: every class the SCP accepts by default is one the
    /// store keeps, and the directory object (DICOMDIR) is neither.
    #[test]
    fn negotiated_storage_classes_are_ingested() {
        for uid in lumen_dimse::sop::STORAGE_SOP_CLASSES {
            assert!(lumen_dicom::sop::is_storage_sop_class(uid), "{uid}");
        }
        assert!(!lumen_dimse::sop::STORAGE_SOP_CLASSES.contains(&"1.2.840.10008.1.3.10"));
        assert!(!lumen_dicom::sop::is_storage_sop_class(
            "1.2.840.10008.1.3.10"
        ));
    }
}
