//! Verification of Bird deliveries in relay mode (issue 13), built on
//! [`crate::verify`]. Pure.
//!
//! A relay native is registered with a `signingKey` Switchboard generated
//! ([`IngressCredential::SigningSecret`], which `translate` maps to
//! `signingKey`). Bird then signs every delivery (providers.md §3.4):
//! `messagebird-signature` over `messagebird-request-timestamp`, the
//! request URL and the body hash, checked by [`crate::verify::verify`] in
//! constant time with its clock-skew window and
//! [`DEFAULT_TOLERANCE`](crate::verify::DEFAULT_TOLERANCE), which is long
//! because Bird's retries re-send the original timestamp (§3.4, §3.6).
//! Replays inside that window are the caller's to drop, keyed by
//! `messagebird-request-id` (§3.4).
//!
//! The body is the documented envelope `{service, event, payload}` (§3.5);
//! the native event is `service:event`, the spelling of this kind's names
//! in `config/events.toml`. The signed timestamp is when Bird first sent
//! the delivery, the closest it documents to when the event happened.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde_json::Value;
use switchboard_core::{InboundEvent, Ingress, IngressCredential, IngressRefusal, IngressRequest};

use crate::verify::{
    DEFAULT_TOLERANCE, Delivery, REQUEST_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    VerifyError, sent_at,
};

/// Kind `accesskey-workspace`'s ingress.
pub const INGRESS: Ingress = Ingress {
    credential: IngressCredential::SigningSecret,
    verify,
    max_age: Some(DEFAULT_TOLERANCE),
    names_event: true,
};

/// Checks the signature and timestamp, then reads the envelope and the
/// request id.
pub fn verify(
    request: &IngressRequest<'_>,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<InboundEvent, IngressRefusal> {
    let signature = request
        .header(SIGNATURE_HEADER)
        .ok_or(IngressRefusal::Unauthenticated)?;
    let timestamp = request
        .header(TIMESTAMP_HEADER)
        .ok_or(IngressRefusal::Unauthenticated)?;
    let delivery = Delivery {
        signature,
        timestamp,
        request_url: request.url,
        body: request.body,
    };
    crate::verify::verify(secret, &delivery, SystemTime::from(now), DEFAULT_TOLERANCE)
        .map_err(refusal)?;
    let payload = request.json_body()?;
    let field = |name| payload.get(name).and_then(Value::as_str);
    // Without the envelope (a `template` may reshape the body; its meaning
    // is UNKNOWN, §3.2) the subscription's one event still names it.
    let native_event = field("service")
        .zip(field("event"))
        .map(|(service, event)| format!("{service}:{event}"));
    Ok(InboundEvent {
        native_event,
        dedup_id: request.header(REQUEST_ID_HEADER).map(str::to_owned),
        occurred_at: sent_at(timestamp).ok().map(DateTime::<Utc>::from),
        payload,
    })
}

