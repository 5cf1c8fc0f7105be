//! Simulator of the Talkover.ai agent-webhook API.
//!
//! Written only from Talkover's documentation (seed 002, the "Create Webhook"
//! page, and providers.md §2, which summarises the list/get/update/toggle/test
//! pages). It owns the in-memory agents and webhooks, the Laravel-style
//! validation the docs describe, the documented success and error bodies,
//! and a small Talkover-specific control API for tests. Where the docs are
//! silent, the choice made is marked "inferred" next to the code.
//!
//! The API is mounted under [`API_PREFIX`] because the documented base URL is
//! `https://app.talkover.ai/api/v1` (seed 002 examples); the generic control
//! API from [`crate::faults`] and the routes under `/_sim/talkover` sit at the
//! root.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::deliveries::{DeliveryOrder, Outbound, Outbox, Refused, corrupted, pick_event};
use crate::faults::{Harness, is_secret_header};
use crate::wire::{says_json, set_if_sent, uuid_v4};

/// Path prefix of the simulated API, from the documented base URL
/// `https://app.talkover.ai/api/v1`.
pub const API_PREFIX: &str = "/api/v1";

/// Token accepted by [`TalkoverConfig::default`]; Talkover environment tokens
/// start with `talq_` (providers.md §2.1).
pub const DEFAULT_TOKEN: &str = "talq_demo_token";

/// Agent known to [`TalkoverConfig::default`]: the agent UUID used in the
/// seed 002 examples.
pub const DEFAULT_AGENT: &str = "9fbef0b7-8d4e-4a08-9207-66c22155721d";

/// The documented event names (providers.md §2.3, from the List page's
/// `available_events` example, whose public copy stops after these 19) with
/// short descriptions. The names are Talkover's; the descriptions are ours.
pub const AVAILABLE_EVENTS: [(&str, &str); 19] = [
    ("event_phone_call_started", "A phone call started"),
    ("event_phone_call_ended", "A phone call ended"),
    (
        "event_phone_call_did_not_connect",
        "A phone call did not connect",
    ),
    ("event_phone_call_connected", "A phone call connected"),
    ("event_phone_call_disconnected", "A phone call disconnected"),
    (
        "event_phone_call_error",
        "A phone call failed with an error",
    ),
    ("event_participant_joined", "A participant joined the call"),
    ("event_participant_left", "A participant left the call"),
    ("event_voicemail_detected", "Voicemail was detected"),
    (
        "event_voicemail_message_left",
        "A voicemail message was left",
    ),
    ("event_conversation_started", "A conversation started"),
    ("event_conversation_ended", "A conversation ended"),
    ("event_action", "The agent ran an action"),
    ("event_action_failed", "An agent action failed"),
    ("event_recording", "A call recording is available"),
    (
        "event_connection_established",
        "A realtime connection was established",
    ),
    (
        "event_connection_closed",
        "A realtime connection was closed",
    ),
    ("event_connection_error", "A realtime connection failed"),
    ("event_user_connected", "A user connected"),
];

/// Seed 002, field table: `http_method` options.
const HTTP_METHODS: [&str; 3] = ["POST", "PUT", "PATCH"];

/// Seed 002, field table: `authorization_scheme` options.
const AUTHORIZATION_SCHEMES: [&str; 5] = ["none", "bearer", "basic", "api_key", "custom"];

fn is_available_event(name: &str) -> bool {
    AVAILABLE_EVENTS.iter().any(|(event, _)| *event == name)
}

/// What the simulator accepts: the environment tokens and the agents that
/// exist in the environment.
///
/// All tokens see all agents: the simulator models a single environment
/// (providers.md §2.1: resources are scoped to the token's environment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TalkoverConfig {
    /// Accepted `Authorization: Bearer` tokens.
    pub tokens: Vec<String>,
    /// Agent UUIDs that exist.
    pub agents: Vec<String>,
}

impl Default for TalkoverConfig {
    fn default() -> Self {
        Self {
            tokens: vec![DEFAULT_TOKEN.to_owned()],
            agents: vec![DEFAULT_AGENT.to_owned()],
        }
    }
}

/// One `{ "key": …, "value": … }` item of `custom_headers` (seed 002).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CustomHeader {
    key: String,
    value: String,
}

/// A webhook as the simulator stores it, write-only fields included.
#[derive(Debug, Clone, PartialEq)]
struct StoredWebhook {
    id: String,
    agent_id: String,
    name: String,
    webhook_url: String,
    webhook_secret: Option<String>,
    events: Vec<String>,
    timeout: i64,
    max_retries: i64,
    enabled: bool,
    http_method: String,
    authorization_scheme: String,
    custom_headers: Option<Vec<CustomHeader>>,
    payload_templates: Option<Map<String, Value>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `2025-09-03T23:19:51.000000Z`, the format of the seed 002 example.
fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The current time at whole seconds: every documented timestamp has
/// `.000000` microseconds, as a database column without fractional seconds
/// gives (inferred).
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}

