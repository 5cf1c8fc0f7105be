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

use chrono::Utc;
use serde_json::{Value, json};
use switchboard_core::{Error, NativePlan, SubscriptionStatus, UpstreamErrorKind};
use switchboard_store::{NativeRecord, NewOperation, SubscriptionRecord};

use crate::apply::Target;
use crate::engine::{Engine, ProviderInstance, SYSTEM_ACTOR, status_for};

fn finding(
    kind: &str,
    key: Option<&str>,
    native_id: &str,
    detail: String,
    repaired: bool,
) -> Value {
    json!({"kind": kind, "key": key, "native_id": native_id, "detail": detail, "repaired": repaired})
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
        let current = self.store().get(tenant, id).await?;
        let provider = self.provider(&current.spec.provider)?.clone();
        let prepared = self.prepare(id, current.spec.clone())?;
        let wanted = self.wanted(&provider, &prepared).to_vec();
        let op_id = self
            .begin(NewOperation {
                tenant,
                subscription_id: id,
                kind: "reconcile",
                actor,
                before: Some(&current.spec),
                after: Some(&current.spec),
            })
            .await?;
        if let Err(e) = self.store().claim(tenant, id, current.version).await {
            self.end(&op_id, "failed", Some(&e)).await;
            return Err(e);
        }
        let target = Target {
            store: self.store(),
            tenant,
            sub_id: id,
            account: current.spec.account.as_deref(),
            op_id: &op_id,
        };
        let lock = if provider.adapter.capabilities().serialize_account {
            let name = format!(
                "{}/{}",
                provider.key,
                current.spec.account.as_deref().unwrap_or_default()
            );
            Some(self.store().lock_account(&name).await?)
        } else {
            None
        };
        let outcome = self
            .compare_and_repair(&provider, &target, &current, &wanted, remove_unknown)
            .await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        match outcome {
            Ok((_, findings)) => {
                let unrepaired = findings
                    .iter()
                    .any(|f| f["repaired"] == false && f["kind"] != "unknown");
                let status = if unrepaired {
                    SubscriptionStatus::Degraded
                } else {
                    status_for(&current.spec)
                };
                let saved = self
                    .store()
                    .finish_reconciliation(tenant, id, status, &findings)
                    .await;
                self.end(
                    &op_id,
                    if saved.is_ok() { "succeeded" } else { "failed" },
                    saved.as_ref().err(),
                )
                .await;
                saved?;
                self.store().get(tenant, id).await
            }
            Err(e) => {
                let _ = self
                    .store()
                    .release(tenant, id, current.status, current.last_error.clone())
                    .await;
                self.end(&op_id, "failed", Some(&e)).await;
                Err(e)
            }
        }
    }

    async fn compare_and_repair(
        &self,
        provider: &ProviderInstance,
        target: &Target<'_>,
        current: &SubscriptionRecord,
        wanted: &[NativePlan],
        remove_unknown: bool,
    ) -> Result<(Vec<NativeRecord>, Vec<Value>), Error> {
        let adapter = provider.adapter.as_ref();
        let url = current.spec.url.as_str();
        let mut natives = Vec::new();
        let mut findings = Vec::new();
        for rec in &current.natives {
            let Some(plan) = wanted.iter().find(|p| p.key == rec.key) else {
                natives.push(rec.clone());
                continue;
            };
            let drift = match adapter.get(target.account, &rec.native_id).await {
                Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => {
                    Some(("missing", "gone at the provider".to_owned()))
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
                    (!what.is_empty()).then(|| ("drifted", what.join(", ")))
                }
            };
            let Some((kind, detail)) = drift else {
                natives.push(rec.clone());
                continue;
            };
            let repaired = async {
                if kind == "drifted" {
                    adapter.delete(target.account, &rec.native_id).await?;
                }
                let created = adapter.create(target.account, plan).await?;
                let fresh = NativeRecord {
                    key: plan.key.clone(),
                    native_id: created.id,
                    events: plan.events.clone(),
                    enabled: created.enabled,
                    created_at: Utc::now(),
                };
                target
                    .store
                    .record_native(target.tenant, target.sub_id, &fresh)
                    .await?;
                Ok::<_, Error>(fresh)
            }
            .await;
            match repaired {
                Ok(fresh) => {
                    findings.push(finding(kind, Some(&rec.key), &rec.native_id, detail, true));
                    natives.push(fresh);
                }
                Err(e) => {
                    tracing::warn!(sub = %current.id, key = %rec.key, error = %e, "repair failed");
                    findings.push(finding(
                        kind,
                        Some(&rec.key),
                        &rec.native_id,
                        format!("{detail}; repair failed: {e}"),
                        false,
                    ));
                    natives.push(rec.clone());
                }
            }
        }
        // Planned resources never recorded (enable raced a crash, …).
        let unrecorded: Vec<&NativePlan> = wanted
            .iter()
            .filter(|p| !natives.iter().any(|n| n.key == p.key))
            .collect();
        for plan in unrecorded {
            let created = adapter.create(target.account, plan).await?;
            let fresh = NativeRecord {
                key: plan.key.clone(),
                native_id: created.id,
                events: plan.events.clone(),
                enabled: created.enabled,
                created_at: Utc::now(),
            };
            target
                .store
                .record_native(target.tenant, target.sub_id, &fresh)
                .await?;
            findings.push(finding(
                "missing",
                Some(&plan.key),
                &fresh.native_id,
                "was never recorded; created".into(),
                true,
            ));
            natives.push(fresh);
        }
        for found in adapter.list(target.account).await? {
            if found.url.as_deref() != Some(url)
                || natives.iter().any(|n| n.native_id == found.id)
                || self.store().native_is_recorded(&found.id).await?
            {
                continue;
            }
            let removed = remove_unknown && adapter.delete(target.account, &found.id).await.is_ok();
            findings.push(finding(
                "unknown",
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
                let lock = match engine.store().try_lock("switchboard/reconciler").await {
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
            let page = self.store().list(None, &q).await?;
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
