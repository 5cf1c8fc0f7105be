//! `[providers.<key>]` for kind `talkover`.

use serde::Deserialize;
use switchboard_core::Secret;

/// Documented API root (providers.md §2.1).
pub const DEFAULT_BASE_URL: &str = "https://app.talkover.ai/api/v1";

/// Settings of one Talkover provider instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TalkoverConfig {
    /// API root; paths `/agents/…` are appended.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The environment token (`talq_…`); it never expires (providers.md §2.1).
    pub token: Secret,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

impl TalkoverConfig {
    /// Parses the kind-specific keys; errors name the key path below the table.
    pub fn from_json(value: serde_json::Value) -> Result<Self, String> {
        let cfg: Self = switchboard_core::config::parse_table(value)?;
        if cfg.token.expose().trim().is_empty() {
            return Err("token: must not be empty".into());
        }
        Ok(cfg)
    }
}
