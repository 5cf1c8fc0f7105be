//! The stored state of a subscription: its desired spec, its lifecycle
//! status and the native resources Switchboard created for it. The store
//! persists these records and the engine changes them; neither owns the
//! shape.

use chrono::{DateTime, Utc};

use crate::operation::Finding;
use crate::{NativePlan, NativeResource, SubscriptionSpec, SubscriptionStatus};

/// A native resource Switchboard created (or adopted) and owns.
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

impl NativeRecord {
    /// The record of `resource`, which the provider now holds for `plan`:
    /// the plan's key and events (the resource's own event list may be
    /// normalized by the provider), the provider's id and on/off state,
    /// created now.
    pub fn created(plan: &NativePlan, resource: NativeResource) -> Self {
        Self {
            key: plan.key.clone(),
            native_id: resource.id,
            events: plan.events.clone(),
            enabled: resource.enabled,
            created_at: Utc::now(),
        }
    }
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
    pub findings: Vec<Finding>,
}
