//! Pure Talkover translation: capabilities, the plan (normalized → native
//! body), request builders and response/error parsing. No I/O.
//!
//! Facts are from providers.md §2 and seed 002 ("Create Webhook").

use base64::Engine as _;
use http::Method;
use serde_json::{Map, Value, json};
use switchboard_core::capabilities::Range;
use switchboard_core::subscription::AuthKind;
use switchboard_core::{
    AccountRule, AccountShape, CallbackAuth, Capabilities, DeliveryFormat, DeliveryMethod, Error,
    EventsPerResource, FieldError, NativePlan, NativeRequest, NativeResource, NativeResponse,
    PathSegment, SubscriptionSpec, UpstreamErrorKind,
};

/// The one native resource of a Talkover subscription.
pub const PLAN_KEY: &str = "webhook";
/// seed 002: `name` max 255 characters.
const NAME_MAX: usize = 255;

/// The syntax of a Talkover native event name: every documented
/// `available_events` entry is `event_` and snake case (providers.md §2.3).
pub fn check_native_event(name: &str) -> Result<(), String> {
    let snake = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if name.len() > "event_".len() && name.starts_with("event_") && snake {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a Talkover event name: Talkover names are `event_…` in snake case"
        ))
    }
}

/// What Talkover can do (seed 002 field table and validation rules).
pub fn capabilities() -> Capabilities {
    Capabilities {
        // providers.md §2.2: "Path params are `agent_id` (agent UUID)".
        account: AccountRule::Required {
            meaning: "Talkover agent_id (agent UUID)",
            max_len: 36,
            shape: AccountShape::Uuid,
        },
        events_per_resource: EventsPerResource::Many,
        // seed 002: "max 500 characters, must be valid URL"; HTTPS is advised
        // "in production" but not documented as enforced.
        url_max_len: 500,
        https_only: false,
        // Delivery credentials travel as `custom_headers` under an
        // `authorization_scheme` (providers.md §2.2: the credential fields
        // are undocumented, custom headers are the documented carrier).
        auth: vec![
            AuthKind::None,
            AuthKind::Basic,
            AuthKind::Bearer,
            AuthKind::ApiKey,
        ],
        signing_secret_max_len: Some(255),
        headers: true,
        methods: vec![
            DeliveryMethod::Post,
            DeliveryMethod::Put,
            DeliveryMethod::Patch,
        ],
        // Talkover documents JSON payloads only.
        formats: vec![DeliveryFormat::Json],
        timeout_seconds: Some(Range { min: 5, max: 120 }),
        max_retries: Some(Range { min: 0, max: 10 }),
        filters: false,
        native_disable: true,
        serialize_account: false,
        // List Agent Webhooks returns the same webhook objects as Get
        // (providers.md §2.2).
        list_is_complete: true,
        provider_options: vec!["payload_templates"],
        unsigned_events: vec![],
    }
}

/// The native name: the caller's name (or a default) followed by the
/// subscription id, so a webhook can be traced to its subscription. A name
/// that would not fit with the marker is refused rather than cut.
fn native_name(id: &str, name: Option<&str>) -> Result<String, Error> {
    let suffix = format!(" [{id}]");
    let base = name.unwrap_or("switchboard");
    let room = NAME_MAX.saturating_sub(suffix.chars().count());
    if base.chars().count() > room {
        return Err(Error::field(
            "/name",
            format!(
                "must be at most {room} characters for Talkover: its name field holds {NAME_MAX}, and the subscription id takes the rest"
            ),
        ));
    }
    Ok(format!("{base}{suffix}"))
}

