//! The normalized subscription and its validated parts. A `SubscriptionSpec`
//! is built from a [`SpecDraft`] by [`SpecDraft::validate`], so it only holds
//! values that passed the provider-independent rules (at least one event, no
//! duplicates, header, secret and metadata limits, …); what a particular
//! provider accepts is decided by its [`crate::Capabilities`] and adapter.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CallbackUrl, Error, FieldError, Secret};

/// Longest callback URL accepted by any provider path (browsers' de-facto limit).
pub const MAX_URL_LEN: usize = 2048;
/// Longest subscription name (Talkover `name` ≤ 255, seed 002).
pub const MAX_NAME_LEN: usize = 255;
/// Most events one subscription may name.
pub const MAX_EVENTS: usize = 100;
/// Most custom delivery headers.
pub const MAX_HEADERS: usize = 32;
/// Longest custom delivery header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Longest secret of any kind (signing secret, password, token, key), in characters.
pub const MAX_SECRET_LEN: usize = 1024;
/// Longest basic-auth user name, in characters.
pub const MAX_USERNAME_LEN: usize = 255;
/// Largest `metadata` document, serialized.
pub const MAX_METADATA_BYTES: usize = 8192;

/// An event the caller subscribes to: a normalized catalog name
/// (`call.ended`) or a provider's own name passed through (`native:event_action`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum EventName {
    /// A name from the normalized catalog.
    Normalized(String),
    /// A provider-native name, checked against that kind's native catalog.
    Native(String),
}

impl EventName {
    /// Parses `call.ended` or `native:<name>`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(native) = raw.strip_prefix("native:") {
            let ok = !native.is_empty()
                && native.len() <= 128
                && native
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
            return if ok {
                Ok(Self::Native(native.to_owned()))
            } else {
                Err(
                    "a native event name is `native:` followed by letters, digits, `_ . : -`"
                        .into(),
                )
            };
        }
        let mut parts = raw.split('.');
        let well_formed = raw.len() <= 128
            && raw.contains('.')
            && parts.all(|p| {
                p.starts_with(|c: char| c.is_ascii_lowercase())
                    && p.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if well_formed {
            Ok(Self::Normalized(raw.to_owned()))
        } else {
            Err(format!(
                "`{raw}` is not an event name: use a catalog name like `call.ended` or `native:<provider name>`"
            ))
        }
    }
}

impl TryFrom<String> for EventName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<EventName> for String {
    fn from(e: EventName) -> String {
        e.to_string()
    }
}

impl fmt::Display for EventName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Normalized(n) => f.write_str(n),
            Self::Native(n) => write!(f, "native:{n}"),
        }
    }
}

/// How the provider authenticates its deliveries to the callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallbackAuth {
    /// No credentials.
    #[default]
    None,
    /// HTTP Basic.
    Basic {
        /// User name (not secret).
        username: String,
        /// Password (secret).
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// Token (secret).
        token: Secret,
    },
    /// A header carrying a static key.
    ApiKey {
        /// Header name.
        header: String,
        /// Header value (secret).
        value: Secret,
    },
}

impl CallbackAuth {
    /// The wire name of the variant (`none`, `basic`, `bearer`, `api_key`).
    pub fn kind(&self) -> AuthKind {
        match self {
            Self::None => AuthKind::None,
            Self::Basic { .. } => AuthKind::Basic,
            Self::Bearer { .. } => AuthKind::Bearer,
            Self::ApiKey { .. } => AuthKind::ApiKey,
        }
    }
}

/// The callback auth variants, as data for capability checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// No credentials.
    None,
    /// HTTP Basic.
    Basic,
    /// Bearer token.
    Bearer,
    /// Static key header.
    ApiKey,
}

impl AuthKind {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Basic => "basic",
            Self::Bearer => "bearer",
            Self::ApiKey => "api_key",
        }
    }
}

/// HTTP method the provider uses to deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryMethod {
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

impl DeliveryMethod {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }
}

/// Payload format the provider delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryFormat {
    /// JSON.
    Json,
    /// XML.
    Xml,
}

impl DeliveryFormat {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Xml => "xml",
        }
    }
}

/// Who delivers events to the subscriber (issue 13).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// The provider calls the subscriber's URL itself (the default): the
    /// provider's capability matrix bounds the callback fields.
    #[default]
    Direct,
    /// The provider calls Switchboard's ingress; Switchboard verifies,
    /// normalizes and delivers with Standard Webhooks signatures and its
    /// own retries, honouring every callback field itself.
    Relay,
}

impl DeliveryMode {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Relay => "relay",
        }
    }
}

