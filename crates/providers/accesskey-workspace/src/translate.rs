//! Pure Bird translation: capabilities, Bird's callback-URL rule, the plan
//! (one native subscription per event), request builders, the PATCH diff,
//! and response, list-page and error parsing. No I/O.
//!
//! Facts are from providers.md §3 and seed 003 ("Create a webhook
//! subscription"); every inferred choice says so next to the code.

use http::Method;
use serde_json::{Map, Value, json};
use switchboard_core::subscription::{AuthKind, MAX_URL_LEN};
use switchboard_core::{
    AccountRule, AccountShape, Capabilities, DeliveryFormat, DeliveryMethod, Error,
    EventsPerResource, FieldError, NativePlan, NativeRequest, NativeResource, NativeResponse,
    PathSegment, SubscriptionSpec, UpstreamErrorKind,
};

/// Bird's `service` enum (providers.md §3.2, create page).
pub const SERVICES: [&str; 4] = ["channels", "numbers", "payments", "conversations"];

/// The callback-URL pattern of the create and update schemas (seed 003).
pub const URL_PATTERN: &str = r"^https://([a-zA-Z0-9-]+\.)+[a-zA-Z]{2,}(/[^\s]*)?$";

/// Largest `limit` List accepts (providers.md §3.2: 1–100, default 10); the
/// largest page means the fewest round trips.
pub const PAGE_LIMIT: u32 = 100;

/// Subscriptions Bird allows per identical event + filter combination
/// (providers.md §3.6: "up to five subscriptions for the same filter
/// combination", Bird's webhooks overview).
pub const MAX_PER_COMBINATION: usize = 5;

/// The phrase every limit problem carries, so callers and tests can rely on it.
pub const LIMIT_PHRASE: &str = "at most 5 subscriptions per event and filter combination";

/// Placeholder for the id of a subscription that does not exist yet (previews).
pub const ID_PLACEHOLDER: &str = "{webhookSubscriptionId}";

/// Longest `provider_options.template` accepted. Bird documents no limit;
/// the known values (`text`, `twilio`) are short words, and a bound keeps
/// garbage out of the upstream request.
const TEMPLATE_MAX: usize = 64;

/// Longest signing secret accepted. Bird documents no limit (its example
/// key is 44 characters of base64); this is Switchboard's own bound.
const SIGNING_KEY_MAX: usize = 512;

/// `status` values of the update schema (providers.md §3.2, update page).
const ACTIVE: &str = "active";
const INACTIVE: &str = "inactive";

/// Fields the update schema accepts (providers.md §3.2, update page:
/// `template`, `url`, `signingKey`, `status`, `eventFilters`; `service` and
/// `event` are not updatable).
const PATCHABLE: [&str; 5] = ["url", "signingKey", "status", "eventFilters", "template"];

/// What Bird can do (seed 003 schema, providers.md §3).
pub fn capabilities() -> Capabilities {
    Capabilities {
        // providers.md §3.2: `workspaceId` is a UUID in every example
        // (`b4e02c85-c6d2-4b15-8885-e09671799c61`).
        account: AccountRule::Required {
            meaning: "Bird workspace id (workspaceId UUID)",
            max_len: 36,
            shape: AccountShape::Uuid,
        },
        events_per_resource: EventsPerResource::One,
        // Bird documents a pattern, not a length; the gateway-wide maximum applies.
        url_max_len: MAX_URL_LEN,
        https_only: true,
        // Bird authenticates deliveries only by signing them (providers.md §3.4).
        auth: vec![AuthKind::None],
        signing_secret_max_len: Some(SIGNING_KEY_MAX),
        headers: false,
        // Bird delivers JSON by POST and documents no way to change either
        // (providers.md §5: "POST (inferred)").
        methods: vec![DeliveryMethod::Post],
        formats: vec![DeliveryFormat::Json],
        timeout_seconds: None,
        max_retries: None,
        filters: true,
        // PATCH {"status": "inactive"} (providers.md §3.2, update page).
        native_disable: true,
        serialize_account: false,
        // List's `results` are the subscription objects Get returns, `url`
        // and `status` included (providers.md §3.2).
        list_is_complete: true,
        provider_options: vec!["template"],
        unsigned_events: vec![],
    }
}

