//! Provider kinds this build knows, and the construction of one adapter per
//! `[providers.<key>]` table.

use std::sync::Arc;

use switchboard_core::{ProviderAdapter, Transport};
use switchboard_engine::ProviderInstance;

use crate::config::ProviderConfig;

/// Every kind this build can serve.
pub const KINDS: [&str; 1] = [switchboard_talkover::KIND];

/// Builds the adapter for one provider table; errors name the key path.
pub fn build(
    key: &str,
    cfg: &ProviderConfig,
    transport: Arc<dyn Transport>,
) -> Result<ProviderInstance, String> {
    let table = serde_json::Value::Object(cfg.settings.clone().into_iter().collect());
    let at = |e: String| format!("providers.{key}.{e}");
    let adapter: Arc<dyn ProviderAdapter> = match cfg.kind.as_str() {
        switchboard_talkover::KIND => {
            let c = switchboard_talkover::TalkoverConfig::from_json(table).map_err(at)?;
            Arc::new(switchboard_talkover::TalkoverAdapter::new(
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
