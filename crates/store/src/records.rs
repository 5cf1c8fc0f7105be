//! The store's public record types, independent of sea-orm.

use chrono::{DateTime, Utc};
use switchboard_core::{SubscriptionSpec, SubscriptionStatus};

/// A native resource Switchboard created and owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NativeRecord {
    /// Plan key (stable identity within the subscription).
    pub key: String,
    /// Provider's id.
    pub native_id: String,
    /// Native events it carries.
    pub events: Vec<String>,
    /// Whether it is switched on at the provider.
    pub enabled: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A subscription with its native resources.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    /// `sub_<ulid>`.
    pub id: String,
    /// Owning tenant.
    pub tenant: String,
    /// Lifecycle state.
    pub status: SubscriptionStatus,
    /// Desired state, as validated (and stripped under `on_unsupported: ignore`).
    pub spec: SubscriptionSpec,
    /// What was dropped or adjusted, for the caller.
    pub warnings: Vec<String>,
    /// Last upstream error when `failed`.
    pub last_error: Option<String>,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Native resources, ordered by key.
    pub natives: Vec<NativeRecord>,
    /// When the provider's state was last compared with this record.
    pub last_reconciled_at: Option<DateTime<Utc>>,
    /// What that comparison found (empty when all matched).
    pub findings: Vec<serde_json::Value>,
}

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
