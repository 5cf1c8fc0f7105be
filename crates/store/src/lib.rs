//! Persistence of subscriptions and the native resources created for them.
//!
//! SQLite (WAL, pooled) is the embedded default and Postgres the scale-out
//! store; both run the same migrations at connect time. Every function takes
//! the tenant and filters by it, so one tenant can never read or change
//! another's rows through this crate.

mod audit;
mod bulk;
mod changes;
pub mod cipher;
mod claims;
mod counts;
mod direct;
mod entity;
pub mod idempotency;
mod inline;
pub mod journal;
mod keys;
mod keyset;
mod locks;
mod natives;
mod pg_reads;
mod pg_warm;
pub mod reconciliation;
mod records;
pub mod relay;
mod script;
mod store;
mod subscriptions;
pub mod testing;
mod verifications;

pub use changes::{Claim, Close, NativeWrite, Progress};
pub use cipher::{Cipher, SecretKey};
pub use idempotency::Begin;
pub use journal::{NewOperation, Operation, Settle};
pub use locks::{AccountLock, lock_key};
pub use reconciliation::{AccountCheck, Pass, PassCursor, ReconciliationStatus};
pub use records::{AuditEntry, ListQuery, Page};
pub use relay::{
    Accepted, AcceptedClaimed, ClaimedDelivery, Delivery, DeliveryDetail, DeliveryFilter,
    DeliveryStatus, NewAttempt, NewEvent, NewRelayRoute, NextState, PruneCounts, Recorded,
    RelayAttempt, RelayEvent, RelayRoute,
};
pub use store::{Store, StoreOptions};
/// The domain records, defined in core; re-exported so the store's callers
/// need not name both crates.
pub use switchboard_core::record::{NativeRecord, SubscriptionRecord};
pub use verifications::{NewVerification, Verification};
