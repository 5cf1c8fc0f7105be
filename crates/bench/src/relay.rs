//! `relay`: relay mode under load (issue 13, item 8). Per backend: the
//! simulators and a server with relay on (`server.public_url`
//! [`PUBLIC_URL`], a URL policy that lets the loopback [`Receiver`] in),
//! relay subscriptions created through the API, their natives read back
//! from the simulators with one documented delivery each
//! ([`crate::natives`]), one probe delivery per native that must come
//! through end to end, then one measured run per pace ([`crate::pace`]):
//! deliveries fired at `POST /ingress/{token}`, the receiver counting what
//! the server relays, the server's RSS sampled. Each run waits for its
//! events to drain before the next starts.
//!
//! Figures per run: accepted/s (ingress 2xx answered inside the window),
//! delivered/s (distinct `webhook-id`s received inside the window),
//! end-to-end latency of the events due inside the window (due time to
//! receipt; events still undelivered after the drain are counted, not
//! timed), the ingress's own latency and status counts, the sender's worst
//! lag behind schedule and the server's highest RSS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Method;
use serde::Serialize;
use switchboard_relay::SigningSecret;
use tokio::task::JoinSet;

use crate::client::{Conn, Target};
use crate::natives::{self, Mark, Native, PUBLIC_URL, Shape};
use crate::pace::{self, Clock, Drive, Pace, Sent, Window};
use crate::receiver::{Received, Receiver};
use crate::suite::{Backend, Binaries, Suite};

/// The subscriptions' Standard Webhooks secret (32 bytes).
const SECRET: &str = "whsec_c3dpdGNoYm9hcmQtYmVuY2gtcmVsYXktc2VjcmV0ISE=";

/// The normalized event of the Talkover subscriptions.
const TALKOVER_EVENT: &str = "call.ended";

/// Bird's normalized events, taken in turn: Bird allows five
/// subscriptions per event and filter combination (providers.md §3.2).
const BIRD_EVENTS: [&str; 4] = [
    "message.received",
    "message.sent",
    "conversation.created",
    "conversation.updated",
];

/// Most Bird subscriptions per event.
const BIRD_PER_EVENT: usize = 5;

/// What the relay server runs with on top of the suite's config: relay
/// on (the other `[relay]` keys at their defaults; `SWITCHBOARD_RELAY__…`
/// in the bench's environment reaches the server and overrides them), and
/// a policy that lets in the receiver, plain HTTP on loopback, which the
/// default refuses at create and at delivery time.
const RELAY_SETTINGS: &str = r#"
[relay]
enabled = true

[policy]
allow_http = true
allowed_subnets = ["127.0.0.1/32"]
"#;

/// What a relay run covers.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Relay subscriptions on Talkover.
    pub talkover: usize,
    /// Relay subscriptions on Bird.
    pub bird: usize,
    /// One measured run per pace, in order.
    pub paces: Vec<Pace>,
    /// Connections to the ingress.
    pub connections: usize,
    /// Measured time per run.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Longest wait for a run's events after sending stops.
    pub drain: Duration,
    /// Run on SQLite.
    pub sqlite: bool,
    /// Also run on this Postgres server.
    pub postgres: Option<String>,
    /// Where `switchboard` is (default: beside this executable).
    pub bin_dir: Option<PathBuf>,
}

