//! `lumen ledger`: the node's ledger key, the audit of a log, offline from a data
//! directory or remotely from its URL, as a member hospital or an auditor would, and the
//! deletion of a study's salts (PIPL Art. 47).
//!
//! `key` and `verify` do not open the archive (no lock is taken), so they work beside a
//! running server; `forget` opens it, like `lumen export`, so the server must be stopped.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use lumen_ledger::cosign::{CosignatureVerifier, checkpoint_time, is_stale, verified_cosigners};
use lumen_ledger::note::parse_verifier;
use lumen_ledger::{StoreError, TileStore, verify_log};

use crate::config::{Config, Overrides};

/// `lumen ledger ...`.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
}

#[derive(Debug, clap::Subcommand)]
enum LedgerCommand {
    /// Print the node's verifier key (`name+keyid+base64`), creating the key if absent.
    Key(KeyArgs),
    /// Verify a log: its checkpoint's signature, every entry bundle, every hash tile and
    /// the root (exit 0 when intact, non-zero with the reason otherwise).
    Verify(VerifyArgs),
    /// Carry out a deletion request (PIPL Art. 47): delete the salts of a study's ledger
    /// entries, so that they can no longer be linked to its events (the log is unchanged
    /// and still verifies). Opens the archive: stop `lumen serve` first.
    Forget(ForgetArgs),
}

#[derive(Debug, clap::Args)]
struct ForgetArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// The configuration (`database` and object storage; default ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Study Instance UID whose entries to forget.
    #[arg(long)]
    study: String,
}

#[derive(Debug, clap::Args)]
struct KeyArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// The configuration (for `[ledger] origin`, the key's name; default ./lumen.toml if
    /// present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the node's witness (cosignature/v1) key instead, creating it if absent.
    #[arg(long)]
    witness: bool,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// Verify the log in this data directory (`DATA/ledger/`), offline.
    #[arg(long, conflicts_with = "url")]
    data: Option<PathBuf>,
    /// Verify the log served at this URL prefix (e.g. `https://pacs.example/ledger`).
    #[arg(long, requires = "key")]
    url: Option<String>,
    /// The log's verifier key (default with --data: the data directory's own key).
    #[arg(long)]
    key: Option<String>,
    /// A witness's cosignature/v1 verifier key (repeatable).
    #[arg(long = "witness-key")]
    witness_keys: Vec<String>,
    /// How many of the witnesses must have cosigned the checkpoint.
    #[arg(long, default_value_t = 0)]
    quorum: usize,
    /// Fail when the checkpoint is older than this many seconds: its newest cosignature of
    /// a --witness-key, or, with none, when the node wrote it (the file's modification time
    /// with --data, the server's Last-Modified with --url).
    #[arg(long, value_name = "SECONDS")]
    max_age: Option<u64>,
}

/// Runs `lumen ledger`.
pub fn run(args: LedgerArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        LedgerCommand::Key(a) => {
            let config = Config::load(
                a.config.as_ref(),
                Overrides {
                    data: Some(a.data.clone()),
                    ..Overrides::default()
                },
            )?;
            if a.witness {
                let cosigner = lumen_store::witness_key(&a.data, &config.ledger_witness_name())
                    .context("the ledger witness key")?;
                println!("{}", cosigner.vkey());
            } else {
                let signer = lumen_store::ledger_key(&a.data, &config.ledger_origin())
                    .context("the ledger key")?;
                println!("{}", signer.vkey());
            }
            Ok(ExitCode::SUCCESS)
        }
        LedgerCommand::Verify(a) => verify(a),
        LedgerCommand::Forget(a) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            rt.block_on(forget(a))
        }
    }
}

