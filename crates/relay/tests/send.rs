//! The sender against a real receiver on 127.0.0.1 (port 0): what arrives
//! (method, headers, auth, custom headers, body, a signature both our
//! `verify` and the Python `standardwebhooks` accept), how each kind of
//! answer is reported and decided by the schedule, and the delivery-time
//! address policy (IP literals judged directly, names through the
//! filtering resolver).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde_json::json;
use switchboard_core::policy::UrlPolicy;
use switchboard_core::testing::draft;
use switchboard_core::{CallbackAuth, DeliveryFormat, DeliveryMethod, EventName, Secret};
use switchboard_relay::attempt::EXCERPT_BYTES;
use switchboard_relay::{
    Attempt, AttemptOutcome, Decision, Envelope, RetrySchedule, Sender, SigningSecret, Target,
    build, event_id, verify,
};

use support::{Case, python_verify};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Receiver {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Answers by path: `/ok` 204, `/fail` 500 with a long body, `/gone` 410,
/// `/busy` 429 + `Retry-After: 120`, `/moved` 302 to `/ok`, `/slow` never,
/// `/big` 200 with a multi-byte body longer than the excerpt.
async fn answer(
    State(r): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    r.seen.lock().unwrap().push(Seen {
        method,
        path: path.clone(),
        headers,
        body,
    });
    match path.as_str() {
        "/ok" => StatusCode::NO_CONTENT.into_response(),
        "/fail" => (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(3000)).into_response(),
        "/gone" => StatusCode::GONE.into_response(),
        "/busy" => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "120")]).into_response(),
        "/moved" => (StatusCode::FOUND, [("location", "/ok")]).into_response(),
        "/slow" => std::future::pending().await,
        "/big" => (StatusCode::OK, format!("a{}", "é".repeat(2000))).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_receiver() -> (Receiver, SocketAddr) {
    let receiver = Receiver::default();
    let app = Router::new().fallback(answer).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, addr)
}

/// A DNS under test control: fixed answers per name.
struct Table(HashMap<&'static str, Vec<IpAddr>>);

impl Resolve for Table {
    fn resolve(&self, name: Name) -> Resolving {
        let addrs: Vec<SocketAddr> = self
            .0
            .get(name.as_str())
            .into_iter()
            .flatten()
            .map(|ip| SocketAddr::new(*ip, 0))
            .collect();
        Box::pin(async move { Ok(Box::new(addrs.into_iter()) as Addrs) })
    }
}

fn dns() -> Arc<Table> {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    Arc::new(Table(HashMap::from([
        ("receiver.example", vec![ip("127.0.0.1")]),
        // The metadata address is dropped, never tried.
        (
            "mixed.example",
            vec![ip("169.254.169.254"), ip("127.0.0.1")],
        ),
    ])))
}

/// http allowed (the receiver has no TLS), 127.0.0.1 listed.
fn receiver_policy() -> UrlPolicy {
    toml::from_str(
        r#"
allow_http = true
allowed_subnets = ["127.0.0.1"]
"#,
    )
    .unwrap()
}

/// http allowed, nothing private.
fn default_policy() -> UrlPolicy {
    UrlPolicy {
        allow_http: true,
        ..UrlPolicy::default()
    }
}

fn secret() -> SigningSecret {
    SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
}

fn target(url: &str) -> Target {
    let mut t = Target::from_spec(&draft("talkover", url, &["call.ended"]));
    t.timeout = Duration::from_secs(2);
    t
}

fn envelope() -> Envelope {
    Envelope {
        id: event_id(),
        event_type: EventName::parse("call.ended").unwrap(),
        provider: "talkover".into(),
        subscription: "sub_01JNF7Q2ZK0000000000000001".into(),
        occurred_at: Some(Utc::now()),
        received_at: Utc::now(),
        data: json!({"call_id": "c-1", "duration": 42}),
    }
}

/// Builds the attempt for `e` and sends it.
async fn deliver(sender: &Sender, target: &Target, e: &Envelope) -> (Attempt, Bytes, i64) {
    let body = Bytes::from(e.body(target.format));
    let ts = Utc::now().timestamp();
    let req = build(target, &e.id, ts, body.clone(), &[secret()]).unwrap();
    (sender.send(req).await, body, ts)
}

fn decide(attempt: &Attempt, number: u32) -> Decision {
    RetrySchedule::default().decide(
        number,
        &attempt.outcome,
        Utc::now(),
        &mut StdRng::seed_from_u64(1),
    )
}

fn status(a: &Attempt) -> u16 {
    a.outcome
        .status()
        .unwrap_or_else(|| panic!("no answer: {:?}", a.outcome))
}

#[tokio::test]
async fn a_delivery_arrives_complete_and_verifiable() {
    let (receiver, addr) = start_receiver().await;
    let sender = Sender::new(receiver_policy()).unwrap();
    let mut t = target(&format!("http://{addr}/ok"));
    t.method = DeliveryMethod::Put;
    t.headers = BTreeMap::from([("X-Team".to_owned(), "billing".to_owned())]);
    t.auth = CallbackAuth::Basic {
        username: "relay".into(),
        password: Secret::new("s3cret"),
    };
    let e = envelope();
    let (attempt, body, ts) = deliver(&sender, &t, &e).await;
    assert_eq!(status(&attempt), 204);
    assert_eq!(decide(&attempt, 1), Decision::Delivered);
    assert!(attempt.latency < Duration::from_secs(2));

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.method, Method::PUT);
    assert_eq!(got.path, "/ok");
    assert_eq!(got.body, body);
    let h = |name: &str| got.headers[name].to_str().unwrap().to_owned();
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(h("x-team"), "billing");
    // base64("relay:s3cret")
    assert_eq!(h("authorization"), "Basic cmVsYXk6czNjcmV0");
    assert_eq!(h("webhook-id"), e.id);
    assert_eq!(h("webhook-timestamp"), ts.to_string());
    let parsed: Envelope = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(parsed.id, e.id);
    assert_eq!(
        verify(
            &e.id,
            &h("webhook-timestamp"),
            &h("webhook-signature"),
            &got.body,
            &secret(),
            Utc::now().timestamp(),
            300
        ),
        Ok(())
    );

    let case = Case {
        secret: secret().to_secret().expose().to_owned(),
        headers: support::header_map(&got.headers),
        body: got.body.to_vec(),
        json: true,
    };
    if let Some(verdicts) = python_verify(&[case]) {
        assert_eq!(verdicts, vec![Ok(Some(e.id.clone()))]);
    }
}