/// Latency percentiles in milliseconds (zeros when nothing was recorded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Self {
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Serialize)]
pub struct RelayRow {
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Relay subscriptions (one native each).
    pub subscriptions: usize,
    /// `2500/s` or `max`.
    pub pace: String,
    /// Connections to the ingress.
    pub connections: usize,
    /// The measured window, seconds.
    pub seconds: f64,
    /// Deliveries due inside the window.
    pub measured: u64,
    /// Of which the ingress answered 2xx.
    pub accepted: u64,
    /// Ingress 2xx answers inside the window per second.
    pub accepted_per_s: f64,
    /// Accepted measured events the receiver got (after the drain).
    pub delivered: u64,
    /// Distinct deliveries received inside the window per second.
    pub delivered_per_s: f64,
    /// Accepted measured events not received by the end of the drain.
    pub undelivered: u64,
    /// End to end, due time to receipt, of the delivered measured events.
    pub e2e: Percentiles,
    /// Ingress answer time from the actual send.
    pub ingress: Percentiles,
    /// Ingress statuses of the measured deliveries.
    pub ingress_statuses: BTreeMap<u16, u64>,
    /// Measured deliveries the ingress never answered.
    pub transport_errors: u64,
    /// The most a measured delivery went out after it was due, ms.
    pub max_lag_ms: f64,
    /// Deliveries of a `webhook-id` already received.
    pub repeats: u64,
    /// Events received again under another `webhook-id`.
    pub redelivered_events: u64,
    /// Deliveries whose signature did not verify.
    pub bad_signatures: u64,
    /// Events accepted before the run and not yet delivered when it
    /// started (an earlier run's drain gave up): they compete with this
    /// run's.
    pub backlog_at_start: u64,
    /// Time from the window's end until every accepted measured event was
    /// received (or the drain gave up), seconds.
    pub drain_s: f64,
    /// Highest server RSS seen during the run, MiB.
    pub rss_mib: Option<f64>,
    /// CPU the server used during the window, in cores (of 2 on the
    /// reference box).
    pub server_cores: Option<f64>,
    /// CPU this tool (load and receiver) used during the window, in cores.
    pub bench_cores: Option<f64>,
    /// The first ingress error or receiver problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl RelayRow {
    /// Whether the run was clean: deliveries measured, every one accepted
    /// and delivered with a good signature.
    pub fn clean(&self) -> bool {
        self.measured > 0
            && self.accepted == self.measured
            && self.undelivered == 0
            && self.bad_signatures == 0
            && self.first_error.is_none()
    }
}

/// The header of [`markdown`] rows.
pub fn header() -> String {
    "| backend | subs | pace | conns | accepted/s | delivered/s | e2e p50 ms | e2e p90 ms | e2e p99 ms | e2e max ms | ingress p99 ms | max lag ms | undelivered | ingress statuses | server RSS MiB | server / bench cores |\n\
     |---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"
        .to_owned()
}

/// `row` as a Markdown table row.
pub fn markdown(row: &RelayRow) -> String {
    let mut statuses: Vec<String> = row
        .ingress_statuses
        .iter()
        .map(|(s, n)| format!("{s}×{n}"))
        .collect();
    if row.transport_errors > 0 {
        statuses.push(format!("no answer×{}", row.transport_errors));
    }
    let rss = row.rss_mib.map_or("–".into(), |m| format!("{m:.0}"));
    let cores = |c: Option<f64>| c.map_or("–".into(), |c| format!("{c:.2}"));
    let cores = format!("{} / {}", cores(row.server_cores), cores(row.bench_cores));
    format!(
        "| {} | {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} | {:.2} | {:.1} | {} | {} | {rss} | {cores} |",
        row.backend,
        row.subscriptions,
        row.pace,
        row.connections,
        row.accepted_per_s,
        row.delivered_per_s,
        row.e2e.p50_ms,
        row.e2e.p90_ms,
        row.e2e.p99_ms,
        row.e2e.max_ms,
        row.ingress.p99_ms,
        row.max_lag_ms,
        row.undelivered,
        statuses.join(" "),
    )
}

/// The rows as one Markdown table with notes for unclean runs.
pub fn table(rows: &[RelayRow]) -> String {
    let mut out = format!("{}\n", header());
    for row in rows {
        out.push_str(&markdown(row));
        out.push('\n');
    }
    for row in rows.iter().filter(|r| r.backlog_at_start > 0) {
        out.push_str(&format!(
            "- {} {}: started with {} events of earlier runs still undelivered\n",
            row.backend, row.pace, row.backlog_at_start
        ));
    }
    for row in rows.iter().filter(|r| !r.clean()) {
        out.push_str(&format!(
            "- {} {}: {} of {} accepted, {} undelivered, {} bad signatures, {} repeats, {} events redelivered; first error: {}\n",
            row.backend,
            row.pace,
            row.accepted,
            row.measured,
            row.undelivered,
            row.bad_signatures,
            row.repeats,
            row.redelivered_events,
            row.first_error.as_deref().unwrap_or("none"),
        ));
    }
    out
}

