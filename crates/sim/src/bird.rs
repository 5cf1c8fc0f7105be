//! Simulator of Bird's AccessKey notifications API: webhook subscriptions
//! of a workspace.
//!
//! Written only from Bird's documentation (seed 003, "Create a webhook
//! subscription", and providers.md §3, which summarises the list, get,
//! update, available-webhooks and overview pages). It owns the in-memory
//! workspaces and subscriptions, the create and update schemas
//! (`additionalProperties: false`, the URL pattern, the service enum), the
//! one-event-per-subscription model, the limit of five subscriptions per
//! event and filter combination, pagination with `limit`/`pageToken`, the
//! event discovery endpoint, and a small Bird-specific control API for
//! tests. Where the docs are silent the choice made is marked "inferred"
//! next to the code.
//!
//! Bird's base URL is `https://api.bird.com` and its paths start at
//! `/workspaces/…`, optionally under `/organizations/{organizationId}`
//! (providers.md §3.1), so the API sits at the root ([`API_PREFIX`] is
//! empty), beside the generic control API from [`crate::faults`] and the
//! routes under `/_sim/bird`.
//!
//! Error bodies: Bird says errors come with a JSON body "that tells you
//! exactly what went wrong" but their fields are unknown (providers.md
//! §3.2). The shape used here is inferred: `{"code": "<Name>", "message":
//! "<text>"}`, plus `"details": {"<field>": ["<text>", …]}` for validation
//! errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::deliveries::{DeliveryOrder, Outbound, Outbox, Refused, corrupted};
use crate::faults::Harness;
use crate::wire::{says_json, set_if_sent, uuid_v4};

/// Path prefix of the simulated API: none, as Bird's paths start at the host
/// root (`https://api.bird.com/workspaces/…`).
pub const API_PREFIX: &str = "";

/// Access key accepted by [`BirdConfig::default`].
pub const DEFAULT_ACCESS_KEY: &str = "bird_demo_key";

/// Workspace known to [`BirdConfig::default`].
pub const DEFAULT_WORKSPACE: &str = "2f4a7c1e-8b5d-4e6f-9a0b-1c2d3e4f5a6b";

/// Organization of [`BirdConfig::default`]: the `organizationId` of the
/// seed 003 example.
pub const DEFAULT_ORGANIZATION: &str = "cb28a94e-8557-4394-80ea-5bbd2170d434";

/// The `url` pattern of the create and update schemas (seed 003).
pub const URL_PATTERN: &str = r"^https://([a-zA-Z0-9-]+\.)+[a-zA-Z]{2,}(/[^\s]*)?$";

/// The `service` enum (providers.md §3.2, create page).
pub const SERVICES: [&str; 4] = ["channels", "numbers", "payments", "conversations"];

/// Subscriptions allowed per event and filter combination (providers.md
/// §3.6, Bird's overview: "up to five subscriptions for the same filter
/// combination").
pub const MAX_PER_COMBINATION: usize = 5;

/// List's default `limit` (providers.md §3.2: 1–100, default 10).
pub const DEFAULT_LIMIT: usize = 10;
/// Largest `limit` List accepts.
pub const MAX_LIMIT: usize = 100;
/// Longest `pageToken` List accepts (providers.md §3.2).
pub const MAX_PAGE_TOKEN_LEN: usize = 8000;

/// Filter keys of the channels service (providers.md §3.3, overview table).
const CHANNEL_FILTER_KEYS: &[&str] = &[
    "channelId",
    "messageStatus",
    "interactionType",
    "platformId",
    "channelStatus",
    "status",
];

/// Channel events: the documented ones (`sms.outbound`, `email.interaction`,
/// `channel.created`, `whatsapp.inbound`/`outbound`, `voice.inbound`) and
/// those providers.md §3.3 infers from the `<platform>.<kind>` pattern.
const CHANNEL_EVENTS: &[&str] = &[
    "sms.inbound",
    "sms.outbound",
    "sms.interaction",
    "email.inbound",
    "email.outbound",
    "email.interaction",
    "whatsapp.inbound",
    "whatsapp.outbound",
    "whatsapp.interaction",
    "voice.inbound",
    "channel.created",
    "channel.updated",
];

/// Conversation events (providers.md §3.3, conversations events page).
const CONVERSATION_EVENTS: &[&str] = &[
    "conversation.created",
    "conversation.updated",
    "conversation.deleted",
];

/// What `available-webhooks` reports per service, and therefore what create
/// accepts (providers.md §3.3 calls that endpoint authoritative). The
/// numbers and payments event names are not public, so those services list
/// no events here and refuse every subscription (inferred). Only channels
/// documents filter keys; numbers documents "no filters", and none are
/// documented for conversations, so both accept none (inferred).
fn catalog(service: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match service {
        "channels" => (CHANNEL_EVENTS, CHANNEL_FILTER_KEYS),
        "conversations" => (CONVERSATION_EVENTS, &[]),
        _ => (&[], &[]),
    }
}

