//! Wire shapes of the v1 API and their conversion to and from the domain.
//! Requests are parsed leniently typed (strings for enums) into a
//! [`SpecDraft`], whose rules live in core ([`SpecDraft::validate`]); parse
//! and rule problems are reported together, each with its pointer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_core::operation::Finding;
use switchboard_core::record::check_key;
use switchboard_core::subscription::AuthKind;
use switchboard_core::{
    CallbackAuth, CallbackUrl, Delivery, DeliveryFormat, DeliveryMethod, DeliveryMode, Error,
    EventName, FieldError, Filter, OnUnsupported, Secret, SpecDraft, SubscriptionSpec,
};
use switchboard_engine::{Action, NativeAction, NativeOperation, Preview};
use switchboard_store::{NativeRecord, SubscriptionRecord};
use utoipa::ToSchema;

/// Callback authentication as sent by the caller.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    /// `none`, `basic`, `bearer` or `api_key`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `basic`: user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `basic`: password (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `bearer`: token (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// `api_key`: header name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `api_key`: header value (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A delivery filter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterBody {
    /// Attribute.
    pub key: String,
    /// Required value.
    pub value: String,
}

impl FilterBody {
    /// The core filter.
    fn into_filter(self) -> Filter {
        Filter {
            key: self.key,
            value: self.value,
        }
    }
}

/// The body of `POST /v1/subscriptions`, `/v1/subscriptions/preview` and
/// `PUT /v1/subscriptions/by-key/{key}` (and, after a JSON merge patch, of
/// `PATCH`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRequest {
    /// The team's stable name for the subscription, unique within the
    /// tenant: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, starting with a
    /// letter or digit. Not sent upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    pub key: Option<String>,
    /// A key under `[providers.*]` in config.
    pub provider: String,
    /// Telegent AccountId, Talkover agent_id or Bird workspace id; absent for account-v2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Optional name, at most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 255)]
    pub name: Option<String>,
    /// Callback URL.
    #[schema(max_length = 2048)]
    pub url: String,
    /// Normalized names, or native names prefixed `native:`.
    #[schema(min_items = 1, max_items = 100)]
    pub events: Vec<String>,
    /// Delivery authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthRequest>,
    /// Signing secret (write-only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Extra delivery headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// `POST`, `PUT` or `PATCH`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(POST|PUT|PATCH)$")]
    pub method: Option<String>,
    /// `json` or `xml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(json|xml)$")]
    pub format: Option<String>,
    /// Delivery timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Delivery retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Delivery filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<FilterBody>>,
    /// Provider-specific extras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub provider_options: Option<Map<String, Value>>,
    /// Stored and returned, never sent upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Map<String, Value>>,
    /// `reject` (default) or `ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(reject|ignore)$")]
    pub on_unsupported: Option<String>,
    /// `direct` (default): the provider calls `url`. `relay`: the provider
    /// calls Switchboard's ingress and Switchboard delivers to `url`,
    /// signed with Standard Webhooks (`signing_secret` is then a
    /// `whsec_…` secret), honouring every callback field itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(direct|relay)$")]
    pub delivery: Option<String>,
    /// Relay only: deliver one event at a time, in the order accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered: Option<bool>,
}

/// Stands in for a secret the auth type needs but the body lacks, so the
/// rest of the draft can still be validated (the request fails on the
/// "is required" anyway).
const MISSING_SECRET: &str = "missing";
/// Stands in for a URL that did not parse, for the same reason.
const UNPARSED_URL: &str = "https://unparsed.invalid/";

/// A secret the auth type needs; its content is checked by
/// [`SpecDraft::validate`].
fn required_secret(errors: &mut Vec<FieldError>, pointer: &str, value: Option<String>) -> Secret {
    Secret::new(value.unwrap_or_else(|| {
        errors.push(FieldError::new(pointer, "is required"));
        MISSING_SECRET.to_owned()
    }))
}

