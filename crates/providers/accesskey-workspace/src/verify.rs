//! Verification of Bird's signed deliveries (providers.md §3.4), for the
//! relay mode in which Switchboard receives the provider's deliveries. Pure:
//! the caller passes the headers, the exact request URL, the raw body and
//! the current time.
//!
//! Bird signs a delivery when its subscription has a `signingKey`:
//! `messagebird-signature` is base64 of
//! `HMAC-SHA256(signingKey, timestamp + "\n" + requestUrl + "\n" + SHA256(rawBody))`,
//! where the body hash is the 32 raw bytes (not hex), the timestamp is the
//! `messagebird-request-timestamp` header as sent, and the key is the
//! `signingKey` string as given, not base64-decoded although it looks like
//! base64 (Bird's PHP example, "Verifying a webhook subscription").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Header carrying the base64 signature.
pub const SIGNATURE_HEADER: &str = "messagebird-signature";
/// Header carrying the timestamp that is signed.
pub const TIMESTAMP_HEADER: &str = "messagebird-request-timestamp";
/// Header carrying the delivery's event reference; the key for
/// de-duplicating deliveries (providers.md §3.4).
pub const REQUEST_ID_HEADER: &str = "messagebird-request-id";

/// Default for how old a timestamp may be: 25 hours.
///
/// Bird's retries re-send the *original* timestamp, so a window shorter than
/// the retry period rejects genuine retried deliveries. Bird documents
/// retries "at increasing intervals over a period of 8 hours"; a third party
/// observed retries stopping only around 24 hours and saw deliveries 3–4 h
/// stale, while another, using 15 minutes, lost retried messages
/// (providers.md §3.4, §3.6). 24 h plus an hour of margin covers both. The
/// timestamp therefore cannot stop replays within that window on its own:
/// de-duplicate by [`REQUEST_ID_HEADER`] (or a payload id) as well.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(25 * 60 * 60);

/// How far in the future a timestamp may lie (clock skew between Bird and us).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Timestamps at or above this are read as milliseconds. The unit is not
/// documented; third-party tests use Unix seconds (providers.md §3.4), and
/// 10^12 seconds lies about 30,000 years ahead while 10^12 milliseconds is
/// 2001, so the two cannot be confused for real deliveries.
const MILLIS_THRESHOLD: u64 = 1_000_000_000_000;

/// One received delivery, as far as its signature is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The `messagebird-signature` header.
    pub signature: &'a str,
    /// The `messagebird-request-timestamp` header, exactly as received.
    pub timestamp: &'a str,
    /// The full public URL Bird called, query string included. Behind a
    /// proxy it must be rebuilt from the forwarded scheme and host
    /// (providers.md §3.4, INFERRED).
    pub request_url: &'a str,
    /// The raw request body, before any parsing.
    pub body: &'a [u8],
}

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature header is not base64 of 32 bytes.
    #[error("the {SIGNATURE_HEADER} header is not a base64 HMAC-SHA256 value")]
    MalformedSignature,
    /// The timestamp header is not an integer Unix time.
    #[error("the {TIMESTAMP_HEADER} header is not a Unix timestamp")]
    MalformedTimestamp,
    /// The signature does not match the key, timestamp, URL and body.
    #[error("the signature does not match")]
    Mismatch,
    /// Authentic, but older than the tolerance.
    #[error("the delivery is {age_secs} s old, more than the {tolerance_secs} s tolerance")]
    Stale {
        /// Age of the timestamp.
        age_secs: u64,
        /// The tolerance it exceeded.
        tolerance_secs: u64,
    },
    /// Authentic, but dated further ahead than [`MAX_CLOCK_SKEW`].
    #[error("the delivery is dated {ahead_secs} s in the future")]
    FromTheFuture {
        /// How far ahead of `now` the timestamp lies.
        ahead_secs: u64,
    },
}

fn mac(signing_key: &str, timestamp: &str, request_url: &str, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length (RFC 2104 §2: longer keys are hashed,
    // shorter ones padded), so constructing it cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(request_url.as_bytes());
    mac.update(b"\n");
    mac.update(&Sha256::digest(body));
    mac.finalize().into_bytes().into()
}

/// The `messagebird-signature` value Bird would send: for tests and for
/// simulating deliveries.
pub fn sign(signing_key: &str, timestamp: &str, request_url: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(mac(signing_key, timestamp, request_url, body))
}

/// When a delivery was sent: its `messagebird-request-timestamp`, in Unix
/// seconds or milliseconds.
pub fn sent_at(raw: &str) -> Result<SystemTime, VerifyError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 20 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::MalformedTimestamp);
    }
    let value: u64 = raw.parse().map_err(|_| VerifyError::MalformedTimestamp)?;
    let since_epoch = if value >= MILLIS_THRESHOLD {
        Duration::from_millis(value)
    } else {
        Duration::from_secs(value)
    };
    UNIX_EPOCH
        .checked_add(since_epoch)
        .ok_or(VerifyError::MalformedTimestamp)
}

