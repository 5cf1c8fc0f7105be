//! `operations`: the journal of changes.

use sea_orm::entity::prelude::*;

/// A journal row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "operations")]
pub struct Model {
    /// `op_<ulid>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Tenant of the subscription.
    pub tenant: String,
    /// The subscription changed.
    pub subscription_id: String,
    /// `create`, `update`, `enable`, `disable`, `rotate_secret`, `delete`.
    pub kind: String,
    /// Token name, or `switchboard` for recovery.
    pub actor: String,
    /// `running`, `succeeded`, `failed`, `undone`, `recovered`.
    pub state: String,
    /// Spec before the change, sealed (absent for a create).
    #[sea_orm(column_type = "Text", nullable)]
    pub before_spec: Option<String>,
    /// Spec after the change, sealed (absent for a delete).
    #[sea_orm(column_type = "Text", nullable)]
    pub after_spec: Option<String>,
    /// JSON array of completed native steps.
    #[sea_orm(column_type = "Text")]
    pub steps: String,
    /// Last error, when not `succeeded`.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// Start.
    pub started_at: DateTimeUtc,
    /// End.
    pub finished_at: Option<DateTimeUtc>,
    /// A `running` operation whose lease passed belongs to a dead process.
    pub lease_until: DateTimeUtc,
    /// The replica running it (see `Store::replica_id`).
    pub owner: String,
    /// The latest moment a request this change sent can still be applied
    /// by its provider; recovery waits for it before it looks (a request
    /// still in flight when the process died may land late).
    pub settle_at: Option<DateTimeUtc>,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
