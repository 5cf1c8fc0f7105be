//! The relay natives as the simulators registered them, and the deliveries
//! the load sends to them.
//!
//! Nothing here comes from the adapters: the registered ingress URLs and
//! credentials are read from each simulator's control listing, and one
//! delivery per native is built by the simulator itself (`POST
//! /_sim/deliveries` with `deliver_to` this module's capture listener,
//! switchboard_sim::deliveries), so headers, method and body shape are the
//! documented ones. Each load delivery is that captured request with the
//! [`Mark`] added to its body:
//!
//! - Talkover (providers.md §2.4–2.5) authenticates with the registered
//!   custom `Authorization` header, the same on every delivery, so the
//!   captured headers are sent as they are and only the body's
//!   `timestamp` is renewed.
//! - Bird (§3.4) signs each delivery: a fresh `messagebird-request-id`,
//!   `messagebird-request-timestamp` and `messagebird-signature` =
//!   base64 HMAC-SHA256(`signingKey`, timestamp + "\n" + URL + "\n" +
//!   SHA-256(body)) are made here from the documented scheme and the key
//!   the simulator stored, because the simulator's signer is private to it
//!   and a captured signature cannot be replayed (the ingress refuses
//!   replays by request id).
//!
//! Every body differs (sequence number and send time), so no delivery is
//! mistaken for a provider retry by the ingress's content hash.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request as AxumRequest, State};
use axum::http::StatusCode;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::Mac as _;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest as _;
use switchboard_sim::deliveries::{DELIVERIES_PATH, DeliveryOrder, DeliveryReport};

/// The `server.public_url` the bench's server runs with: what the natives
/// are registered with and Bird signs. Requests go to the server's real
/// address with this `Host`, as through a TLS-terminating proxy.
pub const PUBLIC_URL: &str = "https://switchboard.bench";

/// The body field (Bird: the payload field) carrying the [`Mark`].
pub const MARK_FIELD: &str = "switchboard_bench";

/// What the load adds to every delivery's body, and the receiver reads
/// back out of the envelope's unchanged `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Unique across a bench run.
    pub seq: u64,
    /// When the delivery was due (open loop) or sent (closed loop), unix ns.
    pub sent_ns: u64,
}

/// The provider kinds the load can deliver as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Talkover: a static bearer credential.
    Talkover,
    /// Bird: an HMAC signature per delivery.
    Bird,
}

impl Shape {
    /// The bench config's provider key.
    pub fn provider(self) -> &'static str {
        match self {
            Self::Talkover => "talkover",
            Self::Bird => "bird",
        }
    }

    /// The provider kind (`switchboard::demo::default_accounts` key).
    pub fn kind(self) -> &'static str {
        match self {
            Self::Talkover => "talkover",
            Self::Bird => "accesskey-workspace",
        }
    }

    /// The simulator's control listing of what is registered for `account`
    /// (providers' write-only fields included), and the field holding
    /// each entry's URL.
    fn listing(self, account: &str) -> (String, &'static str) {
        match self {
            Self::Talkover => (
                format!("/_sim/talkover/agents/{account}/webhooks"),
                "webhook_url",
            ),
            Self::Bird => (
                format!("/_sim/bird/workspaces/{account}/subscriptions"),
                "url",
            ),
        }
    }
}

/// One registered relay native and the documented delivery to it.
#[derive(Debug, Clone)]
pub struct Native {
    shape: Shape,
    /// The registered URL (`PUBLIC_URL/ingress/{token}`).
    url: String,
    /// Its path and query: where the request goes.
    path: String,
    method: Method,
    /// The captured headers, without the hop's own.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The captured body.
    body: Value,
    /// Bird: the `signingKey` the simulator stored.
    signing_key: Option<String>,
}

/// Bird's per-delivery headers, made anew for each delivery.
const BIRD_SIGNED: [&str; 3] = [
    "messagebird-signature",
    "messagebird-request-timestamp",
    "messagebird-request-id",
];

