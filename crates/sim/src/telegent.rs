//! Simulator of the Telegent mPaaS webhook-management API.
//!
//! Written only from Telegent's documentation (seed 000, the OpenAPI
//! document of "Create Webhook"; seed 001, its rendered page; and
//! providers.md §1, which summarises the token, update, delete, get and list
//! pages). It owns the OAuth2 token endpoint and its per-endpoint tokens,
//! the in-memory accounts and webhooks, the schema validation the docs
//! describe (`additionalProperties: false`, the max lengths, the
//! required-by-meaning fields, the event enum), the documented
//! `{StatusCode, Message}` errors, an optional 50/min rate limit, and a small
//! Telegent-specific control API for tests. Where the docs are silent, the
//! choice made is marked "inferred" next to the code.
//!
//! Every documented path already starts with `/v1.0` and the base URL is the
//! host root (providers.md §1.1), so [`API_PREFIX`] is empty. The generic
//! control API from [`crate::faults`] and the routes under `/_sim/telegent`
//! sit at the root too.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::deliveries::{DeliveryOrder, Outbound, Outbox, Refused, corrupted, pick_event};
use crate::faults::Harness;

/// Path prefix of the simulated API: none, because the documented paths
/// (`/v1.0/webhook/create`, …) already carry the version and the base URL is
/// `https://api.telegent.com` (providers.md §1.1).
pub const API_PREFIX: &str = "";

/// `AccountKey` accepted by [`TelegentConfig::default`] (`DID-` is the
/// distributor/account-key prefix, providers.md §1.1).
pub const DEFAULT_ACCOUNT_KEY: &str = "DID-DEMO";

/// `AccountSecret` of [`DEFAULT_ACCOUNT_KEY`].
pub const DEFAULT_ACCOUNT_SECRET: &str = "demo-secret";

/// Account known to [`TelegentConfig::default`]: the `AccountId` of the
/// seed 000 examples.
pub const DEFAULT_ACCOUNT: &str = "AID-1234567";

/// Token lifetime of [`TelegentConfig::default`]. The docs give only an
/// example `tokenExpiry`, not a lifetime; one hour is inferred.
pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 3600;

/// Telegent's Standard-tier limit (providers.md §1.6, knowledge bank).
pub const STANDARD_RATE_LIMIT_PER_MINUTE: u32 = 50;

/// The subscribable events (seed 000: "Available subscribable events").
pub const SUBSCRIBABLE_EVENTS: [&str; 7] = [
    "Order_Update",
    "New_Sms",
    "Call_Completed",
    "Call_On_Hold",
    "Call_Recording",
    "Call_In_Progress",
    "Call_Ringing",
];

/// `tokenExpiry` as in the documented example `05/02/2025 06:36:13 PM`
/// (providers.md §1.1). No time zone is stated; the simulator writes UTC.
pub const TOKEN_EXPIRY_FORMAT: &str = "%m/%d/%Y %I:%M:%S %p";

/// seed 000 `Webhook_Request`: every property and its `maxLength`.
const WEBHOOK_FIELDS: [(&str, usize); 9] = [
    ("AccountId", 100),
    ("WebhookUrl", 255),
    ("Method", 10),
    ("DataFormat", 50),
    ("AuthenticationType", 10),
    ("AuthenticationUsername", 255),
    ("AuthenticationPassword", 255),
    ("AuthenticationToken", 255),
    ("SubscribedEvents", 255),
];

/// seed 000 error examples, verbatim.
const UNAUTHORIZED: &str = "Unauthorized: Bearer token is missing, expired, or invalid. Re-authenticate via POST /v1.0/oauth2/tokens.";
const FORBIDDEN: &str = "Forbidden: your token does not have permission to access this resource. Check the ApiEndpoint scope.";
const NOT_FOUND: &str =
    "Not found: the requested resource does not exist or belongs to a different account.";
const METHOD_NOT_ALLOWED: &str =
    "Method not allowed: verify the HTTP method required for this endpoint.";
const TOO_MANY_REQUESTS: &str = "Too many requests: rate limit exceeded. Slow your request cadence and retry after a short delay.";

/// What the simulator accepts and how it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegentConfig {
    /// `(AccountKey, AccountSecret)` pairs that may mint tokens. Every key
    /// sees every account: the simulator models one distributor (inferred).
    pub account_keys: Vec<(String, String)>,
    /// Known `AccountId`s, e.g. `AID-1234567`.
    pub accounts: Vec<String>,
    /// Lifetime of a minted token.
    pub token_ttl_seconds: u64,
    /// Requests per minute over all API calls (token minting included);
    /// `None` disables limiting.
    pub rate_limit_per_minute: Option<u32>,
    /// Answer `{Successful: true, Data: …}` instead of the flat result
    /// (providers.md §1.2: the envelope is described by the getting-started
    /// pages, the schemas are flat).
    pub wrap_responses: bool,
}

