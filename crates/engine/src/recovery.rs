//! Finishing what a crashed process left half done.
//!
//! Every change is journalled before its first upstream call and every
//! native step is recorded as it completes. A journal entry still `running`
//! whose lease has passed belongs to a dead process: one replica claims it
//! and either undoes it (a create: its caller never saw it succeed) or
//! finishes it (update, enable, disable, rotation, delete: the caller asked
//! for the new state). Before either, resources the provider holds that
//! match an unrecorded native of the change are adopted, so a resource
//! created in the instant before the crash is neither duplicated nor left
//! orphaned. A dead process's request may still have been in flight: the
//! journal notes, before each change request, when it can no longer land,
//! and an entry is only recovered after that; every plan it may have
//! created is also handed to the sweep (`sweep.rs`), which looks again for
//! a while.

use std::time::Duration;

use switchboard_core::operation::{OperationKind, OperationState, StepAction};
use switchboard_core::{Error, SubscriptionStatus};
use switchboard_store::{NewVerification, Operation, SubscriptionRecord};
use switchboard_telemetry::record;

use crate::change::{Adopt, Change, Entry, Then, Work};
use crate::engine::{Detached, Engine, SYSTEM_ACTOR};

/// What recovering one journal entry takes.
enum Resume<'a> {
    /// Nothing upstream: the entry only needs closing, in this state.
    Close(OperationState),
    /// The rest of the change, run through the pipeline.
    Run(Box<Change<'a>>),
}

impl Engine {
    /// Recovers abandoned changes; `all` takes every running entry (a
    /// single-process store at start-up, where nothing else can be running).
    /// Returns how many were handled.
    pub async fn recover(&self, all: bool) -> Result<usize, Error> {
        let ops = self.store.claim_abandoned(self.lease(), all).await?;
        let count = ops.len();
        for op in ops {
            self.track(&op.id);
            self.watch_plans(&op).await;
            let outcome = match self.resume(&op).await {
                Ok(Resume::Close(state)) => {
                    self.end(&op.id, state, None).await;
                    record::journal_closed(op.kind.as_str(), state.as_str());
                    Ok(state)
                }
                Ok(Resume::Run(change)) => {
                    let state = change.success();
                    // The pipeline closes the entry, and on failure leaves
                    // the subscription `failed` with the error.
                    self.run(*change).await.map(|_| state)
                }
                Err(e) => {
                    self.fail_resume(&op, &e).await;
                    Err(e)
                }
            };
            match outcome {
                Ok(state) => {
                    tracing::info!(op = %op.id, sub = %op.subscription_id, kind = %op.kind, %state, "recovered an interrupted change");
                }
                Err(e) => {
                    tracing::error!(op = %op.id, sub = %op.subscription_id, error = %e, "recovering an interrupted change failed");
                }
            }
        }
        Ok(count)
    }

    /// Hands every plan of a recovered change's "after" spec to the sweep:
    /// the dead process may have sent its create, and the provider may
    /// apply it later than recovery looks.
    async fn watch_plans(&self, op: &Operation) {
        let Some(after) = op.after.clone() else {
            return;
        };
        let Ok(prepared) = self.prepare(&op.subscription_id, after) else {
            return;
        };
        let now = chrono::Utc::now();
        let until = now + chrono::Duration::from_std(self.steps.window).unwrap_or_default();
        for plan in &prepared.plans {
            let v = NewVerification {
                op_id: &op.id,
                tenant: &op.tenant,
                subscription_id: &op.subscription_id,
                key: &plan.key,
                action: StepAction::Create,
                native_id: None,
                from_before: false,
                not_before: now,
                until,
            };
            if let Err(e) = self.store.add_verification(&v).await {
                tracing::warn!(op = %op.id, error = %e, "recovered plan not handed to the sweep");
            }
        }
    }

    /// Closes an entry that could not even be resumed (its spec no longer
    /// prepares, its provider is gone, …): the subscription is `failed`.
    async fn fail_resume(&self, op: &Operation, e: &Error) {
        let _ = self
            .store
            .release(
                &op.tenant,
                &op.subscription_id,
                SubscriptionStatus::Failed,
                Some(e.to_string()),
            )
            .await;
        self.end(&op.id, OperationState::Failed, Some(e)).await;
        record::journal_closed(op.kind.as_str(), OperationState::Failed.as_str());
    }

