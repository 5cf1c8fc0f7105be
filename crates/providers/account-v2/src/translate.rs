//! Pure Sendblue translation: capabilities, the plan (one bucket entry per
//! event), the request builders, the webhook document parsed into entry
//! identities (secrets dropped on the spot), the collision check and error
//! classification. No I/O.
//!
//! Facts are from providers.md §4 and seed 004 (the v2 "Webhooks" reference).
//! The bucket names are never listed here: they come from the native catalog
//! in `config/events.toml`, so a new Sendblue type is a config change. The
//! one bucket with its own rule is [`URL_ONLY_BUCKET`].

use std::borrow::Cow;

use http::Method;
use serde_json::{Value, json};
use switchboard_core::subscription::AuthKind;
use switchboard_core::{
    AccountRule, Capabilities, DeliveryFormat, DeliveryMethod, Error, EventsPerResource,
    FieldError, NativePlan, NativeRequest, NativeResource, NativeResponse, OnUnsupported,
    SubscriptionSpec, UpstreamErrorKind,
};

use crate::AccountV2Config;
use crate::config::is_header_safe;

/// The bucket that takes URL strings only: seed 004 types `contact_created`
/// as "array of string … (URL strings only)", unlike every other bucket's
/// "string or object { url, secret }".
pub const URL_ONLY_BUCKET: &str = "contact_created";

/// Longest signing secret Switchboard sends. Sendblue documents no limit;
/// the secret travels verbatim in the `sb-signing-secret` delivery header
/// (providers.md §4.4), and 255 keeps it well inside any header limit.
pub const SECRET_MAX_LEN: usize = 255;

/// Where a plan's secret sits in its body.
const SECRET_POINTER: &str = "/webhooks/0/secret";

/// The syntax of a Sendblue native event name: a bucket of the webhook
/// document, a snake-case key like `receive` or `call_log` (seed 004).
pub fn check_native_event(name: &str) -> Result<(), String> {
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Sendblue webhook type: types are snake-case bucket names (`receive`, `call_log`)"
        ))
    }
}

/// What Sendblue can do (seed 004 schema, providers.md §4).
pub fn capabilities() -> Capabilities {
    Capabilities {
        // One configuration document per account; the API credentials pick
        // the account (providers.md §4.2).
        account: AccountRule::Forbidden,
        // An entry sits in exactly one bucket, and a bucket is one type.
        events_per_resource: EventsPerResource::One,
        // No documented limit; the normalized API's own bound applies.
        url_max_len: switchboard_core::subscription::MAX_URL_LEN,
        // "Webhook URL (HTTPS only)" (seed 004). Sendblue upgrades http://
        // itself (providers.md §4.4); Switchboard refuses it instead, so the
        // stored URL is the one deliveries go to.
        https_only: true,
        auth: vec![AuthKind::None],
        signing_secret_max_len: Some(SECRET_MAX_LEN),
        headers: false,
        // Deliveries are JSON POSTs (providers.md §4.5, §5); asking for
        // exactly that loses nothing, anything else is unsupported.
        methods: vec![DeliveryMethod::Post],
        formats: vec![DeliveryFormat::Json],
        timeout_seconds: None,
        max_retries: None,
        filters: false,
        // No switch: disabling removes the entries (providers.md §6.3).
        native_disable: false,
        // Every change is read-check-write of one shared document.
        serialize_account: true,
        // The account's one document is the only read; Get is a lookup in
        // it (providers.md §4.2).
        list_is_complete: true,
        provider_options: Vec::new(),
        unsigned_events: vec![URL_ONLY_BUCKET],
    }
}

/// `http://…` as Sendblue stores it: upgraded to `https://…` (providers.md
/// §4.4). Anything else is returned unchanged.
pub fn upgrade_http(url: &str) -> Cow<'_, str> {
    match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => {
            Cow::Owned(format!("https://{}", &url[7..]))
        }
        _ => Cow::Borrowed(url),
    }
}