impl Default for TelegentConfig {
    fn default() -> Self {
        Self {
            account_keys: vec![(
                DEFAULT_ACCOUNT_KEY.to_owned(),
                DEFAULT_ACCOUNT_SECRET.to_owned(),
            )],
            accounts: vec![DEFAULT_ACCOUNT.to_owned()],
            token_ttl_seconds: DEFAULT_TOKEN_TTL_SECONDS,
            rate_limit_per_minute: None,
            wrap_responses: false,
        }
    }
}

/// A minted token: the endpoint path it is scoped to and its expiry.
#[derive(Debug, Clone)]
struct IssuedToken {
    /// Normalized path of `ApiEndpoint` (see [`normalize_path`]).
    endpoint_path: String,
    expires_at: DateTime<Utc>,
}

/// A webhook as stored: the nine request fields (credentials included, as
/// `Webhook_Result` echoes them, seed 000), its id and `Active`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredWebhook {
    id: String,
    fields: BTreeMap<&'static str, Option<String>>,
    active: bool,
}

impl StoredWebhook {
    fn account(&self) -> Option<&str> {
        self.fields.get("AccountId").and_then(|v| v.as_deref())
    }

    /// `Webhook_Result` (seed 000): the nine fields, `WebhookId`, `Active`.
    fn result_json(&self) -> Value {
        let mut map = Map::new();
        for (name, _) in WEBHOOK_FIELDS {
            let value = self.fields.get(name).cloned().flatten();
            map.insert(name.to_owned(), json!(value));
        }
        map.insert("WebhookId".into(), json!(self.id));
        map.insert("Active".into(), json!(self.active));
        Value::Object(map)
    }
}

#[derive(Debug)]
struct SimState {
    account_keys: Vec<(String, String)>,
    accounts: BTreeSet<String>,
    token_ttl: TimeDelta,
    tokens: HashMap<String, IssuedToken>,
    /// `ApiEndpoint` of every successful mint, in order.
    mints: Vec<String>,
    /// All webhooks in creation order; List returns an account's in this order.
    webhooks: Vec<StoredWebhook>,
    next_id: u64,
    rate_limit: Option<u32>,
    /// Arrival times of the requests counted in the last minute.
    recent: VecDeque<Instant>,
    wrap_responses: bool,
}

/// Handle to one Telegent simulator. Clones share the same state, faults
/// and request log.
#[derive(Debug, Clone)]
pub struct TelegentSim {
    state: Arc<Mutex<SimState>>,
    harness: Harness,
}

simulator!(TelegentSim);

impl TelegentSim {
    /// A simulator with the configured keys and accounts and no webhooks.
    pub fn new(cfg: TelegentConfig) -> Self {
        let ttl_seconds = i64::try_from(cfg.token_ttl_seconds).unwrap_or(i64::MAX);
        Self {
            state: Arc::new(Mutex::new(SimState {
                account_keys: cfg.account_keys,
                accounts: cfg.accounts.into_iter().collect(),
                token_ttl: TimeDelta::try_seconds(ttl_seconds).unwrap_or(TimeDelta::MAX),
                tokens: HashMap::new(),
                mints: Vec::new(),
                webhooks: Vec::new(),
                next_id: 1_000_001,
                rate_limit: cfg.rate_limit_per_minute,
                recent: VecDeque::new(),
                wrap_responses: cfg.wrap_responses,
            })),
            harness: Harness::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The simulator's router:
    ///
    /// - `POST /v1.0/oauth2/tokens` (also spelled `/v1.0/OAuth2/tokens`, as
    ///   in the spec);
    /// - `POST /v1.0/webhook/create`, `POST /v1.0/webhook/update`,
    ///   `POST /v1.0/webhook/delete`, `GET /v1.0/webhook`,
    ///   `GET /v1.0/account/webhooks`, each needing a bearer token minted
    ///   for that endpoint;
    /// - `POST /_sim/telegent/tokens/expire`, `GET /_sim/telegent/tokens`
    ///   (`{"mints": n, "endpoints": […]}`),
    ///   `GET /_sim/telegent/accounts/{account}/webhooks` (stored objects)
    ///   and `POST /_sim/telegent/accounts` (`{"id": "AID-…"}`);
    /// - `POST /_sim/deliveries` ([`crate::deliveries`]);
    /// - the generic control API of [`Harness::control_routes`].
    ///
    /// Every non-control request is logged and may be faulted.
    pub fn router(&self) -> Router {
        let webhooks = Router::new()
            .route("/v1.0/webhook/create", post(create))
            .route("/v1.0/webhook/update", post(update))
            .route("/v1.0/webhook/delete", post(delete))
            .route("/v1.0/webhook", get(show))
            .route("/v1.0/account/webhooks", get(list))
            .route_layer(from_fn_with_state(self.clone(), require_token));
        let api = Router::new()
            .route("/v1.0/oauth2/tokens", post(mint))
            .route("/v1.0/OAuth2/tokens", post(mint))
            .merge(webhooks)
            .method_not_allowed_fallback(method_not_allowed)
            .fallback(route_not_found)
            .layer(from_fn_with_state(self.clone(), rate_limit))
            .with_state(self.clone());
        let control = Router::new()
            .route("/_sim/telegent/tokens", get(control_tokens))
            .route("/_sim/telegent/tokens/expire", post(control_expire))
            .route("/_sim/telegent/accounts", post(control_add_account))
            .route(
                "/_sim/telegent/accounts/{account}/webhooks",
                get(control_webhooks),
            )
            .with_state(self.clone())
            .merge(crate::deliveries::routes(self.clone()));
        self.harness.wrap(api.merge(control))
    }

    /// Every stored webhook of `account`, in creation order, as
    /// `Webhook_Result` objects (credentials included). Empty for an unknown
    /// account.
    pub fn webhooks(&self, account: &str) -> Vec<Value> {
        self.lock()
            .webhooks
            .iter()
            .filter(|w| w.account() == Some(account))
            .map(StoredWebhook::result_json)
            .collect()
    }

    /// Makes `id` a known account (idempotent).
    pub fn add_account(&self, id: impl Into<String>) {
        self.lock().accounts.insert(id.into());
    }

    /// Expires every token minted so far: the next request with any of them
    /// gets the documented 401.
    pub fn expire_tokens(&self) {
        let past = Utc::now() - TimeDelta::seconds(1);
        for token in self.lock().tokens.values_mut() {
            token.expires_at = past;
        }
    }

    /// How many tokens were minted successfully.
    pub fn token_mints(&self) -> usize {
        self.lock().mints.len()
    }

    /// The `ApiEndpoint` of every successful mint, oldest first.
    pub fn minted_endpoints(&self) -> Vec<String> {
        self.lock().mints.clone()
    }
}

/// The documented error body `{StatusCode, Message}` (seed 000, every
/// `*_Result` error schema).
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "StatusCode": status.as_u16(), "Message": message.into() })),
    )
        .into_response()
}

