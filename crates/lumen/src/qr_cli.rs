//! `lumen query` and `lumen retrieve`: C-FIND, C-GET and C-MOVE against another DICOM node
//! (or a Lumen) as SCU.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use lumen_dimse::qr_scu::{
    GET_STORAGE_CLASSES, GET_TRANSFER_SYNTAXES, QueryModel, ReceivedInstance,
    get_storage_proposals, identifier, qr_proposals,
};
use lumen_dimse::{ScuConfig, StoreScu, status};
use lumen_store::{Store, StoreConfig};

/// Flags of `lumen query`.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The node to ask: AET@HOST:PORT.
    #[arg(long, value_name = "AET@HOST:PORT")]
    from: String,
    /// Our (calling) AE title.
    #[arg(long, default_value = "LUMEN")]
    aet: String,
    /// Query level (Study Root).
    #[arg(long, default_value = "study", value_parser = ["study", "series", "image"])]
    level: String,
    /// Matching or return keys: Keyword=value (value may use * ? and ranges) or Keyword.
    #[arg(short = 'k', long = "key", value_name = "KEYWORD[=VALUE]")]
    keys: Vec<String>,
    /// Print the matches as a JSON array (DICOM JSON model) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Flags of `lumen retrieve`.
#[derive(Debug, clap::Args)]
pub struct RetrieveArgs {
    /// The node to retrieve from: AET@HOST:PORT.
    #[arg(long, value_name = "AET@HOST:PORT")]
    from: String,
    /// Our (calling) AE title.
    #[arg(long, default_value = "LUMEN")]
    aet: String,
    /// The study to retrieve.
    #[arg(long, required_unless_present = "series")]
    study: Option<String>,
    /// The series to retrieve (its study is looked up with C-FIND unless --study is given).
    #[arg(long)]
    series: Option<String>,
    /// C-MOVE to this AE title (which the node must know).
    #[arg(long, value_name = "AET", conflicts_with = "get")]
    move_to: Option<String>,
    /// C-GET over this association.
    #[arg(long, required_unless_present = "move_to")]
    get: bool,
    /// With --get: ingest into this archive data directory (not one a server is running on).
    #[arg(long, requires = "get", conflicts_with = "out")]
    data: Option<PathBuf>,
    /// With --get: write Part-10 files (SOPInstanceUID.dcm) into this folder.
    #[arg(long, requires = "get")]
    out: Option<PathBuf>,
    /// With --data: the configuration whose `[[route]]` rules queue what is retrieved for
    /// routing, whose `database` holds the index and whose `[storage]` keeps the objects, as
    /// `lumen serve` reads it (default: ./lumen.toml if present).
    #[arg(long, requires = "data")]
    config: Option<PathBuf>,
}

fn parse_peer(s: &str) -> anyhow::Result<(&str, &str)> {
    s.split_once('@')
        .filter(|(a, h)| !a.is_empty() && h.contains(':'))
        .context("expected AET@HOST:PORT")
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn config(aet: &str, called: &str) -> ScuConfig {
    ScuConfig {
        calling_ae_title: aet.to_string(),
        called_ae_title: called.to_string(),
        ..ScuConfig::default()
    }
}

fn default_keys(level: &str) -> &'static [&'static str] {
    match level {
        "series" => &[
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "Modality",
            "SeriesNumber",
            "SeriesDescription",
            "NumberOfSeriesRelatedInstances",
        ],
        "image" => &[
            "StudyInstanceUID",
            "SeriesInstanceUID",
            "SOPInstanceUID",
            "SOPClassUID",
            "InstanceNumber",
        ],
        _ => &[
            "PatientID",
            "PatientName",
            "StudyDate",
            "AccessionNumber",
            "StudyDescription",
            "ModalitiesInStudy",
            "StudyInstanceUID",
            "NumberOfStudyRelatedInstances",
        ],
    }
}