impl Native {
    /// The delivery carrying `mark`, dated `now` where the provider dates
    /// its requests.
    pub fn request(&self, mark: Mark, now: DateTime<Utc>) -> Result<Request<Full<Bytes>>, String> {
        let mut body = self.body.clone();
        let marked = match self.shape {
            Shape::Talkover => body.as_object_mut(),
            Shape::Bird => body.get_mut("payload").and_then(Value::as_object_mut),
        }
        .ok_or("the captured delivery has no JSON object to mark")?;
        if self.shape == Shape::Talkover {
            // Talkover dates each delivery in its body (providers.md §2.5).
            let sent = DateTime::from_timestamp_nanos(mark.sent_ns as i64);
            let iso = sent.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
            marked.insert("timestamp".into(), Value::String(iso));
        }
        marked.insert(MARK_FIELD.into(), serde_json::json!(mark));
        let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(&self.path)
            .header(HOST, host_of(PUBLIC_URL))
            .header("x-forwarded-proto", "https");
        for (name, value) in &self.headers {
            if self.signing_key.is_none() || !BIRD_SIGNED.contains(&name.as_str()) {
                request = request.header(name, value);
            }
        }
        if let Some(key) = &self.signing_key {
            let timestamp = now.timestamp().to_string();
            let signature = bird_signature(key, &timestamp, &self.url, &bytes);
            request = request
                .header("messagebird-signature", signature)
                .header("messagebird-request-timestamp", timestamp)
                .header("messagebird-request-id", uuid_v4());
        }
        request
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| e.to_string())
    }
}

/// `messagebird-signature` as Bird's "Verifying a webhook subscription"
/// documents it (providers.md §3.4).
fn bird_signature(key: &str, timestamp: &str, url: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}\n{url}\n").as_bytes());
    mac.update(&sha2::Sha256::digest(body));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A random UUID v4, the form of Bird's request ids.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn host_of(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}

/// The root (scheme, host and port) of a simulator's `base_url`, where its
/// control routes are.
fn origin(base_url: &str) -> Result<String, String> {
    let url = url::Url::parse(base_url).map_err(|e| format!("{base_url}: {e}"))?;
    Ok(url.origin().ascii_serialization())
}

/// The relay natives of `shape` that `account` holds at its simulator
/// (`sims`: provider key → `base_url`), waiting up to a minute until there
/// are `expected` (a create may finish in the background), each with its
/// documented delivery captured.
pub async fn discover(
    sims: &BTreeMap<String, String>,
    shape: Shape,
    account: &str,
    expected: usize,
) -> Result<Vec<Native>, String> {
    if expected == 0 {
        return Ok(Vec::new());
    }
    let base = sims
        .get(shape.provider())
        .ok_or_else(|| format!("no simulator for `{}`", shape.provider()))?;
    let root = origin(base)?;
    let http = reqwest::Client::new();
    let registered = wait_for_natives(&http, &root, shape, account, expected).await?;
    let capture = Capture::start().await?;
    let mut natives = Vec::with_capacity(registered.len());
    for entry in registered {
        natives.push(capture.native(&http, &root, shape, entry).await?);
    }
    capture.stop().await;
    Ok(natives)
}

