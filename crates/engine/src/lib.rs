//! The use cases: plan (pure) → apply (upstream) → record (store).
//!
//! Every change goes through one routine, [`apply`], which diffs the
//! recorded native resources against the new plan and creates, updates and
//! deletes only what differs. Each completed native step is recorded at once,
//! and a failure undoes the steps this request already made, so the caller
//! gets the error and neither side keeps a half-applied change.
//!
//! Every change is journalled, then claimed in the store (status `pending`
//! under a version check, the version itself unchanged) before its first
//! upstream call: a second writer, in this process or another replica, gets
//! a 409 instead of interleaving upstream calls, and a change whose process
//! dies is finished or undone by recovery (`recovery.rs`). Reconciliation
//! (`reconcile.rs`) compares the recorded state with the provider's.

mod apply;
mod engine;
mod reconcile;
mod recovery;

pub use engine::{Detached, Engine, Preview, PreviewResource, ProviderInstance, SYSTEM_ACTOR};
