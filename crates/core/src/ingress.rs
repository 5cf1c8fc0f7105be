//! The relay-mode ingress contract (issue 13), as data and pure functions.
//!
//! In relay mode the native webhook registered at the provider points at
//! Switchboard's ingress, with a credential Switchboard generated and keeps
//! sealed. This module owns what every kind's ingress check has in common:
//! the request as received ([`IngressRequest`]), what a verified delivery
//! yields ([`InboundEvent`]), why one is refused ([`IngressRefusal`]), which
//! spec field carries the generated credential ([`IngressCredential`]) and
//! the per-kind descriptor ([`Ingress`]). The checks themselves live in each
//! provider crate's `ingress` module, next to its translation, because only
//! the kind knows how its provider authenticates a delivery.
//!
//! Replays are not detected here: [`InboundEvent::dedup_id`] (or a content
//! hash) lets the caller drop a delivery it has already relayed.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{CallbackAuth, Secret, SpecDraft, SubscriptionSpec};

/// One delivery as the ingress received it. Everything a provider may sign
/// or authenticate is here, untouched.
#[derive(Debug, Clone, Copy)]
pub struct IngressRequest<'a> {
    /// The full public URL the provider called, query string included
    /// (Bird signs it): `server.public_url` + path and query, not the
    /// address a proxy forwarded to.
    pub url: &'a str,
    /// Header names and values as received; names compare case-insensitively.
    pub headers: &'a [(String, String)],
    /// The raw body, before any parsing.
    pub body: &'a [u8],
    /// When the ingress received it.
    pub received_at: DateTime<Utc>,
}

impl<'a> IngressRequest<'a> {
    /// The value of header `name` (case-insensitive). A header sent more
    /// than once counts as absent: which value the provider meant is
    /// ambiguous, and a credential must not be picked from a list.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let mut found = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        let (_, value) = found.next()?;
        found.next().is_none().then_some(value.as_str())
    }

    /// The body as JSON; anything else is [`IngressRefusal::Malformed`].
    pub fn json_body(&self) -> Result<serde_json::Value, IngressRefusal> {
        serde_json::from_slice(self.body).map_err(|_| IngressRefusal::Malformed("body is not JSON"))
    }
}

/// What a verified delivery carries, before normalization into the relay
/// envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    /// The native event name when the delivery says it (Talkover `event`,
    /// Bird `service:event`); `None` when the provider documents no such
    /// field, and the caller uses the event the native was registered for
    /// when it has exactly one.
    pub native_event: Option<String>,
    /// The provider's id for this delivery or event when it documents one
    /// (Bird `messagebird-request-id`); `None` makes the caller fall back
    /// to a content hash.
    pub dedup_id: Option<String>,
    /// When the event happened, when the delivery says it.
    pub occurred_at: Option<DateTime<Utc>>,
    /// The provider's JSON body, unchanged.
    pub payload: serde_json::Value,
}

/// Why a delivery was refused. The ingress answers 401/404 with no detail
/// and counts the refusal by [`IngressRefusal::reason`]; the detail of
/// `Malformed` is for logs and never contains a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IngressRefusal {
    /// The credential is missing or wrong.
    #[error("missing or wrong credential")]
    Unauthenticated,
    /// The signature is malformed or does not match.
    #[error("bad signature")]
    BadSignature,
    /// Authentic, but its timestamp lies outside the accepted window.
    #[error("timestamp outside the accepted window")]
    Stale,
    /// Authentic, but not a delivery the provider documents.
    #[error("malformed delivery: {0}")]
    Malformed(&'static str),
}

impl IngressRefusal {
    /// A stable label for metrics: `unauthenticated`, `bad_signature`,
    /// `stale` or `malformed`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unauthenticated => "unauthenticated",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::Malformed(_) => "malformed",
        }
    }
}

/// Which normalized spec field carries the secret Switchboard generates for
/// a relay native, so the adapter's ordinary translation registers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressCredential {
    /// `auth` = bearer with the secret as token: the provider presents it
    /// as `Authorization: Bearer <secret>`.
    BearerToken,
    /// `signing_secret`: the provider signs with it, or sends it back.
    SigningSecret,
}

