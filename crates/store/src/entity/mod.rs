//! sea-orm entities, private to the store: callers see [`crate::records`].

pub mod audit;
pub mod idempotency;
pub mod native_resource;
pub mod operation;
pub mod reconciliation_account;
pub mod reconciliation_pass;
pub mod relay_attempt;
pub mod relay_delivery;
pub mod relay_event;
pub mod relay_route;
pub mod subscription;
pub mod verification;
