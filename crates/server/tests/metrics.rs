//! Metrics and readiness over the real API: requests and injected faults
//! move the counters they should, `/metrics` is admin-only on the API
//! listener and open on a listener of its own, its text parses with a real
//! exposition parser (prometheus-parse, and the Prometheus project's
//! Python client when installed), every label value is bounded, and
//! `/readyz` shows a provider's failure while staying ready.
//!
//! The process has one metrics recorder, shared by every server a test
//! starts: counters are compared before and after (deltas), and the tests
//! of this file take turns ([`SERIAL`]) so no other server moves them in
//! between.

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Command;

use prometheus_parse::Value as Sample;
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_sim::faults::Fault;
use switchboard_store::StoreOptions;

use support::*;

/// The tests of this file share the process's recorder: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Python and the Prometheus client library it needs.
const REQUIRE: &str = "SWITCHBOARD_REQUIRE_PYTHON_CLIENT";

/// Every label key the metrics may carry.
const LABEL_KEYS: &[&str] = &[
    "route",
    "method",
    "status_class",
    "provider",
    "kind",
    "operation",
    "outcome",
    "layer",
    "limit",
    "state",
    "resolution",
    "action",
    "reason",
    "status",
    "version",
    "le",
];

/// A scrape, as prometheus-parse reads it.
struct Scrape {
    text: String,
    parsed: prometheus_parse::Scrape,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let parsed = prometheus_parse::Scrape::parse(lines).unwrap();
        Self { text, parsed }
    }

    /// The sum of the counter or gauge samples of `name` whose labels
    /// include `labels`; 0 when there are none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.parsed
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
                _ => panic!("{name} is not a counter or gauge"),
            })
            .sum()
    }

    /// Whether `name` is a histogram with buckets, a sum and a count.
    fn is_histogram(&self, name: &str) -> bool {
        let buckets =
            self.parsed.samples.iter().any(|s| {
                s.metric == name && matches!(&s.value, Sample::Histogram(b) if b.len() > 1)
            });
        let has = |suffix: &str| {
            self.parsed
                .samples
                .iter()
                .any(|s| s.metric == format!("{name}{suffix}"))
        };
        buckets && has("_sum") && has("_count")
    }
}

/// `after - before` of one series.
fn delta(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.value(name, labels) - before.value(name, labels)
}

async fn scrape(env: &Env, url: &str, token: Option<&str>) -> Scrape {
    let mut req = env.client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = Resp::read(req.send().await.unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("text/plain; version=0.0.4"),
        "{}",
        r.content_type()
    );
    Scrape::parse(r.text)
}

/// Label values that would make a series per subscription, tenant, URL or
/// secret.
fn assert_bounded(key: &str, value: &str) {
    assert!(LABEL_KEYS.contains(&key), "unexpected label key {key}");
    for leak in [
        "sub_",
        "tenant-",
        "://",
        "example.com",
        AGENT,
        TOKEN_ADMIN,
        TOKEN_A,
        PROVIDER_TOKEN,
        "SECRET",
    ] {
        assert!(
            !value.contains(leak),
            "label {key}=\"{value}\" carries `{leak}`"
        );
    }
    if key == "route" {
        assert!(
            value == "unmatched" || value.starts_with('/'),
            "route {value} is not a template"
        );
    }
}

fn post_keyed(env: &Env, key: &str, body: &Value) -> reqwest::RequestBuilder {
    env.client
        .post(format!("{}/v1/subscriptions", env.base))
        .bearer_auth(TOKEN_A)
        .header("Idempotency-Key", key)
        .json(body)
}

/// Requests and faults whose effects the scrape after them must show.
async fn exercise(env: &Env) -> String {
    let id = env.create_sub().await;
    assert_eq!(
        env.call("GET", &format!("/v1/subscriptions/{id}"), TOKEN_A, None)
            .await
            .status,
        200
    );
    let mut bad = sub_body();
    bad["timeout_seconds"] = json!(999);
    assert_eq!(
        env.call("POST", "/v1/subscriptions", TOKEN_A, Some(bad))
            .await
            .status,
        422
    );
    assert_eq!(
        env.call("GET", "/no/such/route", TOKEN_A, None)
            .await
            .status,
        404
    );
    // A 500 that was not applied: the create's outcome is unknown until a
    // listing shows nothing was made; the step is then retried.
    env.sim
        .inject(Fault::status(500).on_method("POST"))
        .unwrap();
    env.create_sub().await;
    // Replayed, then refused for another body under the same key.
    let first = post_keyed(env, "key-m", &sub_body()).send().await.unwrap();
    assert_eq!(first.status(), 201);
    let again = post_keyed(env, "key-m", &sub_body()).send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let mut other = sub_body();
    other["name"] = json!("other");
    let mismatch = post_keyed(env, "key-m", &other).send().await.unwrap();
    assert_eq!(mismatch.status(), 422);
    id
}