fn parse_auth(errors: &mut Vec<FieldError>, auth: AuthRequest) -> CallbackAuth {
    let kind = match auth.kind.as_str() {
        "none" => AuthKind::None,
        "basic" => AuthKind::Basic,
        "bearer" => AuthKind::Bearer,
        "api_key" => AuthKind::ApiKey,
        other => {
            errors.push(FieldError::new(
                "/auth/type",
                format!("`{other}` is not one of none, basic, bearer, api_key"),
            ));
            return CallbackAuth::None;
        }
    };
    for (field, present) in [
        ("username", auth.username.is_some()),
        ("password", auth.password.is_some()),
        ("token", auth.token.is_some()),
        ("header", auth.header.is_some()),
        ("value", auth.value.is_some()),
    ] {
        if present && !auth_uses(kind, field) {
            errors.push(FieldError::new(
                format!("/auth/{field}"),
                format!("is not used by auth type `{}`", kind.as_str()),
            ));
        }
    }
    match kind {
        AuthKind::None => CallbackAuth::None,
        AuthKind::Basic => CallbackAuth::Basic {
            username: auth.username.unwrap_or_default(),
            password: required_secret(errors, "/auth/password", auth.password),
        },
        AuthKind::Bearer => CallbackAuth::Bearer {
            token: required_secret(errors, "/auth/token", auth.token),
        },
        AuthKind::ApiKey => CallbackAuth::ApiKey {
            header: auth.header.unwrap_or_default(),
            value: required_secret(errors, "/auth/value", auth.value),
        },
    }
}

/// Whether an `auth` field of the request belongs to the auth type.
fn auth_uses(kind: AuthKind, field: &str) -> bool {
    match kind {
        AuthKind::None => false,
        AuthKind::Basic => matches!(field, "username" | "password"),
        AuthKind::Bearer => field == "token",
        AuthKind::ApiKey => matches!(field, "header" | "value"),
    }
}

/// Parses an enum-like wire string, or reports which values it may take.
fn parse_choice<T: Copy>(
    errors: &mut Vec<FieldError>,
    pointer: &str,
    value: Option<&str>,
    choices: &[(&str, T)],
) -> Option<T> {
    let value = value?;
    let found = choices.iter().find(|(name, _)| *name == value);
    if found.is_none() {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        errors.push(FieldError::new(
            pointer,
            format!("`{value}` is not one of {}", names.join(", ")),
        ));
    }
    found.map(|(_, v)| *v)
}

/// The callback URL, or a stand-in when it does not parse.
fn parse_url(errors: &mut Vec<FieldError>, raw: &str) -> CallbackUrl {
    CallbackUrl::parse(raw).unwrap_or_else(|e| {
        errors.push(FieldError::new("/url", e));
        CallbackUrl::parse(UNPARSED_URL).expect("the stand-in URL is valid")
    })
}

/// The events, with a stand-in for each that does not parse: unique per
/// position, so it is never a duplicate and the draft's indices (and
/// count) stay the body's.
fn parse_events(errors: &mut Vec<FieldError>, raw: &[String]) -> Vec<EventName> {
    raw.iter()
        .enumerate()
        .map(|(i, raw)| {
            EventName::parse(raw).unwrap_or_else(|e| {
                errors.push(FieldError::new(format!("/events/{i}"), e));
                EventName::Native(format!("unparsed/{i}"))
            })
        })
        .collect()
}

/// `delivery` and `ordered`; the relay's own state (seed, rotation) is the
/// engine's to keep.
fn parse_delivery(
    errors: &mut Vec<FieldError>,
    mode: Option<&str>,
    ordered: Option<bool>,
) -> Delivery {
    let mode = parse_choice(
        errors,
        "/delivery",
        mode,
        &[
            ("direct", DeliveryMode::Direct),
            ("relay", DeliveryMode::Relay),
        ],
    )
    .unwrap_or_default();
    Delivery {
        mode,
        ordered: ordered.unwrap_or(false),
        ..Delivery::default()
    }
}

/// The request's top-level fields in the order problems are reported in.
const FIELD_ORDER: [&str; 16] = [
    "key",
    "provider",
    "account",
    "name",
    "url",
    "events",
    "auth",
    "signing_secret",
    "headers",
    "method",
    "format",
    "on_unsupported",
    "filters",
    "metadata",
    "delivery",
    "ordered",
];

