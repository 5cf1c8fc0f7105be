//! The sweep: looking again, for a while, at steps whose outcome was
//! unknown.
//!
//! A change verifies an unknown step as soon as its request can no longer
//! be in flight (`step.rs`), and recovery does the same for a crashed
//! change. A provider can still apply a request later than anyone waits
//! for, so every unknown step is also kept in the store's verifications.
//! Each maintenance tick the sweep takes the due ones (one replica each)
//! and, once the step's change is over:
//!
//! - looks for resources that creating the step's plan would have made
//!   and that no subscription recorded: one is adopted when the
//!   subscription still wants that plan and has nothing recorded for it;
//!   every other one is removed;
//! - for an update or a delete, reconciles the subscription (a late
//!   update or delete shows as drift and is repaired), or, when the
//!   subscription is gone, makes sure the deleted resource stays gone.
//!
//! What it did is journalled on the subscription as a `verify` entry, and
//! counted as a late landing. A
//! step is checked with growing gaps until its window
//! ([`crate::StepPolicy::window`], 15 minutes by default) closes.

use chrono::{DateTime, Utc};
use switchboard_core::operation::{OperationKind, OperationState, Step, StepAction};
use switchboard_core::{
    Error, NativePlan, SubscriptionSpec, SubscriptionStatus, UpstreamErrorKind,
};
use switchboard_store::{NativeRecord, NewOperation, SubscriptionRecord, Verification};
use switchboard_telemetry::record;

use crate::engine::{Engine, ProviderInstance, SYSTEM_ACTOR};
use crate::step::created_from;

/// Most steps one sweep pass takes.
const BATCH: u64 = 50;

/// What one check concluded.
enum Checked {
    /// Look again later (until the window closes).
    Again,
    /// Nothing left to watch.
    Done,
}

/// The step's subscription as it stands, when it still exists.
struct Subject<'a> {
    provider: &'a ProviderInstance,
    spec: SubscriptionSpec,
    plan: NativePlan,
    /// Whether that spec wants the plan to exist ([`Engine::wanted`]).
    wanted: bool,
    current: Option<SubscriptionRecord>,
}

impl Engine {
    /// Checks the due verifications once; returns how many were checked.
    pub async fn sweep(&self) -> Result<usize, Error> {
        let retry_at = Utc::now() + chrono::Duration::from_std(self.lease).unwrap_or_default();
        let due = self.store.claim_due_verifications(BATCH, retry_at).await?;
        for v in &due {
            let checked = self.check(v).await.unwrap_or_else(|e| {
                tracing::warn!(sub = %v.subscription_id, key = %v.key, error = %e, "verifying an unknown step failed; looking again later");
                Checked::Again
            });
            let next = match checked {
                Checked::Done => None,
                Checked::Again => self.next_check(v),
            };
            let saved = match next {
                Some(at) => self.store.reschedule_verification(&v.id, at).await,
                None => self.store.finish_verification(&v.id).await,
            };
            if let Err(e) = saved {
                tracing::warn!(id = %v.id, error = %e, "verification not rescheduled");
            }
        }
        Ok(due.len())
    }

    /// When to look next: gaps of 1/32 of the window, doubling, and a last
    /// look when the window closes; `None` once it has.
    fn next_check(&self, v: &Verification) -> Option<DateTime<Utc>> {
        let now = Utc::now();
        if now >= v.until {
            return None;
        }
        let window = chrono::Duration::from_std(self.steps.window).unwrap_or_default();
        let gap = (window / 32) * 2i32.saturating_pow(v.checks.clamp(0, 16) as u32);
        Some((now + gap).min(v.until))
    }

