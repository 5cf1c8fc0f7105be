//! `native_resources`: every native handle created for a subscription,
//! keyed by the plan key, so update, disable and delete touch exactly these.

use sea_orm::entity::prelude::*;

/// A native resource row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "native_resources")]
pub struct Model {
    /// Owning subscription.
    #[sea_orm(primary_key, auto_increment = false)]
    pub subscription_id: String,
    /// Plan key, stable across updates.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Owning tenant (denormalized so scoping needs no join).
    pub tenant: String,
    /// The provider's id.
    pub native_id: String,
    /// JSON array of native event names.
    #[sea_orm(column_type = "Text")]
    pub events: String,
    /// `active` or `disabled`.
    pub status: String,
    /// When it was created at the provider.
    pub created_at: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The owning subscription.
    #[sea_orm(
        belongs_to = "super::subscription::Entity",
        from = "Column::SubscriptionId",
        to = "super::subscription::Column::Id",
        on_delete = "Cascade"
    )]
    Subscription,
}

impl Related<super::subscription::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Subscription.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