/// The listing's entries registered under [`PUBLIC_URL`], once there are
/// `expected` of them.
async fn wait_for_natives(
    http: &reqwest::Client,
    root: &str,
    shape: Shape,
    account: &str,
    expected: usize,
) -> Result<Vec<Value>, String> {
    let (path, url_field) = shape.listing(account);
    let prefix = format!("{PUBLIC_URL}/ingress/");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listing: Vec<Value> = http
            .get(format!("{root}{path}"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("{root}{path}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{root}{path}: {e}"))?;
        let natives: Vec<Value> = listing
            .into_iter()
            .filter(|n| {
                n[url_field]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&prefix))
            })
            .collect();
        if natives.len() >= expected {
            return Ok(natives);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{}: {} of {expected} relay natives registered under {prefix} after a minute",
                shape.provider(),
                natives.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request as the capture listener received it.
#[derive(Debug, Clone)]
struct Captured {
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

type Captures = Arc<Mutex<HashMap<String, Captured>>>;

/// A listener standing in for the ingress while the documented deliveries
/// are captured: it keeps each request by path and query, answers 200.
struct Capture {
    running: switchboard_sim::Running,
    seen: Captures,
}

impl Capture {
    async fn start() -> Result<Self, String> {
        let seen = Captures::default();
        let router = axum::Router::new().fallback(keep).with_state(seen.clone());
        let running = switchboard_sim::serve(router, ([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| format!("capture listener: {e}"))?;
        Ok(Self { running, seen })
    }

    /// Has the simulator deliver to `entry`'s URL here, and makes the
    /// native from what arrived.
    async fn native(
        &self,
        http: &reqwest::Client,
        root: &str,
        shape: Shape,
        entry: Value,
    ) -> Result<Native, String> {
        let (_, url_field) = shape.listing("");
        let url = entry[url_field].as_str().unwrap_or_default().to_owned();
        let order = DeliveryOrder {
            url: url.clone(),
            deliver_to: Some(self.running.base_url.clone()),
            ..DeliveryOrder::default()
        };
        let report: DeliveryReport = http
            .post(format!("{root}{DELIVERIES_PATH}"))
            .json(&order)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("{root}{DELIVERIES_PATH} for {url}: {e}"))?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        if report.attempts.first().and_then(|a| a.status) != Some(200) {
            return Err(format!(
                "the capture of {url} failed: {:?}",
                report.attempts
            ));
        }
        let parsed = url::Url::parse(&url).map_err(|e| format!("{url}: {e}"))?;
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let captured = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&path)
            .ok_or_else(|| format!("nothing captured at {path}"))?;
        let signing_key = match shape {
            Shape::Talkover => None,
            Shape::Bird => Some(
                entry["signingKey"]
                    .as_str()
                    .ok_or_else(|| format!("{url}: Bird native without a signingKey"))?
                    .to_owned(),
            ),
        };
        Ok(Native {
            shape,
            url,
            path,
            method: captured.method,
            headers: captured.headers,
            body: serde_json::from_slice(&captured.body)
                .map_err(|e| format!("the captured body is not JSON: {e}"))?,
            signing_key,
        })
    }

    async fn stop(self) {
        let _ = self.running.shutdown().await;
    }
}

/// The hop's own headers, which the load sets itself.
const HOP: [&str; 5] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "x-forwarded-proto",
];

async fn keep(State(seen): State<Captures>, request: AxumRequest) -> StatusCode {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return StatusCode::BAD_REQUEST;
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let headers = parts
        .headers
        .iter()
        .filter(|(name, _)| !HOP.contains(&name.as_str()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let captured = Captured {
        method: parts.method,
        headers,
        body,
    };
    seen.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(path, captured);
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(shape: Shape, body: Value, key: Option<&str>) -> Native {
        Native {
            shape,
            url: format!("{PUBLIC_URL}/ingress/tok"),
            path: "/ingress/tok".into(),
            method: Method::POST,
            headers: vec![
                (
                    HeaderName::from_static("content-type"),
                    HeaderValue::from_static("application/json"),
                ),
                (
                    HeaderName::from_static("messagebird-request-id"),
                    HeaderValue::from_static("captured"),
                ),
            ],
            body,
            signing_key: key.map(str::to_owned),
        }
    }

    async fn body_of(request: Request<Full<Bytes>>) -> Value {
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn talkover_deliveries_carry_the_mark_and_a_fresh_timestamp() {
        let n = native(
            Shape::Talkover,
            serde_json::json!({"event": "event_phone_call_ended", "timestamp": "old"}),
            None,
        );
        let mark = Mark {
            seq: 7,
            sent_ns: 1_700_000_000_123_000_000,
        };
        let request = n.request(mark, Utc::now()).unwrap();
        assert_eq!(request.headers()[HOST], "switchboard.bench");
        assert_eq!(request.uri(), "/ingress/tok");
        let body = body_of(request).await;
        assert_eq!(body["event"], "event_phone_call_ended");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.123Z");
        let back: Mark = serde_json::from_value(body[MARK_FIELD].clone()).unwrap();
        assert_eq!(back, mark);
    }

    #[tokio::test]
    async fn bird_deliveries_are_signed_anew_as_documented() {
        let n = native(
            Shape::Bird,
            serde_json::json!({"service": "channels", "event": "sms.inbound", "payload": {}}),
            Some("key"),
        );
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mark = Mark { seq: 1, sent_ns: 1 };
        let request = n.request(mark, now).unwrap();
        let headers = request.headers().clone();
        assert_eq!(headers.get_all("messagebird-request-id").iter().count(), 1);
        assert_ne!(headers["messagebird-request-id"], "captured");
        assert_eq!(headers["messagebird-request-timestamp"], "1700000000");
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        // Recomputed from the documented construction, independently of
        // `bird_signature`'s argument order.
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"1700000000\nhttps://switchboard.bench/ingress/tok\n");
        mac.update(&sha2::Sha256::digest(&bytes));
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(headers["messagebird-signature"], expected.as_str());
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["payload"][MARK_FIELD]["seq"], 1);
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, uuid_v4());
    }
}
