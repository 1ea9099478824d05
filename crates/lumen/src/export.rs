//! `lumen export`: writes the instances of one or more studies from a data directory into
//! a folder, one Part-10 file per instance, de-identified (PS3.15 Annex E Basic Application
//! Level Confidentiality Profile, with options) when asked. Like `lumen import`, it opens
//! the archive itself, so the server must be stopped (the data directory is locked).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lumen_deid::{Options, SafePrivate, Warning};
use lumen_store::{Store, StoreConfig};

/// Arguments of `lumen export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// The configuration (`database`, object storage, the node's organisation; default
    /// ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Study Instance UID to export (repeat for several studies, exported under one
    /// secret: a patient keeps one pseudonym and one date shift across them).
    #[arg(long = "study", required = true)]
    studies: Vec<String>,
    /// Folder to write the files into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Apply the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile.
    #[arg(long)]
    deidentify: bool,
    /// With --deidentify: Retain Longitudinal Temporal Information with Modified Dates
    /// (dates shifted by a per-patient offset instead of removed).
    #[arg(long, requires = "deidentify")]
    retain_dates: bool,
    /// With --deidentify: Retain UIDs Option.
    #[arg(long, requires = "deidentify")]
    retain_uids: bool,
    /// With --deidentify: Clean Descriptors Option (descriptions kept, cleaned).
    #[arg(long, requires = "deidentify")]
    clean_descriptors: bool,
    /// With --deidentify: keep a private attribute, as GGGG,CREATOR,EE (odd hexadecimal
    /// group, private creator, element offset in the creator's block); repeatable.
    #[arg(
        long = "keep-private",
        requires = "deidentify",
        value_name = "GGGG,CREATOR,EE"
    )]
    keep_private: Vec<SafePrivate>,
}

/// Runs `lumen export`.
pub fn run(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(export(args))
}

/// Writes `bytes` to `dir/name` through a temporary file, synced, then renamed.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let dest = dir.join(name);
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    std::fs::rename(&tmp, &dest)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display()))?;
    Ok(())
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if !args.data.is_dir() {
        anyhow::bail!("no data directory {}", args.data.display());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (app, actor) = open_offline(&args.data, args.config.as_ref()).await?;
    let options = args.deidentify.then(|| Options {
        retain_longitudinal_modified_dates: args.retain_dates,
        retain_uids: args.retain_uids,
        clean_descriptors: args.clean_descriptors,
        safe_private: args.keep_private.clone(),
    });
    let mut export = app
        .export_studies(&actor, &args.studies, options)
        .await
        .context("cannot export")?;
    let total = export.remaining();
    let (mut written, mut failed) = (0usize, 0usize);
    let mut warnings: Vec<Warning> = Vec::new();
    while let Some(next) = export.next().await {
        match next {
            Ok(inst) => {
                let name = format!("{}.dcm", inst.sop_instance_uid);
                let (dir, bytes) = (args.out.clone(), inst.bytes);
                tokio::task::spawn_blocking(move || write_file(&dir, &name, &bytes))
                    .await
                    .context("write task failed")??;
                for w in &inst.warnings {
                    eprintln!("warning: {}: {}", w.sop_instance_uid, w.message);
                }
                warnings.extend(inst.warnings);
                written += 1;
            }
            Err(e) => {
                eprintln!("error: {e}");
                failed += 1;
            }
        }
    }
    if !warnings.is_empty() {
        let json = serde_json::to_vec_pretty(&warnings).context("cannot encode warnings")?;
        write_file(&args.out, "warnings.json", &json)?;
    }
    // The renames are durable once the folder itself is synced.
    std::fs::File::open(&args.out)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", args.out.display()))?;
    let studies: Vec<String> = args
        .studies
        .iter()
        .map(|s| export.exported_uid(s))
        .collect();
    eprintln!(
        "Exported {written} of {total} instances{} into {}: {failed} failed, {} warning(s){}",
        if args.deidentify {
            " (de-identified, PS3.15 Annex E Basic Application Level Confidentiality Profile)"
        } else {
            ""
        },
        args.out.display(),
        warnings.len(),
        if warnings.is_empty() {
            String::new()
        } else {
            " (warnings.json)".to_string()
        }
    );
    for (orig, new) in args.studies.iter().zip(&studies) {
        if args.deidentify {
            eprintln!("  study {orig} exported as {new}");
        }
    }
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Opens the archive in `data` for a command that works on it alone (`lumen serve` must
/// be stopped: the data directory is locked), with the command line as the actor and the
/// object storage of the configuration (`config`, else ./lumen.toml if present).
pub(crate) async fn open_offline(
    data: &std::path::Path,
    config: Option<&PathBuf>,
) -> anyhow::Result<(lumen_app::App, lumen_app::Actor)> {
    let conf = crate::config::Config::load(config, Default::default())?;
    let store = Store::open(StoreConfig {
        data_dir: data.to_path_buf(),
        router: None,
        ..conf.store_config()
    })
    .await
    .with_context(|| {
        format!(
            "cannot open the archive in {} (stop `lumen serve` on it first)",
            data.display()
        )
    })?;
    let actor = lumen_app::Actor::command_line(&conf.org);
    Ok((lumen_app::App::new(store, conf.app_settings()), actor))
}
