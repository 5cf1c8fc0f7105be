//! `subscriptions`: one row per normalized subscription. The validated spec
//! is a JSON document (secrets included); the columns the API filters and
//! sorts on are real, indexed columns.

use sea_orm::entity::prelude::*;

/// A subscription row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    /// `sub_<ulid>`; sorts by creation, used as the list cursor.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Owning tenant; part of every query.
    pub tenant: String,
    /// Provider instance key.
    pub provider: String,
    /// The spec's account (immutable, like the provider), `''` for none;
    /// `NULL` until known for rows written without it (the reconciliation
    /// pass fills it in from the sealed spec).
    #[sea_orm(column_type = "Text", nullable)]
    pub account: Option<String>,
    /// `SubscriptionStatus` wire name.
    pub status: String,
    /// `SubscriptionSpec` as JSON.
    #[sea_orm(column_type = "Text")]
    pub spec: String,
    /// JSON array of warning strings.
    #[sea_orm(column_type = "Text")]
    pub warnings: String,
    /// Last upstream error, when `status` is `failed`.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// Incremented on every write; guards against lost updates.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
    /// When the provider's state was last compared with this row.
    pub last_reconciled_at: Option<DateTimeUtc>,
    /// JSON array of what that comparison found.
    #[sea_orm(column_type = "Text")]
    pub findings: String,
    /// The team's name for the subscription, unique per tenant
    /// (`idx_subscriptions_tenant_key`); `NULL` for none.
    pub key: Option<String>,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    /// The native resources of this subscription.
    #[sea_orm(has_many = "super::native_resource::Entity")]
    NativeResource,
}

impl Related<super::native_resource::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::NativeResource.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
