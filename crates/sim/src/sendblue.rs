//! Simulator of Sendblue's account webhook API.
//!
//! Written only from Sendblue's documentation (seed 004, the v2 "Webhooks"
//! reference, and providers.md §4, which summarises the docs site, the
//! security page and the official SDKs). It owns the account's one webhook
//! configuration document (per-type buckets of URL strings or `{url,
//! secret}` objects, plus `globalSecret` and the legacy `secret`), the
//! validation the docs describe, the documented success and error bodies,
//! and a small Sendblue-specific control API for tests. Where the docs are
//! silent, the choice made is marked "inferred" next to the code.
//!
//! The documented base URL is the host root `https://api.sendblue.co`
//! ([`API_PREFIX`] is empty). Both documented paths, [`V2_PATH`] and
//! [`V1_PATH`], serve the same document (providers.md §4.2: "both are live
//! and take the same bodies", inferred). The generic control API from
//! [`crate::faults`] and the routes under `/_sim/sendblue` sit beside them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::deliveries::{DeliveryOrder, Outbound, Outbox, Refused, corrupted};
use crate::faults::Harness;
use crate::wire::says_json;

/// Path prefix of the simulated API: none, the documented base URL
/// `https://api.sendblue.co` is the host root (providers.md §4.1).
pub const API_PREFIX: &str = "";

/// The v2 path (seed 004).
pub const V2_PATH: &str = "/api/v2/account/webhooks";

/// The path the current official SDKs use (providers.md §4.2).
pub const V1_PATH: &str = "/api/account/webhooks";

/// API key id accepted by [`SendblueConfig::default`].
pub const DEFAULT_KEY_ID: &str = "sb_demo_key_id";

/// API secret key accepted by [`SendblueConfig::default`].
pub const DEFAULT_SECRET_KEY: &str = "sb_demo_secret";

/// The documented webhook types, each a bucket of the document: the six of
/// seed 004 plus `typing_indicator` (SDK 3.14.0 and the getting-started
/// table, providers.md §4.2–4.3).
pub const WEBHOOK_TYPES: [&str; 7] = [
    "receive",
    "outbound",
    "call_log",
    "line_blocked",
    "line_assigned",
    "contact_created",
    "typing_indicator",
];

/// `type` when a POST or DELETE leaves it out (providers.md §4.2).
const DEFAULT_TYPE: &str = "receive";

/// Seed 004: "contact_created: optional array of string … (URL strings only)".
const URL_ONLY_TYPE: &str = "contact_created";

/// The credentials headers (providers.md §4.1). Header names are
/// case-insensitive, so the documented `SB-API-KEY-ID` spelling is the
/// same header; the `x-` variants are accepted too.
const KEY_ID_HEADERS: [&str; 2] = ["sb-api-key-id", "x-sb-api-key-id"];
const SECRET_KEY_HEADERS: [&str; 2] = ["sb-api-secret-key", "x-sb-api-secret-key"];

/// What the simulator accepts: the account's API key pairs. Every pair sees
/// the same single document (one account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendblueConfig {
    /// Accepted `(sb-api-key-id, sb-api-secret-key)` pairs.
    pub credentials: Vec<(String, String)>,
}

impl Default for SendblueConfig {
    fn default() -> Self {
        Self {
            credentials: vec![(DEFAULT_KEY_ID.to_owned(), DEFAULT_SECRET_KEY.to_owned())],
        }
    }
}

/// One item of a bucket, in the shape it was sent: the schema allows "string
/// or object { url, secret }" and List returns what was stored (seed 004).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Webhook {
    /// A bare URL.
    Url(String),
    /// `{url, secret?, sendblue_numbers?}`; `sendblue_numbers` is the
    /// receive-only line filter of SDK 3.14.0 (providers.md §4.2).
    Object {
        url: String,
        secret: Option<String>,
        sendblue_numbers: Option<Vec<String>>,
    },
}

impl Webhook {
    fn url(&self) -> &str {
        match self {
            Self::Url(url) | Self::Object { url, .. } => url,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Url(url) => json!(url),
            Self::Object {
                url,
                secret,
                sendblue_numbers,
            } => {
                let mut map = Map::new();
                map.insert("url".into(), json!(url));
                if let Some(secret) = secret {
                    map.insert("secret".into(), json!(secret));
                }
                if let Some(numbers) = sendblue_numbers {
                    map.insert("sendblue_numbers".into(), json!(numbers));
                }
                Value::Object(map)
            }
        }
    }
}

