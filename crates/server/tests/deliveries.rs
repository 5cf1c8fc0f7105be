//! The deliveries API (issue 13 §5) through HTTP on a real server on port
//! 0: listing with filters and paging, one delivery with its envelope and
//! attempts, redeliver, replay, the test event, tenant isolation, scopes
//! and problem+json refusals. SQLite, and Postgres when configured.
//!
//! Except in the last test, the server runs without relay mode, so no
//! delivery worker touches the outbox: the test plays the ingress
//! (`Store::accept_event`) and the worker (`claim_due_deliveries` +
//! `record_attempt`) itself on a second handle to the server's database,
//! opened with the server's key.
//! Relay subscriptions are made by switching a created subscription's
//! stored spec to relay mode, as the engine would have written it.

mod support;

use std::sync::LazyLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchboard::config::{Config, KeyConfig};
use switchboard_core::{DeliveryMode, Secret};
use switchboard_store::{
    Accepted, Cipher, NewAttempt, NewEvent, NextState, Recorded, SecretKey, Store, StoreOptions,
};

use support::*;

const TENANT_A: &str = "tenant-a";
const LEASE: Duration = Duration::from_secs(30);
const WORKER: &str = "test-worker";

/// The server's data key, shared with the test's own store handle.
static KEY: LazyLock<String> = LazyLock::new(|| SecretKey::generate("k1").1);

fn shared_key(config: &mut Config) {
    config.secrets.keys = vec![KeyConfig {
        id: "k1".into(),
        key: Secret::new(KEY.clone()),
    }];
}

/// The server, and a handle to its database.
struct Rig {
    env: Env,
    store: Store,
}

async fn rig(opts: &StoreOptions) -> Rig {
    let env = start(
        opts,
        Opts {
            tweak: Some(shared_key),
            ..Opts::default()
        },
    )
    .await;
    let cipher = Cipher::new(vec![SecretKey::from_base64("k1", &KEY).unwrap()]).unwrap();
    let mut mine = StoreOptions::new(opts.url.clone(), cipher);
    mine.pg_schema = opts.pg_schema.clone();
    mine.max_connections = 2;
    let store = Store::connect(&mine).await.unwrap();
    Rig { env, store }
}

impl Rig {
    /// A subscription of tenant A created through the API, switched to
    /// relay mode when `relay`.
    async fn subscription(&self, relay: bool) -> String {
        let id = self.env.create_sub().await;
        if relay {
            let mut rec = self.store.get(TENANT_A, &id).await.unwrap();
            rec.spec = rec
                .spec
                .with(|d| d.delivery.mode = DeliveryMode::Relay)
                .unwrap();
            self.store.update(&rec).await.unwrap();
        }
        id
    }

    /// Accepts an event for tenant A's `sub`, as the ingress does.
    async fn accept(&self, sub: &str, event_type: &str, n: u32, at: DateTime<Utc>) -> String {
        let payload = json!({"n": n, "note": "as received"}).to_string();
        let dedup = format!("req-{n}");
        let event = NewEvent {
            tenant: TENANT_A,
            subscription_id: sub,
            event_type,
            provider: "talkover",
            occurred_at: Some(at - chrono::Duration::seconds(1)),
            received_at: at,
            payload: &payload,
            dedup_key: &dedup,
            ordered: false,
        };
        match self.store.accept_event(&event).await.unwrap() {
            Accepted::New(id) => id,
            other => panic!("not accepted: {other:?}"),
        }
    }

    /// Claims every due delivery and records one attempt each: `next`
    /// decides what the delivery becomes. Returns the delivery ids.
    async fn attempt_all(&self, status: u16, excerpt: &str, next: NextState) -> Vec<String> {
        let claimed = self
            .store
            .claim_due_deliveries(WORKER, Utc::now(), 100, LEASE)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for c in &claimed {
            let attempt = NewAttempt {
                delivery_id: &c.delivery.id,
                worker_id: WORKER,
                attempt: c.delivery.attempts + 1,
                started_at: Utc::now(),
                latency: Duration::from_millis(12),
                status_code: Some(status),
                outcome: "response",
                response_excerpt: Some(excerpt),
                error: (status >= 300).then_some("the receiver refused"),
                next,
            };
            assert_eq!(
                self.store.record_attempt(&attempt).await.unwrap(),
                Recorded::Stored
            );
            ids.push(c.delivery.id.clone());
        }
        ids
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.env.call("GET", path, token, None).await
    }

