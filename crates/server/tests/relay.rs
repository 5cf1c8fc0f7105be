//! Relay mode end to end (issue 13): relay subscriptions on all four
//! simulated providers register natives that point at the ingress with a
//! credential of their own, the simulators deliver to it as their
//! providers document, and the events reach a recording receiver as signed
//! Standard Webhooks deliveries. Also what cannot be relayed, and moving a
//! subscription between direct and relay delivery.

mod rig;

use rig::{BIRD, Rig, RigOpts, SENDBLUE, TALKOVER, TELEGENT, TOKEN};
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_store::testing::backends;

/// The origin the natives are registered with; the simulators reach the
/// server through their `deliver_to` hop.
const PUBLIC_URL: &str = "https://switchboard.test";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn relay_on(config: &mut Config) {
    config.server.public_url = Some(PUBLIC_URL.into());
    config.relay.enabled = true;
    config.relay.poll_interval_ms = 50;
    // The receiver listens on loopback over plain HTTP.
    config.policy.allow_http = true;
    config.policy.allow_private = true;
}

async fn start(store: switchboard_store::StoreOptions) -> Rig {
    let mut opts = RigOpts::new(store);
    opts.tweak = Some(relay_on);
    Rig::start(opts).await
}

/// A relay subscription body for `provider`, delivering to `url`.
fn relay_body(provider: &str, url: &str) -> Value {
    let mut body = rig::body(provider, None, 0);
    body["url"] = json!(url);
    body["delivery"] = json!("relay");
    body["signing_secret"] = json!(SECRET);
    body
}

/// Every ingress URL the simulator of `provider` has registered.
fn registered_ingress_urls(rig: &Rig, provider: &str) -> Vec<String> {
    let state = match provider {
        TALKOVER => json!(
            rig.talkover
                .webhooks(switchboard_sim::talkover::DEFAULT_AGENT)
        ),
        BIRD => json!(
            rig.bird
                .subscriptions(switchboard_sim::bird::DEFAULT_WORKSPACE)
        ),
        TELEGENT => json!(
            rig.telegent
                .webhooks(switchboard_sim::telegent::DEFAULT_ACCOUNT)
        ),
        SENDBLUE => rig.sendblue.document(),
        other => panic!("no provider {other}"),
    };
    let mut found = Vec::new();
    collect_urls(&state, &mut found);
    found
}

