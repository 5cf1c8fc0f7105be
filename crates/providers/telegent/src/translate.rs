//! Pure Telegent translation: capabilities, the plan (normalized → native
//! bodies, split at 255 characters of events), request builders, token
//! request/response parsing, webhook response parsing (flat or wrapped) and
//! error classification. No I/O, no clock: callers pass `now`.
//!
//! Facts are from providers.md §1 and seed 000 (the OpenAPI document of
//! "Create Webhook"); seed 001 is the rendered page of the same operation.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use http::Method;
use serde_json::{Map, Value, json};
use switchboard_core::subscription::AuthKind;
use switchboard_core::{
    AccountRule, AccountShape, CallbackAuth, Capabilities, DeliveryFormat, DeliveryMethod, Error,
    EventsPerResource, FieldError, NativePlan, NativeRequest, NativeResource, NativeResponse,
    Secret, SubscriptionSpec, UpstreamErrorKind,
};

/// seed 000 `Webhook_Request.AccountId`: max 100 characters.
pub const ACCOUNT_MAX_CHARS: usize = 100;

/// The start of every `AccountId`: seed 001 "in the format AID-XXXXXXX",
/// providers.md §1.1 "`AID-` is an account".
pub const ACCOUNT_PREFIX: &str = "AID-";
/// seed 000 `Webhook_Request.WebhookUrl`: max 255 characters.
pub const URL_MAX_CHARS: usize = 255;
/// seed 000 `AuthenticationUsername` / `AuthenticationPassword` /
/// `AuthenticationToken`: max 255 characters each.
pub const CREDENTIAL_MAX_CHARS: usize = 255;
/// seed 000 `Webhook_Request.SubscribedEvents`: one comma-separated string
/// of at most 255 characters.
pub const EVENTS_MAX_CHARS: usize = 255;

/// The token endpoint. The spec writes `/v1.0/OAuth2/tokens`; every example
/// uses lower case (providers.md §1.1), as here.
pub const TOKEN_PATH: &str = "/v1.0/oauth2/tokens";

/// A cached token is not reused in its last minute, so that a request never
/// races the expiry on its way to Telegent.
pub const TOKEN_REFRESH_MARGIN: TimeDelta = TimeDelta::seconds(60);

/// The nine fields of `Webhook_Request` (seed 000), which has
/// `additionalProperties: false`: a body with any other field is invalid.
pub const REQUEST_FIELDS: [&str; 9] = [
    "AccountId",
    "WebhookUrl",
    "Method",
    "DataFormat",
    "AuthenticationType",
    "AuthenticationUsername",
    "AuthenticationPassword",
    "AuthenticationToken",
    "SubscribedEvents",
];

/// Request fields that hold callback credentials. `Webhook_Result` echoes
/// them back (seed 000), so response parsing drops them at once.
pub const SECRET_FIELDS: [&str; 2] = ["AuthenticationPassword", "AuthenticationToken"];

/// JSON pointers of [`SECRET_FIELDS`] in a create or update body.
pub fn secret_pointers() -> Vec<String> {
    SECRET_FIELDS.iter().map(|f| format!("/{f}")).collect()
}

/// One of the five webhook endpoints. Telegent scopes a bearer token to one
/// `ApiEndpoint` URL (providers.md §1.1), so each needs its own token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `POST /v1.0/webhook/create`.
    Create,
    /// `POST /v1.0/webhook/update`.
    Update,
    /// `POST /v1.0/webhook/delete`.
    Delete,
    /// `GET /v1.0/webhook?WebhookId=&AccountId=`.
    Get,
    /// `GET /v1.0/account/webhooks?AccountId=` (tag "Accounts").
    List,
}

impl Endpoint {
    /// The documented path (providers.md §1.2).
    pub fn path(self) -> &'static str {
        match self {
            Self::Create => "/v1.0/webhook/create",
            Self::Update => "/v1.0/webhook/update",
            Self::Delete => "/v1.0/webhook/delete",
            Self::Get => "/v1.0/webhook",
            Self::List => "/v1.0/account/webhooks",
        }
    }

    /// The `ApiEndpoint` a token for this endpoint is minted for: the full
    /// URL without query, e.g. `https://api.telegent.com/v1.0/webhook/create`.
    pub fn api_endpoint(self, base_url: &str) -> String {
        format!("{}{}", base_url.trim_end_matches('/'), self.path())
    }

    /// Whether a 404 here means the account rather than a webhook: create
    /// and list name no webhook, and the documented 404 reads "does not
    /// exist or belongs to a different account" (seed 000).
    fn not_found_is_account(self) -> bool {
        matches!(self, Self::Create | Self::List)
    }
}

