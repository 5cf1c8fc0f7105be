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
        /// The form every accepted value has. The account addresses a
        /// provider-side parent (often as a URL path segment), so a value
        /// the provider could not have issued is refused before any call.
        shape: AccountShape,
    },
    /// The credentials are the account; `account` must be absent.
    Forbidden,
}

/// The form of a provider's account identifier, as its documentation shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountShape {
    /// A UUID as text: 32 hex digits in groups of 8-4-4-4-12 joined by `-`
    /// (RFC 9562 §4), in either case.
    Uuid,
    /// `prefix` exactly (case-sensitive), then one or more ASCII letters or
    /// digits.
    Prefixed {
        /// The literal start (`AID-`).
        prefix: &'static str,
    },
}

impl AccountShape {
    /// Whether `value` has this form.
    pub fn matches(self, value: &str) -> bool {
        match self {
            Self::Uuid => {
                let groups: Vec<&str> = value.split('-').collect();
                groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
                    && groups
                        .iter()
                        .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
            }
            Self::Prefixed { prefix } => value.strip_prefix(prefix).is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
            }),
        }
    }

    /// The form in words, for error messages.
    pub fn describe(self) -> String {
        match self {
            Self::Uuid => {
                "a UUID (8-4-4-4-12 hex digits, e.g. 9fbef0b7-8d4e-4a08-9207-66c22155721d)".into()
            }
            Self::Prefixed { prefix } => {
                format!("`{prefix}` followed by one or more letters or digits")
            }
        }
    }
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
    /// Whether List reports, for every resource, what reconciliation
    /// compares (callback URL, native events, on/off state), as Get does.
    /// Then one listing of the account answers for all its resources;
    /// otherwise reconciliation reads each recorded resource with Get.
    pub list_is_complete: bool,
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

    /// `account` against [`AccountRule`]: at most one error, the first of
    /// presence, length, emptiness and shape that fails.
    fn check_account(&self, spec: &SpecDraft, f: &mut Findings<'_>) {
        let who = f.who.clone();
        let problem = match (&self.account, &spec.account) {
            (AccountRule::Required { meaning, .. }, None) => {
                Some(format!("is required by {who}: the {meaning}"))
            }
            (
                AccountRule::Required {
                    meaning,
                    max_len,
                    shape,
                },
                Some(a),
            ) => {
                if a.chars().count() > *max_len {
                    Some(format!("must be at most {max_len} characters for {who}"))
                } else if a.trim().is_empty() {
                    Some(format!("must not be empty for {who}"))
                } else if !shape.matches(a) {
                    Some(format!(
                        "must be {} for {who}: the {meaning}",
                        shape.describe()
                    ))
                } else {
                    None
                }
            }
            (AccountRule::Forbidden, Some(_)) => Some(format!(
                "must be absent for {who}: its credentials are the account"
            )),
            (AccountRule::Forbidden, None) => None,
        };
        if let Some(detail) = problem {
            f.hard("/account", detail);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::draft;

    fn caps(account: AccountRule) -> Capabilities {
        Capabilities {
            account,
            events_per_resource: EventsPerResource::Many,
            url_max_len: 2048,
            https_only: false,
            auth: vec![AuthKind::None],
            signing_secret_max_len: None,
            headers: false,
            methods: vec![],
            formats: vec![],
            timeout_seconds: None,
            max_retries: None,
            filters: false,
            native_disable: false,
            serialize_account: false,
            list_is_complete: true,
            provider_options: vec![],
            unsigned_events: vec![],
        }
    }

    fn required(max_len: usize, shape: AccountShape) -> Capabilities {
        caps(AccountRule::Required {
            meaning: "test parent",
            max_len,
            shape,
        })
    }

    /// The `/account` findings for `account`: `None` when it passes.
    fn account_problem(c: &Capabilities, account: Option<&str>) -> Option<String> {
        let mut spec = SpecDraft {
            account: account.map(str::to_owned),
            ..draft("p", "https://example.com/h", &["call.ended"])
        };
        match c.check("p", "k", &mut spec) {
            Ok(_) => None,
            Err(Error::Invalid(errors)) => {
                assert_eq!(errors.len(), 1, "{errors:?}");
                assert_eq!(errors[0].pointer, "/account");
                assert_eq!(errors[0].provider.as_deref(), Some("p"));
                Some(errors[0].detail.clone())
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    const PATH_TRICKS: [&str; 6] = [".", "..", "a/b", "%2e%2e", "", " "];

    #[test]
    fn uuid_accounts() {
        let c = required(36, AccountShape::Uuid);
        for ok in [
            "9fbef0b7-8d4e-4a08-9207-66c22155721d",
            "9FBEF0B7-8D4E-4A08-9207-66C22155721D",
        ] {
            assert_eq!(account_problem(&c, Some(ok)), None, "{ok}");
        }
        for bad in PATH_TRICKS.iter().copied().chain([
            "9fbef0b7-8d4e-4a08-9207-66c22155721",
            "9fbef0b78d4e4a08920766c22155721d",
            "9fbef0b7-8d4e-4a08-9207-66c22155721g",
            "9fbef0b7-8d4e-4a08-9207/66c22155721d",
            "../8d4e-4a08-9207-66c22155721d",
            "agent-1",
        ]) {
            assert!(account_problem(&c, Some(bad)).is_some(), "{bad:?}");
        }
        let shape = account_problem(&c, Some("agent-1")).unwrap();
        assert!(
            shape.contains("must be a UUID") && shape.contains("test parent"),
            "{shape}"
        );
        let long = account_problem(&c, Some(&"a".repeat(37))).unwrap();
        assert!(long.contains("at most 36 characters"), "{long}");
        let missing = account_problem(&c, None).unwrap();
        assert!(missing.contains("is required"), "{missing}");
    }

    #[test]
    fn prefixed_accounts() {
        let c = required(11, AccountShape::Prefixed { prefix: "AID-" });
        for ok in ["AID-1234567", "AID-x", "AID-ABCdef"] {
            assert_eq!(account_problem(&c, Some(ok)), None, "{ok}");
        }
        for bad in PATH_TRICKS.iter().copied().chain([
            "AID-",
            "aid-1234567",
            "DID-1234567",
            "1234567",
            "AID-../x",
            "AID-12 34",
            "AID-12_34",
            "AID-1234567%2F",
        ]) {
            assert!(account_problem(&c, Some(bad)).is_some(), "{bad:?}");
        }
        let long = account_problem(&c, Some("AID-12345678")).unwrap();
        assert!(long.contains("at most 11 characters"), "{long}");
        let shape = account_problem(&c, Some("DID-1")).unwrap();
        assert!(shape.contains("`AID-` followed by"), "{shape}");
    }

    #[test]
    fn forbidden_accounts() {
        let c = caps(AccountRule::Forbidden);
        assert_eq!(account_problem(&c, None), None);
        for any in ["..", "9fbef0b7-8d4e-4a08-9207-66c22155721d"] {
            let detail = account_problem(&c, Some(any)).unwrap();
            assert!(detail.contains("must be absent"), "{detail}");
        }
    }

    #[test]
    fn the_shape_is_served_as_data() {
        let json = serde_json::to_value(required(36, AccountShape::Uuid).account).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rule": "required", "meaning": "test parent", "max_len": 36, "shape": {"type": "uuid"}})
        );
        let json = serde_json::to_value(AccountShape::Prefixed { prefix: "AID-" }).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "prefixed", "prefix": "AID-"})
        );
    }
}
