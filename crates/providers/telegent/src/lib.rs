//! Telegent mPaaS webhooks (kind `telegent`): a subscription is one native
//! webhook per ≤ 255-character chunk of its comma-joined event list, managed
//! through `POST /v1.0/webhook/{create,update,delete}`, `GET /v1.0/webhook`
//! and `GET /v1.0/account/webhooks` with an OAuth2 bearer token minted per
//! endpoint (providers.md §1).
//!
//! `translate` is pure (capabilities, plan, request builders, token and
//! response parsing, error classification); `adapter` sends through the
//! injected transport and owns the per-endpoint token cache; `config` is the
//! `[providers.<key>]` table for this kind; `ingress` verifies deliveries
//! in relay mode; [`kind`] is the descriptor the registry lists;
//! `simulator` (feature `simulator`) starts the Telegent simulator from
//! these tables. See `docs.md`.

pub mod adapter;
pub mod config;
pub mod ingress;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod translate;

pub use adapter::TelegentAdapter;
pub use config::{Credentials, TelegentConfig};
use switchboard_core::ProviderKind;

/// The kind name used in config (`kind = "telegent"`).
pub const KIND: &str = "telegent";

/// Telegent's Standard-tier limit, 50 requests per minute (providers.md
/// §1.6, knowledge bank). Applied per provider instance to every request,
/// token minting included, when the config sets no `rate_limit_per_minute`.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 50;

/// Kind `telegent` as data, for the registry.
pub const fn kind() -> ProviderKind {
    switchboard_core::provider_kind!(
        KIND,
        translate,
        ingress,
        TelegentAdapter(TelegentConfig),
        Some(DEFAULT_RATE_LIMIT_PER_MINUTE)
    )
}
