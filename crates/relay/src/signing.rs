//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, the
//! symmetric `v1` scheme): the signing secret, the `webhook-signature`
//! header value over `{webhook-id}.{webhook-timestamp}.{body}`, and the
//! verification a subscriber performs.
//!
//! A secret is written `whsec_<base64 key>`; the HMAC-SHA256 key is the
//! decoded bytes, not the text. The spec asks for 24 to 64 random bytes;
//! [`SigningSecret::generate`] makes 32. During a rotation's overlap a
//! delivery is signed with every live secret, one `v1,<base64>` each,
//! space-separated, so a subscriber holding either secret verifies it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use switchboard_core::Secret;

/// The prefix that marks a Standard Webhooks symmetric secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// Fewest key bytes the spec allows (192 bits).
pub const MIN_KEY_BYTES: usize = 24;
/// Most key bytes the spec allows (512 bits).
pub const MAX_KEY_BYTES: usize = 64;
/// Key bytes of a generated secret (256 bits, the HMAC-SHA256 block-size sweet spot).
const GENERATED_KEY_BYTES: usize = 32;
/// The signature version of the symmetric scheme.
const VERSION: &str = "v1";

type HmacSha256 = Hmac<Sha256>;

/// A Standard Webhooks signing secret. `Debug` and `Display` never show
/// the key; [`SigningSecret::to_secret`] is the one way to its text.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret {
    /// The HMAC key: [`MIN_KEY_BYTES`] to [`MAX_KEY_BYTES`] bytes.
    key: Vec<u8>,
}

/// Why a string is not a `whsec_` secret. Never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    /// The `whsec_` prefix is missing.
    #[error("a signing secret starts with `whsec_`")]
    MissingPrefix,
    /// The part after the prefix is not standard base64.
    #[error("the part after `whsec_` is not standard base64")]
    NotBase64,
    /// The decoded key is too short or too long.
    #[error("the decoded key is {0} bytes; Standard Webhooks requires 24 to 64")]
    KeyLength(usize),
}

impl SigningSecret {
    /// Parses `whsec_<base64>`. Padding is optional, as in the reference
    /// libraries, which add it before decoding.
    pub fn parse(text: &str) -> Result<Self, SecretFormatError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretFormatError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .or_else(|_| STANDARD_NO_PAD.decode(encoded))
            .map_err(|_| SecretFormatError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(SecretFormatError::KeyLength(key.len()));
        }
        Ok(Self { key })
    }

    /// A new secret of 32 bytes from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let key: [u8; GENERATED_KEY_BYTES] = rand::random();
        Self { key: key.to_vec() }
    }

    /// The `whsec_…` text, wrapped so that it stays redacted until the one
    /// place that shows it once or seals it for storage exposes it.
    pub fn to_secret(&self) -> Secret {
        Secret::new(format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.key)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; the length was checked on parse.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }
}

impl FromStr for SigningSecret {
    type Err = SecretFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

impl fmt::Display for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("whsec_***")
    }
}

