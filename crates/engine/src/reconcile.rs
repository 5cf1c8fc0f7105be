//! Reconciliation: comparing what the store recorded with what the provider
//! reports, and repairing the difference.
//!
//! A recorded native resource that the provider no longer has is recreated;
//! one whose callback URL, events or on/off state differ from the plan is
//! replaced (deleted and created from the plan: the only repair every kind
//! supports without knowing what changed). Resources at the provider with
//! this subscription's callback URL that no subscription recorded look like
//! Switchboard's (an interrupted create, a copy made by hand): they are
//! reported, and removed only when the caller asks. While something could
//! not be repaired the subscription is `degraded`; every pass records when
//! it ran and what it found.

use std::time::Duration;

use switchboard_core::operation::{Finding, FindingKind, OperationKind};
use switchboard_core::{Error, NativePlan, ProviderAdapter, SubscriptionStatus, UpstreamErrorKind};
use switchboard_store::{NativeRecord, SubscriptionRecord};

use crate::apply::{Target, create};
use crate::change::{Change, Entry, Work};
use crate::engine::{Detached, Engine, ProviderInstance, SYSTEM_ACTOR};
use crate::step::{self, StepError};

fn finding(
    kind: FindingKind,
    key: Option<&str>,
    native_id: &str,
    detail: String,
    repaired: bool,
) -> Finding {
    Finding {
        kind,
        key: key.map(str::to_owned),
        native_id: native_id.to_owned(),
        detail,
        repaired,
    }
}

impl Engine {
    /// Compares subscription `id` with its provider and repairs drift.
    /// `remove_unknown` also deletes lookalike resources nobody recorded.
    pub async fn reconcile(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        remove_unknown: bool,
    ) -> Result<SubscriptionRecord, Error> {
        let current = self.store.get(tenant, id).await?;
        let provider = self.provider(&current.spec.provider)?.clone();
        let prepared = self.prepare(id, current.spec.clone())?;
        let wanted = self.wanted(&provider, &prepared);
        let change = Change {
            kind: OperationKind::Reconcile,
            actor,
            provider,
            current,
            entry: Entry::Claim,
            work: Work::Reconcile {
                wanted,
                remove_unknown,
            },
            detached: Detached::default(),
        };
        self.run(change).await?;
        self.store.get(tenant, id).await
    }

    /// Compares each recorded and each wanted native with the provider,
    /// repairs what differs, and lists what nobody recorded. Returns the
    /// native set and the findings. Repairs are recorded as they are made
    /// but not journalled as steps.
    pub(crate) async fn compare_and_repair(
        &self,
        provider: &ProviderInstance,
        target: &Target<'_>,
        current: &SubscriptionRecord,
        wanted: &[NativePlan],
        remove_unknown: bool,
    ) -> Result<(Vec<NativeRecord>, Vec<Finding>), Error> {
        let adapter = provider.adapter.as_ref();
        let mut natives = Vec::new();
        let mut findings = Vec::new();
        for rec in &current.natives {
            let Some(plan) = wanted.iter().find(|p| p.key == rec.key) else {
                natives.push(rec.clone());
                continue;
            };
            let (kept, found) = check_recorded(adapter, target, current, rec, plan).await?;
            natives.push(kept);
            findings.extend(found);
        }
        // Planned resources never recorded (enable raced a crash, …).
        let unrecorded: Vec<&NativePlan> = wanted
            .iter()
            .filter(|p| !natives.iter().any(|n| n.key == p.key))
            .collect();
        for plan in unrecorded {
            let fresh = create(adapter, target, target.forward(plan))
                .await
                .map_err(StepError::into_error)?;
            findings.push(finding(
                FindingKind::Missing,
                Some(&plan.key),
                &fresh.native_id,
                "was never recorded; created".into(),
                true,
            ));
            natives.push(fresh);
        }
        let url = current.spec.url.as_str();
        for found in adapter.list(target.account).await? {
            if found.url.as_deref() != Some(url)
                || natives.iter().any(|n| n.native_id == found.id)
                || self.store.native_is_recorded(&found.id).await?
            {
                continue;
            }
            let removed = remove_unknown && adapter.delete(target.account, &found.id).await.is_ok();
            findings.push(finding(
                FindingKind::Unknown,
                None,
                &found.id,
                format!(
                    "events {:?} at this callback URL, recorded by no subscription",
                    found.events
                ),
                removed,
            ));
        }
        Ok((natives, findings))
    }

