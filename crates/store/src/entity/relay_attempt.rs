//! `relay_attempts`: the log of delivery attempts.

use sea_orm::entity::prelude::*;

/// One attempt.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relay_attempts")]
pub struct Model {
    /// `att_<ulid>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The delivery.
    pub delivery_id: String,
    /// Its number in the delivery's series, from 1.
    pub attempt: i32,
    /// When the request was started.
    pub started_at: DateTimeUtc,
    /// Until the response head or the failure.
    pub latency_ms: i64,
    /// The answer's status code, when there was one.
    pub status_code: Option<i32>,
    /// How it ended, as a short label.
    pub outcome: String,
    /// The first KiB of the answer's body.
    #[sea_orm(column_type = "Text", nullable)]
    pub response_excerpt: Option<String>,
    /// Transport error or refusal reason.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
