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
//! orphaned.

use std::time::Duration;

use switchboard_core::{Error, NativePlan, SubscriptionStatus};
use switchboard_store::Operation;

use crate::apply::{Target, adopt_orphans, adopt_replacements};
use crate::engine::{Engine, status_for};

impl Engine {
    /// Recovers abandoned changes; `all` takes every running entry (a
    /// single-process store at start-up, where nothing else can be running).
    /// Returns how many were handled.
    pub async fn recover(&self, all: bool) -> Result<usize, Error> {
        let ops = self.store().claim_abandoned(self.lease(), all).await?;
        let count = ops.len();
        for op in ops {
            let id = op.id.clone();
            self.track(&id);
            let outcome = self.resume(&op).await;
            match outcome {
                Ok(state) => {
                    tracing::info!(op = %id, sub = %op.subscription_id, kind = %op.kind, state, "recovered an interrupted change");
                    self.end(&id, state, None).await;
                }
                Err(e) => {
                    tracing::error!(op = %id, sub = %op.subscription_id, error = %e, "recovering an interrupted change failed");
                    let _ = self
                        .store()
                        .release(
                            &op.tenant,
                            &op.subscription_id,
                            SubscriptionStatus::Failed,
                            Some(e.to_string()),
                        )
                        .await;
                    self.end(&id, "failed", Some(&e)).await;
                }
            }
        }
        Ok(count)
    }

    async fn resume(&self, op: &Operation) -> Result<&'static str, Error> {
        let rec = match self.store().get(&op.tenant, &op.subscription_id).await {
            Ok(r) => r,
            // Nothing left: the create was never stored, or the delete
            // completed before the entry was closed.
            Err(Error::NotFound { .. }) => return Ok("recovered"),
            Err(e) => return Err(e),
        };
        let provider = self.provider(&rec.spec.provider)?.clone();
        let target = Target {
            store: self.store(),
            tenant: &rec.tenant,
            sub_id: &rec.id,
            account: rec.spec.account.as_deref(),
            op_id: &op.id,
        };
        match op.kind.as_str() {
            // The change completed and only closing its entry failed.
            "create" if rec.status != SubscriptionStatus::Pending => Ok("succeeded"),
            "create" => {
                let after = op.after.clone().unwrap_or_else(|| rec.spec.clone());
                let plans = self.plans_for(&rec.id, &after, &rec.natives)?;
                let recorded = adopt_orphans(
                    provider.adapter.as_ref(),
                    &target,
                    after.url.as_str(),
                    &plans,
                    &rec.natives,
                )
                .await?;
                self.apply_locked(&provider, &target, &plans, &recorded, &[])
                    .await?;
                self.store().delete(&rec.tenant, &rec.id).await?;
                Ok("undone")
            }
            "delete" => {
                let old = self.plans_for(&rec.id, &rec.spec, &rec.natives)?;
                self.apply_locked(&provider, &target, &old, &rec.natives, &[])
                    .await?;
                self.store().delete(&rec.tenant, &rec.id).await?;
                Ok("recovered")
            }
            _ => {
                if rec.status != SubscriptionStatus::Pending {
                    // Either the change completed and only closing its entry
                    // failed, or it never got its claim and sent nothing.
                    let done = op.after.as_ref() == Some(&rec.spec);
                    return Ok(if done { "succeeded" } else { "failed" });
                }
                let after = op.after.clone().ok_or_else(|| {
                    Error::Internal("journal entry without its target state".into())
                })?;
                let prepared = self.prepare(&rec.id, after)?;
                let wanted: Vec<NativePlan> = self.wanted(&provider, &prepared).to_vec();
                let (recorded, replaced) = adopt_replacements(
                    provider.adapter.as_ref(),
                    &target,
                    prepared.spec.url.as_str(),
                    &wanted,
                    &rec.natives,
                )
                .await?;
                let recorded = adopt_orphans(
                    provider.adapter.as_ref(),
                    &target,
                    prepared.spec.url.as_str(),
                    &wanted,
                    &recorded,
                )
                .await?;
                // Resources may be at the old or the new state: diffing from
                // the old plan to the new one converges either way, and keys
                // only the new state has were created from the new plan.
                let mut old = self.plans_for(&rec.id, &rec.spec, &rec.natives)?;
                // A replaced resource is already at the new state.
                old.retain(|o| !replaced.contains(&o.key));
                for p in &wanted {
                    if !old.iter().any(|o| o.key == p.key) {
                        old.push(p.clone());
                    }
                }
                let natives = self
                    .apply_locked(&provider, &target, &old, &recorded, &wanted)
                    .await?;
                let mut next = rec;
                next.status = status_for(&prepared.spec);
                next.spec = prepared.spec;
                next.warnings = prepared.warnings;
                next.last_error = None;
                next.natives = natives;
                self.store().update(&next).await?;
                Ok("recovered")
            }
        }
    }

    /// Renews the leases of this process's running changes and recovers
    /// abandoned ones, every `every`, until the task is aborted.
    pub fn spawn_maintenance(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let running = engine.running_ids();
                if let Err(e) = engine.store().renew_leases(&running, engine.lease()).await {
                    tracing::warn!(error = %e, "renewing journal leases failed");
                }
                if let Err(e) = engine.recover(false).await {
                    tracing::warn!(error = %e, "recovery scan failed");
                }
            }
        })
    }
}