/// The account's webhook configuration (`WebhookConfiguration`, seed 004).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Document {
    /// Type → items in the order they were added.
    buckets: BTreeMap<String, Vec<Webhook>>,
    global_secret: Option<String>,
    /// "Legacy secret field" (seed 004).
    legacy_secret: Option<String>,
}

impl Document {
    /// The configuration as List returns it: secrets included (the docs'
    /// example echoes them, providers.md §4.2), and every documented bucket
    /// present, empty ones as `[]` (the docs' example lists all of them;
    /// inferred for empty buckets).
    fn to_json(&self) -> Value {
        let mut map = Map::new();
        for webhook_type in WEBHOOK_TYPES {
            map.insert(webhook_type.to_owned(), json!([]));
        }
        for (webhook_type, items) in &self.buckets {
            let items: Vec<Value> = items.iter().map(Webhook::to_json).collect();
            map.insert(webhook_type.clone(), Value::Array(items));
        }
        if let Some(secret) = &self.global_secret {
            map.insert("globalSecret".into(), json!(secret));
        }
        if let Some(secret) = &self.legacy_secret {
            map.insert("secret".into(), json!(secret));
        }
        Value::Object(map)
    }
}

#[derive(Debug)]
struct SimState {
    credentials: Vec<(String, String)>,
    document: Document,
}

/// Handle to one Sendblue simulator. Clones share the same document, faults
/// and request log.
#[derive(Debug, Clone)]
pub struct SendblueSim {
    state: Arc<Mutex<SimState>>,
    harness: Harness,
}

simulator!(SendblueSim);

impl SendblueSim {
    /// A simulator accepting the configured key pairs, with an empty document.
    pub fn new(cfg: SendblueConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(SimState {
                credentials: cfg.credentials,
                document: Document::default(),
            })),
            harness: Harness::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The simulator's router, to be served at the host root:
    ///
    /// - `GET|POST|PUT|DELETE` [`V2_PATH`] and [`V1_PATH`] (list, append,
    ///   replace all, delete specific), both on the same document;
    /// - `GET /_sim/sendblue/document` (the full document) and
    ///   `POST /_sim/sendblue/foreign` (`{"type", "url", "secret"?}`, see
    ///   [`SendblueSim::seed_foreign`]);
    /// - `POST /_sim/deliveries` ([`crate::deliveries`]);
    /// - the generic control API of [`Harness::control_routes`].
    ///
    /// Every non-control request is logged and may be faulted.
    pub fn router(&self) -> Router {
        let document = || {
            get(list)
                .post(add)
                .put(replace)
                .delete(remove)
                .fallback(method_not_allowed)
        };
        let api = Router::new()
            .route(V2_PATH, document())
            .route(V1_PATH, document())
            .route_layer(from_fn_with_state(self.clone(), require_keys))
            .with_state(self.clone());
        let control = Router::new()
            .route("/_sim/sendblue/document", get(control_document))
            .route("/_sim/sendblue/foreign", post(control_foreign))
            .with_state(self.clone())
            .merge(crate::deliveries::routes(self.clone()));
        let router = Router::new()
            .merge(api)
            .merge(control)
            .fallback(route_not_found);
        self.harness.wrap(router)
    }

    /// The whole document as List would return it, secrets included.
    pub fn document(&self) -> Value {
        self.lock().document.to_json()
    }

    /// Appends an entry as if another tool had configured it at Sendblue,
    /// without a request (nothing is logged or faulted). `http://` is
    /// upgraded as Sendblue does; nothing else is checked, so tests can
    /// load any type or shape.
    pub fn seed_foreign(&self, webhook_type: &str, url: &str, secret: Option<&str>) {
        let url = upgrade_http(url);
        let item = match secret {
            Some(secret) => Webhook::Object {
                url,
                secret: Some(secret.to_owned()),
                sendblue_numbers: None,
            },
            None => Webhook::Url(url),
        };
        self.lock()
            .document
            .buckets
            .entry(webhook_type.to_owned())
            .or_default()
            .push(item);
    }
}

/// Seed 004's failure shape: `status: "ERROR"` with a `message`.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "status": "ERROR", "message": message.into() })),
    )
        .into_response()
}

fn ok(body: Value) -> Response {
    (StatusCode::OK, Json(body)).into_response()
}

/// An unknown route: 404 in the documented error shape (inferred). The key
/// check is route-scoped, so it answers without credentials.
async fn route_not_found(uri: Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("Route {} not found", uri.path()),
    )
}

