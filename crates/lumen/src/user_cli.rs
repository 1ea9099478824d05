//! `lumen user`: accounts managed on the server's machine while the server is stopped
//! (with it running, admins use the API or the web app). The command line acts as the
//! machine's operator and is audited as such.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use lumen_store::{Store, StoreConfig};

/// `lumen user ...`.
#[derive(Debug, clap::Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, clap::Subcommand)]
enum UserCommand {
    /// Create an account (the password is read from standard input).
    Add(AddArgs),
    /// List the accounts.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct AddArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// The configuration (for the node's own organisation; default ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Login name.
    #[arg(long)]
    username: String,
    /// admin, radiologist, technologist or referrer.
    #[arg(long)]
    role: String,
    /// Organisation id (default: the node's own); created when it does not exist.
    #[arg(long)]
    org: Option<String>,
    /// Name shown in the app and printed on signed reports (default: the login name).
    #[arg(long)]
    display_name: Option<String>,
    /// Read the password from standard input (the only way: never on the command line).
    #[arg(long, required = true)]
    password_stdin: bool,
    /// Require a password change at first login.
    #[arg(long)]
    must_change_password: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Data directory of the archive [env: LUMEN_DATA].
    #[arg(long, env = "LUMEN_DATA", default_value_os_t = crate::default_data())]
    data: PathBuf,
    /// The configuration (default ./lumen.toml if present).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Checks an organisation id given on the command line.
pub fn check_org(org: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        !org.is_empty()
            && org.len() <= 64
            && org
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')),
        "an organisation id is 1 to 64 letters, digits, '.', '_' or '-'"
    );
    Ok(())
}

/// Runs `lumen user`.
pub fn run(args: UserArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        match args.command {
            UserCommand::Add(a) => add(a).await,
            UserCommand::List(a) => list(a).await,
        }
    })
}

async fn open(
    data: &std::path::Path,
    config: Option<&PathBuf>,
) -> anyhow::Result<(lumen_app::App, crate::config::Config)> {
    let conf = crate::config::Config::load(config, Default::default())?;
    let store = Store::open(StoreConfig {
        data_dir: data.to_path_buf(),
        router: None,
        ..conf.store_config()
    })
    .await
    .with_context(|| format!("cannot open the archive in {}", data.display()))?;
    Ok((lumen_app::App::new(store, conf.app_settings()), conf))
}

async fn add(a: AddArgs) -> anyhow::Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_string();
    let (app, conf) = open(&a.data, a.config.as_ref()).await?;
    let org = a.org.clone().unwrap_or_else(|| conf.org.clone());
    check_org(&org)?;
    let actor = lumen_app::Actor::command_line(&org);
    let user = app
        .create_user(
            &actor,
            &lumen_app::auth::CreateUser {
                username: a.username.clone(),
                display_name: a.display_name.clone(),
                role: a.role.clone(),
                org: Some(org),
                password,
                must_change_password: Some(a.must_change_password),
            },
        )
        .await?;
    app.auditor().flush().await;
    eprintln!(
        "created user {} ({}, organisation {})",
        user.username,
        user.role.as_str(),
        user.org
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(a: ListArgs) -> anyhow::Result<ExitCode> {
    let (app, conf) = open(&a.data, a.config.as_ref()).await?;
    let actor = lumen_app::Actor::command_line(&conf.org);
    for u in app.list_users(&actor).await? {
        println!(
            "{}\t{}\t{}\t{}{}",
            u.username,
            u.role.as_str(),
            u.org,
            u.display_name,
            if u.disabled { "\t(disabled)" } else { "" }
        );
    }
    app.auditor().flush().await;
    Ok(ExitCode::SUCCESS)
}
