//! Outbound deliveries: the one way a simulator calls out.
//!
//! Each simulator turns a [`DeliveryOrder`] into the request its provider
//! documents sending to one registered webhook (an [`Outbound`]: URL,
//! method, headers with the registered credentials or signature, body).
//! This module owns what is the same for every provider: the order and the
//! report, the control route `POST /_sim/deliveries` that runs an order,
//! sending (no redirects followed, repeats with identical bytes) and the
//! test-only `deliver_to` hop.
//!
//! `deliver_to` stands for a TLS-terminating proxy in front of the
//! receiver: the request goes to that origin (e.g. `http://127.0.0.1:PORT`)
//! with the registered URL's path and query, `Host` and
//! `X-Forwarded-Proto` of the registered URL, while everything signed or
//! reported still uses the registered URL. The documented URL rules
//! (https only, DNS names, no ports for Bird) thus stay strict, and tests
//! can still receive on loopback. Without it the simulator calls the
//! registered URL itself, as the provider would.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::{REDACTED, is_secret_header};

/// Path of the control route every simulator serves.
pub const DELIVERIES_PATH: &str = "/_sim/deliveries";

/// Timeout of a delivery when the provider documents none for it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Most times one order may send its delivery.
pub const MAX_REPEAT: u32 = 10;

/// Body of `POST /_sim/deliveries`: which webhook gets which event, and the
/// test options. Unknown fields are refused, so a typo fails loudly.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryOrder {
    /// The URL the webhook was registered with; it selects the webhook.
    pub url: String,
    /// The event, spelled as the provider spells it in the webhook (Bird:
    /// its `event`, e.g. `sms.inbound`; Sendblue: the bucket); when absent,
    /// the webhook's first event.
    pub event: Option<String>,
    /// The body to send instead of the documented example (Bird: the
    /// envelope's `payload`, the envelope itself being documented).
    pub payload: Option<Value>,
    /// How many times to send the identical delivery (same bytes, same
    /// request id): a provider retry or a replay. At least 1, default 1.
    pub repeat: Option<u32>,
    /// Unix seconds to date the delivery with instead of now, where the
    /// provider dates deliveries (Bird's signed timestamp header, the
    /// `timestamp` or `date_*` fields of a documented example body).
    pub timestamp: Option<i64>,
    /// Send a wrong credential or signature: the registered one altered.
    pub corrupt: bool,
    /// Test only: the origin to connect to instead of the URL's (see the
    /// module documentation).
    pub deliver_to: Option<String>,
}

impl DeliveryOrder {
    /// The time the delivery is dated with.
    pub fn timestamp_or_now(&self) -> chrono::DateTime<chrono::Utc> {
        self.timestamp
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .unwrap_or_else(chrono::Utc::now)
    }
}

/// One delivery as a provider would send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The event, as the provider spells it.
    pub event: String,
    /// The registered URL.
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// How long the provider waits for an answer.
    pub timeout: Duration,
}

impl Outbound {
    /// A JSON delivery: `Content-Type: application/json` first, then
    /// `headers`.
    pub fn json(
        event: impl Into<String>,
        url: impl Into<String>,
        method: impl Into<String>,
        headers: Vec<(String, String)>,
        body: &Value,
    ) -> Self {
        let mut all = vec![("content-type".to_owned(), "application/json".to_owned())];
        all.extend(headers);
        Self {
            event: event.into(),
            url: url.into(),
            method: method.into(),
            headers: all,
            body: body.to_string().into_bytes(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why an order cannot be delivered: the control route's error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// 404 (no such webhook), 409 (the provider would not deliver now) or
    /// 422 (the order does not fit the webhook).
    pub status: StatusCode,
    /// What is wrong.
    pub message: String,
}

impl Refused {
    /// No webhook is registered with the order's URL.
    pub fn no_webhook(url: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("no webhook is registered with url `{url}`"),
        }
    }

    /// The order does not fit the webhook.
    pub fn unfit(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: message.into(),
        }
    }

    /// A corrupted delivery was asked of a webhook without credentials.
    pub fn nothing_to_corrupt() -> Self {
        Self::unfit("the webhook has no credential or signing key to corrupt")
    }

    /// The webhook is disabled: the provider would not deliver.
    pub fn disabled() -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: "the webhook is disabled; the provider would not deliver".into(),
        }
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "message": self.message }))).into_response()
    }
}

/// One attempt as sent and answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Where the request went (the registered URL unless `deliver_to`).
    pub target: String,
    /// The receiver's status; `None` when no answer came.
    pub status: Option<u16>,
    /// Why no answer came.
    pub error: Option<String>,
}

/// What an order sent: the control route's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// The event, as the provider spells it.
    pub event: String,
    /// The registered URL (the one a provider signs).
    pub url: String,
    /// HTTP method.
    pub method: String,
    /// Headers as sent, credentials replaced by [`REDACTED`].
    pub headers: BTreeMap<String, String>,
    /// The body as sent.
    pub body: Value,
    /// One entry per send, in order.
    pub attempts: Vec<Attempt>,
}

/// A simulator that can deliver to its registered webhooks.
pub(crate) trait Outbox: Clone + Send + Sync + 'static {
    /// The delivery the provider would send for `order`, built from the
    /// stored webhook.
    fn outbound(&self, order: &DeliveryOrder) -> Result<Outbound, Refused>;
}

/// `POST /_sim/deliveries` for `sim`, to be merged before the harness wraps
/// the router (control routes are neither logged nor faulted).
pub(crate) fn routes<S: Outbox>(sim: S) -> Router {
    Router::new()
        .route(DELIVERIES_PATH, post(control_deliver::<S>))
        .with_state(sim)
}

