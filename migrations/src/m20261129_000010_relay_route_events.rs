//! Relay routes learn the native events their native was registered for:
//! a provider whose deliveries do not name their event (Telegent) relays
//! a native of one event, and the ingress reads that event from the route
//! without another lookup, and whether the subscription keeps its
//! deliveries in order, which the ingress stamps on each delivery.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RelayRoutes {
    Table,
    Events,
    Ordered,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// A JSON array of native event names (`[]` for routes written before)
    /// and the ordered flag.
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RelayRoutes::Table)
                    .add_column(
                        ColumnDef::new(RelayRoutes::Events)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await?;
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(RelayRoutes::Table)
                    .add_column(
                        ColumnDef::new(RelayRoutes::Ordered)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await
    }
}
