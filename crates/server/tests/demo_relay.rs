//! The demo's relay path (issue 13 §9) on the demo's own configuration,
//! `config/default.toml`: a relay subscription on the Talkover simulator,
//! `POST /demo/deliveries` making the simulator deliver to the ingress
//! through its `deliver_to` hop, and the relayed event in the deliveries
//! API. The demo's subscriber URL is not reachable, so its attempts fail:
//! what is checked is the event, its envelope and that a failed attempt is
//! recorded. Also who may ask (tenant scoping, scopes), what cannot be
//! delivered this way, and that the route exists only in demo mode and
//! stays out of the OpenAPI document.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard::config::{Config, KeyConfig, TokenConfig};
use switchboard::{App, Running};
use switchboard_core::Secret;
use switchboard_engine::Engine;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// The demo token of `config/default.toml` (tenant `demo`).
const TOKEN: &str = "sb_demo_token";
/// A token of another tenant.
const OTHER: &str = "other-tenant-token-0001";
/// A read-only token of the demo tenant.
const READER: &str = "demo-reader-token-0001";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const AGENT: &str = "9fbef0b7-8d4e-4a08-9207-66c22155721d";

fn token(name: &str, tenant: &str, secret: &str, scopes: &[&str]) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        tenant: tenant.into(),
        token_sha256: Some(hex::encode(switchboard_api::auth::hash_token(secret))),
        token: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

/// `config/default.toml` with its files in `dir`, on a free port, with
/// two more tokens.
fn demo_config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::load(Some(std::path::Path::new(&format!(
        "{ROOT}/config/default.toml"
    ))))
    .unwrap();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let db = dir.path().join("switchboard.db");
    config.database.url = format!("sqlite://{}?mode=rwc", db.display());
    config.events.file = format!("{ROOT}/config/events.toml").into();
    config.secrets.demo_key_file = dir.path().join("switchboard.demo-key");
    config.auth.tokens.push(token(
        "other",
        "other",
        OTHER,
        &["subscriptions:read", "subscriptions:write"],
    ));
    config
        .auth
        .tokens
        .push(token("reader", "demo", READER, &["subscriptions:read"]));
    config
}

/// The server's engine, the server, and the Talkover simulator's base URL.
async fn start(config: Config) -> (Engine, Running, Option<String>) {
    let app = App::build(config).await.unwrap();
    let engine = app.engine();
    let talkover = app
        .simulated_providers()
        .into_iter()
        .find_map(|(key, url)| (key == "talkover").then_some(url));
    (engine, app.spawn().await.unwrap(), talkover)
}

