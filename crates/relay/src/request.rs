//! One delivery attempt's HTTP request, built purely: the subscription's
//! method, URL, custom headers and callback auth, the content type of its
//! format, and the Standard Webhooks headers over exactly the body sent.
//!
//! Custom headers never override what the relay itself is responsible
//! for: the `webhook-*` headers (a subscriber trusts them as Switchboard's
//! signature), `content-type` (it says how to read the signed bytes), the
//! framing and connection headers hyper owns, and the header the
//! subscription's auth sets. Such a subscription is refused whole rather
//! than delivered with one of its headers silently dropped.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue, USER_AGENT};
use switchboard_core::{CallbackAuth, CallbackUrl, DeliveryFormat, DeliveryMethod, SpecDraft};

use crate::signing::{SigningSecret, sign};

/// The Standard Webhooks message id header.
pub const WEBHOOK_ID: &str = "webhook-id";
/// The Standard Webhooks timestamp header (unix seconds of the attempt).
pub const WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// The Standard Webhooks signature header.
pub const WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// Attempt timeout when the subscription sets none (Svix's choice too:
/// long enough for a receiver that enqueues, short enough not to tie up
/// the sender).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest attempt timeout a subscription can ask for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(120);

/// Headers a custom header may not set, besides every `webhook-*` one.
const RESERVED: &[&str] = &[
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Where and how one subscription's deliveries go.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The callback URL.
    pub url: CallbackUrl,
    /// POST, PUT or PATCH.
    pub method: DeliveryMethod,
    /// JSON or XML body.
    pub format: DeliveryFormat,
    /// Custom headers, checked by [`check_headers`].
    pub headers: BTreeMap<String, String>,
    /// Credentials for the receiver (redacted in `Debug`).
    pub auth: CallbackAuth,
    /// The whole attempt, from connect to the response head.
    pub timeout: Duration,
}

impl Target {
    /// The delivery settings of a subscription, with the relay's defaults
    /// (POST, JSON, [`DEFAULT_TIMEOUT`]) where it sets none; its timeout is
    /// kept between 1 s and [`MAX_TIMEOUT`].
    pub fn from_spec(spec: &SpecDraft) -> Self {
        let timeout = spec.timeout_seconds.map_or(DEFAULT_TIMEOUT, |s| {
            Duration::from_secs(u64::from(s)).clamp(Duration::from_secs(1), MAX_TIMEOUT)
        });
        Self {
            url: spec.url.clone(),
            method: spec.method.unwrap_or(DeliveryMethod::Post),
            format: spec.format.unwrap_or(DeliveryFormat::Json),
            headers: spec.headers.clone(),
            auth: spec.auth.clone(),
            timeout,
        }
    }
}

/// Why an attempt's request cannot be built. Permanent: the subscription
/// must change. Never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A custom header (or the api-key header) would set a header the
    /// relay owns or the auth sets.
    #[error("header `{0}` is set by the relay and cannot be a custom header")]
    ReservedHeader(String),
    /// A header name or value is not valid HTTP.
    #[error("header `{0}` is not a valid HTTP header")]
    InvalidHeader(String),
    /// A credential cannot be written as a header value.
    #[error("the {0} credential contains characters a header cannot carry")]
    InvalidCredential(&'static str),
    /// Nothing to sign with: relay deliveries are always signed.
    #[error("no signing secret")]
    NoSigningSecret,
}

/// Checks a subscription's custom headers against the headers the relay
/// and its auth set (also for validating a subscription before any
/// delivery). Names compare case-insensitively.
pub fn check_headers(
    headers: &BTreeMap<String, String>,
    auth: &CallbackAuth,
) -> Result<(), RequestError> {
    let auth_header = match auth {
        CallbackAuth::None => None,
        CallbackAuth::Basic { .. } | CallbackAuth::Bearer { .. } => {
            Some(AUTHORIZATION.as_str().to_owned())
        }
        CallbackAuth::ApiKey { header, .. } => {
            check_not_reserved(header)?;
            Some(header.to_ascii_lowercase())
        }
    };
    for name in headers.keys() {
        check_not_reserved(name)?;
        if auth_header.as_deref() == Some(name.to_ascii_lowercase().as_str()) {
            return Err(RequestError::ReservedHeader(name.clone()));
        }
    }
    Ok(())
}

fn check_not_reserved(name: &str) -> Result<(), RequestError> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("webhook-") || RESERVED.contains(&lower.as_str()) {
        return Err(RequestError::ReservedHeader(name.to_owned()));
    }
    Ok(())
}

/// An attempt ready to send: the request and what the sender needs to
/// judge and time it. Only [`build`] makes one.
#[derive(Debug, Clone)]
pub struct AttemptRequest {
    pub(crate) url: CallbackUrl,
    pub(crate) timeout: Duration,
    pub(crate) request: http::Request<Bytes>,
}