/// Whitespace as the pattern's `\s` sees it. The regex flavour Bird runs is
/// unknown; the widest reading (ECMAScript: Unicode White_Space plus
/// U+FEFF) is used, so nothing Bird might refuse is let through.
fn is_pattern_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// Checks `url` against [`URL_PATTERN`] by hand and says which part fails.
///
/// The pattern reads: `https://`, one or more `label.` where a label is
/// ASCII letters, digits and `-`, a top-level label of at least two ASCII
/// letters, then nothing or `/` followed by non-whitespace. So an IP
/// address, a port, user info, a single-label host (`localhost`), a
/// numeric TLD, a query right after the host and any whitespace all fail.
pub fn check_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Err(
            "must start with `https://` (lower case): Bird accepts HTTPS callbacks only".into(),
        );
    };
    // After the host the pattern allows only `/[^\s]*`, so the host runs to
    // the first `/`; whitespace anywhere is checked on the whole URL.
    let host = rest.find('/').map_or(rest, |i| &rest[..i]);
    if url.chars().any(is_pattern_space) {
        return Err("must not contain whitespace".into());
    }
    if host.is_empty() {
        return Err("has no host name".into());
    }
    if host.contains('@') {
        return Err("must not contain user info (`user@`)".into());
    }
    if host.starts_with('[') {
        return Err("must name a DNS host, not an IP address".into());
    }
    if host.contains(':') {
        return Err("must not contain a port: Bird calls the default HTTPS port 443 only".into());
    }
    if host.contains(['?', '#']) {
        return Err(
            "must have a `/` between the host and a query or fragment (`https://host/?…`)".into(),
        );
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels
        .iter()
        .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("must name a DNS host, not an IP address".into());
    }
    if labels.len() < 2 {
        return Err(format!(
            "must name a fully qualified host with a top-level domain; `{host}` is a single label"
        ));
    }
    if labels.iter().any(|l| l.is_empty()) {
        return Err(format!(
            "has an empty label in host `{host}` (a leading, trailing or doubled `.`)"
        ));
    }
    if let Some(bad) = labels
        .iter()
        .find(|l| !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(format!(
            "host label `{bad}` may contain only ASCII letters, digits and `-` (write an internationalized name in punycode)"
        ));
    }
    let tld = labels.last().copied().unwrap_or_default();
    if tld.len() < 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "must end its host in a top-level domain of at least two letters; `{tld}` is not"
        ));
    }
    Ok(())
}

/// `provider_options.template`. Its meaning is undocumented (providers.md
/// §3.2: requests show `text`, responses `twilio`), so only the shape of
/// those values is accepted: a short word of letters, digits, `_`, `-`, `.`.
fn template_option(spec: &SubscriptionSpec) -> Result<Option<String>, String> {
    let Some(value) = spec.provider_options.get("template") else {
        return Ok(None);
    };
    let Some(text) = value.as_str() else {
        return Err("must be a string such as \"text\"".into());
    };
    let ok = !text.is_empty()
        && text.len() <= TEMPLATE_MAX
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(Some(text.to_owned()))
    } else {
        Err(format!(
            "must be 1 to {TEMPLATE_MAX} letters, digits, `_`, `-` or `.` (Bird's examples: \"text\", \"twilio\")"
        ))
    }
}

/// The syntax of a Bird native event name, `service:event` with a known
/// service (design.md §3).
pub fn check_native_event(name: &str) -> Result<(), String> {
    split_native(name).map(drop)
}

/// Splits a native name `service:event` (design.md §3).
fn split_native(native: &str) -> Result<(&str, &str), String> {
    let Some((service, event)) = native.split_once(':') else {
        return Err(format!(
            "`{native}` is not a Bird event name: Bird names are `service:event`, e.g. `channels:sms.outbound`"
        ));
    };
    if !SERVICES.contains(&service) {
        return Err(format!(
            "`{service}` is not a Bird service; Bird services are {}",
            SERVICES.join(", ")
        ));
    }
    if event.is_empty() || event.chars().any(is_pattern_space) {
        return Err(format!("`{native}` has no event after the service"));
    }
    Ok((service, event))
}

