//! `account` values that would change an upstream path (`..` turns
//! Talkover's `/agents/../webhooks` into `/webhooks` and drops Bird's
//! workspace segment) are refused through the HTTP API as a 422 at
//! `/account` naming the provider, with nothing sent to any provider: a
//! real server on port 0 and one simulator per kind over real HTTP.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard::App;
use switchboard::config::{Config, KeyConfig, ProviderConfig, TokenConfig};
use switchboard_core::Secret;
use switchboard_sim::bird::{BirdConfig, BirdSim, DEFAULT_ACCESS_KEY, DEFAULT_WORKSPACE};
use switchboard_sim::faults::LoggedRequest;
use switchboard_sim::sendblue::{DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SendblueConfig, SendblueSim};
use switchboard_sim::talkover::{DEFAULT_AGENT, DEFAULT_TOKEN, TalkoverConfig, TalkoverSim};
use switchboard_sim::telegent::{
    DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_SECRET, TelegentConfig, TelegentSim,
};

const TOKEN: &str = "token-accounts-0001";

/// The four simulators, each serving one provider of the server.
struct Sims {
    talkover: TalkoverSim,
    bird: BirdSim,
    telegent: TelegentSim,
    sendblue: SendblueSim,
    _running: Vec<switchboard_sim::Running>,
}

impl Sims {
    /// Every request any simulator received, as `provider: METHOD path`.
    fn requests(&self) -> Vec<String> {
        let show = |provider: &str, log: Vec<LoggedRequest>| {
            log.into_iter()
                .map(|r| format!("{provider}: {} {}", r.method, r.path))
                .collect::<Vec<_>>()
        };
        [
            show("talkover", self.talkover.requests()),
            show("bird", self.bird.requests()),
            show("telegent", self.telegent.requests()),
            show("sendblue", self.sendblue.requests()),
        ]
        .concat()
    }
}