fn refusal(e: VerifyError) -> IngressRefusal {
    match e {
        VerifyError::MalformedSignature | VerifyError::Mismatch => IngressRefusal::BadSignature,
        VerifyError::MalformedTimestamp => {
            IngressRefusal::Malformed("messagebird-request-timestamp is not a Unix time")
        }
        VerifyError::Stale { .. } | VerifyError::FromTheFuture { .. } => IngressRefusal::Stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::sign;

    const KEY: &str = "sb-generated-signing-key";
    const URL: &str = "https://sb.example.com/ingress/r0ute?x=1";
    /// The documented conversations envelope (providers.md §3.5), shortened.
    const BODY: &str = r#"{"service":"conversations","event":"conversation.updated","payload":{"id":"badbf15c-0001","status":"active"}}"#;
    const SENT: i64 = 1_735_689_600;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    struct Sent {
        headers: Vec<(String, String)>,
        body: String,
        url: &'static str,
    }

    impl Sent {
        fn signed(body: &str, ts: &str) -> Self {
            let headers = vec![
                (
                    "messagebird-signature".to_owned(),
                    sign(KEY, ts, URL, body.as_bytes()),
                ),
                ("messagebird-request-timestamp".to_owned(), ts.to_owned()),
                ("messagebird-request-id".to_owned(), "req-42".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ];
            Self {
                headers,
                body: body.to_owned(),
                url: URL,
            }
        }

        fn verify_at(&self, now: i64) -> Result<InboundEvent, IngressRefusal> {
            let request = IngressRequest {
                url: self.url,
                headers: &self.headers,
                body: self.body.as_bytes(),
                received_at: at(now),
            };
            (INGRESS.verify)(&request, KEY, at(now))
        }
    }

    #[test]
    fn a_genuine_delivery_yields_its_event_id_and_time() {
        let event = Sent::signed(BODY, &SENT.to_string())
            .verify_at(SENT + 5)
            .unwrap();
        assert_eq!(
            event.native_event.as_deref(),
            Some("conversations:conversation.updated")
        );
        assert_eq!(event.dedup_id.as_deref(), Some("req-42"));
        assert_eq!(event.occurred_at, Some(at(SENT)));
        assert_eq!(event.payload["payload"]["id"], "badbf15c-0001");
    }

    #[test]
    fn tampering_and_wrong_keys_are_refused() {
        let ts = SENT.to_string();
        let mut body = Sent::signed(BODY, &ts);
        body.body = BODY.replace("active", "closed");
        assert_eq!(body.verify_at(SENT), Err(IngressRefusal::BadSignature));
        let mut url = Sent::signed(BODY, &ts);
        url.url = "https://sb.example.com/ingress/r0ute";
        assert_eq!(url.verify_at(SENT), Err(IngressRefusal::BadSignature));
        let mut garbage = Sent::signed(BODY, &ts);
        garbage.headers[0].1 = "not base64!".into();
        assert_eq!(garbage.verify_at(SENT), Err(IngressRefusal::BadSignature));
        let other = Sent::signed(BODY, &ts);
        let request = IngressRequest {
            url: URL,
            headers: &other.headers,
            body: other.body.as_bytes(),
            received_at: at(SENT),
        };
        assert_eq!(
            (INGRESS.verify)(&request, "other-key", at(SENT)),
            Err(IngressRefusal::BadSignature)
        );
    }

    #[test]
    fn missing_headers_are_unauthenticated() {
        for drop in ["messagebird-signature", "messagebird-request-timestamp"] {
            let mut sent = Sent::signed(BODY, &SENT.to_string());
            sent.headers.retain(|(n, _)| n != drop);
            assert_eq!(
                sent.verify_at(SENT),
                Err(IngressRefusal::Unauthenticated),
                "{drop}"
            );
        }
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let sent = Sent::signed(BODY, &SENT.to_string());
        // Bird's retries keep the original timestamp for up to ~24 h (§3.6).
        assert!(sent.verify_at(SENT + 24 * 3600).is_ok());
        assert_eq!(sent.verify_at(SENT + 26 * 3600), Err(IngressRefusal::Stale));
        assert_eq!(sent.verify_at(SENT - 3600), Err(IngressRefusal::Stale));
        let bad_ts = Sent::signed(BODY, "yesterday");
        assert!(matches!(
            bad_ts.verify_at(SENT),
            Err(IngressRefusal::Malformed(_))
        ));
    }

    #[test]
    fn authentic_bodies_without_the_envelope() {
        let ts = SENT.to_string();
        assert!(matches!(
            Sent::signed("not json", &ts).verify_at(SENT),
            Err(IngressRefusal::Malformed(_))
        ));
        for body in [r#"{"payload":{}}"#, r#"{"service":"channels"}"#] {
            let event = Sent::signed(body, &ts).verify_at(SENT).unwrap();
            assert_eq!(event.native_event, None, "{body}");
        }
    }
}