    async fn post(&self, path: &str, token: &str) -> Resp {
        self.env.call("POST", path, token, None).await
    }

    /// Every delivery of `sub` through the API, with `query`, page by page.
    async fn all_deliveries(&self, sub: &str, query: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/subscriptions/{sub}/deliveries?limit=2{query}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let r = self.get(&path, TOKEN_A).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            let page = r.json();
            let data = page["data"].as_array().unwrap();
            assert!(data.len() <= 2, "{}", r.text);
            out.extend(data.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return out,
            }
        }
    }
}

/// A delivery id nothing has.
fn unknown_delivery() -> String {
    switchboard_core::ids::subscription_id().replacen("sub_", "dlv_", 1)
}

fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A problem+json answer with `status` and, when given, a field error at
/// `pointer`.
fn assert_problem(r: &Resp, status: u16, pointer: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.content_type(), "application/problem+json", "{}", r.text);
    assert_eq!(r.json()["status"], status, "{}", r.text);
    if let Some(p) = pointer {
        assert_eq!(r.pointers(), [p], "{}", r.text);
    }
}

async fn listing(opts: &StoreOptions) {
    let rig = rig(opts).await;
    let sub = rig.subscription(true).await;
    let t0 = Utc::now() - chrono::Duration::seconds(60);
    let sec = chrono::Duration::seconds;
    // Oldest first; the first two are claimed first (oldest due first).
    rig.accept(&sub, "call.ended", 1, t0).await;
    rig.accept(&sub, "call.ended", 2, t0 + sec(1)).await;
    let claimed = rig
        .store
        .claim_due_deliveries(WORKER, Utc::now(), 2, LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for (c, next) in claimed
        .iter()
        .zip([NextState::Delivered, NextState::Failed])
    {
        let a = NewAttempt {
            delivery_id: &c.delivery.id,
            worker_id: WORKER,
            attempt: 1,
            started_at: Utc::now(),
            latency: Duration::from_millis(5),
            status_code: Some(200),
            outcome: "response",
            response_excerpt: None,
            error: None,
            next,
        };
        rig.store.record_attempt(&a).await.unwrap();
    }
    rig.accept(&sub, "call.ended", 3, t0 + sec(2)).await;
    rig.accept(&sub, "native:event_action", 4, t0 + sec(3))
        .await;
    rig.accept(&sub, "native:event_action", 5, t0 + sec(4))
        .await;

    let all = rig.all_deliveries(&sub, "").await;
    assert_eq!(all.len(), 5);
    let listed = ids(&all);
    let mut newest_first = listed.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(listed, newest_first, "newest first, no repeats");
    newest_first.dedup();
    assert_eq!(newest_first.len(), 5);
    let first = &all[0];
    assert_eq!(first["subscription"], sub.as_str());
    assert_eq!(first["type"], "native:event_action");
    assert_eq!(first["status"], "pending");
    assert_eq!(first["attempts"], 0);
    assert!(first["event_id"].as_str().unwrap().starts_with("evt_"));
    assert!(first["next_attempt_at"].is_string(), "{first}");

    let delivered = rig.all_deliveries(&sub, "&status=delivered").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["attempts"], 1);
    assert_eq!(delivered[0]["next_attempt_at"], Value::Null);
    assert_eq!(delivered[0]["last_status_code"], 200);
    assert_eq!(rig.all_deliveries(&sub, "&status=failed").await.len(), 1);
    assert_eq!(rig.all_deliveries(&sub, "&status=pending").await.len(), 3);
    assert_eq!(rig.all_deliveries(&sub, "&status=gone").await.len(), 0);
    assert_eq!(rig.all_deliveries(&sub, "&type=call.ended").await.len(), 3);
    let native = rig
        .all_deliveries(&sub, "&type=native:event_action&status=pending")
        .await;
    assert_eq!(native.len(), 2);
    assert!(native.iter().all(|d| d["type"] == "native:event_action"));

    // Scopes and tenancy: a read-only token lists; another tenant, an
    // unknown and a malformed id are 404.
    let path = format!("/v1/subscriptions/{sub}/deliveries");
    assert_eq!(rig.get(&path, TOKEN_A_READ).await.status, 200);
    assert_problem(&rig.get(&path, TOKEN_B).await, 404, None);
    let unknown = switchboard_core::ids::subscription_id();
    let r = rig
        .get(&format!("/v1/subscriptions/{unknown}/deliveries"), TOKEN_A)
        .await;
    assert_problem(&r, 404, None);
    assert_problem(
        &rig.get("/v1/subscriptions/nope/deliveries", TOKEN_A).await,
        404,
        None,
    );
    // An admin lists any tenant's.
    let r = rig.get(&path, TOKEN_ADMIN).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["data"].as_array().unwrap().len(), 5);

    // Bad parameters, each at its pointer.
    for (query, pointer) in [
        ("status=bogus", "/status"),
        ("type=Not%20A%20Type", "/type"),
        ("limit=0", "/limit"),
        ("limit=201", "/limit"),
        (&format!("cursor={sub}") as &str, "/cursor"),
        ("colour=red", "/colour"),
    ] {
        let r = rig.get(&format!("{path}?{query}"), TOKEN_A).await;
        assert_problem(&r, 422, Some(pointer));
    }
}

