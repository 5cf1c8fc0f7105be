//! Crash safety of relay mode (issue 13, items 4 and 7), black-box: a real
//! `switchboard serve` process is killed with `kill -9` while a provider
//! delivers to its ingress, and while it delivers to a slow subscriber,
//! then restarted on the same database; and two replicas on one Postgres
//! share the delivery work. The provider (the Talkover simulator) and the
//! subscriber (a recording receiver) run in this test process, so they
//! survive the kill. Between the two processes the test reads the
//! database itself: what was durable, and what the dead process had
//! claimed, at the moment it died.
//!
//! What must hold (issue 13 §4): nothing the ingress answered 2xx is lost;
//! a provider's retry of an accepted delivery is recognised (one event,
//! one `webhook-id`); every event reaches the subscriber, always under the
//! same `webhook-id`, and more than once only if the dead process was
//! delivering it (at least once); replicas deliver each event once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_sim::deliveries::DeliveryReport;
use switchboard_sim::talkover::{DEFAULT_AGENT, DEFAULT_TOKEN, TalkoverConfig, TalkoverSim};
use switchboard_store::{DeliveryFilter, DeliveryStatus, Store, StoreOptions};
use tokio::task::JoinSet;

mod support;

/// The Standard Webhooks verifier of the relay crate's tests: the
/// independent Python library `standardwebhooks`.
#[path = "../../relay/tests/support/mod.rs"]
mod standard_webhooks;

use support::{Process, spawn_process};

const TOKEN: &str = "relay-crash-token-1";
/// May read `/metrics`.
const ADMIN: &str = "relay-crash-admin-1";
const TENANT: &str = "ops";
/// The origin the native is registered with; the simulator reaches the
/// server through its `deliver_to` hop.
const PUBLIC_URL: &str = "https://switchboard.test";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// The Talkover event of `call.ended` (config/events.toml).
const NATIVE_EVENT: &str = "event_phone_call_ended";
/// Where the subscriber receives.
const HOOK: &str = "/hooks/calls";
/// Longest wait for any condition; generous for a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// `relay.lease_ms` by default: longer than [`DEADLINE`].
const DEFAULT_LEASE_MS: u64 = 180_000;

/// The relay settings a test runs with.
#[derive(Clone, Copy)]
struct RelaySettings {
    /// `relay.lease_ms`: how long the dead process's claims block others.
    lease_ms: u64,
    /// `relay.concurrency`: attempts in flight at once per process.
    concurrency: usize,
}

/// A deployment: its configuration file and its database, which the test
/// also opens itself (same key) to look between two processes.
struct Deployment {
    cfg: std::path::PathBuf,
    store: StoreOptions,
    _dir: tempfile::TempDir,
}

impl Deployment {
    /// A SQLite file of its own, or the Postgres schema of `pg`; Talkover
    /// at `sim`.
    fn new(sim: &str, pg: Option<&StoreOptions>, relay: RelaySettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (url, schema) = match pg {
            Some(o) => (o.url.clone(), o.pg_schema.clone()),
            None => {
                let path = dir.path().join("sb.db");
                (format!("sqlite://{}?mode=rwc", path.display()), None)
            }
        };
        let (key, key_text) = switchboard_store::SecretKey::generate("k1");
        let hash = |t: &str| hex::encode(switchboard_api::auth::hash_token(t));
        let text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
public_url = "{PUBLIC_URL}"
[database]
url = "{url}"
max_connections = 8
{schema}
[[auth.tokens]]
name = "ops"
tenant = "{TENANT}"
token_sha256 = "{token}"
[[auth.tokens]]
name = "metrics"
tenant = "{TENANT}"
token_sha256 = "{admin}"
scopes = ["admin"]
[providers.talkover]
kind = "talkover"
base_url = "{sim}/api/v1"
token = "{DEFAULT_TOKEN}"
[[secrets.keys]]
id = "k1"
key = "{key_text}"
[reliability]
reconcile_interval_ms = 0
[policy]
allow_http = true
allow_private = true
[relay]
enabled = true
poll_interval_ms = 50
lease_ms = {lease}
concurrency = {concurrency}
[log]
level = "warn"
"#,
            schema = schema
                .as_deref()
                .map(|s| format!("schema = \"{s}\""))
                .unwrap_or_default(),
            token = hash(TOKEN),
            admin = hash(ADMIN),
            lease = relay.lease_ms,
            concurrency = relay.concurrency,
        );
        let cfg = dir.path().join("switchboard.toml");
        std::fs::write(&cfg, text).unwrap();
        let mut store = StoreOptions::new(url, switchboard_store::Cipher::new(vec![key]).unwrap());
        store.pg_schema = schema;
        store.max_connections = 2;
        Self {
            cfg,
            store,
            _dir: dir,
        }
    }

    fn start(&self) -> Process {
        spawn_process(&self.cfg)
    }

    /// The subscription's deliveries as the database holds them while no
    /// process runs, with the call each carries.
    async fn look(&self, sub: &str) -> Vec<Stored> {
        let store = Store::connect(&self.store).await.unwrap();
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = store
                .list_deliveries(
                    TENANT,
                    sub,
                    &DeliveryFilter::default(),
                    cursor.as_deref(),
                    200,
                )
                .await
                .unwrap();
            for d in page {
                let detail = store.get_delivery(TENANT, &d.id).await.unwrap().unwrap();
                let payload: Value = serde_json::from_str(&detail.event.payload).unwrap();
                all.push(Stored {
                    call: payload["call_id"].as_str().unwrap().to_owned(),
                    webhook_id: d.webhook_id,
                    status: d.status,
                });
            }
            match next {
                Some(c) => cursor = Some(c),
                None => return all,
            }
        }
    }
}

