//! The one way a mutating route runs its change: the caller's scope, the
//! subscription's tenant and current state, the request's own input, the
//! engine work detached from the request (within the upstream budget where
//! the route has one, else `202 pending`), the audit entry, and the answer.
//! Idempotency is the middleware's (`crate::idempotency`), around all of it.

use std::future::Future;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use switchboard_core::operation::OperationKind;
use switchboard_core::{Error, Secret};
use switchboard_engine::{Detached, Engine};
use switchboard_store::SubscriptionRecord;
use tracing::Instrument as _;

use super::{ApiResult, view_json};
use crate::auth::{Caller, WRITE};
use crate::extract::SubscriptionId;
use crate::{AppState, audit};

/// How long a change's caller waits for its engine work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// Up to `limits.upstream_budget`, then `202` with `status: pending`
    /// while the work goes on.
    Budget,
    /// Until it ends (rotate-secret must hand out the secret it set;
    /// reconcile reports what it found).
    Completion,
}

/// How the caller of each kind of change waits.
fn wait(kind: OperationKind) -> Wait {
    match kind {
        // The sweep's verification is never asked for through the API.
        OperationKind::RotateSecret | OperationKind::Reconcile | OperationKind::Verify => {
            Wait::Completion
        }
        OperationKind::Create
        | OperationKind::Update
        | OperationKind::Enable
        | OperationKind::Disable
        | OperationKind::Delete => Wait::Budget,
    }
}

/// The status of each kind of change once applied.
fn ok_status(kind: OperationKind) -> StatusCode {
    match kind {
        OperationKind::Create => StatusCode::CREATED,
        OperationKind::Delete => StatusCode::NO_CONTENT,
        OperationKind::Update
        | OperationKind::Enable
        | OperationKind::Disable
        | OperationKind::RotateSecret
        | OperationKind::Reconcile
        | OperationKind::Verify => StatusCode::OK,
    }
}

/// What engine work gets, owned so it can run in its own task.
pub(super) struct Job {
    /// The engine.
    pub engine: Engine,
    /// Tenant of the subscription.
    pub tenant: String,
    /// Token name, recorded as the change's actor.
    pub actor: String,
    /// Subscription id.
    pub id: String,
    /// Set once the caller was answered `202`.
    pub detached: Detached,
}

/// What a change produced, as the audit log records it.
pub(super) trait Outcome: Send + 'static {
    /// The subscription's view after the change, if any is left.
    fn after(&self) -> Option<Value>;
}

impl Outcome for SubscriptionRecord {
    fn after(&self) -> Option<Value> {
        Some(view_json(self))
    }
}

impl Outcome for () {
    fn after(&self) -> Option<Value> {
        None
    }
}

impl Outcome for (SubscriptionRecord, Secret) {
    fn after(&self) -> Option<Value> {
        Some(view_json(&self.0))
    }
}

/// One change request to one subscription.
pub(super) struct Change<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    headers: &'a HeaderMap,
    kind: OperationKind,
    tenant: String,
    id: String,
    /// The subscription's view before the change; none for a create.
    before: Option<Value>,
}

impl<'a> Change<'a> {
    /// A change of the existing subscription `id`, with the subscription
    /// as it stands: needs the write scope, and the subscription must be
    /// the caller's (admins: anyone's). Failures here are not audited:
    /// nothing was attempted.
    pub async fn existing(
        state: &'a AppState,
        caller: &'a Caller,
        headers: &'a HeaderMap,
        kind: OperationKind,
        id: SubscriptionId,
    ) -> ApiResult<(Self, SubscriptionRecord)> {
        caller.require(WRITE)?;
        let id = id.get()?;
        let tenant = caller.tenant_for(state, &id).await?;
        let current = state.engine.get(&tenant, &id).await?;
        let change = Self::of(state, caller, headers, kind, &current)?;
        Ok((change, current))
    }

    /// A change of `current`, a subscription the caller may act on that
    /// was already read (by key): needs the write scope.
    pub fn of(
        state: &'a AppState,
        caller: &'a Caller,
        headers: &'a HeaderMap,
        kind: OperationKind,
        current: &SubscriptionRecord,
    ) -> ApiResult<Self> {
        caller.require(WRITE)?;
        Ok(Self {
            state,
            caller,
            headers,
            kind,
            tenant: current.tenant.clone(),
            id: current.id.clone(),
            before: Some(view_json(current)),
        })
    }

    /// The creation of a new subscription in the caller's tenant.
    pub fn create(
        state: &'a AppState,
        caller: &'a Caller,
        headers: &'a HeaderMap,
    ) -> ApiResult<Self> {
        caller.require(WRITE)?;
        Ok(Self {
            state,
            caller,
            headers,
            kind: OperationKind::Create,
            tenant: caller.tenant.clone(),
            id: switchboard_core::ids::subscription_id(),
            before: None,
        })
    }