/// The syntax of a Telegent native event name: a `SubscribedEvents` enum
/// value (`Call_Completed`, seed 000). Letters, digits and `_` only, as the
/// names travel comma-joined in one field (providers.md §1.2).
pub fn check_native_event(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Telegent event name: Telegent names are letters, digits and `_` (`Call_Completed`)"
        ))
    }
}

/// What Telegent can do (seed 000 `Webhook_Request`, providers.md §1.2–1.6).
pub fn capabilities() -> Capabilities {
    Capabilities {
        // The docs show the form `AID-XXXXXXX` (seed 001) and the example
        // `AID-1234567` (seed 000), with a limit of 100 characters. The X
        // placeholders fix neither a length nor digits only, so what follows
        // the prefix is any run of ASCII letters and digits; the docs show
        // no other character in an id.
        account: AccountRule::Required {
            meaning: "Telegent AccountId (AID-…)",
            max_len: ACCOUNT_MAX_CHARS,
            shape: AccountShape::Prefixed {
                prefix: ACCOUNT_PREFIX,
            },
        },
        events_per_resource: EventsPerResource::JoinedMaxChars {
            max_chars: EVENTS_MAX_CHARS,
        },
        url_max_len: URL_MAX_CHARS,
        // seed 000: "The HTTPS URL Telegent will call".
        https_only: true,
        // seed 000: `AuthenticationType` `None`, `Basic` or `Token`.
        auth: vec![AuthKind::None, AuthKind::Basic, AuthKind::Bearer],
        // providers.md §1.4: no signing scheme in any public material.
        signing_secret_max_len: None,
        headers: false,
        // seed 000: `Method` "typically POST or PUT".
        methods: vec![DeliveryMethod::Post, DeliveryMethod::Put],
        // seed 000: `DataFormat` "such as json or xml".
        formats: vec![DeliveryFormat::Json, DeliveryFormat::Xml],
        timeout_seconds: None,
        max_retries: None,
        filters: false,
        // providers.md §1.6: `Active` is read-only; no field switches it.
        native_disable: false,
        serialize_account: false,
        // List returns an array of `Webhook_Result`, the schema Get returns
        // (providers.md §1.2).
        list_is_complete: true,
        provider_options: Vec::new(),
        unsigned_events: vec![],
    }
}

/// The plan key of the `index`-th chunk: `webhook-0`, `webhook-1`, …
pub fn plan_key(index: usize) -> String {
    format!("webhook-{index}")
}

/// Splits `events` into chunks whose comma-joined form (no spaces) is at
/// most `max_chars` characters, filling each chunk greedily in the given
/// order. The split depends only on the list, so the same events always give
/// the same chunks, and appending events leaves the earlier chunks as they
/// were. `Err(i)` names an event that cannot fit in any chunk.
pub fn chunk_events(events: &[String], max_chars: usize) -> Result<Vec<Vec<String>>, usize> {
    let mut chunks: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut current_len = 0;
    for (i, event) in events.iter().enumerate() {
        let len = event.chars().count();
        if len > max_chars {
            return Err(i);
        }
        let joined_len = if current.is_empty() {
            len
        } else {
            current_len + 1 + len
        };
        if joined_len > max_chars {
            chunks.push(std::mem::take(&mut current));
            current_len = len;
        } else {
            current_len = joined_len;
        }
        current.push(event.clone());
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    Ok(chunks)
}

fn too_long(provider: &str, pointer: &str, field: &str, max: usize) -> FieldError {
    FieldError::provider(
        pointer,
        format!("must be at most {max} characters for Telegent (`{field}`, seed 000)"),
        provider,
    )
}

/// Normalized subscription → one create body per chunk of events.
///
/// Every `Webhook_Request` field is always written (defaults spelled out:
/// `POST`, `json`, `None`, empty credentials as in the seed 000 example's
/// `"AuthenticationToken": ""`), so that an update can send every field and
/// a credential that is no longer wanted is overwritten, not kept. Telegent
/// has no free-text field (seed 000 `Webhook_Request`), so `_id`, the
/// subscription id other kinds write into a name, is not sent.
pub fn plan(
    _id: &str,
    spec: &SubscriptionSpec,
    events: &[String],
) -> Result<Vec<NativePlan>, Error> {
    let provider = spec.provider.as_str();
    let mut errors = Vec::new();
    let account = check_target(spec, &mut errors);
    let method = delivery_method(spec, &mut errors);
    let format = spec.format.unwrap_or(DeliveryFormat::Json).as_str();
    let (auth_type, username, password, token) = callback_auth(spec, &mut errors);
    let chunks = event_chunks(provider, events, &mut errors);
    if !errors.is_empty() {
        return Err(Error::Invalid(errors));
    }
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| NativePlan {
            key: plan_key(i),
            body: json!({
                "AccountId": account,
                "WebhookUrl": spec.url.as_str(),
                "Method": method,
                "DataFormat": format,
                "AuthenticationType": auth_type,
                "AuthenticationUsername": username,
                "AuthenticationPassword": password,
                "AuthenticationToken": token,
                "SubscribedEvents": chunk.join(","),
            }),
            events: chunk,
            secret_pointers: secret_pointers(),
        })
        .collect())
}