impl StoredWebhook {
    /// A webhook with the documented defaults (seed 002: timeout 30,
    /// max_retries 3, enabled true, http_method POST, authorization_scheme
    /// none), to which the validated create request is then applied.
    fn with_defaults(agent_id: String, at: DateTime<Utc>) -> Self {
        Self {
            id: uuid_v4(),
            agent_id,
            name: String::new(),
            webhook_url: String::new(),
            webhook_secret: None,
            events: Vec::new(),
            timeout: 30,
            max_retries: 3,
            enabled: true,
            http_method: "POST".to_owned(),
            authorization_scheme: "none".to_owned(),
            custom_headers: None,
            payload_templates: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// Applies the fields that were sent; returns whether anything changed.
    fn apply(&mut self, changes: Changes) -> bool {
        let before = self.clone();
        set_if_sent(&mut self.name, changes.name);
        set_if_sent(&mut self.webhook_url, changes.webhook_url);
        set_if_sent(&mut self.webhook_secret, changes.webhook_secret);
        set_if_sent(&mut self.events, changes.events);
        set_if_sent(&mut self.timeout, changes.timeout);
        set_if_sent(&mut self.max_retries, changes.max_retries);
        set_if_sent(&mut self.enabled, changes.enabled);
        set_if_sent(&mut self.http_method, changes.http_method);
        set_if_sent(&mut self.authorization_scheme, changes.authorization_scheme);
        set_if_sent(&mut self.custom_headers, changes.custom_headers.map(Some));
        set_if_sent(
            &mut self.payload_templates,
            changes.payload_templates.map(Some),
        );
        *self != before
    }

    /// The webhook object as the API returns it. Seed 002's response lists
    /// exactly these fields; the secret and the delivery settings never
    /// appear in any documented response (providers.md §2.2), so they are
    /// treated as write-only. `events_count` and `status` are derived
    /// (providers.md §2.6).
    fn public_json(&self) -> Value {
        json!({
            "id": self.id,
            "agent_id": self.agent_id,
            "name": self.name,
            "webhook_url": self.webhook_url,
            "events": self.events,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "enabled": self.enabled,
            "created_at": timestamp(self.created_at),
            "updated_at": timestamp(self.updated_at),
            "events_count": self.events.len(),
            "status": if self.enabled { "active" } else { "disabled" },
        })
    }

    /// The public object plus every write-only field, for tests.
    fn full_json(&self) -> Value {
        let mut value = self.public_json();
        if let Value::Object(map) = &mut value {
            map.insert("webhook_secret".into(), json!(self.webhook_secret));
            map.insert("http_method".into(), json!(self.http_method));
            map.insert(
                "authorization_scheme".into(),
                json!(self.authorization_scheme),
            );
            let headers = self.custom_headers.as_ref().map(|headers| {
                headers
                    .iter()
                    .map(|h| json!({ "key": h.key, "value": h.value }))
                    .collect::<Vec<_>>()
            });
            map.insert("custom_headers".into(), json!(headers));
            map.insert("payload_templates".into(), json!(self.payload_templates));
        }
        value
    }
}

#[derive(Debug)]
struct SimState {
    tokens: Vec<String>,
    agents: BTreeSet<String>,
    /// All webhooks in creation order; List returns an agent's in this order.
    webhooks: Vec<StoredWebhook>,
}

/// Handle to one Talkover simulator. Clones share the same state, faults
/// and request log.
#[derive(Debug, Clone)]
pub struct TalkoverSim {
    state: Arc<Mutex<SimState>>,
    harness: Harness,
}

simulator!(TalkoverSim);

impl TalkoverSim {
    /// A simulator with the configured tokens and agents and no webhooks.
    pub fn new(cfg: TalkoverConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(SimState {
                tokens: cfg.tokens,
                agents: cfg.agents.into_iter().collect(),
                webhooks: Vec::new(),
            })),
            harness: Harness::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The simulator's router:
    ///
    /// - under [`API_PREFIX`]: `GET|POST /agents/{agent_id}/webhooks`,
    ///   `GET|PUT|DELETE /agents/{agent_id}/webhooks/{webhook_id}`,
    ///   `PATCH …/{webhook_id}/toggle`, `POST …/{webhook_id}/test`;
    /// - `GET /_sim/talkover/agents/{agent_id}/webhooks` (stored objects with
    ///   write-only fields) and `POST /_sim/talkover/agents` (`{"id": "…"}`);
    /// - `POST /_sim/deliveries` ([`crate::deliveries`]);
    /// - the generic control API of [`Harness::control_routes`].
    ///
    /// Every non-control request is logged and may be faulted.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/agents/{agent_id}/webhooks", get(list).post(create))
            .route(
                "/agents/{agent_id}/webhooks/{webhook_id}",
                get(show).put(update).delete(destroy),
            )
            .route(
                "/agents/{agent_id}/webhooks/{webhook_id}/toggle",
                patch(toggle),
            )
            .route("/agents/{agent_id}/webhooks/{webhook_id}/test", post(test))
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(from_fn_with_state(self.clone(), require_token))
            .with_state(self.clone());
        let control = Router::new()
            .route("/_sim/talkover/agents", post(control_add_agent))
            .route(
                "/_sim/talkover/agents/{agent_id}/webhooks",
                get(control_webhooks),
            )
            .with_state(self.clone())
            .merge(crate::deliveries::routes(self.clone()));
        let router = Router::new()
            .nest(API_PREFIX, api)
            .merge(control)
            .fallback(route_not_found);
        self.harness.wrap(router)
    }

    /// Every stored webhook of `agent_id`, in creation order, as JSON objects
    /// that include the write-only fields (`webhook_secret`, `http_method`,
    /// `authorization_scheme`, `custom_headers`, `payload_templates`).
    /// Empty for an unknown agent.
    pub fn webhooks(&self, agent_id: &str) -> Vec<Value> {
        self.lock()
            .webhooks
            .iter()
            .filter(|w| w.agent_id == agent_id)
            .map(StoredWebhook::full_json)
            .collect()
    }

    /// Makes `id` a known agent (idempotent).
    pub fn add_agent(&self, id: impl Into<String>) {
        self.lock().agents.insert(id.into());
    }
}

fn message(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Seed 002, "404 Not Found".
fn agent_not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        json!({ "success": false, "message": "Agent not found in this environment." }),
    )
}