impl AttemptRequest {
    /// The request as it will be sent (auth header values are marked
    /// sensitive, so its `Debug` does not show them).
    pub fn request(&self) -> &http::Request<Bytes> {
        &self.request
    }
}

/// Builds one attempt of the event `id` at `timestamp` (unix seconds of
/// this attempt, signed anew each time) carrying `body`, signed with every
/// secret in `secrets` (several during a rotation's overlap).
pub fn build(
    target: &Target,
    id: &str,
    timestamp: i64,
    body: Bytes,
    secrets: &[SigningSecret],
) -> Result<AttemptRequest, RequestError> {
    if secrets.is_empty() {
        return Err(RequestError::NoSigningSecret);
    }
    check_headers(&target.headers, &target.auth)?;
    let mut request = http::Request::new(Bytes::new());
    *request.method_mut() = http::Method::from_bytes(target.method.as_str().as_bytes())
        .expect("POST, PUT and PATCH are methods");
    *request.uri_mut() = target
        .url
        .as_str()
        .parse()
        .map_err(|_| RequestError::InvalidHeader("host".into()))?;
    let headers = request.headers_mut();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("Switchboard-Relay/", env!("CARGO_PKG_VERSION"))),
    );
    for (name, value) in &target.headers {
        let invalid = || RequestError::InvalidHeader(name.clone());
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        headers.insert(name, HeaderValue::from_str(value).map_err(|_| invalid())?);
    }
    if let Some((name, value)) = auth_header(&target.auth)? {
        headers.insert(name, value);
    }
    let content_type = match target.format {
        DeliveryFormat::Json => "application/json",
        DeliveryFormat::Xml => "application/xml",
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let signature = sign(id, timestamp, &body, secrets);
    for (name, value) in [
        (WEBHOOK_ID, id.to_owned()),
        (WEBHOOK_TIMESTAMP, timestamp.to_string()),
        (WEBHOOK_SIGNATURE, signature),
    ] {
        let value =
            HeaderValue::from_str(&value).map_err(|_| RequestError::InvalidHeader(name.into()))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    *request.body_mut() = body;
    Ok(AttemptRequest {
        url: target.url.clone(),
        timeout: target.timeout,
        request,
    })
}

/// The auth header, its value marked sensitive (kept out of `Debug` and
/// of HTTP/2 header compression tables).
fn auth_header(auth: &CallbackAuth) -> Result<Option<(HeaderName, HeaderValue)>, RequestError> {
    let (name, value, what) = match auth {
        CallbackAuth::None => return Ok(None),
        CallbackAuth::Basic { username, password } => {
            let pair = format!("{username}:{}", password.expose());
            let value = format!("Basic {}", STANDARD.encode(pair));
            (AUTHORIZATION, value, "basic")
        }
        CallbackAuth::Bearer { token } => (
            AUTHORIZATION,
            format!("Bearer {}", token.expose()),
            "bearer",
        ),
        CallbackAuth::ApiKey { header, value } => {
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| RequestError::InvalidHeader(header.clone()))?;
            (name, value.expose().to_owned(), "api_key")
        }
    };
    let mut value =
        HeaderValue::from_str(&value).map_err(|_| RequestError::InvalidCredential(what))?;
    value.set_sensitive(true);
    Ok(Some((name, value)))
}

#[cfg(test)]
mod tests {
    use switchboard_core::Secret;
    use switchboard_core::testing::draft;

    use super::*;
    use crate::signing::verify;

    fn target(auth: CallbackAuth) -> Target {
        let mut spec = draft(
            "talkover",
            "https://hooks.example.com/in?x=1",
            &["call.ended"],
        );
        spec.auth = auth;
        spec.headers = BTreeMap::from([("X-Team".to_owned(), "billing".to_owned())]);
        Target::from_spec(&spec)
    }

    fn secret() -> SigningSecret {
        SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
    }

