//! `audit_log`: one row per change request, successful or not.

use sea_orm::entity::prelude::*;

/// An audit row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    /// `aud_<ulid>`; sorts by time, used as the cursor.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// When.
    pub at: DateTimeUtc,
    /// Tenant of the subscription (or of the caller when none).
    pub tenant: String,
    /// Token name.
    pub actor: String,
    /// Subscription concerned, when known.
    pub subscription_id: Option<String>,
    /// `create`, `update`, `delete`, `enable`, `disable`, `rotate_secret`.
    pub operation: String,
    /// JSON diff of non-secret fields.
    #[sea_orm(column_type = "Text")]
    pub diff: String,
    /// HTTP status and problem type.
    pub outcome: String,
    /// Request id.
    pub request_id: Option<String>,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