/// How a subscription's events reach its subscriber.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Direct or relayed.
    #[serde(default)]
    pub mode: DeliveryMode,
    /// Relay only: deliver one event at a time, in acceptance order.
    #[serde(default)]
    pub ordered: bool,
    /// Relay only: the random secret the route tokens and ingress
    /// credentials of this subscription's natives are derived from
    /// (`engine/src/relay.rs`). Switchboard generates it, keeps it across
    /// changes while the subscription stays in relay mode and never shows
    /// it; `None` in direct mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Secret>,
    /// Relay only: the signing secret a rotation replaced, still signed
    /// with (a second `webhook-signature` entry) until `previous_until`,
    /// so receivers can switch secrets without refusing a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<Secret>,
    /// End of the rotation overlap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl Delivery {
    /// Whether Switchboard relays the events.
    pub fn is_relay(&self) -> bool {
        self.mode == DeliveryMode::Relay
    }

    /// The replaced signing secret while its rotation overlap lasts at
    /// `now`.
    pub fn previous_secret_at(&self, now: chrono::DateTime<chrono::Utc>) -> Option<&Secret> {
        match (&self.previous_secret, self.previous_until) {
            (Some(secret), Some(until)) if now < until => Some(secret),
            _ => None,
        }
    }
}

/// What to do with a field the provider cannot honour natively.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnUnsupported {
    /// 422 naming the field and the provider (default: nothing silently lost).
    #[default]
    Reject,
    /// Drop the field and report a warning.
    Ignore,
}

crate::operation::wire_enum! {
    /// Lifecycle state of a subscription as the API reports it.
    SubscriptionStatus {
        /// Every native resource exists and delivers.
        Active = "active",
        /// Deliveries are off; the subscription is kept.
        Disabled = "disabled",
        /// A change is being applied upstream.
        Pending = "pending",
        /// The provider's state drifted from the recorded one.
        Degraded = "degraded",
        /// The last change could not be applied.
        Failed = "failed",
    }
}

/// A delivery filter (`key` equals `value`), for providers that filter natively.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Attribute name.
    pub key: String,
    /// Required value.
    pub value: String,
}

/// The desired state of one subscription, validated independently of any
/// provider. Optional delivery settings are `None` when the caller left them
/// to the provider's default, so that "unsupported" is only ever reported for
/// something the caller actually asked for.
///
/// A spec reads like its [`SpecDraft`] (every field, through `Deref`), but
/// only [`SpecDraft::validate`] makes one, and a change goes through
/// [`SubscriptionSpec::with`], which validates again: the type cannot hold
/// a spec that breaks the rules. Reading one back from the store does not
/// re-check (it passed `validate` when it was written), so a rule tightened
/// later never strands a stored subscription.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct SubscriptionSpec(SpecDraft);

impl std::ops::Deref for SubscriptionSpec {
    type Target = SpecDraft;

    fn deref(&self) -> &SpecDraft {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SubscriptionSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SpecDraft::deserialize(d).map(Self)
    }
}

impl SubscriptionSpec {
    /// The spec as a draft again, to change fields and validate anew.
    pub fn into_draft(self) -> SpecDraft {
        self.0
    }

    /// This spec with `change` applied, validated again.
    pub fn with(self, change: impl FnOnce(&mut SpecDraft)) -> Result<Self, Error> {
        let mut draft = self.0;
        change(&mut draft);
        draft.validate()
    }
}

/// The fields of a [`SubscriptionSpec`], not yet checked and freely built.
/// [`SpecDraft::validate`] is the one way to a spec, so every spec in the
/// system (from the API, a test or a migration) passed the same rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecDraft {
    /// Provider instance key (`[providers.<key>]`); must not be empty.
    pub provider: String,
    /// Provider-side parent; when present, not blank.
    pub account: Option<String>,
    /// Human-readable name, at most [`MAX_NAME_LEN`] characters.
    pub name: Option<String>,
    /// Where deliveries go.
    pub url: CallbackUrl,
    /// 1 to [`MAX_EVENTS`] events, no duplicates.
    pub events: Vec<EventName>,
    /// Delivery authentication; its secrets follow the secret rules, a
    /// basic user name has no `:`, an api-key header is an HTTP token.
    pub auth: CallbackAuth,
    /// Signing secret: 1 to [`MAX_SECRET_LEN`] characters.
    pub signing_secret: Option<Secret>,
    /// At most [`MAX_HEADERS`] headers: HTTP token names, visible-ASCII values.
    pub headers: BTreeMap<String, String>,
    /// Delivery method.
    pub method: Option<DeliveryMethod>,
    /// Delivery format.
    pub format: Option<DeliveryFormat>,
    /// Delivery timeout.
    pub timeout_seconds: Option<u32>,
    /// Delivery retries.
    pub max_retries: Option<u32>,
    /// Whether deliveries are on.
    pub enabled: bool,
    /// Delivery filters, each with a non-empty key.
    pub filters: Vec<Filter>,
    /// Provider-specific extras, validated by the adapter.
    pub provider_options: serde_json::Map<String, serde_json::Value>,
    /// At most [`MAX_METADATA_BYTES`] as JSON.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Unsupported-field policy.
    pub on_unsupported: OnUnsupported,
    /// Direct or relayed delivery.
    #[serde(default)]
    pub delivery: Delivery,
}

