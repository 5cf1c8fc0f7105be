//! Bird AccessKey notifications API (kind `accesskey-workspace`): webhook
//! subscriptions under `[/organizations/{organizationId}]/workspaces/{workspaceId}/webhook-subscriptions`
//! (providers.md §3, seed 003).
//!
//! Bird carries exactly one `service` + `event` per subscription, so a
//! normalized subscription with N events fans out into N native
//! subscriptions that share url, `signingKey`, `eventFilters` and
//! `template`; each plan is keyed by its native event name, so the engine
//! diffs, creates, deletes and undoes them one by one.
//!
//! `translate` is pure (capabilities, plan, URL rule, request builders,
//! response and error parsing); `adapter` sends through the injected
//! transport; `config` is the `[providers.<key>]` table for this kind;
//! `verify` checks Bird's delivery signatures and `ingress` builds the relay
//! mode's check on it; [`kind`] is the descriptor the registry lists;
//! `simulator` (feature `simulator`) starts the Bird simulator from these
//! tables. See `docs.md`.

pub mod adapter;
pub mod config;
pub mod ingress;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod translate;
pub mod verify;

pub use adapter::AccessKeyWorkspaceAdapter;
pub use config::AccessKeyWorkspaceConfig;
use switchboard_core::ProviderKind;

/// The kind name used in config (`kind = "accesskey-workspace"`).
pub const KIND: &str = "accesskey-workspace";

/// Kind `accesskey-workspace` as data, for the registry.
pub const fn kind() -> ProviderKind {
    switchboard_core::provider_kind!(
        KIND,
        translate,
        ingress,
        AccessKeyWorkspaceAdapter(AccessKeyWorkspaceConfig),
        None
    )
}
