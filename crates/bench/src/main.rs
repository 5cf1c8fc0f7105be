//! `switchboard-bench`: the benchmark harness of docs/benchmarks.md.
//! `seed` fills a server's database, `load` drives one scenario against a
//! running server, `run` does both for every size, scenario and
//! connection count against child processes it starts and stops itself;
//! `relay` drives relay mode's ingress and receives what it delivers;
//! `echo` is the bare axum server `run` measures as the ceiling.

mod ceiling;
mod client;
mod load;
mod natives;
mod pace;
mod process;
mod receiver;
mod relay;
mod report;
mod run;
mod seed;
mod suite;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::client::Target;
use crate::load::{CreateBody, Inputs, Plan, Scenario, Stop};
use crate::report::Row;

#[derive(Parser)]
#[command(
    name = "switchboard-bench",
    version,
    about = "Switchboard's benchmark harness."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Insert subscriptions straight into a server's database.
    Seed(SeedArgs),
    /// Drive one scenario against a running server.
    Load(LoadArgs),
    /// The whole suite: simulators and server as child processes, every
    /// size, scenario and connection count; one table per backend.
    Run(RunArgs),
    /// Relay mode under load: signed deliveries to the ingress, a local
    /// receiver verifying what is relayed; one table per backend.
    Relay(RelayArgs),
    /// A bare axum JSON echo on preview's path: the framework's ceiling,
    /// which `run` starts and measures itself.
    Echo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

#[derive(Args)]
struct SeedArgs {
    /// The server's config file: its database, keys, tokens and providers.
    #[arg(long)]
    config: PathBuf,
    /// Subscriptions to add.
    #[arg(long)]
    count: u64,
    /// Tenants as `name[:weight]`, round robin (default: each token's
    /// tenant once).
    #[arg(long, value_delimiter = ',')]
    tenants: Vec<String>,
    /// Provider keys (default: every configured provider).
    #[arg(long, value_delimiter = ',')]
    providers: Vec<String>,
    /// Write the first tenant's new ids here, one a line (for `load
    /// --ids-file`).
    #[arg(long)]
    ids_file: Option<PathBuf>,
}

#[derive(Args)]
struct LoadArgs {
    /// The server's root URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// API token (read and write scopes).
    #[arg(long, env = "SWITCHBOARD_BENCH_TOKEN")]
    token: String,
    /// What to measure.
    #[arg(long)]
    scenario: Scenario,
    /// Concurrent connections (virtual users).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured time (`10s`, `500ms`, `2m`); the default.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Stop after this many requests instead of a duration.
    #[arg(long, conflicts_with = "duration")]
    requests: Option<u64>,
    /// Unmeasured time first (duration runs only).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
    /// The server's process id: its highest RSS is reported.
    #[arg(long)]
    pid: Option<u32>,
    /// Print JSON instead of a Markdown row.
    #[arg(long)]
    json: bool,
    /// Ids for `get` (from `seed --ids-file`); without it the list is
    /// walked for up to --max-ids ids.
    #[arg(long)]
    ids_file: Option<PathBuf>,
    /// Ids collected for `get` by walking the list.
    #[arg(long, default_value_t = 20_000)]
    max_ids: usize,
    /// Subscriptions created first for `patch` and `delete`.
    #[arg(long, default_value_t = 2_000)]
    prepare: u64,
    /// `walk`: start after this subscription id (default: the first page).
    #[arg(long)]
    cursor: Option<String>,
    /// `walk`: pages before starting over.
    #[arg(long, default_value_t = 10)]
    walk_pages: usize,
    /// `list` and `walk`: page size.
    #[arg(long, default_value_t = 50)]
    page_size: u32,
    /// `create` and `preview`: provider key.
    #[arg(long, default_value = "talkover")]
    provider: String,
    /// `create` and `preview`: account (the demo Talkover agent by default).
    #[arg(long, default_value = "9fbef0b7-8d4e-4a08-9207-66c22155721d")]
    account: String,
    /// `create` and `preview`: the event.
    #[arg(long, default_value = "call.ended")]
    event: String,
}