/// One delivery as the database held it.
#[derive(Debug)]
struct Stored {
    call: String,
    webhook_id: String,
    status: DeliveryStatus,
}

/// The id of call event `n`: what makes each provider delivery distinct.
fn call_id(n: usize) -> String {
    format!("call-{n:04}")
}

/// The provider: the Talkover simulator delivering call events to the
/// ingress URL its webhook was registered with, as documented (bearer
/// credential in a custom header, the `event` envelope field).
#[derive(Clone)]
struct Provider {
    control: String,
    ingress: String,
    /// The events' `timestamp`: fixed, so a retry sends the same bytes.
    timestamp: String,
    client: reqwest::Client,
}

impl Provider {
    /// The provider of the one relay native registered at `sim`.
    fn of(sim: &TalkoverSim, sim_base: &str) -> Self {
        let hooks = sim.webhooks(DEFAULT_AGENT);
        assert_eq!(hooks.len(), 1, "one native: {hooks:?}");
        let ingress = hooks[0]["webhook_url"].as_str().unwrap().to_owned();
        assert!(
            ingress.starts_with(&format!("{PUBLIC_URL}/ingress/")),
            "{ingress}"
        );
        Self {
            control: format!("{sim_base}{}", switchboard_sim::deliveries::DELIVERIES_PATH),
            ingress,
            timestamp: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                .to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// Sends call event `n` once, to the server at `origin`; the ingress's
    /// status, `None` when it did not answer.
    async fn deliver(&self, n: usize, origin: &str) -> Option<u16> {
        let order = json!({
            "url": self.ingress,
            "deliver_to": origin,
            "payload": {
                "event": NATIVE_EVENT,
                "agent_id": DEFAULT_AGENT,
                "call_id": call_id(n),
                "timestamp": self.timestamp,
            },
        });
        let r = self
            .client
            .post(&self.control)
            .json(&order)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        let report: DeliveryReport = r.json().await.unwrap();
        report.attempts[0].status
    }

    /// Sends call event `n` until the ingress answers 2xx, as a provider
    /// retries (with a short backoff).
    async fn deliver_until_accepted(&self, n: usize, origin: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let status = self.deliver(n, origin).await;
            if status.is_some_and(|s| (200..300).contains(&s)) {
                return;
            }
            assert!(Instant::now() < deadline, "{}: {status:?}", call_id(n));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Delivers every event of `calls` until accepted, `width` at once,
    /// event `n` through `origins[n % len]`.
    async fn deliver_all(
        &self,
        calls: impl IntoIterator<Item = usize>,
        width: usize,
        origins: &[String],
    ) {
        let mut calls = calls.into_iter();
        let mut running = JoinSet::new();
        loop {
            while running.len() < width {
                let Some(n) = calls.next() else { break };
                let (p, origin) = (self.clone(), origins[n % origins.len()].clone());
                running.spawn(async move { p.deliver_until_accepted(n, &origin).await });
            }
            match running.join_next().await {
                Some(done) => done.unwrap(),
                None => return,
            }
        }
    }
}

/// One delivery as the subscriber got it.
#[derive(Debug, Clone)]
struct Arrival {
    webhook_id: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// What the receiver has seen so far.
#[derive(Default)]
struct Log {
    arrivals: Vec<Arrival>,
    /// Requests being answered (arrived, answer not yet sent).
    in_progress: usize,
    /// Requests answered 204.
    answered: usize,
}

/// The subscriber: records every delivery as it arrives, then answers 204
/// after `delay` (a slow receiver is behaviour under test).
struct Receiver {
    url: String,
    log: Arc<Mutex<Log>>,
    _running: switchboard_sim::Running,
}

/// Counts a request out of `in_progress` however it ends (a handler is
/// dropped when its client dies).
struct InProgress(Arc<Mutex<Log>>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.lock().unwrap().in_progress -= 1;
    }
}

impl Receiver {
    async fn start(delay: Duration) -> Self {
        let log: Arc<Mutex<Log>> = Arc::default();
        let sink = log.clone();
        let router = axum::Router::new().route(
            HOOK,
            axum::routing::post(move |headers: http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let webhook_id = headers
                        .get("webhook-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    {
                        let mut log = sink.lock().unwrap();
                        log.in_progress += 1;
                        log.arrivals.push(Arrival {
                            webhook_id,
                            headers,
                            body: body.to_vec(),
                        });
                    }
                    let _counted = InProgress(sink.clone());
                    tokio::time::sleep(delay).await;
                    sink.lock().unwrap().answered += 1;
                    axum::http::StatusCode::NO_CONTENT
                }
            }),
        );
        let running = switchboard_sim::serve(router, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            url: format!("{}{HOOK}", running.base_url),
            log,
            _running: running,
        }
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.log.lock().unwrap().arrivals.clone()
    }

    /// How many distinct `webhook-id`s arrived.
    fn distinct(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.arrivals
            .iter()
            .map(|a| a.webhook_id.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }

    fn in_progress(&self) -> usize {
        self.log.lock().unwrap().in_progress
    }

    fn answered(&self) -> usize {
        self.log.lock().unwrap().answered
    }

    /// Waits until `n` distinct events have arrived.
    async fn wait_for(&self, n: usize) {
        eventually(&format!("{n} distinct events at the receiver"), || async {
            let got = self.distinct();
            (got >= n).then_some(()).ok_or(format!("{got} arrived"))
        })
        .await;
    }
}

/// Polls `check` (every 10 ms) until it passes; fails with its last
/// complaint after [`DEADLINE`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) => assert!(Instant::now() < deadline, "never: {what}; last: {why}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn start_talkover() -> (TalkoverSim, switchboard_sim::Running) {
    let sim = TalkoverSim::new(TalkoverConfig::default());
    let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (sim, running)
}

/// Creates the relay subscription of `call.ended` delivering to `url`;
/// its id.
async fn subscribe(client: &reqwest::Client, base: &str, url: &str) -> String {
    let r = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(TOKEN)
        .json(&json!({
            "provider": "talkover", "account": DEFAULT_AGENT,
            "url": url, "events": ["call.ended"],
            "delivery": "relay", "signing_secret": SECRET,
        }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let sub: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{sub}");
    sub["id"].as_str().unwrap().to_owned()
}

/// Every delivery of `sub` through the API.
async fn deliveries(client: &reqwest::Client, base: &str, sub: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page: Value = client
            .get(format!(
                "{base}/v1/subscriptions/{sub}/deliveries?limit=200{cursor}"
            ))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        all.extend(page["data"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return all,
        }
    }
}

/// Waits until `sub` has exactly `n` deliveries, all `delivered`.
async fn all_delivered(client: &reqwest::Client, base: &str, sub: &str, n: usize) {
    eventually("every delivery recorded delivered", || async {
        let all = deliveries(client, base, sub).await;
        let open: Vec<String> = all
            .iter()
            .filter(|d| d["status"] != "delivered")
            .map(|d| format!("{} {}", d["id"], d["status"]))
            .collect();
        if all.len() == n && open.is_empty() {
            Ok(())
        } else {
            Err(format!("{} deliveries, not delivered: {open:?}", all.len()))
        }
    })
    .await;
}

/// Checks every arrival against the delivery contract: a genuine Standard
/// Webhooks delivery of `sub` (checked here and by the Python library),
/// one `webhook-id` per call and one call per `webhook-id`, every one of
/// the `n` calls present. Returns how often each `webhook-id` arrived.
fn check_arrivals(arrivals: &[Arrival], sub: &str, n: usize) -> BTreeMap<String, usize> {
    let secret = switchboard_relay::SigningSecret::parse(SECRET).unwrap();
    let mut ids_of_call: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut calls_of_id: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    let mut cases = Vec::new();
    for a in arrivals {
        let header = |name: &str| a.headers.get(name).and_then(|v| v.to_str().ok()).unwrap();
        switchboard_relay::verify(
            &a.webhook_id,
            header("webhook-timestamp"),
            header("webhook-signature"),
            &a.body,
            &secret,
            chrono::Utc::now().timestamp(),
            300,
        )
        .unwrap_or_else(|e| panic!("{}: {e:?}", a.webhook_id));
        let envelope: Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(envelope["id"], a.webhook_id.as_str(), "{envelope}");
        assert_eq!(envelope["type"], "call.ended", "{envelope}");
        assert_eq!(envelope["subscription"], sub, "{envelope}");
        let call = envelope["data"]["call_id"].as_str().unwrap().to_owned();
        ids_of_call
            .entry(call.clone())
            .or_default()
            .insert(a.webhook_id.clone());
        calls_of_id
            .entry(a.webhook_id.clone())
            .or_default()
            .insert(call);
        let seen = times.entry(a.webhook_id.clone()).or_default();
        *seen += 1;
        if *seen == 1 {
            cases.push(standard_webhooks::Case {
                secret: SECRET.into(),
                headers: standard_webhooks::header_map(&a.headers),
                body: a.body.clone(),
                json: true,
            });
        }
    }
    for (call, ids) in &ids_of_call {
        assert_eq!(
            ids.len(),
            1,
            "{call} arrived under several webhook-ids: {ids:?}"
        );
    }
    for (id, calls) in &calls_of_id {
        assert_eq!(calls.len(), 1, "{id} carried several calls: {calls:?}");
    }
    let expected: BTreeSet<String> = (0..n).map(call_id).collect();
    let got: BTreeSet<String> = ids_of_call.into_keys().collect();
    assert_eq!(
        expected.difference(&got).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "events never delivered"
    );
    assert_eq!(got.len(), n, "events nobody sent arrived: {got:?}");
    if let Some(verdicts) = standard_webhooks::python_verify(&cases) {
        for (verdict, case) in verdicts.iter().zip(&cases) {
            assert!(verdict.is_ok(), "{verdict:?} for {:?}", case.headers);
        }
    }
    times
}

/// Asserts that every event that arrived more than once was being
/// delivered by the dead process (`delivering` in the database when it
/// died).
fn assert_duplicates_were_in_flight(times: &BTreeMap<String, usize>, at_kill: &[Stored]) {
    let in_flight: BTreeSet<&str> = at_kill
        .iter()
        .filter(|d| d.status == DeliveryStatus::Delivering)
        .map(|d| d.webhook_id.as_str())
        .collect();
    for (id, n) in times.iter().filter(|(_, n)| **n > 1) {
        assert!(
            in_flight.contains(id.as_str()),
            "{id} arrived {n} times but was not being delivered at the kill ({} were)",
            in_flight.len()
        );
    }
}

/// `relay.lease_ms` of a crash test: the default, longer than the test
/// waits, on both backends. A dead process's claims must come back without
/// waiting for their lease: a restarted SQLite server, the only process,
/// takes them at once; on Postgres a live replica sees that the dead one's
/// liveness lock is free and hands its claims back within seconds.
fn crash_lease_ms(_pg: Option<&StoreOptions>) -> u64 {
    DEFAULT_LEASE_MS
}

/// The backends of a crash test: SQLite always, Postgres when configured.
fn databases() -> Vec<(&'static str, Option<StoreOptions>)> {
    let mut all = vec![("sqlite", None)];
    if let Some(pg) = switchboard_store::testing::postgres() {
        all.push(("postgres", Some(pg)));
    }
    all
}

/// Calls the provider sends in the ingest crash test, at most `WIDTH` at
/// once.
const CALLS: usize = 240;
const WIDTH: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_accepted_event_and_duplicates_none() {
    for (name, pg) in databases() {
        eprintln!("backend: {name}");
        ingest_crash(pg.as_ref()).await;
    }
}

async fn ingest_crash(pg: Option<&StoreOptions>) {
    let (sim, sim_running) = start_talkover().await;
    let receiver = Receiver::start(Duration::ZERO).await;
    let relay = RelaySettings {
        lease_ms: crash_lease_ms(pg),
        concurrency: 16,
    };
    let deployment = Deployment::new(&sim_running.base_url, pg, relay);
    let client = reqwest::Client::new();
    let server = deployment.start();
    let sub = subscribe(&client, &server.base, &receiver.url).await;
    let provider = Provider::of(&sim, &sim_running.base_url);

    // The provider delivers, `WIDTH` at a time. Once a quarter has been
    // accepted and the subscriber has events, the server is killed with
    // the deliveries then under way cut off; the rest are not sent yet.
    let mut answers: BTreeMap<usize, Option<u16>> = BTreeMap::new();
    let mut running = JoinSet::new();
    let mut next = 0;
    let accepted = |a: &BTreeMap<usize, Option<u16>>| {
        a.values()
            .filter(|s| s.is_some_and(|s| (200..300).contains(&s)))
            .count()
    };
    while accepted(&answers) < CALLS / 4 || receiver.distinct() < 8 {
        while running.len() < WIDTH && next < CALLS {
            let (p, origin) = (provider.clone(), server.base.clone());
            let n = next;
            running.spawn(async move { (n, p.deliver(n, &origin).await) });
            next += 1;
        }
        let Some(done) = running.join_next().await else {
            panic!("all {CALLS} were sent before the kill point");
        };
        let (n, status) = done.unwrap();
        answers.insert(n, status);
    }
    let cut_off = running.len();
    drop(server);
    while let Some(done) = running.join_next().await {
        let (n, status) = done.unwrap();
        answers.insert(n, status);
    }
    assert!(cut_off > 0, "deliveries were under way at the kill");
    eprintln!(
        "at the kill: {} of {CALLS} answered 2xx, {cut_off} cut off",
        accepted(&answers)
    );

    // At the kill: every delivery answered 2xx is stored, exactly once.
    let at_kill = deployment.look(&sub).await;
    let stored: BTreeMap<&str, usize> = at_kill.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d.call.as_str()).or_default() += 1;
        m
    });
    for (n, status) in &answers {
        if status.is_some_and(|s| (200..300).contains(&s)) {
            assert!(
                stored.contains_key(call_id(*n).as_str()),
                "{} was answered 2xx but lost",
                call_id(*n)
            );
        }
    }
    assert!(stored.values().all(|&c| c == 1), "{stored:?}");
    let unanswered: Vec<usize> = (0..CALLS)
        .filter(|n| {
            !answers
                .get(n)
                .is_some_and(|s| s.is_some_and(|s| (200..300).contains(&s)))
        })
        .collect();
    assert!(!unanswered.is_empty());