impl SpecDraft {
    /// Checks every provider-independent rule and reports every broken one
    /// at once (`Error::Invalid`, pointers into the v1 request body, in the
    /// order of its fields).
    pub fn validate(self) -> Result<SubscriptionSpec, Error> {
        let mut errors = Vec::new();
        self.check_identity(&mut errors);
        self.check_events(&mut errors);
        check_auth(&self.auth, &mut errors);
        if let Some(s) = &self.signing_secret {
            check_secret(&mut errors, "/signing_secret", s);
        }
        self.check_delivery(&mut errors);
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        Ok(SubscriptionSpec(self))
    }

    fn check_identity(&self, errors: &mut Vec<FieldError>) {
        if self.provider.is_empty() {
            errors.push(FieldError::new("/provider", "is required"));
        }
        if self.account.as_ref().is_some_and(|a| a.trim().is_empty()) {
            errors.push(FieldError::new(
                "/account",
                "must not be empty; omit it instead",
            ));
        }
        if self
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NAME_LEN)
        {
            errors.push(FieldError::new(
                "/name",
                format!("must be at most {MAX_NAME_LEN} characters"),
            ));
        }
    }

    fn check_events(&self, errors: &mut Vec<FieldError>) {
        if self.events.is_empty() {
            errors.push(FieldError::new("/events", "must name at least one event"));
        }
        if self.events.len() > MAX_EVENTS {
            errors.push(FieldError::new(
                "/events",
                format!("must name at most {MAX_EVENTS} events"),
            ));
        }
        for (i, e) in self.events.iter().enumerate() {
            if self.events[..i].contains(e) {
                errors.push(FieldError::new(
                    format!("/events/{i}"),
                    format!("`{e}` is listed twice"),
                ));
            }
        }
    }

    /// Headers, filters and metadata.
    fn check_delivery(&self, errors: &mut Vec<FieldError>) {
        if self.headers.len() > MAX_HEADERS {
            errors.push(FieldError::new(
                "/headers",
                format!("at most {MAX_HEADERS} headers"),
            ));
        }
        for (name, value) in &self.headers {
            if !is_header_name(name) {
                errors.push(FieldError::new(
                    format!("/headers/{name}"),
                    "is not a valid HTTP header name",
                ));
            } else if http::HeaderValue::from_str(value).is_err()
                || value.len() > MAX_HEADER_VALUE_BYTES
            {
                errors.push(FieldError::new(
                    format!("/headers/{name}"),
                    format!("must be visible ASCII, at most {MAX_HEADER_VALUE_BYTES} bytes"),
                ));
            }
        }
        for (i, f) in self.filters.iter().enumerate() {
            if f.key.is_empty() {
                errors.push(FieldError::new(
                    format!("/filters/{i}/key"),
                    "must not be empty",
                ));
            }
        }
        if self.delivery.ordered && !self.delivery.is_relay() {
            errors.push(FieldError::new(
                "/ordered",
                "only relayed deliveries keep an order; set `delivery` to `relay`",
            ));
        }
        if serde_json::to_vec(&self.metadata).map_or(0, |v| v.len()) > MAX_METADATA_BYTES {
            errors.push(FieldError::new(
                "/metadata",
                format!("must be at most {MAX_METADATA_BYTES} bytes as JSON"),
            ));
        }
    }
}

/// Whether `name` is a non-empty HTTP header name (an RFC 9110 token).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty() && http::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

fn check_secret(errors: &mut Vec<FieldError>, pointer: &str, secret: &Secret) {
    let value = secret.expose();
    if value.is_empty() {
        errors.push(FieldError::new(pointer, "must not be empty"));
    } else if value.chars().count() > MAX_SECRET_LEN {
        errors.push(FieldError::new(
            pointer,
            format!("must be at most {MAX_SECRET_LEN} characters"),
        ));
    }
}