fn collect_urls(v: &Value, found: &mut Vec<String>) {
    match v {
        Value::String(s) if s.starts_with(&format!("{PUBLIC_URL}/ingress/")) => {
            found.push(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|i| collect_urls(i, found)),
        Value::Object(map) => map.values().for_each(|i| collect_urls(i, found)),
        _ => {}
    }
}

fn token_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn relay_natives_point_at_the_ingress_with_a_route_each() {
    for (name, store) in backends() {
        let rig = start(store).await;
        for provider in [TALKOVER, BIRD, TELEGENT, SENDBLUE] {
            let sub = rig
                .create(relay_body(provider, "https://hooks.example.com/relayed"))
                .await;
            assert_eq!(sub["delivery"], "relay", "{name} {provider}: {sub}");
            let shown = sub.to_string();
            assert!(!shown.contains(SECRET), "{name}: the secret is write-only");
            let urls = registered_ingress_urls(&rig, provider);
            assert_eq!(urls.len(), 1, "{name} {provider}: {urls:?}");
            assert!(
                !registered_ingress_urls(&rig, provider)
                    .iter()
                    .any(|u| u.contains("hooks.example.com")),
                "{name} {provider}: the subscriber URL never reaches the provider"
            );
            let route = rig
                .engine()
                .store()
                .relay_route_by_token(token_of(&urls[0]))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{name} {provider}: no route for {}", urls[0]));
            assert_eq!(route.subscription_id, sub["id"].as_str().unwrap());
            assert_eq!(route.provider, provider);
            assert_eq!(
                route.events.len(),
                1,
                "{name} {provider}: {:?}",
                route.events
            );
            // The route's token is unguessable and the credential is not
            // the token.
            assert!(token_of(&urls[0]).len() >= 43, "{name}: {}", urls[0]);
            assert_ne!(route.credential.expose(), token_of(&urls[0]));

            let id = sub["id"].as_str().unwrap();
            let (status, _) = rig
                .call("DELETE", &format!("/v1/subscriptions/{id}"), TOKEN, None)
                .await;
            assert_eq!(status, 204, "{name} {provider}");
            assert!(registered_ingress_urls(&rig, provider).is_empty());
            let gone = rig
                .engine()
                .store()
                .relay_route_by_token(token_of(&urls[0]))
                .await
                .unwrap();
            assert!(gone.is_none(), "{name} {provider}: the route went with it");
        }
    }
}

#[tokio::test]
async fn what_cannot_be_relayed_is_a_422_naming_the_field() {
    for (name, store) in backends() {
        let rig = start(store).await;
        let relay = |provider: &str, change: fn(&mut Value)| {
            let mut body = relay_body(provider, "https://hooks.example.com/a");
            change(&mut body);
            body
        };
        let cases = [
            // Relay deliveries are always signed, with a whsec_ secret.
            (
                relay(TALKOVER, |b| {
                    b.as_object_mut().unwrap().remove("signing_secret");
                }),
                "/signing_secret",
            ),
            (
                relay(TALKOVER, |b| b["signing_secret"] = json!("not-a-whsec")),
                "/signing_secret",
            ),
            // Telegent deliveries do not name their event.
            (
                relay(TELEGENT, |b| {
                    b["events"] = json!(["call.ended", "call.ringing"]);
                }),
                "/events",
            ),
            // Sendblue sends contact_created without its secret.
            (
                relay(SENDBLUE, |b| b["events"] = json!(["contact.created"])),
                "/events/0",
            ),
            (
                relay(TALKOVER, |b| b["headers"] = json!({"webhook-id": "mine"})),
                "/headers",
            ),
            (
                relay(TALKOVER, |b| b["timeout_seconds"] = json!(121)),
                "/timeout_seconds",
            ),
            (
                relay(TALKOVER, |b| b["max_retries"] = json!(10)),
                "/max_retries",
            ),
            (
                {
                    let mut b = rig::body(TALKOVER, None, 1);
                    b["ordered"] = json!(true);
                    b
                },
                "/ordered",
            ),
        ];
        for (body, pointer) in cases {
            let (status, problem) = rig
                .call("POST", "/v1/subscriptions", TOKEN, Some(body.clone()))
                .await;
            assert_eq!(status, 422, "{name}: {body} → {problem}");
            let pointers: Vec<&str> = problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["pointer"].as_str().unwrap())
                .collect();
            assert!(
                pointers.contains(&pointer),
                "{name}: {pointers:?} for {body}"
            );
        }
        for provider in [TALKOVER, TELEGENT, SENDBLUE, BIRD] {
            assert!(registered_ingress_urls(&rig, provider).is_empty(), "{name}");
        }
    }
}

#[tokio::test]
async fn relay_mode_off_refuses_relay_subscriptions() {
    for (name, store) in backends() {
        let rig = Rig::start(RigOpts::new(store)).await;
        let body = relay_body(TALKOVER, "https://hooks.example.com/a");
        let (status, problem) = rig
            .call("POST", "/v1/subscriptions", TOKEN, Some(body))
            .await;
        assert_eq!(status, 422, "{name}: {problem}");
        assert_eq!(problem["errors"][0]["pointer"], "/delivery", "{name}");
    }
}

#[tokio::test]
async fn a_patch_moves_a_subscription_between_direct_and_relay() {
    for (name, store) in backends() {
        let rig = start(store).await;
        let direct = rig.create(rig::body(TALKOVER, None, 7)).await;
        let id = direct["id"].as_str().unwrap().to_owned();
        assert_eq!(direct["delivery"], "direct");
        assert!(registered_ingress_urls(&rig, TALKOVER).is_empty());

        let patch = json!({"delivery": "relay", "signing_secret": SECRET});
        let (status, relayed) = rig
            .call(
                "PATCH",
                &format!("/v1/subscriptions/{id}"),
                TOKEN,
                Some(patch),
            )
            .await;
        assert_eq!(status, 200, "{name}: {relayed}");
        assert_eq!(relayed["delivery"], "relay");
        let urls = registered_ingress_urls(&rig, TALKOVER);
        assert_eq!(
            urls.len(),
            1,
            "{name}: the native now points at the ingress"
        );
        assert_eq!(
            rig.talkover
                .webhooks(switchboard_sim::talkover::DEFAULT_AGENT)
                .len(),
            1,
            "{name}: moved, not added"
        );

        // A change that keeps relay mode keeps the route.
        let patch = json!({"name": "renamed"});
        let (status, _) = rig
            .call(
                "PATCH",
                &format!("/v1/subscriptions/{id}"),
                TOKEN,
                Some(patch),
            )
            .await;
        assert_eq!(status, 200, "{name}");
        assert_eq!(
            registered_ingress_urls(&rig, TALKOVER),
            urls,
            "{name}: same route"
        );

        let patch = json!({"delivery": "direct"});
        let (status, back) = rig
            .call(
                "PATCH",
                &format!("/v1/subscriptions/{id}"),
                TOKEN,
                Some(patch),
            )
            .await;
        assert_eq!(status, 200, "{name}: {back}");
        assert!(registered_ingress_urls(&rig, TALKOVER).is_empty(), "{name}");
        let route = rig
            .engine()
            .store()
            .relay_route_by_token(token_of(&urls[0]))
            .await
            .unwrap();
        assert!(
            route.is_none(),
            "{name}: leaving relay mode drops the route"
        );
    }
}

