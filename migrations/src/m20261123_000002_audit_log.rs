//! The audit log: who changed what, when, with which outcome.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Tenant,
    Actor,
    SubscriptionId,
    Operation,
    Diff,
    Outcome,
    RequestId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AuditLog::Id)
                            .string_len(40)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditLog::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditLog::Tenant).string_len(128).not_null())
                    .col(ColumnDef::new(AuditLog::Actor).string_len(128).not_null())
                    .col(
                        ColumnDef::new(AuditLog::SubscriptionId)
                            .string_len(40)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(AuditLog::Operation)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditLog::Diff).text().not_null())
                    .col(ColumnDef::new(AuditLog::Outcome).string_len(255).not_null())
                    .col(ColumnDef::new(AuditLog::RequestId).string_len(64).null())
                    .to_owned(),
            )
            .await?;
        // Admins page the whole log by id or one tenant's by (tenant, id).
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("idx_audit_log_tenant_id")
                    .table(AuditLog::Table)
                    .col(AuditLog::Tenant)
                    .col(AuditLog::Id)
                    .to_owned(),
            )
            .await
    }
}
