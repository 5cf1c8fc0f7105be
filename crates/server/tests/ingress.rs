//! The relay ingress over real HTTP (issue 13, items 2 and 6): deliveries
//! signed as each provider documents them, sent by its simulator
//! (`POST /_sim/deliveries`, through `deliver_to` as through a TLS proxy)
//! to a running server's `/ingress/{token}`, and what the server stores,
//! answers and counts.
//!
//! Routes are written straight to the store, and each simulator gets the
//! native a relay subscription would register there (Talkover: a bearer
//! `Authorization` custom header; Bird: a `signingKey`; Sendblue: an
//! entry `secret`), so the ingress is tested against the simulators'
//! documented deliveries, not against the adapters' own idea of them.
//!
//! Every server of the process records into one metrics recorder: the
//! tests take turns ([`SERIAL`]) and compare counters before and after.
//! Each runs on SQLite and, when configured, Postgres.

mod rig;
// For `each_backend!`.
mod support;

use rig::*;
use serde_json::{Value, json};
use switchboard::config::Config;
use switchboard_core::Secret;
use switchboard_sim::bird::{DEFAULT_ACCESS_KEY, DEFAULT_WORKSPACE};
use switchboard_sim::talkover::{DEFAULT_AGENT, DEFAULT_TOKEN};
use switchboard_store::{Delivery, DeliveryFilter, NewRelayRoute, RelayEvent, StoreOptions};

/// The tests of this file share the process's recorder: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `server.public_url`: a DNS name, as Bird's URL rules require.
const PUBLIC_URL: &str = "https://relay.example.com";
/// `relay.max_payload_bytes`: above the API's 64 KiB body limit, which
/// the ingress does not answer to.
const MAX_PAYLOAD: usize = 96 * 1024;

/// One relay native per provider: its route token and credential. The
/// tokens are in the base64url alphabet issued tokens use.
struct Native {
    provider: &'static str,
    token: &'static str,
    credential: &'static str,
    /// The native event it is registered for, as the catalog spells it.
    event: &'static str,
    /// What its deliveries are stored as.
    normalized: &'static str,
}

const TALKOVER_NATIVE: Native = Native {
    provider: TALKOVER,
    token: "tk-route-Q2hhbmdlTWVQbGVhc2UxMjM0NTY3ODkw",
    credential: "tk-credential-0001",
    event: "event_phone_call_ended",
    normalized: "call.ended",
};
const BIRD_NATIVE: Native = Native {
    provider: BIRD,
    token: "bd-route-U2lnbmVkQnlCaXJkMTIzNDU2Nzg5MDEy",
    credential: "bd-signing-key-0001",
    event: "channels:sms.inbound",
    normalized: "message.received",
};
const SENDBLUE_NATIVE: Native = Native {
    provider: SENDBLUE,
    token: "sb-route-U2VuZGJsdWVTZWNyZXQxMjM0NTY3ODkw",
    credential: "sb-secret-0001",
    event: "receive",
    normalized: "message.received",
};
const NATIVES: [Native; 3] = [TALKOVER_NATIVE, BIRD_NATIVE, SENDBLUE_NATIVE];

impl Native {
    fn subscription(&self) -> String {
        format!("sub_{}", self.provider)
    }

    /// The URL the native is registered with at the provider.
    fn url(&self) -> String {
        format!("{PUBLIC_URL}/ingress/{}", self.token)
    }
}

fn relay_on(c: &mut Config) {
    c.server.public_url = Some(PUBLIC_URL.into());
    c.relay.enabled = true;
    c.relay.max_payload_bytes = MAX_PAYLOAD;
}

/// A server in relay mode with every native of [`NATIVES`] routed and
/// registered at its simulator.
async fn start(store: &StoreOptions) -> Rig {
    let rig = Rig::start(RigOpts {
        tweak: Some(relay_on),
        ..RigOpts::new(store.clone())
    })
    .await;
    for native in &NATIVES {
        route(&rig, native).await;
        register(&rig, native).await;
    }
    rig
}