/// The keys of a query: the level's defaults, then `-k` keys (a repeated keyword replaces).
fn query_keys(level: &str, keys: &[String]) -> anyhow::Result<Vec<(String, Tag, VR, String)>> {
    let mut out: Vec<(String, Tag, VR, String)> = Vec::new();
    let mut add = |kw: &str, value: &str| -> anyhow::Result<()> {
        let (tag, vr) = lumen_dicom::query::lookup_attribute(kw)
            .with_context(|| format!("unknown attribute {kw}"))?;
        if let Some(e) = out.iter_mut().find(|e| e.1 == tag) {
            e.3 = value.to_string();
        } else {
            out.push((kw.to_string(), tag, vr, value.to_string()));
        }
        Ok(())
    };
    for kw in default_keys(level) {
        add(kw, "")?;
    }
    for k in keys {
        let (kw, v) = k.split_once('=').unwrap_or((k.as_str(), ""));
        add(kw.trim(), v)?;
    }
    Ok(out)
}

fn dicom_level(level: &str) -> &'static str {
    match level {
        "series" => "SERIES",
        "image" => "IMAGE",
        _ => "STUDY",
    }
}

fn value_of(obj: &InMemDicomObject, tag: Tag) -> String {
    obj.element(tag)
        .ok()
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
        .unwrap_or_default()
}

async fn find(
    from: &str,
    aet: &str,
    level: &str,
    keys: &[(Tag, VR, &str)],
) -> anyhow::Result<Vec<InMemDicomObject>> {
    let (called, addr) = parse_peer(from).context("--from")?;
    let mut scu = StoreScu::connect(
        addr,
        &config(aet, called),
        &qr_proposals(QueryModel::StudyRoot),
    )
    .await
    .with_context(|| format!("cannot associate with {from}"))?;
    let found = scu
        .find(QueryModel::StudyRoot, &identifier(level, keys))
        .await
        .context("C-FIND")?;
    scu.release().await?;
    Ok(found)
}