/// What the simulator accepts.
///
/// Every workspace belongs to every listed organization: the simulator
/// models one account, and the organization path segment only has to name
/// a known organization (inferred; the docs do not say how a wrong pairing
/// answers beyond "not found").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirdConfig {
    /// Accepted `Authorization: AccessKey <key>` values.
    pub access_keys: Vec<String>,
    /// Workspace ids that exist.
    pub workspaces: Vec<String>,
    /// Organization ids accepted in the `/organizations/{id}` prefix; the
    /// first is the `organizationId` of stored subscriptions.
    pub organizations: Vec<String>,
    /// Largest page List returns, whatever `limit` asks for (at most
    /// [`MAX_LIMIT`]); lower it to exercise pagination with few objects.
    pub page_size_max: usize,
}

impl Default for BirdConfig {
    fn default() -> Self {
        Self {
            access_keys: vec![DEFAULT_ACCESS_KEY.to_owned()],
            workspaces: vec![DEFAULT_WORKSPACE.to_owned()],
            organizations: vec![DEFAULT_ORGANIZATION.to_owned()],
            page_size_max: MAX_LIMIT,
        }
    }
}

/// One `{ "key": …, "value": … }` item of `eventFilters`.
type EventFilter = (String, String);

/// A subscription as the simulator stores it, `signingKey` included.
#[derive(Debug, Clone, PartialEq)]
struct Stored {
    /// Creation order; List pages by it.
    seq: u64,
    id: String,
    organization_id: Option<String>,
    workspace_id: String,
    service: String,
    event: String,
    /// `None` when the request sent no `eventFilters` or `null`.
    event_filters: Option<Vec<EventFilter>>,
    template: Option<String>,
    url: String,
    signing_key: Option<String>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `2025-01-31T12:00:00.000Z` (inferred format: RFC 3339 in UTC).
fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}

impl Stored {
    /// The filter combination the five-per-combination limit counts: the
    /// event and its filters as a set (filters are ANDed, so order does not
    /// matter; no filters and `null` are the same combination).
    fn combination(&self) -> (&str, &str, BTreeSet<EventFilter>) {
        (
            &self.service,
            &self.event,
            self.event_filters.iter().flatten().cloned().collect(),
        )
    }

    /// The object as GET, List and PATCH return it. `signingKey` is left
    /// out: a third party reports that GET does not expose it, although the
    /// docs' examples show it (providers.md §3.2); leaving it out makes any
    /// client that relies on reading it back fail here. `reason` explains
    /// a status Bird set; the simulator never sets one, so it is `null`.
    fn public_json(&self) -> Value {
        json!({
            "id": self.id,
            "organizationId": self.organization_id,
            "workspaceId": self.workspace_id,
            "service": self.service,
            "event": self.event,
            "eventFilters": self.event_filters.as_ref().map(|fs| filters_json(fs)),
            "template": self.template,
            "url": self.url,
            "status": self.status,
            "reason": Value::Null,
            "createdAt": timestamp(self.created_at),
            "updatedAt": timestamp(self.updated_at),
        })
    }

    /// The object with `signingKey`, as the create response documents it
    /// (seed 003) and for tests.
    fn full_json(&self) -> Value {
        let mut value = self.public_json();
        if let Value::Object(map) = &mut value {
            map.insert("signingKey".into(), json!(self.signing_key));
        }
        value
    }
}

