//! `qiao`: the server and its administration commands.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use qiao::config::{Config, LogFormat};
use qiao::{Layer, serve};
use qiao_service::setup::OwnerInput;

#[derive(Parser)]
#[command(name = "qiao", version, about = "Qiao (桥): self-hosted enterprise messaging and collaboration")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (and web client). With no settings: SQLite and files under
    /// ./qiao-data, listening on 127.0.0.1:8080.
    Serve(ServeArgs),
    /// Administration from the command line (works on the database directly).
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// A TOML file of settings (names as below, with underscores: `listen = "0.0.0.0:8080"`).
    #[arg(long, env = "QIAO_CONFIG")]
    config: Option<PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(flatten)]
    settings: Layer,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Rebuild the search index from the stored messages (with the server stopped: it holds
    /// the index while it runs, and rebuilds by itself when the index is missing or stale).
    Reindex {
        #[arg(long, env = "QIAO_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Layer,
    },
    /// Create an owner account (for scripted installs, or to regain access). The password is
    /// read from standard input, one line.
    CreateOwner {
        #[arg(long)]
        username: String,
        #[arg(long)]
        display_name: String,
        #[arg(long)]
        email: Option<String>,
        /// Also rename the organisation.
        #[arg(long)]
        org_name: Option<String>,
        /// Read the password from standard input (required: passwords never go in arguments).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, env = "QIAO_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Layer,
    },
}

fn load(config: Option<PathBuf>, settings: Layer) -> Result<Config, String> {
    let file = match config {
        Some(path) => Layer::from_file(&path).map_err(|e| e.to_string())?,
        None => Layer::default(),
    };
    settings.over(file).resolve().map_err(|e| e.to_string())
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
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
    tracing::info!("shutdown signal received");
}

async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => {
            let config = load(args.config, args.settings)?;
            if args.print_config {
                print!("{}", config.to_toml());
                return Ok(());
            }
            init_logging(&config);
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
            serve(config, listener, shutdown_signal()).await.map_err(|e| e.message.into_owned())
        }
        Command::Admin(AdminCommand::Reindex { config, settings }) => {
            let config = load(config, settings)?;
            init_logging(&config);
            let _lock = qiao::lock_for_admin(&config, "stop it first (a rebuild rewrites the index it reads)")
                .map_err(|e| e.message.into_owned())?;
            let (store, services) = qiao::open_services(&config).await.map_err(|e| e.message.into_owned())?;
            let started = std::time::Instant::now();
            let mut last = std::time::Instant::now() - std::time::Duration::from_secs(1);
            let mut progress = |done: u64, total: u64| {
                if last.elapsed().as_millis() >= 200 || done == total {
                    last = std::time::Instant::now();
                    let pct = (done * 100).checked_div(total).unwrap_or(100);
                    let bar = "#".repeat((pct / 4) as usize);
                    eprint!("\rindexing messages [{bar:<25}] {done}/{total} ({pct}%)");
                }
            };
            let result = qiao_service::search::rebuild(&store, &services.search, &mut progress).await;
            eprintln!();
            store.close().await;
            result.map_err(|e| e.message.into_owned())?;
            println!(
                "Search index rebuilt: {} messages in {:.1} s.",
                services.search.len(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Admin(AdminCommand::CreateOwner {
            username,
            display_name,
            email,
            org_name,
            password_stdin: _,
            config,
            settings,
        }) => {
            let config = load(config, settings)?;
            init_logging(&config);
            let mut password = String::new();
            std::io::stdin().lock().read_line(&mut password).map_err(|e| format!("cannot read the password: {e}"))?;
            let password = password.trim_end_matches(['\n', '\r']).to_owned();
            let _lock = qiao::lock_for_admin(
                &config,
                "open the one-time setup link it printed (or POST /api/v1/setup with its token), or stop it first",
            )
            .map_err(|e| e.message.into_owned())?;
            let (store, services) = qiao::open_services(&config).await.map_err(|e| e.message.into_owned())?;
            let result = async {
                services.bootstrap(&config.org_name).await?;
                services.create_owner(&OwnerInput { username, email, display_name, password, org_name }).await
            }
            .await;
            store.close().await;
            let user = result.map_err(|e| match &e.field {
                Some(f) => format!("{f}: {}", e.message),
                None => e.message.into_owned(),
            })?;
            println!("Created owner {} ({}). Sign in at {}", user.username, user.id, config.public_url);
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
