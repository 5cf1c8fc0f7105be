//! `run`: the whole suite in one command. Per backend: the simulators in a
//! process of their own, then for each size the database seeded up to it
//! (with the server stopped), the server started (start-up time measured),
//! every scenario run at every connection count while its RSS is sampled,
//! and the server stopped again. One Markdown table per backend.

use std::sync::Arc;
use std::time::Duration;

use crate::load::{self, CreateBody, Inputs, Plan, Scenario, Stop};
use crate::report::{self, Row};
use crate::seed::Seeder;
use crate::suite::{Backend, Binaries, NEIGHBOUR, Suite, TENANT};

/// What a suite run covers.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Database sizes, ascending.
    pub sizes: Vec<u64>,
    /// Connection counts.
    pub connections: Vec<usize>,
    /// Measured time per scenario.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Scenarios, in order (patch and delete use what create made).
    pub scenarios: Vec<Scenario>,
    /// Run on SQLite.
    pub sqlite: bool,
    /// Also run on this Postgres server.
    pub postgres: Option<String>,
    /// The deep page of the cursor walk.
    pub walk_depth: usize,
    /// Pages a walk follows before starting over.
    pub walk_pages: usize,
    /// Where `switchboard` is (default: beside this executable).
    pub bin_dir: Option<std::path::PathBuf>,
    /// Measure the framework's ceiling first ([`crate::ceiling`]), when
    /// preview is among the scenarios.
    pub ceiling: bool,
}

/// The list scenarios' page size.
const PAGE: usize = 50;

/// One backend's figures.
pub struct BackendReport {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// One row per scenario, connection count and size.
    pub rows: Vec<Row>,
    /// `(size, seed time, start-up time, idle RSS MiB)` per size.
    pub sizes: Vec<(u64, Duration, Duration, Option<f64>)>,
}

/// Runs the suite on every backend asked for, printing each table as it
/// is done.
pub async fn run(opts: &RunOptions) -> Result<Vec<BackendReport>, String> {
    let bins = Binaries::locate(opts.bin_dir.as_deref())?;
    let mut backends = Vec::new();
    if opts.sqlite {
        backends.push(Backend::Sqlite);
    }
    if let Some(url) = &opts.postgres {
        let schema = format!("bench_{}", ulid::Ulid::new().to_string().to_lowercase());
        backends.push(Backend::Postgres {
            url: url.clone(),
            schema,
        });
    }
    let mut reports = Vec::new();
    if opts.ceiling && opts.scenarios.contains(&Scenario::Preview) {
        eprintln!("== ceiling: {}", crate::ceiling::LABEL);
        let report = BackendReport {
            backend: "ceiling",
            rows: crate::ceiling::measure(opts, &inputs(&Arc::default(), opts)).await?,
            sizes: Vec::new(),
        };
        println!("{}", table(&report));
        reports.push(report);
    }
    for backend in backends {
        let suite = Suite::new(backend, bins.clone())?;
        let result = run_backend(&suite, opts).await;
        let cleaned = suite.clean_up().await;
        let report = result?;
        cleaned?;
        println!("{}", table(&report));
        reports.push(report);
    }
    Ok(reports)
}

async fn run_backend(suite: &Suite, opts: &RunOptions) -> Result<BackendReport, String> {
    let name = suite.backend().name();
    eprintln!("== {name}: starting the simulators");
    let (mut simulators, urls) = suite.start_simulators().await?;
    suite.write_server_config(&urls)?;
    let mut report = BackendReport {
        backend: name,
        rows: Vec::new(),
        sizes: Vec::new(),
    };
    let mut ids: Arc<Vec<String>> = Arc::default();
    let mut seeded = 0;
    for &size in &opts.sizes {
        let (seed_time, more) = seed(suite, seeded, size.saturating_sub(seeded)).await?;
        seeded = seeded.max(size);
        let mut all = Arc::try_unwrap(ids).unwrap_or_else(|shared| (*shared).clone());
        all.extend(more);
        // The list's order, which the deep walk's cursor is taken from.
        all.sort_unstable();
        ids = Arc::new(all);
        let mut server = suite.start_server().await?;
        let idle = load::rss_kib(server.child.pid()).map(|k| k as f64 / 1024.0);
        eprintln!(
            "== {name}: {size} subscriptions, seeded in {:.1} s, server ready in {:.2} s",
            seed_time.as_secs_f64(),
            server.startup.as_secs_f64()
        );
        report.sizes.push((size, seed_time, server.startup, idle));
        for &connections in &opts.connections {
            let mut measured = |mut row: Row| {
                row.backend = Some(name.to_owned());
                row.subscriptions = Some(size);
                eprintln!("{}", report::markdown(&row));
                report.rows.push(row);
            };
            scenarios(&server, connections, &ids, opts, &mut measured).await?;
            simulators.check_running()?;
        }
        server.child.stop();
    }
    simulators.stop();
    Ok(report)
}

