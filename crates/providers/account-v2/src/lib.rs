//! Sendblue account webhooks (kind `account-v2`): the whole account holds one
//! webhook configuration document of per-event-type buckets, and a
//! subscription owns one (bucket, URL) entry per event in it
//! (providers.md §4, seed 004).
//!
//! Entries have no ids; an entry's identity is the string `"<bucket> <url>"`
//! ([`translate::Entry::identity`]). Switchboard only appends (`POST`) and
//! removes (`DELETE`) its own entries and never uses the replace-all `PUT`,
//! so entries other tools configured survive every change. All writes to one
//! account are serialized by the engine (`Capabilities::serialize_account`).
//!
//! `translate` is pure (capabilities, plan, request builders, document
//! parsing, collision check, error classification); `adapter` sends through
//! the injected transport; `config` is the `[providers.<key>]` table for this
//! kind; `ingress` verifies deliveries in relay mode; [`kind`] is the
//! descriptor the registry lists; `simulator` (feature `simulator`) starts
//! the Sendblue simulator from these tables. See `docs.md`.

pub mod adapter;
pub mod config;
pub mod ingress;
#[cfg(feature = "simulator")]
pub mod simulator;
pub mod translate;

pub use adapter::AccountV2Adapter;
pub use config::AccountV2Config;
use switchboard_core::ProviderKind;

/// The kind name used in config (`kind = "account-v2"`).
pub const KIND: &str = "account-v2";

/// Kind `account-v2` as data, for the registry.
pub const fn kind() -> ProviderKind {
    switchboard_core::provider_kind!(
        KIND,
        translate,
        ingress,
        AccountV2Adapter(AccountV2Config),
        None
    )
}