    /// Runs `work` on the request's parsed `input` and audits how it
    /// ended (a bad input too: it was a change request). `Ok` carries the
    /// outcome for the route to answer, or the finished `202` answer.
    pub async fn run<I, T, F, Fut>(self, input: Result<I, Error>, work: F) -> ApiResult<Ran<T>>
    where
        T: Outcome,
        F: FnOnce(Job, I) -> Fut,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let job = Job {
            engine: self.state.engine.clone(),
            tenant: self.tenant.clone(),
            actor: self.caller.name.clone(),
            id: self.id.clone(),
            detached: Detached::default(),
        };
        let flag = job.detached.clone();
        let result = match input {
            Ok(input) => {
                let work = work(job, input);
                match wait(self.kind) {
                    Wait::Budget => within_budget(self.state, &flag, work).await,
                    Wait::Completion => Some(joined(tokio::spawn(work.in_current_span()).await)),
                }
            }
            Err(e) => Some(Err(e)),
        };
        let Some(result) = result else {
            self.audit().pending().await;
            return Ok(Ran::Pending(
                accepted(self.state, &self.tenant, &self.id).await,
            ));
        };
        // A create that failed left no subscription to name.
        let named = self.before.is_some() || result.is_ok();
        let after = result.as_ref().ok().and_then(Outcome::after);
        audit::Audited {
            subscription_id: named.then_some(self.id.as_str()),
            ..self.audit()
        }
        .result(&result, ok_status(self.kind).as_u16(), after)
        .await;
        let outcome = result?;
        tracing::info!(tenant = %self.tenant, token = %self.caller.name, id = %self.id,
            operation = %self.kind, "subscription changed");
        Ok(Ran::Done(outcome))
    }

    fn audit(&self) -> audit::Audited<'_> {
        audit::Audited {
            state: self.state,
            caller: self.caller,
            headers: self.headers,
            operation: self.kind.as_str(),
            tenant: &self.tenant,
            subscription_id: Some(&self.id),
            before: self.before.clone(),
        }
    }
}

/// How a change ended for its caller.
pub(super) enum Ran<T> {
    /// Applied; the route answers with it.
    Done(T),
    /// Still applying upstream: the `202` answer, already audited.
    Pending(Response),
}

impl<T> Ran<T> {
    /// The route's answer: the pending one, or `done` of the outcome.
    pub fn answer(self, done: impl FnOnce(T) -> Response) -> Response {
        match self {
            Self::Done(outcome) => done(outcome),
            Self::Pending(resp) => resp,
        }
    }
}

fn joined<T>(r: Result<Result<T, Error>, tokio::task::JoinError>) -> Result<T, Error> {
    r.map_err(|e| Error::Internal(format!("a change task failed: {e}")))
        .and_then(|r| r)
}

/// Runs engine work in its own task, so a client that disconnects or a
/// request that times out cannot cancel a change half way through its
/// upstream calls, and waits for it up to `limits.upstream_budget`. Past
/// it (`None`), `flag` is set before answering, so a later failure stays
/// visible on the subscription; a task that finished in that instant is
/// still reported.
async fn within_budget<T: Send + 'static>(
    state: &AppState,
    flag: &Detached,
    work: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Option<Result<T, Error>> {
    // In the request's span, so the change's upstream calls are its children.
    let mut handle = tokio::spawn(work.in_current_span());
    match tokio::time::timeout(state.limits.upstream_budget, &mut handle).await {
        Ok(done) => Some(joined(done)),
        Err(_) => {
            flag.set();
            if !handle.is_finished() {
                return None;
            }
            Some(joined(handle.await))
        }
    }
}

/// `202 Accepted` with the subscription as it stands (status `pending`).
async fn accepted(state: &AppState, tenant: &str, id: &str) -> Response {
    let body = match state.engine.get(tenant, id).await {
        Ok(rec) => view_json(&rec),
        Err(_) => serde_json::json!({"id": id, "status": "pending"}),
    };
    let mut resp = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/subscriptions/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rotate_secret_and_reconcile_wait_for_completion() {
        for &kind in OperationKind::ALL {
            let completes = matches!(
                kind,
                OperationKind::RotateSecret | OperationKind::Reconcile | OperationKind::Verify
            );
            assert_eq!(wait(kind) == Wait::Completion, completes, "{kind}");
        }
        assert_eq!(ok_status(OperationKind::Create), StatusCode::CREATED);
        assert_eq!(ok_status(OperationKind::Delete), StatusCode::NO_CONTENT);
        assert_eq!(ok_status(OperationKind::Update), StatusCode::OK);
    }
}