fn bad_request(detail: impl std::fmt::Display) -> Response {
    error(StatusCode::BAD_REQUEST, format!("Bad request: {detail}"))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// A 200 with `data`, wrapped in `{Successful, Data}` when configured.
fn success(sim: &TelegentSim, data: Value) -> Response {
    let body = if sim.lock().wrap_responses {
        json!({ "Successful": true, "Data": data })
    } else {
        data
    };
    (StatusCode::OK, Json(body)).into_response()
}

/// An unknown path gets the documented 404 body (inferred: the docs show
/// only resource-level 404s).
async fn route_not_found() -> Response {
    not_found()
}

/// seed 000, "405 Method Not Allowed".
async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, METHOD_NOT_ALLOWED)
}

/// The optional per-minute limit (providers.md §1.6: Standard tier 50/min,
/// then 429). It counts every API request, token minting included, over a
/// sliding minute for the whole simulator (inferred: the docs do not say
/// what the limit is keyed by). A refused request is not counted. No
/// `Retry-After` is sent: none is documented.
async fn rate_limit(State(sim): State<TelegentSim>, request: Request, next: Next) -> Response {
    let refused = {
        let mut state = sim.lock();
        match state.rate_limit {
            None => false,
            Some(limit) => {
                let now = Instant::now();
                while state
                    .recent
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
                {
                    state.recent.pop_front();
                }
                if state.recent.len() >= limit as usize {
                    true
                } else {
                    state.recent.push_back(now);
                    false
                }
            }
        }
    };
    if refused {
        return error(StatusCode::TOO_MANY_REQUESTS, TOO_MANY_REQUESTS);
    }
    next.run(request).await
}

/// The bearer token of `Authorization: Bearer <token>`; the scheme is
/// matched case-insensitively (RFC 9110 §11.1).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A path compared for token scope: lower case (the spec and the examples
/// disagree on `OAuth2`/`oauth2`, so case is not significant; inferred) and
/// without a trailing slash.
fn normalize_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
    trimmed.to_ascii_lowercase()
}

/// Auth for the webhook routes: a missing, unknown or expired token is the
/// documented 401; a token minted for another `ApiEndpoint` is the
/// documented 403 "Check the ApiEndpoint scope." (providers.md §1.1: "any
/// other endpoint rejects it"). Only the path of `ApiEndpoint` is compared:
/// the simulator cannot know the host name clients reach it by (inferred).
async fn require_token(State(sim): State<TelegentSim>, request: Request, next: Next) -> Response {
    let verdict = {
        let state = sim.lock();
        match bearer_token(request.headers()).and_then(|t| state.tokens.get(t)) {
            None => Some((StatusCode::UNAUTHORIZED, UNAUTHORIZED)),
            Some(token) if token.expires_at <= Utc::now() => {
                Some((StatusCode::UNAUTHORIZED, UNAUTHORIZED))
            }
            Some(token) if token.endpoint_path != normalize_path(request.uri().path()) => {
                Some((StatusCode::FORBIDDEN, FORBIDDEN))
            }
            Some(_) => None,
        }
    };
    match verdict {
        Some((status, message)) => error(status, message),
        None => next.run(request).await,
    }
}