/// The `AccountId` (required) and `WebhookUrl` within Telegent's lengths.
fn check_target<'s>(spec: &'s SubscriptionSpec, errors: &mut Vec<FieldError>) -> &'s str {
    let provider = spec.provider.as_str();
    let account = spec.account.as_deref().unwrap_or_default();
    if account.trim().is_empty() {
        errors.push(FieldError::provider(
            "/account",
            "is required by Telegent: the AccountId (AID-…)",
            provider,
        ));
    } else if account.chars().count() > ACCOUNT_MAX_CHARS {
        errors.push(too_long(
            provider,
            "/account",
            "AccountId",
            ACCOUNT_MAX_CHARS,
        ));
    }
    if spec.url.as_str().chars().count() > URL_MAX_CHARS {
        errors.push(too_long(provider, "/url", "WebhookUrl", URL_MAX_CHARS));
    }
    account
}

/// The `Method`: POST unless the spec asks for PUT.
fn delivery_method(spec: &SubscriptionSpec, errors: &mut Vec<FieldError>) -> &'static str {
    match spec.method.unwrap_or(DeliveryMethod::Post) {
        DeliveryMethod::Patch => {
            errors.push(FieldError::provider(
                "/method",
                "Telegent delivers with POST or PUT only (seed 000 `Method`)",
                spec.provider.as_str(),
            ));
            "PATCH"
        }
        m => m.as_str(),
    }
}

/// `AuthenticationType`, `…Username`, `…Password` and `…Token`, each
/// within Telegent's credential length.
fn callback_auth<'s>(
    spec: &'s SubscriptionSpec,
    errors: &mut Vec<FieldError>,
) -> (&'static str, &'s str, &'s str, &'s str) {
    let provider = spec.provider.as_str();
    let (auth_type, username, password, token) = match &spec.auth {
        CallbackAuth::None => ("None", "", "", ""),
        CallbackAuth::Basic { username, password } => {
            if username.is_empty() {
                errors.push(FieldError::provider(
                    "/auth/username",
                    "is required by Telegent for Basic authentication",
                    provider,
                ));
            }
            if password.expose().is_empty() {
                errors.push(FieldError::provider(
                    "/auth/password",
                    "is required by Telegent for Basic authentication",
                    provider,
                ));
            }
            ("Basic", username.as_str(), password.expose(), "")
        }
        // seed 000 (create): `Token` is the bearer scheme; Telegent "sends
        // it in the Authorization header".
        CallbackAuth::Bearer { token } => {
            if token.expose().is_empty() {
                errors.push(FieldError::provider(
                    "/auth/token",
                    "is required by Telegent for Token authentication",
                    provider,
                ));
            }
            ("Token", "", "", token.expose())
        }
        CallbackAuth::ApiKey { .. } => {
            errors.push(FieldError::provider(
                "/auth",
                "Telegent supports callback auth none, basic and bearer only",
                provider,
            ));
            ("None", "", "", "")
        }
    };
    for (value_len, pointer, field) in [
        (
            username.chars().count(),
            "/auth/username",
            "AuthenticationUsername",
        ),
        (
            password.chars().count(),
            "/auth/password",
            "AuthenticationPassword",
        ),
        (token.chars().count(), "/auth/token", "AuthenticationToken"),
    ] {
        if value_len > CREDENTIAL_MAX_CHARS {
            errors.push(too_long(provider, pointer, field, CREDENTIAL_MAX_CHARS));
        }
    }
    (auth_type, username, password, token)
}