    /// Reconciles every subscription every `every`, on one replica at a
    /// time (a try-lock; the others skip the pass), until aborted.
    pub fn spawn_reconciler(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let lock = match engine.store.try_lock("switchboard/reconciler").await {
                    Ok(Some(l)) => l,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "reconciler lock failed");
                        continue;
                    }
                };
                if let Err(e) = engine.reconcile_all().await {
                    tracing::warn!(error = %e, "reconciliation pass failed");
                }
                lock.release().await;
            }
        })
    }

    async fn reconcile_all(&self) -> Result<(), Error> {
        let mut q = switchboard_store::ListQuery {
            limit: 100,
            ..Default::default()
        };
        loop {
            let page = self.store.list(None, &q).await?;
            for rec in &page.data {
                // Pending: a change owns it. Failed: its last change could
                // not be applied; repairing would resurrect it behind the
                // caller's back. Both are left to their owners.
                if matches!(
                    rec.status,
                    SubscriptionStatus::Pending | SubscriptionStatus::Failed
                ) {
                    continue;
                }
                if let Err(e) = self
                    .reconcile(&rec.tenant, SYSTEM_ACTOR, &rec.id, false)
                    .await
                {
                    tracing::warn!(sub = %rec.id, error = %e, "reconciliation failed");
                }
            }
            match page.next_cursor {
                Some(c) => q.after = Some(c),
                None => return Ok(()),
            }
        }
    }
}

/// Compares recorded native `rec` with the provider's resource and, when it
/// is missing or drifted, replaces it from `plan` (the only repair every
/// kind supports without knowing what changed). Returns the record to keep
/// (the fresh one, or `rec` when nothing changed or the repair failed) and
/// the finding, if any. Only an error reading the resource stops the pass.
async fn check_recorded(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    current: &SubscriptionRecord,
    rec: &NativeRecord,
    plan: &NativePlan,
) -> Result<(NativeRecord, Option<Finding>), Error> {
    let url = current.spec.url.as_str();
    let drift = match adapter.get(target.account, &rec.native_id).await {
        Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => {
            Some((FindingKind::Missing, "gone at the provider".to_owned()))
        }
        Err(e) => return Err(e),
        Ok(found) => {
            let mut what = Vec::new();
            if found.url.as_deref() != Some(url) {
                what.push(format!("url is {:?}", found.url));
            }
            if found.events != plan.events {
                what.push(format!("events are {:?}", found.events));
            }
            if found.enabled != current.spec.enabled {
                what.push(format!("enabled is {}", found.enabled));
            }
            (!what.is_empty()).then(|| (FindingKind::Drifted, what.join(", ")))
        }
    };
    let Some((kind, detail)) = drift else {
        return Ok((rec.clone(), None));
    };
    let repaired = async {
        if kind == FindingKind::Drifted {
            step::delete(adapter, target, &rec.key, &rec.native_id)
                .await
                .map_err(StepError::into_error)?;
        }
        create(adapter, target, target.forward(plan))
            .await
            .map_err(StepError::into_error)
    }
    .await;
    Ok(match repaired {
        Ok(fresh) => {
            let f = finding(kind, Some(&rec.key), &rec.native_id, detail, true);
            (fresh, Some(f))
        }
        Err(e) => {
            tracing::warn!(sub = %current.id, key = %rec.key, error = %e, "repair failed");
            let detail = format!("{detail}; repair failed: {e}");
            let f = finding(kind, Some(&rec.key), &rec.native_id, detail, false);
            (rec.clone(), Some(f))
        }
    })
}
