//! The background reconciliation pass, by account: each (provider
//! instance, account) that has subscriptions is listed once, every page,
//! and all of its subscriptions are compared with that listing in memory
//! (`reconcile.rs`), so a pass costs the listings plus the repairs, however
//! the subscriptions are spread.
//!
//! Subscriptions found clean are marked checked in bulk, a few statements
//! per chunk and no journal entry; only those with findings go through a
//! journalled per-subscription change, which repairs from the same
//! listing. Pending and failed subscriptions are left to their owners.
//!
//! A pass is spread over ticks: each tick may spend a budget of upstream
//! calls per provider instance ([`ReconcilePolicy::budgets`]); an account
//! that would overrun it waits for the next tick, where the pass resumes
//! (its cursor is stored, so a restart or another replica resumes it too).
//! One replica at a time runs ticks (the try-lock `switchboard/reconciler`).
//! Ticks, completed passes and each account's check are counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use switchboard_core::operation::FindingKind;
use switchboard_core::transport::{CallMeter, metered};
use switchboard_core::{Error, SubscriptionStatus};
use switchboard_store::reconciliation::account_of;
use switchboard_store::{AccountCheck, Pass, SubscriptionRecord};
use switchboard_telemetry::record;

use crate::engine::{Engine, ProviderInstance, SYSTEM_ACTOR};
use crate::reconcile::{Snapshot, compare, read_recorded};

/// The name of the lock that keeps ticks to one replica at a time.
const LOCK: &str = "switchboard/reconciler";

/// How the pass spends upstream calls and memory.
#[derive(Debug, Clone)]
pub struct ReconcilePolicy {
    /// Upstream calls (pages, token mints, repairs) each provider instance
    /// may spend per tick; an instance not listed is unlimited.
    pub budgets: BTreeMap<String, u64>,
    /// Subscriptions loaded and compared at a time.
    pub chunk: u64,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        Self {
            budgets: BTreeMap::new(),
            chunk: 500,
        }
    }
}

/// What one tick did.
#[derive(Debug, Clone)]
pub struct TickReport {
    /// The pass as the tick left it.
    pub pass: Pass,
    /// Accounts checked in this tick.
    pub accounts: u64,
    /// Upstream calls made in this tick.
    pub upstream_calls: u64,
}

/// Counts of one account's check.
#[derive(Debug, Default)]
struct Tally {
    checked: u64,
    findings: u64,
    /// `findings` by kind, for metrics.
    by_kind: HashMap<FindingKind, u64>,
    repairs: u64,
    list_calls: u64,
}

