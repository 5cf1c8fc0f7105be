//! One router per resource (the svix-server layout).

pub mod audit;
pub mod catalog;
pub mod deliveries;
pub mod health;
pub mod ingress;
pub mod reconciliation;
pub mod subscriptions;
