//! Provider kinds this build knows, and the construction of one adapter per
//! `[providers.<key>]` table. Adding a kind is one arm here plus its crate.

use std::sync::Arc;

use switchboard_core::{ProviderAdapter, Transport};
use switchboard_engine::ProviderInstance;

use crate::config::ProviderConfig;

/// Every kind this build can serve.
pub const KINDS: [&str; 4] = [
    switchboard_telegent::KIND,
    switchboard_talkover::KIND,
    switchboard_accesskey_workspace::KIND,
    switchboard_account_v2::KIND,
];

/// The request budget a kind gets when its table sets none: Telegent's
/// standard tier allows 50 requests a minute (providers.md §1.6).
pub fn default_rate_limit(kind: &str) -> Option<u32> {
    (kind == switchboard_telegent::KIND)
        .then_some(switchboard_telegent::DEFAULT_RATE_LIMIT_PER_MINUTE)
}

/// Builds the adapter for one provider table; errors name the key path.
pub fn build(
    key: &str,
    cfg: &ProviderConfig,
    transport: Arc<dyn Transport>,
) -> Result<ProviderInstance, String> {
    let table = serde_json::Value::Object(cfg.settings.clone().into_iter().collect());
    let at = |e: String| format!("providers.{key}.{e}");
    let adapter: Arc<dyn ProviderAdapter> = match cfg.kind.as_str() {
        switchboard_telegent::KIND => {
            let c = switchboard_telegent::TelegentConfig::from_json(table).map_err(at)?;
            Arc::new(switchboard_telegent::TelegentAdapter::new(
                key, c, transport,
            ))
        }
        switchboard_talkover::KIND => {
            let c = switchboard_talkover::TalkoverConfig::from_json(table).map_err(at)?;
            Arc::new(switchboard_talkover::TalkoverAdapter::new(
                key, c, transport,
            ))
        }
        switchboard_accesskey_workspace::KIND => {
            let c = switchboard_accesskey_workspace::AccessKeyWorkspaceConfig::from_json(table)
                .map_err(at)?;
            Arc::new(
                switchboard_accesskey_workspace::AccessKeyWorkspaceAdapter::new(key, c, transport),
            )
        }
        switchboard_account_v2::KIND => {
            let c = switchboard_account_v2::AccountV2Config::from_json(table).map_err(at)?;
            Arc::new(switchboard_account_v2::AccountV2Adapter::new(
                key, c, transport,
            ))
        }
        other => {
            return Err(format!(
                "providers.{key}.kind: `{other}` is not a provider kind of this build; known: {}",
                KINDS.join(", ")
            ));
        }
    };
    Ok(ProviderInstance {
        key: key.to_owned(),
        adapter,
    })
}