/// Runs every pace on every backend asked for, printing each backend's
/// table as it is done.
pub async fn run(opts: &RelayOptions) -> Result<Vec<RelayRow>, String> {
    if opts.bird > BIRD_EVENTS.len() * BIRD_PER_EVENT {
        return Err(format!(
            "--bird: at most {} (five per Bird event)",
            BIRD_EVENTS.len() * BIRD_PER_EVENT
        ));
    }
    if opts.talkover + opts.bird == 0 {
        return Err("relay: no subscriptions asked for".into());
    }
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
    let mut rows = Vec::new();
    for backend in backends {
        let name = backend.name();
        let suite = Suite::new(backend, bins.clone())?;
        let result = run_backend(&suite, opts).await;
        let cleaned = suite.clean_up().await;
        let measured = result?;
        cleaned?;
        println!("\n### relay, {name}\n\n{}", table(&measured));
        rows.extend(measured);
    }
    Ok(rows)
}

/// `config` with `server.public_url` set and [`RELAY_SETTINGS`] added.
fn relay_config(config: &str) -> Result<String, String> {
    const SERVER: &str = "[server]\n";
    if !config.contains(SERVER) {
        return Err("the suite's config has no [server] table".into());
    }
    let server = format!("{SERVER}public_url = \"{PUBLIC_URL}\"\n");
    Ok(config.replacen(SERVER, &server, 1) + RELAY_SETTINGS)
}

fn enable_relay(path: &Path) -> Result<(), String> {
    let config = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, relay_config(&config)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// Everything one backend measures, in processes stopped on the way out.
async fn run_backend(suite: &Suite, opts: &RelayOptions) -> Result<Vec<RelayRow>, String> {
    let name = suite.backend().name();
    eprintln!("== relay, {name}: starting the simulators");
    let (mut simulators, sims) = suite.start_simulators().await?;
    suite.write_server_config(&sims)?;
    enable_relay(&suite.server_config())?;
    let clock = Arc::new(Clock::new());
    let secret = SigningSecret::parse(SECRET).map_err(|e| e.to_string())?;
    let receiver = Receiver::start(secret, clock.clone()).await?;
    let mut server = suite.start_server().await?;
    let bench = Bench {
        name,
        target: server.target.clone(),
        pid: server.child.pid(),
        receiver: &receiver,
        clock,
        opts,
    };
    let result = bench.measure_all(&sims).await;
    let result = match (result, server.child.check_running()) {
        (Err(e), _) => Err(format!(
            "{e}\nthe server's log ends:\n{}",
            server.child.log_tail()
        )),
        (Ok(_), Err(e)) => Err(e),
        (Ok(rows), Ok(())) => Ok(rows),
    };
    server.child.stop();
    simulators.stop();
    receiver.stop().await;
    result
}

/// One backend's running pieces.
struct Bench<'a> {
    name: &'static str,
    target: Target,
    pid: u32,
    receiver: &'a Receiver,
    clock: Arc<Clock>,
    opts: &'a RelayOptions,
}