    /// What is left of `op`: a create is undone (its caller never saw it
    /// succeed); a delete and every other change are finished (the caller
    /// asked for the new state), after adopting what the dead process
    /// created but did not record.
    async fn resume(&self, op: &Operation) -> Result<Resume<'static>, Error> {
        let rec = match self.store.get(&op.tenant, &op.subscription_id).await {
            Ok(r) => r,
            // Nothing left: the create was never stored, or the delete
            // completed before the entry was closed.
            Err(Error::NotFound { .. }) => return Ok(Resume::Close(OperationState::Recovered)),
            Err(e) => return Err(e),
        };
        let pending = rec.status == SubscriptionStatus::Pending;
        let (success, work) = match op.kind {
            // The change completed and only closing its entry failed.
            OperationKind::Create if !pending => {
                return Ok(Resume::Close(OperationState::Succeeded));
            }
            OperationKind::Create => (OperationState::Undone, self.undo_create(op, &rec)?),
            OperationKind::Delete => {
                let work = Work::Apply {
                    old: self.plans_for(&rec.id, &rec.spec, &rec.natives)?,
                    wanted: Vec::new(),
                    adopt: None,
                    then: Then::Delete,
                };
                (OperationState::Recovered, work)
            }
            // Either the change completed and only closing its entry
            // failed, or it never got its claim and sent nothing.
            _ if !pending => {
                let done = op.after.as_ref() == Some(&rec.spec);
                return Ok(Resume::Close(if done {
                    OperationState::Succeeded
                } else {
                    OperationState::Failed
                }));
            }
            _ => (OperationState::Recovered, self.finish_change(op, &rec)?),
        };
        Ok(Resume::Run(Box::new(Change {
            kind: op.kind,
            actor: SYSTEM_ACTOR,
            provider: self.provider(&rec.spec.provider)?.clone(),
            current: rec,
            entry: Entry::Resume {
                op_id: op.id.clone(),
                success,
            },
            work,
            detached: Detached::default(),
            rekey: None,
        })))
    }

    /// An interrupted create: adopt what it created, then delete it all
    /// and the row.
    fn undo_create(&self, op: &Operation, rec: &SubscriptionRecord) -> Result<Work, Error> {
        let after = op.after.clone().unwrap_or_else(|| rec.spec.clone());
        let plans = self.plans_for(&rec.id, &after, &rec.natives)?;
        Ok(Work::Apply {
            old: plans.clone(),
            wanted: Vec::new(),
            adopt: Some(Adopt {
                plans,
                replacements: false,
            }),
            then: Then::Delete,
        })
    }

    /// An interrupted update, enable, disable, rotation or reconciliation:
    /// the entry's "after" spec is prepared again and applied, after
    /// adopting replacements and unrecorded resources of its plans.
    fn finish_change(&self, op: &Operation, rec: &SubscriptionRecord) -> Result<Work, Error> {
        let after = op
            .after
            .clone()
            .ok_or_else(|| Error::Internal("journal entry without its target state".into()))?;
        let provider = self.provider(&rec.spec.provider)?;
        let prepared = self.prepare(&rec.id, after)?;
        let wanted = self.wanted(provider, &prepared);
        Ok(Work::Apply {
            old: self.plans_for(&rec.id, &rec.spec, &rec.natives)?,
            adopt: Some(Adopt {
                plans: wanted.clone(),
                replacements: true,
            }),
            wanted,
            then: Then::Store(Box::new(prepared)),
        })
    }

    /// Renews the leases of this process's running changes, recovers
    /// abandoned ones and sweeps unknown steps, every `every`, until the
    /// task is aborted.
    pub fn spawn_maintenance(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let running = engine.running_ids();
                if let Err(e) = engine.store.renew_leases(&running, engine.lease()).await {
                    tracing::warn!(error = %e, "renewing journal leases failed");
                }
                if let Err(e) = engine.recover(engine.single_process).await {
                    tracing::warn!(error = %e, "recovery scan failed");
                }
                if let Err(e) = engine.sweep().await {
                    tracing::warn!(error = %e, "verification sweep failed");
                }
            }
        })
    }
}