fn filters_json(filters: &[EventFilter]) -> Value {
    Value::Array(
        filters
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

#[derive(Debug)]
struct SimState {
    access_keys: Vec<String>,
    workspaces: BTreeSet<String>,
    organizations: Vec<String>,
    page_size_max: usize,
    next_seq: u64,
    /// All subscriptions in creation order.
    subscriptions: Vec<Stored>,
}

impl SimState {
    /// Subscriptions of `workspace` with the same combination, other than `except`.
    fn same_combination(
        &self,
        workspace: &str,
        combination: &(&str, &str, BTreeSet<EventFilter>),
        except: Option<&str>,
    ) -> usize {
        self.subscriptions
            .iter()
            .filter(|s| s.workspace_id == workspace && Some(s.id.as_str()) != except)
            .filter(|s| s.combination() == *combination)
            .count()
    }
}

/// Handle to one Bird simulator. Clones share the same state, faults and
/// request log.
#[derive(Debug, Clone)]
pub struct BirdSim {
    state: Arc<Mutex<SimState>>,
    harness: Harness,
}

simulator!(BirdSim);

impl BirdSim {
    /// A simulator with the configured keys, workspaces and organizations
    /// and no subscriptions.
    pub fn new(cfg: BirdConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(SimState {
                access_keys: cfg.access_keys,
                workspaces: cfg.workspaces.into_iter().collect(),
                organizations: cfg.organizations,
                page_size_max: cfg.page_size_max.clamp(1, MAX_LIMIT),
                next_seq: 0,
                subscriptions: Vec::new(),
            })),
            harness: Harness::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The simulator's router:
    ///
    /// - `GET|POST /workspaces/{workspaceId}/webhook-subscriptions`,
    ///   `GET|PATCH|DELETE …/webhook-subscriptions/{webhookSubscriptionId}`,
    ///   `GET /workspaces/{workspaceId}/available-webhooks`, each also under
    ///   `/organizations/{organizationId}`;
    /// - `GET /_sim/bird/workspaces/{workspaceId}/subscriptions` (stored
    ///   objects with `signingKey`) and `POST /_sim/bird/workspaces`
    ///   (`{"id": "…"}`);
    /// - `POST /_sim/deliveries` ([`crate::deliveries`]);
    /// - the generic control API of [`Harness::control_routes`].
    ///
    /// Every non-control request is logged and may be faulted.
    pub fn router(&self) -> Router {
        let mut api = Router::new();
        for prefix in ["", "/organizations/{organization_id}"] {
            api = api
                .route(
                    &format!("{prefix}/workspaces/{{workspace_id}}/webhook-subscriptions"),
                    get(list).post(create),
                )
                .route(
                    &format!(
                        "{prefix}/workspaces/{{workspace_id}}/webhook-subscriptions/{{subscription_id}}"
                    ),
                    get(show).patch(update).delete(destroy),
                )
                .route(
                    &format!("{prefix}/workspaces/{{workspace_id}}/available-webhooks"),
                    get(available_webhooks),
                );
        }
        let api = api
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(from_fn_with_state(self.clone(), require_access_key))
            .with_state(self.clone());
        let control = Router::new()
            .route("/_sim/bird/workspaces", post(control_add_workspace))
            .route(
                "/_sim/bird/workspaces/{workspace_id}/subscriptions",
                get(control_subscriptions),
            )
            .with_state(self.clone())
            .merge(crate::deliveries::routes(self.clone()));
        let router = api.merge(control).fallback(route_not_found);
        self.harness.wrap(router)
    }

    /// Every stored subscription of `workspace`, in creation order, with
    /// `signingKey`. Empty for an unknown workspace.
    pub fn subscriptions(&self, workspace: &str) -> Vec<Value> {
        self.lock()
            .subscriptions
            .iter()
            .filter(|s| s.workspace_id == workspace)
            .map(Stored::full_json)
            .collect()
    }

    /// Makes `id` a known workspace (idempotent).
    pub fn add_workspace(&self, id: impl Into<String>) {
        self.lock().workspaces.insert(id.into());
    }
}

/// An error answer decided before a handler's main work, boxed because a
/// `Response` is large and most calls succeed. Handlers return
/// `Result<Response, Rejection>`, so a step that refuses ends them with `?`.
struct Rejection(Box<Response>);

impl From<Response> for Rejection {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// Validation problems keyed by field (`eventFilters.0.key`).
type Details = BTreeMap<String, Vec<String>>;

fn add(details: &mut Details, field: &str, text: impl Into<String>) {
    details
        .entry(field.to_owned())
        .or_default()
        .push(text.into());
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

/// A schema violation: 400, "Invalid HTTP request" (seed 003). Inferred:
/// required fields, types, unknown properties, the URL pattern and enums
/// are checked by the request schema, so they are the "invalid HTTP
/// request" case rather than 422.
fn invalid_payload(details: Details) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "code": "InvalidPayload",
            "message": "The request body does not match the schema.",
            "details": details,
        })),
    )
        .into_response()
}

/// Well-formed but not processable: 422 (seed 003). Used for an event the
/// workspace does not offer, a filter key the event does not take, and the
/// per-combination limit (inferred placement).
fn unprocessable(code: &str, message: &str, details: Option<Details>) -> Response {
    let mut body = json!({"code": code, "message": message});
    if let (Some(details), Value::Object(map)) = (details, &mut body) {
        map.insert("details".into(), json!(details));
    }
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

fn limit_reached() -> Response {
    unprocessable(
        "SubscriptionLimitExceeded",
        &format!(
            "A maximum of {MAX_PER_COMBINATION} webhook subscriptions is allowed for the same event and filter combination."
        ),
        None,
    )
}

/// Get page, 404: "The specified webhook subscription was not found." (FACT).
fn subscription_not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "The specified webhook subscription was not found.",
    )
}

/// Unknown route (inferred body, in the shape of the other errors). The
/// access-key layer is route-scoped, so this answers without a key too.
async fn route_not_found(request: Request) -> Response {
    let text = format!(
        "No route for {} {}.",
        request.method(),
        request.uri().path()
    );
    error(StatusCode::NOT_FOUND, "NotFound", &text)
}

/// Known path, wrong method (inferred body).
async fn method_not_allowed(request: Request) -> Response {
    let text = format!(
        "{} is not allowed on {}.",
        request.method(),
        request.uri().path()
    );
    error(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", &text)
}

/// The key in `Authorization: AccessKey <key>` (seed 003). The scheme is
/// matched exactly as documented.
fn access_key(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let key = value.strip_prefix("AccessKey ")?.trim();
    (!key.is_empty()).then_some(key)
}

/// Auth for every API route: a missing, malformed or unknown key is 401
/// (inferred body).
async fn require_access_key(State(sim): State<BirdSim>, request: Request, next: Next) -> Response {
    let known = access_key(request.headers())
        .is_some_and(|key| sim.lock().access_keys.iter().any(|k| k == key));
    if known {
        next.run(request).await
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Missing or invalid access key: send `Authorization: AccessKey <key>`.",
        )
    }
}

