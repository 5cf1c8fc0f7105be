//! Shared parsing of a provider's `[providers.<key>]` table: every adapter
//! deserializes its own typed config from it, and errors carry the key path.

use serde::de::DeserializeOwned;

/// Deserializes a provider table; the error starts with the offending key
/// (`token: is required`), so the caller can prefix `providers.<key>.`.
pub fn parse_table<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.inner().to_string();
        // serde names a missing key in the message, at its parent's path.
        if let Some(rest) = msg.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or_default();
            return if path == "." {
                format!("{field}: is required")
            } else {
                format!("{path}.{field}: is required")
            };
        }
        if path == "." {
            msg
        } else {
            format!("{path}: {msg}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        token: String,
        limit: Option<u32>,
    }

    #[test]
    fn errors_start_with_the_key() {
        let e = parse_table::<T>(serde_json::json!({})).unwrap_err();
        assert_eq!(e, "token: is required");
        let e = parse_table::<T>(serde_json::json!({"token": "x", "limit": "many"})).unwrap_err();
        assert!(e.starts_with("limit: "), "{e}");
        let e = parse_table::<T>(serde_json::json!({"token": "x", "bogus": 1})).unwrap_err();
        assert!(e.contains("bogus"), "{e}");
    }
}
