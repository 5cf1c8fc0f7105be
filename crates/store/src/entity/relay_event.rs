//! `relay_events`: deliveries accepted at the ingress, as normalized events.

use sea_orm::entity::prelude::*;

/// One accepted event.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relay_events")]
pub struct Model {
    /// `evt_<ulid>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Tenant of the subscription.
    pub tenant: String,
    /// The subscription whose native received it.
    pub subscription_id: String,
    /// Normalized event name, or `native:<name>`.
    pub event_type: String,
    /// Provider instance key.
    pub provider: String,
    /// When it happened, as the provider says.
    pub occurred_at: Option<DateTimeUtc>,
    /// When the ingress accepted it.
    pub received_at: DateTimeUtc,
    /// The provider's JSON body as received.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    /// Provider delivery/event id, or a content hash; unique per subscription.
    #[sea_orm(column_type = "Text")]
    pub dedup_key: String,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