/// A documented path with an undocumented method (inferred: 405).
async fn method_not_allowed(request: Request) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {} is not allowed here", request.method()),
    )
}

/// The first non-empty value of any of `names`.
fn header_value<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| {
        let value = headers.get(*name)?.to_str().ok()?.trim();
        (!value.is_empty()).then_some(value)
    })
}

/// Both key headers are required (providers.md §4.1). A missing or unknown
/// pair is 401 in the documented error shape; the messages are inferred.
async fn require_keys(State(sim): State<SendblueSim>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let (Some(key_id), Some(secret_key)) = (
        header_value(headers, &KEY_ID_HEADERS),
        header_value(headers, &SECRET_KEY_HEADERS),
    ) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "Missing API credentials: send the sb-api-key-id and sb-api-secret-key headers",
        );
    };
    let known = sim
        .lock()
        .credentials
        .iter()
        .any(|(id, secret)| id == key_id && secret == secret_key);
    if known {
        next.run(request).await
    } else {
        error(StatusCode::UNAUTHORIZED, "Invalid API credentials")
    }
}

/// The request body as a JSON-body parser would see it: parsed when the
/// request says it is JSON, otherwise empty (and then reported as missing
/// fields). Unparsable JSON or a non-object is a 400 (inferred) with the
/// returned message.
fn request_input(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, &'static str> {
    let is_json = says_json(headers);
    if !is_json || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("Request body must be a JSON object"),
        Err(_) => Err("Invalid JSON body"),
    }
}

/// `http://` becomes `https://`: "Plain http:// URLs are auto-upgraded to
/// HTTPS" (providers.md §4.4). The rest of the URL is stored verbatim.
fn upgrade_http(url: &str) -> String {
    match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => format!("https://{}", &url[7..]),
        _ => url.to_owned(),
    }
}

/// A webhook URL: "HTTPS only", `format: uri` (seed 004). An absolute http
/// or https URL with a host and no whitespace is accepted and upgraded.
fn webhook_url(value: &Value, what: &str) -> Result<String, String> {
    let Some(raw) = value.as_str() else {
        return Err(format!("{what} must be a URL string"));
    };
    let valid = !raw.contains(char::is_whitespace)
        && url::Url::parse(raw).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
    if valid {
        Ok(upgrade_http(raw))
    } else {
        Err(format!("{what} must be a valid HTTPS URL: {raw}"))
    }
}

/// `type`, defaulting to `receive` when absent or null.
fn webhook_type(input: &Map<String, Value>) -> Result<String, String> {
    match input.get("type") {
        None | Some(Value::Null) => Ok(DEFAULT_TYPE.to_owned()),
        Some(Value::String(t)) if WEBHOOK_TYPES.contains(&t.as_str()) => Ok(t.clone()),
        Some(other) => Err(format!(
            "Invalid webhook type: {}. Valid types: {}",
            other,
            WEBHOOK_TYPES.join(", ")
        )),
    }
}

/// One bucket item: a URL string or `{url, secret?, sendblue_numbers?}`.
/// Unknown object keys are refused (inferred; it keeps the simulator strict).
fn webhook_item(webhook_type: &str, value: &Value, what: &str) -> Result<Webhook, String> {
    let Some(object) = value.as_object() else {
        return if value.is_string() {
            webhook_url(value, what).map(Webhook::Url)
        } else {
            Err(format!(
                "{what} must be a URL string or an object with a url"
            ))
        };
    };
    if let Some(key) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "url" | "secret" | "sendblue_numbers"))
    {
        return Err(format!("{what} has an unknown field: {key}"));
    }
    let url = webhook_url(
        object.get("url").unwrap_or(&Value::Null),
        &format!("{what}.url"),
    )?;
    let secret = match object.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(format!("{what}.secret must be a string")),
    };
    let sendblue_numbers = match object.get("sendblue_numbers") {
        None | Some(Value::Null) => None,
        Some(_) if webhook_type != DEFAULT_TYPE => {
            return Err(format!(
                "{what}.sendblue_numbers applies to receive webhooks only"
            ));
        }
        Some(Value::Array(numbers)) if numbers.iter().all(Value::is_string) => Some(
            numbers
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(_) => {
            return Err(format!(
                "{what}.sendblue_numbers must be an array of phone numbers"
            ));
        }
    };
    if webhook_type == URL_ONLY_TYPE {
        if secret.is_some() || sendblue_numbers.is_some() {
            return Err(format!(
                "{what}: {URL_ONLY_TYPE} webhooks accept URL strings only; secrets are not supported"
            ));
        }
        // A `{url}` object says no more than the URL string (inferred).
        return Ok(Webhook::Url(url));
    }
    Ok(Webhook::Object {
        url,
        secret,
        sendblue_numbers,
    })
}