/// Normalized subscription → the create body of the one Talkover webhook.
///
/// Every field the subscription controls is always present (defaults
/// written out: timeout 30, max_retries 3, POST, scheme `none`, no custom
/// headers), so that diffing two plans yields exactly the fields an update
/// must send, including a return to a default.
pub fn plan(id: &str, spec: &SubscriptionSpec, events: &[String]) -> Result<NativePlan, Error> {
    let mut headers: Vec<Value> = Vec::new();
    let mut secret_pointers = Vec::new();
    let (scheme, auth_header) = match &spec.auth {
        CallbackAuth::None => ("none", None),
        CallbackAuth::Basic { username, password } => {
            let raw = format!("{username}:{}", password.expose());
            let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
            (
                "basic",
                Some(("Authorization".to_owned(), format!("Basic {encoded}"))),
            )
        }
        CallbackAuth::Bearer { token } => (
            "bearer",
            Some((
                "Authorization".to_owned(),
                format!("Bearer {}", token.expose()),
            )),
        ),
        CallbackAuth::ApiKey { header, value } => {
            ("api_key", Some((header.clone(), value.expose().to_owned())))
        }
    };
    if let Some((name, value)) = auth_header {
        if spec.headers.keys().any(|h| h.eq_ignore_ascii_case(&name)) {
            return Err(Error::field(
                format!("/headers/{name}"),
                format!("`{name}` is set by `auth`; remove it from `headers`"),
            ));
        }
        secret_pointers.push("/custom_headers/0/value".to_owned());
        headers.push(json!({"key": name, "value": value}));
    }
    for (key, value) in &spec.headers {
        headers.push(json!({"key": key, "value": value}));
    }

    let mut body = Map::new();
    body.insert("name".into(), json!(native_name(id, spec.name.as_deref())?));
    body.insert("webhook_url".into(), json!(spec.url.as_str()));
    body.insert("events".into(), json!(events));
    body.insert("timeout".into(), json!(spec.timeout_seconds.unwrap_or(30)));
    body.insert("max_retries".into(), json!(spec.max_retries.unwrap_or(3)));
    body.insert("enabled".into(), json!(spec.enabled));
    body.insert(
        "http_method".into(),
        json!(spec.method.unwrap_or(DeliveryMethod::Post).as_str()),
    );
    body.insert("authorization_scheme".into(), json!(scheme));
    body.insert("custom_headers".into(), Value::Array(headers));
    if let Some(secret) = &spec.signing_secret {
        body.insert("webhook_secret".into(), json!(secret.expose()));
        secret_pointers.push("/webhook_secret".to_owned());
    }
    if let Some(templates) = spec.provider_options.get("payload_templates") {
        let Some(map) = templates.as_object() else {
            return Err(Error::field(
                "/provider_options/payload_templates",
                "must be an object keyed by Talkover event name",
            ));
        };
        if let Some(bad) = map.keys().find(|k| !events.contains(k)) {
            return Err(Error::field(
                format!("/provider_options/payload_templates/{bad}"),
                format!("`{bad}` is not one of this subscription's native events"),
            ));
        }
        body.insert("payload_templates".into(), templates.clone());
    }
    Ok(NativePlan {
        key: PLAN_KEY.to_owned(),
        events: events.to_vec(),
        body: Value::Object(body),
        secret_pointers,
    })
}

fn agent_path(agent: &PathSegment) -> String {
    format!("/agents/{agent}/webhooks")
}

fn webhook_path(agent: &PathSegment, id: &PathSegment) -> String {
    format!("{}/{id}", agent_path(agent))
}

fn authorized(req: NativeRequest, token: &str) -> NativeRequest {
    req.header("Authorization", format!("Bearer {token}"), true)
        .header("Accept", "application/json", false)
}

/// `POST /agents/{agent_id}/webhooks` with the plan's body.
pub fn create_request(token: &str, agent: &PathSegment, plan: &NativePlan) -> NativeRequest {
    authorized(NativeRequest::new(Method::POST, agent_path(agent)), token)
        .json(plan.body.clone(), plan.secret_pointers.clone())
}

/// `PUT /agents/{agent_id}/webhooks/{id}` with only the fields that differ
/// (Talkover's PUT is partial: "only the fields you send change",
/// providers.md §2.2). `None` when nothing differs.
///
/// Enable and disable are this update with `{"enabled": …}`: a definite
/// state. The documented toggle endpoint flips and is not idempotent, so it
/// is never used.
pub fn update_request(
    token: &str,
    agent: &PathSegment,
    id: &PathSegment,
    old: &NativePlan,
    new: &NativePlan,
) -> Option<NativeRequest> {
    let (Some(old_body), Some(new_body)) = (old.body.as_object(), new.body.as_object()) else {
        return None;
    };
    let mut changed = Map::new();
    for (k, v) in new_body {
        if old_body.get(k) != Some(v) {
            changed.insert(k.clone(), v.clone());
        }
    }
    // A field the new plan no longer has (a removed secret or template) is
    // cleared explicitly; omitting it would keep the old value.
    for k in old_body.keys() {
        if !new_body.contains_key(k) {
            changed.insert(k.clone(), Value::Null);
        }
    }
    if changed.is_empty() {
        return None;
    }
    let secret_pointers = new
        .secret_pointers
        .iter()
        .filter(|p| {
            let top = p
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or_default();
            changed.contains_key(top)
        })
        .cloned()
        .collect();
    Some(
        authorized(
            NativeRequest::new(Method::PUT, webhook_path(agent, id)),
            token,
        )
        .json(Value::Object(changed), secret_pointers),
    )
}

/// `PUT {"enabled": …}`: sets a definite state. The documented toggle
/// endpoint flips and is not idempotent, so it is never used.
pub fn set_enabled_request(
    token: &str,
    agent: &PathSegment,
    id: &PathSegment,
    enabled: bool,
) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::PUT, webhook_path(agent, id)),
        token,
    )
    .json(json!({ "enabled": enabled }), Vec::new())
}

/// `DELETE /agents/{agent_id}/webhooks/{id}` (path INFERRED, providers.md §2.2).
pub fn delete_request(token: &str, agent: &PathSegment, id: &PathSegment) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::DELETE, webhook_path(agent, id)),
        token,
    )
}

/// `GET /agents/{agent_id}/webhooks/{id}`.
pub fn get_request(token: &str, agent: &PathSegment, id: &PathSegment) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::GET, webhook_path(agent, id)),
        token,
    )
}

/// `GET /agents/{agent_id}/webhooks`.
pub fn list_request(token: &str, agent: &PathSegment) -> NativeRequest {
    authorized(NativeRequest::new(Method::GET, agent_path(agent)), token)
}