fn check_auth(auth: &CallbackAuth, errors: &mut Vec<FieldError>) {
    match auth {
        CallbackAuth::None => {}
        CallbackAuth::Basic { username, password } => {
            if username.is_empty()
                || username.contains(':')
                || username.chars().count() > MAX_USERNAME_LEN
            {
                errors.push(FieldError::new(
                    "/auth/username",
                    format!("is required, at most {MAX_USERNAME_LEN} characters, without `:`"),
                ));
            }
            check_secret(errors, "/auth/password", password);
        }
        CallbackAuth::Bearer { token } => check_secret(errors, "/auth/token", token),
        CallbackAuth::ApiKey { header, value } => {
            if !is_header_name(header) {
                errors.push(FieldError::new(
                    "/auth/header",
                    "must be a valid HTTP header name",
                ));
            }
            check_secret(errors, "/auth/value", value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_spec_with_a_legacy_url_reads_back() {
        let spec = crate::testing::draft("p", "https://x.io/h", &["a.b"])
            .validate()
            .unwrap();
        let mut json = serde_json::to_value(&spec).unwrap();
        json["url"] = "https://X.io\\@127.0.0.1/".into();
        let back: SubscriptionSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back.url.as_str(), "https://x.io/@127.0.0.1/");
    }

    #[test]
    fn event_names() {
        assert_eq!(
            EventName::parse("call.ended").unwrap(),
            EventName::Normalized("call.ended".into())
        );
        assert_eq!(
            EventName::parse("native:channels:sms.outbound").unwrap(),
            EventName::Native("channels:sms.outbound".into())
        );
        for bad in [
            "",
            "call",
            "Call.Ended",
            "call..ended",
            "native:",
            "native:a b",
        ] {
            assert!(EventName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            EventName::parse("native:event_action").unwrap().to_string(),
            "native:event_action"
        );
    }

    fn pointers(draft: SpecDraft) -> Vec<String> {
        match draft.validate() {
            Err(Error::Invalid(errors)) => errors.into_iter().map(|e| e.pointer).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_minimal_draft_validates_and_round_trips() {
        let draft = crate::testing::draft("talkover", "https://x.io/h", &["call.ended"]);
        let spec = draft.clone().validate().unwrap();
        assert_eq!(spec.into_draft(), draft);
    }

    #[test]
    fn validate_reports_every_broken_rule_in_field_order() {
        let base = crate::testing::draft("", "https://x.io/h", &["call.ended", "call.ended"]);
        let draft = SpecDraft {
            account: Some(" ".into()),
            name: Some("n".repeat(MAX_NAME_LEN + 1)),
            auth: CallbackAuth::Basic {
                username: "a:b".into(),
                password: Secret::new(""),
            },
            signing_secret: Some(Secret::new("s".repeat(MAX_SECRET_LEN + 1))),
            headers: [("bad header".to_owned(), "x".to_owned())].into(),
            filters: vec![Filter {
                key: String::new(),
                value: "v".into(),
            }],
            metadata: [("x".to_owned(), "m".repeat(MAX_METADATA_BYTES).into())]
                .into_iter()
                .collect(),
            ..base
        };
        assert_eq!(
            pointers(draft),
            [
                "/provider",
                "/account",
                "/name",
                "/events/1",
                "/auth/username",
                "/auth/password",
                "/signing_secret",
                "/headers/bad header",
                "/filters/0/key",
                "/metadata"
            ]
        );
    }

    #[test]
    fn event_count_and_header_limits() {
        let none = crate::testing::draft("p", "https://x.io/h", &[]);
        assert_eq!(pointers(none), ["/events"]);
        let many: Vec<String> = (0..=MAX_EVENTS).map(|i| format!("e.n{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            pointers(crate::testing::draft("p", "https://x.io/h", &many)),
            ["/events"]
        );
        let headers = (0..=MAX_HEADERS)
            .map(|i| (format!("X-H{i}"), "v".to_owned()))
            .collect();
        let draft = SpecDraft {
            headers,
            ..crate::testing::draft("p", "https://x.io/h", &["a.b"])
        };
        assert_eq!(pointers(draft), ["/headers"]);
        let draft = SpecDraft {
            headers: [("X-A".to_owned(), "\n".to_owned())].into(),
            auth: CallbackAuth::ApiKey {
                header: "bad header".into(),
                value: Secret::new("v"),
            },
            ..crate::testing::draft("p", "https://x.io/h", &["a.b"])
        };
        assert_eq!(pointers(draft), ["/auth/header", "/headers/X-A"]);
    }

    #[test]
    fn auth_debug_hides_secrets() {
        let auth = CallbackAuth::Basic {
            username: "u".into(),
            password: Secret::new("p4ssw0rd"),
        };
        assert!(!format!("{auth:?}").contains("p4ssw0rd"));
    }
}