async fn api_listener(store: &StoreOptions) {
    fn tweak(c: &mut Config) {
        c.metrics.subscriptions_refresh_ms = 0;
        // No sweep during the test: its listings would take the injected
        // fault and change the last outcome readiness shows.
        c.reliability.maintenance_interval_ms = 3_600_000;
        c.reliability.operation_lease_ms = 3 * 3_600_000;
    }
    let env = start(
        store,
        Opts {
            tweak: Some(tweak),
            ..Opts::default()
        },
    )
    .await;
    let metrics_url = format!("{}/metrics", env.base);

    let ready = env.call("GET", "/readyz", TOKEN_A, None).await;
    assert_eq!(
        ready.json()["providers"]["talkover"],
        json!({"last_outcome": null, "at": null})
    );

    for (token, status) in [
        (TOKEN_A, 403),
        (TOKEN_A_READ, 403),
        ("not-a-token-at-all", 401),
    ] {
        let r = env.call("GET", "/metrics", token, None).await;
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.content_type(), "application/problem+json");
    }
    let before = scrape(&env, &metrics_url, Some(TOKEN_ADMIN)).await;
    let id = exercise(&env).await;

    // A provider outage during a reconciliation: the call fails, the
    // process stays ready and says which provider failed.
    env.sim.inject(Fault::status(503).on_method("GET")).unwrap();
    let r = env
        .call(
            "POST",
            &format!("/v1/subscriptions/{id}/reconcile"),
            TOKEN_A,
            None,
        )
        .await;
    assert!(r.status >= 500, "{} {}", r.status, r.text);
    let ready = env.call("GET", "/readyz", TOKEN_A, None).await;
    assert_eq!(
        ready.status, 200,
        "one provider's outage is not unreadiness"
    );
    let talkover = &ready.json()["providers"]["talkover"];
    assert_eq!(talkover["last_outcome"], "unavailable", "{}", ready.text);
    let at = talkover["at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");

    let after = scrape(&env, &metrics_url, Some(TOKEN_ADMIN)).await;
    assert_counters_moved(&before, &after);
    assert!(after.is_histogram("switchboard_http_request_duration_seconds"));
    assert!(after.is_histogram("switchboard_upstream_call_duration_seconds"));
    // Read from this server's database at the scrape: its three creates.
    let subs = |status| {
        after.value(
            "switchboard_subscriptions",
            &[("provider", "talkover"), ("status", status)],
        )
    };
    assert_eq!((subs("active"), subs("pending")), (3.0, 0.0));
    assert_eq!(
        after.value(
            "switchboard_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    for s in &after.parsed.samples {
        for (k, v) in s.labels.iter() {
            assert_bounded(k, v);
        }
    }
    python_check(&after.text);
}

