//! Talkover.ai agent webhooks (kind `talkover`): a subscription is one
//! native webhook under `/agents/{agent_id}/webhooks` (providers.md §2).
//!
//! `translate` is pure (capabilities, plan, request builders, response and
//! error parsing); `adapter` sends through the injected transport; `config`
//! is the `[providers.<key>]` table for this kind; `ingress` verifies
//! deliveries in relay mode; [`kind`] is the descriptor the registry
//! lists; `simulator` (feature `simulator`) starts the Talkover simulator
//! from these tables.

pub mod adapter;
pub mod config;
pub mod ingress;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod translate;

pub use adapter::TalkoverAdapter;
pub use config::TalkoverConfig;
use switchboard_core::ProviderKind;

/// The kind name used in config (`kind = "talkover"`).
pub const KIND: &str = "talkover";

/// Kind `talkover` as data, for the registry.
pub const fn kind() -> ProviderKind {
    switchboard_core::provider_kind!(
        KIND,
        translate,
        ingress,
        TalkoverAdapter(TalkoverConfig),
        None
    )
}