/// `(status, content type, body)`.
async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().request(method.parse().unwrap(), format!("{base}{path}"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = resp.text().await.unwrap();
    (
        status,
        content_type,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn subscription(delivery: &str) -> Value {
    let mut body = json!({
        "provider": "talkover",
        "account": AGENT,
        "url": "https://billing.example.com/hooks",
        "events": ["call.ended", "native:event_action"],
        "signing_secret": SECRET
    });
    if delivery == "relay" {
        body["delivery"] = json!("relay");
        // Short, so an attempt that waits on DNS ends soon.
        body["timeout_seconds"] = json!(2);
    }
    body
}

async fn create(base: &str, delivery: &str) -> Value {
    let (status, _, sub) = call(
        base,
        "POST",
        "/v1/subscriptions",
        Some(TOKEN),
        Some(subscription(delivery)),
    )
    .await;
    assert_eq!(status, 201, "{sub}");
    sub
}

async fn emit(base: &str, token: &str, order: Value) -> (u16, String, Value) {
    call(base, "POST", "/demo/deliveries", Some(token), Some(order)).await
}

/// Polls the delivery until `done` holds for it, or fails at the deadline.
async fn delivery_until(base: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, detail) = call(
            base,
            "GET",
            &format!("/v1/deliveries/{id}"),
            Some(TOKEN),
            None,
        )
        .await;
        assert_eq!(status, 200, "{detail}");
        if done(&detail) {
            return detail;
        }
        assert!(Instant::now() < deadline, "never came to pass: {detail}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_demo_relays_an_event_a_simulator_was_asked_to_deliver() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, _) = start(demo_config(&dir)).await;
    let base = server.base_url.clone();
    let sub = create(&base, "relay").await;
    let id = sub["id"].as_str().unwrap();
    assert_eq!(sub["delivery"], "relay", "{sub}");
    assert_eq!(
        sub["native"][0]["events"],
        json!(["event_phone_call_ended", "event_action"])
    );

    let (status, _, report) = emit(
        &base,
        TOKEN,
        json!({"subscription": id, "event": "event_phone_call_ended"}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["event"], "event_phone_call_ended");
    assert_eq!(report["attempts"][0]["status"], 200, "{report}");
    assert_eq!(
        report["url"], "https://switchboard.example.com/ingress/***",
        "the report names the native's ingress URL with its token redacted"
    );
    let record = engine.get("demo", id).await.unwrap();
    let urls = engine.ingress_urls(&record.spec, &record.natives).unwrap();
    let (_, url) = &urls[0];
    let route_token = url.rsplit('/').next().unwrap();
    assert!(!report.to_string().contains(route_token), "{report}");

    let (status, _, page) = call(
        &base,
        "GET",
        &format!("/v1/subscriptions/{id}/deliveries"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{page}");
    assert_eq!(data[0]["type"], "call.ended");
    assert_eq!(data[0]["subscription"], id);
    let delivery = data[0]["id"].as_str().unwrap();

    // billing.example.com is not reachable here: the attempt fails and is
    // recorded with its error, and the delivery waits for its retry.
    let detail = delivery_until(&base, delivery, |d| {
        d["attempts"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let envelope = &detail["envelope"];
    assert_eq!(envelope["type"], "call.ended", "{detail}");
    assert_eq!(envelope["provider"], "talkover");
    assert_eq!(envelope["subscription"], id);
    assert_eq!(envelope["id"], data[0]["event_id"]);
    assert!(envelope["data"].is_object(), "{detail}");
    assert!(detail["attempts"][0]["error"].is_string(), "{detail}");
    assert_eq!(detail["attempts"][0]["status_code"], Value::Null);

    // A native event without a normalized name is relayed as `native:…`,
    // once however often the provider retries it; a corrupted credential
    // is refused at the ingress and relays nothing.
    let (status, _, report) = emit(
        &base,
        TOKEN,
        json!({"subscription": id, "event": "event_action", "repeat": 2}),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["event"], "event_action");
    assert_eq!(report["attempts"][0]["status"], 200, "{report}");
    assert_eq!(report["attempts"][1]["status"], 200, "{report}");
    let (status, _, report) =
        emit(&base, TOKEN, json!({"subscription": id, "corrupt": true})).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["attempts"][0]["status"], 401, "{report}");
    let (_, _, page) = call(
        &base,
        "GET",
        &format!("/v1/subscriptions/{id}/deliveries"),
        Some(TOKEN),
        None,
    )
    .await;
    let mut types: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["type"].as_str().unwrap())
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["call.ended", "native:event_action"], "{page}");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn only_the_owner_may_ask_and_only_for_a_relay_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, talkover) = start(demo_config(&dir)).await;
    let base = server.base_url.clone();
    let relay = create(&base, "relay").await;
    let relay_id = relay["id"].as_str().unwrap();
    let direct = create(&base, "direct").await;
    let direct_id = direct["id"].as_str().unwrap();

    let cases = [
        (OTHER, json!({"subscription": relay_id}), 404, None),
        (
            TOKEN,
            json!({"subscription": "sub_01M84PMRQE7NV54GVD489A56K1"}),
            404,
            None,
        ),
        (READER, json!({"subscription": relay_id}), 403, None),
        (
            TOKEN,
            json!({"subscription": direct_id}),
            422,
            Some("/subscription"),
        ),
        (
            TOKEN,
            json!({"subscription": relay_id, "event": "event_recording"}),
            422,
            Some("/event"),
        ),
        (
            TOKEN,
            json!({"subscription": relay_id, "repeat": 0}),
            422,
            Some("/repeat"),
        ),
        (
            TOKEN,
            json!({"subscription": relay_id, "url": "https://elsewhere.example.com/"}),
            422,
            Some("/url"),
        ),
    ];
    for (token, order, want, pointer) in cases {
        let (status, content_type, problem) = emit(&base, token, order.clone()).await;
        assert_eq!(status, want, "{order}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{order}");
        if let Some(pointer) = pointer {
            assert_eq!(problem["errors"][0]["pointer"], pointer, "{problem}");
        }
    }
    let (status, _, _) = call(&base, "POST", "/demo/deliveries", None, Some(json!({}))).await;
    assert_eq!(status, 401);
    // Nothing was relayed by any of them.
    let (_, _, page) = call(
        &base,
        "GET",
        &format!("/v1/subscriptions/{relay_id}/deliveries"),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(page["data"], json!([]), "{page}");

    // The simulator forgets the native (as at a restart): a conflict.
    let native = relay["native"][0]["id"].as_str().unwrap();
    let removed = reqwest::Client::new()
        .delete(format!(
            "{}/agents/{AGENT}/webhooks/{native}",
            talkover.unwrap()
        ))
        .bearer_auth("talq_demo_token")
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{removed:?}");
    let (status, content_type, problem) =
        emit(&base, TOKEN, json!({"subscription": relay_id})).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert!(
        problem["detail"].as_str().unwrap().contains("reconcile"),
        "{problem}"
    );
    let record = engine.get("demo", relay_id).await.unwrap();
    let (_, url) = &engine.ingress_urls(&record.spec, &record.natives).unwrap()[0];
    let route_token = url.rsplit('/').next().unwrap();
    assert!(
        !problem.to_string().contains(route_token),
        "the route token stays hidden: {problem}"
    );

    let (status, _, openapi) = call(&base, "GET", "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = openapi["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/subscriptions/{id}/deliveries"));
    assert!(
        !paths.keys().any(|p| p.starts_with("/demo")),
        "demo routes are not part of v1"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn outside_demo_mode_the_route_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = demo_config(&dir);
    config.simulators.enabled = false;
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    config.secrets.keys = vec![KeyConfig {
        id: "k1".into(),
        key: Secret::new(key),
    }];
    // Plain tokens are for demo mode only.
    config.auth.tokens = vec![token(
        "demo",
        "demo",
        TOKEN,
        &["subscriptions:read", "subscriptions:write"],
    )];
    let (_, server, _) = start(config).await;
    let (status, content_type, _) = emit(
        &server.base_url,
        TOKEN,
        json!({"subscription": "sub_01M84PMRQE7NV54GVD489A56K1"}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(content_type, "application/problem+json");
    server.shutdown().await.unwrap();
}
