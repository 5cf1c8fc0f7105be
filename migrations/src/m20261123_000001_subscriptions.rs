//! Subscriptions and the native resources created for them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
    Tenant,
    Provider,
    Status,
    Spec,
    Warnings,
    LastError,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum NativeResources {
    Table,
    SubscriptionId,
    Tenant,
    Key,
    NativeId,
    Events,
    Status,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// The schema of these tables as one declarative listing, read top to
    /// bottom; it is long because every column and index is spelled out,
    /// not because it holds logic. Applied once, under the migration lock.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Subscriptions::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Subscriptions::Tenant)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Subscriptions::Provider)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Subscriptions::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Subscriptions::Spec).text().not_null())
                    .col(ColumnDef::new(Subscriptions::Warnings).text().not_null())
                    .col(ColumnDef::new(Subscriptions::LastError).text().null())
                    .col(
                        ColumnDef::new(Subscriptions::Version)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Subscriptions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Subscriptions::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Every list is tenant-scoped and keyset-paginated by id, optionally
        // filtered by provider or status: one index per access path.
        for (name, cols) in [
            (
                "idx_subscriptions_tenant_id",
                vec![Subscriptions::Tenant, Subscriptions::Id],
            ),
            (
                "idx_subscriptions_tenant_provider_id",
                vec![
                    Subscriptions::Tenant,
                    Subscriptions::Provider,
                    Subscriptions::Id,
                ],
            ),
            (
                "idx_subscriptions_tenant_status_id",
                vec![
                    Subscriptions::Tenant,
                    Subscriptions::Status,
                    Subscriptions::Id,
                ],
            ),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(Subscriptions::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(NativeResources::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(NativeResources::SubscriptionId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(NativeResources::Key)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(NativeResources::Tenant)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(NativeResources::NativeId)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(ColumnDef::new(NativeResources::Events).text().not_null())
                    .col(
                        ColumnDef::new(NativeResources::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(NativeResources::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(NativeResources::SubscriptionId)
                            .col(NativeResources::Key),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_native_resources_subscription")
                            .from(NativeResources::Table, NativeResources::SubscriptionId)
                            .to(Subscriptions::Table, Subscriptions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }
}