/// An error answer built before a handler's main work, kept small so the
/// `Result`s carrying it stay cheap.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: format!("Bad request: {detail}"),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.status, self.message)
    }
}

/// The JSON object of a request body. seed 000 accepts `application/json`,
/// `text/json` and `application/*+json`; anything else is refused with 415
/// as ASP.NET does (inferred: the docs list no 415).
fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Refusal> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let accepted = content_type == "application/json"
        || content_type == "text/json"
        || (content_type.starts_with("application/") && content_type.ends_with("+json"));
    if !accepted {
        return Err(Refusal {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message:
                "Unsupported media type: send application/json, text/json or application/*+json."
                    .into(),
        });
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Refusal::bad_request(
            "the request body must be a JSON object.",
        )),
        Err(_) => Err(Refusal::bad_request("the request body is not valid JSON.")),
    }
}

/// A required non-blank string property.
fn required_string(input: &Map<String, Value>, field: &str) -> Result<String, String> {
    match input.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_) | Value::Null) | None => {
            Err(format!("The {field} field is required."))
        }
        Some(_) => Err(format!("{field} must be a string.")),
    }
}

/// `POST /v1.0/oauth2/tokens` `{AccountKey, AccountSecret, ApiEndpoint}` →
/// `{token, successful, tokenExpiry}` (providers.md §1.1). The token
/// response is never wrapped: its shape, with lower-case `successful`, is
/// documented as is.
async fn mint(State(sim): State<TelegentSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match json_object(&headers, &body) {
        Ok(input) => input,
        Err(refusal) => return refusal.into_response(),
    };
    // The request schema is not in the seeds; like every documented schema
    // it is taken to have `additionalProperties: false` (inferred).
    if let Some(unknown) = input
        .keys()
        .find(|k| !matches!(k.as_str(), "AccountKey" | "AccountSecret" | "ApiEndpoint"))
    {
        return bad_request(format_args!(
            "'{unknown}' is not a property of the token request."
        ));
    }
    let fields = ["AccountKey", "AccountSecret", "ApiEndpoint"].map(|f| required_string(&input, f));
    let [key, secret, endpoint] = match fields {
        [Ok(k), Ok(s), Ok(e)] => [k, s, e],
        // The ApiEndpoint message is the one reported by the knowledge bank.
        [Err(e), ..] | [_, Err(e), _] | [_, _, Err(e)] => return bad_request(e),
    };
    let endpoint_path = match url::Url::parse(&endpoint) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            normalize_path(u.path())
        }
        _ => return bad_request("ApiEndpoint must be the absolute URL of an API endpoint."),
    };
    let mut state = sim.lock();
    let known = state
        .account_keys
        .iter()
        .any(|(k, s)| *k == key && *s == secret);
    if !known {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: invalid AccountKey or AccountSecret.",
        );
    }
    let token: String = (0..32)
        .map(|_| char::from_digit(rand::random_range(0..16u32), 16).unwrap_or('0'))
        .collect();
    let now = Utc::now();
    let expires_at = now
        .checked_add_signed(state.token_ttl)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            endpoint_path,
            expires_at,
        },
    );
    state.mints.push(endpoint);
    (
        StatusCode::OK,
        Json(json!({
            "token": token,
            "successful": true,
            "tokenExpiry": expires_at.format(TOKEN_EXPIRY_FORMAT).to_string(),
        })),
    )
        .into_response()
}

/// Whether a body is a create (`Webhook_Request`) or an update
/// (`Update_Webhook_Request`: the same fields plus `WebhookId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
}

/// A validated create or update body.
#[derive(Debug)]
struct WebhookInput {
    fields: BTreeMap<&'static str, Option<String>>,
    webhook_id: Option<String>,
}

/// Whether `raw` is an absolute https URL with a host (seed 000: "The HTTPS
/// URL Telegent will call").
fn is_https_url(raw: &str) -> bool {
    raw.trim() == raw
        && url::Url::parse(raw).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some())
}

/// Validates a webhook body; the error is the `Message` of a 400.
///
/// Checks, in order: unknown properties (`additionalProperties: false`),
/// types (`string | null`) and max lengths (seed 000), then what the docs
/// require by meaning although the schema marks nothing required:
/// `AccountId`, an https `WebhookUrl`, `SubscribedEvents` whose
/// comma-separated items are each a documented event, `Method` POST or PUT,
/// `DataFormat` json or xml, and the credentials `AuthenticationType` needs.
/// Event items are matched exactly: case and spaces count (providers.md
/// §1.3 leaves both unknown; the strict reading is simulated).
fn validate_webhook(input: &Map<String, Value>, mode: Mode) -> Result<WebhookInput, String> {
    let fields = schema_fields(input, mode)?;
    let webhook_id = match mode {
        Mode::Create => None,
        // The update doc: WebhookId is required "to locate the existing
        // record" (providers.md §1.2).
        Mode::Update => Some(required_string(input, "WebhookId")?),
    };
    let fields = Fields(fields);
    fields.check_values()?;
    fields.check_auth(mode)?;
    Ok(WebhookInput {
        fields: fields.0,
        webhook_id,
    })
}