/// Where a problem sorts among all of a request's problems: by top-level
/// field, a whole-list problem before its items, items by index, and in
/// `auth` the type and unused fields first, then the user name or header,
/// then the secret. Parse problems (here) and rule problems (core) thus
/// interleave as a caller reads the body.
fn report_order(auth: AuthKind, pointer: &str) -> (usize, i64) {
    let mut segments = pointer.trim_start_matches('/').splitn(3, '/');
    let field = segments.next().unwrap_or_default();
    let rank = FIELD_ORDER
        .iter()
        .position(|f| *f == field)
        .unwrap_or(FIELD_ORDER.len());
    let sub = match segments.next() {
        None => -1,
        Some(s) if field == "auth" => match s {
            "username" | "header" if auth_uses(auth, s) => 1,
            "password" | "token" | "value" if auth_uses(auth, s) => 2,
            _ => 0,
        },
        Some(i) if matches!(field, "events" | "filters") => i.parse().unwrap_or(0),
        Some(_) => 0,
    };
    (rank, sub)
}

impl SubscriptionRequest {
    /// Parses the wire shape (enum strings, the URL, event names, the auth
    /// variant) into a [`SpecDraft`] and validates it in core; the problems
    /// of both steps are reported together, in the order of the body. The
    /// `key` is checked too, and dropped: see [`Self::into_keyed`].
    pub fn into_spec(self) -> Result<SubscriptionSpec, Error> {
        self.into_keyed().map(|(_, spec)| spec)
    }

    /// [`Self::into_spec`], with the subscription's `key` (checked by
    /// [`check_key`], its problem reported with the others).
    pub fn into_keyed(self) -> Result<(Option<String>, SubscriptionSpec), Error> {
        let mut errors = Vec::new();
        if let Some(Err(Error::Invalid(e))) = self.key.as_deref().map(check_key) {
            errors.extend(e);
        }
        let key = self.key;
        let url = parse_url(&mut errors, &self.url);
        let events = parse_events(&mut errors, &self.events);
        let auth = self
            .auth
            .map(|a| parse_auth(&mut errors, a))
            .unwrap_or_default();
        let method = parse_choice(
            &mut errors,
            "/method",
            self.method.as_deref(),
            &[
                ("POST", DeliveryMethod::Post),
                ("PUT", DeliveryMethod::Put),
                ("PATCH", DeliveryMethod::Patch),
            ],
        );
        let format = parse_choice(
            &mut errors,
            "/format",
            self.format.as_deref(),
            &[("json", DeliveryFormat::Json), ("xml", DeliveryFormat::Xml)],
        );
        let on_unsupported = parse_choice(
            &mut errors,
            "/on_unsupported",
            self.on_unsupported.as_deref(),
            &[
                ("reject", OnUnsupported::Reject),
                ("ignore", OnUnsupported::Ignore),
            ],
        )
        .unwrap_or_default();
        let delivery = parse_delivery(&mut errors, self.delivery.as_deref(), self.ordered);
        let auth_kind = auth.kind();
        let draft = SpecDraft {
            provider: self.provider,
            account: self.account,
            name: self.name,
            url,
            events,
            auth,
            signing_secret: self.signing_secret.map(Secret::new),
            headers: self.headers.unwrap_or_default(),
            method,
            format,
            timeout_seconds: self.timeout_seconds,
            max_retries: self.max_retries,
            enabled: self.enabled.unwrap_or(true),
            filters: self
                .filters
                .unwrap_or_default()
                .into_iter()
                .map(FilterBody::into_filter)
                .collect(),
            provider_options: self.provider_options.unwrap_or_default(),
            metadata: self.metadata.unwrap_or_default(),
            on_unsupported,
            delivery,
        };
        match draft.validate() {
            Ok(spec) if errors.is_empty() => return Ok((key, spec)),
            Ok(_) => {}
            Err(Error::Invalid(rules)) => errors.extend(rules),
            Err(other) => return Err(other),
        }
        errors.sort_by_key(|e| report_order(auth_kind, &e.pointer));
        Err(Error::Invalid(errors))
    }