impl IngressCredential {
    /// Puts `secret` where this credential goes in `draft`.
    pub fn apply(self, draft: &mut SpecDraft, secret: Secret) {
        match self {
            Self::BearerToken => draft.auth = CallbackAuth::Bearer { token: secret },
            Self::SigningSecret => draft.signing_secret = Some(secret),
        }
    }

    /// The secret a spec carries in this credential's field, if any.
    pub fn secret_of(self, spec: &SubscriptionSpec) -> Option<&Secret> {
        match (self, &spec.auth) {
            (Self::BearerToken, CallbackAuth::Bearer { token }) => Some(token),
            (Self::BearerToken, _) => None,
            (Self::SigningSecret, _) => spec.signing_secret.as_ref(),
        }
    }
}

/// Verifies one delivery against the secret Switchboard registered and
/// extracts what it says. Pure; `now` is the time staleness is judged by.
pub type VerifyDelivery = fn(
    request: &IngressRequest<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<InboundEvent, IngressRefusal>;

/// How a kind's deliveries reach the ingress: where the generated
/// credential goes and how a delivery is verified.
#[derive(Clone, Copy)]
pub struct Ingress {
    /// The spec field the generated secret is placed in.
    pub credential: IngressCredential,
    /// The kind's verification and extraction.
    pub verify: VerifyDelivery,
    /// How old a delivery's authenticated timestamp may be before `verify`
    /// refuses it as [`IngressRefusal::Stale`]; `None` when the provider
    /// dates nothing it authenticates. A replay inside this window passes
    /// `verify`, so the caller must remember dedup ids at least this long;
    /// with `None` a replay can come at any time and dedup is best effort.
    pub max_age: Option<std::time::Duration>,
    /// Whether a delivery says which native event it is for
    /// ([`InboundEvent::native_event`]). When it does not (Telegent,
    /// Sendblue), the event comes from the native the delivery arrived
    /// for, so a relayed native of this kind must carry exactly one event.
    pub names_event: bool,
}

impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingress")
            .field("credential", &self.credential)
            .field("max_age", &self.max_age)
            .field("names_event", &self.names_event)
            .finish_non_exhaustive()
    }
}

/// Whether `presented` equals `expected`, in time independent of both
/// contents and lengths (both are hashed first, so a mismatch in length
/// takes as long as one in the last byte).
pub fn credential_matches(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    presented.ct_eq(&expected).into()
}

/// Checks `Authorization: Bearer <secret>`: the scheme word is
/// case-insensitive (RFC 9110 §11.1), separated by one space, and the token
/// is compared with [`credential_matches`]. Anything else, a missing or
/// repeated header included, is [`IngressRefusal::Unauthenticated`].
pub fn check_bearer(request: &IngressRequest<'_>, secret: &str) -> Result<(), IngressRefusal> {
    let header = request
        .header("authorization")
        .ok_or(IngressRefusal::Unauthenticated)?;
    let (scheme, token) = header
        .split_once(' ')
        .ok_or(IngressRefusal::Unauthenticated)?;
    if scheme.eq_ignore_ascii_case("bearer") && credential_matches(token, secret) {
        Ok(())
    } else {
        Err(IngressRefusal::Unauthenticated)
    }
}