/// A bucket's items. POST requires at least one (inferred: appending nothing
/// is a client mistake); PUT may clear a bucket with `[]`.
fn webhook_items(
    webhook_type: &str,
    value: Option<&Value>,
    what: &str,
    non_empty: bool,
) -> Result<Vec<Webhook>, String> {
    let Some(Value::Array(items)) = value else {
        return Err(format!("{what} must be an array"));
    };
    if non_empty && items.is_empty() {
        return Err(format!("{what} must contain at least one webhook"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| webhook_item(webhook_type, item, &format!("{what}[{i}]")))
        .collect()
}

fn optional_string(input: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match input.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// `GET`: `{status: "OK", webhooks: <configuration>}` (seed 004, list).
async fn list(State(sim): State<SendblueSim>) -> Response {
    ok(json!({ "status": "OK", "webhooks": sim.document() }))
}

/// `POST`: appends to one bucket (`type`, default `receive`) and optionally
/// sets `globalSecret`. The whole request is validated before anything is
/// stored. A URL already in the bucket is appended again: the docs say
/// "Webhooks are appended to existing ones" and document no de-duplication
/// (inferred), so the bucket can hold the same URL twice.
async fn add(State(sim): State<SendblueSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match request_input(&headers, &body) {
        Ok(input) => input,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let parsed = webhook_type(&input).and_then(|webhook_type| {
        let items = webhook_items(&webhook_type, input.get("webhooks"), "webhooks", true)?;
        let global = optional_string(&input, "globalSecret")?;
        Ok((webhook_type, items, global))
    });
    let (webhook_type, items, global) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut state = sim.lock();
    state
        .document
        .buckets
        .entry(webhook_type)
        .or_default()
        .extend(items);
    if global.is_some() {
        state.document.global_secret = global;
    }
    ok(json!({
        "status": "OK",
        "message": "Webhooks added successfully",
        "webhooks": state.document.to_json(),
    }))
}

/// The document a replace-all `PUT` body describes.
fn configuration(input: &Map<String, Value>) -> Result<Document, String> {
    let Some(Value::Object(config)) = input.get("webhooks") else {
        return Err("webhooks must be a webhook configuration object".to_owned());
    };
    let mut document = Document {
        global_secret: optional_string(config, "globalSecret")?,
        legacy_secret: optional_string(config, "secret")?,
        ..Document::default()
    };
    for (key, value) in config {
        if matches!(key.as_str(), "globalSecret" | "secret") || value.is_null() {
            continue;
        }
        if !WEBHOOK_TYPES.contains(&key.as_str()) {
            return Err(format!("Invalid webhook type: {key}"));
        }
        let items = webhook_items(key, Some(value), &format!("webhooks.{key}"), false)?;
        document.buckets.insert(key.clone(), items);
    }
    Ok(document)
}

/// `PUT {webhooks: WebhookConfiguration}`: replaces the whole configuration;
/// every bucket and secret left out is cleared ("completely replaces",
/// providers.md §4.2, inferred for the secrets). Unknown keys are refused.
async fn replace(State(sim): State<SendblueSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match request_input(&headers, &body) {
        Ok(input) => input,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let parsed = configuration(&input);
    let document = match parsed {
        Ok(document) => document,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut state = sim.lock();
    state.document = document;
    ok(json!({
        "status": "OK",
        "message": "Webhooks updated successfully",
        "webhooks": state.document.to_json(),
    }))
}

/// `DELETE {webhooks: [url…], type?}`: removes from one bucket (`type`,
/// default `receive`) every item whose URL equals one given, after the
/// same http→https upgrade as on input (inferred: the stored URL is the
/// upgraded one). URLs that are not there are not an error (inferred: the
/// docs describe no such failure), so deleting twice succeeds.
async fn remove(State(sim): State<SendblueSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match request_input(&headers, &body) {
        Ok(input) => input,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let parsed = webhook_type(&input).and_then(|webhook_type| {
        let Some(Value::Array(items)) = input.get("webhooks") else {
            return Err("webhooks must be an array of URLs".to_owned());
        };
        if items.is_empty() {
            return Err("webhooks must contain at least one URL".to_owned());
        }
        let urls = items
            .iter()
            .enumerate()
            .map(|(i, item)| match item.as_str() {
                Some(url) => Ok(upgrade_http(url)),
                None => Err(format!("webhooks[{i}] must be a URL string")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((webhook_type, urls))
    });
    let (webhook_type, urls) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let mut state = sim.lock();
    if let Some(bucket) = state.document.buckets.get_mut(&webhook_type) {
        bucket.retain(|item| !urls.iter().any(|url| url == item.url()));
    }
    ok(json!({ "status": "OK", "message": "Webhooks deleted successfully" }))
}

async fn control_document(State(sim): State<SendblueSim>) -> Response {
    ok(sim.document())
}

/// Body of `POST /_sim/sendblue/foreign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Foreign {
    #[serde(rename = "type")]
    webhook_type: String,
    url: String,
    secret: Option<String>,
}

async fn control_foreign(State(sim): State<SendblueSim>, Json(body): Json<Foreign>) -> Response {
    if body.webhook_type.trim().is_empty() || body.url.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "type and url must not be empty");
    }
    sim.seed_foreign(&body.webhook_type, &body.url, body.secret.as_deref());
    (StatusCode::CREATED, Json(sim.document())).into_response()
}

/// Deliveries as Sendblue documents them (providers.md §4.4–4.5): to the
/// entry's URL (already upgraded to https), with `sb-signing-secret`
/// carrying the entry's own `secret`, else the account's `globalSecret`,
/// else the legacy `secret` (the precedence is UNKNOWN; per-URL first is
/// inferred), and no header when none is set. No signature, timestamp
/// header or delivery id exists (§4.4). The event is the bucket; the body
/// is the documented `receive` payload or the status callback of the
/// webhooks page for `outbound`, and `{}` for the types whose payloads are
/// UNKNOWN. The method is POST (inferred).
impl Outbox for SendblueSim {
    fn outbound(&self, order: &DeliveryOrder) -> Result<Outbound, Refused> {
        let state = self.lock();
        let document = &state.document;
        let url = upgrade_http(&order.url);
        let registered_in = |bucket: &str| {
            document
                .buckets
                .get(bucket)
                .and_then(|items| items.iter().find(|w| w.url() == url))
        };
        let (bucket, item) = match order.event.as_deref() {
            Some(bucket) => (bucket, registered_in(bucket)),
            None => WEBHOOK_TYPES
                .iter()
                .find_map(|b| registered_in(b).map(|item| (*b, Some(item))))
                .unwrap_or(("", None)),
        };
        let Some(item) = item else {
            return Err(Refused::no_webhook(&order.url));
        };
        let own = match item {
            Webhook::Object { secret, .. } => secret.as_ref(),
            Webhook::Url(_) => None,
        };
        let secret = own
            .or(document.global_secret.as_ref())
            .or(document.legacy_secret.as_ref());
        let headers = match (secret, order.corrupt) {
            (Some(secret), false) => vec![("sb-signing-secret".to_owned(), secret.clone())],
            (Some(secret), true) => vec![("sb-signing-secret".to_owned(), corrupted(secret))],
            (None, true) => return Err(Refused::nothing_to_corrupt()),
            (None, false) => Vec::new(),
        };
        let body = order
            .payload
            .clone()
            .unwrap_or_else(|| example_body(bucket, order));
        Ok(Outbound::json(bucket, url, "POST", headers, &body))
    }
}

/// The documented example body of a bucket (providers.md §4.5), dated by
/// the order.
fn example_body(bucket: &str, order: &DeliveryOrder) -> Value {
    let at = order
        .timestamp_or_now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let handle = crate::wire::uuid_v4().to_ascii_uppercase();
    match bucket {
        "receive" => json!({
            "accountEmail": "demo@example.com", "content": "Hello!", "is_outbound": false,
            "status": "RECEIVED", "error_code": null, "error_message": null,
            "message_handle": handle, "date_sent": at, "date_updated": at,
            "from_number": "+19998887777", "number": "+19998887777", "to_number": "+15122164639",
            "was_downgraded": null, "plan": "dedicated", "media_url": "", "message_type": "message",
            "group_id": "", "participants": ["+19998887777", "+15122164639"], "opted_out": false,
            "sendblue_number": "+15122164639", "service": "iMessage", "group_display_name": null,
        }),
        "outbound" => json!({
            "accountEmail": "demo@example.com", "message_id": handle, "number": "+19998887777",
            "content": "Hello!", "is_outbound": true, "status": "DELIVERED",
            "date_sent": at, "date_updated": at,
        }),
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn http_is_upgraded_and_the_rest_kept() {
        assert_eq!(upgrade_http("http://a.io/x?y=1"), "https://a.io/x?y=1");
        assert_eq!(upgrade_http("HTTP://a.io"), "https://a.io");
        assert_eq!(upgrade_http("https://a.io/"), "https://a.io/");
    }

    #[test]
    fn urls_must_be_absolute_http_or_https() {
        assert_eq!(
            webhook_url(&json!("http://a.io/h"), "w").as_deref(),
            Ok("https://a.io/h")
        );
        for bad in [
            json!("ftp://a.io"),
            json!("a.io/h"),
            json!("https://a.io/a b"),
            json!(5),
        ] {
            assert!(webhook_url(&bad, "w").is_err(), "{bad}");
        }
    }

    #[test]
    fn type_defaults_to_receive_and_must_be_known() {
        assert_eq!(webhook_type(&Map::new()).as_deref(), Ok("receive"));
        assert_eq!(
            webhook_type(&map(json!({"type": "call_log"}))).as_deref(),
            Ok("call_log")
        );
        assert!(webhook_type(&map(json!({"type": "sms"}))).is_err());
        assert!(webhook_type(&map(json!({"type": 3}))).is_err());
    }

    #[test]
    fn contact_created_takes_urls_only() {
        assert!(
            webhook_item(
                "contact_created",
                &json!({"url": "https://a.io", "secret": "s"}),
                "w"
            )
            .is_err()
        );
        assert_eq!(
            webhook_item("contact_created", &json!({"url": "https://a.io"}), "w"),
            Ok(Webhook::Url("https://a.io".into()))
        );
        assert!(
            webhook_item(
                "receive",
                &json!({"url": "https://a.io", "secret": "s"}),
                "w"
            )
            .is_ok()
        );
    }

    #[test]
    fn objects_are_checked_field_by_field() {
        assert!(
            webhook_item(
                "receive",
                &json!({"url": "https://a.io", "sekret": "s"}),
                "w"
            )
            .is_err()
        );
        assert!(webhook_item("receive", &json!({"secret": "s"}), "w").is_err());
        assert!(
            webhook_item("receive", &json!({"url": "https://a.io", "secret": 1}), "w").is_err()
        );
        assert!(
            webhook_item(
                "outbound",
                &json!({"url": "https://a.io", "sendblue_numbers": ["+1"]}),
                "w"
            )
            .is_err()
        );
        assert!(
            webhook_item(
                "receive",
                &json!({"url": "https://a.io", "sendblue_numbers": ["+1"]}),
                "w"
            )
            .is_ok()
        );
        assert!(webhook_items("receive", Some(&json!([])), "webhooks", true).is_err());
        assert!(webhook_items("receive", Some(&json!([])), "webhooks", false).is_ok());
    }

    #[test]
    fn the_document_lists_every_bucket_and_its_secrets() {
        let sim = SendblueSim::new(SendblueConfig::default());
        let doc = sim.document();
        for webhook_type in WEBHOOK_TYPES {
            assert_eq!(doc[webhook_type], json!([]), "{webhook_type}");
        }
        assert!(doc.get("globalSecret").is_none());
        sim.seed_foreign("receive", "http://other.io/h", Some("s3"));
        sim.seed_foreign("outbound", "https://other.io/o", None);
        let doc = sim.document();
        assert_eq!(
            doc["receive"],
            json!([{"url": "https://other.io/h", "secret": "s3"}])
        );
        assert_eq!(doc["outbound"], json!(["https://other.io/o"]));
    }

    #[test]
    fn credentials_headers_and_their_variants() {
        let mut headers = HeaderMap::new();
        assert_eq!(header_value(&headers, &KEY_ID_HEADERS), None);
        headers.insert("x-sb-api-key-id", "k".parse().expect("header"));
        assert_eq!(header_value(&headers, &KEY_ID_HEADERS), Some("k"));
        headers.insert("SB-API-KEY-ID", "k2".parse().expect("header"));
        assert_eq!(header_value(&headers, &KEY_ID_HEADERS), Some("k2"));
        headers.insert("sb-api-secret-key", " ".parse().expect("header"));
        assert_eq!(header_value(&headers, &SECRET_KEY_HEADERS), None);
    }
}
