//! The store's own public types, independent of sea-orm: list queries and
//! pages, and audit entries. The subscription records themselves are
//! domain types (`switchboard_core::record`), re-exported from the crate
//! root.

use chrono::{DateTime, Utc};
use switchboard_core::SubscriptionStatus;
use switchboard_core::record::SubscriptionRecord;

/// Filters and paging of a list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this provider instance.
    pub provider: Option<String>,
    /// Only this status.
    pub status: Option<SubscriptionStatus>,
    /// Page size (the API bounds it to 1..=200).
    pub limit: u64,
    /// Return ids after this one (the previous page's `next_cursor`).
    pub after: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The rows, ordered by id.
    pub data: Vec<SubscriptionRecord>,
    /// Cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    /// `aud_<ulid>`.
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Tenant.
    pub tenant: String,
    /// Token name.
    pub actor: String,
    /// Subscription concerned.
    pub subscription_id: Option<String>,
    /// Operation name.
    pub operation: String,
    /// Changed non-secret fields: `{field: {"from": …, "to": …}}`.
    pub diff: serde_json::Value,
    /// `201`, `422 validation`, ….
    pub outcome: String,
    /// Request id.
    pub request_id: Option<String>,
}