/// One entry of the webhook document: its bucket (event type) and URL. It
/// has no id at Sendblue; this pair is its identity (providers.md §4.2).
/// The per-URL secret is deliberately not part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Bucket name, e.g. `receive`.
    pub bucket: String,
    /// URL as Sendblue stores it (or as planned).
    pub url: String,
}

impl Entry {
    /// The synthesized native id, `"<bucket> <url>"`. Bucket names hold no
    /// spaces (native catalog names are `[A-Za-z0-9_.:-]`) and a URL never
    /// does, so the first space separates them.
    pub fn identity(&self) -> String {
        format!("{} {}", self.bucket, self.url)
    }

    /// Parses [`Entry::identity`]; `None` for anything else, which then
    /// cannot name an entry.
    pub fn parse_identity(id: &str) -> Option<Self> {
        let (bucket, url) = id.split_once(' ')?;
        if bucket.is_empty() || url.is_empty() || url.contains(char::is_whitespace) {
            return None;
        }
        Some(Self {
            bucket: bucket.to_owned(),
            url: url.to_owned(),
        })
    }

    /// Whether both name the same Sendblue entry: same bucket, and the same
    /// URL once http is upgraded as Sendblue does. Sendblue's DELETE matches
    /// URL strings exactly (providers.md §4.6), so nothing else is folded.
    pub fn same_as(&self, other: &Entry) -> bool {
        self.bucket == other.bucket && upgrade_http(&self.url) == upgrade_http(&other.url)
    }

    /// The entry as a native resource: present entries always deliver.
    pub fn resource(&self) -> NativeResource {
        NativeResource {
            id: self.identity(),
            events: vec![self.bucket.clone()],
            enabled: true,
            url: Some(self.url.clone()),
            ..Default::default()
        }
    }
}

