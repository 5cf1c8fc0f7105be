//! Talkover.ai agent webhooks (kind `talkover`): a subscription is one
//! native webhook under `/agents/{agent_id}/webhooks` (providers.md §2).
//!
//! `translate` is pure (capabilities, plan, request builders, response and
//! error parsing); `adapter` sends through the injected transport; `config`
//! is the `[providers.<key>]` table for this kind. See `docs.md`.

pub mod adapter;
pub mod config;
pub mod translate;

pub use adapter::TalkoverAdapter;
pub use config::TalkoverConfig;

/// The kind name used in config (`kind = "talkover"`).
pub const KIND: &str = "talkover";