async fn serve(router: axum::Router) -> switchboard_sim::Running {
    switchboard_sim::serve(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn provider(kind: &str, settings: Value) -> ProviderConfig {
    ProviderConfig {
        kind: kind.into(),
        rate_limit_per_minute: None,
        max_concurrent_requests: None,
        settings: serde_json::from_value(settings).unwrap(),
    }
}

/// A server with providers `talkover`, `bird`, `telegent` and `sendblue`,
/// each pointed at its own simulator.
async fn start() -> (switchboard::Running, Sims) {
    let talkover = TalkoverSim::new(TalkoverConfig::default());
    let bird = BirdSim::new(BirdConfig::default());
    let telegent = TelegentSim::new(TelegentConfig::default());
    let sendblue = SendblueSim::new(SendblueConfig::default());
    let running = vec![
        serve(talkover.router()).await,
        serve(bird.router()).await,
        serve(telegent.router()).await,
        serve(sendblue.router()).await,
    ];
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    let store = switchboard_store::testing::sqlite();
    config.database.url = store.url.clone();
    config.events.file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/events.toml").into();
    config.limits.upstream_attempts = 1;
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    config.secrets.keys = vec![KeyConfig {
        id: "k1".into(),
        key: Secret::new(key),
    }];
    config.auth.tokens = vec![TokenConfig {
        name: "a".into(),
        tenant: "tenant-a".into(),
        token_sha256: Some(hex::encode(switchboard_api::auth::hash_token(TOKEN))),
        token: None,
        scopes: vec!["subscriptions:read".into(), "subscriptions:write".into()],
    }];
    config.providers = BTreeMap::from([
        (
            "talkover".to_owned(),
            provider(
                "talkover",
                json!({"base_url": format!("{}/api/v1", running[0].base_url), "token": DEFAULT_TOKEN}),
            ),
        ),
        (
            "bird".to_owned(),
            provider(
                "accesskey-workspace",
                json!({"base_url": running[1].base_url, "access_key": DEFAULT_ACCESS_KEY}),
            ),
        ),
        (
            "telegent".to_owned(),
            provider(
                "telegent",
                json!({"base_url": running[2].base_url, "account_key": DEFAULT_ACCOUNT_KEY, "account_secret": DEFAULT_ACCOUNT_SECRET}),
            ),
        ),
        (
            "sendblue".to_owned(),
            provider(
                "account-v2",
                json!({"base_url": running[3].base_url, "api_key_id": DEFAULT_KEY_ID, "api_secret_key": DEFAULT_SECRET_KEY}),
            ),
        ),
    ]);
    let server = App::build(config).await.unwrap().spawn().await.unwrap();
    let sims = Sims {
        talkover,
        bird,
        telegent,
        sendblue,
        _running: running,
    };
    (server, sims)
}

/// `(status, body)` of a POST with the test token.
async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A valid subscription for `provider`, with `account`.
fn body(provider: &str, account: Option<&str>) -> Value {
    // Events each provider offers (config/events.toml).
    let event = match provider {
        "talkover" | "telegent" => "call.ended",
        _ => "message.received",
    };
    let mut b = json!({
        "provider": provider,
        "url": "https://billing.example.com/hooks",
        "events": [event],
    });
    if let Some(a) = account {
        b["account"] = json!(a);
    }
    b
}

/// Asserts a 422 whose only field error is at `/account`, naming `provider`.
fn assert_account_refused(
    provider: &str,
    account: &str,
    path: &str,
    (status, problem): (u16, Value),
) {
    let context = format!("{provider} {account:?} {path}: {problem}");
    assert_eq!(status, 422, "{context}");
    let errors = problem["errors"].as_array().expect("field errors");
    assert_eq!(errors.len(), 1, "{context}");
    assert_eq!(errors[0]["pointer"], "/account", "{context}");
    assert_eq!(errors[0]["provider"], provider, "{context}");
}

#[tokio::test]
async fn accounts_that_would_change_a_path_are_refused_before_any_upstream_call() {
    let (server, sims) = start().await;
    let base = server.base_url.clone();
    let tricks = [
        "..",
        ".",
        "a/b",
        "%2e%2e",
        "../../webhooks",
        "9fbef0b7-8d4e-4a08-9207-66c22155721d/..",
    ];
    for provider in ["talkover", "bird", "telegent", "sendblue"] {
        for account in tricks {
            for path in ["/v1/subscriptions", "/v1/subscriptions/preview"] {
                let answer = post(&base, path, &body(provider, Some(account))).await;
                assert_account_refused(provider, account, path, answer);
            }
        }
    }
    assert_eq!(sims.requests(), Vec::<String>::new());

    // The same server does reach each provider with a valid account, so the
    // silence above is the refusal, not a wiring fault.
    for (provider, account) in [
        ("talkover", Some(DEFAULT_AGENT)),
        ("bird", Some(DEFAULT_WORKSPACE)),
        ("telegent", Some(DEFAULT_ACCOUNT)),
        ("sendblue", None),
    ] {
        let (status, created) = post(&base, "/v1/subscriptions", &body(provider, account)).await;
        assert_eq!(status, 201, "{provider}: {created}");
        assert!(
            sims.requests()
                .iter()
                .any(|r| r.starts_with(&format!("{provider}: "))),
            "{provider} got no request"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_account_shape_is_served_with_the_capabilities() {
    let (server, _sims) = start().await;
    let providers: Value = reqwest::Client::new()
        .get(format!("{}/v1/providers", server.base_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let account = |key: &str| {
        providers["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["key"] == key)
            .map(|p| p["capabilities"]["account"].clone())
            .unwrap_or_else(|| panic!("{key} not listed: {providers}"))
    };
    assert_eq!(account("talkover")["shape"], json!({"type": "uuid"}));
    assert_eq!(account("talkover")["max_len"], 36);
    assert_eq!(account("bird")["shape"], json!({"type": "uuid"}));
    assert_eq!(
        account("telegent")["shape"],
        json!({"type": "prefixed", "prefix": "AID-"})
    );
    assert_eq!(account("sendblue"), json!({"rule": "forbidden"}));
    server.shutdown().await.unwrap();
}