/// What the schema alone checks: unknown properties, then each field's
/// type and max length.
fn schema_fields(
    input: &Map<String, Value>,
    mode: Mode,
) -> Result<BTreeMap<&'static str, Option<String>>, String> {
    let schema = match mode {
        Mode::Create => "Webhook_Request",
        Mode::Update => "Update_Webhook_Request",
    };
    let known = |k: &str| {
        WEBHOOK_FIELDS.iter().any(|(f, _)| *f == k) || (mode == Mode::Update && k == "WebhookId")
    };
    if let Some(unknown) = input.keys().find(|k| !known(k)) {
        return Err(format!("'{unknown}' is not a property of {schema}."));
    }
    let mut fields = BTreeMap::new();
    for (name, max) in WEBHOOK_FIELDS {
        let value = match input.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(format!("{name} must be a string or null.")),
        };
        if let Some(v) = &value
            && v.chars().count() > max
        {
            return Err(format!("{name} must be at most {max} characters."));
        }
        fields.insert(name, value);
    }
    Ok(fields)
}

/// A webhook body's fields that passed the schema, checked by meaning.
struct Fields(BTreeMap<&'static str, Option<String>>);

impl Fields {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned().flatten()
    }

    fn present(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The target, events, `Method` and `DataFormat`.
    fn check_values(&self) -> Result<(), String> {
        for name in ["AccountId", "WebhookUrl", "SubscribedEvents"] {
            if self.present(name).is_none() {
                return Err(format!("The {name} field is required."));
            }
        }
        if !self.get("WebhookUrl").is_some_and(|u| is_https_url(&u)) {
            return Err("WebhookUrl must be an absolute HTTPS URL.".into());
        }
        for item in self.get("SubscribedEvents").unwrap_or_default().split(',') {
            if !SUBSCRIBABLE_EVENTS.contains(&item) {
                return Err(format!(
                    "SubscribedEvents contains '{item}', which is not a subscribable event ({}).",
                    SUBSCRIBABLE_EVENTS.join(", ")
                ));
            }
        }
        if let Some(method) = self.get("Method")
            && !matches!(method.as_str(), "POST" | "PUT")
        {
            return Err("Method must be POST or PUT.".into());
        }
        if let Some(format) = self.get("DataFormat")
            && !matches!(format.as_str(), "json" | "xml")
        {
            return Err("DataFormat must be json or xml.".into());
        }
        Ok(())
    }

    /// `AuthenticationType` and the credentials it needs.
    fn check_auth(&self, mode: Mode) -> Result<(), String> {
        // Create documents `None`, `Basic`, `Token`; update documents `Basic`,
        // `Bearer`, `None` (providers.md §1.2). An update must accept what a
        // create stored, so it takes `Token` as well as `Bearer` (inferred).
        let auth_type = self.get("AuthenticationType");
        let token_like = match (mode, auth_type.as_deref()) {
            (_, None | Some("None" | "Basic")) => false,
            (_, Some("Token")) | (Mode::Update, Some("Bearer")) => true,
            (Mode::Create, Some(_)) => {
                return Err("AuthenticationType must be None, Basic or Token.".into());
            }
            (Mode::Update, Some(_)) => {
                return Err("AuthenticationType must be None, Basic, Bearer or Token.".into());
            }
        };
        if auth_type.as_deref() == Some("Basic") {
            for name in ["AuthenticationUsername", "AuthenticationPassword"] {
                if self.present(name).is_none() {
                    return Err(format!(
                        "{name} is required when AuthenticationType is Basic."
                    ));
                }
            }
        }
        if token_like && self.present("AuthenticationToken").is_none() {
            return Err(format!(
                "AuthenticationToken is required when AuthenticationType is {}.",
                auth_type.unwrap_or_default()
            ));
        }
        Ok(())
    }
}

/// `POST /v1.0/webhook/create` → `Webhook_Result`. The webhook is `Active`
/// at once (the flag is read-only, providers.md §1.6).
async fn create(State(sim): State<TelegentSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match json_object(&headers, &body) {
        Ok(input) => input,
        Err(refusal) => return refusal.into_response(),
    };
    let valid = match validate_webhook(&input, Mode::Create) {
        Ok(valid) => valid,
        Err(message) => return bad_request(message),
    };
    let result = {
        let mut state = sim.lock();
        let account = valid.fields.get("AccountId").cloned().flatten();
        if !account.is_some_and(|a| state.accounts.contains(&a)) {
            return not_found();
        }
        // `WID-1234567` is the documented shape (providers.md §1.1); ids
        // are opaque to clients.
        let id = format!("WID-{}", state.next_id);
        state.next_id += 1;
        let webhook = StoredWebhook {
            id,
            fields: valid.fields,
            active: true,
        };
        let result = webhook.result_json();
        state.webhooks.push(webhook);
        result
    };
    success(&sim, result)
}

/// `POST /v1.0/webhook/update` → `Webhook_Result`. Update semantics are
/// undocumented (providers.md §1.6); the simulator replaces all nine fields
/// with what was sent, absent ones becoming null, the strictest reading
/// (inferred). A webhook of another account is not found.
async fn update(State(sim): State<TelegentSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match json_object(&headers, &body) {
        Ok(input) => input,
        Err(refusal) => return refusal.into_response(),
    };
    let valid = match validate_webhook(&input, Mode::Update) {
        Ok(valid) => valid,
        Err(message) => return bad_request(message),
    };
    let result = {
        let mut state = sim.lock();
        let account = valid.fields.get("AccountId").cloned().flatten();
        let id = valid.webhook_id.unwrap_or_default();
        let Some(webhook) = state
            .webhooks
            .iter_mut()
            .find(|w| w.id == id && w.account() == account.as_deref())
        else {
            return not_found();
        };
        webhook.fields = valid.fields;
        webhook.result_json()
    };
    success(&sim, result)
}

/// Body of `POST /v1.0/webhook/delete` (providers.md §1.2). Unknown
/// properties are refused like in every documented schema (inferred).
fn delete_input(input: &Map<String, Value>) -> Result<(String, String), String> {
    if let Some(unknown) = input
        .keys()
        .find(|k| !matches!(k.as_str(), "WebhookId" | "AccountId"))
    {
        return Err(format!(
            "'{unknown}' is not a property of the delete request."
        ));
    }
    Ok((
        required_string(input, "WebhookId")?,
        required_string(input, "AccountId")?,
    ))
}

/// `POST /v1.0/webhook/delete` → `Delete_Webhook_Result`
/// `{WebhookId, WebhookStatus}`. `"Deleted"` is inferred: the docs give no
/// example value.
async fn delete(State(sim): State<TelegentSim>, headers: HeaderMap, body: Bytes) -> Response {
    let input = match json_object(&headers, &body) {
        Ok(input) => input,
        Err(refusal) => return refusal.into_response(),
    };
    let (id, account) = match delete_input(&input) {
        Ok(ids) => ids,
        Err(message) => return bad_request(message),
    };
    {
        let mut state = sim.lock();
        let before = state.webhooks.len();
        state
            .webhooks
            .retain(|w| !(w.id == id && w.account() == Some(account.as_str())));
        if state.webhooks.len() == before {
            return not_found();
        }
    }
    success(&sim, json!({ "WebhookId": id, "WebhookStatus": "Deleted" }))
}

/// The query parameters of `uri`, decoded.
fn query(uri: &Uri) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn required_param(params: &BTreeMap<String, String>, name: &str) -> Result<String, Refusal> {
    params
        .get(name)
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .ok_or_else(|| {
            Refusal::bad_request(format_args!("the {name} query parameter is required."))
        })
}

/// `GET /v1.0/webhook?WebhookId=…&AccountId=…` → `Webhook_Result`. The
/// parameters are not marked required, but a lookup needs both (inferred).
async fn show(State(sim): State<TelegentSim>, uri: Uri) -> Response {
    let params = query(&uri);
    let (id, account) = match (
        required_param(&params, "WebhookId"),
        required_param(&params, "AccountId"),
    ) {
        (Ok(id), Ok(account)) => (id, account),
        (Err(refusal), _) | (_, Err(refusal)) => return refusal.into_response(),
    };
    let result = sim
        .lock()
        .webhooks
        .iter()
        .find(|w| w.id == id && w.account() == Some(account.as_str()))
        .map(StoredWebhook::result_json);
    match result {
        Some(result) => success(&sim, result),
        None => not_found(),
    }
}

/// `GET /v1.0/account/webhooks?AccountId=…` → array of `Webhook_Result`, no
/// pagination (providers.md §1.6). An unknown account is not found.
async fn list(State(sim): State<TelegentSim>, uri: Uri) -> Response {
    let account = match required_param(&query(&uri), "AccountId") {
        Ok(account) => account,
        Err(refusal) => return refusal.into_response(),
    };
    if !sim.lock().accounts.contains(&account) {
        return not_found();
    }
    success(&sim, json!(sim.webhooks(&account)))
}

async fn control_tokens(State(sim): State<TelegentSim>) -> Response {
    let endpoints = sim.minted_endpoints();
    (
        StatusCode::OK,
        Json(json!({ "mints": endpoints.len(), "endpoints": endpoints })),
    )
        .into_response()
}

async fn control_expire(State(sim): State<TelegentSim>) -> StatusCode {
    sim.expire_tokens();
    StatusCode::NO_CONTENT
}

/// Body of `POST /_sim/telegent/accounts`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddAccount {
    id: String,
}