/// The Standard Webhooks verifier of the relay crate's tests: the
/// independent Python library `standardwebhooks`.
#[path = "../../relay/tests/support/mod.rs"]
mod standard_webhooks;

/// One delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// A subscriber: records every delivery and answers 204.
struct Receiver {
    origin: String,
    got: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    _running: switchboard_sim::Running,
}

impl Receiver {
    async fn start() -> Self {
        let got: std::sync::Arc<std::sync::Mutex<Vec<Received>>> = Default::default();
        let sink = got.clone();
        let router = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        headers,
                        body: body.to_vec(),
                    });
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        );
        let running = switchboard_sim::serve(router, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            origin: running.base_url.clone(),
            got,
            _running: running,
        }
    }

    fn at(&self, path: &str) -> Vec<Received> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `path` has received `n` deliveries.
    async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let got = self.at(path);
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{path}: {} of {n} deliveries arrived",
                got.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The simulator of `provider` sends its documented delivery for the
/// native registered with `url` (through its `deliver_to` hop to the
/// server); returns the simulator's report.
async fn provider_delivers(rig: &Rig, provider: &str, order: Value) -> Value {
    let sim = rig.sim_urls[provider].trim_end_matches("/api/v1");
    let mut order = order;
    order["deliver_to"] = json!(rig.base);
    let r = reqwest::Client::new()
        .post(format!("{sim}/_sim/deliveries"))
        .json(&order)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let report: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{provider}: {report}");
    report
}

#[tokio::test]
async fn provider_deliveries_reach_the_subscriber_signed_with_standard_webhooks() {
    for (name, store) in backends() {
        let rig = start(store).await;
        let receiver = Receiver::start().await;
        let mut cases = Vec::new();
        for provider in [TALKOVER, BIRD, TELEGENT, SENDBLUE] {
            let path = format!("/hooks/{provider}");
            let mut body = relay_body(provider, &format!("{}{path}", receiver.origin));
            body["headers"] = json!({"X-Team": "billing"});
            body["auth"] = json!({"type": "bearer", "token": "subscriber-token-1"});
            let sub = rig.create(body.clone()).await;
            let url = registered_ingress_urls(&rig, provider).remove(0);
            // A provider retry of the same delivery (same bytes and ids).
            let report = provider_delivers(&rig, provider, json!({"url": url, "repeat": 2})).await;
            assert!(!report.to_string().contains("whsec_"), "{report}");

            let got = receiver.wait_for(&path, 1).await;
            let d = &got[0];
            let envelope: Value = serde_json::from_slice(&d.body).unwrap();
            assert_eq!(envelope["subscription"], sub["id"], "{name} {provider}");
            assert_eq!(envelope["provider"], provider, "{name}");
            assert_eq!(
                envelope["type"], body["events"][0],
                "{name} {provider}: {envelope}"
            );
            assert!(envelope["id"].as_str().unwrap().starts_with("evt_"));
            assert!(
                envelope["data"].is_object(),
                "{name} {provider}: the payload, unchanged"
            );
            assert_eq!(d.headers["webhook-id"], envelope["id"].as_str().unwrap());
            assert_eq!(d.headers["x-team"], "billing");
            assert_eq!(d.headers["authorization"], "Bearer subscriber-token-1");
            let secret = switchboard_relay::SigningSecret::parse(SECRET).unwrap();
            let headers = |n: &str| d.headers.get(n).and_then(|v| v.to_str().ok());
            switchboard_relay::verify(
                headers("webhook-id").unwrap(),
                headers("webhook-timestamp").unwrap(),
                headers("webhook-signature").unwrap(),
                &d.body,
                &secret,
                chrono::Utc::now().timestamp(),
                300,
            )
            .unwrap_or_else(|e| panic!("{name} {provider}: {e:?}"));
            cases.push(standard_webhooks::Case {
                secret: SECRET.into(),
                headers: standard_webhooks::header_map(&d.headers),
                body: d.body.clone(),
                json: true,
            });

            // The provider's retry was recognised: one delivery only.
            let id = sub["id"].as_str().unwrap();
            let (status, page) = rig
                .call(
                    "GET",
                    &format!("/v1/subscriptions/{id}/deliveries"),
                    TOKEN,
                    None,
                )
                .await;
            assert_eq!(status, 200, "{name}: {page}");
            assert_eq!(
                page["data"].as_array().unwrap().len(),
                1,
                "{name} {provider}: {page}"
            );
        }
        if let Some(verdicts) = standard_webhooks::python_verify(&cases) {
            for (verdict, case) in verdicts.iter().zip(&cases) {
                assert!(
                    verdict.is_ok(),
                    "{name}: {verdict:?} for {:?}",
                    case.headers
                );
            }
        }
    }
}