fn assert_counters_moved(before: &Scrape, after: &Scrape) {
    let http = "switchboard_http_requests_total";
    let d = |name, labels: &[(&str, &str)]| delta(before, after, name, labels);
    let posts = |class| {
        d(
            http,
            &[
                ("route", "/v1/subscriptions"),
                ("method", "POST"),
                ("status_class", class),
            ],
        )
    };
    // Created: two plain, the keyed one and its replay; refused: the bad
    // body and the key reused for another body.
    assert_eq!((posts("2xx"), posts("4xx")), (4.0, 2.0));
    assert_eq!(
        d(http, &[("route", "unmatched"), ("status_class", "4xx")]),
        1.0
    );
    assert_eq!(
        d(http, &[("route", "/metrics"), ("status_class", "2xx")]),
        1.0,
        "the first scrape"
    );
    let calls = "switchboard_upstream_calls_total";
    let tk = [("provider", "talkover"), ("kind", "talkover")];
    let call = |op, outcome| {
        d(
            calls,
            &[tk[0], tk[1], ("operation", op), ("outcome", outcome)],
        )
    };
    assert_eq!(call("create", "ok"), 3.0);
    assert_eq!(call("create", "unavailable"), 1.0, "the injected 500");
    assert!(
        call("list", "ok") >= 1.0,
        "the unknown create was looked for"
    );
    let outages = d(
        calls,
        &[("provider", "talkover"), ("outcome", "unavailable")],
    );
    assert_eq!(
        outages, 2.0,
        "the 500 on create and the 503 on the reconcile's read"
    );
    let requests = "switchboard_upstream_requests_total";
    assert_eq!(
        d(
            requests,
            &[("provider", "talkover"), ("status_class", "5xx")]
        ),
        2.0
    );
    assert_eq!(
        d(
            "switchboard_upstream_retries_total",
            &[("provider", "talkover"), ("layer", "step")]
        ),
        1.0
    );
    let unknown = [("provider", "talkover")];
    assert_eq!(
        d("switchboard_unknown_outcomes_opened_total", &unknown),
        1.0
    );
    assert_eq!(
        d(
            "switchboard_unknown_outcomes_resolved_total",
            &[unknown[0], ("resolution", "applied")]
        ),
        1.0
    );
    assert_eq!(d("switchboard_unknown_outcomes_open", &unknown), 0.0);
    let journal = |name, labels: &[(&str, &str)]| d(name, labels);
    assert_eq!(
        journal(
            "switchboard_journal_entries_started_total",
            &[("operation", "create")]
        ),
        3.0
    );
    assert_eq!(
        journal(
            "switchboard_journal_entries_closed_total",
            &[("operation", "create"), ("state", "succeeded")]
        ),
        3.0
    );
    assert_eq!(
        journal(
            "switchboard_journal_entries_closed_total",
            &[("operation", "reconcile"), ("state", "failed")]
        ),
        1.0
    );
    assert_eq!(d("switchboard_idempotency_replays_total", &[]), 1.0);
    assert_eq!(
        d(
            "switchboard_idempotency_conflicts_total",
            &[("reason", "mismatch")]
        ),
        1.0
    );
}

#[tokio::test]
async fn api_metrics_follow_requests_and_faults_and_readiness_names_the_failing_provider() {
    let _turn = SERIAL.lock().await;
    each_backend!(api_listener);
}

async fn own_listener(store: &StoreOptions) {
    fn separate(c: &mut Config) {
        c.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    }
    let env = start(
        store,
        Opts {
            tweak: Some(separate),
            ..Opts::default()
        },
    )
    .await;
    let own = env
        .server
        .as_ref()
        .unwrap()
        .metrics_url
        .clone()
        .expect("a metrics listener");
    let before = scrape(&env, &format!("{own}/metrics"), None).await;
    let r = env.call("GET", "/metrics", TOKEN_ADMIN, None).await;
    assert_eq!(r.status, 404, "not served on the API listener: {}", r.text);
    let after = scrape(&env, &format!("{own}/metrics"), None).await;
    let unmatched = [
        ("route", "unmatched"),
        ("method", "GET"),
        ("status_class", "4xx"),
    ];
    assert_eq!(
        delta(
            &before,
            &after,
            "switchboard_http_requests_total",
            &unmatched
        ),
        1.0
    );
    // Its own scrapes are not API requests.
    let scrapes = [("route", "/metrics")];
    assert_eq!(
        delta(&before, &after, "switchboard_http_requests_total", &scrapes),
        0.0
    );

    fn off(c: &mut Config) {
        c.metrics.enabled = false;
    }
    let env = start(
        store,
        Opts {
            tweak: Some(off),
            ..Opts::default()
        },
    )
    .await;
    assert_eq!(
        env.call("GET", "/metrics", TOKEN_ADMIN, None).await.status,
        404
    );
}

#[tokio::test]
async fn metrics_on_their_own_listener_need_no_token_and_leave_the_api() {
    let _turn = SERIAL.lock().await;
    each_backend!(own_listener);
}

