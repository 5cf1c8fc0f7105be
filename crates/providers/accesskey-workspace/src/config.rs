//! `[providers.<key>]` for kind `accesskey-workspace`: API root, the
//! AccessKey and the optional organization path segment.

use serde::Deserialize;
use switchboard_core::{AccountShape, Secret};

/// Documented API root (providers.md §3.1, Bird "common API usage").
pub const DEFAULT_BASE_URL: &str = "https://api.bird.com";

/// Settings of one Bird provider instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeyWorkspaceConfig {
    /// API root; paths `[/organizations/{org}]/workspaces/…` are appended.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Sent as `Authorization: AccessKey <access_key>` (seed 003).
    pub access_key: Secret,
    /// When set, every path is prefixed with `/organizations/{organization_id}`,
    /// the newer "webhook-subscriptions" path form (providers.md §3.1); when
    /// absent the seed's workspace-only form is used. A UUID, as Bird's
    /// `organizationId` is in every example (seed 003).
    #[serde(default)]
    pub organization_id: Option<String>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

impl AccessKeyWorkspaceConfig {
    /// Parses the kind-specific keys; errors name the key path below the table.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        let cfg: Self = switchboard_core::config::parse_table(value)?;
        if cfg.access_key.expose().trim().is_empty() {
            return Err("access_key: must not be empty".into());
        }
        if !(cfg.base_url.starts_with("https://") || cfg.base_url.starts_with("http://")) {
            return Err(format!(
                "base_url: must be an http(s) URL such as {DEFAULT_BASE_URL}"
            ));
        }
        if let Some(org) = &cfg.organization_id {
            if org.trim().is_empty() {
                return Err("organization_id: must not be empty; omit the key instead".into());
            }
            // It is a path segment of every call: a UUID cannot add or
            // remove one.
            if !AccountShape::Uuid.matches(org) {
                return Err(format!(
                    "organization_id: must be {}",
                    AccountShape::Uuid.describe()
                ));
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_required_keys() {
        let cfg = AccessKeyWorkspaceConfig::from_json(json!({"access_key": "ak"})).unwrap();
        assert_eq!(cfg.base_url, DEFAULT_BASE_URL);
        assert_eq!(cfg.access_key.expose(), "ak");
        assert_eq!(cfg.organization_id, None);
        assert!(!format!("{cfg:?}").contains("\"ak\""));

        let err = AccessKeyWorkspaceConfig::from_json(json!({})).unwrap_err();
        assert_eq!(err, "access_key: is required");
        let err = AccessKeyWorkspaceConfig::from_json(json!({"access_key": " "})).unwrap_err();
        assert!(err.starts_with("access_key:"), "{err}");
    }

    const ORG: &str = "cb28a94e-8557-4394-80ea-5bbd2170d434";

    #[test]
    fn organization_and_unknown_keys() {
        let cfg = AccessKeyWorkspaceConfig::from_json(
            json!({"access_key": "ak", "organization_id": ORG, "base_url": "http://127.0.0.1:1"}),
        )
        .unwrap();
        assert_eq!(cfg.organization_id.as_deref(), Some(ORG));
        assert_eq!(cfg.base_url, "http://127.0.0.1:1");
        let err =
            AccessKeyWorkspaceConfig::from_json(json!({"access_key": "ak", "organization_id": ""}))
                .unwrap_err();
        assert!(err.starts_with("organization_id:"), "{err}");
        for bad in [
            "org-1",
            "..",
            "cb28a94e-8557-4394-80ea-5bbd2170d434/..",
            "a/b",
        ] {
            let err = AccessKeyWorkspaceConfig::from_json(
                json!({"access_key": "ak", "organization_id": bad}),
            )
            .unwrap_err();
            assert!(
                err.starts_with("organization_id: must be a UUID"),
                "{bad}: {err}"
            );
        }
        let err = AccessKeyWorkspaceConfig::from_json(json!({"access_key": "ak", "token": "x"}))
            .unwrap_err();
        assert!(err.contains("token"), "{err}");
        let err = AccessKeyWorkspaceConfig::from_json(
            json!({"access_key": "ak", "base_url": "api.bird.com"}),
        )
        .unwrap_err();
        assert!(err.starts_with("base_url:"), "{err}");
    }
}