    fn header<'a>(r: &'a AttemptRequest, name: &str) -> &'a str {
        r.request().headers()[name].to_str().unwrap()
    }

    #[test]
    fn builds_a_signed_post_with_defaults() {
        let t = target(CallbackAuth::None);
        assert_eq!(t.timeout, DEFAULT_TIMEOUT);
        let body = Bytes::from_static(br#"{"id":"evt_1"}"#);
        let r = build(&t, "evt_1", 1_700_000_000, body.clone(), &[secret()]).unwrap();
        let req = r.request();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri(), "https://hooks.example.com/in?x=1");
        assert_eq!(req.body(), &body);
        assert_eq!(header(&r, "content-type"), "application/json");
        assert_eq!(header(&r, "x-team"), "billing");
        assert_eq!(header(&r, "webhook-id"), "evt_1");
        assert_eq!(header(&r, "webhook-timestamp"), "1700000000");
        assert!(header(&r, "user-agent").starts_with("Switchboard-Relay/"));
        assert!(!req.headers().contains_key("authorization"));
        assert_eq!(
            verify(
                "evt_1",
                "1700000000",
                header(&r, "webhook-signature"),
                &body,
                &secret(),
                1_700_000_000,
                300
            ),
            Ok(())
        );
    }

    #[test]
    fn method_format_and_timeout_follow_the_subscription() {
        let mut spec = draft("talkover", "https://hooks.example.com/", &["call.ended"]);
        spec.method = Some(DeliveryMethod::Patch);
        spec.format = Some(DeliveryFormat::Xml);
        spec.timeout_seconds = Some(5);
        let t = Target::from_spec(&spec);
        let r = build(&t, "evt_1", 1, Bytes::from_static(b"<event/>"), &[secret()]).unwrap();
        assert_eq!(r.request().method(), http::Method::PATCH);
        assert_eq!(header(&r, "content-type"), "application/xml");
        assert_eq!(t.timeout, Duration::from_secs(5));
        spec.timeout_seconds = Some(0);
        assert_eq!(Target::from_spec(&spec).timeout, Duration::from_secs(1));
        spec.timeout_seconds = Some(100_000);
        assert_eq!(Target::from_spec(&spec).timeout, MAX_TIMEOUT);
    }

    #[test]
    fn auth_headers_are_written_and_sensitive() {
        let cases = [
            (
                CallbackAuth::Basic {
                    username: "u".into(),
                    password: Secret::new("p@ss"),
                },
                "authorization",
                "Basic dTpwQHNz",
            ),
            (
                CallbackAuth::Bearer {
                    token: Secret::new("tok-123"),
                },
                "authorization",
                "Bearer tok-123",
            ),
            (
                CallbackAuth::ApiKey {
                    header: "X-Api-Key".into(),
                    value: Secret::new("k-456"),
                },
                "x-api-key",
                "k-456",
            ),
        ];
        for (auth, name, expected) in cases {
            let r = build(&target(auth), "evt_1", 1, Bytes::new(), &[secret()]).unwrap();
            let value = &r.request().headers()[name];
            assert_eq!(value.to_str().unwrap(), expected);
            assert!(value.is_sensitive());
            let shown = format!("{r:?}");
            assert!(!shown.contains(expected), "{shown}");
        }
    }

    #[test]
    fn custom_headers_cannot_take_over_relay_headers() {
        for name in [
            "webhook-signature",
            "Webhook-Id",
            "WEBHOOK-TIMESTAMP",
            "webhook-anything",
            "Content-Type",
            "content-length",
            "Host",
            "transfer-encoding",
        ] {
            let mut t = target(CallbackAuth::None);
            t.headers.insert(name.to_owned(), "x".to_owned());
            assert_eq!(
                build(&t, "evt_1", 1, Bytes::new(), &[secret()]).unwrap_err(),
                RequestError::ReservedHeader(name.to_owned())
            );
        }
        // Not the header the auth sets either.
        let mut t = target(CallbackAuth::Bearer {
            token: Secret::new("t"),
        });
        t.headers
            .insert("Authorization".to_owned(), "Bearer other".to_owned());
        assert_eq!(
            check_headers(&t.headers, &t.auth),
            Err(RequestError::ReservedHeader("Authorization".into()))
        );
        let api_key = CallbackAuth::ApiKey {
            header: "X-Key".into(),
            value: Secret::new("v"),
        };
        let headers = BTreeMap::from([("x-key".to_owned(), "other".to_owned())]);
        assert_eq!(
            check_headers(&headers, &api_key),
            Err(RequestError::ReservedHeader("x-key".into()))
        );
        let api_key_on_signature = CallbackAuth::ApiKey {
            header: "Webhook-Signature".into(),
            value: Secret::new("v"),
        };
        assert!(check_headers(&BTreeMap::new(), &api_key_on_signature).is_err());
        // Without auth, Authorization is an ordinary custom header.
        let headers = BTreeMap::from([("Authorization".to_owned(), "Token x".to_owned())]);
        assert_eq!(check_headers(&headers, &CallbackAuth::None), Ok(()));
    }

    #[test]
    fn deliveries_are_always_signed() {
        let t = target(CallbackAuth::None);
        assert_eq!(
            build(&t, "evt_1", 1, Bytes::new(), &[]).unwrap_err(),
            RequestError::NoSigningSecret
        );
        let two = [secret(), SigningSecret::generate()];
        let r = build(&t, "evt_1", 1, Bytes::new(), &two).unwrap();
        assert_eq!(header(&r, "webhook-signature").split(' ').count(), 2);
    }

    #[test]
    fn bad_credentials_are_reported_without_the_value() {
        let t = target(CallbackAuth::Bearer {
            token: Secret::new("line\nbreak"),
        });
        let err = build(&t, "evt_1", 1, Bytes::new(), &[secret()]).unwrap_err();
        assert_eq!(err, RequestError::InvalidCredential("bearer"));
        assert!(!err.to_string().contains("line"));
    }
}