/// The events as `SubscribedEvents` chunks, each name one Telegent can
/// carry.
fn event_chunks(
    provider: &str,
    events: &[String],
    errors: &mut Vec<FieldError>,
) -> Vec<Vec<String>> {
    if events.is_empty() {
        errors.push(FieldError::provider(
            "/events",
            "needs at least one event",
            provider,
        ));
    }
    // A comma inside a name would split it into two events at Telegent
    // (`SubscribedEvents` is comma-separated, seed 000).
    for (i, event) in events.iter().enumerate() {
        if event.contains(',') || event.trim() != event || event.is_empty() {
            errors.push(FieldError::provider(
                format!("/events/{i}"),
                format!("`{event}` cannot be a Telegent event name: names are separated by commas"),
                provider,
            ));
        }
    }
    match chunk_events(events, EVENTS_MAX_CHARS) {
        Ok(chunks) => chunks,
        Err(i) => {
            errors.push(FieldError::provider(
                format!("/events/{i}"),
                format!(
                    "is longer than Telegent's {EVENTS_MAX_CHARS}-character `SubscribedEvents` field"
                ),
                provider,
            ));
            Vec::new()
        }
    }
}

fn authorized(req: NativeRequest, token: &str) -> NativeRequest {
    // seed 000: `Authorization: Bearer <token>` on every call. Success
    // bodies are declared as text/plain too, so JSON is asked for.
    req.header("Authorization", format!("Bearer {token}"), true)
        .header("Accept", "application/json", false)
}

/// `POST /v1.0/oauth2/tokens` `{AccountKey, AccountSecret, ApiEndpoint}`
/// (providers.md §1.1). `ApiEndpoint` is sent although the schema marks it
/// optional: leaving it out "reportedly returns 'The ApiEndpoint field is
/// required.'", and it is what scopes the token.
pub fn token_request(
    account_key: &str,
    account_secret: &Secret,
    api_endpoint: &str,
) -> NativeRequest {
    NativeRequest::new(Method::POST, TOKEN_PATH)
        .header("Accept", "application/json", false)
        .json(
            json!({
                "AccountKey": account_key,
                "AccountSecret": account_secret.expose(),
                "ApiEndpoint": api_endpoint,
            }),
            vec!["/AccountSecret".to_owned()],
        )
}

/// A token as minted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintedToken {
    /// The bearer token.
    pub token: Secret,
    /// `tokenExpiry` read as UTC, when present and readable.
    pub expiry: Option<DateTime<Utc>>,
}

/// Parses `tokenExpiry`, documented as `MM/DD/YYYY hh:mm:ss AM/PM` with no
/// time zone (providers.md §1.1); it is read as UTC. Unpadded month, day and
/// hour (.NET's en-US general format) and ISO 8601 are accepted too.
pub fn parse_token_expiry(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Some(at.with_timezone(&Utc));
    }
    [
        "%m/%d/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S%.f",
    ]
    .iter()
    .find_map(|fmt| NaiveDateTime::parse_from_str(raw, fmt).ok())
    .map(|naive| naive.and_utc())
}

/// How long a freshly minted token may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenReuse {
    /// Reuse while `now` is before this instant (which may already have
    /// passed: the token then serves only the call that minted it).
    Until(DateTime<Utc>),
    /// Reuse until Telegent refuses it (401/403), then re-mint.
    UntilRefused,
}

/// The reuse window of a token minted at `now` with `expiry`.
///
/// An expiry that is missing, unreadable or already past at minting time
/// says the UTC reading is wrong (the docs state no time zone), so the token
/// is then kept until refused rather than re-minted on every call, which
/// would double the requests against the 50/min limit.
pub fn token_reuse(expiry: Option<DateTime<Utc>>, now: DateTime<Utc>) -> TokenReuse {
    match expiry {
        Some(at) if at > now => TokenReuse::Until(at - TOKEN_REFRESH_MARGIN),
        _ => TokenReuse::UntilRefused,
    }
}

/// The value of the first present key, for fields whose case differs
/// between documents (`successful` in the token response, `Successful` in
/// the getting-started envelope, providers.md §1.2).
fn field<'a>(obj: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| obj.get(*n))
}

