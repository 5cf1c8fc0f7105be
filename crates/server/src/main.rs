//! The `switchboard` command line: `serve` (default), `migrate`,
//! `config check`, `secrets`, `simulate`, and the client commands of
//! `switchboard-client` (`subscriptions`, `providers`, `events`,
//! `healthcheck`, `plan`, `apply`).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::{App, Config, StartError};
use switchboard_telemetry::otlp::TraceExport;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the system allocator: a request allocates and frees
/// many small buffers on several threads (runtime workers, SQLite's), and
/// glibc's arenas spent a fifth of the server's time in malloc, free and
/// their locks under load (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "One normalized webhook subscription, many providers."
)]
struct Cli {
    /// Config file (default: config/default.toml when present).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Data-encryption keys.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Serve the built-in provider simulators on their own (needs the
    /// `demo` feature), one per configured provider kind, until Ctrl-C or
    /// SIGTERM; prints `<provider key> <base_url>` for each provider.
    Simulate {
        /// Address of the simulators; port 0 gives each kind a free port
        /// (default: `simulators.listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Also write `{"<provider key>": "<base_url>"}` to this file.
        #[arg(long)]
        urls_file: Option<PathBuf>,
    },
    /// Client commands against a running server (no config needed).
    #[command(flatten)]
    Client(switchboard_client::Command),
}

#[derive(Subcommand)]
enum SecretsAction {
    /// Print a new random key for `[[secrets.keys]]`.
    GenerateKey {
        /// Id to give the key.
        #[arg(long, default_value = "k1")]
        id: String,
    },
    /// Re-seal every stored secret with the first configured key.
    Rotate,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Validate the configuration without starting.
    Check,
}

fn init_tracing(cfg: &Config) -> Option<TraceExport> {
    init_tracing_to(cfg, std::io::stdout, std::io::stdout().is_terminal())
}

/// Logs to `writer` (`simulate` keeps stdout for its provider lines),
/// coloured only when `terminal` (a file or a pipe gets plain text, which
/// is also cheaper to format) and, with `[telemetry] otlp_endpoint`,
/// exports spans; the export is returned to be shut down (flushed) once
/// the runtime's work is done.
fn init_tracing_to<W>(cfg: &Config, writer: W, terminal: bool) -> Option<TraceExport>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(terminal)
        .with_writer(writer);
    let export = switchboard::app::trace_export(cfg);
    if cfg.log.format == "json" {
        let logs = builder.json().finish();
        logs.with(export.as_ref().map(TraceExport::layer)).init();
    } else {
        let logs = builder.finish();
        logs.with(export.as_ref().map(TraceExport::layer)).init();
    }
    export
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Client commands run anywhere (a CI job, a container probe): they
    // read no server configuration.
    if let Some(Command::Client(command)) = cli.command {
        return switchboard_client::run(command);
    }
    if let Some(Command::Secrets {
        action: SecretsAction::GenerateKey { id },
    }) = &cli.command
    {
        let (_, b64) = switchboard_store::SecretKey::generate(id);
        println!("[[secrets.keys]]\nid = \"{id}\"\nkey = \"{b64}\"");
        return ExitCode::SUCCESS;
    }
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("switchboard: invalid configuration: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config {
            action: ConfigAction::Check,
        } => runtime.block_on(check(config)),
        Command::Migrate => {
            init_tracing(&config);
            runtime.block_on(async {
                match open_store(&config).await {
                    Ok(_) => {
                        println!("migrations applied to {}", redact_url(&config.database.url));
                        ExitCode::SUCCESS
                    }
                    Err(code) => code,
                }
            })
        }
        Command::Secrets {
            action: SecretsAction::Rotate,
        } => {
            init_tracing(&config);
            runtime.block_on(rotate_keys(config))
        }
        Command::Secrets {
            action: SecretsAction::GenerateKey { .. },
        } => ExitCode::SUCCESS,
        Command::Client(_) => ExitCode::SUCCESS,
        Command::Serve => {
            let traces = init_tracing(&config);
            let code = runtime.block_on(serve(config));
            if let Some(t) = traces {
                t.shutdown();
            }
            code
        }
        Command::Simulate { listen, urls_file } => {
            init_tracing_to(&config, std::io::stderr, std::io::stderr().is_terminal());
            runtime.block_on(simulate(config, listen, urls_file))
        }
    }
}