#[tokio::test]
async fn names_connect_only_to_admitted_addresses() {
    let (receiver, addr) = start_receiver().await;
    let port = addr.port();
    let sender = Sender::with_resolver(receiver_policy(), dns()).unwrap();
    let mut t = target(&format!("http://receiver.example:{port}/ok"));
    t.method = DeliveryMethod::Patch;
    t.format = DeliveryFormat::Xml;
    t.auth = CallbackAuth::ApiKey {
        header: "X-Api-Key".into(),
        value: Secret::new("k-1"),
    };
    let e = envelope();
    let (attempt, body, _) = deliver(&sender, &t, &e).await;
    assert_eq!(status(&attempt), 204);
    // A name resolving to a refused and an admitted address uses the latter.
    let mixed = target(&format!("http://mixed.example:{port}/ok"));
    let (attempt, _, _) = deliver(&sender, &mixed, &e).await;
    assert_eq!(status(&attempt), 204);

    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    let got = &seen[0];
    assert_eq!(got.method, Method::PATCH);
    assert_eq!(got.headers["content-type"], "application/xml");
    assert_eq!(got.headers["x-api-key"], "k-1");
    assert_eq!(got.body, body);
    assert!(got.body.starts_with(b"<?xml"));
    let case = Case {
        secret: secret().to_secret().expose().to_owned(),
        headers: support::header_map(&got.headers),
        body: got.body.to_vec(),
        json: false,
    };
    if let Some(verdicts) = python_verify(&[case]) {
        assert_eq!(verdicts, vec![Ok(None)]);
    }
}