/// providers.md §2.2 errors (test page).
fn webhook_not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        json!({ "success": false, "message": "Webhook not found." }),
    )
}

/// Seed 002, "422 Validation Error". The top-level message is the documented
/// one rather than newer Laravel's "first error (and N more errors)".
fn invalid(errors: FieldErrors) -> Response {
    message(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({ "message": "The given data was invalid.", "errors": errors }),
    )
}

/// Laravel's 404 for an unknown route (inferred: the API is Laravel, going by
/// its validation bodies). The route layer is not involved, so unknown routes
/// answer 404 even without a token, as route-scoped auth middleware would.
async fn route_not_found(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    message(
        StatusCode::NOT_FOUND,
        json!({ "message": format!("The route {path} could not be found.") }),
    )
}

/// Laravel's 405 body (inferred, as for [`route_not_found`]).
async fn method_not_allowed(request: Request) -> Response {
    let path = request.uri().path().trim_start_matches('/');
    let method = request.method().as_str();
    message(
        StatusCode::METHOD_NOT_ALLOWED,
        json!({ "message": format!("The {method} method is not supported for route {path}.") }),
    )
}

/// The token Laravel's `Request::bearerToken()` would see: the text after
/// `Bearer ` (case-sensitive, as there), up to any comma.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    let token = token.split(',').next().unwrap_or(token).trim();
    (!token.is_empty()).then_some(token)
}

/// Auth for every API route (providers.md §2.1: `Authorization: Bearer
/// talq_…`). A missing token gets the documented body (seed 002, "401
/// Unauthorized"); an unknown token gets Laravel's default `Unauthenticated.`
/// (inferred, the docs show only the missing-token case). Both are 401.
async fn require_token(State(sim): State<TalkoverSim>, request: Request, next: Next) -> Response {
    let verdict = match bearer_token(request.headers()) {
        None => Some("Missing Bearer Token"),
        Some(token) if !sim.lock().tokens.iter().any(|t| t == token) => Some("Unauthenticated."),
        Some(_) => None,
    };
    match verdict {
        Some(text) => message(StatusCode::UNAUTHORIZED, json!({ "message": text })),
        None => next.run(request).await,
    }
}

