//! Reconciliation by account: each subscription's provider account as a
//! real column with an index on (provider, account, id), so a pass can walk
//! the accounts and each account's subscriptions by seeks; the pass's
//! progress and resume point (`reconciliation_passes`); and what the last
//! check of each account found (`reconciliation_accounts`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Provider,
    Account,
    Id,
}

#[derive(DeriveIden)]
enum ReconciliationPasses {
    Table,
    Id,
    StartedAt,
    FinishedAt,
    Ticks,
    AccountsTotal,
    AccountsDone,
    SubscriptionsChecked,
    Findings,
    Repairs,
    UpstreamCalls,
    Errors,
    Cursors,
}

#[derive(DeriveIden)]
enum ReconciliationAccounts {
    Table,
    Provider,
    Account,
    PassId,
    CheckedAt,
    SubscriptionsChecked,
    Findings,
    Repairs,
    UpstreamCalls,
    ListCalls,
    Error,
}

/// A counter column: a non-negative integer starting at 0.
fn count(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .big_integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// The column, its index and the two tables, spelled out; applied
    /// once, under the migration lock.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // NULL until known: rows written before this column existed (or by
        // a writer that does not set it) get it from their sealed spec at
        // the next pass; `''` is "no account" (the credentials are the
        // account), so every known value compares and sorts.
        manager
            .alter_table(
                Table::alter()
                    .table(Subscriptions::Table)
                    .add_column(ColumnDef::new(Subscriptions::Account).text().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_subscriptions_provider_account_id")
                    .table(Subscriptions::Table)
                    .col(Subscriptions::Provider)
                    .col(Subscriptions::Account)
                    .col(Subscriptions::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReconciliationPasses::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ReconciliationPasses::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ReconciliationPasses::StartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReconciliationPasses::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(count(ReconciliationPasses::Ticks))
                    .col(count(ReconciliationPasses::AccountsTotal))
                    .col(count(ReconciliationPasses::AccountsDone))
                    .col(count(ReconciliationPasses::SubscriptionsChecked))
                    .col(count(ReconciliationPasses::Findings))
                    .col(count(ReconciliationPasses::Repairs))
                    .col(count(ReconciliationPasses::UpstreamCalls))
                    .col(count(ReconciliationPasses::Errors))
                    .col(
                        ColumnDef::new(ReconciliationPasses::Cursors)
                            .text()
                            .not_null()
                            .default("{}"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ReconciliationAccounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ReconciliationAccounts::Provider)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReconciliationAccounts::Account)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReconciliationAccounts::PassId)
                            .string_len(40)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ReconciliationAccounts::CheckedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(count(ReconciliationAccounts::SubscriptionsChecked))
                    .col(count(ReconciliationAccounts::Findings))
                    .col(count(ReconciliationAccounts::Repairs))
                    .col(count(ReconciliationAccounts::UpstreamCalls))
                    .col(count(ReconciliationAccounts::ListCalls))
                    .col(ColumnDef::new(ReconciliationAccounts::Error).text().null())
                    .primary_key(
                        Index::create()
                            .col(ReconciliationAccounts::Provider)
                            .col(ReconciliationAccounts::Account),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_reconciliation_accounts_checked_at")
                    .table(ReconciliationAccounts::Table)
                    .col(ReconciliationAccounts::CheckedAt)
                    .to_owned(),
            )
            .await
    }
}
