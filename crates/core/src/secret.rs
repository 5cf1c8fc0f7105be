//! `Secret`: a string that must never reach a log, a `Debug` dump or an API
//! response (callback passwords, bearer tokens, signing secrets, provider
//! credentials).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// A secret value. `Debug` and `Display` print `***`; the plaintext is only
/// reachable through [`Secret::expose`], which makes every use greppable.
///
/// It serializes as its plaintext so the store can persist it; API response
/// types never contain a `Secret` (they carry `*_set: bool` instead).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a plaintext secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the one place that must send or persist it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in characters, for limit checks that must not reveal the value.
    pub fn char_len(&self) -> usize {
        self.0.chars().count()
    }

    /// Constant-time comparison, for checking presented credentials.
    pub fn ct_eq(&self, other: &str) -> bool {
        self.0.as_bytes().ct_eq(other.as_bytes()).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Config from environment variables arrives typed: a numeric
        // password must not become a confusing "invalid type: integer".
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{s}"), "***");
        assert!(!format!("{:?}", Some(&s)).contains("hunter2"));
    }

    #[test]
    fn numbers_from_the_environment_are_secrets_too() {
        let s: Secret = serde_json::from_value(serde_json::json!(12345678)).unwrap();
        assert_eq!(s.expose(), "12345678");
        let s: Secret = serde_json::from_value(serde_json::json!("abc")).unwrap();
        assert_eq!(s.expose(), "abc");
        assert!(serde_json::from_value::<Secret>(serde_json::json!({"a": 1})).is_err());
    }

    #[test]
    fn constant_time_compare() {
        let s = Secret::new("abc");
        assert!(s.ct_eq("abc"));
        assert!(!s.ct_eq("abd"));
        assert!(!s.ct_eq("ab"));
    }
}
