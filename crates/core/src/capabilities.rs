//! What a provider kind can do natively, as data (the OpenDAL way): checked
//! once before any translation, and served at `GET /v1/providers`.

use serde::Serialize;

use crate::subscription::AuthKind;
use crate::{
    CallbackAuth, DeliveryFormat, DeliveryMethod, Error, FieldError, OnUnsupported,
    SubscriptionSpec,
};

/// Whether a subscription names a provider-side parent in `account`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum AccountRule {
    /// `account` is required and means this (e.g. "Talkover agent_id").
    Required {
        /// What the account is at this provider.
        meaning: &'static str,
        /// Longest accepted value.
        max_len: usize,
    },
    /// The credentials are the account; `account` must be absent.
    Forbidden,
}

/// How many events one native resource can carry.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum EventsPerResource {
    /// Any number (an array).
    Many,
    /// Exactly one: a subscription fans out into one resource per event.
    One,
    /// A joined string of at most `max_chars`; longer lists split.
    JoinedMaxChars {
        /// Limit of the joined string.
        max_chars: usize,
    },
}

/// An inclusive integer range a provider accepts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Range {
    /// Smallest accepted value.
    pub min: u32,
    /// Largest accepted value.
    pub max: u32,
}

/// A provider kind's native abilities.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    /// Meaning of `account`.
    pub account: AccountRule,
    /// Events per native resource.
    pub events_per_resource: EventsPerResource,
    /// Longest callback URL.
    pub url_max_len: usize,
    /// Whether only https callbacks are accepted.
    pub https_only: bool,
    /// Supported callback auth types (always includes `none`).
    pub auth: Vec<AuthKind>,
    /// Whether deliveries can be signed with a caller secret, and its max length.
    pub signing_secret_max_len: Option<usize>,
    /// Whether custom delivery headers are supported.
    pub headers: bool,
    /// Delivery methods the caller may choose.
    pub methods: Vec<DeliveryMethod>,
    /// Delivery formats the caller may choose.
    pub formats: Vec<DeliveryFormat>,
    /// Accepted delivery timeout, when configurable.
    pub timeout_seconds: Option<Range>,
    /// Accepted delivery retries, when configurable.
    pub max_retries: Option<Range>,
    /// Whether delivery filters are supported.
    pub filters: bool,
    /// Whether the provider can switch a webhook off without deleting it.
    pub native_disable: bool,
    /// Whether all writes to one account must be serialized (one shared
    /// document per account that is read, checked and written): the engine
    /// then holds a lock per (provider, account) across every change, in
    /// this process and, on Postgres, across replicas.
    pub serialize_account: bool,
    /// Keys allowed in `provider_options`.
    pub provider_options: Vec<&'static str>,
    /// Native events whose resources cannot carry the signing secret (the
    /// adapter refuses it there, or drops it under `on_unsupported: ignore`
    /// with a warning).
    pub unsigned_events: Vec<&'static str>,
}

impl Capabilities {
    /// Checks `spec` against these capabilities before any upstream call.
    ///
    /// Fields the provider cannot honour are a 422 naming field and provider,
    /// or, under `on_unsupported: ignore`, removed from `spec` with a warning.
    /// Values out of a supported range are always errors: dropping them would
    /// change what the caller asked for rather than omit a feature.
    pub fn check(
        &self,
        provider: &str,
        kind: &str,
        spec: &mut SubscriptionSpec,
    ) -> Result<Vec<String>, Error> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let ignore = spec.on_unsupported == OnUnsupported::Ignore;
        let who = format!("provider `{provider}` (kind {kind})");
        let mut hard = |pointer: &str, detail: String| {
            errors.push(FieldError::provider(pointer, detail, provider));
        };

