//! Relay mode (issue 13): the ingress routes of relay natives, the events
//! accepted at the ingress, the outbox of their deliveries to subscribers,
//! and the log of delivery attempts.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RelayRoutes {
    Table,
    TokenSha256,
    Tenant,
    SubscriptionId,
    NativeKey,
    Provider,
    Credential,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RelayEvents {
    Table,
    Id,
    Tenant,
    SubscriptionId,
    EventType,
    Provider,
    OccurredAt,
    ReceivedAt,
    Payload,
    DedupKey,
}

#[derive(DeriveIden)]
enum RelayDeliveries {
    Table,
    Id,
    EventId,
    WebhookId,
    Tenant,
    SubscriptionId,
    EventType,
    Ordered,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LeasedBy,
    LastStatusCode,
    LastError,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RelayAttempts {
    Table,
    Id,
    DeliveryId,
    Attempt,
    StartedAt,
    LatencyMs,
    StatusCode,
    Outcome,
    ResponseExcerpt,
    Error,
}

fn id(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(40).not_null().to_owned()
}

fn tenant(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c).string_len(128).not_null().to_owned()
}

fn time(c: impl IntoIden) -> ColumnDef {
    ColumnDef::new(c)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut i = Index::create();
    i.if_not_exists().name(name).table(table);
    for col in cols {
        i.col(col);
    }
    i.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// The four tables and their indexes, spelled out; applied once, under
    /// the migration lock.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        routes(manager).await?;
        events(manager).await?;
        deliveries(manager).await?;
        attempts(manager).await
    }
}

