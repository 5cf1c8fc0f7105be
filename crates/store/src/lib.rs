//! Persistence of subscriptions and the native resources created for them.
//!
//! SQLite (WAL, pooled) is the embedded default and Postgres the scale-out
//! store; both run the same migrations at connect time. Every function takes
//! the tenant and filters by it, so one tenant can never read or change
//! another's rows through this crate.

pub mod cipher;
mod entity;
pub mod idempotency;
pub mod journal;
mod records;
mod store;
pub mod testing;

pub use cipher::{Cipher, SecretKey};
pub use idempotency::Begin;
pub use journal::{NewOperation, Operation};
pub use records::{AuditEntry, ListQuery, NativeRecord, Page, SubscriptionRecord};
pub use store::{AccountLock, Store, StoreOptions, lock_key};
