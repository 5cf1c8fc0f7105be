//! Subscriptions as code: a subscription's `key`, the stable name a team
//! gives it in its files, unique within the tenant.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Tenant,
    Key,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// The column and its unique index, spelled out; applied once, under
    /// the migration lock.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // NULL for a subscription without a key: both backends treat NULLs
        // as distinct in a unique index, so any number of rows have none.
        manager
            .alter_table(
                Table::alter()
                    .table(Subscriptions::Table)
                    .add_column(ColumnDef::new(Subscriptions::Key).string_len(128).null())
                    .to_owned(),
            )
            .await?;
        // The final guard of "one subscription per key and tenant", and the
        // lookup of `/v1/subscriptions/by-key/{key}`. The store recognises
        // its name in a unique violation.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_subscriptions_tenant_key")
                    .table(Subscriptions::Table)
                    .col(Subscriptions::Tenant)
                    .col(Subscriptions::Key)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