/// An RFC 3339 timestamp in a JSON field, as UTC; `None` when absent or not
/// a timestamp (an unreadable time does not make a delivery unauthentic).
pub fn time_field(payload: &serde_json::Value, field: &str) -> Option<DateTime<Utc>> {
    let raw = payload.get(field)?.as_str()?;
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn request<'a>(headers: &'a [(String, String)], body: &'a [u8]) -> IngressRequest<'a> {
        IngressRequest {
            url: "https://sb.example.com/ingress/t",
            headers,
            body,
            received_at: DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn headers_are_case_insensitive_and_unique() {
        let h = headers(&[
            ("Content-Type", "application/json"),
            ("X-A", "1"),
            ("x-a", "2"),
        ]);
        let r = request(&h, b"");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("x-a"), None, "repeated");
        assert_eq!(r.header("x-b"), None);
    }

    #[test]
    fn bearer_is_checked_exactly() {
        let ok = ["Bearer s3cret", "bearer s3cret", "BEARER s3cret"];
        for value in ok {
            let h = headers(&[("Authorization", value)]);
            assert_eq!(check_bearer(&request(&h, b""), "s3cret"), Ok(()), "{value}");
        }
        let bad = [
            "Bearer other",
            "Bearer s3cret ",
            "Bearer  s3cret",
            "Basic s3cret",
            "s3cret",
            "Bearer",
            "Bearer s3cre",
        ];
        for value in bad {
            let h = headers(&[("authorization", value)]);
            assert_eq!(
                check_bearer(&request(&h, b""), "s3cret"),
                Err(IngressRefusal::Unauthenticated),
                "{value}"
            );
        }
        let twice = headers(&[
            ("authorization", "Bearer s3cret"),
            ("Authorization", "Bearer s3cret"),
        ]);
        assert_eq!(
            check_bearer(&request(&twice, b""), "s3cret"),
            Err(IngressRefusal::Unauthenticated)
        );
        assert_eq!(
            check_bearer(&request(&[], b""), "s3cret"),
            Err(IngressRefusal::Unauthenticated)
        );
    }

    #[test]
    fn credentials_compare_by_value() {
        assert!(credential_matches("abc", "abc"));
        assert!(!credential_matches("abc", "abd"));
        assert!(!credential_matches("abc", "abcd"));
        assert!(!credential_matches("", "a"));
    }

    #[test]
    fn json_bodies_only() {
        assert_eq!(
            request(&[], br#"{"a":1}"#).json_body(),
            Ok(serde_json::json!({"a": 1}))
        );
        for body in [&b""[..], b"a=1", b"{", b"\xff"] {
            assert_eq!(
                request(&[], body).json_body(),
                Err(IngressRefusal::Malformed("body is not JSON"))
            );
        }
    }

    #[test]
    fn reasons_are_stable() {
        let all = [
            IngressRefusal::Unauthenticated,
            IngressRefusal::BadSignature,
            IngressRefusal::Stale,
            IngressRefusal::Malformed("x"),
        ];
        let reasons: Vec<_> = all.iter().map(IngressRefusal::reason).collect();
        assert_eq!(
            reasons,
            ["unauthenticated", "bad_signature", "stale", "malformed"]
        );
    }

    #[test]
    fn credentials_go_where_the_kind_reads_them() {
        let mut draft = crate::testing::draft("p", "https://a.example.com/x", &["call.ended"]);
        IngressCredential::BearerToken.apply(&mut draft, Secret::new("tok"));
        IngressCredential::SigningSecret.apply(&mut draft, Secret::new("sig"));
        let spec = draft.validate().unwrap();
        let token = IngressCredential::BearerToken.secret_of(&spec).unwrap();
        assert_eq!(token.expose(), "tok");
        let signing = IngressCredential::SigningSecret.secret_of(&spec).unwrap();
        assert_eq!(signing.expose(), "sig");
        let plain = crate::testing::draft("p", "https://a.example.com/x", &["call.ended"])
            .validate()
            .unwrap();
        assert!(IngressCredential::BearerToken.secret_of(&plain).is_none());
        assert!(IngressCredential::SigningSecret.secret_of(&plain).is_none());
    }

    #[test]
    fn time_fields_read_rfc3339() {
        let p = serde_json::json!({"t": "2025-09-03T23:19:51.000Z", "bad": "yesterday", "n": 1});
        assert_eq!(
            time_field(&p, "t").map(|t| t.timestamp()),
            Some(1_756_941_591)
        );
        assert_eq!(time_field(&p, "bad"), None);
        assert_eq!(time_field(&p, "n"), None);
        assert_eq!(time_field(&p, "missing"), None);
    }
}
