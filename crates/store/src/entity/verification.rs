//! `verifications`: upstream steps whose outcome was unknown, re-verified
//! by the sweep until their window closes.

use sea_orm::entity::prelude::*;

/// One step to re-verify.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verifications")]
pub struct Model {
    /// `vf_<ulid>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The journal entry whose spec describes the step's plan.
    pub op_id: String,
    /// Tenant of the subscription.
    pub tenant: String,
    /// The subscription.
    pub subscription_id: String,
    /// Plan key of the native resource.
    #[sea_orm(column_type = "Text")]
    pub key: String,
    /// What the step asked for: `create`, `update` or `delete`.
    pub action: String,
    /// The native resource an update or delete addressed.
    #[sea_orm(column_type = "Text", nullable)]
    pub native_id: Option<String>,
    /// Whether the plan comes from the entry's spec before the change
    /// (an undo recreating what was deleted) rather than after.
    pub from_before: bool,
    /// Before this, the request may still be in flight.
    pub not_before: DateTimeUtc,
    /// After this, the step is no longer watched.
    pub until: DateTimeUtc,
    /// When the sweep looks next (also its claim: a replica pushes it on).
    pub next_check_at: DateTimeUtc,
    /// How often it was looked at.
    pub checks: i32,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
