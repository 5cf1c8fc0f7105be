//! Switchboard's schema, one migration set for SQLite and Postgres.
//! Migrations run at start-up (and with `switchboard migrate`).

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_subscriptions;
mod m20261123_000002_audit_log;
mod m20261123_000003_idempotency;
mod m20261123_000004_operations;
mod m20261123_000005_reconciliation;
mod m20261129_000006_verifications;
mod m20261129_000007_reconciliation_by_account;
mod m20261129_000008_subscription_keys;
mod m20261129_000009_relay;
mod m20261129_000010_relay_route_events;

/// All migrations in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_subscriptions::Migration),
            Box::new(m20261123_000002_audit_log::Migration),
            Box::new(m20261123_000003_idempotency::Migration),
            Box::new(m20261123_000004_operations::Migration),
            Box::new(m20261123_000005_reconciliation::Migration),
            Box::new(m20261129_000006_verifications::Migration),
            Box::new(m20261129_000007_reconciliation_by_account::Migration),
            Box::new(m20261129_000008_subscription_keys::Migration),
            Box::new(m20261129_000009_relay::Migration),
            Box::new(m20261129_000010_relay_route_events::Migration),
        ]
    }
}
