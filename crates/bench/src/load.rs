//! `load`: one scenario against a running server. Each virtual user owns
//! one keep-alive connection and sends its next request as soon as the
//! last one is answered (a closed loop), so the figures are the server's
//! throughput at that concurrency. Latencies go into an HDR histogram
//! (microseconds, three significant digits); a non-2xx answer is an error,
//! and the first one is kept with its body. A request counts when it
//! completes inside the measured window, after the warm-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::Method;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::client::{Conn, Reply, Target};

/// What a scenario does per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// `POST /v1/subscriptions`: one event, a callback URL of its own.
    Create,
    /// `GET /v1/subscriptions/{id}`, a random id among the known ones.
    Get,
    /// `GET /v1/subscriptions?limit=50`: the first page.
    List,
    /// Follows `next_cursor` for a number of pages from a starting
    /// cursor, then starts over.
    Walk,
    /// `PATCH /v1/subscriptions/{id}`: a new name, each user on ids of
    /// its own (no two patch one subscription at once).
    Patch,
    /// `DELETE /v1/subscriptions/{id}`, each id once; a user stops when
    /// its ids run out.
    Delete,
    /// `POST /v1/subscriptions/preview` of the create body.
    Preview,
}

/// When a run stops.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    /// After this long (plus the warm-up).
    After(Duration),
    /// After this many requests in all (no warm-up).
    Requests(u64),
}

/// How one run is driven.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario.
    pub scenario: Scenario,
    /// Concurrent virtual users, one connection each.
    pub connections: usize,
    /// When to stop.
    pub stop: Stop,
    /// Unmeasured time before the window (duration runs only; none for
    /// `delete`, where each request uses up an id).
    pub warmup: Duration,
    /// The server's process id, to sample its RSS.
    pub pid: Option<u32>,
}

/// The subscription that `create` and `preview` send.
#[derive(Debug, Clone)]
pub struct CreateBody {
    /// Provider key.
    pub provider: String,
    /// Account, when the kind has one.
    pub account: Option<String>,
    /// The one event.
    pub event: String,
}

impl CreateBody {
    fn to_json(&self, url: &str) -> Bytes {
        let mut body = serde_json::json!({
            "provider": self.provider,
            "name": "bench subscription",
            "url": url,
            "events": [self.event],
            "signing_secret": "whsec_bench_0123456789abcdefghijklmnop",
        });
        if let Some(a) = &self.account {
            body["account"] = serde_json::Value::String(a.clone());
        }
        Bytes::from(body.to_string())
    }
}

/// What the scenario works on.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// For `create` and `preview`.
    pub create: CreateBody,
    /// For `get`: ids to pick from.
    pub ids: Arc<Vec<String>>,
    /// For `patch` and `delete`: ids, shared out among the users.
    pub owned: Vec<String>,
    /// For `walk`: the cursor to start from (`None`: the first page).
    pub walk_from: Option<String>,
    /// For `walk`: pages per walk before starting over.
    pub walk_pages: usize,
    /// For `list` and `walk`: the page size.
    pub page_size: u32,
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// Latencies of the counted requests, in microseconds.
    pub histogram: Histogram<u64>,
    /// Counted requests answered 2xx.
    pub ok: u64,
    /// Counted requests answered otherwise, or not answered.
    pub errors: u64,
    /// The first error: status and body, or the transport error.
    pub first_error: Option<String>,
    /// The measured window.
    pub elapsed: Duration,
    /// Highest resident set size of `Plan::pid` seen during the run, KiB.
    pub max_rss_kib: Option<u64>,
    /// Ids of the subscriptions created (warm-up included).
    pub created: Vec<String>,
}

impl Outcome {
    /// Counted requests per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.ok + self.errors) as f64 / secs
        } else {
            0.0
        }
    }
}