/// Runs `lumen query`.
pub fn run_query(args: QueryArgs) -> anyhow::Result<ExitCode> {
    let keys = query_keys(&args.level, &args.keys)?;
    let ident: Vec<(Tag, VR, &str)> = keys.iter().map(|k| (k.1, k.2, k.3.as_str())).collect();
    let found = runtime()?.block_on(find(
        &args.from,
        &args.aet,
        dicom_level(&args.level),
        &ident,
    ))?;
    if args.json {
        let arr = found
            .iter()
            .map(|o| dicom_json::to_value(o).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        println!("{}", serde_json::to_string_pretty(&arr)?);
    } else {
        let rows: Vec<Vec<String>> = found
            .iter()
            .map(|o| keys.iter().map(|k| value_of(o, k.1)).collect())
            .collect();
        let widths: Vec<usize> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([k.0.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: Vec<&str>| {
            cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_string()
        };
        println!("{}", line(keys.iter().map(|k| k.0.as_str()).collect()));
        for r in &rows {
            println!("{}", line(r.iter().map(String::as_str).collect()));
        }
    }
    eprintln!("{} match(es)", found.len());
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

fn part10(r: &ReceivedInstance, source_ae: &str) -> Result<Vec<u8>, String> {
    lumen_dicom::part10::wrap_dataset(
        &r.dataset,
        &r.sop_class_uid,
        &r.sop_instance_uid,
        &r.transfer_syntax_uid,
        Some(source_ae),
    )
    .map_err(|e| e.to_string())
}

/// Runs `lumen retrieve`.
pub fn run_retrieve(args: RetrieveArgs) -> anyhow::Result<ExitCode> {
    let (called, addr) = parse_peer(&args.from).context("--from")?;
    if args.get && args.data.is_none() && args.out.is_none() {
        bail!("--get needs --out DIR (Part-10 files) or --data DIR (an archive)");
    }
    runtime()?.block_on(async {
        // Open the destination first: a locked archive or an unwritable folder fails now.
        let store = match &args.data {
            Some(d) => {
                let conf = crate::config::Config::load(args.config.as_ref(), Default::default())?;
                let mut cfg = StoreConfig::new(d);
                cfg.router = conf.router();
                cfg.storage = conf.storage.object_storage();
                cfg.database = conf.database.clone();
                Some(
                    Store::open(cfg)
                        .await
                        .with_context(|| format!("cannot open the archive in {}", d.display()))?,
                )
            }
            None => None,
        };
        if let Some(o) = &args.out {
            std::fs::create_dir_all(o).with_context(|| format!("cannot create {}", o.display()))?;
        }
        let study = match (&args.study, &args.series) {
            (Some(s), _) => s.clone(),
            (None, Some(series)) => {
                let found = find(
                    &args.from,
                    &args.aet,
                    "SERIES",
                    &[
                        (tags::SERIES_INSTANCE_UID, VR::UI, series.as_str()),
                        (tags::STUDY_INSTANCE_UID, VR::UI, ""),
                    ],
                )
                .await?;
                let Some(first) = found.first() else {
                    bail!("series {series} not found on {}", args.from);
                };
                value_of(first, tags::STUDY_INSTANCE_UID)
            }
            (None, None) => bail!("--study or --series is required"),
        };
        let ident = match &args.series {
            Some(series) => identifier(
                "SERIES",
                &[
                    (tags::STUDY_INSTANCE_UID, VR::UI, study.as_str()),
                    (tags::SERIES_INSTANCE_UID, VR::UI, series.as_str()),
                ],
            ),
            None => identifier(
                "STUDY",
                &[(tags::STUDY_INSTANCE_UID, VR::UI, study.as_str())],
            ),
        };
        let cfg = config(&args.aet, called);
        let model = QueryModel::StudyRoot;
        let result = if let Some(dest) = &args.move_to {
            let mut scu = StoreScu::connect(addr, &cfg, &qr_proposals(model))
                .await
                .with_context(|| format!("cannot associate with {}", args.from))?;
            let r = scu.move_to(model, dest, &ident).await.context("C-MOVE")?;
            scu.release().await?;
            r
        } else {
            let mut proposals = qr_proposals(model);
            proposals.extend(get_storage_proposals(
                GET_STORAGE_CLASSES,
                GET_TRANSFER_SYNTAXES,
            ));
            let mut scu = StoreScu::connect_with_roles(addr, &cfg, &proposals, GET_STORAGE_CLASSES)
                .await
                .with_context(|| format!("cannot associate with {}", args.from))?;
            // Ingest runs beside the association (this runtime interleaves the two), so a
            // large study is not held in memory.
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
            let ingest = store.clone().map(|store| {
                let actor = lumen_app::Actor::command_line(&store.config().default_org);
                let app = lumen_app::App::new(store, lumen_app::Settings::default());
                tokio::spawn(async move {
                    let (mut failed, mut routed) = (0usize, 0usize);
                    while let Some(bytes) = rx.recv().await {
                        match app
                            .receive(&actor, bytes.into(), lumen_store::Origin::Retrieve)
                            .await
                        {
                            Ok(i) => routed += usize::from(i.routed > 0),
                            Err(e) => {
                                failed += 1;
                                eprintln!("not ingested: {e}");
                            }
                        }
                    }
                    app.auditor().flush().await;
                    (failed, routed)
                })
            });
            let out = args.out.clone();
            let r = scu
                .get(model, &ident, |inst| {
                    let bytes = part10(&inst, called)?;
                    match &out {
                        Some(dir) => {
                            write_atomic(dir, &format!("{}.dcm", inst.sop_instance_uid), &bytes)
                                .map_err(|e| e.to_string())
                        }
                        None => tx.send(bytes).map_err(|_| "ingest stopped".to_string()),
                    }
                })
                .await
                .context("C-GET")?;
            scu.release().await?;
            drop(tx);
            if let Some(task) = ingest {
                let (failed, routed) = task.await?;
                if routed > 0 {
                    eprintln!(
                        "{routed} instance(s) queued for routing (sent by `lumen serve` on this data directory)"
                    );
                }
                anyhow::ensure!(failed == 0, "{failed} instance(s) could not be ingested");
            }
            r
        };
        eprintln!(
            "status {:04X}: completed {}, failed {}, warning {}{}",
            result.status,
            result.completed,
            result.failed,
            result.warning,
            result
                .error_comment
                .as_deref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        );
        Ok(
            if status::kind(result.status) == status::StatusKind::Success {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            },
        )
    })
}