    /// The request that would produce `spec`, secrets included: the base a
    /// PATCH's merge patch is applied to. Never sent to a caller.
    pub fn from_spec(spec: &SubscriptionSpec) -> Self {
        let auth = match &spec.auth {
            CallbackAuth::None => None,
            CallbackAuth::Basic { username, password } => Some(AuthRequest {
                kind: "basic".into(),
                username: Some(username.clone()),
                password: Some(password.expose().to_owned()),
                ..Default::default()
            }),
            CallbackAuth::Bearer { token } => Some(AuthRequest {
                kind: "bearer".into(),
                token: Some(token.expose().to_owned()),
                ..Default::default()
            }),
            CallbackAuth::ApiKey { header, value } => Some(AuthRequest {
                kind: "api_key".into(),
                header: Some(header.clone()),
                value: Some(value.expose().to_owned()),
                ..Default::default()
            }),
        };
        Self {
            key: None,
            provider: spec.provider.clone(),
            account: spec.account.clone(),
            name: spec.name.clone(),
            url: spec.url.as_str().to_owned(),
            events: spec.events.iter().map(ToString::to_string).collect(),
            auth,
            signing_secret: spec.signing_secret.as_ref().map(|s| s.expose().to_owned()),
            headers: (!spec.headers.is_empty()).then(|| spec.headers.clone()),
            method: spec.method.map(|m| m.as_str().to_owned()),
            format: spec.format.map(|f| f.as_str().to_owned()),
            timeout_seconds: spec.timeout_seconds,
            max_retries: spec.max_retries,
            enabled: Some(spec.enabled),
            filters: (!spec.filters.is_empty()).then(|| {
                spec.filters
                    .iter()
                    .map(|f| FilterBody {
                        key: f.key.clone(),
                        value: f.value.clone(),
                    })
                    .collect()
            }),
            provider_options: (!spec.provider_options.is_empty())
                .then(|| spec.provider_options.clone()),
            metadata: (!spec.metadata.is_empty()).then(|| spec.metadata.clone()),
            on_unsupported: Some(
                match spec.on_unsupported {
                    OnUnsupported::Reject => "reject",
                    OnUnsupported::Ignore => "ignore",
                }
                .to_owned(),
            ),
            delivery: Some(spec.delivery.mode.as_str().to_owned()),
            ordered: spec.delivery.ordered.then_some(true),
        }
    }
}