/// Verifies a delivery signed with `signing_key`.
///
/// The signature is compared in constant time, and checked before the
/// timestamp's age, so a stale verdict is only given for an authentic
/// delivery. `tolerance` is how old the timestamp may be; use
/// [`DEFAULT_TOLERANCE`] unless the deployment has reason to differ.
pub fn verify(
    signing_key: &str,
    delivery: &Delivery<'_>,
    now: SystemTime,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let presented = base64::engine::general_purpose::STANDARD
        .decode(delivery.signature.trim())
        .map_err(|_| VerifyError::MalformedSignature)?;
    if presented.len() != 32 {
        return Err(VerifyError::MalformedSignature);
    }
    let sent_at = sent_at(delivery.timestamp)?;
    let expected = mac(
        signing_key,
        delivery.timestamp,
        delivery.request_url,
        delivery.body,
    );
    if !bool::from(expected.as_slice().ct_eq(&presented)) {
        return Err(VerifyError::Mismatch);
    }
    match now.duration_since(sent_at) {
        Ok(age) if age > tolerance => Err(VerifyError::Stale {
            age_secs: age.as_secs(),
            tolerance_secs: tolerance.as_secs(),
        }),
        Ok(_) => Ok(()),
        Err(ahead) if ahead.duration() > MAX_CLOCK_SKEW => Err(VerifyError::FromTheFuture {
            ahead_secs: ahead.duration().as_secs(),
        }),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bird's documented example signingKey (providers.md §3.2), used as-is.
    const DOC_KEY: &str = "KeV+/HGoIQrxuE5YPCRR6AuQOJveldYNNhbVi1i22qk=";
    const TS: &str = "1700000000";
    const URL: &str = "https://hooks.example.com/bird?tenant=billing";
    const BODY: &str = r#"{"service":"channels","event":"sms.outbound","payload":{"id":"m1"}}"#;

    // Expected values were computed independently with OpenSSL 3.0 on the
    // build machine; `sig` is this shell function:
    //
    //   sig() { { printf '%s\n%s\n' "$2" "$3"; printf '%s' "$4" | openssl dgst -sha256 -binary; } \
    //           | openssl dgst -sha256 -hmac "$1" -binary | openssl base64 -A; }

    // sig 'KeV+/HGoIQrxuE5YPCRR6AuQOJveldYNNhbVi1i22qk=' 1700000000 \
    //     'https://hooks.example.com/bird?tenant=billing' \
    //     '{"service":"channels","event":"sms.outbound","payload":{"id":"m1"}}'
    const SIG_DOC: &str = "Lb0egiW5gVbUFDM83FIGcmdt0+2SgJjz4GKcAgz6g0U=";
    // sig 'KeV+/HGoIQrxuE5YPCRR6AuQOJveldYNNhbVi1i22qk=' 1700000000 'https://hooks.example.com/bird' ''
    const SIG_EMPTY_BODY: &str = "8GkAKt7x8lJUQ47DFocHSvMij9tnjXxQ3unyT75OEss=";
    // sig 'switchboard-secret' 1735689600 'https://billing.example.com/hooks/bird' \
    //     '{"service":"conversations","event":"conversation.created","payload":{"id":"c9"}}'
    const SIG_PLAIN_KEY: &str = "5Ucwq+cgFcRbtm0kswSsve1QVh+WwjIup5hLwTwogNI=";
    // The same message as SIG_DOC keyed with the base64-*decoded* key, which
    // Bird does not do:
    //   printf 'KeV+…qk=' | openssl base64 -d -A | xxd -p -c 64   (→ 29e57efc…b6daa9)
    //   { printf '%s\n%s\n' 1700000000 'https://hooks.example.com/bird?tenant=billing'; \
    //     printf '%s' '{"service":…}' | openssl dgst -sha256 -binary; } \
    //   | openssl dgst -sha256 -mac HMAC \
    //       -macopt hexkey:29e57efc71a8210af1b84e583c2451e80b90389bde95d60d3616d58b58b6daa9 -binary \
    //   | openssl base64 -A
    const SIG_DECODED_KEY: &str = "NNBQwX0OhJ5cnqY3nkJGcoZiTdz1fDHEv0q2N2ViD5Y=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn delivery<'a>(
        signature: &'a str,
        timestamp: &'a str,
        url: &'a str,
        body: &'a str,
    ) -> Delivery<'a> {
        Delivery {
            signature,
            timestamp,
            request_url: url,
            body: body.as_bytes(),
        }
    }

    #[test]
    fn signs_like_openssl() {
        assert_eq!(sign(DOC_KEY, TS, URL, BODY.as_bytes()), SIG_DOC);
        assert_eq!(
            sign(DOC_KEY, TS, "https://hooks.example.com/bird", b""),
            SIG_EMPTY_BODY
        );
        assert_eq!(
            sign(
                "switchboard-secret",
                "1735689600",
                "https://billing.example.com/hooks/bird",
                br#"{"service":"conversations","event":"conversation.created","payload":{"id":"c9"}}"#
            ),
            SIG_PLAIN_KEY
        );
    }

    #[test]
    fn accepts_the_openssl_vectors() {
        let now = at(1_700_000_060);
        verify(
            DOC_KEY,
            &delivery(SIG_DOC, TS, URL, BODY),
            now,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        verify(
            DOC_KEY,
            &delivery(SIG_EMPTY_BODY, TS, "https://hooks.example.com/bird", ""),
            now,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
    }

    #[test]
    fn the_key_is_used_as_given_not_decoded() {
        let err = verify(
            DOC_KEY,
            &delivery(SIG_DECODED_KEY, TS, URL, BODY),
            at(1_700_000_000),
            DEFAULT_TOLERANCE,
        )
        .unwrap_err();
        assert_eq!(err, VerifyError::Mismatch);
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let now = at(1_700_000_000);
        let other_body = BODY.replace("m1", "m2");
        let tampered = [
            delivery(SIG_DOC, TS, URL, &other_body),
            delivery(SIG_DOC, TS, "https://hooks.example.com/bird", BODY),
            delivery(SIG_DOC, "1700000001", URL, BODY),
        ];
        for d in &tampered {
            assert_eq!(
                verify(DOC_KEY, d, now, DEFAULT_TOLERANCE),
                Err(VerifyError::Mismatch),
                "{d:?}"
            );
        }
        assert_eq!(
            verify(
                "other-key",
                &delivery(SIG_DOC, TS, URL, BODY),
                now,
                DEFAULT_TOLERANCE
            ),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn malformed_headers() {
        let now = at(1_700_000_000);
        for bad in ["", "not base64!", "AAAA"] {
            assert_eq!(
                verify(
                    DOC_KEY,
                    &delivery(bad, TS, URL, BODY),
                    now,
                    DEFAULT_TOLERANCE
                ),
                Err(VerifyError::MalformedSignature),
                "{bad}"
            );
        }
        for bad in [
            "",
            "-1",
            "1.7e9",
            "2023-11-14T22:13:20Z",
            "99999999999999999999999",
        ] {
            assert_eq!(
                verify(
                    DOC_KEY,
                    &delivery(SIG_DOC, bad, URL, BODY),
                    now,
                    DEFAULT_TOLERANCE
                ),
                Err(VerifyError::MalformedTimestamp),
                "{bad}"
            );
        }
    }

    #[test]
    fn tolerance_covers_birds_retry_window() {
        let d = delivery(SIG_DOC, TS, URL, BODY);
        let sent = 1_700_000_000;
        // A retry 8 h later (Bird's documented retry period) and one 24 h
        // later (observed by a third party) still verify by default.
        verify(DOC_KEY, &d, at(sent + 8 * 3600), DEFAULT_TOLERANCE).unwrap();
        verify(DOC_KEY, &d, at(sent + 24 * 3600), DEFAULT_TOLERANCE).unwrap();
        verify(DOC_KEY, &d, at(sent + 25 * 3600), DEFAULT_TOLERANCE).unwrap();
        assert_eq!(
            verify(DOC_KEY, &d, at(sent + 25 * 3600 + 1), DEFAULT_TOLERANCE),
            Err(VerifyError::Stale {
                age_secs: 25 * 3600 + 1,
                tolerance_secs: 25 * 3600
            })
        );
        // The tolerance is the caller's choice.
        assert!(matches!(
            verify(DOC_KEY, &d, at(sent + 301), Duration::from_secs(300)),
            Err(VerifyError::Stale { .. })
        ));
    }

    #[test]
    fn future_timestamps_within_skew_pass() {
        let d = delivery(SIG_DOC, TS, URL, BODY);
        verify(DOC_KEY, &d, at(1_700_000_000 - 300), DEFAULT_TOLERANCE).unwrap();
        assert_eq!(
            verify(DOC_KEY, &d, at(1_700_000_000 - 301), DEFAULT_TOLERANCE),
            Err(VerifyError::FromTheFuture { ahead_secs: 301 })
        );
    }

    #[test]
    fn millisecond_timestamps_are_understood() {
        let ts = "1700000000000";
        let signature = sign(DOC_KEY, ts, URL, BODY.as_bytes());
        verify(
            DOC_KEY,
            &delivery(&signature, ts, URL, BODY),
            at(1_700_000_010),
            Duration::from_secs(60),
        )
        .unwrap();
    }
}
