//! `lumen worker`: the AI on arriving series and the routing of stored instances, with no
//! listener.
//!
//! Any number of workers and `lumen serve` front ends share one PostgreSQL index and one
//! bucket (`database = "postgres://..."`, `[storage] kind = "s3"`): each AI job and outbox row
//! is claimed by one process at a time, under a lease, and a job whose worker died is taken
//! over once its lease has passed (`lumen_store::jobs`). Front ends may then run with `[ai]
//! enabled = false` and leave the analyses to workers on machines with the CPUs (or GPUs)
//! for them. On the embedded SQLite index one process owns the data directory: a worker
//! then runs instead of `lumen serve`, not beside it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lumen_store::Store;

use crate::config::{Config, Overrides};

/// Flags of `lumen worker` (the rest comes from the config file or `LUMEN_*`).
#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// TOML configuration file (default: ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory [env: LUMEN_DATA] (default ./lumen-data).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// Runs the worker until SIGINT or SIGTERM.
pub fn run(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        data: args.data,
        ..Overrides::default()
    };
    let config = Config::load(args.config.as_ref(), overrides)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(work(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn work(config: Config) -> anyhow::Result<()> {
    // Beside front ends a worker reads their objects: with the index on PostgreSQL the
    // objects must be in the shared bucket (files under another data directory are not
    // the front ends', and their own directory is locked by them).
    if config.database.is_some()
        && !matches!(
            config.storage.object_storage(),
            lumen_store::ObjectStorage::S3(_)
        )
    {
        anyhow::bail!(
            "lumen worker beside front ends needs the objects in a bucket: with `database` set, \
             also set [storage] kind = \"s3\" (the front ends' bucket)"
        );
    }
    let store = Store::open(config.store_config())
        .await
        .with_context(|| format!("cannot open the archive in {}", config.data.display()))?;
    if !config.ai.enabled {
        tracing::warn!("[ai] enabled = false: this worker only routes");
    }
    let ai = lumen_app::ai::spawn(store.clone(), config.ai.clone());
    // Rows queued by any process are claimed by whichever gets them first.
    let routing =
        lumen_app::routing::RoutingWorker::new(store.clone(), config.destinations()?, &config.aet)
            .spawn();
    tracing::info!(
        ai = config.ai.enabled,
        ai_slots = config.ai.workers,
        "Lumen worker ready: AI jobs and routing, no listener"
    );
    crate::serve::shutdown_signal().await;
    tracing::info!(
        "worker stopping; claimed jobs not finished are taken over when their lease passes"
    );
    ai.abort();
    routing.abort();
    Ok(())
}