impl Bench<'_> {
    async fn measure_all(&self, sims: &BTreeMap<String, String>) -> Result<Vec<RelayRow>, String> {
        let mut natives = Vec::new();
        let mut n = 0;
        for (shape, count) in [
            (Shape::Talkover, self.opts.talkover),
            (Shape::Bird, self.opts.bird),
        ] {
            let account = account(shape)?;
            self.subscribe(shape, &account, n, count).await?;
            n += count;
            natives.extend(natives::discover(sims, shape, &account, count).await?);
        }
        eprintln!(
            "== relay, {}: {} relay subscriptions, natives captured",
            self.name,
            natives.len()
        );
        let natives = Arc::new(natives);
        let mut owed = Owed {
            next_seq: self.probe(&natives).await?,
            accepted: natives.len() as u64,
        };
        let mut rows = Vec::new();
        for &pace in &self.opts.paces {
            let row = self.measure(&natives, pace, &mut owed).await?;
            eprintln!("{}", markdown(&row));
            rows.push(row);
        }
        Ok(rows)
    }

    /// Creates `count` relay subscriptions of `shape`, numbered from
    /// `first` at the receiver, eight at a time.
    async fn subscribe(
        &self,
        shape: Shape,
        account: &str,
        first: usize,
        count: usize,
    ) -> Result<(), String> {
        let mut creates = JoinSet::new();
        let lanes = 8.min(count.max(1));
        for lane in 0..lanes {
            let bodies: Vec<Bytes> = (lane..count)
                .step_by(lanes)
                .map(|i| {
                    let event = match shape {
                        Shape::Talkover => TALKOVER_EVENT,
                        Shape::Bird => BIRD_EVENTS[i % BIRD_EVENTS.len()],
                    };
                    subscription(shape, account, event, &self.receiver.url(first + i))
                })
                .collect();
            let mut conn = Conn::new(self.target.clone());
            creates.spawn(async move {
                for body in bodies {
                    let reply = conn
                        .send(
                            Method::POST,
                            "/v1/subscriptions",
                            Some((body, "application/json")),
                        )
                        .await?;
                    if !matches!(reply.status, 201 | 202) {
                        let text = String::from_utf8_lossy(&reply.body);
                        return Err(format!(
                            "creating a relay subscription: {} {text}",
                            reply.status
                        ));
                    }
                }
                Ok::<(), String>(())
            });
        }
        while let Some(done) = creates.join_next().await {
            done.map_err(|e| e.to_string())??;
        }
        Ok(())
    }

    /// Sends one delivery to each native and waits until the receiver has
    /// them all: relay works end to end before anything is measured.
    /// Returns the first unused sequence number.
    async fn probe(&self, natives: &[Native]) -> Result<u64, String> {
        let (before, _) = self.receiver.progress();
        let mut conn = Conn::new(self.target.clone());
        for (seq, native) in natives.iter().enumerate() {
            let mark = Mark {
                seq: seq as u64,
                sent_ns: self.clock.now_ns(),
            };
            let reply = conn
                .send_request(native.request(mark, chrono::Utc::now())?)
                .await?;
            if !(200..300).contains(&reply.status) {
                let text = String::from_utf8_lossy(&reply.body);
                return Err(format!(
                    "the ingress refused a probe delivery: {} {text}",
                    reply.status
                ));
            }
        }
        let want = before + natives.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (events, _) = self.receiver.progress();
            if events >= want {
                return Ok(natives.len() as u64);
            }
            if Instant::now() > deadline {
                let got = self.receiver.snapshot();
                return Err(format!(
                    "relay: {} of {} probe deliveries reached the receiver within a minute ({} bad signatures; {})",
                    events - before,
                    natives.len(),
                    got.rejected,
                    got.first_problem.as_deref().unwrap_or("no problem seen"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// One measured run at `pace`, then the drain of everything accepted.
    async fn measure(
        &self,
        natives: &Arc<Vec<Native>>,
        pace: Pace,
        owed: &mut Owed,
    ) -> Result<RelayRow, String> {
        let opts = self.opts;
        // A moment for every connection task to be waiting at the start.
        let start_ns = self.clock.now_ns() + 100_000_000;
        let window_start = start_ns + opts.warmup.as_nanos() as u64;
        let window = Window {
            start_ns: window_start,
            end_ns: window_start + opts.duration.as_nanos() as u64,
        };
        let (events_before, _) = self.receiver.progress();
        let backlog = owed.accepted.saturating_sub(events_before);
        self.receiver.begin(window);
        let usage = Usage::start(self.pid, self.clock.clone(), window);
        let drive = Drive {
            pace,
            connections: opts.connections,
            start_ns,
            window,
            first_seq: owed.next_seq,
        };
        let sent = pace::drive(&self.target, natives.clone(), drive, self.clock.clone()).await?;
        owed.next_seq += sent.issued;
        owed.accepted += sent.accepted_total;
        let received = self.drain(owed.accepted, window).await;
        let drain_s = (self.clock.now_ns().saturating_sub(window.end_ns)) as f64 / 1e9;
        let usage = usage.finish().await;
        let mut row = row(
            self.name,
            natives.len(),
            pace,
            opts.connections,
            &sent,
            &received,
        );
        row.backlog_at_start = backlog;
        row.drain_s = drain_s;
        row.rss_mib = usage.max_rss_kib.map(|k| k as f64 / 1024.0);
        row.server_cores = usage.server_cores;
        row.bench_cores = usage.bench_cores;
        Ok(row)
    }

    /// Waits until the receiver has every event accepted so far (`owed`,
    /// warm-up and earlier runs included, so the next run starts with no
    /// backlog) or the drain time after the window is up.
    async fn drain(&self, owed: u64, window: Window) -> Received {
        let deadline = self.clock.instant(window.end_ns) + self.opts.drain;
        loop {
            let (events, _) = self.receiver.progress();
            if events >= owed || Instant::now() > deadline {
                return self.receiver.snapshot();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// What the server owes the receiver so far.
struct Owed {
    /// The next delivery's sequence number.
    next_seq: u64,
    /// Deliveries the ingress accepted (2xx), probes included.
    accepted: u64,
}

/// The first demo account of `shape`'s kind: the one its simulator knows.
fn account(shape: Shape) -> Result<String, String> {
    switchboard::demo::default_accounts()
        .get(shape.kind())
        .and_then(|a| a.first().cloned())
        .ok_or_else(|| format!("no simulator account for kind `{}`", shape.kind()))
}

/// A relay subscription's create body.
fn subscription(shape: Shape, account: &str, event: &str, url: &str) -> Bytes {
    let body = serde_json::json!({
        "provider": shape.provider(),
        "account": account,
        "name": "relay bench",
        "url": url,
        "events": [event],
        "delivery": "relay",
        "signing_secret": SECRET,
    });
    Bytes::from(body.to_string())
}

/// The row of one run's tallies; the drain, backlog and usage figures
/// are the caller's to fill in.
fn row(
    backend: &str,
    subscriptions: usize,
    pace: Pace,
    connections: usize,
    sent: &Sent,
    received: &Received,
) -> RelayRow {
    let secs = received.window.duration().as_secs_f64().max(1e-9);
    RelayRow {
        backend: backend.to_owned(),
        subscriptions,
        pace: pace.to_string(),
        connections,
        seconds: secs,
        measured: sent.measured,
        accepted: sent.accepted_measured,
        accepted_per_s: sent.accepted_in_window as f64 / secs,
        delivered: received.measured,
        delivered_per_s: received.unique_in_window as f64 / secs,
        undelivered: sent.accepted_measured.saturating_sub(received.measured),
        e2e: Percentiles::of(&received.latency),
        ingress: Percentiles::of(&sent.ingress),
        ingress_statuses: sent.statuses.clone(),
        transport_errors: sent.transport_errors,
        max_lag_ms: sent.max_lag.as_secs_f64() * 1000.0,
        repeats: received.repeats,
        redelivered_events: received.redelivered_events,
        bad_signatures: received.rejected,
        backlog_at_start: 0,
        drain_s: 0.0,
        rss_mib: None,
        server_cores: None,
        bench_cores: None,
        first_error: sent
            .first_error
            .clone()
            .or_else(|| received.first_problem.clone()),
    }
}

/// Linux's `USER_HZ`: the unit of `/proc/<pid>/stat` CPU times, 100 on
/// every architecture Linux supports for user space.
const USER_HZ: f64 = 100.0;

/// User plus system CPU time of `pid` (`self` for this process), seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    cpu_of_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User plus system CPU seconds of a `/proc/<pid>/stat` line.
fn cpu_of_stat(stat: &str) -> Option<f64> {
    // The command name in parentheses may contain spaces; fields 14 and 15
    // (utime, stime) are the 12th and 13th after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / USER_HZ)
}

/// What a run cost: the server's highest RSS (sampled every 100 ms) and
/// the CPU the server and this tool used during the window.
struct Usage {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<UsageFigures>,
}

#[derive(Debug, Default)]
struct UsageFigures {
    max_rss_kib: Option<u64>,
    server_cores: Option<f64>,
    bench_cores: Option<f64>,
}

impl Usage {
    fn start(pid: u32, clock: Arc<Clock>, window: Window) -> Self {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let server = pid.to_string();
            let cpu = || (cpu_seconds(&server), cpu_seconds("self"));
            let mut figures = UsageFigures::default();
            let mut at_start = None;
            loop {
                if let Some(kib) = crate::load::rss_kib(pid) {
                    figures.max_rss_kib = Some(figures.max_rss_kib.map_or(kib, |m| m.max(kib)));
                }
                let now = clock.now_ns();
                if at_start.is_none() && now >= window.start_ns {
                    at_start = Some((cpu(), now));
                }
                if let Some(((server0, bench0), t0)) = at_start
                    && figures.server_cores.is_none()
                    && now >= window.end_ns
                {
                    let (server1, bench1) = cpu();
                    let secs = (now - t0) as f64 / 1e9;
                    figures.server_cores = server0.zip(server1).map(|(a, b)| (b - a) / secs);
                    figures.bench_cores = bench0.zip(bench1).map(|(a, b)| (b - a) / secs);
                }
                tokio::select! {
                    _ = &mut stopped => return figures,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn finish(self) -> UsageFigures {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_histogram_in_milliseconds() {
        let mut h = crate::pace::micros_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        let p = Percentiles::of(&h);
        // HDR keeps three significant digits.
        assert!((p.p50_ms - 500.0).abs() <= 0.5, "{p:?}");
        assert!((p.p90_ms - 900.0).abs() <= 0.5, "{p:?}");
        assert!((p.p99_ms - 990.0).abs() <= 1.0, "{p:?}");
        assert!((p.max_ms - 1000.0).abs() <= 1.0, "{p:?}");
        assert_eq!(
            Percentiles::of(&crate::pace::micros_histogram()),
            Percentiles::default()
        );
    }

    #[test]
    fn the_relay_config_sets_the_public_url_in_the_server_table() {
        let base = "[server]\nlisten = \"127.0.0.1:0\"\n\n[database]\nurl = \"x\"\n";
        let config = relay_config(base).unwrap();
        let server = config.split("[database]").next().unwrap();
        assert!(server.contains(&format!("public_url = \"{PUBLIC_URL}\"")));
        assert!(config.contains("[policy]\nallow_http = true"));
        assert!(relay_config("[database]\n").is_err());
    }

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let stat = "42 (tokio (w) 1) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 3 0";
        assert_eq!(cpu_of_stat(stat), Some(3.8));
        assert_eq!(cpu_of_stat("42 (x) S 1"), None);
        assert!(cpu_seconds("self").is_some());
    }

    #[test]
    fn a_run_is_clean_only_when_everything_arrived() {
        let mut sent = Sent::new();
        sent.measured = 10;
        sent.accepted_measured = 10;
        let mut received = Received::new(Window::default(), 0);
        received.measured = 10;
        let good = row("sqlite", 1, Pace::Max, 1, &sent, &received);
        assert!(good.clean());
        received.measured = 9;
        let lost = row("sqlite", 1, Pace::Max, 1, &sent, &received);
        assert_eq!(lost.undelivered, 1);
        assert!(!lost.clean());
        assert!(table(&[lost]).contains("1 undelivered"));
    }
}
