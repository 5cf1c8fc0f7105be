//! Recording every change request in the audit log: who (token, tenant),
//! what (operation, subscription, diff of non-secret fields), when, and the
//! outcome. Views never hold secrets, so neither can a diff.

use axum::http::HeaderMap;
use serde_json::{Map, Value};
use switchboard_core::Error;
use switchboard_store::AuditEntry;

use crate::auth::Caller;
use crate::problem::to_problem;
use crate::{AppState, REQUEST_ID};

/// Fields that change on every write and say nothing about intent.
const VOLATILE: [&str; 3] = ["version", "updated_at", "created_at"];

/// `{field: {"from": …, "to": …}}` for every top-level field that differs.
pub fn diff(before: Option<&Value>, after: Option<&Value>) -> Value {
    let empty = Map::new();
    let b = before.and_then(Value::as_object).unwrap_or(&empty);
    let a = after.and_then(Value::as_object).unwrap_or(&empty);
    let mut out = Map::new();
    for key in b.keys().chain(a.keys()) {
        if VOLATILE.contains(&key.as_str()) || out.contains_key(key) {
            continue;
        }
        let (from, to) = (b.get(key), a.get(key));
        if from != to {
            out.insert(
                key.clone(),
                serde_json::json!({"from": from.cloned().unwrap_or(Value::Null), "to": to.cloned().unwrap_or(Value::Null)}),
            );
        }
    }
    Value::Object(out)
}

/// What happened, for the `outcome` column.
pub fn outcome<T>(result: &Result<T, Error>, ok_status: u16) -> String {
    match result {
        Ok(_) => ok_status.to_string(),
        Err(e) => {
            let (p, _) = to_problem(e.clone());
            let slug = p.kind.rsplit(':').next().unwrap_or_default().to_owned();
            format!("{} {slug}", p.status)
        }
    }
}

/// One change to record.
pub struct Change<'a> {
    /// Operation name.
    pub operation: &'static str,
    /// Subscription concerned.
    pub subscription_id: Option<&'a str>,
    /// Tenant of the subscription.
    pub tenant: &'a str,
    /// View before.
    pub before: Option<Value>,
    /// View after.
    pub after: Option<Value>,
    /// Outcome text.
    pub outcome: String,
}

/// One change request, as the audit log will record it: who, on what,
/// from which state. Handlers build it once and report the outcome.
pub struct Audited<'a> {
    /// Application state (for the store).
    pub state: &'a AppState,
    /// The caller.
    pub caller: &'a Caller,
    /// Request headers (for the request id).
    pub headers: &'a HeaderMap,
    /// Operation name.
    pub operation: &'static str,
    /// Tenant of the subscription.
    pub tenant: &'a str,
    /// Subscription concerned.
    pub subscription_id: Option<&'a str>,
    /// The subscription before the change.
    pub before: Option<Value>,
}

impl Audited<'_> {
    /// Records how the change ended (`after` is the view once applied).
    pub async fn result<T>(self, result: &Result<T, Error>, ok_status: u16, after: Option<Value>) {
        let outcome = outcome(result, ok_status);
        self.record(after, outcome).await;
    }

    /// Records a change answered `202` that goes on in the background.
    pub async fn pending(self) {
        self.record(None, "202 pending".into()).await;
    }

    async fn record(self, after: Option<Value>, outcome: String) {
        record(
            self.state,
            self.caller,
            self.headers,
            Change {
                operation: self.operation,
                subscription_id: self.subscription_id,
                tenant: self.tenant,
                before: self.before,
                after,
                outcome,
            },
        )
        .await;
    }
}

/// Appends `change` to the audit log. A failure to audit is logged, not
/// returned: the change itself has already happened upstream.
pub async fn record(state: &AppState, caller: &Caller, headers: &HeaderMap, change: Change<'_>) {
    let entry = AuditEntry {
        id: format!("aud_{}", ulid::Ulid::new()),
        at: chrono::Utc::now(),
        tenant: change.tenant.to_owned(),
        actor: caller.name.clone(),
        subscription_id: change.subscription_id.map(str::to_owned),
        operation: change.operation.to_owned(),
        diff: diff(change.before.as_ref(), change.after.as_ref()),
        outcome: change.outcome,
        request_id: headers
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::error!(error = %e, operation = change.operation, "audit entry could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_lists_changed_fields_only() {
        let b = json!({"url": "a", "name": "n", "version": 1, "signing_secret_set": true});
        let a = json!({"url": "b", "name": "n", "version": 2, "signing_secret_set": true, "x": 1});
        assert_eq!(
            diff(Some(&b), Some(&a)),
            json!({"url": {"from": "a", "to": "b"}, "x": {"from": null, "to": 1}})
        );
        assert_eq!(diff(None, None), json!({}));
    }
}
