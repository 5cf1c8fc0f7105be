//! `[providers.<key>]` for kind `telegent`: the API root and exactly one way
//! to authenticate management calls.

use serde::Deserialize;
use switchboard_core::Secret;

/// Documented API root (providers.md §1.1). The documented paths already
/// start with `/v1.0`, so the spec's `servers` URL
/// `https://api.telegent.com/v1.0` would double it.
pub const DEFAULT_BASE_URL: &str = "https://api.telegent.com";

/// How management calls get their `Authorization: Bearer` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Mint one token per endpoint with `POST /v1.0/oauth2/tokens`, cache
    /// it until shortly before `tokenExpiry` and re-mint once on a 401/403.
    AccountKey {
        /// `AccountKey` (`DID-…`): identifies the caller, like a user name.
        account_key: String,
        /// `AccountSecret`.
        account_secret: Secret,
    },
    /// A token minted elsewhere, sent as is and never re-minted. Telegent
    /// scopes a token to one `ApiEndpoint` (providers.md §1.1), so only a
    /// token the deployment's minting service made valid for every webhook
    /// endpoint works for all five operations.
    Token(Secret),
}

/// Settings of one Telegent provider instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegentConfig {
    /// API root without a trailing slash; paths `/v1.0/…` are appended.
    pub base_url: String,
    /// Management credentials.
    pub credentials: Credentials,
}

/// The table as written; [`TelegentConfig::from_json`] checks the
/// combination of keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default = "default_base_url")]
    base_url: String,
    account_key: Option<String>,
    account_secret: Option<Secret>,
    token: Option<Secret>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

impl TelegentConfig {
    /// Parses the kind-specific keys; errors name the key path below the
    /// table and never contain a credential.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        let raw: Raw = switchboard_core::config::parse_table(value)?;
        let base_url = check_base_url(&raw.base_url)?;
        let credentials = match (raw.account_key, raw.account_secret, raw.token) {
            (None, None, Some(token)) => {
                if token.expose().trim().is_empty() {
                    return Err("token: must not be empty".into());
                }
                Credentials::Token(token)
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(
                    "token: cannot be combined with account_key/account_secret; configure exactly one way to authenticate"
                        .into(),
                );
            }
            (Some(account_key), Some(account_secret), None) => {
                if account_key.trim().is_empty() {
                    return Err("account_key: must not be empty".into());
                }
                if account_secret.expose().trim().is_empty() {
                    return Err("account_secret: must not be empty".into());
                }
                Credentials::AccountKey {
                    account_key,
                    account_secret,
                }
            }
            (Some(_), None, None) => {
                return Err("account_secret: is required with account_key".into());
            }
            (None, Some(_), None) => {
                return Err("account_key: is required with account_secret".into());
            }
            (None, None, None) => {
                return Err(
                    "account_key: is required (with account_secret), or set token instead".into(),
                );
            }
        };
        Ok(Self {
            base_url,
            credentials,
        })
    }
}

/// An absolute http(s) URL, without a trailing slash and without the
/// `/v1.0` that every documented path already starts with.
fn check_base_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_end_matches('/');
    let uri: http::Uri = trimmed
        .parse()
        .map_err(|e| format!("base_url: is not a URL: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err("base_url: must be an absolute http or https URL".into());
    }
    if trimmed.to_ascii_lowercase().ends_with("/v1.0") {
        return Err(
            "base_url: must be the API root without `/v1.0` (e.g. https://api.telegent.com): every path already starts with /v1.0"
                .into(),
        );
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn account_key_and_secret() {
        let cfg =
            TelegentConfig::from_json(json!({"account_key": "DID-1", "account_secret": "s3cret"}))
                .unwrap();
        assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
        assert_eq!(
            cfg.credentials,
            Credentials::AccountKey {
                account_key: "DID-1".into(),
                account_secret: Secret::new("s3cret"),
            }
        );
        assert!(!format!("{cfg:?}").contains("s3cret"));
    }

    #[test]
    fn static_token_and_base_url() {
        let cfg = TelegentConfig::from_json(
            json!({"base_url": "http://127.0.0.1:9/", "token": "tok-123"}),
        )
        .unwrap();
        assert_eq!(cfg.base_url, "http://127.0.0.1:9");
        assert_eq!(cfg.credentials, Credentials::Token(Secret::new("tok-123")));
        assert!(!format!("{cfg:?}").contains("tok-123"));
    }

    #[test]
    fn exactly_one_way_to_authenticate() {
        let err = |v| TelegentConfig::from_json(v).unwrap_err();
        assert!(err(json!({})).starts_with("account_key: is required"));
        assert!(err(json!({"account_key": "DID-1"})).starts_with("account_secret:"));
        assert!(err(json!({"account_secret": "s"})).starts_with("account_key:"));
        let both = err(json!({"account_key": "DID-1", "account_secret": "s3cret", "token": "tok"}));
        assert!(both.starts_with("token: cannot be combined"), "{both}");
        assert!(!both.contains("s3cret") && !both.contains("\"tok\""));
        assert!(err(json!({"token": " "})).starts_with("token: must not be empty"));
        assert!(
            err(json!({"account_key": "DID-1", "account_secret": ""}))
                .starts_with("account_secret: must not be empty")
        );
        assert!(err(json!({"token": "t", "bogus": 1})).contains("bogus"));
    }

    #[test]
    fn base_url_must_be_the_root() {
        let err = |url: &str| TelegentConfig::from_json(json!({"token": "t", "base_url": url}));
        assert!(
            err("https://api.telegent.com/v1.0")
                .unwrap_err()
                .starts_with("base_url: must be the API root")
        );
        assert!(
            err("api.telegent.com")
                .unwrap_err()
                .starts_with("base_url:")
        );
        assert!(
            err("ftp://api.telegent.com")
                .unwrap_err()
                .starts_with("base_url:")
        );
        assert!(err("https://gateway.example.com/telegent").is_ok());
    }
}