async fn background_pass(store: &StoreOptions) {
    fn often(c: &mut Config) {
        c.reliability.reconcile_interval_ms = 100;
    }
    let env = start(
        store,
        Opts {
            tweak: Some(often),
            ..Opts::default()
        },
    )
    .await;
    let metrics_url = format!("{}/metrics", env.base);
    let before = scrape(&env, &metrics_url, Some(TOKEN_ADMIN)).await;
    let id = env.create_sub().await;
    let sub = env
        .call("GET", &format!("/v1/subscriptions/{id}"), TOKEN_A, None)
        .await
        .json();
    // Removed at the provider behind Switchboard's back: the pass finds it
    // missing and repairs it.
    let native = sub["native"][0]["id"].as_str().unwrap().to_owned();
    let removed = env
        .client
        .delete(format!(
            "{}/api/v1/agents/{AGENT}/webhooks/{native}",
            env.sim_base
        ))
        .bearer_auth(PROVIDER_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success());
    let talkover = [("provider", "talkover")];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let repaired = [("operation", "reconcile"), ("state", "succeeded")];
    // The repair is counted while its tick runs; the tick's and the pass's
    // durations and the journal close only when they end: wait for all.
    let settled = |now: &Scrape| {
        let d = |name, labels: &[(&str, &str)]| delta(&before, now, name, labels);
        d("switchboard_reconcile_repairs_total", &talkover) >= 1.0
            && d("switchboard_reconcile_tick_duration_seconds_count", &[]) >= 1.0
            && d("switchboard_reconcile_pass_duration_seconds_count", &[]) >= 1.0
            && d("switchboard_journal_entries_closed_total", &repaired) >= 1.0
    };
    let after = loop {
        let now = scrape(&env, &metrics_url, Some(TOKEN_ADMIN)).await;
        if settled(&now) {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pass was not counted in full:\n{}",
            now.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let d = |name, labels: &[(&str, &str)]| delta(&before, &after, name, labels);
    let missing = [talkover[0], ("kind", "missing")];
    assert!(d("switchboard_reconcile_findings_total", &missing) >= 1.0);
    assert!(
        d(
            "switchboard_reconcile_subscriptions_checked_total",
            &talkover
        ) >= 1.0
    );
    assert!(
        d("switchboard_reconcile_upstream_calls_total", &talkover) >= 2.0,
        "a listing and a repair"
    );
    assert_eq!(
        d("switchboard_reconcile_account_errors_total", &talkover),
        0.0
    );
    assert!(after.is_histogram("switchboard_reconcile_pass_duration_seconds"));
}

#[tokio::test]
async fn the_background_pass_is_measured() {
    let _turn = SERIAL.lock().await;
    each_backend!(background_pass);
}

/// Parses `text` with the Prometheus Python client, as a second, complete
/// parser: prometheus-parse skips samples whose label values contain `}`
/// (its label pattern is `[^}]+`), which route templates with parameters
/// do. Skipped without the client unless [`REQUIRE`] is `1`.
fn python_check(text: &str) {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;
    let run = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let output = run.and_then(|mut child| {
        child.stdin.take().unwrap().write_all(text.as_bytes())?;
        child.wait_with_output()
    });
    let out = match output {
        Ok(out) if out.status.success() => out,
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var(REQUIRE).as_deref() != Ok("1"),
                "{REQUIRE}=1 but the Prometheus Python client could not parse the scrape: {why}"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n*** prometheus_client (Python) not usable; second parse skipped (pip install prometheus-client) ***\n{why}"
            );
            return;
        }
    };
    let samples: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut types = BTreeMap::new();
    for s in &samples {
        types.insert(
            s["family"].as_str().unwrap().to_owned(),
            s["type"].as_str().unwrap().to_owned(),
        );
        for (k, v) in s["labels"].as_object().unwrap() {
            assert_bounded(k, v.as_str().unwrap());
        }
    }
    // Recent clients name counter families without `_total`.
    let http = types
        .get("switchboard_http_requests")
        .or_else(|| types.get("switchboard_http_requests_total"));
    assert_eq!(http.map(String::as_str), Some("counter"));
    assert_eq!(
        types["switchboard_upstream_call_duration_seconds"],
        "histogram"
    );
    assert_eq!(types["switchboard_subscriptions"], "gauge");
    let by_id = samples.iter().find(|s| {
        s["name"] == "switchboard_http_requests_total"
            && s["labels"]["route"] == "/v1/subscriptions/{id}"
            && s["labels"]["method"] == "GET"
            && s["labels"]["status_class"] == "2xx"
    });
    assert!(
        by_id.is_some_and(|s| s["value"].as_f64().unwrap() >= 1.0),
        "the {{id}} template is the route label"
    );
    for suffix in ["_bucket", "_sum", "_count"] {
        let name = format!("switchboard_http_request_duration_seconds{suffix}");
        assert!(samples.iter().any(|s| s["name"] == name.as_str()), "{name}");
    }
}