/// Normalized subscription → one plan per bucket, keyed by the bucket, whose
/// body is exactly the `POST` that appends the entry:
/// `{"webhooks": [<url> | {"url", "secret"}], "type": <bucket>}`.
///
/// The URL goes as a bare string when there is no secret (valid in every
/// bucket), as `{url, secret}` otherwise. A secret on [`URL_ONLY_BUCKET`] is
/// refused at `/signing_secret`, or under `on_unsupported: ignore` that one
/// bucket gets the bare URL. Nothing else of the subscription (name,
/// enabled, metadata) reaches Sendblue, so changing it changes no plan.
pub fn plan(spec: &SubscriptionSpec, events: &[String]) -> Result<Vec<NativePlan>, Error> {
    let provider = spec.provider.as_str();
    let who = format!("provider `{provider}` (kind {})", crate::KIND);
    let url = spec.url.as_str();
    let mut errors = Vec::new();
    if !spec.url.is_https() {
        errors.push(FieldError::provider(
            "/url",
            format!(
                "must use https for {who}: Sendblue would upgrade {url} to {} and deliver there, so ask for that URL",
                upgrade_http(url)
            ),
            provider,
        ));
    }
    if url.contains(char::is_whitespace) {
        errors.push(FieldError::provider(
            "/url",
            format!("must not contain whitespace for {who}: Sendblue requires a URI (seed 004, format uri)"),
            provider,
        ));
    }
    if let Some(secret) = &spec.signing_secret
        && !is_header_safe(secret.expose())
    {
        errors.push(FieldError::provider(
            "/signing_secret",
            format!(
                "must be printable ASCII without surrounding spaces for {who}: Sendblue sends it verbatim in the sb-signing-secret header"
            ),
            provider,
        ));
    }

    let mut plans = Vec::with_capacity(events.len());
    for bucket in events {
        let mut secret = spec.signing_secret.as_ref();
        if bucket == URL_ONLY_BUCKET && secret.is_some() {
            if spec.on_unsupported == OnUnsupported::Reject {
                errors.push(FieldError::provider(
                    "/signing_secret",
                    format!(
                        "{who} does not support a signing secret for `{URL_ONLY_BUCKET}` (Sendblue v2 takes URL strings only there); set on_unsupported to \"ignore\" to subscribe it without one"
                    ),
                    provider,
                ));
            }
            secret = None;
        }
        let (entry, secret_pointers) = match secret {
            Some(s) => (
                json!({"url": url, "secret": s.expose()}),
                vec![SECRET_POINTER.to_owned()],
            ),
            None => (json!(url), Vec::new()),
        };
        plans.push(NativePlan {
            key: bucket.clone(),
            events: vec![bucket.clone()],
            body: json!({"webhooks": [entry], "type": bucket}),
            secret_pointers,
        });
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// The entry a plan made by [`plan`] appends.
pub fn planned_entry(plan: &NativePlan) -> Result<Entry, Error> {
    let bucket = plan.body.get("type").and_then(Value::as_str);
    let item = plan.body.pointer("/webhooks/0");
    let url = item.and_then(|i| i.as_str().or_else(|| i.get("url").and_then(Value::as_str)));
    match (bucket, url) {
        (Some(bucket), Some(url)) => Ok(Entry {
            bucket: bucket.to_owned(),
            url: url.to_owned(),
        }),
        _ => Err(Error::Internal(format!(
            "plan `{}` is not a Sendblue append body",
            plan.key
        ))),
    }
}

fn authorized(cfg: &AccountV2Config, method: Method) -> NativeRequest {
    NativeRequest::new(method, cfg.path.clone())
        .header("sb-api-key-id", cfg.api_key_id.expose(), true)
        .header("sb-api-secret-key", cfg.api_secret_key.expose(), true)
        .header("Accept", "application/json", false)
}

/// `GET {path}`: the whole webhook document.
pub fn document_request(cfg: &AccountV2Config) -> NativeRequest {
    authorized(cfg, Method::GET)
}

/// `POST {path}` with the plan's body: appends one entry to one bucket.
pub fn add_request(cfg: &AccountV2Config, plan: &NativePlan) -> NativeRequest {
    authorized(cfg, Method::POST).json(plan.body.clone(), plan.secret_pointers.clone())
}

/// `DELETE {path}` with `{"webhooks": [url], "type": bucket}`: removes the
/// entry. DELETE takes a JSON body here (providers.md §4.2); `type` is
/// always sent because it defaults to `receive`.
pub fn remove_request(cfg: &AccountV2Config, entry: &Entry) -> NativeRequest {
    authorized(cfg, Method::DELETE).json(
        json!({"webhooks": [entry.url], "type": entry.bucket}),
        Vec::new(),
    )
}

fn protocol(provider: &str, status: u16, message: impl Into<String>) -> Error {
    Error::upstream(provider, UpstreamErrorKind::Protocol, Some(status), message)
}

/// The body of a successful answer: HTTP 2xx and a `status` that is not
/// `ERROR` (Sendblue reports failures as `{status: "ERROR", message}`, even
/// with HTTP 200: providers.md §4.2). An empty body is `Null`.
fn accepted(provider: &str, resp: &NativeResponse) -> Result<Value, Error> {
    if !resp.is_success() {
        return Err(classify_error(provider, resp));
    }
    if resp.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let body: Value = serde_json::from_slice(&resp.body).map_err(|_| {
        protocol(
            provider,
            resp.status,
            "Sendblue answered with a body that is not JSON",
        )
    })?;
    if is_error_status(&body) {
        return Err(classify_error(provider, resp));
    }
    Ok(body)
}

fn is_error_status(body: &Value) -> bool {
    body.get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("ERROR"))
}

/// Parses `{status, webhooks: WebhookConfiguration}` (List) into its
/// entries, bucket by bucket. Only the URLs are taken: the per-URL
/// `secret`, `globalSecret` and the legacy `secret` that List echoes
/// (providers.md §4.2) are dropped with the parsed body before this returns,
/// so they are never logged, stored or compared. Every array under
/// `webhooks` is a bucket, so types Sendblue adds later are seen too; a
/// missing or `null` `webhooks` is an empty document.
pub fn parse_document(provider: &str, resp: &NativeResponse) -> Result<Vec<Entry>, Error> {
    let body = accepted(provider, resp)?;
    if !body.is_object() {
        return Err(protocol(
            provider,
            resp.status,
            "Sendblue's webhook list is not a JSON object",
        ));
    }
    let buckets = match body.get("webhooks") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(protocol(
                provider,
                resp.status,
                "Sendblue's `webhooks` is not an object",
            ));
        }
    };
    let mut entries = Vec::new();
    for (bucket, value) in buckets {
        // `globalSecret` and the legacy `secret` are strings, not buckets.
        let Some(items) = value.as_array() else {
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let url = item
                .as_str()
                .or_else(|| item.get("url").and_then(Value::as_str))
                .ok_or_else(|| {
                    protocol(
                        provider,
                        resp.status,
                        format!("Sendblue's `webhooks.{bucket}[{i}]` is neither a URL nor an object with a url"),
                    )
                })?;
            entries.push(Entry {
                bucket: bucket.clone(),
                url: url.to_owned(),
            });
        }
    }
    Ok(entries)
}