/// The request input as Laravel would see it: the decoded JSON object when
/// the request says it is JSON (`Content-Type` containing `/json` or
/// `+json`), otherwise nothing. Unparsable JSON, or JSON that is not an
/// object, is also treated as empty input, which Laravel then reports as
/// missing required fields (inferred from Laravel's behaviour).
fn request_input(headers: &HeaderMap, body: &Bytes) -> Map<String, Value> {
    let is_json = says_json(headers);
    if !is_json {
        return Map::new();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Validation errors keyed by field path (`events.0`), Laravel style.
type FieldErrors = BTreeMap<String, Vec<String>>;

fn add_error(errors: &mut FieldErrors, field: &str, text: String) {
    errors.entry(field.to_owned()).or_default().push(text);
}

/// Records `text` for `field`, whose value is then unusable (`None`).
fn field_error<T>(errors: &mut FieldErrors, field: &str, text: String) -> Option<T> {
    add_error(errors, field, text);
    None
}

/// Laravel's displayable attribute name: underscores become spaces
/// (`webhook_url` → "webhook url", seed 002's example message).
fn attr(field: &str) -> String {
    field.replace('_', " ")
}

/// Laravel's `required`: null, a blank string or an empty array fail.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Whether validation runs for a create (required fields must be present)
/// or an update (every field optional, providers.md §2.2: "all optional; only
/// the fields you send change", but a present field gets the same rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// The validated fields that were sent. `None` means "not sent".
#[derive(Debug, Default)]
struct Changes {
    name: Option<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<Option<String>>,
    events: Option<Vec<String>>,
    timeout: Option<i64>,
    max_retries: Option<i64>,
    enabled: Option<bool>,
    http_method: Option<String>,
    authorization_scheme: Option<String>,
    custom_headers: Option<Vec<CustomHeader>>,
    payload_templates: Option<Map<String, Value>>,
}

/// `required|string|max:N`; in update mode `required` applies only when
/// the field is sent. Lengths are in characters, as PHP's `mb_strlen`.
fn required_string(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
    field: &str,
    max: usize,
    mode: Mode,
) -> Option<String> {
    let value = match input.get(field) {
        None if mode == Mode::Create => {
            return field_error(
                errors,
                field,
                format!("The {} field is required.", attr(field)),
            );
        }
        None => return None,
        Some(value) => value,
    };
    if is_blank(value) {
        return field_error(
            errors,
            field,
            format!("The {} field is required.", attr(field)),
        );
    }
    let Value::String(text) = value else {
        return field_error(
            errors,
            field,
            format!("The {} field must be a string.", attr(field)),
        );
    };
    let mut ok = true;
    if field == "webhook_url" && !is_valid_url(text) {
        add_error(
            errors,
            field,
            format!("The {} field must be a valid URL.", attr(field)),
        );
        ok = false;
    }
    if text.chars().count() > max {
        add_error(
            errors,
            field,
            format!(
                "The {} field must not be greater than {max} characters.",
                attr(field)
            ),
        );
        ok = false;
    }
    ok.then(|| text.clone())
}

/// Seed 002: "must be valid URL". Taken as an absolute `http`/`https` URL
/// with a host, written out with `://` and without whitespace, which is what
/// Laravel's `url` rule accepts for web URLs; the `url` crate alone would
/// also accept `https:example.com` or trim surrounding spaces. Whether HTTPS
/// is enforced is unknown (providers.md §2.2), so plain `http` is allowed.
fn is_valid_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return false;
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    match url::Url::parse(text) {
        Ok(url) => {
            matches!(url.scheme(), "http" | "https")
                && url.host_str().is_some_and(|host| !host.is_empty())
        }
        Err(_) => false,
    }
}

/// `integer|between:min,max`. Only JSON integers count as integers: the docs
/// type these fields `integer`, and accepting `"30"` (which Laravel's rule
/// would) would hide an adapter sending the wrong type.
fn integer_between(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
    field: &str,
    min: i64,
    max: i64,
) -> Option<i64> {
    let value = input.get(field)?;
    let Value::Number(number) = value else {
        return field_error(
            errors,
            field,
            format!("The {} field must be an integer.", attr(field)),
        );
    };
    if !(number.is_i64() || number.is_u64()) {
        return field_error(
            errors,
            field,
            format!("The {} field must be an integer.", attr(field)),
        );
    }
    match number.as_i64() {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => field_error(
            errors,
            field,
            format!("The {} field must be between {min} and {max}.", attr(field)),
        ),
    }
}

/// `in:…` over strings; the comparison is exact, so `post` is not `POST`.
fn one_of(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
    field: &str,
    options: &[&str],
) -> Option<String> {
    let value = input.get(field)?;
    match value.as_str() {
        Some(text) if options.contains(&text) => Some(text.to_owned()),
        _ => field_error(
            errors,
            field,
            format!("The selected {} is invalid.", attr(field)),
        ),
    }
}

/// Seed 002: `events` is required, an array of at least one event, each from
/// `available_events`. An empty array gets the documented "must contain at
/// least 1 items" message (seed 002's 422 example) rather than Laravel's
/// `required` message for empty arrays. Duplicates are not rejected: no
/// `distinct` rule is documented.
fn events_field(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
    mode: Mode,
) -> Option<Vec<String>> {
    let value = match input.get("events") {
        None if mode == Mode::Create => {
            return field_error(errors, "events", "The events field is required.".into());
        }
        None => return None,
        Some(value) => value,
    };
    match value {
        Value::Array(items) if items.is_empty() => field_error(
            errors,
            "events",
            "The events field must contain at least 1 items.".into(),
        ),
        Value::Array(items) => {
            let mut events = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, item) in items.iter().enumerate() {
                match item.as_str() {
                    Some(name) if is_available_event(name) => events.push(name.to_owned()),
                    _ => {
                        let field = format!("events.{i}");
                        add_error(errors, &field, format!("The selected {field} is invalid."));
                        ok = false;
                    }
                }
            }
            ok.then_some(events)
        }
        other if is_blank(other) => {
            field_error(errors, "events", "The events field is required.".into())
        }
        _ => field_error(
            errors,
            "events",
            "The events field must be an array.".into(),
        ),
    }
}