/// Normalized subscription → one plan per native event (`service:event`),
/// keyed by that name, in the order of `events`.
///
/// Every plan carries the same url, `signingKey`, `eventFilters` (always an
/// array, so clearing filters is a change the diff can send) and `template`.
/// `status` is in the plan body so enabling and disabling is an ordinary
/// diff; Bird's create schema has no `status`, so [`create_request`] drops
/// it. All problems are reported at once, before any upstream call.
pub fn plan(spec: &SubscriptionSpec, events: &[String]) -> Result<Vec<NativePlan>, Error> {
    let provider = spec.provider.as_str();
    let mut errors = Vec::new();
    if let Err(why) = check_url(spec.url.as_str()) {
        errors.push(FieldError::provider(
            "/url",
            format!("{why}; Bird requires the URL to match {URL_PATTERN} (no IP address, no port, no single-label host)"),
            provider,
        ));
    }
    let template = template_option(spec).unwrap_or_else(|why| {
        errors.push(FieldError::provider(
            "/provider_options/template",
            why,
            provider,
        ));
        None
    });
    let filters: Vec<Value> = spec
        .filters
        .iter()
        .map(|f| json!({"key": f.key, "value": f.value}))
        .collect();

    let mut plans = Vec::with_capacity(events.len());
    for (i, native) in events.iter().enumerate() {
        let (service, event) = match split_native(native) {
            Ok(parts) => parts,
            Err(why) => {
                errors.push(FieldError::provider(format!("/events/{i}"), why, provider));
                continue;
            }
        };
        let mut body = Map::new();
        body.insert("service".into(), json!(service));
        body.insert("event".into(), json!(event));
        body.insert("url".into(), json!(spec.url.as_str()));
        body.insert("eventFilters".into(), Value::Array(filters.clone()));
        if let Some(t) = &template {
            body.insert("template".into(), json!(t));
        }
        let mut secret_pointers = Vec::new();
        if let Some(secret) = &spec.signing_secret {
            body.insert("signingKey".into(), json!(secret.expose()));
            secret_pointers.push("/signingKey".to_owned());
        }
        body.insert(
            "status".into(),
            json!(if spec.enabled { ACTIVE } else { INACTIVE }),
        );
        plans.push(NativePlan {
            key: native.clone(),
            events: vec![native.clone()],
            body: Value::Object(body),
            secret_pointers,
        });
    }
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(Error::Invalid(errors))
    }
}

/// Whether a plan asks for an active subscription.
pub fn plan_is_active(plan: &NativePlan) -> bool {
    plan.body.get("status").and_then(Value::as_str) != Some(INACTIVE)
}

/// Where a workspace's subscriptions live: the workspace and, when the
/// provider instance has one, its organization, both as path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `organization_id` from config; adds the `/organizations/{id}` prefix.
    pub organization: Option<PathSegment>,
    /// The subscription's `account`.
    pub workspace: PathSegment,
}

/// `[/organizations/{organizationId}]/workspaces/{workspaceId}/webhook-subscriptions`
/// (providers.md §3.1: both path forms exist).
pub fn collection_path(scope: &Scope) -> String {
    let org = scope
        .organization
        .as_ref()
        .map(|o| format!("/organizations/{o}"))
        .unwrap_or_default();
    format!("{org}/workspaces/{}/webhook-subscriptions", scope.workspace)
}

fn subscription_path(scope: &Scope, id: &PathSegment) -> String {
    format!("{}/{id}", collection_path(scope))
}

fn authorized(req: NativeRequest, access_key: &str) -> NativeRequest {
    req.header("Authorization", format!("AccessKey {access_key}"), true)
        .header("Accept", "application/json", false)
}