async fn control_deliver<S: Outbox>(
    State(sim): State<S>,
    Json(order): Json<DeliveryOrder>,
) -> Response {
    match deliver(&sim, &order).await {
        Ok(report) => Json(report).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// Builds the order's delivery and sends it `repeat` times.
pub(crate) async fn deliver<S: Outbox>(
    sim: &S,
    order: &DeliveryOrder,
) -> Result<DeliveryReport, Refused> {
    let repeat = order.repeat.unwrap_or(1);
    if !(1..=MAX_REPEAT).contains(&repeat) {
        return Err(Refused::unfit(format!("repeat must be 1 to {MAX_REPEAT}")));
    }
    let outbound = sim.outbound(order)?;
    let target = target_url(&outbound.url, order.deliver_to.as_deref())?;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(outbound.timeout)
        .build()
        .map_err(|e| Refused::unfit(format!("no HTTP client: {e}")))?;
    let mut attempts = Vec::with_capacity(repeat as usize);
    for _ in 0..repeat {
        attempts.push(send(&client, &outbound, &target, order.deliver_to.is_some()).await);
    }
    Ok(report(outbound, attempts))
}

/// The URL to connect to: the registered one, or its path and query on
/// the `deliver_to` origin.
fn target_url(registered: &str, deliver_to: Option<&str>) -> Result<String, Refused> {
    let Some(origin) = deliver_to else {
        return Ok(registered.to_owned());
    };
    let url = url::Url::parse(registered)
        .map_err(|e| Refused::unfit(format!("the registered url does not parse: {e}")))?;
    let origin = url::Url::parse(origin)
        .map_err(|e| Refused::unfit(format!("deliver_to is not a URL: {e}")))?;
    let mut target = origin.clone();
    target.set_path(url.path());
    target.set_query(url.query());
    Ok(target.to_string())
}

async fn send(client: &reqwest::Client, out: &Outbound, target: &str, proxied: bool) -> Attempt {
    let method =
        reqwest::Method::from_bytes(out.method.as_bytes()).unwrap_or(reqwest::Method::POST);
    let mut request = client.request(method, target).body(out.body.clone());
    for (name, value) in &out.headers {
        request = request.header(name, value);
    }
    if proxied && let Ok(url) = url::Url::parse(&out.url) {
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        request = request
            .header("host", host)
            .header("x-forwarded-proto", url.scheme());
    }
    match request.send().await {
        Ok(response) => Attempt {
            target: target.to_owned(),
            status: Some(response.status().as_u16()),
            error: None,
        },
        Err(e) => Attempt {
            target: target.to_owned(),
            status: None,
            error: Some(e.to_string()),
        },
    }
}

fn report(out: Outbound, attempts: Vec<Attempt>) -> DeliveryReport {
    let headers = out
        .headers
        .iter()
        .map(|(name, value)| {
            let name = name.to_ascii_lowercase();
            let value = if is_secret_header(&name) {
                REDACTED.to_owned()
            } else {
                value.clone()
            };
            (name, value)
        })
        .collect();
    let body = serde_json::from_slice(&out.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&out.body).into_owned()));
    DeliveryReport {
        event: out.event,
        url: out.url,
        method: out.method,
        headers,
        body,
        attempts,
    }
}

/// The order's event among a webhook's `subscribed` events, or the first
/// of them when the order names none.
pub(crate) fn pick_event<'a>(
    subscribed: &[&'a str],
    asked: Option<&str>,
) -> Result<&'a str, Refused> {
    match asked {
        None => subscribed
            .first()
            .copied()
            .ok_or_else(|| Refused::unfit("the webhook has no events")),
        Some(asked) => subscribed
            .iter()
            .copied()
            .find(|e| *e == asked)
            .ok_or_else(|| Refused::unfit(format!("the webhook is not subscribed to `{asked}`"))),
    }
}

/// `value` altered so that it no longer matches: the wrong credential a
/// corrupted order sends.
pub(crate) fn corrupted(value: &str) -> String {
    format!("{value}-corrupted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_to_keeps_path_and_query() {
        assert_eq!(
            target_url(
                "https://hooks.example.com/in/abc?x=1",
                Some("http://127.0.0.1:9")
            )
            .unwrap(),
            "http://127.0.0.1:9/in/abc?x=1"
        );
        assert_eq!(
            target_url("https://hooks.example.com/in", None).unwrap(),
            "https://hooks.example.com/in"
        );
        assert!(target_url("https://hooks.example.com/in", Some("nope")).is_err());
    }

    #[test]
    fn reports_redact_credentials() {
        let out = Outbound::json(
            "e",
            "https://h.example.com/",
            "POST",
            vec![
                ("Authorization".into(), "Bearer t".into()),
                ("sb-signing-secret".into(), "s".into()),
                ("messagebird-request-id".into(), "r".into()),
            ],
            &json!({"a": 1}),
        );
        let r = report(out, Vec::new());
        assert_eq!(r.headers["authorization"], REDACTED);
        assert_eq!(r.headers["sb-signing-secret"], REDACTED);
        assert_eq!(r.headers["messagebird-request-id"], "r");
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.body, json!({"a": 1}));
    }

    #[test]
    fn orders_refuse_unknown_fields() {
        assert!(
            serde_json::from_value::<DeliveryOrder>(json!({"url": "u", "corupt": true})).is_err()
        );
        let order: DeliveryOrder = serde_json::from_value(json!({"url": "u"})).unwrap();
        assert_eq!(order.repeat, None);
        assert!(!order.corrupt);
    }
}
