//! `idempotency_keys`: one row per (tenant, key) of a keyed POST.

use sea_orm::entity::prelude::*;

/// An idempotency row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Tenant the key belongs to (keys are scoped to the tenant).
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant: String,
    /// The caller's `Idempotency-Key`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 (hex) of method, path and body of the first request.
    pub request_hash: String,
    /// `running` or `done`.
    pub state: String,
    /// Status of the first response, once done.
    pub response_status: Option<i32>,
    /// The first response body, sealed (it may hold a new secret).
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    /// When the key was first used; it expires 24 h later.
    pub created_at: DateTimeUtc,
    /// A `running` row whose request died is taken over after this.
    pub locked_until: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
