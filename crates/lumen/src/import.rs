//! `lumen import`: walks files and folders (DICOMDIR or not) into the archive, with a
//! progress bar and a summary of what was stored, already present, or rejected and why.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lumen_store::{IngestStatus, Origin, Store, StoreConfig};
use tokio::task::JoinSet;

/// Arguments of `lumen import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// Replace stored objects that differ under the same SOP Instance UID.
    #[arg(long)]
    replace: bool,
    /// The configuration whose `[[route]]` rules queue what is imported for routing, as
    /// `lumen serve` reads it (default: ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The organisation new studies belong to (created if it does not exist; default:
    /// the node's own, `org` of the configuration).
    #[arg(long)]
    org: Option<String>,
    /// Files or folders to import (folders are walked recursively).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Lists the files to import: every file under the paths, plus files a DICOMDIR refers
/// to (the DICOMDIR itself is an index, not an object to archive).
fn collect(paths: &[PathBuf]) -> anyhow::Result<(Vec<PathBuf>, usize)> {
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut dicomdirs = 0;
    let mut stack: Vec<PathBuf> = paths.to_vec();
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            entries.reverse();
            stack.extend(entries);
        } else if is_dicomdir(&p) {
            dicomdirs += 1;
            for f in dicomdir_files(&p) {
                if seen.insert(f.clone()) {
                    files.push(f);
                }
            }
        } else if seen.insert(p.clone()) {
            files.push(p);
        }
    }
    Ok((files, dicomdirs))
}

fn is_dicomdir(p: &Path) -> bool {
    p.file_name()
        .is_some_and(|n| n.eq_ignore_ascii_case("DICOMDIR"))
}

/// Files referenced by a DICOMDIR's directory records (Referenced File ID, relative to
/// the DICOMDIR's folder), where they exist.
fn dicomdir_files(p: &Path) -> Vec<PathBuf> {
    use dicom_dictionary_std::tags;
    let Ok(obj) = dicom_object::open_file(p) else {
        return Vec::new();
    };
    let base = p.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    if let Ok(records) = obj.element(tags::DIRECTORY_RECORD_SEQUENCE)
        && let Some(items) = records.items()
    {
        for item in items {
            if let Ok(e) = item.element(tags::REFERENCED_FILE_ID)
                && let Ok(parts) = e.to_multi_str()
            {
                let mut f = base.to_path_buf();
                for part in parts.iter() {
                    f.push(part.trim());
                }
                if f.is_file() {
                    out.push(f);
                }
            }
        }
    }
    out
}

/// Runs `lumen import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(import(args))
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let (files, dicomdirs) = collect(&args.paths)?;
    let conf = crate::config::Config::load(args.config.as_ref(), Default::default())?;
    let mut cfg = StoreConfig {
        data_dir: args.data.clone(),
        ..conf.store_config()
    };
    if args.replace {
        cfg.on_conflict = lumen_store::ConflictPolicy::Replace;
    }
    let org = args.org.clone().unwrap_or_else(|| conf.org.clone());
    let store = Store::open(cfg)
        .await
        .with_context(|| format!("cannot open the archive in {}", args.data.display()))?;
    crate::user_cli::check_org(&org)?;
    store.ensure_org(&org, &org).await?;
    let app = lumen_app::App::new(store, conf.app_settings());
    let actor = std::sync::Arc::new(lumen_app::Actor::command_line(&org));
    let bar = ProgressBar::new(files.len() as u64);
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let (mut stored, mut present, mut replaced, mut routed) = (0u64, 0u64, 0u64, 0u64);
    let mut rejected: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut tasks = JoinSet::new();
    let mut iter = files.into_iter();
    loop {
        // Enough files in flight that the index writer commits them in groups and the
        // file syncs overlap.
        while tasks.len() < 16 {
            let Some(path) = iter.next() else { break };
            let (app, actor) = (app.clone(), actor.clone());
            tasks.spawn(async move {
                let result = match tokio::fs::read(&path).await {
                    Ok(bytes) => app
                        .receive(&actor, bytes.into(), Origin::Import)
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("cannot read file: {e}")),
                };
                (path, result)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let (path, result) = done.context("import task failed")?;
        match result {
            Ok(i) => {
                routed += u64::from(i.routed > 0);
                match i.status {
                    IngestStatus::Stored => stored += 1,
                    IngestStatus::AlreadyPresent => present += 1,
                    IngestStatus::Replaced => replaced += 1,
                }
            }
            Err(reason) => rejected.entry(reason).or_default().push(path),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    app.auditor().flush().await;

    let n_rejected: usize = rejected.values().map(Vec::len).sum();
    println!(
        "Imported into {}: {stored} stored, {present} already present{}, {n_rejected} rejected{}",
        args.data.display(),
        if replaced > 0 {
            format!(", {replaced} replaced")
        } else {
            String::new()
        },
        if dicomdirs > 0 {
            format!(" ({dicomdirs} DICOMDIR read)")
        } else {
            String::new()
        },
    );
    if routed > 0 {
        println!("  queued for routing: {routed} (sent by `lumen serve` on this data directory)");
    }
    for (reason, paths) in &rejected {
        println!("  rejected ({}): {reason}", paths.len());
        for p in paths.iter().take(5) {
            println!("    {}", p.display());
        }
        if paths.len() > 5 {
            println!("    ... and {} more", paths.len() - 5);
        }
    }
    Ok(if n_rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