/// Parses the token response `{token, successful, tokenExpiry}`
/// (providers.md §1.1). Every refusal to mint is an operator problem
/// (Switchboard's own credentials), so 400/401/403/422 and
/// `successful: false` are [`UpstreamErrorKind::Unauthorized`].
pub fn parse_token(provider: &str, resp: &NativeResponse) -> Result<MintedToken, Error> {
    let body = resp.json();
    if !resp.is_success() {
        let message = message_of(&body);
        let kind = match resp.status {
            400 | 401 | 403 | 422 => UpstreamErrorKind::Unauthorized,
            other => UpstreamErrorKind::from_status(other, resp.retry_after),
        };
        return Err(Error::upstream(
            provider,
            kind,
            Some(resp.status),
            format!("Telegent refused to mint a management token: {message}"),
        ));
    }
    let empty = Map::new();
    let top = body.as_object().unwrap_or(&empty);
    let obj = field(top, &["Data", "data"])
        .and_then(Value::as_object)
        .unwrap_or(top);
    if field(top, &["successful", "Successful"]).and_then(Value::as_bool) == Some(false) {
        return Err(Error::upstream(
            provider,
            UpstreamErrorKind::Unauthorized,
            Some(resp.status),
            format!(
                "Telegent refused to mint a management token: {}",
                message_of(&body)
            ),
        ));
    }
    let token = field(obj, &["token", "Token"])
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Error::upstream(
                provider,
                UpstreamErrorKind::Protocol,
                Some(resp.status),
                "token response without `token`",
            )
        })?;
    let expiry = field(obj, &["tokenExpiry", "TokenExpiry"])
        .and_then(Value::as_str)
        .and_then(parse_token_expiry);
    Ok(MintedToken {
        token: Secret::new(token),
        expiry,
    })
}

/// `POST /v1.0/webhook/create` with the plan's body.
pub fn create_request(token: &str, plan: &NativePlan) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::POST, Endpoint::Create.path()),
        token,
    )
    .json(plan.body.clone(), plan.secret_pointers.clone())
}

/// The update body: every `Update_Webhook_Request` field (the nine request
/// fields plus `WebhookId`). Update semantics are undocumented
/// (providers.md §1.6), so nothing is left out: each field comes from the
/// new plan, else from the current webhook's visible fields, else `null`.
/// Credentials never come from the current webhook (they are dropped when
/// it is parsed).
pub fn update_body(webhook_id: &str, current: &Map<String, Value>, new: &NativePlan) -> Value {
    let mut body = Map::new();
    for name in REQUEST_FIELDS {
        let from_current = if SECRET_FIELDS.contains(&name) {
            None
        } else {
            current.get(name)
        };
        let value = new
            .body
            .get(name)
            .or(from_current)
            .cloned()
            .unwrap_or(Value::Null);
        body.insert(name.to_owned(), value);
    }
    body.insert("WebhookId".to_owned(), json!(webhook_id));
    Value::Object(body)
}

/// Whether an update from `old` to `new` would change nothing at Telegent:
/// the plans are equal and the webhook's visible fields are what the plan
/// writes. Skipping the write saves a request against the 50/min limit.
pub fn update_is_noop(current: &CurrentWebhook, old: &NativePlan, new: &NativePlan) -> bool {
    old == new
        && REQUEST_FIELDS
            .iter()
            .filter(|f| !SECRET_FIELDS.contains(f))
            .all(|f| current.fields.get(*f) == new.body.get(*f))
}

/// `POST /v1.0/webhook/update` with a body from [`update_body`]
/// (a POST, not PUT or PATCH, providers.md §1.2).
pub fn update_request(token: &str, body: Value) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::POST, Endpoint::Update.path()),
        token,
    )
    .json(body, secret_pointers())
}

/// `POST /v1.0/webhook/delete` `{WebhookId, AccountId}` (providers.md §1.2).
pub fn delete_request(token: &str, account: &str, id: &str) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::POST, Endpoint::Delete.path()),
        token,
    )
    .json(json!({"WebhookId": id, "AccountId": account}), Vec::new())
}

/// `GET /v1.0/webhook?WebhookId=…&AccountId=…`.
pub fn get_request(token: &str, account: &str, id: &str) -> NativeRequest {
    authorized(NativeRequest::new(Method::GET, Endpoint::Get.path()), token)
        .query("WebhookId", id)
        .query("AccountId", account)
}