    /// One look at one step.
    async fn check(&self, v: &Verification) -> Result<Checked, Error> {
        let Some(op) = self.store.operation(&v.op_id).await? else {
            return Ok(Checked::Done);
        };
        if op.state == OperationState::Running {
            // Its change (or recovery) is still on it.
            return Ok(Checked::Again);
        }
        let spec = if v.from_before { op.before } else { op.after };
        let Some(spec) = spec else {
            return Ok(Checked::Done);
        };
        let current = match self.store.get(&v.tenant, &v.subscription_id).await {
            Ok(rec) => Some(rec),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        if current
            .as_ref()
            .is_some_and(|c| c.status == SubscriptionStatus::Pending)
        {
            return Ok(Checked::Again);
        }
        let provider = self.provider(&spec.provider)?;
        let prepared = self.prepare(&v.subscription_id, spec)?;
        let wanted = self
            .wanted(provider, &prepared)
            .iter()
            .any(|p| p.key == v.key);
        let Some(plan) = prepared.plans.into_iter().find(|p| p.key == v.key) else {
            return Ok(Checked::Done);
        };
        let subject = Subject {
            provider,
            spec: prepared.spec,
            plan,
            wanted,
            current,
        };
        let lock = self
            .lock_account(provider, subject.spec.account.as_deref())
            .await?;
        let steps = self.look(v, &subject).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        let steps = steps?;
        for step in &steps {
            let adopted = step.action == StepAction::Adopt;
            record::late_landing(&subject.provider.key, adopted);
        }
        if !steps.is_empty() {
            self.journal_verify(v, &subject.spec, &steps).await;
        }
        if matches!(v.action, StepAction::Update | StepAction::Delete)
            && let Some(current) = &subject.current
            && matches!(
                current.status,
                SubscriptionStatus::Active
                    | SubscriptionStatus::Disabled
                    | SubscriptionStatus::Degraded
            )
        {
            self.reconcile(&v.tenant, SYSTEM_ACTOR, &v.subscription_id, false)
                .await?;
        }
        Ok(Checked::Again)
    }

    /// Removes or adopts what the step's plan made and nobody recorded;
    /// for a delete whose subscription is gone, removes the resource if it
    /// came back. Returns the steps taken.
    async fn look(&self, v: &Verification, s: &Subject<'_>) -> Result<Vec<Step>, Error> {
        let adapter = s.provider.adapter.as_ref();
        let account = s.spec.account.as_deref();
        let mut steps = Vec::new();
        let mut adoptable = self.adoptable(s);
        for found in adapter.list(account).await? {
            if !created_from(&found, &v.subscription_id, &s.spec, &s.plan)
                || self.store.native_is_recorded(&found.id).await?
            {
                continue;
            }
            if adoptable && found.enabled == s.spec.enabled {
                let rec = NativeRecord::created(&s.plan, found);
                self.store
                    .record_native(&v.tenant, &v.subscription_id, &rec)
                    .await?;
                steps.push(Step::now(StepAction::Adopt, &rec.key, &rec.native_id));
                adoptable = false;
                continue;
            }
            adapter.delete(account, &found.id).await?;
            steps.push(Step::now(StepAction::RemoveLate, &v.key, &found.id));
        }
        if let (StepAction::Delete, Some(id), None) = (v.action, &v.native_id, &s.current)
            && !self.store.native_is_recorded(id).await?
        {
            match adapter.get(account, id).await {
                Ok(_) => {
                    adapter.delete(account, id).await?;
                    steps.push(Step::now(StepAction::RemoveLate, &v.key, id));
                }
                Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(steps)
    }

    /// Whether a late resource of the step's plan may become the
    /// subscription's: it still exists at the spec the plan was made
    /// from, is settled (not failed), wants the plan's key and has
    /// nothing recorded for it.
    fn adoptable(&self, s: &Subject<'_>) -> bool {
        let Some(current) = &s.current else {
            return false;
        };
        let settled = matches!(
            current.status,
            SubscriptionStatus::Active
                | SubscriptionStatus::Disabled
                | SubscriptionStatus::Degraded
        );
        settled
            && current.spec == s.spec
            && s.wanted
            && !current.natives.iter().any(|n| n.key == s.plan.key)
    }

    /// Journals what a check did on the subscription's history.
    async fn journal_verify(&self, v: &Verification, spec: &SubscriptionSpec, steps: &[Step]) {
        let op = NewOperation {
            tenant: &v.tenant,
            subscription_id: &v.subscription_id,
            kind: OperationKind::Verify,
            actor: SYSTEM_ACTOR,
            before: None,
            after: Some(spec),
        };
        match self
            .store
            .record_operation(&op, OperationState::Succeeded, steps)
            .await
        {
            Ok(_) => {
                tracing::info!(sub = %v.subscription_id, key = %v.key, steps = steps.len(), "a late-landing step was cleaned up");
            }
            Err(e) => {
                tracing::warn!(sub = %v.subscription_id, error = %e, "verify entry not journalled");
            }
        }
    }
}
