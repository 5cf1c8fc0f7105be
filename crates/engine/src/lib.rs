//! The use cases: plan (pure) → apply (upstream) → record (store).
//!
//! Every change goes through one routine, [`apply`], which diffs the
//! recorded native resources against the new plan and creates, updates and
//! deletes only what differs. Each completed native step is recorded at once,
//! and a failure undoes the steps this request already made, so the caller
//! gets the error and neither side keeps a half-applied change.
//!
//! A change in progress is claimed in the store (status `pending`, version
//! bumped) before the first upstream call: a second writer, in this process
//! or another replica, gets a 409 instead of interleaving upstream calls.

mod apply;
mod engine;
mod reconcile;
mod recovery;

pub use engine::{Detached, Engine, Preview, PreviewResource, ProviderInstance, SYSTEM_ACTOR};
