//! The normalized subscription and its validated parts. A `SubscriptionSpec`
//! is built from a [`SpecDraft`] by [`SpecDraft::validate`], so it only holds
//! values that passed the provider-independent rules (at least one event, no
//! duplicates, header, secret and metadata limits, …); what a particular
//! provider accepts is decided by its [`crate::Capabilities`] and adapter.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, FieldError, Secret};

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

/// An absolute `http(s)` URL with a host, held as the `url` crate's (WHATWG)
/// parse. What it shows, stores, compares and sends upstream is the
/// normalized serialization ([`url::Url::as_str`]: lower-case scheme and
/// host, default port dropped, dot segments resolved, IDN as punycode,
/// `0x7f.1` as `127.0.0.1`), never the caller's spelling, so the host the
/// URL policy judges ([`CallbackUrl::host`]) is the host every later reader
/// of the URL sees.
///
/// Caller input goes through the strict [`CallbackUrl::parse`]. Serde's
/// `Deserialize` is the read path of stored specs (see [`SubscriptionSpec`])
/// and accepts every URL an earlier version accepted, normalizing it.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct CallbackUrl(url::Url);

impl CallbackUrl {
    /// Validates caller input. Besides the rules of an earlier version
    /// (length, `http`/`https`, a host, no credentials) it refuses, before
    /// parsing, every spelling on which common URL parsers disagree about
    /// the host (see `check_unambiguous`), so that the WHATWG reading, the
    /// one judged and sent, is also the one an RFC 3986 parser would make.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        check_unambiguous(raw)?;
        let url = Self::from_whatwg(raw)?;
        if let url::Host::Domain(name) = url.host() {
            check_domain(name)?;
        }
        let normalized = url.as_str();
        if normalized.len() > MAX_URL_LEN {
            return Err(format!(
                "is {} bytes long once normalized (`{normalized}`); at most {MAX_URL_LEN} are allowed",
                normalized.len()
            ));
        }
        // The url crate has had inputs whose serialization parses to
        // something else; such a URL would change between store and send.
        if url::Url::parse(normalized).ok().as_ref() != Some(&url.0) {
            return Err(format!(
                "has no stable normalized form (`{normalized}` reads differently)"
            ));
        }
        Ok(url)
    }

    /// The rules every version has applied: WHATWG-parsable, `http` or
    /// `https`, a non-empty host, no credentials. Alone, this is the read
    /// path of stored URLs, so tightening [`Self::parse`] never makes a
    /// stored subscription unreadable; read back, the URL is normalized.
    fn from_whatwg(raw: &str) -> Result<Self, String> {
        let parsed = url::Url::parse(raw).map_err(|e| format!("is not an absolute URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("must use http or https, not `{}`", parsed.scheme()));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err("must have a host".into());
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("must not contain credentials; use `auth` instead".into());
        }
        Ok(Self(parsed))
    }

    /// The normalized URL: what is stored and sent upstream.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn as_url(&self) -> &url::Url {
        &self.0
    }

    /// The host as WHATWG parsed it (a domain, IPv4 or IPv6 address): what
    /// the URL policy judges and `url::Url::parse(self.as_str()).host()`.
    pub fn host(&self) -> url::Host<&str> {
        // `from_whatwg` admits only http(s), and WHATWG refuses an http(s)
        // URL without a host, so every CallbackUrl has one.
        self.0
            .host()
            .expect("an http(s) URL always has a host (WHATWG special scheme)")
    }

    /// Whether the scheme is https.
    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }
}