#[tokio::test]
async fn deliveries_are_listed_filtered_and_paged_per_tenant() {
    each_backend!(listing);
}

async fn detail(opts: &StoreOptions) {
    let rig = rig(opts).await;
    let sub = rig.subscription(true).await;
    let at = Utc::now() - chrono::Duration::seconds(5);
    let event_id = rig.accept(&sub, "call.ended", 7, at).await;
    let long = "x".repeat(5000);
    let failed = rig
        .attempt_all(
            503,
            &long,
            NextState::Retry {
                at: Utc::now() - chrono::Duration::seconds(1),
            },
        )
        .await;
    let again = rig.attempt_all(200, "ok", NextState::Delivered).await;
    assert_eq!(failed, again, "one delivery, attempted twice");
    let id = &failed[0];

    let r = rig.get(&format!("/v1/deliveries/{id}"), TOKEN_A).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let ms = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(
        v["envelope"],
        json!({
            "id": event_id,
            "type": "call.ended",
            "provider": "talkover",
            "subscription": sub,
            "occurred_at": ms(at - chrono::Duration::seconds(1)),
            "received_at": ms(at),
            "data": {"n": 7, "note": "as received"}
        })
    );
    let d = &v["delivery"];
    assert_eq!(d["id"], id.as_str());
    assert_eq!(d["event_id"], event_id.as_str());
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["attempts"], 2);
    assert_eq!(d["next_attempt_at"], Value::Null);
    let attempts = v["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{v}");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["status_code"], 503);
    assert_eq!(attempts[0]["latency_ms"], 12);
    assert_eq!(attempts[0]["outcome"], "response");
    assert_eq!(attempts[0]["error"], "the receiver refused");
    let excerpt = attempts[0]["response_excerpt"].as_str().unwrap();
    assert!(
        excerpt.len() <= 1024 && !excerpt.is_empty(),
        "{}",
        excerpt.len()
    );
    assert!(attempts[0]["started_at"].is_string());
    assert_eq!(attempts[1]["attempt"], 2);
    assert_eq!(attempts[1]["status_code"], 200);
    assert_eq!(attempts[1]["response_excerpt"], "ok");
    assert_eq!(attempts[1]["error"], Value::Null);

    // Another tenant's delivery, an unknown one and a malformed id: 404.
    let path = format!("/v1/deliveries/{id}");
    assert_problem(&rig.get(&path, TOKEN_B).await, 404, None);
    assert_eq!(rig.get(&path, TOKEN_A_READ).await.status, 200);
    let unknown = unknown_delivery();
    assert_problem(
        &rig.get(&format!("/v1/deliveries/{unknown}"), TOKEN_A).await,
        404,
        None,
    );
    for bad in ["nope", "dlv_%00", "%ff"] {
        let r = rig.get(&format!("/v1/deliveries/{bad}"), TOKEN_A).await;
        assert_problem(&r, 404, None);
    }
    let r = rig.get(&path, "not-a-token").await;
    assert_problem(&r, 401, None);
}

