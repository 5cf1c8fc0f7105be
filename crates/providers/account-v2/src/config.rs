//! `[providers.<key>]` for kind `account-v2`: API root, the two management
//! credentials and the webhook document's path.

use serde::Deserialize;
use switchboard_core::Secret;

/// Documented API root (providers.md §4.1).
pub const DEFAULT_BASE_URL: &str = "https://api.sendblue.co";

/// The v2 path of seed 004 and of the SDK up to 2025-11-14 (providers.md §4.2).
pub const DEFAULT_PATH: &str = "/api/v2/account/webhooks";

/// The path the current official clients use (sendblue-ts since 2025-12-10,
/// sendblue-py 1.33.0); same bodies as v2 (providers.md §4.2, INFERRED).
pub const V1_PATH: &str = "/api/account/webhooks";

/// Settings of one Sendblue provider instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountV2Config {
    /// API root; `path` is appended.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Sent as `sb-api-key-id` (providers.md §4.1).
    pub api_key_id: Secret,
    /// Sent as `sb-api-secret-key` (providers.md §4.1).
    pub api_secret_key: Secret,
    /// Path of the account's webhook document, starting with `/`.
    #[serde(default = "default_path")]
    pub path: String,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

fn default_path() -> String {
    DEFAULT_PATH.to_owned()
}

/// Whether `value` can travel as an HTTP header value unchanged: visible
/// ASCII with inner spaces, no control characters (RFC 9110 §5.5).
pub(crate) fn is_header_safe(value: &str) -> bool {
    !value.is_empty() && value.trim() == value && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

impl AccountV2Config {
    /// Parses the kind-specific keys; errors name the key path below the table.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        let cfg: Self = switchboard_core::config::parse_table(value)?;
        for (key, secret) in [
            ("api_key_id", &cfg.api_key_id),
            ("api_secret_key", &cfg.api_secret_key),
        ] {
            if !is_header_safe(secret.expose()) {
                return Err(format!(
                    "{key}: must be non-empty printable ASCII without surrounding spaces (it is sent as a header)"
                ));
            }
        }
        let path_ok = cfg.path.starts_with('/')
            && !cfg
                .path
                .contains(|c: char| c.is_whitespace() || c == '?' || c == '#');
        if !path_ok {
            return Err(format!(
                "path: must start with `/` and hold no spaces, query or fragment (e.g. `{DEFAULT_PATH}` or `{V1_PATH}`)"
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn defaults_and_v1_path() {
        let cfg = AccountV2Config::from_json(json!({"api_key_id": "k", "api_secret_key": "s"}))
            .expect("valid config");
        assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
        assert_eq!(cfg.path, DEFAULT_PATH);
        let cfg = AccountV2Config::from_json(
            json!({"api_key_id": "k", "api_secret_key": "s", "path": V1_PATH}),
        )
        .expect("valid config");
        assert_eq!(cfg.path, V1_PATH);
        assert!(!format!("{cfg:?}").contains("\"s\""));
    }

    #[test]
    fn errors_name_the_key() {
        let e = AccountV2Config::from_json(json!({"api_key_id": "k"})).unwrap_err();
        assert_eq!(e, "api_secret_key: is required");
        let e = AccountV2Config::from_json(json!({"api_key_id": "", "api_secret_key": "s"}))
            .unwrap_err();
        assert!(e.starts_with("api_key_id: "), "{e}");
        let e = AccountV2Config::from_json(json!({"api_key_id": "k", "api_secret_key": "a\nb"}))
            .unwrap_err();
        assert!(e.starts_with("api_secret_key: "), "{e}");
        let e = AccountV2Config::from_json(
            json!({"api_key_id": "k", "api_secret_key": "s", "path": "api/webhooks"}),
        )
        .unwrap_err();
        assert!(e.starts_with("path: "), "{e}");
        let e = AccountV2Config::from_json(
            json!({"api_key_id": "k", "api_secret_key": "s", "token": "x"}),
        )
        .unwrap_err();
        assert!(e.contains("token"), "{e}");
    }
}
