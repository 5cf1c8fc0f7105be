//! `relay_deliveries`: the outbox, one row per delivery of an event to a
//! subscriber.

use sea_orm::entity::prelude::*;

/// One delivery.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "relay_deliveries")]
pub struct Model {
    /// `dlv_<ulid>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The event delivered.
    pub event_id: String,
    /// The Standard Webhooks `webhook-id`, the same on every attempt.
    pub webhook_id: String,
    /// Tenant of the subscription.
    pub tenant: String,
    /// The subscription delivered to.
    pub subscription_id: String,
    /// The event's type (copied, so lists filter without a join).
    pub event_type: String,
    /// Whether the subscription's deliveries go one at a time, in order.
    pub ordered: bool,
    /// `pending`, `delivering`, `delivered`, `failed` or `gone`.
    pub status: String,
    /// Attempts made in the current series.
    pub attempts: i32,
    /// When due; once finished, when it finished (retention reads it).
    pub next_attempt_at: DateTimeUtc,
    /// End of the current claim.
    pub lease_until: Option<DateTimeUtc>,
    /// The worker holding the claim.
    pub leased_by: Option<String>,
    /// Status code of the last answer.
    pub last_status_code: Option<i32>,
    /// What the last failed attempt ended with.
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// Creation.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