/// The subscription id [`plan`] wrote into `name` (`<name> [<id>]`): the
/// content of the last `[…]` that is `sub_` followed by letters, digits or
/// `_` (the id's alphabet). A caller's own name may hold brackets too, so
/// only one shaped like an id counts, and the last one because the marker
/// is appended.
pub fn marker(name: &str) -> Option<String> {
    name.rmatch_indices('[').find_map(|(open, _)| {
        let rest = &name[open + 1..];
        let content = &rest[..rest.find(']')?];
        let id = content.strip_prefix("sub_")?;
        let plain = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        plain.then(|| content.to_owned())
    })
}

/// A `Webhook` object (providers.md §2.2). `status` is the HTTP status of
/// the answer it came in: a 2xx with an unreadable object may still have
/// been applied.
fn webhook_from(provider: &str, status: u16, data: &Value) -> Result<NativeResource, Error> {
    let protocol = |what: &str| {
        Error::upstream(
            provider,
            UpstreamErrorKind::Protocol,
            Some(status),
            format!("webhook object {what}"),
        )
    };
    let id = data
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| protocol("without `id`"))?;
    // The id is a path segment of every later call; one that cannot be is
    // refused while the answer that brought it is at hand.
    PathSegment::new(id).map_err(|_| {
        protocol(&format!(
            "with the id `{id}`, which cannot be a path segment"
        ))
    })?;
    let events = data
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol("without `events`"))?
        .iter()
        .filter_map(|e| e.as_str().map(str::to_owned))
        .collect();
    Ok(NativeResource {
        id: id.to_owned(),
        events,
        enabled: data.get("enabled").and_then(Value::as_bool).unwrap_or(true),
        url: data
            .get("webhook_url")
            .and_then(Value::as_str)
            .map(str::to_owned),
        marker: data.get("name").and_then(Value::as_str).and_then(marker),
        ..Default::default()
    })
}

/// Parses `{success, data: Webhook}` (create, get, update).
pub fn parse_webhook(provider: &str, resp: &NativeResponse) -> Result<NativeResource, Error> {
    if !resp.is_success() {
        return Err(classify_error(provider, resp));
    }
    let body = resp.json();
    webhook_from(
        provider,
        resp.status,
        body.get("data").unwrap_or(&Value::Null),
    )
}

/// Parses `{success, data: {webhooks: […], available_events}}` (list).
pub fn parse_list(provider: &str, resp: &NativeResponse) -> Result<Vec<NativeResource>, Error> {
    if !resp.is_success() {
        return Err(classify_error(provider, resp));
    }
    let body = resp.json();
    body.pointer("/data/webhooks")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Error::upstream(
                provider,
                UpstreamErrorKind::Protocol,
                Some(resp.status),
                "list without data.webhooks",
            )
        })?
        .iter()
        .map(|w| webhook_from(provider, resp.status, w))
        .collect()
}

/// Talkover field name (Laravel error key) → normalized JSON pointer.
pub fn field_pointer(native: &str) -> String {
    let mut parts = native.split('.');
    let head = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    let base = match head {
        "webhook_url" => "/url",
        "name" => "/name",
        "webhook_secret" => "/signing_secret",
        "events" => "/events",
        "timeout" => "/timeout_seconds",
        "max_retries" => "/max_retries",
        "enabled" => "/enabled",
        "http_method" => "/method",
        "authorization_scheme" => "/auth",
        "custom_headers" => return "/headers".to_owned(),
        "payload_templates" => "/provider_options/payload_templates",
        _ => return format!("/{head}"),
    };
    if head == "events"
        && let Some(i) = rest.first()
    {
        return format!("{base}/{i}");
    }
    base.to_owned()
}

/// Classifies every documented error shape (providers.md §2.2): 401
/// `{message}`, 404 `{success:false,message}`, 422 `{message, errors}`.
pub fn classify_error(provider: &str, resp: &NativeResponse) -> Error {
    let body = resp.json();
    let message = body
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no message")
        .to_owned();
    let status = Some(resp.status);
    let kind = match resp.status {
        // "Agent not found in this environment." means the caller's account
        // (agent id) is wrong, not that a webhook vanished.
        404 if message.contains("Agent") => {
            UpstreamErrorKind::Rejected(vec![FieldError::provider(
                "/account",
                format!("Talkover: {message}"),
                provider,
            )])
        }
        422 => {
            let mut errors = Vec::new();
            if let Some(map) = body.get("errors").and_then(Value::as_object) {
                for (field, msgs) in map {
                    let text: Vec<&str> = msgs
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    errors.push(FieldError::provider(
                        field_pointer(field),
                        format!("Talkover: {}", text.join(" ")),
                        provider,
                    ));
                }
            }
            if errors.is_empty() {
                errors.push(FieldError::provider(
                    "",
                    format!("Talkover: {message}"),
                    provider,
                ));
            }
            UpstreamErrorKind::Rejected(errors)
        }
        other => UpstreamErrorKind::from_status(other, resp.retry_after),
    };
    Error::upstream(provider, kind, status, message)
}

#[cfg(test)]
mod tests;