/// `POST …/webhook-subscriptions` with the plan's body minus `status`: the
/// create schema has `additionalProperties: false` and no `status` field
/// (providers.md §3.2), so an inactive plan is created and then switched
/// off with [`status_request`].
pub fn create_request(access_key: &str, scope: &Scope, plan: &NativePlan) -> NativeRequest {
    let mut body = plan.body.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("status");
    }
    authorized(
        NativeRequest::new(Method::POST, collection_path(scope)),
        access_key,
    )
    .json(body, plan.secret_pointers.clone())
}

/// `PATCH …/{id}` with `{"status": "active" | "inactive"}` (providers.md
/// §3.2: "Deactivate without deleting by PATCHing {\"status\": \"inactive\"}").
pub fn status_request(
    access_key: &str,
    scope: &Scope,
    id: &PathSegment,
    active: bool,
) -> NativeRequest {
    status_patch(access_key, subscription_path(scope, id), active)
}

fn status_patch(access_key: &str, path: String, active: bool) -> NativeRequest {
    authorized(NativeRequest::new(Method::PATCH, path), access_key).json(
        json!({"status": if active { ACTIVE } else { INACTIVE }}),
        Vec::new(),
    )
}

/// The requests creating `plans` sends: one POST each, and for an inactive
/// plan the PATCH that follows it, addressed to [`ID_PLACEHOLDER`] because
/// the id is only known once Bird has answered.
pub fn preview_requests(
    access_key: &str,
    scope: &Scope,
    plans: &[NativePlan],
) -> Vec<NativeRequest> {
    let mut out = Vec::new();
    for plan in plans {
        out.push(create_request(access_key, scope, plan));
        if !plan_is_active(plan) {
            let path = format!("{}/{ID_PLACEHOLDER}", collection_path(scope));
            out.push(status_patch(access_key, path, false));
        }
    }
    out
}

/// How a native subscription gets from one plan to another.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Nothing Bird stores differs.
    Unchanged,
    /// One PATCH with exactly the changed fields.
    Patch(NativeRequest),
    /// The change cannot be expressed as a PATCH: `service`/`event` are
    /// immutable (providers.md §3.2), and `signingKey` and `template` are
    /// typed as strings with no documented way to clear them. The
    /// subscription is created anew and the old one deleted.
    Recreate,
}

/// The PATCH diff: only the fields among `url`, `signingKey`, `status`,
/// `eventFilters` and `template` whose value differs, each sent in full.
/// A changed template is PATCHed too, as the update page lists `template`
/// (providers.md §3.2).
pub fn update_request(
    access_key: &str,
    scope: &Scope,
    id: &PathSegment,
    old: &NativePlan,
    new: &NativePlan,
) -> Update {
    let (Some(old_body), Some(new_body)) = (old.body.as_object(), new.body.as_object()) else {
        return Update::Recreate;
    };
    let mut changed = Map::new();
    for key in old_body.keys().chain(new_body.keys()) {
        let (before, after) = (old_body.get(key), new_body.get(key));
        if before == after || changed.contains_key(key) {
            continue;
        }
        match after {
            Some(value) if PATCHABLE.contains(&key.as_str()) => {
                changed.insert(key.clone(), value.clone());
            }
            // Immutable, unknown to the update schema, or removed.
            _ => return Update::Recreate,
        }
    }
    if changed.is_empty() {
        return Update::Unchanged;
    }
    let secret_pointers = if changed.contains_key("signingKey") {
        vec!["/signingKey".to_owned()]
    } else {
        Vec::new()
    };
    Update::Patch(
        authorized(
            NativeRequest::new(Method::PATCH, subscription_path(scope, id)),
            access_key,
        )
        .json(Value::Object(changed), secret_pointers),
    )
}

/// `DELETE …/{id}`. The delete page was not found; the method and path
/// follow REST convention and the policy resource
/// `…/webhook-subscriptions/*` (providers.md §3.2, INFERRED), and any 2xx
/// is success because the status code is unknown.
pub fn delete_request(access_key: &str, scope: &Scope, id: &PathSegment) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::DELETE, subscription_path(scope, id)),
        access_key,
    )
}

