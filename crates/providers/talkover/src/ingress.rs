//! Verification of Talkover deliveries in relay mode (issue 13). Pure.
//!
//! Talkover's HMAC signature header is undocumented (name, signed content
//! and encoding are UNKNOWN, providers.md §2.4), so it is not relied on. A
//! relay native is registered with `authorization_scheme: bearer` and a
//! token Switchboard generated ([`IngressCredential::BearerToken`]);
//! `translate` also sends it as the custom header
//! `Authorization: Bearer <token>`, because the field that carries a
//! scheme's credential is UNKNOWN (§2.2) while custom headers are applied
//! to deliveries (§2.4). That header is what is checked.
//!
//! The documented delivery (the test payload, §2.5) carries `event` and an
//! ISO-8601 `timestamp`; real call events probably share that envelope
//! (INFERRED). No delivery id is documented, so duplicates are caught by the
//! caller's content hash. `payload_templates` may reshape a body, in which
//! case the fields may be missing and nothing is extracted.

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::ingress::{check_bearer, time_field};
use switchboard_core::{InboundEvent, Ingress, IngressCredential, IngressRefusal, IngressRequest};

/// Kind `talkover`'s ingress.
pub const INGRESS: Ingress = Ingress {
    credential: IngressCredential::BearerToken,
    verify,
    max_age: None,
    names_event: true,
};

/// Checks `Authorization: Bearer <secret>`, then reads `event` and
/// `timestamp` from the JSON body.
pub fn verify(
    request: &IngressRequest<'_>,
    secret: &str,
    _now: DateTime<Utc>,
) -> Result<InboundEvent, IngressRefusal> {
    check_bearer(request, secret)?;
    let payload = request.json_body()?;
    Ok(InboundEvent {
        native_event: payload
            .get("event")
            .and_then(Value::as_str)
            .map(str::to_owned),
        dedup_id: None,
        occurred_at: time_field(&payload, "timestamp"),
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "to-relay-token";
    /// The documented test payload (providers.md §2.5).
    const TEST_BODY: &str = r#"{"event":"webhook.test","agent_id":"9fbef0b7-8d4e-4a08-9207-66c22155721d","agent_name":"My Agent","webhook_id":"9fcafbf2-7593-44d6-8cd7-1b221beba62a","webhook_name":"My Webhook","timestamp":"2025-09-03T23:19:51.000Z","test":true}"#;

    fn deliver(headers: &[(&str, &str)], body: &str) -> Result<InboundEvent, IngressRefusal> {
        switchboard_core::testing::verify_delivery(&INGRESS, headers, body, TOKEN)
    }

    #[test]
    fn the_documented_test_delivery_is_accepted() {
        let event = deliver(&[("authorization", "Bearer to-relay-token")], TEST_BODY).unwrap();
        assert_eq!(event.native_event.as_deref(), Some("webhook.test"));
        assert_eq!(event.dedup_id, None);
        assert_eq!(
            event.occurred_at.map(|t| t.to_rfc3339()),
            Some("2025-09-03T23:19:51+00:00".to_owned())
        );
        assert_eq!(event.payload["agent_name"], "My Agent");
    }

    #[test]
    fn a_templated_body_without_the_envelope_is_still_relayed() {
        let event = deliver(
            &[("Authorization", "Bearer to-relay-token")],
            r#"{"call":"c-1"}"#,
        )
        .unwrap();
        assert_eq!(event.native_event, None);
        assert_eq!(event.occurred_at, None);
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        for headers in [
            &[][..],
            &[("Authorization", "Bearer nope")],
            &[("X-Talkover-Signature", "abc")],
        ] {
            assert_eq!(
                deliver(headers, TEST_BODY),
                Err(IngressRefusal::Unauthenticated),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_non_json_body_is_refused() {
        assert!(matches!(
            deliver(&[("Authorization", "Bearer to-relay-token")], "event=x"),
            Err(IngressRefusal::Malformed(_))
        ));
    }
}