/// Seed 002: optional secret, max 255. `null` and `""` clear it (Laravel's
/// default middleware turns `""` into `null`; the rule is taken as nullable).
fn secret_field(errors: &mut FieldErrors, input: &Map<String, Value>) -> Option<Option<String>> {
    match input.get("webhook_secret")? {
        Value::Null => Some(None),
        Value::String(text) if text.is_empty() => Some(None),
        Value::String(text) if text.chars().count() > 255 => field_error(
            errors,
            "webhook_secret",
            "The webhook secret field must not be greater than 255 characters.".into(),
        ),
        Value::String(text) => Some(Some(text.clone())),
        _ => field_error(
            errors,
            "webhook_secret",
            "The webhook secret field must be a string.".into(),
        ),
    }
}

/// Seed 002: an array of `{ "key": "Header-Name", "value": "header-value" }`.
/// `key` is required and non-blank, `value` must be present and a string
/// (inferred: an empty value is allowed). Extra item fields are ignored, as
/// Laravel ignores unvalidated input. The list replaces any earlier one.
fn custom_headers_field(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
) -> Option<Vec<CustomHeader>> {
    let value = input.get("custom_headers")?;
    let Value::Array(items) = value else {
        return field_error(
            errors,
            "custom_headers",
            "The custom headers field must be an array.".into(),
        );
    };
    let mut headers = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(item) = item else {
            add_error(
                errors,
                &format!("custom_headers.{i}"),
                format!("The custom headers.{i} field must be an object."),
            );
            ok = false;
            continue;
        };
        let key = match item.get("key") {
            Some(Value::String(key)) if !key.trim().is_empty() => Some(key.clone()),
            Some(v) if !is_blank(v) => field_error(
                errors,
                &format!("custom_headers.{i}.key"),
                format!("The custom headers.{i}.key field must be a string."),
            ),
            _ => field_error(
                errors,
                &format!("custom_headers.{i}.key"),
                format!("The custom headers.{i}.key field is required."),
            ),
        };
        let header_value = match item.get("value") {
            Some(Value::String(value)) => Some(value.clone()),
            Some(_) => field_error(
                errors,
                &format!("custom_headers.{i}.value"),
                format!("The custom headers.{i}.value field must be a string."),
            ),
            None => field_error(
                errors,
                &format!("custom_headers.{i}.value"),
                format!("The custom headers.{i}.value field must be present."),
            ),
        };
        match (key, header_value) {
            (Some(key), Some(value)) => headers.push(CustomHeader { key, value }),
            _ => ok = false,
        }
    }
    ok.then_some(headers)
}

/// Seed 002: "Keys are event names; values are template objects". Keys must
/// be available events and values JSON objects; the wording of these two
/// messages is ours (no documented message). The map replaces any earlier one.
fn payload_templates_field(
    errors: &mut FieldErrors,
    input: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let value = input.get("payload_templates")?;
    let Value::Object(templates) = value else {
        return field_error(
            errors,
            "payload_templates",
            "The payload templates field must be an object.".into(),
        );
    };
    let mut ok = true;
    for (event, template) in templates {
        if !is_available_event(event) {
            add_error(
                errors,
                "payload_templates",
                format!("The payload templates field contains an unknown event: {event}."),
            );
            ok = false;
        } else if !template.is_object() {
            add_error(
                errors,
                &format!("payload_templates.{event}"),
                format!("The payload templates.{event} field must be an object."),
            );
            ok = false;
        }
    }
    ok.then(|| templates.clone())
}

/// Validates the whole input at once, collecting every field's errors as
/// Laravel does. Fields not in the table of seed 002 are ignored silently,
/// as Laravel ignores unvalidated input; so are the response-only
/// `events_count` and `status`.
fn validate(input: &Map<String, Value>, mode: Mode) -> Result<Changes, FieldErrors> {
    let mut errors = FieldErrors::new();
    let changes = Changes {
        name: required_string(&mut errors, input, "name", 255, mode),
        webhook_url: required_string(&mut errors, input, "webhook_url", 500, mode),
        webhook_secret: secret_field(&mut errors, input),
        events: events_field(&mut errors, input, mode),
        timeout: integer_between(&mut errors, input, "timeout", 5, 120),
        max_retries: integer_between(&mut errors, input, "max_retries", 0, 10),
        enabled: match input.get("enabled") {
            None => None,
            Some(Value::Bool(enabled)) => Some(*enabled),
            Some(_) => field_error(
                &mut errors,
                "enabled",
                "The enabled field must be true or false.".into(),
            ),
        },
        http_method: one_of(&mut errors, input, "http_method", &HTTP_METHODS),
        authorization_scheme: one_of(
            &mut errors,
            input,
            "authorization_scheme",
            &AUTHORIZATION_SCHEMES,
        ),
        custom_headers: custom_headers_field(&mut errors, input),
        payload_templates: payload_templates_field(&mut errors, input),
    };
    if errors.is_empty() {
        Ok(changes)
    } else {
        Err(errors)
    }
}

