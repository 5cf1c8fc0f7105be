//! Reconciliation pass benchmark: for each provider kind, N subscriptions
//! in one account are created through a real server (against the built-in
//! simulators, over HTTP, rate limits raised), then one full pass runs;
//! the upstream calls it made (counted from the simulator's request log)
//! and its wall time are printed as a Markdown table.
//!
//! ```text
//! cargo bench -p switchboard --bench reconcile                      # 100, 1000, 10000
//! cargo bench -p switchboard --bench reconcile -- --sizes 100,1000 --kinds talkover,bird
//! SWITCHBOARD_BENCH_SIZES=10 cargo bench -p switchboard --bench reconcile   # smoke run
//! ```
//!
//! `--postgres` (with `SWITCHBOARD_TEST_POSTGRES_URL`) runs on Postgres
//! instead of a fresh SQLite file. Each (kind, size) gets a fresh server,
//! database and simulator.

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::time::{Duration, Instant};

use rig::{BIRD, PROVIDERS, Rig, RigOpts, SENDBLUE, TALKOVER, TELEGENT};
use switchboard_engine::ReconcilePolicy;

/// What the command line (or the environment) asks for.
struct Args {
    sizes: Vec<usize>,
    kinds: Vec<String>,
    postgres: bool,
    parallel: usize,
}

fn list<T: std::str::FromStr>(text: &str) -> Vec<T> {
    text.split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn args() -> Args {
    let mut a = Args {
        sizes: list(&std::env::var("SWITCHBOARD_BENCH_SIZES").unwrap_or("100,1000,10000".into())),
        kinds: list(&std::env::var("SWITCHBOARD_BENCH_KINDS").unwrap_or(PROVIDERS.join(","))),
        postgres: false,
        parallel: 16,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => a.sizes = list(&it.next().unwrap_or_default()),
            "--kinds" => a.kinds = list(&it.next().unwrap_or_default()),
            "--parallel" => a.parallel = it.next().and_then(|p| p.parse().ok()).unwrap_or(16),
            "--postgres" => a.postgres = true,
            // `cargo bench` passes `--bench`; other harness flags mean nothing here.
            _ => {}
        }
    }
    a
}

/// One measured pass.
struct Row {
    provider: String,
    subscriptions: usize,
    pages: usize,
    calls: usize,
    stored_calls: u64,
    seed: Duration,
    pass: Duration,
}

fn kind_of(provider: &str) -> &'static str {
    match provider {
        TALKOVER => "talkover",
        BIRD => "accesskey-workspace (Bird)",
        TELEGENT => "telegent",
        SENDBLUE => "account-v2 (Sendblue)",
        _ => "?",
    }
}

async fn measure(provider: &str, n: usize, args: &Args) -> Row {
    let store = if args.postgres {
        switchboard_store::testing::postgres().expect("SWITCHBOARD_TEST_POSTGRES_URL is set")
    } else {
        switchboard_store::testing::sqlite()
    };
    let rig = Rig::start(RigOpts::new(store)).await;
    let started = Instant::now();
    rig.seed(provider, 0, n, args.parallel).await;
    let seed = started.elapsed();
    rig.clear_requests();
    let started = Instant::now();
    let ticks = rig.full_pass(&ReconcilePolicy::default()).await;
    let pass = started.elapsed();
    let log = rig.requests(provider);
    let pages = log
        .iter()
        .filter(|r| r.method == "GET" && !r.path.contains("oauth2"))
        .count();
    let last = ticks.last().expect("one tick at least");
    assert_eq!(
        last.pass.subscriptions_checked, n as u64,
        "every subscription checked"
    );
    Row {
        provider: provider.to_owned(),
        subscriptions: n,
        pages,
        calls: log.len(),
        stored_calls: last.pass.upstream_calls,
        seed,
        pass,
    }
}

fn print(rows: &[Row], args: &Args) {
    let backend = if args.postgres { "Postgres" } else { "SQLite" };
    println!("\nReconciliation pass, one account per kind, {backend}, simulators in process\n");
    println!(
        "| kind | subscriptions | list pages | upstream calls per pass | calls counted by the pass | per-subscription pass it replaces (computed) | pass wall time | seeding (creates/s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        // The replaced pass: one reconcile per subscription, a GET of its
        // native and a full listing each.
        let replaced = r.subscriptions * (1 + r.pages);
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.1} ms | {:.0} |",
            kind_of(&r.provider),
            r.subscriptions,
            r.pages,
            r.calls,
            r.stored_calls,
            replaced,
            r.pass.as_secs_f64() * 1e3,
            r.subscriptions as f64 / r.seed.as_secs_f64(),
        );
    }
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut rows = Vec::new();
    for provider in PROVIDERS
        .iter()
        .filter(|p| args.kinds.iter().any(|k| k == *p))
    {
        for &n in &args.sizes {
            eprintln!("{provider}: {n} subscriptions");
            let row = runtime.block_on(measure(provider, n, &args));
            eprintln!(
                "  {} calls, pass {:.1} ms",
                row.calls,
                row.pass.as_secs_f64() * 1e3
            );
            rows.push(row);
        }
    }
    print(&rows, &args);
}
