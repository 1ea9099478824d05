//! `lumen send`: C-STORE files and folders to another DICOM node, as they are.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use lumen_dimse::{Part10Info, ScuConfig, StoreScu, proposals_for, status};

/// Flags of `lumen send`.
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// The receiver: AET@HOST:PORT.
    #[arg(long, value_name = "AET@HOST:PORT")]
    to: String,
    /// Our (calling) AE title.
    #[arg(long, default_value = "LUMEN")]
    aet: String,
    /// Files or folders (walked recursively; files that are not DICOM Part-10 are skipped).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(rd) = std::fs::read_dir(p) {
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            for c in v {
                walk(&c, out);
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
}

/// Runs `lumen send`.
pub fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let (called, addr) = args
        .to
        .split_once('@')
        .context("--to must be AET@HOST:PORT")?;
    let mut files = Vec::new();
    for p in &args.paths {
        walk(p, &mut files);
    }
    let mut objects = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("cannot read {}", f.display()))?;
        match Part10Info::parse(&bytes) {
            Ok(info) => objects.push((f, info, bytes)),
            Err(e) => {
                tracing::warn!(file = %f.display(), error = %e, "not sent: not DICOM Part-10")
            }
        }
    }
    anyhow::ensure!(!objects.is_empty(), "nothing to send");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (sent, failed) = rt.block_on(async {
        let proposals = proposals_for(
            objects
                .iter()
                .map(|(_, i, _)| (i.sop_class_uid.as_str(), i.transfer_syntax_uid.as_str())),
        );
        let config = ScuConfig {
            calling_ae_title: args.aet.clone(),
            called_ae_title: called.to_string(),
            ..ScuConfig::default()
        };
        let mut scu = StoreScu::connect(addr, &config, &proposals)
            .await
            .with_context(|| format!("cannot associate with {}", args.to))?;
        let (mut sent, mut failed) = (0usize, 0usize);
        for (f, info, bytes) in &objects {
            match scu.store_part10(bytes).await {
                Ok(r) if status::kind(r.status) != status::StatusKind::Failure => sent += 1,
                Ok(r) => {
                    failed += 1;
                    eprintln!(
                        "{}: refused with status {:04X} {}",
                        f.display(),
                        r.status,
                        r.error_comment.unwrap_or_default()
                    );
                }
                Err(e) => {
                    failed += 1;
                    eprintln!("{} ({}): {e}", f.display(), info.sop_instance_uid);
                    if !matches!(e, lumen_dimse::DimseError::NoPresentationContext { .. }) {
                        anyhow::bail!("association lost after {sent} sent: {e}");
                    }
                }
            }
        }
        scu.release().await?;
        anyhow::Ok((sent, failed))
    })?;
    eprintln!("sent {sent}, failed {failed}");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