#[tokio::test]
async fn forged_and_unknown_deliveries_are_refused_and_never_relayed() {
    for (name, store) in backends() {
        let rig = start(store).await;
        let receiver = Receiver::start().await;
        for provider in [TALKOVER, BIRD, TELEGENT, SENDBLUE] {
            let path = format!("/hooks/{provider}");
            rig.create(relay_body(provider, &format!("{}{path}", receiver.origin)))
                .await;
            let url = registered_ingress_urls(&rig, provider).remove(0);
            let report =
                provider_delivers(&rig, provider, json!({"url": url, "corrupt": true})).await;
            assert!(
                report.to_string().contains("401"),
                "{name} {provider}: {report}"
            );
            let unknown = format!("{PUBLIC_URL}/ingress/{}", "A".repeat(43));
            let r = reqwest::Client::new()
                .post(format!("{}/ingress/{}", rig.base, "A".repeat(43)))
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 404, "{name}: {unknown}");
        }
        // A genuine one afterwards arrives, and is the only one.
        let url = registered_ingress_urls(&rig, TALKOVER).remove(0);
        provider_delivers(&rig, TALKOVER, json!({"url": url})).await;
        receiver.wait_for("/hooks/talkover", 1).await;
        for provider in [BIRD, TELEGENT, SENDBLUE] {
            assert!(
                receiver.at(&format!("/hooks/{provider}")).is_empty(),
                "{name}"
            );
        }
        assert_eq!(receiver.at("/hooks/talkover").len(), 1, "{name}");
    }
}

#[tokio::test]
async fn providers_show_the_relay_matrix_and_rotation_signs_with_both_secrets() {
    for (name, store) in backends() {
        let rig = start(store).await;
        let (status, providers) = rig.call("GET", "/v1/providers", TOKEN, None).await;
        assert_eq!(status, 200, "{name}");
        for p in providers["data"].as_array().unwrap() {
            let relay = &p["relay"];
            assert_eq!(relay["signing"], "standard-webhooks", "{name}: {p}");
            assert_eq!(relay["formats"], json!(["json", "xml"]), "{name}");
            let one_event = p["kind"] == "telegent" || p["kind"] == "account-v2";
            assert_eq!(relay["one_event_per_native"], one_event, "{name}: {p}");
        }

        let receiver = Receiver::start().await;
        let sub = rig
            .create(relay_body(
                TALKOVER,
                &format!("{}/hooks/r", receiver.origin),
            ))
            .await;
        let id = sub["id"].as_str().unwrap();
        rig.clear_requests();
        let (status, rotated) = rig
            .call(
                "POST",
                &format!("/v1/subscriptions/{id}/rotate-secret"),
                TOKEN,
                None,
            )
            .await;
        assert_eq!(status, 200, "{name}: {rotated}");
        let new_secret = rotated["signing_secret"].as_str().unwrap().to_owned();
        assert!(new_secret.starts_with("whsec_"), "{name}");
        assert!(
            rig.requests(TALKOVER).is_empty(),
            "{name}: a relay rotation changes nothing upstream"
        );
        let (status, _) = rig
            .call("POST", &format!("/v1/subscriptions/{id}/test"), TOKEN, None)
            .await;
        assert_eq!(status, 202, "{name}");
        let d = receiver.wait_for("/hooks/r", 1).await.remove(0);
        let envelope: Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(envelope["type"], "switchboard.test", "{name}");
        let header = |n: &str| d.headers[n].to_str().unwrap().to_owned();
        let signatures = header("webhook-signature");
        assert_eq!(signatures.split(' ').count(), 2, "{name}: {signatures}");
        for secret in [SECRET, new_secret.as_str()] {
            switchboard_relay::verify(
                &header("webhook-id"),
                &header("webhook-timestamp"),
                &signatures,
                &d.body,
                &switchboard_relay::SigningSecret::parse(secret).unwrap(),
                chrono::Utc::now().timestamp(),
                300,
            )
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}