/// Refuses the spellings on which URL parsers disagree (WHATWG, RFC 3986,
/// Python's `urllib`, curl, naive "host is between `//` and `/`" code), so
/// that nobody downstream reads a host other than the one the policy judged:
///
/// - `\`: WHATWG reads it as `/` in http(s) URLs, RFC 3986 as data, so
///   `https://good.example\@127.0.0.1/` has two hosts;
/// - control characters and whitespace: WHATWG strips tab, CR and LF
///   anywhere and C0/space at the ends, others keep, cut or reject them;
/// - invisible formatting characters (zero-width, bidi controls, BOM):
///   IDNA drops some of them, and they hide what a URL says;
/// - no `//` after the scheme (`https:/x`, `https:x`), or an empty
///   authority (`https:///x`): WHATWG finds a host there, RFC 3986 none;
/// - `@` before the path (userinfo, several `@`, `https://a?@b/`,
///   `https://a#@b/`): parsers pick different `@`s or end the authority at
///   different characters;
/// - `%` in the authority: WHATWG percent-decodes hosts, others do not;
/// - `[`/`]` other than around a whole IPv6 literal, more than one `:`
///   outside brackets, a port that is not digits.
fn check_unambiguous(raw: &str) -> Result<(), String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    check_characters(raw)?;
    let (scheme, rest) = raw
        .split_once(':')
        .filter(|(s, _)| is_scheme(s))
        .ok_or("is not an absolute URL: write it as `https://host/path`")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(format!("must use http or https, not `{scheme}`"));
    }
    let after = rest
        .strip_prefix("//")
        .ok_or_else(|| format!("must have `//` after `{scheme}:`: write `{scheme}://host/path`"))?;
    let authority = &after[..after.find(['/', '?', '#']).unwrap_or(after.len())];
    if authority.contains('@') {
        return Err(
            "must not contain credentials (`user:password@` before the host); use `auth` instead"
                .into(),
        );
    }
    // `https://good.example?@evil.example/`: the host ends at `?` for
    // WHATWG and RFC 3986, at the `@` for code that looks only for `/`.
    if after[..after.find('/').unwrap_or(after.len())].contains('@') {
        return Err(
            "must have a `/` after the host when the query or fragment contains `@` (`https://host/?…`)".into(),
        );
    }
    if authority.contains('%') {
        return Err("must not percent-encode the host (`%` before the path)".into());
    }
    check_host_and_port(authority)
}

/// Control characters, whitespace, `\` and invisible formatting characters,
/// anywhere in the URL.
fn check_characters(raw: &str) -> Result<(), String> {
    let Some((at, c)) = raw
        .char_indices()
        .find(|&(_, c)| c.is_control() || c.is_whitespace() || c == '\\' || is_invisible_format(c))
    else {
        return Ok(());
    };
    let what = if c == '\\' {
        "a backslash (`\\`), which parsers read as `/` or as data"
    } else if c.is_control() {
        "a control character"
    } else if c.is_whitespace() {
        "whitespace"
    } else {
        "an invisible formatting character"
    };
    Err(format!(
        "must not contain {what} (U+{:04X} at byte {at})",
        u32::from(c)
    ))
}

/// Unicode format characters (general category Cf) that can sit in a URL
/// unseen: soft hyphen, zero-width and joiner characters, bidi embeddings,
/// overrides and isolates, word joiner and invisible operators, BOM,
/// interlinear annotation marks.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{34f}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The authority (no `@`, no `%` left) as `host[:port]`, where the host is
/// a bracketed IPv6 literal or has no brackets and no `:`.
fn check_host_and_port(authority: &str) -> Result<(), String> {
    let (host, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or("must close an IPv6 address with `]`")?;
        if v6.is_empty()
            || !v6
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err(format!("`[{v6}]` is not an IPv6 address"));
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err("must have only a `:port` after an IPv6 address's `]`".into());
        }
        (v6, after.strip_prefix(':'))
    } else {
        if authority.contains(['[', ']']) {
            return Err("may use `[` and `]` only around a whole IPv6 address".into());
        }
        match authority.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(
                    "has more than one `:` in the host; write an IPv6 address in `[` `]`".into(),
                );
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("must have a host".into());
    }
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return Err("must have a port of digits after `:` (or no `:`)".into());
    }
    Ok(())
}

/// The WHATWG-parsed domain (lower-case, IDNA-mapped, punycode) must be a
/// DNS-style name. WHATWG lets `;`, `*`, `"`, `{`, `=`, … through (written
/// or produced by IDNA from full-width forms such as `；`), which other
/// parsers end the host at or refuse.
fn check_domain(name: &str) -> Result<(), String> {
    if name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        Ok(())
    } else {
        Err(format!(
            "has host `{name}`; a host name may contain only letters, digits, `-`, `_` and `.`"
        ))
    }
}

/// The read path of stored specs: the rules of every earlier version, not
/// today's stricter ones (see `CallbackUrl::from_whatwg`).
impl<'de> Deserialize<'de> for CallbackUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::from_whatwg(&raw).map_err(|e| serde::de::Error::custom(format!("url {e}")))
    }
}

impl From<CallbackUrl> for String {
    fn from(u: CallbackUrl) -> String {
        u.0.into()
    }
}

