//! What a provider kind can do natively, as data (the OpenDAL way): checked
//! once before any translation, and served at `GET /v1/providers`.

use serde::Serialize;

use crate::subscription::AuthKind;
use crate::{
    CallbackAuth, DeliveryFormat, DeliveryMethod, Error, FieldError, OnUnsupported, SpecDraft,
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
        spec: &mut SpecDraft,
    ) -> Result<Vec<String>, Error> {
        let mut findings = Findings {
            provider,
            who: format!("provider `{provider}` (kind {kind})"),
            ignore: spec.on_unsupported == OnUnsupported::Ignore,
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        self.check_account(spec, &mut findings);
        self.check_limits(spec, &mut findings);
        self.check_unsupported(spec, &mut findings);
        if findings.errors.is_empty() {
            Ok(findings.warnings)
        } else {
            Err(Error::Invalid(findings.errors))
        }
    }

    /// `account` against [`AccountRule`].
    fn check_account(&self, spec: &SpecDraft, f: &mut Findings<'_>) {
        let who = f.who.clone();
        match (&self.account, &spec.account) {
            (AccountRule::Required { meaning, .. }, None) => {
                f.hard("/account", format!("is required by {who}: the {meaning}"));
            }
            (AccountRule::Required { max_len, .. }, Some(a)) if a.chars().count() > *max_len => {
                f.hard(
                    "/account",
                    format!("must be at most {max_len} characters for {who}"),
                );
            }
            (AccountRule::Required { .. }, Some(a)) if a.trim().is_empty() => {
                f.hard("/account", format!("must not be empty for {who}"));
            }
            (AccountRule::Forbidden, Some(_)) => {
                f.hard(
                    "/account",
                    format!("must be absent for {who}: its credentials are the account"),
                );
            }
            _ => {}
        }
    }

    /// Values outside what the provider accepts: always errors.
    fn check_limits(&self, spec: &SpecDraft, f: &mut Findings<'_>) {
        let who = f.who.clone();
        if spec.url.as_str().len() > self.url_max_len {
            f.hard(
                "/url",
                format!("must be at most {} characters for {who}", self.url_max_len),
            );
        }
        if self.https_only && !spec.url.is_https() {
            f.hard("/url", format!("must use https for {who}"));
        }
        if let (Some(max), Some(s)) = (self.signing_secret_max_len, &spec.signing_secret)
            && s.char_len() > max
        {
            f.hard(
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
                f.hard(
                    field,
                    format!("must be between {} and {} for {who}", r.min, r.max),
                );
            }
        }
        for key in spec.provider_options.keys() {
            if !self.provider_options.contains(&key.as_str()) {
                f.hard(
                    &format!("/provider_options/{key}"),
                    format!(
                        "is not an option of {who}; known: {:?}",
                        self.provider_options
                    ),
                );
            }
        }
    }

    /// Features the provider lacks: errors, or dropped with a warning under
    /// `on_unsupported: ignore`.
    fn check_unsupported(&self, spec: &mut SpecDraft, f: &mut Findings<'_>) {
        let auth_kind = spec.auth.kind();
        if !self.auth.contains(&auth_kind) {
            f.unsupported(
                "/auth",
                &format!("callback auth `{}`", auth_kind.as_str()),
                || spec.auth = CallbackAuth::None,
            );
        }
        if spec.signing_secret.is_some() && self.signing_secret_max_len.is_none() {
            f.unsupported("/signing_secret", "signed deliveries", || {
                spec.signing_secret = None
            });
        }
        if !spec.headers.is_empty() && !self.headers {
            f.unsupported("/headers", "custom delivery headers", || {
                spec.headers.clear()
            });
        }
        if let Some(m) = spec.method
            && !self.methods.contains(&m)
        {
            f.unsupported(
                "/method",
                &format!("delivery method {}", m.as_str()),
                || spec.method = None,
            );
        }
        if let Some(fmt) = spec.format
            && !self.formats.contains(&fmt)
        {
            f.unsupported(
                "/format",
                &format!("delivery format {}", fmt.as_str()),
                || spec.format = None,
            );
        }
        if spec.timeout_seconds.is_some() && self.timeout_seconds.is_none() {
            f.unsupported("/timeout_seconds", "a delivery timeout", || {
                spec.timeout_seconds = None
            });
        }
        if spec.max_retries.is_some() && self.max_retries.is_none() {
            f.unsupported("/max_retries", "a retry count", || spec.max_retries = None);
        }
        if !spec.filters.is_empty() && !self.filters {
            f.unsupported("/filters", "delivery filters", || spec.filters.clear());
        }
    }
}

/// What [`Capabilities::check`] found so far, in the order it found it.
struct Findings<'a> {
    provider: &'a str,
    /// `provider `<key>` (kind <kind>)`, as every message names it.
    who: String,
    /// `on_unsupported: ignore`.
    ignore: bool,
    errors: Vec<FieldError>,
    warnings: Vec<String>,
}

impl Findings<'_> {
    /// A value the provider cannot accept.
    fn hard(&mut self, pointer: &str, detail: String) {
        self.errors
            .push(FieldError::provider(pointer, detail, self.provider));
    }

    /// A feature the provider lacks: `drop` removes it from the spec under
    /// `on_unsupported: ignore`, otherwise it is an error.
    fn unsupported(&mut self, pointer: &str, what: &str, drop: impl FnOnce()) {
        let who = &self.who;
        if self.ignore {
            drop();
            self.warnings.push(format!(
                "`{}` dropped: {who} does not support {what}",
                &pointer[1..]
            ));
        } else {
            self.errors.push(FieldError::provider(
                pointer,
                format!(
                    "{who} does not support {what}; set on_unsupported to \"ignore\" to drop it"
                ),
                self.provider,
            ));
        }
    }
}