        match (&self.account, &spec.account) {
            (AccountRule::Required { meaning, .. }, None) => {
                hard("/account", format!("is required by {who}: the {meaning}"));
            }
            (AccountRule::Required { max_len, .. }, Some(a)) if a.chars().count() > *max_len => {
                hard(
                    "/account",
                    format!("must be at most {max_len} characters for {who}"),
                );
            }
            (AccountRule::Required { .. }, Some(a)) if a.trim().is_empty() => {
                hard("/account", format!("must not be empty for {who}"));
            }
            (AccountRule::Forbidden, Some(_)) => {
                hard(
                    "/account",
                    format!("must be absent for {who}: its credentials are the account"),
                );
            }
            _ => {}
        }
        if spec.url.as_str().len() > self.url_max_len {
            hard(
                "/url",
                format!("must be at most {} characters for {who}", self.url_max_len),
            );
        }
        if self.https_only && !spec.url.is_https() {
            hard("/url", format!("must use https for {who}"));
        }
        if let (Some(max), Some(s)) = (self.signing_secret_max_len, &spec.signing_secret)
            && s.char_len() > max
        {
            hard(
                "/signing_secret",
                format!("must be at most {max} characters for {who}"),
            );
        }
        for (field, value, range) in [
            (
                "/timeout_seconds",
                spec.timeout_seconds,
                self.timeout_seconds,
            ),
            ("/max_retries", spec.max_retries, self.max_retries),
        ] {
            if let (Some(v), Some(r)) = (value, range)
                && (v < r.min || v > r.max)
            {
                hard(
                    field,
                    format!("must be between {} and {} for {who}", r.min, r.max),
                );
            }
        }
        for key in spec.provider_options.keys() {
            if !self.provider_options.contains(&key.as_str()) {
                hard(
                    &format!("/provider_options/{key}"),
                    format!(
                        "is not an option of {who}; known: {:?}",
                        self.provider_options
                    ),
                );
            }
        }

        let mut unsupported = |pointer: &str, what: &str, drop: &mut dyn FnMut()| {
            if ignore {
                drop();
                warnings.push(format!(
                    "`{}` dropped: {who} does not support {what}",
                    &pointer[1..]
                ));
            } else {
                errors.push(FieldError::provider(
                    pointer,
                    format!(
                        "{who} does not support {what}; set on_unsupported to \"ignore\" to drop it"
                    ),
                    provider,
                ));
            }
        };
        let auth_kind = spec.auth.kind();
        if !self.auth.contains(&auth_kind) {
            unsupported(
                "/auth",
                &format!("callback auth `{}`", auth_kind.as_str()),
                &mut || {
                    spec.auth = CallbackAuth::None;
                },
            );
        }
        if spec.signing_secret.is_some() && self.signing_secret_max_len.is_none() {
            unsupported("/signing_secret", "signed deliveries", &mut || {
                spec.signing_secret = None
            });
        }
        if !spec.headers.is_empty() && !self.headers {
            unsupported("/headers", "custom delivery headers", &mut || {
                spec.headers.clear()
            });
        }
        if let Some(m) = spec.method
            && !self.methods.contains(&m)
        {
            unsupported(
                "/method",
                &format!("delivery method {}", m.as_str()),
                &mut || spec.method = None,
            );
        }
        if let Some(f) = spec.format
            && !self.formats.contains(&f)
        {
            unsupported(
                "/format",
                &format!("delivery format {}", f.as_str()),
                &mut || spec.format = None,
            );
        }
        if spec.timeout_seconds.is_some() && self.timeout_seconds.is_none() {
            unsupported("/timeout_seconds", "a delivery timeout", &mut || {
                spec.timeout_seconds = None
            });
        }
        if spec.max_retries.is_some() && self.max_retries.is_none() {
            unsupported("/max_retries", "a retry count", &mut || {
                spec.max_retries = None
            });
        }
        if !spec.filters.is_empty() && !self.filters {
            unsupported("/filters", "delivery filters", &mut || spec.filters.clear());
        }

        if errors.is_empty() {
            Ok(warnings)
        } else {
            Err(Error::Invalid(errors))
        }
    }
}