/// The workspace a request addresses, after checking the optional
/// organization and the workspace exist (404 otherwise; inferred bodies).
fn locate(state: &SimState, params: &HashMap<String, String>) -> Result<String, Rejection> {
    if let Some(org) = params.get("organization_id")
        && !state.organizations.iter().any(|o| o == org)
    {
        return Err(Rejection::from(error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The specified organization was not found.",
        )));
    }
    let workspace = params.get("workspace_id").cloned().unwrap_or_default();
    if !state.workspaces.contains(&workspace) {
        return Err(Rejection::from(error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The specified workspace was not found.",
        )));
    }
    Ok(workspace)
}

/// Bird's `\s` in [`URL_PATTERN`]; read as Unicode whitespace.
fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// [`URL_PATTERN`]: `https://`, then `label.` one or more times (labels of
/// ASCII letters, digits, `-`), a top-level label of two or more ASCII
/// letters, then nothing or `/` and non-whitespace.
fn matches_url_pattern(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let (host, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if tail.chars().any(is_space) {
        return false;
    }
    let Some((labels, tld)) = host.rsplit_once('.') else {
        return false;
    };
    tld.len() >= 2
        && tld.bytes().all(|b| b.is_ascii_alphabetic())
        && labels.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// The request body as a JSON object, or the 400 a non-JSON request gets
/// (inferred: "Invalid HTTP request", seed 003).
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Rejection> {
    let is_json = says_json(headers);
    let bad = |text: &str| Rejection::from(error(StatusCode::BAD_REQUEST, "InvalidRequest", text));
    if !is_json {
        return Err(bad(
            "The request body must be JSON (Content-Type: application/json).",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(bad("The request body must be a JSON object.")),
        Err(_) => Err(bad("The request body is not valid JSON.")),
    }
}

/// Which schema applies: create (service, event, url required) or update
/// (everything optional; `service` and `event` not allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// The validated fields that were sent; `None` means "not sent".
#[derive(Debug, Default)]
struct Input {
    service: Option<String>,
    event: Option<String>,
    url: Option<String>,
    signing_key: Option<String>,
    template: Option<String>,
    status: Option<String>,
    /// `Some(None)`: sent as `null`.
    event_filters: Option<Option<Vec<EventFilter>>>,
}

/// Create schema properties (providers.md §3.2, `additionalProperties: false`).
const CREATE_FIELDS: [&str; 6] = [
    "service",
    "event",
    "eventFilters",
    "template",
    "url",
    "signingKey",
];
/// Update schema properties (providers.md §3.2, update page).
const UPDATE_FIELDS: [&str; 5] = ["template", "url", "signingKey", "status", "eventFilters"];
/// Update's `status` enum (providers.md §3.2: e.g. `active`/`inactive`).
const STATUSES: [&str; 2] = ["active", "inactive"];

/// A string field that must be one of `options`.
fn one_of_field(
    details: &mut Details,
    body: &Map<String, Value>,
    field: &str,
    options: &[&str],
) -> Option<String> {
    let value = string_field(details, body, field);
    if let Some(v) = &value
        && !options.contains(&v.as_str())
    {
        add(
            details,
            field,
            format!("must be one of {}", options.join(", ")),
        );
    }
    value
}

fn string_field(details: &mut Details, body: &Map<String, Value>, field: &str) -> Option<String> {
    match body.get(field)? {
        Value::String(text) => Some(text.clone()),
        _ => {
            add(details, field, "must be a string");
            None
        }
    }
}

fn filters_field(
    details: &mut Details,
    body: &Map<String, Value>,
) -> Option<Option<Vec<EventFilter>>> {
    let items = match body.get("eventFilters")? {
        Value::Null => return Some(None),
        Value::Array(items) => items,
        _ => {
            add(details, "eventFilters", "must be an array or null");
            return None;
        }
    };
    let mut filters = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let at = format!("eventFilters.{i}");
        let Value::Object(map) = item else {
            add(details, &at, "must be an object with `key` and `value`");
            ok = false;
            continue;
        };
        // Items are documented as `{key, value}`; anything else is refused,
        // like the schema's top level (inferred).
        if let Some(extra) = map.keys().find(|k| !matches!(k.as_str(), "key" | "value")) {
            add(details, &format!("{at}.{extra}"), "is not allowed");
            ok = false;
        }
        match (map.get("key"), map.get("value")) {
            (Some(Value::String(k)), Some(Value::String(v))) if !k.is_empty() => {
                filters.push((k.clone(), v.clone()));
            }
            _ => {
                add(
                    details,
                    &at,
                    "needs a non-empty string `key` and a string `value`",
                );
                ok = false;
            }
        }
    }
    ok.then_some(Some(filters))
}

/// Checks `body` against the create or update schema.
fn validate(body: &Map<String, Value>, mode: Mode) -> Result<Input, Details> {
    let mut details = Details::new();
    let allowed: &[&str] = match mode {
        Mode::Create => &CREATE_FIELDS,
        Mode::Update => &UPDATE_FIELDS,
    };
    for key in body.keys() {
        if allowed.contains(&key.as_str()) {
            continue;
        }
        let text = if mode == Mode::Update && matches!(key.as_str(), "service" | "event") {
            // Update page: `service` and `event` are not updatable.
            format!("{key} cannot be changed; delete the subscription and create a new one")
        } else {
            "is not allowed (additionalProperties: false)".to_owned()
        };
        add(&mut details, key, text);
    }
    if mode == Mode::Create {
        for required in ["service", "event", "url"] {
            if !body.contains_key(required) {
                add(&mut details, required, "is required");
            }
        }
    }
    let mut input = Input::default();
    if mode == Mode::Create {
        input.service = one_of_field(&mut details, body, "service", &SERVICES);
        input.event = string_field(&mut details, body, "event");
        if input.event.as_deref() == Some("") {
            add(&mut details, "event", "must not be empty");
        }
    }
    input.url = string_field(&mut details, body, "url");
    if let Some(url) = &input.url
        && !matches_url_pattern(url)
    {
        add(
            &mut details,
            "url",
            format!("must match pattern {URL_PATTERN}"),
        );
    }
    input.signing_key = string_field(&mut details, body, "signingKey");
    input.template = string_field(&mut details, body, "template");
    if mode == Mode::Update {
        input.status = one_of_field(&mut details, body, "status", &STATUSES);
    }
    input.event_filters = filters_field(&mut details, body);
    if details.is_empty() {
        Ok(input)
    } else {
        Err(details)
    }
}

/// The rules the schema cannot express, checked against the catalog that
/// `available-webhooks` publishes: the event must be offered for its
/// service and every filter key must be one the event takes.
fn check_catalog(service: &str, event: &str, filters: &[EventFilter]) -> Result<(), Rejection> {
    let (events, filter_keys) = catalog(service);
    let mut details = Details::new();
    if !events.contains(&event) {
        add(
            &mut details,
            "event",
            format!("`{event}` is not an available event of service `{service}`"),
        );
    }
    for (i, (key, _)) in filters.iter().enumerate() {
        if !filter_keys.contains(&key.as_str()) {
            add(
                &mut details,
                &format!("eventFilters.{i}.key"),
                format!("`{key}` is not a filter key of `{service}:{event}`"),
            );
        }
    }
    if details.is_empty() {
        Ok(())
    } else {
        Err(Rejection::from(unprocessable(
            "InvalidWebhookEvent",
            "The event or its filters are not available in this workspace.",
            Some(details),
        )))
    }
}

async fn create(
    State(sim): State<BirdSim>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let mut state = sim.lock();
    let workspace = locate(&state, &params)?;
    let body = json_object(&headers, &body)?;
    let input = match validate(&body, Mode::Create) {
        Ok(i) => i,
        Err(details) => return Ok(invalid_payload(details)),
    };
    // Create requires these, and validation passed.
    let (Some(service), Some(event), Some(url)) = (input.service, input.event, input.url) else {
        return Ok(invalid_payload(Details::new()));
    };
    let event_filters = input.event_filters.flatten();
    check_catalog(
        &service,
        &event,
        event_filters.as_deref().unwrap_or_default(),
    )?;
    let at = now();
    let stored = Stored {
        seq: state.next_seq,
        id: uuid_v4(),
        organization_id: state.organizations.first().cloned(),
        workspace_id: workspace.clone(),
        service,
        event,
        event_filters,
        template: input.template,
        url,
        signing_key: input.signing_key,
        // Created subscriptions are active (seed 003 example response).
        status: "active".to_owned(),
        created_at: at,
        updated_at: at,
    };
    if state.same_combination(&workspace, &stored.combination(), None) >= MAX_PER_COMBINATION {
        return Ok(limit_reached());
    }
    state.next_seq += 1;
    // Seed 003: the 201 body is the subscription, `signingKey` included.
    let body = stored.full_json();
    state.subscriptions.push(stored);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn show(
    State(sim): State<BirdSim>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let state = sim.lock();
    let workspace = locate(&state, &params)?;
    let id = params.get("subscription_id").map(String::as_str);
    match state
        .subscriptions
        .iter()
        .find(|s| s.workspace_id == workspace && Some(s.id.as_str()) == id)
    {
        Some(s) => Ok((StatusCode::OK, Json(s.public_json())).into_response()),
        None => Ok(subscription_not_found()),
    }
}

/// PATCH: only the fields sent change (providers.md §3.2, update page).
/// Moving a subscription into a full combination is refused like a create.
async fn update(
    State(sim): State<BirdSim>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Rejection> {
    let mut state = sim.lock();
    let workspace = locate(&state, &params)?;
    let id = params.get("subscription_id").cloned().unwrap_or_default();
    let Some(index) = state
        .subscriptions
        .iter()
        .position(|s| s.workspace_id == workspace && s.id == id)
    else {
        return Ok(subscription_not_found());
    };
    let body = json_object(&headers, &body)?;
    let input = match validate(&body, Mode::Update) {
        Ok(i) => i,
        Err(details) => return Ok(invalid_payload(details)),
    };
    let mut next = state.subscriptions[index].clone();
    if let Some(filters) = input.event_filters {
        next.event_filters = filters;
        check_catalog(
            &next.service,
            &next.event,
            next.event_filters.as_deref().unwrap_or_default(),
        )?;
        let combination = next.combination();
        if state.same_combination(&workspace, &combination, Some(&id)) >= MAX_PER_COMBINATION {
            return Ok(limit_reached());
        }
    }
    set_if_sent(&mut next.url, input.url);
    set_if_sent(&mut next.signing_key, input.signing_key.map(Some));
    set_if_sent(&mut next.template, input.template.map(Some));
    set_if_sent(&mut next.status, input.status);
    if next != state.subscriptions[index] {
        next.updated_at = now();
    }
    let body = next.public_json();
    state.subscriptions[index] = next;
    Ok((StatusCode::OK, Json(body)).into_response())
}

/// DELETE answers 204 No Content. The delete page was not found and its
/// status is unknown (providers.md §3.2 "probably 204"); 204 is the REST
/// convention for a delete with nothing to return (inferred).
async fn destroy(
    State(sim): State<BirdSim>,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Response, Rejection> {
    let mut state = sim.lock();
    let workspace = locate(&state, &params)?;
    let id = params.get("subscription_id").cloned().unwrap_or_default();
    let before = state.subscriptions.len();
    state
        .subscriptions
        .retain(|s| !(s.workspace_id == workspace && s.id == id));
    if state.subscriptions.len() == before {
        return Ok(subscription_not_found());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Query parameters, last value winning.
fn query_params(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

/// Page tokens are opaque to clients; here they carry the creation
/// sequence number of the last subscription returned, so deleting objects
/// between pages neither repeats nor skips the others (inferred design).
fn page_token(seq: u64) -> String {
    format!("pt1.{seq:x}")
}

fn parse_page_token(token: &str) -> Option<u64> {
    u64::from_str_radix(token.strip_prefix("pt1.")?, 16).ok()
}

/// List: `limit` 1–100 (default 10) and `pageToken` (≤ 8000 chars);
/// `{"results": [...], "nextPageToken": "…"}`, the token present only when
/// another page follows (providers.md §3.2, §3.6; omitting it on the last
/// page is inferred). Other query parameters (the unnamed filters the list
/// page mentions) are ignored.
async fn list(
    State(sim): State<BirdSim>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, Rejection> {
    let state = sim.lock();
    let workspace = locate(&state, &params)?;
    let query = query_params(query.as_deref());
    let mut details = Details::new();
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                add(
                    &mut details,
                    "limit",
                    format!("must be an integer between 1 and {MAX_LIMIT}"),
                );
                DEFAULT_LIMIT
            }
        },
    };
    let after = match query.get("pageToken") {
        None => None,
        Some(token) if token.len() > MAX_PAGE_TOKEN_LEN => {
            add(
                &mut details,
                "pageToken",
                format!("must be at most {MAX_PAGE_TOKEN_LEN} characters"),
            );
            None
        }
        Some(token) => match parse_page_token(token) {
            Some(seq) => Some(seq),
            None => {
                add(&mut details, "pageToken", "is not a valid page token");
                None
            }
        },
    };
    if !details.is_empty() {
        return Ok(invalid_payload(details));
    }
    let page_size = limit.min(state.page_size_max);
    let mut remaining = state
        .subscriptions
        .iter()
        .filter(|s| s.workspace_id == workspace && after.is_none_or(|a| s.seq > a));
    let page: Vec<&Stored> = remaining.by_ref().take(page_size).collect();
    let more = remaining.next().is_some();
    let mut body = Map::new();
    body.insert(
        "results".into(),
        Value::Array(page.iter().map(|s| s.public_json()).collect()),
    );
    if more && let Some(last) = page.last() {
        body.insert("nextPageToken".into(), json!(page_token(last.seq)));
    }
    Ok((StatusCode::OK, Json(Value::Object(body))).into_response())
}

/// `GET /workspaces/{workspaceId}/available-webhooks?service=`
/// (providers.md §3.2): `{"results": [{"service", "events": [{"name",
/// "filterKeys"}]}]}`, one entry per service, or only `service`'s.
async fn available_webhooks(
    State(sim): State<BirdSim>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Result<Response, Rejection> {
    let state = sim.lock();
    locate(&state, &params)?;
    let query = query_params(query.as_deref());
    let services: Vec<&str> = match query.get("service") {
        None => SERVICES.to_vec(),
        Some(s) if SERVICES.contains(&s.as_str()) => vec![s.as_str()],
        Some(_) => {
            let mut details = Details::new();
            add(
                &mut details,
                "service",
                format!("must be one of {}", SERVICES.join(", ")),
            );
            return Ok(invalid_payload(details));
        }
    };
    let results: Vec<Value> = services
        .iter()
        .map(|service| {
            let (events, keys) = catalog(service);
            json!({
                "service": service,
                "events": events
                    .iter()
                    .map(|name| json!({"name": name, "filterKeys": keys}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok((StatusCode::OK, Json(json!({"results": results}))).into_response())
}

/// Body of `POST /_sim/bird/workspaces`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddWorkspace {
    id: String,
}

async fn control_add_workspace(
    State(sim): State<BirdSim>,
    Json(body): Json<AddWorkspace>,
) -> Response {
    if body.id.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "id must not be empty",
        );
    }
    sim.add_workspace(body.id.clone());
    (StatusCode::CREATED, Json(json!({"id": body.id}))).into_response()
}

async fn control_subscriptions(
    State(sim): State<BirdSim>,
    Path(workspace): Path<String>,
) -> Response {
    if !sim.lock().workspaces.contains(&workspace) {
        return error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("unknown workspace {workspace}"),
        );
    }
    (StatusCode::OK, Json(json!(sim.subscriptions(&workspace)))).into_response()
}

/// Deliveries as Bird documents them (providers.md §3.4–3.5): to the
/// subscription's `url`, with `messagebird-request-id` (a fresh id per
/// delivery, kept by repeats) and, when the subscription has a
/// `signingKey`, `messagebird-request-timestamp` (Unix seconds, the unit
/// third parties use) and `messagebird-signature` = base64 of
/// HMAC-SHA256(`signingKey` as given, timestamp + "\n" + url + "\n" +
/// SHA256(body) as 32 raw bytes). The body is the envelope
/// `{service, event, payload}`; the payload example is the documented
/// conversation for `conversations` events and `{}` for the others (their
/// payloads are UNKNOWN, §3.5).
impl Outbox for BirdSim {
    fn outbound(&self, order: &DeliveryOrder) -> Result<Outbound, Refused> {
        let state = self.lock();
        let mut same_url = state
            .subscriptions
            .iter()
            .filter(|s| s.url == order.url)
            .peekable();
        if same_url.peek().is_none() {
            return Err(Refused::no_webhook(&order.url));
        }
        let sub = match order.event.as_deref() {
            None => same_url.next(),
            Some(event) => same_url.find(|s| s.event == event),
        }
        .ok_or_else(|| Refused::unfit("no subscription with this url has that event"))?;
        if sub.status != "active" {
            return Err(Refused::disabled());
        }
        let payload = order
            .payload
            .clone()
            .unwrap_or_else(|| example_payload(&sub.service));
        let envelope = json!({ "service": sub.service, "event": sub.event, "payload": payload });
        let body = envelope.to_string();
        let timestamp = order.timestamp_or_now().timestamp().to_string();
        let mut headers = Vec::new();
        match (&sub.signing_key, order.corrupt) {
            (Some(key), corrupt) => {
                let key = if corrupt { corrupted(key) } else { key.clone() };
                headers.push((
                    "messagebird-signature".to_owned(),
                    signature(&key, &timestamp, &order.url, body.as_bytes()),
                ));
                headers.push(("messagebird-request-timestamp".to_owned(), timestamp));
            }
            (None, true) => return Err(Refused::nothing_to_corrupt()),
            (None, false) => {}
        }
        headers.push(("messagebird-request-id".to_owned(), uuid_v4()));
        Ok(Outbound::json(
            &sub.event, &order.url, "POST", headers, &envelope,
        ))
    }
}

/// `messagebird-signature` as "Verifying a webhook subscription" documents it.
fn signature(key: &str, timestamp: &str, url: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    use sha2::Digest as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(format!("{timestamp}\n{url}\n").as_bytes());
    mac.update(&sha2::Sha256::digest(body));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The documented `conversations` payload (providers.md §3.5, values
/// shortened); `{}` for services whose payloads are not public.
fn example_payload(service: &str) -> Value {
    if service != "conversations" {
        return json!({});
    }
    json!({
        "id": uuid_v4(),
        "status": "active",
        "visibility": "private",
        "accessibility": "invite-only",
        "featuredParticipants": [{
            "id": uuid_v4(),
            "type": "contact",
            "contact": { "identifierKey": "phonenumber", "identifierValue": "+31600000000" },
        }],
        "activeParticipantCount": 2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed with OpenSSL (the commands are in the comments of
    /// `crates/providers/accesskey-workspace/src/verify.rs`), with Bird's
    /// documented example `signingKey` used as given.
    #[test]
    fn signatures_match_openssl() {
        let key = "KeV+/HGoIQrxuE5YPCRR6AuQOJveldYNNhbVi1i22qk=";
        let body = r#"{"service":"channels","event":"sms.outbound","payload":{"id":"m1"}}"#;
        assert_eq!(
            signature(
                key,
                "1700000000",
                "https://hooks.example.com/bird?tenant=billing",
                body.as_bytes()
            ),
            "Lb0egiW5gVbUFDM83FIGcmdt0+2SgJjz4GKcAgz6g0U="
        );
        assert_eq!(
            signature(key, "1700000000", "https://hooks.example.com/bird", b""),
            "8GkAKt7x8lJUQ47DFocHSvMij9tnjXxQ3unyT75OEss="
        );
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn url_pattern() {
        for ok in [
            "https://example.com",
            "https://example.com/webhook",
            "https://a-b.c.example.io/x?y=1#z",
            "https://9.example.com/",
        ] {
            assert!(matches_url_pattern(ok), "{ok}");
        }
        for bad in [
            "http://example.com",
            "https://localhost/x",
            "https://127.0.0.1/x",
            "https://example.com:8443/x",
            "https://u@example.com/x",
            "https://example.c0m/x",
            "https://example.com/a b",
            "https://example.com?x=1",
            "https://example..com/",
            "https://example.com./",
            "https://[::1]/",
            "",
        ] {
            assert!(!matches_url_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn create_schema() {
        let details = validate(&Map::new(), Mode::Create).expect_err("empty is invalid");
        assert_eq!(
            details.keys().collect::<Vec<_>>(),
            ["event", "service", "url"]
        );
        let details = validate(
            &object(json!({
                "service": "mail", "event": 1, "url": "https://localhost/x",
                "status": "active", "eventFilters": [{"key": "channelId"}, {"key": "a", "value": "b", "op": "eq"}],
                "signingKey": 5, "template": ["t"],
            })),
            Mode::Create,
        )
        .expect_err("invalid");
        for field in [
            "service",
            "event",
            "url",
            "status",
            "eventFilters.0",
            "eventFilters.1.op",
            "signingKey",
            "template",
        ] {
            assert!(details.contains_key(field), "{field}: {details:?}");
        }
        let ok = validate(
            &object(json!({"service": "channels", "event": "sms.outbound", "url": "https://example.com/webhook", "eventFilters": null})),
            Mode::Create,
        )
        .expect("valid");
        assert_eq!(ok.event_filters, Some(None));
    }

    #[test]
    fn update_schema() {
        let details = validate(
            &object(json!({"service": "channels", "event": "sms.inbound", "status": "paused"})),
            Mode::Update,
        )
        .expect_err("invalid");
        assert!(details["service"][0].contains("cannot be changed"));
        assert!(details["event"][0].contains("cannot be changed"));
        assert!(details["status"][0].contains("active, inactive"));
        assert!(validate(&Map::new(), Mode::Update).is_ok());
    }

    #[test]
    fn catalog_rules() {
        assert!(
            check_catalog(
                "channels",
                "sms.outbound",
                &[("channelId".into(), "c".into())]
            )
            .is_ok()
        );
        assert!(check_catalog("channels", "sms.sideways", &[]).is_err());
        assert!(
            check_catalog(
                "channels",
                "sms.outbound",
                &[("color".into(), "red".into())]
            )
            .is_err()
        );
        assert!(check_catalog("conversations", "conversation.created", &[]).is_ok());
        assert!(check_catalog("numbers", "number.bought", &[]).is_err());
    }

    #[test]
    fn page_tokens_round_trip() {
        assert_eq!(parse_page_token(&page_token(0)), Some(0));
        assert_eq!(parse_page_token(&page_token(4711)), Some(4711));
        assert_eq!(parse_page_token("4711"), None);
        assert_eq!(parse_page_token("pt1.zz"), None);
    }

    #[test]
    fn access_key_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(access_key(&headers), None);
        headers.insert(AUTHORIZATION, "AccessKey abc".parse().expect("header"));
        assert_eq!(access_key(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(access_key(&headers), None);
        headers.insert(AUTHORIZATION, "AccessKey ".parse().expect("header"));
        assert_eq!(access_key(&headers), None);
    }

    #[test]
    fn combinations_ignore_filter_order_and_null() {
        let at = now();
        let base = Stored {
            seq: 0,
            id: "a".into(),
            organization_id: None,
            workspace_id: "w".into(),
            service: "channels".into(),
            event: "sms.outbound".into(),
            event_filters: Some(vec![("a".into(), "1".into()), ("b".into(), "2".into())]),
            template: None,
            url: "https://example.com".into(),
            signing_key: None,
            status: "active".into(),
            created_at: at,
            updated_at: at,
        };
        let mut swapped = base.clone();
        swapped.event_filters = Some(vec![("b".into(), "2".into()), ("a".into(), "1".into())]);
        assert_eq!(base.combination(), swapped.combination());
        let mut none = base.clone();
        none.event_filters = None;
        let mut empty = base.clone();
        empty.event_filters = Some(Vec::new());
        assert_eq!(none.combination(), empty.combination());
        assert_ne!(base.combination(), none.combination());
    }
}