/// `GET /v1.0/account/webhooks?AccountId=…`.
pub fn list_request(token: &str, account: &str) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::GET, Endpoint::List.path()),
        token,
    )
    .query("AccountId", account)
}

/// A webhook as read from Telegent, credentials already dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentWebhook {
    /// The normalized view.
    pub resource: NativeResource,
    /// The request fields Telegent returned, except [`SECRET_FIELDS`].
    pub fields: Map<String, Value>,
}

/// The error text of `{StatusCode, Message}` (seed 000), or of a
/// lower-case `message` as proxies in front of Telegent write it.
fn message_of(body: &Value) -> String {
    body.as_object()
        .and_then(|o| field(o, &["Message", "message"]))
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned()
}

/// The result of a successful call: the body itself (the schemas are flat)
/// or `Data` of a `{Successful, Data}` envelope (the getting-started pages,
/// providers.md §1.2). A flat `Webhook_Result` can never have either key
/// (`additionalProperties: false`), which tells the two apart.
fn payload(provider: &str, resp: &NativeResponse, endpoint: Endpoint) -> Result<Value, Error> {
    if !resp.is_success() {
        return Err(classify_error(provider, resp, endpoint));
    }
    let body = resp.json();
    let Some(obj) = body.as_object() else {
        return Ok(body);
    };
    let successful = field(obj, &["Successful", "successful"]);
    let data = field(obj, &["Data", "data"]);
    if successful.is_none() && data.is_none() {
        return Ok(body);
    }
    if successful.and_then(Value::as_bool) == Some(false) {
        let status = field(obj, &["StatusCode", "statusCode"])
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (400..600).contains(s));
        let message = message_of(&body);
        return Err(match status {
            Some(status) => classify(provider, status, message, resp.retry_after, endpoint),
            None => Error::upstream(
                provider,
                UpstreamErrorKind::Protocol,
                Some(resp.status),
                format!("Successful: false without a StatusCode: {message}"),
            ),
        });
    }
    data.cloned().ok_or_else(|| {
        Error::upstream(
            provider,
            UpstreamErrorKind::Protocol,
            Some(resp.status),
            "response envelope without Data",
        )
    })
}

/// `Webhook_Result` → [`CurrentWebhook`]; `AuthenticationPassword` and
/// `AuthenticationToken` are never copied out of `data`.
fn webhook_from(provider: &str, data: &Value) -> Result<CurrentWebhook, Error> {
    let protocol = |what: &str| {
        Error::upstream(
            provider,
            UpstreamErrorKind::Protocol,
            None,
            format!("webhook result without {what}"),
        )
    };
    let obj = data.as_object().ok_or_else(|| protocol("an object"))?;
    let id = obj
        .get("WebhookId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| protocol("`WebhookId`"))?;
    // The update example sends "Order_Update, New_SMS" (seed 001 /
    // providers.md §1.3): spaces after commas are trimmed when reading.
    let events = obj
        .get("SubscribedEvents")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect();
    let fields = REQUEST_FIELDS
        .iter()
        .filter(|f| !SECRET_FIELDS.contains(f))
        .filter_map(|f| obj.get(*f).map(|v| ((*f).to_owned(), v.clone())))
        .collect();
    Ok(CurrentWebhook {
        resource: NativeResource {
            id: id.to_owned(),
            events,
            // `Active` is nullable and read-only (providers.md §1.6); a
            // webhook that exists and says nothing is taken to deliver.
            enabled: obj.get("Active").and_then(Value::as_bool).unwrap_or(true),
            url: obj
                .get("WebhookUrl")
                .and_then(Value::as_str)
                .map(str::to_owned),
            ..Default::default()
        },
        fields,
    })
}

/// Parses a `Webhook_Result` answer of create, update or get, flat or
/// wrapped.
pub fn parse_webhook(
    provider: &str,
    resp: &NativeResponse,
    endpoint: Endpoint,
) -> Result<CurrentWebhook, Error> {
    webhook_from(provider, &payload(provider, resp, endpoint)?)
}

/// Parses the list answer: a plain array of `Webhook_Result`
/// (providers.md §1.2, no pagination), flat or wrapped.
pub fn parse_list(provider: &str, resp: &NativeResponse) -> Result<Vec<NativeResource>, Error> {
    let data = payload(provider, resp, Endpoint::List)?;
    data.as_array()
        .ok_or_else(|| {
            Error::upstream(
                provider,
                UpstreamErrorKind::Protocol,
                Some(resp.status),
                "list answer is not an array",
            )
        })?
        .iter()
        .map(|w| webhook_from(provider, w).map(|c| c.resource))
        .collect()
}

/// Parses the delete answer `{WebhookId, WebhookStatus}`. A 404 means the
/// webhook is gone already, which is what a delete wants.
pub fn parse_delete(provider: &str, resp: &NativeResponse) -> Result<(), Error> {
    if resp.status == 404 {
        return Ok(());
    }
    payload(provider, resp, Endpoint::Delete).map(|_| ())
}

/// Native field names in Telegent messages → the normalized pointer of the
/// caller's field. `WebhookId` is Switchboard's, not the caller's.
const FIELD_POINTERS: [(&str, &str); 10] = [
    ("AccountId", "/account"),
    ("WebhookUrl", "/url"),
    ("Method", "/method"),
    ("DataFormat", "/format"),
    ("AuthenticationType", "/auth/type"),
    ("AuthenticationUsername", "/auth/username"),
    ("AuthenticationPassword", "/auth/password"),
    ("AuthenticationToken", "/auth/token"),
    ("SubscribedEvents", "/events"),
    ("WebhookId", ""),
];

/// The pointer of the native field a Telegent message names first (as a
/// whole word), or `""` when it names none. Telegent's 400 carries only a
/// free-text `Message` (seed 000), so the field can only be read from it.
pub fn field_pointer(message: &str) -> &'static str {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    FIELD_POINTERS
        .iter()
        .filter_map(|(name, pointer)| {
            message
                .match_indices(name)
                .find(|(at, _)| {
                    let before = message[..*at].chars().next_back();
                    let after = message[at + name.len()..].chars().next();
                    !before.is_some_and(is_word) && !after.is_some_and(is_word)
                })
                .map(|(at, _)| (at, *pointer))
        })
        .min_by_key(|(at, _)| *at)
        .map_or("", |(_, pointer)| pointer)
}