    // Restarted on the same database, the provider retries every delivery
    // it got no 2xx for (some were stored before the answer was cut off),
    // and, as if its acknowledgements were lost, a few accepted ones.
    let server = deployment.start();
    let resent: Vec<usize> = unanswered
        .iter()
        .copied()
        .chain((0..CALLS).filter(|n| !unanswered.contains(n)).step_by(10))
        .collect();
    provider
        .deliver_all(resent, WIDTH, std::slice::from_ref(&server.base))
        .await;

    receiver.wait_for(CALLS).await;
    all_delivered(&client, &server.base, &sub, CALLS).await;
    let times = check_arrivals(&receiver.arrivals(), &sub, CALLS);
    assert_duplicates_were_in_flight(&times, &at_kill);
}

/// Events of the delivery crash test, and how slowly the subscriber
/// answers each.
const SLOW_CALLS: usize = 48;
const SLOW_ANSWER: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_delivery_redelivers_only_what_was_in_flight() {
    for (name, pg) in databases() {
        eprintln!("backend: {name}");
        delivery_crash(pg.as_ref()).await;
    }
}

async fn delivery_crash(pg: Option<&StoreOptions>) {
    let (sim, sim_running) = start_talkover().await;
    let receiver = Receiver::start(SLOW_ANSWER).await;
    // Eight attempts at a time against a slow subscriber: at the kill some
    // events are delivered, some under way, some still waiting.
    let relay = RelaySettings {
        lease_ms: crash_lease_ms(pg),
        concurrency: 8,
    };
    let deployment = Deployment::new(&sim_running.base_url, pg, relay);
    let client = reqwest::Client::new();
    let server = deployment.start();
    let sub = subscribe(&client, &server.base, &receiver.url).await;
    let provider = Provider::of(&sim, &sim_running.base_url);
    provider
        .deliver_all(0..SLOW_CALLS, 16, std::slice::from_ref(&server.base))
        .await;

    eventually("a delivered wave and another under way", || async {
        let (answered, in_progress) = (receiver.answered(), receiver.in_progress());
        (answered >= 8 && in_progress >= 4)
            .then_some(())
            .ok_or(format!("{answered} answered, {in_progress} in progress"))
    })
    .await;
    drop(server);

    let at_kill = deployment.look(&sub).await;
    assert_eq!(at_kill.len(), SLOW_CALLS, "every accepted event is stored");
    let count = |s: DeliveryStatus| at_kill.iter().filter(|d| d.status == s).count();
    eprintln!(
        "at the kill: {} delivered, {} being delivered, {} waiting",
        count(DeliveryStatus::Delivered),
        count(DeliveryStatus::Delivering),
        count(DeliveryStatus::Pending)
    );
    assert!(
        count(DeliveryStatus::Delivering) > 0,
        "the kill cut deliveries off: {at_kill:?}"
    );

    let server = deployment.start();
    receiver.wait_for(SLOW_CALLS).await;
    all_delivered(&client, &server.base, &sub, SLOW_CALLS).await;
    let times = check_arrivals(&receiver.arrivals(), &sub, SLOW_CALLS);
    assert_duplicates_were_in_flight(&times, &at_kill);
}

