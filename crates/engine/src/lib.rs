//! The use cases: plan (pure) → apply (upstream) → record (store).
//!
//! Every change, recovery and reconciliation included, is one `Change`
//! carried out by one pipeline (`change.rs`: journal → claim → lock →
//! apply → record or undo → close); the use cases (`engine.rs`) differ only
//! in the plans they want. `apply` (`apply.rs`) diffs the recorded native
//! resources against the wanted plans and creates, updates and deletes only
//! what differs. Each completed native step is written before the next
//! request that may change the provider, or with the change's result
//! (`progress.rs`: a create is two transactions), and a failure undoes the steps this change already made, so the caller gets
//! the error and neither side keeps a half-applied change.
//!
//! Every change is journalled, then claimed in the store (status `pending`
//! under a version check, the version itself unchanged) before its first
//! upstream call: a second writer, in this process or another replica, gets
//! a 409 instead of interleaving upstream calls, and a change whose process
//! dies is finished or undone by recovery (`recovery.rs`). Reconciliation
//! (`reconcile.rs`) compares the recorded state with the provider's, one
//! subscription on request or, in the background pass (`pass.rs`), every
//! subscription of an account against one listing of it.
//!
//! Subscriptions by key (`keyed.rs`) compare a desired state with the
//! stored one through apply's own diff, nothing sent: what a `PUT` by key
//! changes (or leaves alone) and what a keyed preview reports.
//!
//! Every adapter call goes through `observe.rs`, which traces, counts and
//! remembers it (the metrics are named in `switchboard_telemetry`).
//!
//! An upstream request whose answer never came may still have been
//! applied: `step.rs` journals such a step as `unknown` and resolves it by
//! looking at the provider before it retries or undoes; the sweep
//! (`sweep.rs`) looks again for a while and removes or adopts what lands
//! later still.

mod apply;
mod change;
mod deliveries;
mod engine;
mod ingest;
mod keyed;
mod observe;
mod outbox;
mod pass;
mod progress;
mod reconcile;
mod recovery;
mod relay;
mod step;
mod sweep;

pub use deliveries::{DeliveryRecord, Envelope, TEST_EVENT_MESSAGE, TEST_EVENT_TYPE, envelope_of};
pub use engine::{Detached, Engine, Preview, PreviewResource, ProviderInstance, SYSTEM_ACTOR};
pub use ingest::{IngestError, Ingested, IngressRoute, RouteCache};
pub use keyed::{Action, NativeAction, NativeOperation};
pub use observe::{LastCall, UpstreamHealth};
pub use outbox::{DeliveryPolicy, DeliveryReport, DeliveryWorker, Maintenance};
pub use pass::{ReconcilePolicy, TickReport};
pub use relay::{INGRESS_PATH, RelayCapabilities, RelayRuntime, RelaySettings};
pub use step::StepPolicy;