/// Which lookup failed; kept small so `Result`s carrying it stay cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotFound {
    Agent,
    Webhook,
}

impl IntoResponse for NotFound {
    fn into_response(self) -> Response {
        match self {
            Self::Agent => agent_not_found(),
            Self::Webhook => webhook_not_found(),
        }
    }
}

/// Checks run in this order for every webhook route: token (route layer),
/// agent, webhook, then input. The docs do not say whether validation comes
/// before the agent lookup; looking the agent up first is inferred. A
/// webhook of another agent is "not found", as the path scopes it.
fn find_webhook<'a>(
    state: &'a mut SimState,
    agent_id: &str,
    webhook_id: &str,
) -> Result<&'a mut StoredWebhook, NotFound> {
    if !state.agents.contains(agent_id) {
        return Err(NotFound::Agent);
    }
    state
        .webhooks
        .iter_mut()
        .find(|w| w.id == webhook_id && w.agent_id == agent_id)
        .ok_or(NotFound::Webhook)
}

async fn list(State(sim): State<TalkoverSim>, Path(agent_id): Path<String>) -> Response {
    let state = sim.lock();
    if !state.agents.contains(&agent_id) {
        return agent_not_found();
    }
    let webhooks: Vec<Value> = state
        .webhooks
        .iter()
        .filter(|w| w.agent_id == agent_id)
        .map(StoredWebhook::public_json)
        .collect();
    let available: Map<String, Value> = AVAILABLE_EVENTS
        .iter()
        .map(|(name, description)| ((*name).to_owned(), json!(description)))
        .collect();
    message(
        StatusCode::OK,
        json!({
            "success": true,
            "data": { "webhooks": webhooks, "available_events": available },
        }),
    )
}

/// The success status of Create is not documented; 201 Created is inferred
/// (a Laravel resource-creating action), so clients must accept any 2xx.
async fn create(
    State(sim): State<TalkoverSim>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let input = request_input(&headers, &body);
    let mut state = sim.lock();
    if !state.agents.contains(&agent_id) {
        return agent_not_found();
    }
    let changes = match validate(&input, Mode::Create) {
        Ok(changes) => changes,
        Err(errors) => return invalid(errors),
    };
    let mut webhook = StoredWebhook::with_defaults(agent_id, now());
    webhook.apply(changes);
    let data = webhook.public_json();
    state.webhooks.push(webhook);
    message(
        StatusCode::CREATED,
        json!({ "success": true, "message": "Webhook created successfully", "data": data }),
    )
}

