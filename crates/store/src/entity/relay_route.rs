//! `relay_routes`: the ingress route of each relay native.

use sea_orm::entity::prelude::*;

/// One route.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relay_routes")]
pub struct Model {
    /// SHA-256 (hex) of the route token; the token itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_sha256: String,
    /// Tenant of the subscription.
    pub tenant: String,
    /// The subscription the native belongs to.
    pub subscription_id: String,
    /// Plan key of the native resource.
    #[sea_orm(column_type = "Text")]
    pub native_key: String,
    /// Provider instance key.
    pub provider: String,
    /// The credential the native was registered with, sealed.
    #[sea_orm(column_type = "Text")]
    pub credential: String,
    /// The native events of the route's native, a JSON array.
    #[sea_orm(column_type = "Text")]
    pub events: String,
    /// Whether the subscription's deliveries are kept in order.
    pub ordered: bool,
    /// When the route was written.
    pub created_at: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
