//! Verification of Sendblue deliveries in relay mode (issue 13). Pure.
//!
//! Sendblue does not sign: it sends the configured secret back in the
//! `sb-signing-secret` header and the receiver compares it with its own
//! copy (providers.md §4.4). A relay entry is registered as
//! `{url, secret}` with a secret Switchboard generated
//! ([`IngressCredential::SigningSecret`], which `translate` puts in the
//! entry), and the header is compared with it in constant time. No
//! timestamp or replay window exists (§4.4). Whether every webhook type
//! carries the header is UNKNOWN (§4.4); one that does not is refused, so
//! nothing unauthenticated is relayed. `contact_created` takes URL strings
//! only (§4.2), so it cannot carry a secret at all.
//!
//! The body has no event-type field (§4.5): the native event is the bucket
//! the entry was registered in. The documented payloads carry
//! `message_handle` (receive) or `message_id` (status callbacks) and
//! `status`; one message goes through several statuses, each delivered
//! separately, so the dedup id is the message id *and* its status and
//! `date_updated`, never the message id alone.

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::ingress::{credential_matches, time_field};
use switchboard_core::{InboundEvent, Ingress, IngressCredential, IngressRefusal, IngressRequest};

/// Kind `account-v2`'s ingress.
pub const INGRESS: Ingress = Ingress {
    credential: IngressCredential::SigningSecret,
    verify,
    max_age: None,
    names_event: false,
};

/// The header carrying the entry's secret (providers.md §4.4).
pub const SECRET_HEADER: &str = "sb-signing-secret";

/// Checks `sb-signing-secret`, then reads the message id, status and times.
pub fn verify(
    request: &IngressRequest<'_>,
    secret: &str,
    _now: DateTime<Utc>,
) -> Result<InboundEvent, IngressRefusal> {
    let presented = request
        .header(SECRET_HEADER)
        .ok_or(IngressRefusal::Unauthenticated)?;
    if !credential_matches(presented, secret) {
        return Err(IngressRefusal::Unauthenticated);
    }
    let payload = request.json_body()?;
    Ok(InboundEvent {
        native_event: None,
        dedup_id: dedup_id(&payload),
        occurred_at: time_field(&payload, "date_updated")
            .or_else(|| time_field(&payload, "date_sent")),
        payload,
    })
}

/// `<message id>/<status>/<date_updated>` when the payload names a message.
fn dedup_id(payload: &Value) -> Option<String> {
    let field = |name| payload.get(name).and_then(Value::as_str).unwrap_or("");
    let id = ["message_handle", "message_id"]
        .into_iter()
        .map(field)
        .find(|id| !id.is_empty())?;
    Some(format!(
        "{id}/{}/{}",
        field("status"),
        field("date_updated")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sb-relay-secret";
    /// The documented `receive` payload (providers.md §4.5), shortened.
    const RECEIVE: &str = r#"{"accountEmail":"a@example.com","content":"Hello!","is_outbound":false,"status":"RECEIVED","message_handle":"99DCC379-0001","date_sent":"2025-12-12T15:41:20.932Z","date_updated":"2025-12-12T15:41:20.995Z","from_number":"+19998887777","to_number":"+15122164639"}"#;

    fn deliver(headers: &[(&str, &str)], body: &str) -> Result<InboundEvent, IngressRefusal> {
        switchboard_core::testing::verify_delivery(&INGRESS, headers, body, SECRET)
    }

    #[test]
    fn the_documented_receive_delivery_is_accepted() {
        let event = deliver(&[("sb-signing-secret", SECRET)], RECEIVE).unwrap();
        assert_eq!(event.native_event, None);
        assert_eq!(
            event.dedup_id.as_deref(),
            Some("99DCC379-0001/RECEIVED/2025-12-12T15:41:20.995Z")
        );
        assert_eq!(
            event.occurred_at.map(|t| t.timestamp_millis()),
            Some(1_765_554_080_995)
        );
        assert_eq!(event.payload["content"], "Hello!");
    }

    #[test]
    fn each_status_of_one_message_is_its_own_delivery() {
        let status = |s: &str| {
            let body = format!(
                r#"{{"message_id":"m-1","is_outbound":true,"status":"{s}","date_sent":"2025-12-12T15:41:20Z"}}"#
            );
            deliver(&[("SB-Signing-Secret", SECRET)], &body)
                .unwrap()
                .dedup_id
        };
        assert_eq!(status("QUEUED").as_deref(), Some("m-1/QUEUED/"));
        assert_ne!(status("QUEUED"), status("DELIVERED"));
        let no_message = deliver(&[("sb-signing-secret", SECRET)], r#"{"line":"+1"}"#).unwrap();
        assert_eq!(no_message.dedup_id, None);
        assert_eq!(no_message.occurred_at, None);
    }

    #[test]
    fn wrong_or_missing_secrets_are_refused() {
        for headers in [
            &[][..],
            &[("sb-signing-secret", "sb-relay-secre")],
            &[("sb-signing-secret", "sb-relay-secret ")],
            &[("Authorization", "Bearer sb-relay-secret")],
        ] {
            assert_eq!(
                deliver(headers, RECEIVE),
                Err(IngressRefusal::Unauthenticated),
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_non_json_body_is_refused() {
        assert!(matches!(
            deliver(&[("sb-signing-secret", SECRET)], "content=Hello"),
            Err(IngressRefusal::Malformed(_))
        ));
    }
}
