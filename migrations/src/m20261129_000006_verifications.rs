//! Unknown outcomes: when the requests of a running change can no longer
//! land (`operations.settle_at`), and the steps whose outcome was unknown,
//! which the sweep re-verifies for a while (`verifications`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Operations {
    Table,
    SettleAt,
}

#[derive(DeriveIden)]
enum Verifications {
    Table,
    Id,
    OpId,
    Tenant,
    SubscriptionId,
    Key,
    Action,
    NativeId,
    FromBefore,
    NotBefore,
    Until,
    NextCheckAt,
    Checks,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// The column and the table, spelled out; applied once, under the
    /// migration lock.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Operations::Table)
                    .add_column(
                        ColumnDef::new(Operations::SettleAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        let ts = |c: Verifications| {
            ColumnDef::new(c)
                .timestamp_with_time_zone()
                .not_null()
                .to_owned()
        };
        manager
            .create_table(
                Table::create()
                    .table(Verifications::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Verifications::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Verifications::OpId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Verifications::Tenant)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Verifications::SubscriptionId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Verifications::Key).text().not_null())
                    .col(
                        ColumnDef::new(Verifications::Action)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Verifications::NativeId).text().null())
                    .col(
                        ColumnDef::new(Verifications::FromBefore)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ts(Verifications::NotBefore))
                    .col(ts(Verifications::Until))
                    .col(ts(Verifications::NextCheckAt))
                    .col(
                        ColumnDef::new(Verifications::Checks)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweep takes the due ones in order.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_verifications_next_check")
                    .table(Verifications::Table)
                    .col(Verifications::NextCheckAt)
                    .to_owned(),
            )
            .await
    }
}
