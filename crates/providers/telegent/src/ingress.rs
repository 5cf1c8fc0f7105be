//! Verification of Telegent deliveries in relay mode (issue 13). Pure.
//!
//! Telegent signs nothing: a webhook is authenticated only by the
//! credentials configured on it (providers.md §1.4). A relay native is
//! registered with `AuthenticationType: Token` and a token Switchboard
//! generated ([`IngressCredential::BearerToken`], which `translate` maps to
//! `Token`). The create doc says the token is "sent in the `Authorization`
//! header" without naming the scheme word; `Authorization: Bearer <token>`
//! is INFERRED (§1.4) and is the only form accepted.
//!
//! Telegent documents no timestamp, no replay protection, no delivery id and
//! no payload for its `/v1.0/webhook` events (§1.4, §1.5), so nothing is
//! extracted: the native event is the one the webhook was registered for
//! and duplicates are caught by the caller's content hash.

use chrono::{DateTime, Utc};
use switchboard_core::ingress::check_bearer;
use switchboard_core::{InboundEvent, Ingress, IngressCredential, IngressRefusal, IngressRequest};

/// Kind `telegent`'s ingress.
pub const INGRESS: Ingress = Ingress {
    credential: IngressCredential::BearerToken,
    verify,
    max_age: None,
    names_event: false,
};

/// Checks `Authorization: Bearer <secret>` and that the body is JSON.
pub fn verify(
    request: &IngressRequest<'_>,
    secret: &str,
    _now: DateTime<Utc>,
) -> Result<InboundEvent, IngressRefusal> {
    check_bearer(request, secret)?;
    Ok(InboundEvent {
        native_event: None,
        dedup_id: None,
        occurred_at: None,
        payload: request.json_body()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tg-relay-token";
    /// The inbound-message fields of the onboarding guide (providers.md §1.5).
    const BODY: &str = r#"{"Message_ID":"m-1","Owner":"+15550001111","To":"+15550001111","From":"+15552223333","Message_Body":"hi","Segment":1}"#;

    fn deliver(headers: &[(&str, &str)], body: &str) -> Result<InboundEvent, IngressRefusal> {
        switchboard_core::testing::verify_delivery(&INGRESS, headers, body, TOKEN)
    }

    #[test]
    fn a_genuine_delivery_is_accepted_unchanged() {
        let event = deliver(&[("Authorization", "Bearer tg-relay-token")], BODY).unwrap();
        assert_eq!(event.native_event, None);
        assert_eq!(event.dedup_id, None);
        assert_eq!(event.occurred_at, None);
        assert_eq!(event.payload["Message_ID"], "m-1");
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        for headers in [
            &[][..],
            &[("Authorization", "Bearer other")],
            &[("Authorization", "tg-relay-token")],
            &[("Authorization", "Token tg-relay-token")],
            &[("Authorization", "Basic dGc6dGc=")],
        ] {
            assert_eq!(
                deliver(headers, BODY),
                Err(IngressRefusal::Unauthenticated),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_non_json_body_is_refused_after_authentication() {
        let auth = [("Authorization", "Bearer tg-relay-token")];
        assert!(matches!(
            deliver(&auth, "<Message_ID>m-1</Message_ID>"),
            Err(IngressRefusal::Malformed(_))
        ));
        assert_eq!(deliver(&[], "<xml/>"), Err(IngressRefusal::Unauthenticated));
    }
}