/// Writes the native's route, as relay registration does.
async fn route(rig: &Rig, n: &Native) {
    let credential = Secret::new(n.credential);
    let events = vec![n.event.to_owned()];
    let subscription = n.subscription();
    let route = NewRelayRoute {
        token: n.token,
        tenant: "tenant-r",
        subscription_id: &subscription,
        native_key: n.event,
        provider: n.provider,
        credential: &credential,
        events: &events,
        ordered: false,
    };
    rig.engine()
        .store()
        .put_relay_routes(&[route])
        .await
        .unwrap();
}

/// The simulator's root, where its control routes are.
fn sim_root(rig: &Rig, provider: &str) -> String {
    let base = &rig.sim_urls[provider];
    base.strip_suffix("/api/v1").unwrap_or(base).to_owned()
}

/// Registers the native at its simulator with the credential a relay
/// native carries.
async fn register(rig: &Rig, n: &Native) {
    let client = reqwest::Client::new();
    let sent = match n.provider {
        TALKOVER => client
            .post(format!(
                "{}/agents/{DEFAULT_AGENT}/webhooks",
                rig.sim_urls[TALKOVER]
            ))
            .bearer_auth(DEFAULT_TOKEN)
            .json(&json!({
                "name": "relay",
                "webhook_url": n.url(),
                "events": [n.event],
                "authorization_scheme": "bearer",
                "custom_headers": [{"key": "Authorization", "value": format!("Bearer {}", n.credential)}],
            })),
        BIRD => client
            .post(format!(
                "{}/workspaces/{DEFAULT_WORKSPACE}/webhook-subscriptions",
                rig.sim_urls[BIRD]
            ))
            .header("authorization", format!("AccessKey {DEFAULT_ACCESS_KEY}"))
            .json(&json!({
                "service": "channels", "event": "sms.inbound",
                "url": n.url(), "signingKey": n.credential,
            })),
        SENDBLUE => {
            rig.sendblue
                .seed_foreign(n.event, &n.url(), Some(n.credential));
            return;
        }
        other => panic!("no native for {other}"),
    };
    let r = sent.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

/// Has the native's simulator deliver `order` (merged over the native's
/// URL and the server as `deliver_to`); returns its report.
async fn deliver(rig: &Rig, n: &Native, order: Value) -> Value {
    let mut body = json!({"url": n.url(), "deliver_to": rig.base});
    body.as_object_mut()
        .unwrap()
        .extend(order.as_object().unwrap().clone());
    let r = reqwest::Client::new()
        .post(format!("{}/_sim/deliveries", sim_root(rig, n.provider)))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", n.provider);
    r.json().await.unwrap()
}

/// The statuses the ingress answered a report's sends with.
fn statuses(report: &Value) -> Vec<u64> {
    report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_u64().unwrap_or_default())
        .collect()
}

/// The native's subscription's deliveries, each with its event.
async fn stored(rig: &Rig, n: &Native) -> Vec<(Delivery, RelayEvent)> {
    let store = rig.engine().store();
    let (deliveries, _) = store
        .list_deliveries(
            "tenant-r",
            &n.subscription(),
            &DeliveryFilter::default(),
            None,
            100,
        )
        .await
        .unwrap();
    let mut all = Vec::new();
    for d in deliveries {
        let detail = store
            .get_delivery("tenant-r", &d.id)
            .await
            .unwrap()
            .unwrap();
        all.push((detail.delivery, detail.event));
    }
    all
}