/// `GET …/{id}`.
pub fn get_request(access_key: &str, scope: &Scope, id: &PathSegment) -> NativeRequest {
    authorized(
        NativeRequest::new(Method::GET, subscription_path(scope, id)),
        access_key,
    )
}

/// `GET …/webhook-subscriptions?limit=100[&pageToken=…]` (providers.md §3.6).
pub fn list_request(access_key: &str, scope: &Scope, page_token: Option<&str>) -> NativeRequest {
    let mut req = authorized(
        NativeRequest::new(Method::GET, collection_path(scope)),
        access_key,
    )
    .query("limit", PAGE_LIMIT.to_string());
    if let Some(token) = page_token {
        req = req.query("pageToken", token);
    }
    req
}

/// Which call an answer belongs to: the same status means different things
/// for different calls (a 404 on create is a missing workspace, on get a
/// missing subscription).
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// Creating the subscription of this plan.
    Create(&'a NativePlan),
    /// Changing a subscription to this plan.
    Update(&'a NativePlan),
    /// Reading one subscription.
    Get,
    /// Deleting one subscription.
    Delete,
    /// Listing a workspace's subscriptions.
    List,
}

impl<'a> Call<'a> {
    fn plan(self) -> Option<&'a NativePlan> {
        match self {
            Self::Create(p) | Self::Update(p) => Some(p),
            Self::Get | Self::Delete | Self::List => None,
        }
    }
}

fn protocol(provider: &str, status: u16, what: &str) -> Error {
    Error::upstream(
        provider,
        UpstreamErrorKind::Protocol,
        Some(status),
        format!("Bird answered {what}"),
    )
}

/// A subscription object (providers.md §3.2: `id`, `service`, `event`,
/// `url`, `status`, `eventFilters`, …) as a [`NativeResource`]. A missing
/// `status` counts as active, the documented default; any value but
/// `active` (Bird may set its own, explained in `reason`) counts as not
/// delivering.
fn subscription_from(provider: &str, status: u16, data: &Value) -> Result<NativeResource, Error> {
    let text = |field: &str| data.get(field).and_then(Value::as_str);
    let (Some(id), Some(service), Some(event)) = (text("id"), text("service"), text("event"))
    else {
        return Err(protocol(
            provider,
            status,
            "a subscription object without `id`, `service` or `event`",
        ));
    };
    // The id is a path segment of every later call; one that cannot be is
    // refused while the answer that brought it is at hand.
    if PathSegment::new(id).is_err() {
        return Err(protocol(
            provider,
            status,
            &format!("the subscription id `{id}`, which cannot be a path segment"),
        ));
    }
    Ok(NativeResource {
        id: id.to_owned(),
        events: vec![format!("{service}:{event}")],
        enabled: text("status").is_none_or(|s| s == ACTIVE),
        url: text("url").map(str::to_owned),
        filters: event_filters(data),
        ..Default::default()
    })
}