/// Seeds `add` more subscriptions after the first `seeded`; returns the
/// time taken and the new ids of the tenant under load.
async fn seed(suite: &Suite, seeded: u64, add: u64) -> Result<(Duration, Vec<String>), String> {
    let tenants = [(TENANT.to_owned(), 9), (NEIGHBOUR.to_owned(), 1)];
    // Opened per size and closed before the server starts: one process
    // at a time on a SQLite file.
    let mut seeder = Seeder::open(&suite.server_config(), &tenants, &[], seeded).await?;
    let done = seeder.seed(add).await?;
    seeder.close().await;
    Ok((done.elapsed, done.first_tenant_ids))
}

/// Every scenario of `opts` at one connection count, each row handed to
/// `measured` as soon as it is measured. `create` runs first and what it
/// created is what `patch` changes and `delete` removes.
async fn scenarios(
    server: &crate::suite::Server,
    connections: usize,
    ids: &Arc<Vec<String>>,
    opts: &RunOptions,
    measured: &mut dyn FnMut(Row),
) -> Result<(), String> {
    let mut inputs = inputs(ids, opts);
    let plan = |scenario| Plan {
        scenario,
        connections,
        stop: Stop::After(opts.duration),
        warmup: opts.warmup,
        pid: Some(server.child.pid()),
    };
    for &scenario in &opts.scenarios {
        if scenario == Scenario::Walk {
            for (label, from) in walks(ids, opts.walk_depth, opts.walk_pages) {
                inputs.walk_from = from;
                let outcome = load::run(&server.target, &plan(scenario), &inputs).await?;
                measured(Row::new(label, connections, &outcome));
            }
            continue;
        }
        let outcome = load::run(&server.target, &plan(scenario), &inputs).await?;
        if scenario == Scenario::Create {
            inputs.owned = outcome.created.clone();
        }
        measured(Row::new(label(scenario), connections, &outcome));
    }
    Ok(())
}

/// What the scenarios send: preview and create a Talkover subscription
/// of one event; get, patch and delete work on `ids`.
fn inputs(ids: &Arc<Vec<String>>, opts: &RunOptions) -> Inputs {
    let talkover = switchboard::demo::default_accounts()
        .get("talkover")
        .and_then(|a| a.first().cloned());
    Inputs {
        create: CreateBody {
            provider: "talkover".into(),
            account: talkover,
            event: "call.ended".into(),
        },
        ids: ids.clone(),
        owned: Vec::new(),
        walk_from: None,
        walk_pages: opts.walk_pages,
        page_size: PAGE as u32,
    }
}

fn label(scenario: Scenario) -> String {
    match scenario {
        Scenario::Create => "create",
        Scenario::Get => "get",
        Scenario::List => "list (first page)",
        Scenario::Walk => "walk",
        Scenario::Patch => "patch",
        Scenario::Delete => "delete",
        Scenario::Preview => "preview",
    }
    .to_owned()
}

/// The walks to measure: from the first page, and from page `depth` (or
/// the deepest start that still leaves a whole walk) when that is further.
fn walks(ids: &[String], depth: usize, walk: usize) -> Vec<(String, Option<String>)> {
    let mut out = vec![(format!("walk p1-{walk}"), None)];
    let pages = ids.len() / PAGE;
    let deep = depth.min(pages.saturating_sub(walk.saturating_sub(1)));
    if deep > walk {
        // The page after the one ending with this id is page `deep`.
        let cursor = ids[(deep - 1) * PAGE - 1].clone();
        let label = format!("walk p{deep}-{}", deep + walk - 1);
        out.push((label, Some(cursor)));
    }
    out
}

/// One backend's results as Markdown: the start-up table, then the
/// figures, then the first error of each run that had one.
pub fn table(report: &BackendReport) -> String {
    let mut out = format!("\n### {}\n\n", report.backend);
    // The ceiling has no database, so no start-up table.
    if !report.sizes.is_empty() {
        out.push_str(
            "| subscriptions | seed s | start-up s | idle RSS MiB |\n|---:|---:|---:|---:|\n",
        );
        for (size, seed, startup, idle) in &report.sizes {
            let idle = idle.map_or("–".into(), |m| format!("{m:.0}"));
            out.push_str(&format!(
                "| {size} | {:.1} | {:.2} | {idle} |\n",
                seed.as_secs_f64(),
                startup.as_secs_f64()
            ));
        }
        out.push('\n');
    }
    out.push_str(&report::header());
    out.push('\n');
    for row in &report.rows {
        out.push_str(&report::markdown(row));
        out.push('\n');
    }
    let errors = report::errors(&report.rows);
    if !errors.is_empty() {
        out.push_str("\nErrors:\n");
        out.push_str(&errors.join("\n"));
        out.push('\n');
    }
    out
}