/// The `webhook-signature` header value: one `v1,<base64 HMAC-SHA256>` per
/// secret, in the order given, separated by single spaces. `body` must be
/// exactly the bytes sent.
pub fn sign(id: &str, timestamp: i64, body: &[u8], secrets: &[SigningSecret]) -> String {
    secrets
        .iter()
        .map(|s| {
            let tag = s.mac(id, timestamp, body).finalize().into_bytes();
            format!("{VERSION},{}", STANDARD.encode(tag))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a delivery did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `webhook-timestamp` is not an integer.
    #[error("webhook-timestamp is not a unix time in seconds")]
    BadTimestamp,
    /// The timestamp is outside the tolerance around now (replay defence).
    #[error("webhook-timestamp is {0} s away from now, beyond the tolerance")]
    OutsideTolerance(i64),
    /// No `v1` signature in the header matches.
    #[error("no v1 signature matches")]
    NoMatch,
}

/// Verifies a delivery the way the spec tells a subscriber to: the
/// timestamp within `tolerance_secs` of `now` (unix seconds), then any
/// `v1` entry of `signature_header` matching, compared in constant time.
/// Entries of other versions (`v1a`) are skipped, as the spec says.
pub fn verify(
    id: &str,
    timestamp: &str,
    signature_header: &str,
    body: &[u8],
    secret: &SigningSecret,
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew = ts.saturating_sub(now);
    if skew.abs() > tolerance_secs {
        return Err(VerifyError::OutsideTolerance(skew));
    }
    let matched = signature_header.split(' ').any(|entry| {
        let Some((VERSION, encoded)) = entry.split_once(',') else {
            return false;
        };
        let Ok(tag) = STANDARD.decode(encoded) else {
            return false;
        };
        secret.mac(id, ts, body).verify_slice(&tag).is_ok()
    });
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector of the Standard Webhooks reference libraries
    /// (`libraries/python/tests/test_webhooks.py`, `test_sign_function`).
    const VECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const VECTOR_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const VECTOR_TS: i64 = 1_614_265_330;
    const VECTOR_BODY: &str = r#"{"test": 2432232314}"#;
    const VECTOR_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn vector_secret() -> SigningSecret {
        SigningSecret::parse(VECTOR_SECRET).unwrap()
    }

    #[test]
    fn signs_the_reference_vector() {
        let sig = sign(
            VECTOR_ID,
            VECTOR_TS,
            VECTOR_BODY.as_bytes(),
            &[vector_secret()],
        );
        assert_eq!(sig, VECTOR_SIG);
    }

    #[test]
    fn verifies_the_reference_vector_and_refuses_changes() {
        let s = vector_secret();
        let ts = VECTOR_TS.to_string();
        let ok = |id: &str, body: &str, sig: &str| {
            verify(id, &ts, sig, body.as_bytes(), &s, VECTOR_TS, 300)
        };
        assert_eq!(ok(VECTOR_ID, VECTOR_BODY, VECTOR_SIG), Ok(()));
        assert_eq!(
            ok(VECTOR_ID, r#"{"test": 2432232315}"#, VECTOR_SIG),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            ok("msg_other", VECTOR_BODY, VECTOR_SIG),
            Err(VerifyError::NoMatch)
        );
        // The reference tests' "invalid signature" differs in the last byte.
        assert_eq!(
            ok(
                VECTOR_ID,
                VECTOR_BODY,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(ok(VECTOR_ID, VECTOR_BODY, "v1,"), Err(VerifyError::NoMatch));
        // Another version's entry with the same bytes is not a v1 signature.
        let v1a = VECTOR_SIG.replacen("v1,", "v1a,", 1);
        assert_eq!(ok(VECTOR_ID, VECTOR_BODY, &v1a), Err(VerifyError::NoMatch));
        // Any matching entry of a list verifies.
        let list = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {VECTOR_SIG}");
        assert_eq!(ok(VECTOR_ID, VECTOR_BODY, &list), Ok(()));
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let s = vector_secret();
        let body = VECTOR_BODY.as_bytes();
        let check = |now: i64| {
            verify(
                VECTOR_ID,
                &VECTOR_TS.to_string(),
                VECTOR_SIG,
                body,
                &s,
                now,
                300,
            )
        };
        assert_eq!(check(VECTOR_TS + 300), Ok(()));
        assert_eq!(check(VECTOR_TS - 300), Ok(()));
        assert_eq!(
            check(VECTOR_TS + 301),
            Err(VerifyError::OutsideTolerance(-301))
        );
        assert_eq!(
            check(VECTOR_TS - 301),
            Err(VerifyError::OutsideTolerance(301))
        );
        assert_eq!(
            verify(VECTOR_ID, "soon", VECTOR_SIG, body, &s, VECTOR_TS, 300),
            Err(VerifyError::BadTimestamp)
        );
    }

    #[test]
    fn rotation_signs_with_every_secret() {
        let old = vector_secret();
        let new = SigningSecret::generate();
        let other = SigningSecret::generate();
        let header = sign("evt_1", VECTOR_TS, b"{}", &[new.clone(), old.clone()]);
        let entries: Vec<&str> = header.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert!(entries.iter().all(|e| e.starts_with("v1,")));
        let check = |s: &SigningSecret| {
            verify(
                "evt_1",
                &VECTOR_TS.to_string(),
                &header,
                b"{}",
                s,
                VECTOR_TS,
                300,
            )
        };
        assert_eq!(check(&old), Ok(()));
        assert_eq!(check(&new), Ok(()));
        assert_eq!(check(&other), Err(VerifyError::NoMatch));
        assert_eq!(sign("evt_1", VECTOR_TS, b"{}", &[]), "");
    }

    #[test]
    fn secrets_parse_strictly_and_round_trip() {
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretFormatError::MissingPrefix)
        );
        assert_eq!(
            SigningSecret::parse("whsec_not base64!"),
            Err(SecretFormatError::NotBase64)
        );
        // 16 bytes: below the spec's minimum.
        assert_eq!(
            SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 16]))),
            Err(SecretFormatError::KeyLength(16))
        );
        assert_eq!(
            SigningSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 65]))),
            Err(SecretFormatError::KeyLength(65))
        );
        // Unpadded base64 is accepted, as the reference libraries do.
        let padded = format!("whsec_{}", STANDARD.encode([9u8; 25]));
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            SigningSecret::parse(unpadded).unwrap(),
            SigningSecret::parse(&padded).unwrap()
        );
        let generated = SigningSecret::generate();
        let text = generated.to_secret();
        assert_eq!(SigningSecret::parse(text.expose()).unwrap(), generated);
        assert_ne!(SigningSecret::generate(), generated);
    }

    #[test]
    fn secrets_are_redacted() {
        let s = vector_secret();
        let key_text = VECTOR_SECRET.trim_start_matches("whsec_");
        for shown in [
            format!("{s:?}"),
            format!("{s}"),
            format!("{:?}", s.to_secret()),
            format!("{:?}", Some(vec![s.clone()])),
        ] {
            assert!(!shown.contains(key_text), "{shown}");
        }
        assert_eq!(format!("{s}"), "whsec_***");
    }
}