/// The exposition text, as an admin scrapes it.
async fn scrape(rig: &Rig) -> String {
    let r = reqwest::Client::new()
        .get(format!("{}/metrics", rig.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

/// The sum of the samples of `name` whose labels include `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn delta(before: &str, after: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(after, name, labels) - value(before, name, labels)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

const REQUESTS: &str = "switchboard_ingress_requests_total";
const REFUSALS: &str = "switchboard_ingress_refusals_total";

async fn accepted_once_and_retries_recognised(store: &StoreOptions) {
    let rig = start(store).await;
    let before = scrape(&rig).await;
    for n in &NATIVES {
        // Three sends of identical bytes: a delivery and two retries.
        let report = deliver(&rig, n, json!({"repeat": 3})).await;
        assert_eq!(statuses(&report), [200, 200, 200], "{}", n.provider);
        let stored = stored(&rig, n).await;
        assert_eq!(stored.len(), 1, "{}: one event, one delivery", n.provider);
        let (delivery, event) = &stored[0];
        assert_eq!(event.event_type, n.normalized, "{}", n.provider);
        assert_eq!(delivery.event_type, n.normalized);
        assert_eq!(delivery.webhook_id, event.id);
        assert_eq!(event.provider, n.provider);
        assert_eq!(event.subscription_id, n.subscription());
        let payload: Value = serde_json::from_str(&event.payload).unwrap();
        assert_eq!(payload, report["body"], "{}: stored unchanged", n.provider);
        // Retries are recognised by Bird's request id, by the message and
        // its status for Sendblue, and by content for Talkover (no
        // delivery id is documented).
        let expected_key = match n.provider {
            BIRD => report["headers"]["messagebird-request-id"]
                .as_str()
                .unwrap()
                .to_owned(),
            SENDBLUE => format!(
                "{}/RECEIVED/{}",
                payload["message_handle"].as_str().unwrap(),
                payload["date_updated"].as_str().unwrap()
            ),
            _ => sha256_hex(event.payload.as_bytes()),
        };
        assert_eq!(event.dedup_key, expected_key, "{}", n.provider);
    }
    let after = scrape(&rig).await;
    for n in &NATIVES {
        let p = ("provider", n.provider);
        let got = delta(&before, &after, REQUESTS, &[p, ("outcome", "accepted")]);
        assert_eq!(got, 1.0, "{}", n.provider);
        let got = delta(&before, &after, REQUESTS, &[p, ("outcome", "duplicate")]);
        assert_eq!(got, 2.0, "{}", n.provider);
    }
    assert_bounded(&after);
}

async fn forged_and_stale_deliveries_are_refused(store: &StoreOptions) {
    let rig = start(store).await;
    let before = scrape(&rig).await;
    for n in &NATIVES {
        let report = deliver(&rig, n, json!({"corrupt": true})).await;
        assert_eq!(statuses(&report), [401], "{}", n.provider);
    }
    // Older than Bird's 25 h window (its retries keep their timestamp),
    // correctly signed.
    let day_ago = chrono::Utc::now().timestamp() - 26 * 3600;
    let stale = deliver(&rig, &BIRD_NATIVE, json!({"timestamp": day_ago})).await;
    assert_eq!(statuses(&stale), [401]);
    // Talkover, authentic but not JSON.
    let raw = reqwest::Client::new()
        .post(format!("{}/ingress/{}", rig.base, TALKOVER_NATIVE.token))
        .bearer_auth(TALKOVER_NATIVE.credential)
        .body("event=event_phone_call_ended")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert_eq!(raw.text().await.unwrap(), "", "no detail");
    for n in &NATIVES {
        assert!(stored(&rig, n).await.is_empty(), "{}", n.provider);
    }
    let after = scrape(&rig).await;
    let refused = |provider, reason| {
        delta(
            &before,
            &after,
            REFUSALS,
            &[("provider", provider), ("reason", reason)],
        )
    };
    assert_eq!(refused(TALKOVER, "unauthenticated"), 1.0);
    assert_eq!(refused(TALKOVER, "malformed"), 1.0);
    assert_eq!(refused(SENDBLUE, "unauthenticated"), 1.0);
    assert_eq!(refused(BIRD, "bad_signature"), 1.0);
    assert_eq!(refused(BIRD, "stale"), 1.0);
    let requests = delta(
        &before,
        &after,
        REQUESTS,
        &[("provider", BIRD), ("outcome", "refused")],
    );
    assert_eq!(requests, 2.0);
    assert_bounded(&after);
}

async fn unknown_tokens_and_large_bodies(store: &StoreOptions) {
    let rig = start(store).await;
    let client = reqwest::Client::new();
    let before = scrape(&rig).await;
    let post = |token: &str, body: Vec<u8>| {
        client
            .post(format!("{}/ingress/{token}", rig.base))
            .bearer_auth(TALKOVER_NATIVE.credential)
            .header("content-type", "application/json")
            .body(body)
    };
    let small = br#"{"event":"event_phone_call_ended"}"#.to_vec();
    for token in ["unknown-route-token", "not.a.token", &"a".repeat(500)] {
        let r = post(token, small.clone()).send().await.unwrap();
        assert_eq!(r.status(), 404, "{token}");
        assert_eq!(r.text().await.unwrap(), "", "a bare 404");
    }
    let large = format!(r#"{{"event":"x","pad":"{}"}}"#, "p".repeat(MAX_PAYLOAD));
    let r = post(TALKOVER_NATIVE.token, large.into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.text().await.unwrap(), "");
    // A body of exactly the limit is read (and then verified).
    let pad = MAX_PAYLOAD - r#"{"event":"x","pad":""}"#.len();
    let fits = format!(r#"{{"event":"x","pad":"{}"}}"#, "p".repeat(pad));
    assert_eq!(fits.len(), MAX_PAYLOAD);
    let r = post(TALKOVER_NATIVE.token, fits.into_bytes())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        stored(&rig, &TALKOVER_NATIVE).await[0].1.event_type,
        "native:x"
    );
    let after = scrape(&rig).await;
    let count = |provider, outcome| {
        delta(
            &before,
            &after,
            REQUESTS,
            &[("provider", provider), ("outcome", outcome)],
        )
    };
    assert_eq!(count("unknown", "not_found"), 3.0);
    assert_eq!(count(TALKOVER, "too_large"), 1.0);
    assert_eq!(count(TALKOVER, "accepted"), 1.0);
    let http = delta(
        &before,
        &after,
        "switchboard_http_requests_total",
        &[("route", "/ingress/{token}"), ("method", "POST")],
    );
    assert_eq!(http, 5.0, "the HTTP metrics see the template");
    assert_bounded(&after);
}

/// No label value carries a route token or a credential.
fn assert_bounded(text: &str) {
    for n in &NATIVES {
        for secret in [n.token, n.credential] {
            assert!(!text.contains(secret), "a metric carries {secret}");
        }
    }
    assert!(!text.contains("unknown-route-token"));
}

async fn relay_off_has_no_ingress(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    route(&rig, &TALKOVER_NATIVE).await;
    let r = reqwest::Client::new()
        .post(format!("{}/ingress/{}", rig.base, TALKOVER_NATIVE.token))
        .bearer_auth(TALKOVER_NATIVE.credential)
        .body(r#"{"event":"event_phone_call_ended"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(stored(&rig, &TALKOVER_NATIVE).await.is_empty());
}

#[tokio::test]
async fn documented_deliveries_are_stored_once() {
    let _turn = SERIAL.lock().await;
    each_backend!(accepted_once_and_retries_recognised);
}

#[tokio::test]
async fn forged_stale_and_malformed_deliveries_get_401() {
    let _turn = SERIAL.lock().await;
    each_backend!(forged_and_stale_deliveries_are_refused);
}

#[tokio::test]
async fn unknown_tokens_get_404_and_large_bodies_413() {
    let _turn = SERIAL.lock().await;
    each_backend!(unknown_tokens_and_large_bodies);
}

#[tokio::test]
async fn without_relay_mode_every_token_is_unknown() {
    let _turn = SERIAL.lock().await;
    each_backend!(relay_off_has_no_ingress);
}