/// `eventFilters` (`[{"key", "value"}]`, both strings, providers.md §3.2)
/// as sorted pairs; `null` or absent is none. The filters are ANDed, so
/// their order carries no meaning and sorting makes equal sets compare
/// equal. An item without a string `key` and `value` is not a documented
/// filter and is left out rather than failing the whole answer.
fn event_filters(data: &Value) -> Vec<(String, String)> {
    let mut filters: Vec<(String, String)> = data
        .get("eventFilters")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|f| {
                    let key = f.get("key")?.as_str()?;
                    let value = f.get("value")?.as_str()?;
                    Some((key.to_owned(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    filters.sort();
    filters
}

/// Parses the subscription object of a create (201), get or update answer.
pub fn parse_subscription(
    provider: &str,
    resp: &NativeResponse,
    call: Call<'_>,
) -> Result<NativeResource, Error> {
    if !resp.is_success() {
        return Err(classify_error(provider, resp, call));
    }
    subscription_from(provider, resp.status, &resp.json())
}

/// One page of List.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    /// The subscriptions on this page.
    pub resources: Vec<NativeResource>,
    /// Token of the next page; `None` on the last page (an absent, `null` or
    /// empty `nextPageToken`, as the docs do not say which Bird sends).
    pub next_page_token: Option<String>,
}

/// Parses `{"results": [...], "nextPageToken": "..."}` (providers.md §3.2, §3.6).
pub fn parse_list_page(provider: &str, resp: &NativeResponse) -> Result<ListPage, Error> {
    if !resp.is_success() {
        return Err(classify_error(provider, resp, Call::List));
    }
    let body = resp.json();
    let results = body
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(provider, resp.status, "a list without `results`"))?;
    let resources = results
        .iter()
        .map(|s| subscription_from(provider, resp.status, s))
        .collect::<Result<_, _>>()?;
    let next_page_token = body
        .get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok(ListPage {
        resources,
        next_page_token,
    })
}

/// Every string in a JSON value, depth first.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// The provider's message. The error body of this API is undocumented
/// (providers.md §3.2: "JSON … fields unknown"), so the usual places are
/// tried in turn (`message`, `error.message`, `error`, `detail`, `title`,
/// `description`) and then any string in the body.
pub fn error_message(body: &Value) -> Option<String> {
    for pointer in [
        "/message",
        "/error/message",
        "/error",
        "/detail",
        "/title",
        "/description",
    ] {
        if let Some(text) = body.pointer(pointer).and_then(Value::as_str)
            && !text.trim().is_empty()
        {
            return Some(text.to_owned());
        }
    }
    let mut all = Vec::new();
    strings(body, &mut all);
    all.into_iter().find(|s| !s.trim().is_empty())
}

/// A Bird field name (possibly a path: `eventFilters.0.key`, `/url`,
/// `body.signingKey`) → the caller's JSON pointer; `""` when unknown.
pub fn field_pointer(native: &str) -> String {
    let trimmed = native
        .trim_start_matches('/')
        .trim_start_matches("body.")
        .trim_start_matches("body/");
    let mut parts = trimmed
        .split(['.', '/', '[', ']'])
        .filter(|p| !p.is_empty());
    let head = parts.next().unwrap_or_default();
    match head {
        "url" => "/url".to_owned(),
        "signingKey" => "/signing_secret".to_owned(),
        "eventFilters" => match parts.next() {
            Some(i) if i.bytes().all(|b| b.is_ascii_digit()) => format!("/filters/{i}"),
            _ => "/filters".to_owned(),
        },
        "template" => "/provider_options/template".to_owned(),
        "service" | "event" => "/events".to_owned(),
        "status" => "/enabled".to_owned(),
        _ => String::new(),
    }
}

/// Field problems named in the body, in either shape a validation error
/// commonly takes: `details: {field: [messages] | message}` or a list of
/// `{field|param|path|pointer|property|instancePath, message|detail}`,
/// under `details`, `errors` or `error.details`.
fn field_errors(provider: &str, body: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    for pointer in ["/details", "/errors", "/error/details"] {
        match body.pointer(pointer) {
            Some(Value::Object(map)) => {
                for (field, messages) in map {
                    let mut text = Vec::new();
                    strings(messages, &mut text);
                    out.push(FieldError::provider(
                        field_pointer(field),
                        format!("Bird: {}", text.join(" ")),
                        provider,
                    ));
                }
            }
            Some(Value::Array(items)) => {
                for item in items {
                    let field = [
                        "field",
                        "param",
                        "path",
                        "pointer",
                        "property",
                        "instancePath",
                    ]
                    .iter()
                    .find_map(|k| item.get(*k).and_then(Value::as_str));
                    let message = ["message", "detail", "description"]
                        .iter()
                        .find_map(|k| item.get(*k).and_then(Value::as_str))
                        .or_else(|| item.as_str());
                    if let Some(message) = message {
                        out.push(FieldError::provider(
                            field.map(field_pointer).unwrap_or_default(),
                            format!("Bird: {message}"),
                            provider,
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether a refusal is Bird's per-combination limit. The body is
/// undocumented, so this reads its words: something about subscriptions or
/// webhooks, something about a limit, and nothing about a length (which
/// would be a field limit such as a URL that is too long).
fn is_combination_limit(body: &Value) -> bool {
    let mut all = Vec::new();
    strings(body, &mut all);
    let text = all.join(" ").to_ascii_lowercase();
    let about_subscriptions = text.contains("subscription") || text.contains("webhook");
    let about_limit = ["limit", "maximum", "at most", "too many", "exceed"]
        .iter()
        .any(|w| text.contains(w));
    let about_length = ["length", "characters", "too long"]
        .iter()
        .any(|w| text.contains(w));
    about_subscriptions && about_limit && !about_length
}

fn limit_error(provider: &str, plan: &NativePlan, message: &str) -> FieldError {
    let filters: Vec<String> = plan
        .body
        .get("eventFilters")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|f| {
                    format!(
                        "{}={}",
                        f.get("key").and_then(Value::as_str).unwrap_or_default(),
                        f.get("value").and_then(Value::as_str).unwrap_or_default()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let (pointer, combination) = if filters.is_empty() {
        ("/events", "without filters".to_owned())
    } else {
        ("/filters", format!("with filters {}", filters.join(", ")))
    };
    FieldError::provider(
        pointer,
        format!(
            "Bird allows {LIMIT_PHRASE}; `{}` {combination} already has {MAX_PER_COMBINATION} subscriptions in this workspace. Use other filters or delete one of them (Bird: {message})",
            plan.key
        ),
        provider,
    )
}

/// Removes the plan's signing key from a provider message, in case Bird
/// echoes a rejected value.
fn scrub(message: String, plan: Option<&NativePlan>) -> String {
    match plan
        .and_then(|p| p.body.get("signingKey"))
        .and_then(Value::as_str)
    {
        Some(secret) if !secret.is_empty() => message.replace(secret, "***"),
        _ => message,
    }
}

/// Classifies a non-2xx answer. Bird documents 400 ("invalid HTTP
/// request") and 422 ("well-formed but unable to be processed") for writes
/// and 404 for a missing subscription (providers.md §3.2); the rest follows
/// [`UpstreamErrorKind::from_status`]. Status decides the class; the body,
/// whose shape is unknown, only supplies words.
pub fn classify_error(provider: &str, resp: &NativeResponse, call: Call<'_>) -> Error {
    let body = resp.json();
    let plan = call.plan();
    let raw = error_message(&body)
        .or_else(|| {
            let text = String::from_utf8_lossy(&resp.body).trim().to_owned();
            (!text.is_empty() && text.len() <= 500).then_some(text)
        })
        .unwrap_or_else(|| format!("HTTP {} without a message", resp.status));
    let message = scrub(raw, plan);
    let kind = match (resp.status, plan) {
        (400 | 409 | 422, Some(plan)) if is_combination_limit(&body) => {
            UpstreamErrorKind::Rejected(vec![limit_error(provider, plan, &message)])
        }
        (400 | 409 | 422, Some(plan)) => {
            let mut errors: Vec<FieldError> = field_errors(provider, &body)
                .into_iter()
                .map(|mut e| {
                    e.detail = scrub(e.detail, Some(plan));
                    e
                })
                .collect();
            if errors.is_empty() {
                errors.push(FieldError::provider(
                    "",
                    format!("Bird: {message}"),
                    provider,
                ));
            }
            UpstreamErrorKind::Rejected(errors)
        }
        // A POST to, or a GET of, the collection cannot miss a subscription:
        // the workspace (or the configured organization) is what is missing.
        (404, _) if matches!(call, Call::Create(_) | Call::List) => {
            UpstreamErrorKind::Rejected(vec![FieldError::provider(
                "/account",
                format!(
                    "Bird does not know this workspace (or the key cannot see it under the configured organization): {message}"
                ),
                provider,
            )])
        }
        // A 4xx on a read or delete is a request Switchboard built wrongly,
        // not something the caller can fix.
        (400 | 409 | 422, None) => UpstreamErrorKind::Protocol,
        (other, _) => UpstreamErrorKind::from_status(other, resp.retry_after),
    };
    Error::upstream(provider, kind, Some(resp.status), message)
}

#[cfg(test)]
mod tests;