impl Engine {
    /// Runs a tick of the reconciliation pass every `every`, until aborted.
    pub fn spawn_reconciler(
        &self,
        every: Duration,
        policy: ReconcilePolicy,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = engine.reconcile_tick(&policy).await {
                    tracing::warn!(error = %e, "reconciliation tick failed");
                }
            }
        })
    }

    /// One tick of the pass: resumes the pass under way (or starts one)
    /// and goes on with each provider instance until its budget is spent
    /// or its accounts are done. `None` when another replica holds the
    /// reconciler lock.
    pub async fn reconcile_tick(
        &self,
        policy: &ReconcilePolicy,
    ) -> Result<Option<TickReport>, Error> {
        let Some(lock) = self.store.try_lock(LOCK).await? else {
            return Ok(None);
        };
        let started = tokio::time::Instant::now();
        let ran = self.tick(policy).await;
        lock.release().await;
        record::reconcile_tick(started.elapsed());
        if let Ok(TickReport {
            pass:
                Pass {
                    started_at,
                    finished_at: Some(finished_at),
                    ..
                },
            ..
        }) = &ran
        {
            // A tick resumes an unfinished pass: one that is finished now
            // was finished by this tick.
            record::reconcile_pass((*finished_at - *started_at).to_std().unwrap_or_default());
        }
        ran.map(Some)
    }

    async fn tick(&self, policy: &ReconcilePolicy) -> Result<TickReport, Error> {
        let providers: Vec<ProviderInstance> = self.providers().cloned().collect();
        let keys: Vec<String> = providers.iter().map(|p| p.key.clone()).collect();
        for key in &keys {
            self.store.fill_accounts(key).await?;
        }
        let mut pass = self.store.begin_tick(&keys).await?;
        let mut report = TickReport {
            pass: pass.clone(),
            accounts: 0,
            upstream_calls: 0,
        };
        for provider in &providers {
            if pass.cursors.get(&provider.key).is_some_and(|c| c.done) {
                continue;
            }
            let budget = policy.budgets.get(&provider.key).copied();
            let done = self
                .provider_tick(&pass, provider, budget, policy.chunk, &mut report)
                .await?;
            if done {
                pass = self
                    .store
                    .finish_provider(&pass.id, &provider.key, &keys)
                    .await?;
            }
        }
        report.pass = self.store.reconciliation_pass(&pass.id).await?;
        Ok(report)
    }

    /// Checks `provider`'s accounts from where `pass` stands, within
    /// `budget` calls; whether every account is done. The first account
    /// of a tick is always checked, so an account that costs more than the
    /// whole budget still gets its tick.
    async fn provider_tick(
        &self,
        pass: &Pass,
        provider: &ProviderInstance,
        budget: Option<u64>,
        chunk: u64,
        report: &mut TickReport,
    ) -> Result<bool, Error> {
        let key = provider.key.as_str();
        let mut after = pass.cursors.get(key).and_then(|c| c.after.clone());
        let mut spent = 0;
        loop {
            let Some(account) = self.store.next_account(key, after.as_deref()).await? else {
                return Ok(true);
            };
            if let Some(budget) = budget {
                let expected = self
                    .store
                    .account_list_calls(key, &account)
                    .await?
                    .unwrap_or(1)
                    .max(1);
                if spent > 0 && spent + expected > budget {
                    return Ok(false);
                }
            }
            let check = self
                .check_account(&pass.id, provider, &account, chunk)
                .await;
            spent += check.upstream_calls;
            report.accounts += 1;
            report.upstream_calls += check.upstream_calls;
            self.store.record_account_check(&check).await?;
            after = Some(account);
        }
    }

    /// Lists one account and checks all its subscriptions against the
    /// listing, counting the upstream calls it takes.
    async fn check_account(
        &self,
        pass_id: &str,
        provider: &ProviderInstance,
        account: &str,
        chunk: u64,
    ) -> AccountCheck {
        let meter = Arc::new(CallMeter::default());
        let mut tally = Tally::default();
        let walked = metered(
            meter.clone(),
            self.walk_account(provider, account, chunk, &meter, &mut tally),
        )
        .await;
        if let Err(e) = &walked {
            tracing::warn!(provider = %provider.key, account, error = %e, "account not reconciled");
        }
        let kind = |k| tally.by_kind.get(&k).copied().unwrap_or_default();
        let counted = record::AccountTally {
            checked: tally.checked,
            missing: kind(FindingKind::Missing),
            drifted: kind(FindingKind::Drifted),
            unknown: kind(FindingKind::Unknown),
            repairs: tally.repairs,
            upstream_calls: meter.calls(),
            failed: walked.is_err(),
        };
        record::reconcile_account(&provider.key, &counted);
        AccountCheck {
            provider: provider.key.clone(),
            account: account.to_owned(),
            pass_id: pass_id.to_owned(),
            checked_at: Utc::now(),
            subscriptions_checked: tally.checked,
            findings: tally.findings,
            repairs: tally.repairs,
            upstream_calls: meter.calls(),
            list_calls: tally.list_calls,
            error: walked.err().map(|e| e.to_string()),
        }
    }

    async fn walk_account(
        &self,
        provider: &ProviderInstance,
        account: &str,
        chunk: u64,
        meter: &CallMeter,
        tally: &mut Tally,
    ) -> Result<(), Error> {
        let adapter = provider.adapter.as_ref();
        let taken_at = Utc::now();
        let resources = adapter.list(account_of(account)).await?;
        tally.list_calls = meter.calls();
        let recorded = self
            .store
            .account_native_ids(&provider.key, account)
            .await?;
        let complete = adapter.capabilities().list_is_complete;
        let snapshot = Arc::new(Snapshot::new(resources, recorded, taken_at, complete));
        let mut after: Option<String> = None;
        loop {
            let (subs, next) = self
                .store
                .account_subscriptions(&provider.key, account, after.as_deref(), chunk)
                .await?;
            self.check_chunk(provider, &snapshot, subs, tally).await?;
            match next {
                Some(cursor) => after = Some(cursor),
                None => return Ok(()),
            }
        }
    }

    /// Compares one chunk of an account's subscriptions with `snapshot`:
    /// the clean ones are marked checked in bulk, the others reconciled
    /// one by one from the same snapshot.
    async fn check_chunk(
        &self,
        provider: &ProviderInstance,
        snapshot: &Arc<Snapshot>,
        subs: Vec<SubscriptionRecord>,
        tally: &mut Tally,
    ) -> Result<(), Error> {
        let adapter = provider.adapter.as_ref();
        let (mut active, mut disabled, mut dirty) = (Vec::new(), Vec::new(), Vec::new());
        for rec in subs {
            // Pending: a change owns it. Failed: its last change could not
            // be applied; repairing would resurrect it behind the caller's
            // back. Changed since the listing: the listing may predate it;
            // the next pass looks.
            if matches!(
                rec.status,
                SubscriptionStatus::Pending | SubscriptionStatus::Failed
            ) || rec.updated_at >= snapshot.taken_at
            {
                continue;
            }
            tally.checked += 1;
            let prepared = match self.prepare(&rec.id, rec.spec.clone()) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(sub = %rec.id, error = %e, "cannot plan a subscription to reconcile it");
                    continue;
                }
            };
            let wanted = self.wanted(provider, &prepared);
            let account = rec.spec.account.as_deref();
            let reads = read_recorded(adapter, account, snapshot, &rec.natives).await?;
            let diffs = compare(snapshot, &reads, &rec, &wanted);
            for d in &diffs {
                *tally.by_kind.entry(d.kind()).or_default() += 1;
            }
            if !diffs.is_empty() {
                tally.findings += diffs.len() as u64;
                dirty.push(rec);
            } else if rec.spec.enabled {
                active.push(rec.id);
            } else {
                disabled.push(rec.id);
            }
        }
        let taken_at = snapshot.taken_at;
        let store = &self.store;
        store
            .mark_reconciled(SubscriptionStatus::Active, &active, taken_at)
            .await?;
        store
            .mark_reconciled(SubscriptionStatus::Disabled, &disabled, taken_at)
            .await?;
        for rec in dirty {
            if self.repair(snapshot, rec).await? {
                tally.repairs += 1;
            }
        }
        Ok(())
    }

    /// Reconciles one subscription with findings from the pass's
    /// snapshot, in a journalled change; whether it ran. One that a change
    /// touched since the listing is left to the next pass.
    async fn repair(
        &self,
        snapshot: &Arc<Snapshot>,
        rec: SubscriptionRecord,
    ) -> Result<bool, Error> {
        if self
            .store
            .changed_since(&rec.tenant, &rec.id, snapshot.taken_at)
            .await?
        {
            return Ok(false);
        }
        let id = rec.id.clone();
        match self
            .reconcile_record(rec, SYSTEM_ACTOR, false, Some(snapshot.clone()))
            .await
        {
            Ok(()) => Ok(true),
            Err(e) => {
                tracing::warn!(sub = %id, error = %e, "reconciliation failed");
                Ok(false)
            }
        }
    }
}