#[tokio::test]
async fn a_delivery_shows_its_envelope_and_every_attempt() {
    each_backend!(detail);
}

async fn redelivery(opts: &StoreOptions) {
    let rig = rig(opts).await;
    let sub = rig.subscription(true).await;
    rig.accept(&sub, "call.ended", 1, Utc::now()).await;
    let id = rig
        .attempt_all(500, "down", NextState::Failed)
        .await
        .remove(0);
    let path = format!("/v1/deliveries/{id}/redeliver");

    // Scope first, tenancy next.
    assert_problem(&rig.post(&path, TOKEN_A_READ).await, 403, None);
    assert_problem(&rig.post(&path, TOKEN_B).await, 404, None);

    let r = rig.post(&path, TOKEN_A).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["status"], "pending");
    assert_eq!(v["attempts"], 0, "a new series");
    assert!(v["next_attempt_at"].is_string());
    let shown = rig
        .get(&format!("/v1/deliveries/{id}"), TOKEN_A)
        .await
        .json();
    assert_eq!(shown["delivery"]["status"], "pending");
    assert_eq!(
        shown["attempts"].as_array().unwrap().len(),
        1,
        "the earlier series stays in the log"
    );

    // Being attempted right now: 409, and the attempt is undisturbed.
    let claimed = rig
        .store
        .claim_due_deliveries(WORKER, Utc::now(), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let r = rig.post(&path, TOKEN_A).await;
    assert_problem(&r, 409, None);
    let shown = rig
        .get(&format!("/v1/deliveries/{id}"), TOKEN_A)
        .await
        .json();
    assert_eq!(shown["delivery"]["status"], "delivering");

    // A direct subscription's delivery is not re-driven.
    let direct = rig.subscription(false).await;
    rig.accept(&direct, "call.ended", 1, Utc::now()).await;
    let listed = rig.all_deliveries(&direct, "").await;
    let r = rig
        .post(
            &format!(
                "/v1/deliveries/{}/redeliver",
                listed[0]["id"].as_str().unwrap()
            ),
            TOKEN_A,
        )
        .await;
    assert_problem(&r, 422, Some("/delivery"));
    assert!(
        r.json()["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("delivers directly"),
        "{}",
        r.text
    );
    let unknown = unknown_delivery();
    let r = rig
        .post(&format!("/v1/deliveries/{unknown}/redeliver"), TOKEN_A)
        .await;
    assert_problem(&r, 404, None);
}

#[tokio::test]
async fn a_delivery_is_redelivered_as_a_new_series_unless_under_way() {
    each_backend!(redelivery);
}

async fn replaying(opts: &StoreOptions) {
    let rig = rig(opts).await;
    let sub = rig.subscription(true).await;
    let now = Utc::now();
    let sec = chrono::Duration::seconds;
    let old = rig.accept(&sub, "call.ended", 1, now - sec(100)).await;
    let recent = [
        rig.accept(&sub, "call.ended", 2, now - sec(50)).await,
        rig.accept(&sub, "native:event_action", 3, now - sec(10))
            .await,
    ];
    rig.attempt_all(200, "ok", NextState::Delivered).await;

    let since = (now - sec(60)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let path = format!("/v1/subscriptions/{sub}/replay?since={since}");
    assert_problem(&rig.post(&path, TOKEN_A_READ).await, 403, None);
    assert_problem(&rig.post(&path, TOKEN_B).await, 404, None);
    let r = rig.post(&path, TOKEN_A).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["replayed"], 2, "{}", r.text);
    assert!(r.json()["since"].is_string());
    // The new deliveries carry the replayed events, pending.
    let pending = rig.all_deliveries(&sub, "&status=pending").await;
    let mut events: Vec<&str> = pending
        .iter()
        .map(|d| d["event_id"].as_str().unwrap())
        .collect();
    events.sort();
    let mut want: Vec<&str> = recent.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(events, want);
    assert!(!events.contains(&old.as_str()));
    assert_eq!(rig.all_deliveries(&sub, "").await.len(), 5);

    // Their deliveries are open now: nothing more to replay. An offset
    // with a `+` (encoded) reads as any other.
    let plus = (now - sec(200))
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339();
    let r = rig
        .post(
            &format!(
                "/v1/subscriptions/{sub}/replay?since={}",
                plus.replace('+', "%2B")
            ),
            TOKEN_A,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["replayed"], 1, "only the oldest was finished");

    // `since` missing or unreadable: 422 at /since.
    for query in ["", "?since=yesterday", "?since=2025-13-01T00:00:00Z"] {
        let r = rig
            .post(&format!("/v1/subscriptions/{sub}/replay{query}"), TOKEN_A)
            .await;
        assert_problem(&r, 422, Some("/since"));
    }
    let r = rig
        .post(
            &format!("/v1/subscriptions/{sub}/replay?since={since}&x=1"),
            TOKEN_A,
        )
        .await;
    assert_problem(&r, 422, Some("/x"));
    // A direct subscription: 422 at /delivery.
    let direct = rig.subscription(false).await;
    let r = rig
        .post(
            &format!("/v1/subscriptions/{direct}/replay?since={since}"),
            TOKEN_A,
        )
        .await;
    assert_problem(&r, 422, Some("/delivery"));
}

#[tokio::test]
async fn a_replay_delivers_again_what_was_received_since() {
    each_backend!(replaying);
}

async fn test_events(opts: &StoreOptions) {
    let rig = rig(opts).await;
    let sub = rig.subscription(true).await;
    let path = format!("/v1/subscriptions/{sub}/test");
    assert_problem(&rig.post(&path, TOKEN_A_READ).await, 403, None);
    assert_problem(&rig.post(&path, TOKEN_B).await, 404, None);

    let r = rig.post(&path, TOKEN_A).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let v = r.json();
    let id = v["id"].as_str().unwrap();
    assert_eq!(
        r.headers["location"],
        format!("/v1/deliveries/{id}").as_str()
    );
    assert_eq!(v["type"], "switchboard.test");
    assert_eq!(v["subscription"], sub.as_str());
    assert_eq!(v["status"], "pending");

    // Stored as an event of the outbox, as the ingress stores one: the
    // delivery worker's claim takes it.
    let claimed = rig
        .store
        .claim_due_deliveries(WORKER, Utc::now(), 10, LEASE)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let c = &claimed[0];
    assert_eq!(c.delivery.id, id);
    assert_eq!(c.event.event_type, "switchboard.test");
    assert_eq!(c.event.provider, "talkover");
    assert_eq!(c.event.tenant, TENANT_A);
    let data: Value = serde_json::from_str(&c.event.payload).unwrap();
    assert_eq!(data["test"], true);
    assert!(data["message"].is_string());

    let shown = rig
        .get(&format!("/v1/deliveries/{id}"), TOKEN_A)
        .await
        .json();
    assert_eq!(shown["envelope"]["type"], "switchboard.test");
    assert_eq!(shown["envelope"]["provider"], "talkover");
    assert_eq!(shown["envelope"]["data"], data);

    // Each test event is a new event (never taken for a retry).
    let second = rig.post(&path, TOKEN_A).await;
    assert_eq!(second.status, 202, "{}", second.text);
    assert_ne!(second.json()["event_id"], v["event_id"]);
    let tests = rig.all_deliveries(&sub, "&type=switchboard.test").await;
    assert_eq!(tests.len(), 2);

    // A direct subscription: 422 naming /delivery, nothing stored.
    let direct = rig.subscription(false).await;
    let r = rig
        .post(&format!("/v1/subscriptions/{direct}/test"), TOKEN_A)
        .await;
    assert_problem(&r, 422, Some("/delivery"));
    let detail = r.json()["errors"][0]["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("test events travel the relay path")
            && detail.contains("delivers directly"),
        "{detail}"
    );
    assert!(rig.all_deliveries(&direct, "").await.is_empty());
    let unknown = switchboard_core::ids::subscription_id();
    let r = rig
        .post(&format!("/v1/subscriptions/{unknown}/test"), TOKEN_A)
        .await;
    assert_problem(&r, 404, None);
}

#[tokio::test]
async fn a_test_event_travels_the_relay_path() {
    each_backend!(test_events);
}

/// The re-drives are in the audit log, with who asked.
async fn audited(opts: &StoreOptions) {
    let rig = rig(opts).await;
    let sub = rig.subscription(true).await;
    let r = rig
        .post(&format!("/v1/subscriptions/{sub}/test"), TOKEN_A)
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let since = "2000-01-01T00:00:00Z";
    let r = rig
        .post(
            &format!("/v1/subscriptions/{sub}/replay?since={since}"),
            TOKEN_A,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let audit = rig.get("/v1/audit?limit=200", TOKEN_ADMIN).await.json();
    let ops: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subscription_id"] == sub.as_str())
        .map(|e| {
            (
                e["operation"].as_str().unwrap().to_owned(),
                e["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        ops.contains(&("test_event".into(), "202".into())),
        "{ops:?}"
    );
    assert!(ops.contains(&("replay".into(), "200".into())), "{ops:?}");
}

#[tokio::test]
async fn re_drives_are_audited() {
    each_backend!(audited);
}

/// Relay mode on, delivering to a receiver on loopback.
fn relay_on(config: &mut Config) {
    config.server.public_url = Some("https://switchboard.test".into());
    config.relay.enabled = true;
    config.relay.poll_interval_ms = 50;
    // The receiver listens on loopback over plain HTTP.
    config.policy.allow_http = true;
    config.policy.allow_private = true;
}

/// What the subscriber received: (`webhook-id`, body) per request.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A subscriber that records every request and answers 204.
async fn receiver() -> (Received, switchboard_sim::Running) {
    let got = Received::default();
    let sink = got.clone();
    let router = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let id = headers
                    .get("webhook-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sink.lock().unwrap().push((id, body));
                axum::http::StatusCode::NO_CONTENT
            }
        },
    );
    let running = switchboard_sim::serve(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (got, running)
}

/// With relay mode on, the test event reaches the subscriber through the
/// delivery worker as the envelope the API shows, and its delivery then
/// shows the attempt.
async fn end_to_end(opts: &StoreOptions) {
    let (got, receiver) = receiver().await;
    let env = start(
        opts,
        Opts {
            tweak: Some(relay_on),
            ..Opts::default()
        },
    )
    .await;
    let mut body = sub_body();
    body["url"] = json!(format!("{}/hooks", receiver.base_url));
    body["delivery"] = json!("relay");
    body["signing_secret"] = json!("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let created = env
        .call("POST", "/v1/subscriptions", TOKEN_A, Some(body))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let sub = created.json()["id"].as_str().unwrap().to_owned();

    let r = env
        .call(
            "POST",
            &format!("/v1/subscriptions/{sub}/test"),
            TOKEN_A,
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = env
            .call("GET", &format!("/v1/deliveries/{id}"), TOKEN_A, None)
            .await
            .json();
        if shown["delivery"]["status"] == "delivered" {
            break shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let attempts = shown["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{shown}");
    assert_eq!(attempts[0]["status_code"], 204);
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    let (webhook_id, body) = &received[0];
    assert_eq!(webhook_id, shown["envelope"]["id"].as_str().unwrap());
    assert_eq!(*body, shown["envelope"], "the envelope as delivered");
    assert_eq!(body["type"], "switchboard.test");
    assert_eq!(body["subscription"], sub.as_str());
}

#[tokio::test]
async fn a_test_event_reaches_the_subscriber_with_relay_on() {
    each_backend!(end_to_end);
}