async fn forget(a: ForgetArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(a.data.is_dir(), "no data directory {}", a.data.display());
    let (app, actor) = crate::export::open_offline(&a.data, a.config.as_ref()).await?;
    let forgotten = app
        .forget_study_ledger(&actor, &a.study)
        .await
        .context("cannot forget the study's ledger salts")?;
    println!(
        "forgot the salts of {forgotten} ledger entries of study {} (and the index's record of \
         their study and events): they stay in the log, unlinkable",
        a.study
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let witnesses = a
        .witness_keys
        .iter()
        .map(|k| CosignatureVerifier::new(k).context("--witness-key"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        a.quorum <= witnesses.len(),
        "--quorum {} needs at least as many --witness-key",
        a.quorum
    );
    let (result, checkpoint, written, what, verifier) = match (&a.data, &a.url) {
        (Some(data), None) => {
            let vkey = match &a.key {
                Some(k) => k.clone(),
                None => {
                    anyhow::ensure!(
                        lumen_store::has_ledger_key(data),
                        "{} has no ledger key; give the log's verifier key with --key",
                        data.display()
                    );
                    // The name is only used when creating a key; this one exists.
                    lumen_store::ledger_key(data, "unused")
                        .context("the ledger key")?
                        .vkey()
                }
            };
            let verifier = parse_verifier(&vkey).context("--key")?;
            let files = lumen_store::LedgerFiles::new(data);
            let result = verify_log(&files, &*verifier);
            let checkpoint = files.read("checkpoint").ok().flatten();
            let written = files.checkpoint_written().ok().flatten();
            (
                result,
                checkpoint,
                written,
                files.root().display().to_string(),
                verifier,
            )
        }
        (None, Some(url)) => {
            let vkey = a.key.as_deref().context("--url needs --key")?;
            let verifier = parse_verifier(vkey).context("--key")?;
            let remote = Remote::new(url);
            let result = verify_log(&remote, &*verifier);
            let (checkpoint, written) = remote.checkpoint().unwrap_or_default();
            (result, checkpoint, written, url.clone(), verifier)
        }
        _ => anyhow::bail!("give --data DIR or --url URL --key VKEY"),
    };
    let log = match result {
        Ok(log) => log,
        Err(e) => {
            eprintln!("ledger at {what} does NOT verify: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut cosigned = Vec::new();
    if !witnesses.is_empty() || a.max_age.is_some() {
        let checkpoint = checkpoint.unwrap_or_default();
        // The cosignatures counted must be on the checkpoint that was verified.
        let same = lumen_ledger::open_checkpoint(&checkpoint, &*verifier)
            .is_ok_and(|c| c.size == log.size && c.root == log.root);
        if !same {
            eprintln!("ledger at {what}: the checkpoint changed during verification; run again");
            return Ok(ExitCode::FAILURE);
        }
        cosigned = match verified_cosigners(&checkpoint, &witnesses) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("ledger at {what} does NOT verify: a witness cosignature: {e}");
                return Ok(ExitCode::FAILURE);
            }
        };
        for c in &cosigned {
            println!("cosigned by {} at {}", c.name, c.timestamp);
        }
        if cosigned.len() < a.quorum {
            eprintln!(
                "ledger at {what} does NOT verify: {} of the witnesses cosigned the checkpoint, {} required",
                cosigned.len(),
                a.quorum
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if let Some(max_age) = a.max_age {
        let time = checkpoint_time(&cosigned, written);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if is_stale(time, now, max_age) {
            let age = match time {
                Some(t) => format!("{} s old", now.saturating_sub(t)),
                None => "of unknown age (no cosignature, no write time)".to_string(),
            };
            let basis = if cosigned.is_empty() {
                "when the node wrote it"
            } else {
                "its newest cosignature"
            };
            eprintln!(
                "ledger at {what} is NOT fresh: the checkpoint (size {}) is {age} by {basis}, more than --max-age {max_age} s",
                log.size
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    println!(
        "ledger {} verified: {} entries, root {}",
        log.origin,
        log.size,
        hex_root(&log.root)
    );
    Ok(ExitCode::SUCCESS)
}

fn hex_root(h: &lumen_ledger::Hash) -> String {
    h.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// A log served over HTTP(S) under a URL prefix, read with GET.
struct Remote {
    prefix: String,
    agent: ureq::Agent,
}

impl Remote {
    fn new(prefix: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Remote {
            prefix: prefix.trim_end_matches('/').to_string(),
            agent,
        }
    }
}

impl Remote {
    /// The checkpoint and its `Last-Modified` time (POSIX seconds), if the server sent one.
    fn checkpoint(&self) -> Result<(Option<Vec<u8>>, Option<u64>), StoreError> {
        let url = format!("{}/checkpoint", self.prefix);
        let mut r = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| StoreError(format!("{url}: {e}")))?;
        if r.status().as_u16() != 200 {
            return Ok((None, None));
        }
        let written = r
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| StoreError(format!("{url}: {e}")))?;
        Ok((Some(body), written))
    }
}

impl TileStore for Remote {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let url = format!("{}/{path}", self.prefix);
        let mut r = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| StoreError(format!("{url}: {e}")))?;
        match r.status().as_u16() {
            200 => r
                .body_mut()
                .with_config()
                .limit(16 << 20)
                .read_to_vec()
                .map(Some)
                .map_err(|e| StoreError(format!("{url}: {e}"))),
            404 => Ok(None),
            s => Err(StoreError(format!("{url}: HTTP {s}"))),
        }
    }

    fn write(&mut self, path: &str, _data: &[u8]) -> Result<(), StoreError> {
        Err(StoreError(format!("{path}: a remote log is read-only")))
    }
}

/// The sequencer's HTTP client for witnesses' `add-checkpoint`.
pub struct HttpWitnessClient {
    agent: ureq::Agent,
}

impl HttpWitnessClient {
    /// A client with a 10-second limit per request.
    pub fn new() -> Self {
        HttpWitnessClient {
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(10)))
                .http_status_as_error(false)
                .build()
                .into(),
        }
    }
}

impl lumen_app::ledger::WitnessClient for HttpWitnessClient {
    fn post(&self, url: &str, body: &[u8]) -> Result<(u16, Vec<u8>), String> {
        let mut r = self
            .agent
            .post(url)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(body)
            .map_err(|e| format!("{url}: {e}"))?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| format!("{url}: {e}"))?;
        Ok((status, body))
    }
}