/// RFC 7386 JSON merge patch, except that `auth` is replaced as a whole:
/// merging two auth types field by field would mix their credentials.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else if k == "auth" {
                    t.insert(k.clone(), v.clone());
                } else {
                    let entry = t.entry(k.clone()).or_insert(Value::Null);
                    if v.is_object() && entry.is_object() {
                        merge_patch_plain(entry, v);
                    } else {
                        *entry = v.clone();
                    }
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn merge_patch_plain(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch_plain(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Callback auth as returned: secrets replaced by `*_set` flags.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthView {
    /// `none`, `basic`, `bearer` or `api_key`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `basic`: user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `basic`: a password is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_set: Option<bool>,
    /// `bearer`: a token is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_set: Option<bool>,
    /// `api_key`: header name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `api_key`: a value is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_set: Option<bool>,
}

/// One native resource as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct NativeView {
    /// The provider's id.
    pub id: String,
    /// Stable key within the subscription.
    pub key: String,
    /// Native events.
    pub events: Vec<String>,
    /// `active` or `disabled`.
    pub status: &'static str,
}

impl From<&CallbackAuth> for AuthView {
    fn from(auth: &CallbackAuth) -> Self {
        let none = Self {
            kind: "none",
            username: None,
            password_set: None,
            token_set: None,
            header: None,
            value_set: None,
        };
        match auth {
            CallbackAuth::None => none,
            CallbackAuth::Basic { username, .. } => Self {
                kind: "basic",
                username: Some(username.clone()),
                password_set: Some(true),
                ..none
            },
            CallbackAuth::Bearer { .. } => Self {
                kind: "bearer",
                token_set: Some(true),
                ..none
            },
            CallbackAuth::ApiKey { header, .. } => Self {
                kind: "api_key",
                header: Some(header.clone()),
                value_set: Some(true),
                ..none
            },
        }
    }
}

impl From<&NativeRecord> for NativeView {
    fn from(n: &NativeRecord) -> Self {
        Self {
            id: n.native_id.clone(),
            key: n.key.clone(),
            events: n.events.clone(),
            status: if n.enabled { "active" } else { "disabled" },
        }
    }
}

/// A subscription as returned by every endpoint. Never contains a secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionView {
    /// `sub_<ulid>`.
    pub id: String,
    /// The team's stable name for it, unique within the tenant; null when
    /// it has none.
    pub key: Option<String>,
    /// `active`, `disabled`, `pending`, `degraded` or `failed`.
    pub status: &'static str,
    /// Provider instance key.
    pub provider: String,
    /// Provider-side parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Callback URL.
    pub url: String,
    /// Events as requested.
    pub events: Vec<String>,
    /// Callback auth without secrets.
    pub auth: AuthView,
    /// Whether a signing secret is stored.
    pub signing_secret_set: bool,
    /// Extra headers.
    pub headers: BTreeMap<String, String>,
    /// Delivery method, when chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// Delivery format, when chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<&'static str>,
    /// Delivery timeout, when chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Delivery retries, when chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// Whether deliveries are on.
    pub enabled: bool,
    /// Filters.
    pub filters: Vec<FilterBody>,
    /// Provider-specific extras.
    #[schema(value_type = Object)]
    pub provider_options: Map<String, Value>,
    /// Caller metadata.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Unsupported-field policy.
    pub on_unsupported: &'static str,
    /// `direct` or `relay`.
    pub delivery: &'static str,
    /// Relay only: whether events are delivered one at a time, in order.
    pub ordered: bool,
    /// Native resources Switchboard created.
    pub native: Vec<NativeView>,
    /// What was dropped or adjusted.
    pub warnings: Vec<String>,
    /// Last error, when `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the provider's state was last compared with this subscription.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_reconciled_at: Option<String>,
    /// What that comparison found.
    pub findings: Vec<Finding>,
    /// Optimistic-concurrency version (also the `ETag`).
    pub version: i64,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<&SubscriptionRecord> for SubscriptionView {
    fn from(r: &SubscriptionRecord) -> Self {
        let s = &r.spec;
        let auth = AuthView::from(&s.auth);
        Self {
            id: r.id.clone(),
            key: r.key.clone(),
            status: r.status.as_str(),
            provider: s.provider.clone(),
            account: s.account.clone(),
            name: s.name.clone(),
            url: s.url.as_str().to_owned(),
            events: s.events.iter().map(ToString::to_string).collect(),
            auth,
            signing_secret_set: s.signing_secret.is_some(),
            headers: s.headers.clone(),
            method: s.method.map(DeliveryMethod::as_str),
            format: s.format.map(DeliveryFormat::as_str),
            timeout_seconds: s.timeout_seconds,
            max_retries: s.max_retries,
            enabled: s.enabled,
            filters: s
                .filters
                .iter()
                .map(|f| FilterBody {
                    key: f.key.clone(),
                    value: f.value.clone(),
                })
                .collect(),
            provider_options: s.provider_options.clone(),
            metadata: s.metadata.clone(),
            on_unsupported: match s.on_unsupported {
                OnUnsupported::Reject => "reject",
                OnUnsupported::Ignore => "ignore",
            },
            delivery: s.delivery.mode.as_str(),
            ordered: s.delivery.ordered,
            native: r.natives.iter().map(NativeView::from).collect(),
            warnings: r.warnings.clone(),
            last_error: r.last_error.clone(),
            last_reconciled_at: r.last_reconciled_at.map(rfc3339),
            findings: r.findings.clone(),
            version: r.version,
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// What applying a preview's body by key would do to the subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlanAction {
    /// No key was given, or no subscription of the tenant has it.
    Create,
    /// The subscription with the key differs (or is `failed`).
    Update,
    /// The subscription with the key already is the desired state.
    Unchanged,
}

/// What a previewed change does to one native resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NativeActionView {
    /// Created at the provider.
    Create,
    /// Changed at the provider.
    Update,
    /// Deleted at the provider.
    Delete,
    /// Left as it is; nothing is sent.
    Keep,
}

/// A native resource that would exist.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewNativeView {
    /// Plan key (stable identity within the subscription).
    pub key: String,
    /// Native events.
    pub events: Vec<String>,
}

/// One native resource's part of a previewed change.
#[derive(Debug, Serialize, ToSchema)]
pub struct NativeOperationView {
    /// Plan key.
    pub key: String,
    /// What happens to it.
    pub action: NativeActionView,
    /// The provider's id of the existing resource; null for a create.
    pub native_id: Option<String>,
    /// The native events it carries afterwards (a delete: before).
    pub events: Vec<String>,
    /// A create: the exact native requests, secrets redacted. Empty
    /// otherwise: an update's requests depend on what the provider holds.
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<Value>,
    /// An update: the native resource as it will be, secrets redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub desired: Option<Value>,
}

/// The answer of `POST /v1/subscriptions/preview`: what a create (or,
/// with a `key`, a `PUT /v1/subscriptions/by-key/{key}` of the same body)
/// would do. Nothing is sent; secrets are never shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewView {
    /// Provider instance key.
    pub provider: String,
    /// Provider kind.
    pub kind: String,
    /// Native resources that would exist afterwards.
    pub native: Vec<PreviewNativeView>,
    /// The exact native requests of the resources that would be created
    /// (for a create, every request), secrets redacted.
    #[schema(value_type = Vec<Object>)]
    pub requests: Vec<Value>,
    /// What `on_unsupported: ignore` would drop.
    pub warnings: Vec<String>,
    /// `create` without a key or when no subscription has it; otherwise
    /// `update` or `unchanged`.
    pub action: PlanAction,
    /// The id of the subscription with the key; null for a create.
    pub subscription: Option<String>,
    /// Top-level request fields whose desired value differs from the
    /// stored one, sorted; secrets are compared and named, never shown.
    /// Empty for a create.
    pub changes: Vec<String>,
    /// What would happen to each native resource.
    pub native_operations: Vec<NativeOperationView>,
}

impl From<Preview> for PreviewView {
    fn from(p: Preview) -> Self {
        Self {
            provider: p.provider,
            kind: p.kind,
            native: p
                .native
                .into_iter()
                .map(|n| PreviewNativeView {
                    key: n.key,
                    events: n.events,
                })
                .collect(),
            requests: p.requests,
            warnings: p.warnings,
            action: match p.action {
                Action::Create => PlanAction::Create,
                Action::Update => PlanAction::Update,
                Action::Unchanged => PlanAction::Unchanged,
            },
            subscription: p.subscription,
            changes: p.changes,
            native_operations: p
                .native_operations
                .into_iter()
                .map(NativeOperationView::from)
                .collect(),
        }
    }
}

impl From<NativeOperation> for NativeOperationView {
    fn from(o: NativeOperation) -> Self {
        Self {
            key: o.key,
            action: match o.action {
                NativeAction::Create => NativeActionView::Create,
                NativeAction::Update => NativeActionView::Update,
                NativeAction::Delete => NativeActionView::Delete,
                NativeAction::Keep => NativeActionView::Keep,
            },
            native_id: o.native_id,
            events: o.events,
            requests: o.requests,
            desired: o.desired,
        }
    }
}

/// A timestamp as the API writes it: RFC 3339, milliseconds, `Z`.
pub fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A page of subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionPage {
    /// The subscriptions, oldest first.
    pub data: Vec<SubscriptionView>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> Result<SubscriptionSpec, Error> {
        serde_json::from_value::<SubscriptionRequest>(v)
            .unwrap()
            .into_spec()
    }

    fn pointers(e: Error) -> Vec<String> {
        match e {
            Error::Invalid(errs) => errs.into_iter().map(|e| e.pointer).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let err = req(json!({
            "provider": "", "url": "nope", "events": ["call.ended", "bad", "call.ended"],
            "auth": {"type": "basic", "username": "u", "token": "t"},
            "method": "GET", "format": "yaml", "headers": {"bad header": "x"},
            "on_unsupported": "maybe"
        }))
        .unwrap_err();
        assert_eq!(
            pointers(err),
            [
                "/provider",
                "/url",
                "/events/1",
                "/events/2",
                "/auth/token",
                "/auth/password",
                "/headers/bad header",
                "/method",
                "/format",
                "/on_unsupported"
            ]
        );
    }

    #[test]
    fn parse_and_rule_problems_interleave_in_body_order() {
        // Unparsable events are not also "missing": the count is the body's.
        let err =
            req(json!({"provider": "p", "url": "https://x.io/h", "events": ["bad"]})).unwrap_err();
        assert_eq!(pointers(err), ["/events/0"]);
        // In `auth`: unused fields, then the user name, then the secret,
        // whether it is missing (parse) or empty (rule).
        let err = req(json!({
            "provider": "p", "url": "https://x.io/h", "events": ["a.b"],
            "auth": {"type": "basic", "username": "a:b", "value": "v"}
        }))
        .unwrap_err();
        assert_eq!(
            pointers(err),
            ["/auth/value", "/auth/username", "/auth/password"]
        );
        let err = req(json!({
            "provider": "p", "url": "https://x.io/h", "events": ["a.b"],
            "auth": {"type": "api_key", "header": "", "value": "", "token": "t"},
            "filters": [{"key": "", "value": "v"}], "format": "yaml",
        }))
        .unwrap_err();
        assert_eq!(
            pointers(err),
            [
                "/auth/token",
                "/auth/header",
                "/auth/value",
                "/format",
                "/filters/0/key"
            ]
        );
    }

    #[test]
    fn a_key_is_checked_with_the_rest_and_kept_apart_from_the_spec() {
        let body = |key: &str, url: &str| {
            serde_json::from_value::<SubscriptionRequest>(json!({
                "key": key, "provider": "p", "url": url, "events": ["call.ended"]
            }))
            .unwrap()
        };
        let err = body("-x", "nope").into_keyed().unwrap_err();
        assert_eq!(pointers(err), ["/key", "/url"]);
        let (key, spec) = body("billing.v2", "https://x.io/h").into_keyed().unwrap();
        assert_eq!(key.as_deref(), Some("billing.v2"));
        assert_eq!(spec.url.as_str(), "https://x.io/h");
    }

    #[test]
    fn round_trips_through_from_spec() {
        let spec = req(json!({
            "provider": "p", "account": "a", "url": "https://x.io/h", "events": ["call.ended"],
            "auth": {"type": "api_key", "header": "X-Key", "value": "v"},
            "signing_secret": "s", "headers": {"X-Team": "t"}, "method": "PUT", "timeout_seconds": 9,
            "metadata": {"team": "billing"}
        }))
        .unwrap();
        let back = SubscriptionRequest::from_spec(&spec).into_spec().unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn merge_patch_replaces_auth_and_merges_the_rest() {
        let mut base = json!({"auth": {"type": "bearer", "token": "t"}, "metadata": {"a": 1, "b": 2}, "name": "n"});
        merge_patch(
            &mut base,
            &json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "metadata": {"b": null, "c": 3}, "name": null}),
        );
        assert_eq!(
            base,
            json!({"auth": {"type": "basic", "username": "u", "password": "p"}, "metadata": {"a": 1, "c": 3}})
        );
    }

    #[test]
    fn view_never_contains_secrets() {
        let spec = req(json!({
            "provider": "p", "url": "https://x.io/h", "events": ["call.ended"],
            "auth": {"type": "basic", "username": "u", "password": "pw-123"}, "signing_secret": "sig-456"
        }))
        .unwrap();
        let rec = SubscriptionRecord {
            id: "sub_x".into(),
            tenant: "t".into(),
            key: None,
            status: switchboard_core::SubscriptionStatus::Active,
            spec,
            warnings: vec![],
            last_error: None,
            version: 1,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            natives: vec![],
            last_reconciled_at: None,
            findings: vec![],
        };
        let shown = serde_json::to_string(&SubscriptionView::from(&rec)).unwrap();
        assert!(!shown.contains("pw-123") && !shown.contains("sig-456"));
        assert!(
            shown.contains("\"password_set\":true")
                && shown.contains("\"signing_secret_set\":true")
        );
    }
}