async fn control_add_account(
    State(sim): State<TelegentSim>,
    Json(body): Json<AddAccount>,
) -> Response {
    if body.id.trim().is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": "id must not be empty" })),
        )
            .into_response();
    }
    sim.add_account(body.id.clone());
    (StatusCode::CREATED, Json(json!({ "id": body.id }))).into_response()
}

async fn control_webhooks(State(sim): State<TelegentSim>, Path(account): Path<String>) -> Response {
    if !sim.lock().accounts.contains(&account) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "message": format!("unknown account {account}") })),
        )
            .into_response();
    }
    (StatusCode::OK, Json(json!(sim.webhooks(&account)))).into_response()
}

/// Deliveries as Telegent documents them (providers.md §1.4–1.5): to the
/// webhook's `WebhookUrl` with its `Method`, authenticated only by its
/// configured credentials: `Authorization: Basic base64(user:pass)` for
/// `Basic`, `Authorization: Bearer <AuthenticationToken>` for `Token` (or
/// the update doc's `Bearer`); the scheme words are inferred, the docs say
/// only that the token goes in the `Authorization` header. No signature,
/// timestamp or delivery id is documented, so none is sent.
impl Outbox for TelegentSim {
    fn outbound(&self, order: &DeliveryOrder) -> Result<Outbound, Refused> {
        let state = self.lock();
        let webhook = state
            .webhooks
            .iter()
            .find(|w| w.field("WebhookUrl") == Some(order.url.as_str()))
            .ok_or_else(|| Refused::no_webhook(&order.url))?;
        if !webhook.active {
            return Err(Refused::disabled());
        }
        let format = webhook.field("DataFormat").unwrap_or("json");
        if !format.eq_ignore_ascii_case("json") {
            return Err(Refused::unfit(format!(
                "DataFormat `{format}`: no {format} delivery is documented"
            )));
        }
        let subscribed: Vec<&str> = webhook
            .field("SubscribedEvents")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let event = pick_event(&subscribed, order.event.as_deref())?;
        let mut headers = Vec::new();
        let auth_type = webhook.field("AuthenticationType").unwrap_or("None");
        let secret = |name| webhook.field(name).unwrap_or_default().to_owned();
        let credential = match auth_type.to_ascii_lowercase().as_str() {
            "basic" => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    secret("AuthenticationUsername"),
                    secret("AuthenticationPassword")
                ))
            )),
            "token" | "bearer" => Some(format!("Bearer {}", secret("AuthenticationToken"))),
            _ => None,
        };
        match (credential, order.corrupt) {
            (Some(credential), corrupt) => {
                let value = if corrupt {
                    corrupted(&credential)
                } else {
                    credential
                };
                headers.push((AUTHORIZATION.as_str().to_owned(), value));
            }
            (None, true) => return Err(Refused::nothing_to_corrupt()),
            (None, false) => {}
        }
        let body = order.payload.clone().unwrap_or_else(|| example_body(event));
        let method = webhook
            .field("Method")
            .unwrap_or("POST")
            .to_ascii_uppercase();
        Ok(Outbound::json(event, &order.url, method, headers, &body))
    }
}