#[derive(Args)]
struct RunArgs {
    /// Database sizes, ascending.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    sizes: Vec<u64>,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    connections: Vec<usize>,
    /// Measured time per scenario.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Unmeasured time before each scenario.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Scenarios, in order (patch and delete work on what create made).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "create,get,list,walk,preview,patch,delete"
    )]
    scenarios: Vec<Scenario>,
    /// Also run on Postgres (a fresh schema, dropped afterwards).
    #[arg(long)]
    postgres: Option<String>,
    /// Skip SQLite (with --postgres).
    #[arg(long, requires = "postgres")]
    no_sqlite: bool,
    /// The deep page of the cursor walk.
    #[arg(long, default_value_t = 2000)]
    walk_depth: usize,
    /// Pages a walk follows before starting over.
    #[arg(long, default_value_t = 10)]
    walk_pages: usize,
    /// Tiny sizes, 2 connections and about a second per scenario: checks
    /// that everything starts (CI); any error fails the run.
    #[arg(long)]
    smoke: bool,
    /// Directory of the `switchboard` binary (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also write every row as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Skip the ceiling (a bare axum JSON echo measured with preview's
    /// request before the suite).
    #[arg(long)]
    no_ceiling: bool,
}

#[derive(Args)]
struct RelayArgs {
    /// Relay subscriptions on Talkover (one native each).
    #[arg(long, default_value_t = 50)]
    subscriptions: usize,
    /// Relay subscriptions on Bird as well (HMAC-signed deliveries; at
    /// most 20).
    #[arg(long, default_value_t = 0)]
    bird: usize,
    /// Paces, one measured run each: deliveries per second on schedule
    /// (open loop), or `max` (closed loop).
    #[arg(long, value_delimiter = ',', default_value = "2500,5000,max")]
    rates: Vec<pace::Pace>,
    /// Connections to the ingress.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured time per run.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    duration: Duration,
    /// Unmeasured time before it.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    warmup: Duration,
    /// Longest wait for a run's events after sending stops.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    drain: Duration,
    /// Also run on Postgres (a fresh schema, dropped afterwards).
    #[arg(long)]
    postgres: Option<String>,
    /// Skip SQLite (with --postgres).
    #[arg(long, requires = "postgres")]
    no_sqlite: bool,
    /// Two subscriptions, 200 deliveries/s for about a second: checks that
    /// relay works end to end (CI); anything lost or refused fails.
    #[arg(long)]
    smoke: bool,
    /// Directory of the `switchboard` binary (default: beside this one).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also write every row as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// `10s`, `500ms`, `2m` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |i| text.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: not a duration"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{text}`: use ms, s or m")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // Ctrl-C and SIGTERM end the work, so children are stopped on
        // the way out (their guards are dropped).
        tokio::select! {
            r = dispatch(cli.command) => r,
            () = interrupted() => Err("interrupted".to_owned()),
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("switchboard-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

/// Runs a command; `Ok(false)` when it measured errors.
async fn dispatch(command: Command) -> Result<bool, String> {
    match command {
        Command::Seed(args) => seed(args).await.map(|()| true),
        Command::Load(args) => load(args).await,
        Command::Run(args) => run(args).await,
        Command::Relay(args) => relay(args).await,
        Command::Echo { listen } => ceiling::serve(listen).await.map(|()| true),
    }
}

async fn seed(args: SeedArgs) -> Result<(), String> {
    let tenants = args
        .tenants
        .iter()
        .map(|t| match t.split_once(':') {
            Some((name, w)) => w
                .parse()
                .map(|w| (name.to_owned(), w))
                .map_err(|_| format!("--tenants {t}: the weight is not a number")),
            None => Ok((t.clone(), 1)),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut seeder = seed::Seeder::open(&args.config, &tenants, &args.providers, 0).await?;
    let done = seeder.seed(args.count).await?;
    seeder.close().await;
    if let Some(path) = &args.ids_file {
        let text = done.first_tenant_ids.join("\n") + "\n";
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let secs = done.elapsed.as_secs_f64();
    println!(
        "seeded {} subscriptions in {secs:.1} s ({:.0}/s)",
        done.count,
        done.count as f64 / secs.max(1e-9)
    );
    Ok(())
}

async fn load(args: LoadArgs) -> Result<bool, String> {
    let target = Target::new(&args.url, &args.token).await?;
    let mut inputs = Inputs {
        create: CreateBody {
            provider: args.provider.clone(),
            account: Some(args.account.clone()).filter(|a| !a.is_empty()),
            event: args.event.clone(),
        },
        ids: Arc::default(),
        owned: Vec::new(),
        walk_from: args.cursor.clone(),
        walk_pages: args.walk_pages,
        page_size: args.page_size,
    };
    match args.scenario {
        Scenario::Get => inputs.ids = Arc::new(ids_for_get(&args, &target).await?),
        Scenario::Patch | Scenario::Delete => {
            let prepare = Plan {
                scenario: Scenario::Create,
                connections: args.connections,
                stop: Stop::Requests(args.prepare),
                warmup: Duration::ZERO,
                pid: None,
            };
            inputs.owned = load::run(&target, &prepare, &inputs).await?.created;
        }
        _ => {}
    }
    let plan = Plan {
        scenario: args.scenario,
        connections: args.connections,
        stop: args
            .requests
            .map_or(Stop::After(args.duration), Stop::Requests),
        warmup: args.warmup,
        pid: args.pid,
    };
    let outcome = load::run(&target, &plan, &inputs).await?;
    let name = serde_json::to_value(args.scenario)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let row = Row::new(name, args.connections, &outcome);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&row).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}\n{}", report::header(), report::markdown(&row));
        for e in report::errors(std::slice::from_ref(&row)) {
            println!("{e}");
        }
    }
    Ok(row.errors == 0)
}

async fn ids_for_get(args: &LoadArgs, target: &Target) -> Result<Vec<String>, String> {
    match &args.ids_file {
        Some(path) => Ok(std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()),
        None => load::collect_ids(target, args.max_ids).await,
    }
}

async fn run(args: RunArgs) -> Result<bool, String> {
    let mut opts = run::RunOptions {
        sizes: args.sizes,
        connections: args.connections,
        duration: args.duration,
        warmup: args.warmup,
        scenarios: args.scenarios,
        sqlite: !args.no_sqlite,
        postgres: args.postgres,
        walk_depth: args.walk_depth,
        walk_pages: args.walk_pages,
        bin_dir: args.bin_dir,
        ceiling: !args.no_ceiling,
    };
    if args.smoke {
        opts.sizes = vec![600];
        opts.connections = vec![2];
        opts.duration = Duration::from_millis(800);
        opts.warmup = Duration::from_millis(200);
        opts.walk_depth = 5;
        opts.walk_pages = 2;
    }
    let reports = run::run(&opts).await?;
    let rows: Vec<&Row> = reports.iter().flat_map(|r| &r.rows).collect();
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let failed: Vec<&&Row> = rows
        .iter()
        .filter(|r| r.errors > 0 || r.requests == 0)
        .collect();
    if !failed.is_empty() {
        eprintln!("{} run(s) had errors or no requests", failed.len());
    }
    Ok(failed.is_empty())
}

async fn relay(args: RelayArgs) -> Result<bool, String> {
    let mut opts = relay::RelayOptions {
        talkover: args.subscriptions,
        bird: args.bird,
        paces: args.rates,
        connections: args.connections,
        duration: args.duration,
        warmup: args.warmup,
        drain: args.drain,
        sqlite: !args.no_sqlite,
        postgres: args.postgres,
        bin_dir: args.bin_dir,
    };
    if args.smoke {
        opts.talkover = 2;
        opts.bird = opts.bird.min(1);
        opts.paces = vec![pace::Pace::Rate(200.0)];
        opts.connections = 4;
        opts.duration = Duration::from_millis(800);
        opts.warmup = Duration::from_millis(200);
    }
    let rows = relay::run(&opts).await?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let unclean = rows.iter().filter(|r| !r.clean()).count();
    if unclean > 0 {
        eprintln!("{unclean} relay run(s) lost, refused or mis-signed deliveries");
    }
    Ok(unclean == 0)
}