/// Whether Telegent refused the bearer token itself: 401 (missing, expired
/// or invalid) or 403 ("Check the ApiEndpoint scope."), seed 000.
pub fn is_token_refusal(status: u16) -> bool {
    matches!(status, 401 | 403)
}

/// The error for a token Telegent still refuses: after one re-mint, or at
/// once for a static token, which cannot be re-minted. It is Switchboard's
/// own credential that fails, so this is a 502 and never the caller's 401.
pub fn refusal_error(
    provider: &str,
    resp: &NativeResponse,
    endpoint: Endpoint,
    reminted: bool,
) -> Error {
    let how = if reminted {
        "a freshly re-minted token"
    } else {
        "the configured static token (never re-minted)"
    };
    Error::upstream(
        provider,
        UpstreamErrorKind::Unauthorized,
        Some(resp.status),
        format!(
            "Telegent refused {how} for {} ({}): {}",
            endpoint.path(),
            resp.status,
            message_of(&resp.json())
        ),
    )
}

fn classify(
    provider: &str,
    status: u16,
    message: String,
    retry_after: Option<std::time::Duration>,
    endpoint: Endpoint,
) -> Error {
    let kind = match status {
        // 400 is the documented validation failure; 422 is the knowledge
        // bank's business-rule violation (providers.md §1.2).
        400 | 422 => UpstreamErrorKind::Rejected(vec![FieldError::provider(
            field_pointer(&message),
            format!("Telegent: {message}"),
            provider,
        )]),
        404 if endpoint.not_found_is_account() => {
            UpstreamErrorKind::Rejected(vec![FieldError::provider(
                "/account",
                format!("Telegent: {message}"),
                provider,
            )])
        }
        other => UpstreamErrorKind::from_status(other, retry_after),
    };
    Error::upstream(provider, kind, Some(status), message)
}

/// Classifies an error answer `{StatusCode, Message}` of a webhook call
/// (seed 000 declares 400, 401, 403, 404, 405, 408, 429, 500, 503, 504).
pub fn classify_error(provider: &str, resp: &NativeResponse, endpoint: Endpoint) -> Error {
    let message = message_of(&resp.json());
    classify(provider, resp.status, message, resp.retry_after, endpoint)
}

#[cfg(test)]
mod tests;