/// One replica's `/metrics`.
async fn scrape(client: &reqwest::Client, base: &str) -> prometheus_parse::Scrape {
    let text = client
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// The sum of the samples of counter `metric` with `outcome`.
fn counted(scrape: &prometheus_parse::Scrape, metric: &str, outcome: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && s.labels.get("outcome") == Some(outcome))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{metric} is not a counter"),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_share_deliveries_and_send_each_once() {
    let Some(pg) = switchboard_store::testing::postgres() else {
        return;
    };
    const N: usize = 200;
    let (sim, sim_running) = start_talkover().await;
    // A little latency, so one replica's worker cannot drain everything
    // before the other's claim comes in.
    let receiver = Receiver::start(Duration::from_millis(20)).await;
    let relay = RelaySettings {
        lease_ms: DEFAULT_LEASE_MS,
        concurrency: 16,
    };
    let deployment = Deployment::new(&sim_running.base_url, Some(&pg), relay);
    let client = reqwest::Client::new();
    let (a, b) = (deployment.start(), deployment.start());
    let sub = subscribe(&client, &a.base, &receiver.url).await;
    let provider = Provider::of(&sim, &sim_running.base_url);
    // Every second event arrives through each replica's ingress.
    provider
        .deliver_all(0..N, 16, &[a.base.clone(), b.base.clone()])
        .await;

    receiver.wait_for(N).await;
    all_delivered(&client, &b.base, &sub, N).await;
    let arrivals = receiver.arrivals();
    let times = check_arrivals(&arrivals, &sub, N);
    let twice: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "nobody crashed, yet sent again: {twice:?}"
    );

    let scrapes = [
        scrape(&client, &a.base).await,
        scrape(&client, &b.base).await,
    ];
    let per_replica = |metric: &str, outcome: &str| -> Vec<f64> {
        scrapes
            .iter()
            .map(|s| counted(s, metric, outcome))
            .collect()
    };
    let accepted = per_replica("switchboard_ingress_requests_total", "accepted");
    assert_eq!(
        accepted.iter().sum::<f64>(),
        N as f64,
        "each event accepted once: {accepted:?}"
    );
    assert!(
        accepted.iter().all(|&n| n > 0.0),
        "both ingresses accepted: {accepted:?}"
    );
    let delivered = per_replica("switchboard_relay_attempts_total", "delivered");
    assert_eq!(
        delivered.iter().sum::<f64>(),
        N as f64,
        "each event sent by one replica: {delivered:?}"
    );
    assert!(
        delivered.iter().all(|&n| n > 0.0),
        "both replicas delivered: {delivered:?}"
    );
    for outcome in ["retry", "failed", "lease_lost"] {
        let n = per_replica("switchboard_relay_attempts_total", outcome);
        assert!(n.iter().all(|&n| n == 0.0), "{outcome}: {n:?}");
    }
}
