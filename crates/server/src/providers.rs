//! The provider instances of this process: one adapter per
//! `[providers.<key>]` table, built through the kind registry
//! (`switchboard_registry`). No kind is named here; a new kind is a line in
//! the registry, not an arm in the server.

use std::sync::Arc;

use switchboard_core::Transport;
use switchboard_engine::ProviderInstance;

use crate::config::ProviderConfig;

/// Builds the adapter for one provider table; errors name the key path.
pub fn build(
    key: &str,
    cfg: &ProviderConfig,
    transport: Arc<dyn Transport>,
) -> Result<ProviderInstance, String> {
    let adapter = switchboard_registry::build(key, &cfg.kind, cfg.table(), transport)?;
    Ok(ProviderInstance {
        key: key.to_owned(),
        adapter,
        ingress: switchboard_registry::find(&cfg.kind).map(|k| k.ingress),
    })
}

/// The request budget of one provider instance: its table's
/// `rate_limit_per_minute`, else its kind's documented default (Telegent's
/// 50 a minute), else none.
pub fn rate_limit(cfg: &ProviderConfig) -> Option<u32> {
    cfg.rate_limit_per_minute.or_else(|| {
        switchboard_registry::find(&cfg.kind).and_then(|k| k.default_rate_limit_per_minute)
    })
}