/// Checks the answer to an append or a removal (`{status, message}`; the
/// echoed configuration is not read, it holds every secret).
pub fn parse_write(provider: &str, resp: &NativeResponse) -> Result<(), Error> {
    accepted(provider, resp).map(drop)
}

/// Refuses to append `planned` when the document already has that (bucket,
/// URL), whoever created it: Sendblue would keep both or neither, and its
/// DELETE removes every entry with that URL (providers.md §4.6), so sharing
/// an entry would let one owner remove another's webhook.
pub fn check_collision(provider: &str, document: &[Entry], planned: &Entry) -> Result<(), Error> {
    match document.iter().find(|e| e.same_as(planned)) {
        None => Ok(()),
        Some(existing) => Err(Error::Conflict(format!(
            "provider `{provider}`: the Sendblue account already has the `{}` webhook {} (entry `{}`), created outside this subscription; Switchboard never takes over or changes an entry it did not create, so remove it at Sendblue or use another URL",
            existing.bucket,
            existing.url,
            existing.identity()
        ))),
    }
}

/// The field of the caller's request a Sendblue message is about. Its
/// error messages are undocumented (providers.md §4.2: "per-endpoint error
/// bodies are UNKNOWN"), so this reads the words; an empty pointer means
/// the request as a whole.
pub fn field_pointer(message: &str) -> &'static str {
    let m = message.to_ascii_lowercase();
    if m.contains("secret") {
        "/signing_secret"
    } else if m.contains("url") || m.contains("https") {
        "/url"
    } else if m.contains("type") {
        "/events"
    } else {
        ""
    }
}

/// Whether an `ERROR` message sent with HTTP 2xx is about Switchboard's own
/// credentials rather than the request.
fn is_credentials_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "api key",
        "api-key",
        "credential",
        "unauthori",
        "authenticat",
        "forbidden",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Classifies a failed answer: HTTP 4xx/5xx, or `status: "ERROR"` with any
/// HTTP status. 400 and 422 (and an `ERROR` with 2xx that is not about
/// credentials) are the provider refusing the content, mapped to the field
/// [`field_pointer`] infers. 404 means the configured `path` is wrong: the
/// document always exists for an account. Everything else is what the
/// status implies (the SDK maps exactly these codes, providers.md §4.2).
pub fn classify_error(provider: &str, resp: &NativeResponse) -> Error {
    let body = resp.json();
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| format!("HTTP {}", resp.status), str::to_owned);
    let rejected = |message: &str| {
        UpstreamErrorKind::Rejected(vec![FieldError::provider(
            field_pointer(message),
            format!("Sendblue: {message}"),
            provider,
        )])
    };
    let (kind, message) = match resp.status {
        200..=299 if is_credentials_message(&message) => (UpstreamErrorKind::Unauthorized, message),
        200..=299 | 400 | 422 => (rejected(&message), message),
        404 => (
            UpstreamErrorKind::Protocol,
            format!(
                "Sendblue has no webhook document at the configured path (HTTP 404: {message}); check the provider's `path`"
            ),
        ),
        status => (
            UpstreamErrorKind::from_status(status, resp.retry_after),
            message,
        ),
    };
    Error::upstream(provider, kind, Some(resp.status), message)
}

#[cfg(test)]
mod tests;