/// `secrets rotate`: every stored secret re-sealed with the first key.
async fn rotate_keys(config: Config) -> ExitCode {
    let store = match open_store(&config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.rotate_keys().await {
        Ok(n) => {
            println!("re-sealed {n} subscription(s) with the first configured key");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("switchboard: rotation failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `simulate`: the simulators alone, until a shutdown signal.
async fn simulate(
    config: Config,
    listen: Option<std::net::SocketAddr>,
    urls_file: Option<PathBuf>,
) -> ExitCode {
    let listen = listen.unwrap_or(config.simulators.listen);
    let served = match switchboard::simulate::start(config, listen).await {
        Ok(s) => s,
        Err(e @ StartError::Config(_)) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &urls_file
        && let Err(e) = served.write_urls(path)
    {
        eprintln!("switchboard: --urls-file {}: {e}", path.display());
        served.shutdown().await;
        return ExitCode::FAILURE;
    }
    for line in served.lines() {
        println!("{line}");
    }
    shutdown_signal().await;
    served.shutdown().await;
    ExitCode::SUCCESS
}

/// Connects (running migrations) with the configured keys.
async fn open_store(config: &Config) -> Result<switchboard_store::Store, ExitCode> {
    let cipher = switchboard::app::cipher(config).map_err(|e| {
        eprintln!("switchboard: {e}");
        ExitCode::from(2)
    })?;
    let mut opts = switchboard_store::StoreOptions::new(config.database.url.clone(), cipher);
    opts.max_connections = 2;
    opts.pg_schema = config.database.schema.clone();
    switchboard_store::Store::connect(&opts).await.map_err(|e| {
        eprintln!("switchboard: database.url: {e}");
        ExitCode::FAILURE
    })
}

/// `config check`: everything `serve` validates, without a database or socket.
async fn check(config: Config) -> ExitCode {
    let mut problems = Vec::new();
    if let Err(e) = std::fs::read_to_string(&config.events.file)
        .map_err(|e| {
            format!(
                "events.file: cannot read {}: {e}",
                config.events.file.display()
            )
        })
        .and_then(|t| {
            switchboard_core::EventCatalog::from_toml(&t)
                .and_then(|c| switchboard_registry::check_catalog(&c))
                .map_err(|e| format!("events.file: {e}"))
        })
    {
        problems.push(e);
    }
    let transport: std::sync::Arc<dyn switchboard_core::Transport> =
        match switchboard_transport::HttpTransport::new(Default::default(), Default::default()) {
            Ok(t) => std::sync::Arc::new(t),
            Err(e) => {
                eprintln!("switchboard: {e}");
                return ExitCode::FAILURE;
            }
        };
    for (key, p) in &config.providers {
        if let Err(e) = switchboard::providers::build(key, p, transport.clone()) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        println!(
            "configuration is valid: {} provider(s), {} token(s), database {}",
            config.providers.len(),
            config.auth.tokens.len(),
            redact_url(&config.database.url)
        );
        ExitCode::SUCCESS
    } else {
        for p in problems {
            eprintln!("switchboard: invalid configuration: {p}");
        }
        ExitCode::from(2)
    }
}

/// A database URL without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
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
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; draining in-flight requests");
}

async fn serve(config: Config) -> ExitCode {
    let listen = config.server.listen;
    let grace = std::time::Duration::from_secs(config.server.shutdown_grace_seconds);
    let demo = config.simulators.enabled;
    let app = match App::build(config).await {
        Ok(a) => a,
        Err(e @ StartError::Config(_)) => {
            eprintln!("switchboard: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("switchboard: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("switchboard: server.listen: cannot bind {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if demo {
        println!("Switchboard demo mode: built-in provider simulators are running.");
        for (key, url) in app.simulated_providers() {
            println!("  provider `{key}` -> simulator at {url}");
        }
        for t in &app.config.auth.tokens {
            if let Some(tok) = &t.token {
                // Demo tokens are printed on purpose: they are plain values
                // in a local config file and grant access to simulators only.
                println!("  demo token for tenant `{}`: {}", t.tenant, tok.expose());
            }
        }
    }
    println!("Switchboard listening on http://{addr}");
    tracing::info!(%addr, "listening");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = rx.await;
    }));
    shutdown_signal().await;
    let _ = tx.send(());
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(Ok(()))) => ExitCode::SUCCESS,
        Ok(Ok(Err(e))) => {
            eprintln!("switchboard: server error: {e}");
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("switchboard: server task failed: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            tracing::warn!("in-flight requests did not finish within the grace period");
            ExitCode::SUCCESS
        }
    }
}