#[tokio::test]
async fn the_default_policy_refuses_loopback_as_a_distinct_outcome() {
    let (receiver, addr) = start_receiver().await;
    let e = envelope();

    // An IP literal is judged before anything is sent, for good.
    let sender = Sender::new(default_policy()).unwrap();
    let (attempt, _, _) = deliver(&sender, &target(&format!("http://{addr}/ok")), &e).await;
    let AttemptOutcome::Refused { permanent, reason } = &attempt.outcome else {
        panic!("{:?}", attempt.outcome);
    };
    assert!(*permanent);
    assert!(reason.contains("loopback address 127.0.0.1"), "{reason}");
    assert_eq!(decide(&attempt, 1), Decision::GiveUp);

    // A name whose answer is refused: the resolver refuses it; DNS may change.
    let sender = Sender::with_resolver(default_policy(), dns()).unwrap();
    let url = format!("http://receiver.example:{}/ok", addr.port());
    let (attempt, _, _) = deliver(&sender, &target(&url), &e).await;
    let AttemptOutcome::Refused { permanent, reason } = &attempt.outcome else {
        panic!("{:?}", attempt.outcome);
    };
    assert!(!*permanent);
    assert!(
        reason.contains("receiver.example") && reason.contains("loopback"),
        "{reason}"
    );
    assert!(matches!(decide(&attempt, 1), Decision::Retry { .. }));

    assert!(
        receiver.seen().is_empty(),
        "nothing may reach a refused address"
    );
}

#[tokio::test]
async fn failed_answers_are_reported_and_decided() {
    let (receiver, addr) = start_receiver().await;
    let sender = Sender::new(receiver_policy()).unwrap();
    let e = envelope();
    let send = |path: &str| {
        let t = target(&format!("http://{addr}{path}"));
        let sender = sender.clone();
        let e = e.clone();
        async move { deliver(&sender, &t, &e).await.0 }
    };

    let fail = send("/fail").await;
    assert_eq!(status(&fail), 500);
    let AttemptOutcome::Response { excerpt, .. } = &fail.outcome else {
        unreachable!()
    };
    assert_eq!(excerpt, &"x".repeat(EXCERPT_BYTES));
    assert!(matches!(decide(&fail, 1), Decision::Retry { .. }));
    assert_eq!(decide(&fail, 10), Decision::GiveUp);

    assert_eq!(decide(&send("/gone").await, 1), Decision::Gone);

    let busy = send("/busy").await;
    assert_eq!(status(&busy), 429);
    let before = Utc::now();
    let Decision::Retry { at } = decide(&busy, 1) else {
        panic!("{busy:?}")
    };
    // Retry-After (120 s) is later than the first scheduled delay (5 s ± 20 %).
    assert!(
        at >= before + chrono::Duration::seconds(119),
        "{at} vs {before}"
    );
    assert!(at <= Utc::now() + chrono::Duration::seconds(120));

    // A redirect is an answer, not followed.
    let before_moved = receiver.seen().len();
    let moved = send("/moved").await;
    assert_eq!(status(&moved), 302);
    assert!(matches!(decide(&moved, 1), Decision::Retry { .. }));
    let seen = receiver.seen();
    assert_eq!(seen.len(), before_moved + 1);
    assert_eq!(seen.last().unwrap().path, "/moved");

    let big = send("/big").await;
    let AttemptOutcome::Response { excerpt, .. } = &big.outcome else {
        unreachable!()
    };
    // 1 + 2 × 511 bytes fit; the 512th "é" would be cut in half and is dropped.
    assert_eq!(excerpt.len(), EXCERPT_BYTES - 1);
    assert!(!excerpt.contains('\u{FFFD}'));
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_a_timeout() {
    let (receiver, addr) = start_receiver().await;
    let sender = Sender::new(receiver_policy()).unwrap();
    let mut t = target(&format!("http://{addr}/slow"));
    t.timeout = Duration::from_millis(500);
    let (attempt, _, _) = deliver(&sender, &t, &envelope()).await;
    assert_eq!(attempt.outcome, AttemptOutcome::Timeout);
    assert!(attempt.latency >= Duration::from_millis(500));
    assert!(attempt.latency < Duration::from_secs(5));
    assert!(matches!(decide(&attempt, 1), Decision::Retry { .. }));
    assert_eq!(receiver.seen().len(), 1, "the request did arrive");
}

#[tokio::test]
async fn nothing_listening_is_a_failed_attempt() {
    // Bind and drop: the port is then (almost certainly) closed.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let sender = Sender::new(receiver_policy()).unwrap();
    let (attempt, _, _) =
        deliver(&sender, &target(&format!("http://{addr}/ok")), &envelope()).await;
    let AttemptOutcome::Failed { message } = &attempt.outcome else {
        panic!("{:?}", attempt.outcome);
    };
    assert!(!message.is_empty());
    assert!(matches!(decide(&attempt, 1), Decision::Retry { .. }));
}
