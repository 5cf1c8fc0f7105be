//! The stored state of a subscription: its desired spec, its lifecycle
//! status, the native resources Switchboard created for it, and the key a
//! team names it by. The store persists these records and the engine
//! changes them; neither owns the shape.

use chrono::{DateTime, Utc};

use crate::operation::Finding;
use crate::{Error, NativePlan, NativeResource, SubscriptionSpec, SubscriptionStatus};

/// The longest subscription key.
pub const KEY_MAX_LEN: usize = 128;

/// Checks a subscription key: 1 to [`KEY_MAX_LEN`] characters of
/// `[A-Za-z0-9._-]`, starting with a letter or digit. Keys appear in URL
/// paths (`/v1/subscriptions/by-key/{key}`) and in files kept under
/// version control, so they need no escaping anywhere; a leading letter or
/// digit keeps `.` and `..` (path segments with a meaning) out. A bad key
/// is a 422 at `/key`.
pub fn check_key(key: &str) -> Result<(), Error> {
    let detail = if key.is_empty() || key.len() > KEY_MAX_LEN {
        format!("must be 1 to {KEY_MAX_LEN} characters")
    } else if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "may contain only letters, digits, `.`, `_` and `-`".to_owned()
    } else if !key.as_bytes()[0].is_ascii_alphanumeric() {
        "must start with a letter or a digit".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::field("/key", detail))
}

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
    /// The team's stable name for it, unique within the tenant (see
    /// [`check_key`]); not part of the spec, so it is never sent upstream.
    pub key: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_url_safe_names_starting_with_a_letter_or_digit() {
        for good in ["a", "9", "billing.calls_v2-prod", &"k".repeat(KEY_MAX_LEN)] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "_x",
            "..",
            "a/b",
            "a b",
            "caf\u{e9}",
            "a%2Fb",
            &"k".repeat(KEY_MAX_LEN + 1),
        ] {
            let Err(Error::Invalid(errors)) = check_key(bad) else {
                panic!("{bad:?} was accepted");
            };
            assert_eq!(errors[0].pointer, "/key", "{bad:?}");
        }
    }
}