/// One row per relay native: the hashed route token is the key the
/// ingress looks up; the credential is sealed by the store.
async fn routes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RelayRoutes::Table)
                .if_not_exists()
                .col(
                    ColumnDef::new(RelayRoutes::TokenSha256)
                        .string_len(64)
                        .not_null()
                        .primary_key(),
                )
                .col(tenant(RelayRoutes::Tenant))
                .col(id(RelayRoutes::SubscriptionId))
                .col(ColumnDef::new(RelayRoutes::NativeKey).text().not_null())
                .col(
                    ColumnDef::new(RelayRoutes::Provider)
                        .string_len(128)
                        .not_null(),
                )
                .col(ColumnDef::new(RelayRoutes::Credential).text().not_null())
                .col(time(RelayRoutes::CreatedAt))
                .to_owned(),
        )
        .await?;
    // One route per native (a new one replaces it), and the deletes by
    // subscription and by native.
    manager
        .create_index(
            index(
                "idx_relay_routes_native",
                RelayRoutes::Table,
                vec![
                    RelayRoutes::SubscriptionId.into_iden(),
                    RelayRoutes::NativeKey.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await
}

async fn events(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RelayEvents::Table)
                .if_not_exists()
                .col(id(RelayEvents::Id).primary_key())
                .col(tenant(RelayEvents::Tenant))
                .col(id(RelayEvents::SubscriptionId))
                .col(
                    ColumnDef::new(RelayEvents::EventType)
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RelayEvents::Provider)
                        .string_len(128)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RelayEvents::OccurredAt)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(time(RelayEvents::ReceivedAt))
                .col(ColumnDef::new(RelayEvents::Payload).text().not_null())
                .col(ColumnDef::new(RelayEvents::DedupKey).text().not_null())
                .to_owned(),
        )
        .await?;
    // A provider's retry of an accepted delivery is refused atomically by
    // this index; the store recognises its name in the violation.
    manager
        .create_index(
            index(
                "idx_relay_events_dedup",
                RelayEvents::Table,
                vec![
                    RelayEvents::SubscriptionId.into_iden(),
                    RelayEvents::DedupKey.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
    // Replay: a subscription's events received since a time.
    manager
        .create_index(index(
            "idx_relay_events_received",
            RelayEvents::Table,
            vec![
                RelayEvents::SubscriptionId.into_iden(),
                RelayEvents::ReceivedAt.into_iden(),
            ],
        ))
        .await
}

async fn deliveries(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RelayDeliveries::Table)
                .if_not_exists()
                .col(id(RelayDeliveries::Id).primary_key())
                .col(id(RelayDeliveries::EventId))
                .col(id(RelayDeliveries::WebhookId))
                .col(tenant(RelayDeliveries::Tenant))
                .col(id(RelayDeliveries::SubscriptionId))
                .col(
                    ColumnDef::new(RelayDeliveries::EventType)
                        .string_len(255)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RelayDeliveries::Ordered)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(RelayDeliveries::Status)
                        .string_len(16)
                        .not_null(),
                )
                .col(
                    ColumnDef::new(RelayDeliveries::Attempts)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .col(time(RelayDeliveries::NextAttemptAt))
                .col(
                    ColumnDef::new(RelayDeliveries::LeaseUntil)
                        .timestamp_with_time_zone()
                        .null(),
                )
                .col(
                    ColumnDef::new(RelayDeliveries::LeasedBy)
                        .string_len(128)
                        .null(),
                )
                .col(
                    ColumnDef::new(RelayDeliveries::LastStatusCode)
                        .integer()
                        .null(),
                )
                .col(ColumnDef::new(RelayDeliveries::LastError).text().null())
                .col(time(RelayDeliveries::CreatedAt))
                .col(time(RelayDeliveries::UpdatedAt))
                .to_owned(),
        )
        .await?;
    let t = || RelayDeliveries::Table;
    // Claiming (status, due time) and, for finished deliveries, whose
    // `next_attempt_at` is their finish time, retention; the outbox depth.
    manager
        .create_index(index(
            "idx_relay_deliveries_due",
            t(),
            vec![
                RelayDeliveries::Status.into_iden(),
                RelayDeliveries::NextAttemptAt.into_iden(),
            ],
        ))
        .await?;
    // Listing a subscription's deliveries by id.
    manager
        .create_index(index(
            "idx_relay_deliveries_list",
            t(),
            vec![
                RelayDeliveries::Tenant.into_iden(),
                RelayDeliveries::SubscriptionId.into_iden(),
                RelayDeliveries::Id.into_iden(),
            ],
        ))
        .await?;
    // Ordered delivery: is an older delivery of the subscription open?
    manager
        .create_index(index(
            "idx_relay_deliveries_open",
            t(),
            vec![
                RelayDeliveries::SubscriptionId.into_iden(),
                RelayDeliveries::Status.into_iden(),
                RelayDeliveries::Id.into_iden(),
            ],
        ))
        .await?;
    // An event's deliveries (replay, retention of events).
    manager
        .create_index(index(
            "idx_relay_deliveries_event",
            t(),
            vec![RelayDeliveries::EventId.into_iden()],
        ))
        .await
}

async fn attempts(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table(RelayAttempts::Table)
                .if_not_exists()
                .col(id(RelayAttempts::Id).primary_key())
                .col(id(RelayAttempts::DeliveryId))
                .col(ColumnDef::new(RelayAttempts::Attempt).integer().not_null())
                .col(time(RelayAttempts::StartedAt))
                .col(
                    ColumnDef::new(RelayAttempts::LatencyMs)
                        .big_integer()
                        .not_null(),
                )
                .col(ColumnDef::new(RelayAttempts::StatusCode).integer().null())
                .col(
                    ColumnDef::new(RelayAttempts::Outcome)
                        .string_len(32)
                        .not_null(),
                )
                .col(ColumnDef::new(RelayAttempts::ResponseExcerpt).text().null())
                .col(ColumnDef::new(RelayAttempts::Error).text().null())
                .to_owned(),
        )
        .await?;
    manager
        .create_index(index(
            "idx_relay_attempts_delivery",
            RelayAttempts::Table,
            vec![
                RelayAttempts::DeliveryId.into_iden(),
                RelayAttempts::Id.into_iden(),
            ],
        ))
        .await
}