async fn show(
    State(sim): State<TalkoverSim>,
    Path((agent_id, webhook_id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    match find_webhook(&mut state, &agent_id, &webhook_id) {
        Ok(webhook) => message(
            StatusCode::OK,
            json!({ "success": true, "data": webhook.public_json() }),
        ),
        Err(missing) => missing.into_response(),
    }
}

/// PUT is a partial update (providers.md §2.2/§2.6). `updated_at` moves only
/// when a value actually changed, as an Eloquent save of a clean model does
/// not touch it (inferred).
async fn update(
    State(sim): State<TalkoverSim>,
    Path((agent_id, webhook_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let input = request_input(&headers, &body);
    let mut state = sim.lock();
    let webhook = match find_webhook(&mut state, &agent_id, &webhook_id) {
        Ok(webhook) => webhook,
        Err(missing) => return missing.into_response(),
    };
    let changes = match validate(&input, Mode::Update) {
        Ok(changes) => changes,
        Err(errors) => return invalid(errors),
    };
    if webhook.apply(changes) {
        webhook.updated_at = now();
    }
    message(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Webhook updated successfully",
            "data": webhook.public_json(),
        }),
    )
}

/// Flips `enabled`; not idempotent by design (providers.md §2.6). Any body
/// is ignored: the endpoint documents none.
async fn toggle(
    State(sim): State<TalkoverSim>,
    Path((agent_id, webhook_id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    let webhook = match find_webhook(&mut state, &agent_id, &webhook_id) {
        Ok(webhook) => webhook,
        Err(missing) => return missing.into_response(),
    };
    webhook.enabled = !webhook.enabled;
    webhook.updated_at = now();
    let text = if webhook.enabled {
        "Webhook enabled"
    } else {
        "Webhook disabled"
    };
    message(
        StatusCode::OK,
        json!({ "success": true, "message": text, "data": webhook.public_json() }),
    )
}

/// Reports a successful test delivery without calling out: the simulator
/// must not make network requests. `response_time` is in milliseconds
/// (providers.md §2.2) and random so clients do not depend on a value.
async fn test(
    State(sim): State<TalkoverSim>,
    Path((agent_id, webhook_id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    if let Err(missing) = find_webhook(&mut state, &agent_id, &webhook_id) {
        return missing.into_response();
    }
    let response_time: u32 = rand::random_range(20..=250);
    message(
        StatusCode::OK,
        json!({
            "success": true,
            "message": "Test webhook sent successfully",
            "data": { "status_code": 200, "response_time": response_time },
        }),
    )
}

/// The Delete page was not found (providers.md §2.2): the path
/// `DELETE /agents/{agent_id}/webhooks/{webhook_id}` and this body follow the
/// other endpoints by analogy (inferred).
async fn destroy(
    State(sim): State<TalkoverSim>,
    Path((agent_id, webhook_id)): Path<(String, String)>,
) -> Response {
    let mut state = sim.lock();
    if let Err(missing) = find_webhook(&mut state, &agent_id, &webhook_id) {
        return missing.into_response();
    }
    state
        .webhooks
        .retain(|w| !(w.id == webhook_id && w.agent_id == agent_id));
    message(
        StatusCode::OK,
        json!({ "success": true, "message": "Webhook deleted successfully" }),
    )
}

/// Body of `POST /_sim/talkover/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddAgent {
    id: String,
}

async fn control_add_agent(State(sim): State<TalkoverSim>, Json(body): Json<AddAgent>) -> Response {
    if body.id.trim().is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            json!({ "message": "id must not be empty" }),
        );
    }
    sim.add_agent(body.id.clone());
    message(StatusCode::CREATED, json!({ "id": body.id }))
}

async fn control_webhooks(
    State(sim): State<TalkoverSim>,
    Path(agent_id): Path<String>,
) -> Response {
    if !sim.lock().agents.contains(&agent_id) {
        return message(
            StatusCode::NOT_FOUND,
            json!({ "message": format!("unknown agent {agent_id}") }),
        );
    }
    message(StatusCode::OK, json!(sim.webhooks(&agent_id)))
}

/// Deliveries as Talkover documents them (providers.md §2.4–2.5): to the
/// webhook's `webhook_url` with its `http_method` and `timeout`, carrying
/// its `custom_headers`, which is where the credential of an
/// `authorization_scheme` goes (the dedicated fields are UNKNOWN, §2.2,
/// inferred). The HMAC signature of `webhook_secret` is not sent: its
/// header name and construction are UNKNOWN (§2.4). The body follows the
/// documented test payload's envelope (`event`, `agent_id`, `webhook_id`,
/// `webhook_name`, `timestamp`; §2.5) without `test`; `payload_templates`
/// are not applied (their interpolation is undocumented).
impl Outbox for TalkoverSim {
    fn outbound(&self, order: &DeliveryOrder) -> Result<Outbound, Refused> {
        let state = self.lock();
        let webhook = state
            .webhooks
            .iter()
            .find(|w| w.webhook_url == order.url)
            .ok_or_else(|| Refused::no_webhook(&order.url))?;
        if !webhook.enabled {
            return Err(Refused::disabled());
        }
        let subscribed: Vec<&str> = webhook.events.iter().map(String::as_str).collect();
        let event = pick_event(&subscribed, order.event.as_deref())?;
        let mut headers: Vec<(String, String)> = webhook
            .custom_headers
            .iter()
            .flatten()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect();
        if order.corrupt {
            let mut credentials = headers
                .iter_mut()
                .filter(|(k, _)| is_secret_header(&k.to_ascii_lowercase()))
                .peekable();
            if credentials.peek().is_none() {
                return Err(Refused::nothing_to_corrupt());
            }
            for (_, value) in credentials {
                *value = corrupted(value);
            }
        }
        let body = order.payload.clone().unwrap_or_else(|| {
            json!({
                "event": event,
                "agent_id": webhook.agent_id,
                "webhook_id": webhook.id,
                "webhook_name": webhook.name,
                "timestamp": order.timestamp_or_now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            })
        });
        let mut out = Outbound::json(event, &order.url, &webhook.http_method, headers, &body);
        out.timeout = std::time::Duration::from_secs(webhook.timeout.unsigned_abs());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::header::CONTENT_TYPE;

    use super::*;

    fn input(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn valid_create() -> Value {
        json!({
            "name": "My Webhook",
            "webhook_url": "https://example.com/webhook",
            "events": ["event_phone_call_started"],
        })
    }

    #[test]
    fn uuid_is_version_4() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(
            parts[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
    }

    #[test]
    fn timestamps_have_microseconds_and_z() {
        let at = DateTime::parse_from_rfc3339("2025-09-03T23:19:51Z")
            .expect("literal timestamp")
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2025-09-03T23:19:51.000000Z");
    }

    #[test]
    fn urls() {
        assert!(is_valid_url("https://example.com/webhook"));
        assert!(is_valid_url("http://localhost:8080/x?y=1"));
        assert!(!is_valid_url("https:example.com"));
        assert!(!is_valid_url("ftp://example.com"));
        assert!(!is_valid_url(" https://example.com"));
        assert!(!is_valid_url("https://exa mple.com"));
        assert!(!is_valid_url("example.com/webhook"));
        assert!(!is_valid_url("https://"));
    }

    #[test]
    fn create_requires_fields() {
        let errors = validate(&Map::new(), Mode::Create).expect_err("empty input is invalid");
        assert_eq!(errors["name"], ["The name field is required."]);
        assert_eq!(
            errors["webhook_url"],
            ["The webhook url field is required."]
        );
        assert_eq!(errors["events"], ["The events field is required."]);
        assert!(validate(&Map::new(), Mode::Update).is_ok());
    }

    #[test]
    fn documented_422_example() {
        let errors = validate(&input(json!({ "name": "x", "events": [] })), Mode::Create)
            .expect_err("invalid");
        assert_eq!(
            json!(errors),
            json!({
                "webhook_url": ["The webhook url field is required."],
                "events": ["The events field must contain at least 1 items."],
            })
        );
    }

    #[test]
    fn wrong_types() {
        let errors = validate(
            &input(json!({
                "name": 5,
                "webhook_url": "https://example.com",
                "events": "event_action",
                "timeout": "30",
                "max_retries": 1.5,
                "enabled": "true",
                "http_method": "post",
                "authorization_scheme": "oauth",
                "webhook_secret": 7,
                "custom_headers": [{ "key": "", "value": 1 }, "x"],
                "payload_templates": { "nope": {}, "event_action": "s" },
            })),
            Mode::Create,
        )
        .expect_err("invalid");
        assert_eq!(errors["name"], ["The name field must be a string."]);
        assert_eq!(errors["events"], ["The events field must be an array."]);
        assert_eq!(errors["timeout"], ["The timeout field must be an integer."]);
        assert_eq!(
            errors["max_retries"],
            ["The max retries field must be an integer."]
        );
        assert_eq!(
            errors["enabled"],
            ["The enabled field must be true or false."]
        );
        assert_eq!(
            errors["http_method"],
            ["The selected http method is invalid."]
        );
        assert_eq!(
            errors["authorization_scheme"],
            ["The selected authorization scheme is invalid."]
        );
        assert_eq!(
            errors["webhook_secret"],
            ["The webhook secret field must be a string."]
        );
        assert_eq!(
            errors["custom_headers.0.key"],
            ["The custom headers.0.key field is required."]
        );
        assert_eq!(
            errors["custom_headers.0.value"],
            ["The custom headers.0.value field must be a string."]
        );
        assert_eq!(
            errors["custom_headers.1"],
            ["The custom headers.1 field must be an object."]
        );
        assert_eq!(
            errors["payload_templates"],
            ["The payload templates field contains an unknown event: nope."]
        );
        assert_eq!(
            errors["payload_templates.event_action"],
            ["The payload templates.event_action field must be an object."]
        );
        assert!(!errors.contains_key("webhook_url"));
    }

    #[test]
    fn limits_are_inclusive_and_in_characters() {
        let mut ok = input(valid_create());
        ok.insert("name".into(), json!("é".repeat(255)));
        ok.insert("timeout".into(), json!(120));
        ok.insert("max_retries".into(), json!(0));
        ok.insert("webhook_secret".into(), json!("s".repeat(255)));
        assert!(validate(&ok, Mode::Create).is_ok());

        let mut bad = input(valid_create());
        bad.insert("name".into(), json!("é".repeat(256)));
        bad.insert("timeout".into(), json!(4));
        bad.insert("max_retries".into(), json!(11));
        bad.insert("webhook_secret".into(), json!("s".repeat(256)));
        let errors = validate(&bad, Mode::Create).expect_err("invalid");
        assert_eq!(
            errors["name"],
            ["The name field must not be greater than 255 characters."]
        );
        assert_eq!(
            errors["timeout"],
            ["The timeout field must be between 5 and 120."]
        );
        assert_eq!(
            errors["max_retries"],
            ["The max retries field must be between 0 and 10."]
        );
        assert!(errors.contains_key("webhook_secret"));
    }

    #[test]
    fn update_rejects_present_blank_required_fields() {
        let errors = validate(&input(json!({ "name": " ", "events": null })), Mode::Update)
            .expect_err("invalid");
        assert_eq!(errors["name"], ["The name field is required."]);
        assert_eq!(errors["events"], ["The events field is required."]);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut map = input(valid_create());
        map.insert("status".into(), json!("whatever"));
        map.insert("surprise".into(), json!([1, 2]));
        assert!(validate(&map, Mode::Create).is_ok());
    }

    #[test]
    fn bearer_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer talq_x".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("talq_x"));
        headers.insert(AUTHORIZATION, "bearer talq_x".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn input_needs_json_content_type() {
        let body = Bytes::from_static(br#"{"name":"x"}"#);
        let mut headers = HeaderMap::new();
        assert!(request_input(&headers, &body).is_empty());
        headers.insert(
            CONTENT_TYPE,
            "application/json; charset=utf-8".parse().expect("header"),
        );
        assert_eq!(request_input(&headers, &body).len(), 1);
        assert!(request_input(&headers, &Bytes::from_static(b"{nope")).is_empty());
        assert!(request_input(&headers, &Bytes::from_static(b"[1]")).is_empty());
    }
}
