//! One router per resource (the svix-server layout).

pub mod audit;
pub mod catalog;
pub mod health;
pub mod reconciliation;
pub mod subscriptions;