/// One request to send.
struct Call {
    method: Method,
    path: String,
    body: Option<(Bytes, &'static str)>,
}

const JSON: &str = "application/json";

/// One user's scenario state.
enum Work {
    Create {
        body: CreateBody,
        prefix: String,
        n: u64,
    },
    Get {
        ids: Arc<Vec<String>>,
        rng: Box<StdRng>,
    },
    List {
        path: String,
    },
    Walk {
        from: Option<String>,
        cursor: Option<String>,
        page: usize,
        pages: usize,
        size: u32,
    },
    Patch {
        ids: Vec<String>,
        n: usize,
    },
    Delete {
        ids: Vec<String>,
    },
    Preview {
        body: Bytes,
    },
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct PageHead {
    next_cursor: Option<String>,
}

impl Work {
    /// The next request, or `None` when this user has nothing left.
    fn next(&mut self) -> Option<Call> {
        let (method, path, body) = match self {
            Self::Create { body, prefix, n } => {
                *n += 1;
                let url = format!("{prefix}/{n}");
                let json = body.to_json(&url);
                (Method::POST, "/v1/subscriptions".into(), Some((json, JSON)))
            }
            Self::Get { ids, rng } => {
                let id = ids.get(rng.random_range(0..ids.len().max(1)))?;
                (Method::GET, format!("/v1/subscriptions/{id}"), None)
            }
            Self::List { path } => (Method::GET, path.clone(), None),
            Self::Walk { cursor, size, .. } => {
                let path = match cursor {
                    Some(c) => format!("/v1/subscriptions?limit={size}&cursor={c}"),
                    None => format!("/v1/subscriptions?limit={size}"),
                };
                (Method::GET, path, None)
            }
            Self::Patch { ids, n } => {
                let id = ids.get(*n % ids.len().max(1))?;
                *n += 1;
                let body = format!(r#"{{"name":"bench patch {n}"}}"#);
                let path = format!("/v1/subscriptions/{id}");
                let body = Some((Bytes::from(body), "application/merge-patch+json"));
                (Method::PATCH, path, body)
            }
            Self::Delete { ids } => {
                let id = ids.pop()?;
                (Method::DELETE, format!("/v1/subscriptions/{id}"), None)
            }
            Self::Preview { body } => (
                Method::POST,
                "/v1/subscriptions/preview".into(),
                Some((body.clone(), JSON)),
            ),
        };
        Some(Call { method, path, body })
    }

    /// Takes what the answer says (a created id, the next cursor).
    fn done(&mut self, reply: Option<&Reply>, created: &mut Vec<String>) {
        let ok = reply.filter(|r| (200..300).contains(&r.status));
        match self {
            Self::Create { .. } => {
                if let Some(c) = ok.and_then(|r| serde_json::from_slice::<Created>(&r.body).ok()) {
                    created.push(c.id);
                }
            }
            Self::Walk {
                from,
                cursor,
                page,
                pages,
                ..
            } => {
                let next = ok
                    .and_then(|r| serde_json::from_slice::<PageHead>(&r.body).ok())
                    .and_then(|p| p.next_cursor);
                *page += 1;
                match next {
                    Some(c) if *page < *pages => *cursor = Some(c),
                    _ => {
                        *cursor = from.clone();
                        *page = 0;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Each user's starting state.
fn works(plan: &Plan, inputs: &Inputs) -> Vec<Work> {
    let run = ulid::Ulid::new().to_string().to_lowercase();
    let mut shares: Vec<Vec<String>> = vec![Vec::new(); plan.connections];
    for (i, id) in inputs.owned.iter().enumerate() {
        shares[i % plan.connections].push(id.clone());
    }
    let preview = inputs
        .create
        .to_json("https://hooks.bench.example.com/preview");
    (0..plan.connections)
        .zip(shares)
        .map(|(vu, share)| match plan.scenario {
            Scenario::Create => Work::Create {
                body: inputs.create.clone(),
                prefix: format!("https://hooks.bench.example.com/create/{run}/{vu}"),
                n: 0,
            },
            Scenario::Get => Work::Get {
                ids: inputs.ids.clone(),
                rng: Box::new(StdRng::seed_from_u64(vu as u64)),
            },
            Scenario::List => Work::List {
                path: format!("/v1/subscriptions?limit={}", inputs.page_size),
            },
            Scenario::Walk => Work::Walk {
                from: inputs.walk_from.clone(),
                cursor: inputs.walk_from.clone(),
                page: 0,
                pages: inputs.walk_pages.max(1),
                size: inputs.page_size,
            },
            Scenario::Patch => Work::Patch { ids: share, n: 0 },
            Scenario::Delete => Work::Delete { ids: share },
            Scenario::Preview => Work::Preview {
                body: preview.clone(),
            },
        })
        .collect()
}

/// Flags every user reads.
struct Shared {
    recording: AtomicBool,
    stop: AtomicBool,
    limit: Option<u64>,
    issued: AtomicU64,
}

/// One user's tally.
struct Tally {
    histogram: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    created: Vec<String>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at three significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

async fn user(target: Target, mut work: Work, shared: Arc<Shared>) -> Tally {
    let mut conn = Conn::new(target);
    let mut tally = Tally {
        histogram: histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
        created: Vec::new(),
    };
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(limit) = shared.limit
            && shared.issued.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        let Some(call) = work.next() else { break };
        let started = Instant::now();
        let result = conn.send(call.method, &call.path, call.body).await;
        let micros = started.elapsed().as_micros() as u64;
        work.done(result.as_ref().ok(), &mut tally.created);
        if !shared.recording.load(Ordering::Relaxed) || shared.stop.load(Ordering::Relaxed) {
            continue;
        }
        let _ = tally.histogram.record(micros.max(1));
        match result {
            Ok(r) if (200..300).contains(&r.status) => tally.ok += 1,
            Ok(r) => {
                tally.errors += 1;
                tally.first_error.get_or_insert_with(|| {
                    let body = String::from_utf8_lossy(&r.body);
                    format!("{} {} {}", r.status, call.path, truncate(&body, 400))
                });
            }
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    tally
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Runs `plan` against `target` with `inputs`.
pub async fn run(target: &Target, plan: &Plan, inputs: &Inputs) -> Result<Outcome, String> {
    if plan.connections == 0 {
        return Err("--connections: at least 1".into());
    }
    if plan.scenario == Scenario::Get && inputs.ids.is_empty() {
        return Err("get: no subscription ids to get (seed first)".into());
    }
    let shared = Arc::new(Shared {
        recording: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        limit: match plan.stop {
            Stop::Requests(n) => Some(n),
            Stop::After(_) => None,
        },
        issued: AtomicU64::new(0),
    });
    let sampler = plan.pid.map(|pid| RssSampler::start(pid, shared.clone()));
    let mut users = JoinSet::new();
    for work in works(plan, inputs) {
        users.spawn(user(target.clone(), work, shared.clone()));
    }
    let mut tallies = Vec::new();
    let elapsed = match plan.stop {
        Stop::After(window) => {
            if plan.scenario != Scenario::Delete {
                tokio::time::sleep(plan.warmup).await;
            }
            shared.recording.store(true, Ordering::Relaxed);
            measure(&mut users, &mut tallies, window).await?
        }
        Stop::Requests(_) => {
            shared.recording.store(true, Ordering::Relaxed);
            measure(&mut users, &mut tallies, Duration::MAX).await?
        }
    };
    shared.stop.store(true, Ordering::Relaxed);
    while let Some(t) = users.join_next().await {
        tallies.push(t.map_err(|e| e.to_string())?);
    }
    let max_rss_kib = match sampler {
        Some(s) => s.finish().await,
        None => None,
    };
    Ok(merge(tallies, elapsed, max_rss_kib))
}

/// Waits until `window` has passed or every user has finished, whichever
/// is first, and returns the time that took.
async fn measure(
    users: &mut JoinSet<Tally>,
    tallies: &mut Vec<Tally>,
    window: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = tokio::time::sleep(window.min(Duration::from_secs(86_400)));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            joined = users.join_next() => match joined {
                Some(t) => tallies.push(t.map_err(|e| e.to_string())?),
                None => break,
            },
        }
    }
    Ok(started.elapsed())
}

fn merge(tallies: Vec<Tally>, elapsed: Duration, max_rss_kib: Option<u64>) -> Outcome {
    let mut out = Outcome {
        histogram: histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed,
        max_rss_kib,
        created: Vec::new(),
    };
    for t in tallies {
        let _ = out.histogram.add(&t.histogram);
        out.ok += t.ok;
        out.errors += t.errors;
        if out.first_error.is_none() {
            out.first_error = t.first_error;
        }
        out.created.extend(t.created);
    }
    out
}

/// Samples a process's resident set size every 100 ms and keeps the most.
struct RssSampler {
    task: tokio::task::JoinHandle<Option<u64>>,
}

impl RssSampler {
    fn start(pid: u32, shared: Arc<Shared>) -> Self {
        let task = tokio::spawn(async move {
            let mut max = None;
            loop {
                if let Some(kib) = rss_kib(pid) {
                    max = Some(max.map_or(kib, |m: u64| m.max(kib)));
                }
                if shared.stop.load(Ordering::Relaxed) {
                    return max;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { task }
    }

    async fn finish(self) -> Option<u64> {
        self.task.await.ok().flatten()
    }
}

/// `VmRSS` of `pid` in KiB, from `/proc/<pid>/status` (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Up to `max` ids of the token's subscriptions, oldest first, by walking
/// the list (for `get` when no ids file is given).
pub async fn collect_ids(target: &Target, max: usize) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Page {
        data: Vec<Created>,
        next_cursor: Option<String>,
    }
    let mut conn = Conn::new(target.clone());
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    while ids.len() < max {
        let path = match &cursor {
            Some(c) => format!("/v1/subscriptions?limit=200&cursor={c}"),
            None => "/v1/subscriptions?limit=200".to_owned(),
        };
        let reply = conn.send(Method::GET, &path, None).await?;
        if reply.status != 200 {
            let body = String::from_utf8_lossy(&reply.body);
            return Err(format!("listing ids: {} {body}", reply.status));
        }
        let page: Page = serde_json::from_slice(&reply.body).map_err(|e| e.to_string())?;
        ids.extend(page.data.into_iter().map(|s| s.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    ids.truncate(max);
    Ok(ids)
}
