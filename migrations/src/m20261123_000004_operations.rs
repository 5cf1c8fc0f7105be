//! The operations journal: every change, written before its first upstream
//! call, with its steps and outcome, so a crashed change can be resumed or
//! undone and the history shown.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Operations {
    Table,
    Id,
    Tenant,
    SubscriptionId,
    Kind,
    Actor,
    State,
    BeforeSpec,
    AfterSpec,
    Steps,
    Error,
    StartedAt,
    FinishedAt,
    LeaseUntil,
    Owner,
}

#[derive(DeriveIden)]
enum NativeResources {
    Table,
    NativeId,
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
                    .table(Operations::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Operations::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Operations::Tenant)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Operations::SubscriptionId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Operations::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Operations::Actor).string_len(128).not_null())
                    .col(ColumnDef::new(Operations::State).string_len(16).not_null())
                    .col(ColumnDef::new(Operations::BeforeSpec).text().null())
                    .col(ColumnDef::new(Operations::AfterSpec).text().null())
                    .col(ColumnDef::new(Operations::Steps).text().not_null())
                    .col(ColumnDef::new(Operations::Error).text().null())
                    .col(
                        ColumnDef::new(Operations::StartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Operations::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Operations::LeaseUntil)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Operations::Owner)
                            .string_len(40)
                            .not_null()
                            .default(""),
                    )
                    .to_owned(),
            )
            .await?;
        // History of one subscription; and the recovery scan of running ones.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_operations_subscription")
                    .table(Operations::Table)
                    .col(Operations::Tenant)
                    .col(Operations::SubscriptionId)
                    .col(Operations::Id)
                    .to_owned(),
            )
            .await?;
        // Recovery asks whether anything recorded a given native id.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_native_resources_native_id")
                    .table(NativeResources::Table)
                    .col(NativeResources::NativeId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_operations_state_lease")
                    .table(Operations::Table)
                    .col(Operations::State)
                    .col(Operations::LeaseUntil)
                    .to_owned(),
            )
            .await
    }
}
