//! `lumen`: the one binary — archive server, importer and AI command line.

mod cli_ai;
mod config;
mod export;
mod import;
mod ledger_cli;
mod qr;
mod qr_cli;
mod queue_cli;
mod send;
mod serve;
mod share_client;
mod tls;
mod user_cli;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Lumen: DICOM archive with chest CT AI.
#[derive(Debug, Parser)]
#[command(name = "lumen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the archive: DICOMweb over HTTP and a DICOM (C-STORE/C-ECHO) listener.
    Serve(serve::ServeArgs),
    /// Run AI jobs and routing with no listener, beside front ends on one PostgreSQL index.
    Worker(worker::WorkerArgs),
    /// Send DICOM files and folders to another node with C-STORE, as they are.
    Send(send::SendArgs),
    /// Query another DICOM node with C-FIND (Study Root) and print the matches.
    Query(qr_cli::QueryArgs),
    /// Retrieve a study or series from another DICOM node with C-GET or C-MOVE.
    Retrieve(qr_cli::RetrieveArgs),
    /// Show the routing queue (pending and failed instances per peer); retry refused ones.
    Queue(queue_cli::QueueArgs),
    /// Import DICOM files and folders (DICOMDIR or not) into a data directory.
    Import(import::ImportArgs),
    /// Manage user accounts (server stopped).
    User(user_cli::UserArgs),
    /// Export studies from a data directory as Part-10 files, de-identified if asked.
    Export(export::ExportArgs),
    /// Analyse a chest CT series: lungs, nodules, measurements, Lung-RADS.
    Analyze(cli_ai::AnalyzeArgs),
    /// Evaluate detections against LUNA16-format references (FROC and CPM).
    Eval(cli_ai::EvalArgs),
    /// The tamper-evident ledger: the node's verifier key, and verification of a log.
    Ledger(ledger_cli::LedgerArgs),
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LUMEN_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    // LUMEN_LOG_FORMAT=json: one JSON object per line (for a log collector); the same
    // events and fields as the text format, so the same rule holds: no patient data.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("LUMEN_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().with_current_span(true).init();
    } else {
        builder.init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Worker(args) => worker::run(args),
        Command::Import(args) => import::run(args),
        Command::User(args) => user_cli::run(args),
        Command::Export(args) => export::run(args),
        Command::Queue(args) => queue_cli::run(args),
        Command::Send(args) => send::run(args),
        Command::Query(args) => qr_cli::run_query(args),
        Command::Retrieve(args) => qr_cli::run_retrieve(args),
        Command::Analyze(args) => cli_ai::run_analyze(args).map(|_| ExitCode::SUCCESS),
        Command::Eval(args) => cli_ai::run_eval(args).map(|_| ExitCode::SUCCESS),
        Command::Ledger(args) => ledger_cli::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The default data directory.
pub(crate) fn default_data() -> PathBuf {
    PathBuf::from("./lumen-data")
}