impl fmt::Debug for CallbackUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallbackUrl({})", self.0)
    }
}

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

    fn refused(raw: &str) -> String {
        CallbackUrl::parse(raw).expect_err(raw)
    }

    #[test]
    fn callback_url_rules() {
        assert!(CallbackUrl::parse("https://billing.example.com/hooks").is_ok());
        assert!(CallbackUrl::parse("http://localhost:9000/x").is_ok());
        assert_eq!(
            refused("ftp://example.com"),
            "must use http or https, not `ftp`"
        );
        assert!(refused("example.com/hooks").starts_with("is not an absolute URL"));
        assert!(refused("https://user:pw@example.com").contains("credentials"));
        assert_eq!(refused(""), "must not be empty");
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(refused(&long).contains("2048"));
    }

    /// What is held, stored and sent is WHATWG's serialization.
    #[test]
    fn callback_urls_are_normalized() {
        for (raw, normalized) in [
            (
                "https://Hooks.Example.COM:443/a/./b/../c",
                "https://hooks.example.com/a/c",
            ),
            ("HTTPS://example.com", "https://example.com/"),
            ("http://example.com:80/x", "http://example.com/x"),
            ("https://example.com:8443/x", "https://example.com:8443/x"),
            ("https://example.com:08443/x", "https://example.com:8443/x"),
            ("https://bücher.example/", "https://xn--bcher-kva.example/"),
            ("https://0x7f.1/", "https://127.0.0.1/"),
            (
                "https://[0:0:0:0:0:FFFF:10.0.0.1]/",
                "https://[::ffff:a00:1]/",
            ),
            (
                "https://example.com/é?q=é#é",
                "https://example.com/%C3%A9?q=%C3%A9#%C3%A9",
            ),
            ("https://example.com/%2e%2e/x", "https://example.com/x"),
            ("https://example.com?a=1", "https://example.com/?a=1"),
            ("https://example.com./h", "https://example.com./h"),
        ] {
            let url = CallbackUrl::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(url.as_str(), normalized, "{raw}");
            assert_eq!(CallbackUrl::parse(normalized).unwrap(), url, "{raw}");
            assert_eq!(String::from(url), normalized);
        }
        let url = CallbackUrl::parse("https://0x7f.1/").unwrap();
        assert_eq!(url.host(), url::Host::<&str>::Ipv4([127, 0, 0, 1].into()));
        assert!(url.is_https());
        assert!(!CallbackUrl::parse("HTTP://x.io/").unwrap().is_https());
    }

    /// The examples of issue #11 item 5: parsers disagree on these hosts.
    #[test]
    fn ambiguous_spellings_are_refused() {
        for (raw, says) in [
            (
                "https://good.example.com\\@127.0.0.1/latest/meta-data",
                "backslash",
            ),
            ("https:\\\\example.com/h", "backslash"),
            ("https://example.com/a\\b", "backslash"),
            ("https://example.com/?a=\\", "backslash"),
            ("https:/example.com/h", "must have `//` after `https:`"),
            ("https:example.com/h", "must have `//` after `https:`"),
            ("https:///example.com/h", "must have a host"),
            (
                "https://exa\tmple.com/h",
                "control character (U+0009 at byte 11)",
            ),
            ("https://exa mple.com/h", "whitespace (U+0020"),
            ("https://example.com/h\0", "control character (U+0000"),
            ("https://example.com/h\r\n", "control character (U+000D"),
            ("https://example.com/\u{7f}", "control character (U+007F"),
            ("https://example.com/\u{85}", "control character (U+0085"),
            ("https://example.com\u{3000}/h", "whitespace (U+3000"),
            ("https://example.com/\u{a0}", "whitespace (U+00A0"),
            (" https://example.com", "whitespace (U+0020 at byte 0)"),
            (
                "https://exa\u{200b}mple.com/",
                "invisible formatting character",
            ),
            (
                "https://exa\u{ad}mple.com/",
                "invisible formatting character",
            ),
            (
                "https://example.com/\u{202e}lmth.exe",
                "invisible formatting",
            ),
        ] {
            let err = refused(raw);
            assert!(err.contains(says), "{raw:?}: {err}");
        }
    }

    #[test]
    fn userinfo_and_at_tricks_are_refused() {
        for raw in [
            "https://user@example.com/",
            "https://user:pw@example.com/",
            "https://:pw@example.com/",
            "https://@example.com/",
            "https://a@b@127.0.0.1/",
            "https://good.example.com@127.0.0.1/",
        ] {
            assert!(refused(raw).contains("credentials"), "{raw}");
        }
        for raw in [
            "https://good.example.com?x=@127.0.0.1/",
            "https://good.example.com#@127.0.0.1",
            "https://127.0.0.1?@good.example.com/",
        ] {
            assert!(
                refused(raw).contains("must have a `/` after the host"),
                "{raw}"
            );
        }
        // After a `/`, an `@` is path, query or fragment for every parser.
        for ok in [
            "https://example.com/@me",
            "https://example.com/?mail=a@b.example",
            "https://example.com/#a@b",
        ] {
            assert!(CallbackUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn host_and_port_tricks_are_refused() {
        for (raw, says) in [
            ("https://%31%32%37.0.0.1/", "percent-encode the host"),
            (
                "https://%6c%6f%63%61%6c%68%6f%73%74/",
                "percent-encode the host",
            ),
            ("https://[fe80::1%25eth0]/", "percent-encode the host"),
            ("https://:443/", "must have a host"),
            ("https://", "must have a host"),
            ("https://?x", "must have a host"),
            ("https://[]/", "is not an IPv6 address"),
            ("https://[::1/", "close an IPv6 address"),
            ("https://[::1]evil.example/", "only a `:port` after"),
            ("https://[::1]@good.example/", "credentials"),
            ("https://[v1.x]/", "is not an IPv6 address"),
            ("https://good.example[::1]/", "only around a whole IPv6"),
            ("https://good.example]/", "only around a whole IPv6"),
            ("https://example.com:80:90/", "more than one `:`"),
            ("https://::1/", "more than one `:`"),
            ("https://example.com:/", "port of digits"),
            ("https://example.com:8o/", "port of digits"),
            ("https://example.com:+80/", "port of digits"),
            ("https://[::1]:/", "port of digits"),
            ("https://example.com:65536/", "is not an absolute URL"),
            (
                "https://evil.example;good.example/",
                "may contain only letters",
            ),
            (
                "https://evil.example\u{ff1b}good.example/",
                "may contain only letters",
            ),
            ("https://a*b.example/", "may contain only letters"),
            ("https://a\"b.example/", "may contain only letters"),
            ("https://a{b}.example/", "may contain only letters"),
            ("https://a=b.example/", "may contain only letters"),
            ("https://ex\u{ff0f}ample.com/", "is not an absolute URL"),
            ("https://ex\u{ff20}ample.com/", "is not an absolute URL"),
        ] {
            let err = refused(raw);
            assert!(err.contains(says), "{raw:?}: {err}");
        }
        for ok in [
            "https://[::1]:8443/",
            "https://[::ffff:1.2.3.4]/",
            "https://my_host.example.com/",
            "https://example.com:1/",
        ] {
            assert!(CallbackUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn normalized_length_is_limited_too() {
        // 2048 bytes as written, three times that once percent-encoded.
        let raw = format!("https://example.com/{}", "é".repeat(1000));
        assert!(raw.len() <= MAX_URL_LEN);
        assert!(refused(&raw).contains("once normalized"));
    }

    /// Stored specs were written by versions with looser rules; reading one
    /// normalizes its URL instead of failing.
    #[test]
    fn stored_urls_read_back_normalized() {
        for (stored, read) in [
            (
                "https://good.example.com\\@127.0.0.1/latest/meta-data",
                "https://good.example.com/@127.0.0.1/latest/meta-data",
            ),
            ("https:/example.com/h", "https://example.com/h"),
            ("https:example.com/h", "https://example.com/h"),
            ("https://exa\tmple.com/h", "https://example.com/h"),
            ("https://example.com/h\0", "https://example.com/h"),
            ("https://%6c%6f%63%61%6c%68%6f%73%74/", "https://localhost/"),
            ("https://a;b.example/", "https://a;b.example/"),
        ] {
            let json = serde_json::to_string(stored).unwrap();
            let url: CallbackUrl =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("{stored:?}: {e}"));
            assert_eq!(url.as_str(), read, "{stored:?}");
            assert!(CallbackUrl::parse(stored).is_err(), "{stored:?}");
        }
        // What no version accepted still fails to read.
        for never in ["ftp://x.example/", "https://u:p@x.example/", "nope"] {
            let json = serde_json::to_string(never).unwrap();
            let err = serde_json::from_str::<CallbackUrl>(&json).unwrap_err();
            assert!(err.to_string().starts_with("url "), "{never}: {err}");
        }
    }

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