impl StoredWebhook {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).and_then(|v| v.as_deref())
    }
}

/// The documented example body of `event`: the inbound-message fields of
/// the onboarding guide for `New_Sms` (providers.md §1.5; whether
/// `New_Sms` deliveries use that body is UNKNOWN); no other payload is
/// public, so other events get `{}` unless the order gives one.
fn example_body(event: &str) -> Value {
    if event.eq_ignore_ascii_case("New_Sms") {
        json!({
            "Message_ID": format!("MID-{}", rand::random_range(1_000_000..10_000_000)),
            "Owner": "+15125550100",
            "To": "+15125550100",
            "From": "+15125550199",
            "Message_Body": "Hello from the Telegent simulator",
            "Segment": 1,
        })
    } else {
        json!({})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    /// The seed 000 create example.
    fn seed_example() -> Value {
        json!({
            "AccountId": "AID-1234567",
            "WebhookUrl": "https://api.example.com/telegent/events",
            "Method": "POST",
            "DataFormat": "json",
            "AuthenticationType": "Basic",
            "AuthenticationUsername": "webhook_user",
            "AuthenticationPassword": "s3cureP@ss",
            "AuthenticationToken": "",
            "SubscribedEvents": "Order_Update"
        })
    }

    fn refused(value: Value, mode: Mode) -> String {
        validate_webhook(&input(value), mode).expect_err("invalid")
    }

    #[test]
    fn the_seed_example_is_valid() {
        let valid = validate_webhook(&input(seed_example()), Mode::Create).expect("valid");
        assert_eq!(valid.fields.len(), 9);
        assert_eq!(
            valid.fields["SubscribedEvents"].as_deref(),
            Some("Order_Update")
        );
    }

    #[test]
    fn unknown_properties_are_refused() {
        let mut body = seed_example();
        body["WebhookId"] = json!("WID-1");
        assert!(refused(body.clone(), Mode::Create).contains("'WebhookId'"));
        assert!(validate_webhook(&input(body), Mode::Update).is_ok());
        let mut body = seed_example();
        body["Name"] = json!("x");
        assert!(refused(body, Mode::Create).contains("'Name'"));
    }

    #[test]
    fn max_lengths_are_inclusive() {
        for (name, max) in WEBHOOK_FIELDS {
            let mut body = seed_example();
            let at_max = if name == "WebhookUrl" {
                format!("https://e.io/{}", "a".repeat(max - 13))
            } else if name == "SubscribedEvents" || name == "Method" || name == "DataFormat" {
                continue;
            } else {
                "a".repeat(max)
            };
            body[name] = json!(at_max);
            if name == "AuthenticationType" {
                assert!(refused(body.clone(), Mode::Create).contains("None, Basic or Token"));
            } else {
                assert!(
                    validate_webhook(&input(body.clone()), Mode::Create).is_ok(),
                    "{name}"
                );
            }
            body[name] = json!(format!("{at_max}a"));
            assert_eq!(
                refused(body, Mode::Create),
                format!("{name} must be at most {max} characters.")
            );
        }
        let mut body = seed_example();
        body["SubscribedEvents"] = json!(vec!["New_Sms"; 32].join(","));
        assert!(validate_webhook(&input(body.clone()), Mode::Create).is_ok());
        body["SubscribedEvents"] = json!(vec!["New_Sms"; 33].join(","));
        assert!(refused(body, Mode::Create).starts_with("SubscribedEvents must be at most 255"));
    }

    #[test]
    fn required_by_meaning() {
        let mut body = seed_example();
        body["AuthenticationPassword"] = json!("");
        assert_eq!(
            refused(body, Mode::Create),
            "AuthenticationPassword is required when AuthenticationType is Basic."
        );
        let mut body = seed_example();
        body["AuthenticationType"] = json!("Token");
        assert_eq!(
            refused(body.clone(), Mode::Create),
            "AuthenticationToken is required when AuthenticationType is Token."
        );
        body["AuthenticationToken"] = json!("cb-token");
        assert!(validate_webhook(&input(body.clone()), Mode::Create).is_ok());
        body["AuthenticationType"] = json!("Bearer");
        assert!(refused(body.clone(), Mode::Create).contains("None, Basic or Token"));
        body["WebhookId"] = json!("WID-1");
        assert!(validate_webhook(&input(body), Mode::Update).is_ok());
        let mut body = seed_example();
        body["WebhookUrl"] = json!("http://api.example.com/x");
        assert!(refused(body, Mode::Create).contains("HTTPS"));
        let mut body = seed_example();
        if let Some(map) = body.as_object_mut() {
            map.remove("AccountId");
        }
        assert_eq!(
            refused(body, Mode::Create),
            "The AccountId field is required."
        );
        let mut body = seed_example();
        body["Method"] = json!("PATCH");
        assert_eq!(refused(body, Mode::Create), "Method must be POST or PUT.");
        let mut body = seed_example();
        body["DataFormat"] = json!("csv");
        assert_eq!(
            refused(body, Mode::Create),
            "DataFormat must be json or xml."
        );
        let mut body = seed_example();
        body["AccountId"] = json!(5);
        assert_eq!(
            refused(body, Mode::Create),
            "AccountId must be a string or null."
        );
        assert_eq!(
            refused(seed_example(), Mode::Update),
            "The WebhookId field is required."
        );
    }

    #[test]
    fn events_are_matched_exactly() {
        let mut body = seed_example();
        body["SubscribedEvents"] = json!(SUBSCRIBABLE_EVENTS.join(","));
        assert!(validate_webhook(&input(body.clone()), Mode::Create).is_ok());
        for bad in [
            "Order_Update, New_Sms",
            "Order_Update,New_SMS",
            "Message_Status",
            "Order_Update,",
        ] {
            body["SubscribedEvents"] = json!(bad);
            assert!(
                refused(body.clone(), Mode::Create).starts_with("SubscribedEvents contains"),
                "{bad}"
            );
        }
    }

    #[test]
    fn token_expiry_format_matches_the_example() {
        let at = DateTime::parse_from_rfc3339("2025-05-02T18:36:13Z")
            .expect("literal timestamp")
            .with_timezone(&Utc);
        assert_eq!(
            at.format(TOKEN_EXPIRY_FORMAT).to_string(),
            "05/02/2025 06:36:13 PM"
        );
    }

    #[test]
    fn scope_paths_ignore_case_and_trailing_slashes() {
        assert_eq!(
            normalize_path("/v1.0/Webhook/Create/"),
            "/v1.0/webhook/create"
        );
        assert_eq!(normalize_path("/"), "/");
        assert_ne!(
            normalize_path("/v1.0/webhook"),
            normalize_path("/v1.0/webhook/create")
        );
    }

    #[test]
    fn bearer_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "bearer abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer ".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
    }
}
