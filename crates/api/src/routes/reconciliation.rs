//! `GET /v1/reconciliation`: where the background reconciliation pass
//! stands (the pass under way, the last finished one, the accounts checked
//! last), read-only, for admin tokens.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use switchboard_store::reconciliation::account_of;
use switchboard_store::{AccountCheck, Pass};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{ADMIN, Caller};
use crate::dto::rfc3339;
use crate::extract::{ApiQuery, QueryParams};
use crate::problem::{ApiError, Problem};

/// Accounts shown in `recent_accounts`.
const RECENT_ACCOUNTS: u64 = 20;

/// The router of this resource.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/reconciliation", get(status))
}

/// Where a pass stands with one provider instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderProgress {
    /// Every account of the instance was checked in this pass.
    pub done: bool,
    /// The last account checked; the pass resumes after it. `""` is the
    /// one account of a kind without accounts; null before the first.
    pub resume_after: Option<String>,
}

/// One reconciliation pass.
#[derive(Debug, Serialize, ToSchema)]
pub struct PassView {
    /// `rcp_<ulid>`.
    pub id: String,
    /// When its first tick began.
    pub started_at: String,
    /// When its last account was checked; null while it runs.
    pub finished_at: Option<String>,
    /// Intervals it has run in (it goes on where the last one stopped
    /// once a provider's call budget for the interval is spent).
    pub ticks: u64,
    /// Accounts with subscriptions when it began.
    pub accounts_total: u64,
    /// Accounts checked so far.
    pub accounts_done: u64,
    /// Accounts still to check (from `accounts_total`; accounts added
    /// since are checked too).
    pub accounts_remaining: u64,
    /// Subscriptions compared so far.
    pub subscriptions_checked: u64,
    /// Differences found so far.
    pub findings: u64,
    /// Subscriptions repaired (or whose repair was attempted) in a
    /// journalled change.
    pub repairs: u64,
    /// Requests sent to providers: list pages, token mints and repairs.
    pub upstream_calls: u64,
    /// Accounts whose check failed (their error is on the account).
    pub errors: u64,
    /// Per provider instance.
    pub providers: BTreeMap<String, ProviderProgress>,
}

impl From<Pass> for PassView {
    fn from(p: Pass) -> Self {
        Self {
            accounts_remaining: p.accounts_total.saturating_sub(p.accounts_done),
            id: p.id,
            started_at: rfc3339(p.started_at),
            finished_at: p.finished_at.map(rfc3339),
            ticks: p.ticks,
            accounts_total: p.accounts_total,
            accounts_done: p.accounts_done,
            subscriptions_checked: p.subscriptions_checked,
            findings: p.findings,
            repairs: p.repairs,
            upstream_calls: p.upstream_calls,
            errors: p.errors,
            providers: p
                .cursors
                .into_iter()
                .map(|(k, c)| {
                    let progress = ProviderProgress {
                        done: c.done,
                        resume_after: c.after,
                    };
                    (k, progress)
                })
                .collect(),
        }
    }
}

/// The last check of one (provider instance, account).
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    /// Provider instance key.
    pub provider: String,
    /// The account; null for a kind without accounts.
    pub account: Option<String>,
    /// The pass that checked it.
    pub pass_id: String,
    /// When.
    pub checked_at: String,
    /// Subscriptions compared.
    pub subscriptions_checked: u64,
    /// Differences found.
    pub findings: u64,
    /// Subscriptions repaired in a journalled change.
    pub repairs: u64,
    /// Requests sent to the provider, repairs included.
    pub upstream_calls: u64,
    /// Of those, the listing's: its pages and any token mints.
    pub list_calls: u64,
    /// Why the check failed, if it did.
    pub error: Option<String>,
}

impl From<AccountCheck> for AccountView {
    fn from(a: AccountCheck) -> Self {
        Self {
            account: account_of(&a.account).map(str::to_owned),
            provider: a.provider,
            pass_id: a.pass_id,
            checked_at: rfc3339(a.checked_at),
            subscriptions_checked: a.subscriptions_checked,
            findings: a.findings,
            repairs: a.repairs,
            upstream_calls: a.upstream_calls,
            list_calls: a.list_calls,
            error: a.error,
        }
    }
}

/// The reconciler's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    /// The pass under way; null between passes.
    pub current: Option<PassView>,
    /// The last pass that finished.
    pub last_finished: Option<PassView>,
    /// The accounts checked last, newest first (at most 20).
    pub recent_accounts: Vec<AccountView>,
}

/// Progress of the background reconciliation pass (admin tokens only).
#[utoipa::path(get, path = "/v1/reconciliation", tag = "reconciliation",
    operation_id = "getReconciliation",
    responses(
        (status = 200, description = "The reconciler's state", body = ReconciliationView),
        (status = 403, description = "Not an admin token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A query parameter was given (there are none)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<ApiQuery<StatusParams>, ApiError>,
) -> Result<axum::Json<ReconciliationView>, ApiError> {
    caller.require(ADMIN)?;
    params?;
    let s = state.store.reconciliation_status(RECENT_ACCOUNTS).await?;
    Ok(axum::Json(ReconciliationView {
        current: s.current.map(Into::into),
        last_finished: s.last_finished.map(Into::into),
        recent_accounts: s.recent_accounts.into_iter().map(Into::into).collect(),
    }))
}

/// Query of `GET /v1/reconciliation`: none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {}

impl QueryParams for StatusParams {
    const UNKNOWN: &'static str = "unknown query parameter; this route takes none";
}
