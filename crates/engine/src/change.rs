//! The one change pipeline: journal → claim → lock → work → record or
//! undo → close.
//!
//! Every use case (create, update, enable/disable, rotate-secret, delete,
//! reconcile) and recovery describe a [`Change`]: the subscription as read,
//! how its row becomes `pending` ([`Entry`]), and what to do upstream and
//! then store ([`Work`]). [`Engine::run`] does the rest, the same way for
//! all of them:
//!
//! 1. journal the change (before the claim, so a subscription is never
//!    `pending` without an entry recovery can finish);
//! 2. claim the row (or insert it, for a create); a refused claim is a 409
//!    and closes the entry `failed`;
//! 3. take the account lock when the kind serializes the account;
//! 4. do the work: [`apply`] (undo included) or reconciliation's
//!    compare-and-repair, after recovery's adoption where asked;
//! 5. store the result, or leave the subscription as the [`Failure`] says;
//! 6. close the journal entry.
//!
//! Entries opened and the states they close with are counted.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use switchboard_core::operation::{Finding, OperationKind, OperationState};
use switchboard_core::{Error, NativePlan, SubscriptionSpec, SubscriptionStatus};
use switchboard_store::{
    AccountLock, Claim, Close, NativeRecord, NewOperation, SubscriptionRecord,
};
use switchboard_telemetry::record;

use crate::apply::{Failure, Target, adopt_orphans, adopt_replacements, apply};
use crate::engine::{Detached, Engine, Prepared, ProviderInstance, status_for};
use crate::progress::{Unwritten, settle_with_slack};
use crate::reconcile::Snapshot;

/// How a change's subscription row becomes `pending`.
pub(crate) enum Entry {
    /// A create: the row (`current`, pending at version 0) is inserted.
    Insert,
    /// The row is claimed at the version read; a moved-on row is a 409.
    Claim,
    /// Recovery: the journal entry of a dead process, already claimed by
    /// this replica, whose row is still pending. `success` is the state
    /// the entry closes with when the work succeeds.
    Resume {
        /// The entry being resumed.
        op_id: String,
        /// Its state once the work succeeded.
        success: OperationState,
    },
}

/// What a change does upstream, and what it stores once that succeeded.
pub(crate) enum Work {
    /// Moves the provider from the recorded natives (made from `old`
    /// plans) to `wanted`, then does `then`.
    Apply {
        /// The plans the recorded natives were made from.
        old: Vec<NativePlan>,
        /// The plans that should exist afterwards.
        wanted: Vec<NativePlan>,
        /// Recovery only: resources to adopt first.
        adopt: Option<Adopt>,
        /// What to store once applied.
        then: Then,
    },
    /// Compares with the provider and repairs drift
    /// (`reconcile.rs::compare_and_repair`); stores the findings.
    Reconcile {
        /// The plans that should exist.
        wanted: Vec<NativePlan>,
        /// Also delete lookalike resources nobody recorded.
        remove_unknown: bool,
        /// A pass's listing of the account to compare with; `None` lists
        /// the account for this change alone.
        snapshot: Option<Arc<Snapshot>>,
    },
}

/// What an applied change stores.
pub(crate) enum Then {
    /// The new spec, its status and the native set (version + 1).
    Store(Box<Prepared>),
    /// Nothing: the row is deleted.
    Delete,
}

/// Recovery's adoption of what a dead process created but did not record.
pub(crate) struct Adopt {
    /// The plans they were created from (of the change's "after" spec).
    pub plans: Vec<NativePlan>,
    /// Also adopt replacements of recorded resources (kinds that change a
    /// resource by replacing it), not only unrecorded ones.
    pub replacements: bool,
}

/// One change, described; [`Engine::run`] carries it out.
pub(crate) struct Change<'a> {
    /// What the journal calls it.
    pub kind: OperationKind,
    /// Token name, or `switchboard`.
    pub actor: &'a str,
    /// The subscription's provider instance.
    pub provider: ProviderInstance,
    /// The subscription as read; for a create, the pending row to insert.
    pub current: SubscriptionRecord,
    /// How its row becomes `pending`.
    pub entry: Entry,
    /// What it does upstream and stores.
    pub work: Work,
    /// Set once the caller was answered `202`.
    pub detached: Detached,
    /// The key the subscription gets with the claim, when the change sets
    /// another one (a create's key is in `current`); `None`: unchanged.
    pub rekey: Option<Option<String>>,
}

impl Change<'_> {
    /// The spec the journal keeps as "after".
    fn after(&self) -> Option<&SubscriptionSpec> {
        match &self.work {
            Work::Apply {
                then: Then::Store(p),
                ..
            } => Some(&p.spec),
            Work::Apply {
                then: Then::Delete, ..
            } => None,
            Work::Reconcile { .. } => Some(&self.current.spec),
        }
    }

    /// The plans whose ingress routes must exist before the work starts:
    /// those a relay subscription wants (`None` otherwise).
    fn routed(&self) -> Option<(&SubscriptionSpec, &[NativePlan])> {
        let spec = self.after().filter(|s| s.delivery.is_relay())?;
        match &self.work {
            Work::Apply { wanted, .. } | Work::Reconcile { wanted, .. } => Some((spec, wanted)),
        }
    }

    /// The native keys whose routes stay once the change succeeded, when
    /// it may leave routes behind (the subscription is or was relayed);
    /// `None`: nothing to prune (a reconciliation keeps what it repaired).
    fn routes_kept(&self) -> Option<Vec<String>> {
        let relayed = |s: &SubscriptionSpec| s.delivery.is_relay();
        match &self.work {
            Work::Reconcile { .. } => None,
            Work::Apply {
                then: Then::Delete, ..
            } => relayed(&self.current.spec).then(Vec::new),
            Work::Apply {
                wanted,
                then: Then::Store(p),
                ..
            } => {
                if relayed(&p.spec) {
                    Some(wanted.iter().map(|w| w.key.clone()).collect())
                } else {
                    relayed(&self.current.spec).then(Vec::new)
                }
            }
        }
    }

    /// The key a claim that did not complete gives back: the one read,
    /// when the claim set another.
    fn restored_key(&self) -> Option<Option<String>> {
        self.rekey.as_ref().map(|_| self.current.key.clone())
    }

    /// The state the journal entry closes with on success.
    pub(crate) fn success(&self) -> OperationState {
        match &self.entry {
            Entry::Resume { success, .. } => *success,
            Entry::Insert | Entry::Claim => OperationState::Succeeded,
        }
    }
}

/// How a released claim leaves its row: status, last error, and the key
/// to give back (when the claim changed it).
type Released = (SubscriptionStatus, Option<String>, Option<Option<String>>);

/// What a successful piece of work produced.
struct Applied {
    natives: Vec<NativeRecord>,
    findings: Vec<Finding>,
}

/// How a failed change leaves its subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leave {
    /// As it was before the change (status and last error).
    Previous,
    /// `failed`, with the error.
    Failed,
    /// Deleted: a create that was undone before anyone saw it.
    Gone,
}

/// The decision table of a failed change: how the subscription is left and
/// the state its journal entry closes with. Whether the undo succeeded
/// decides, never the kind of error that stopped the change.
pub(crate) fn on_failure(
    entry: &Entry,
    failure: &Failure,
    detached: bool,
) -> (Leave, OperationState) {
    match (entry, failure) {
        // Nobody is waiting for a recovered change: its failure must show.
        (Entry::Resume { .. }, _) | (_, Failure::UndoFailed { .. }) => {
            (Leave::Failed, OperationState::Failed)
        }
        // Reconciliation has no undo; its repairs are recorded as made.
        (_, Failure::Stopped(_)) => (Leave::Previous, OperationState::Failed),
        // The caller was answered `202`: the failure stays visible.
        (_, Failure::Undone(_)) if detached => (Leave::Failed, OperationState::Undone),
        (Entry::Insert, Failure::Undone(_)) => (Leave::Gone, OperationState::Undone),
        (Entry::Claim, Failure::Undone(_)) => (Leave::Previous, OperationState::Undone),
    }
}

impl Engine {
    /// Carries out `change`. Returns the stored record, or `None` when the
    /// change stores no new spec (a delete, a reconciliation).
    pub(crate) async fn run(
        &self,
        change: Change<'_>,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        if let Some((spec, plans)) = change.routed() {
            let (tenant, id) = (&change.current.tenant, &change.current.id);
            self.write_routes(tenant, id, spec, plans).await?;
        }
        let routes_kept = change.routes_kept();
        let (op_id, settle_at) = self.open(&change).await?;
        let target = Target {
            store: &self.store,
            tenant: &change.current.tenant,
            sub_id: &change.current.id,
            account: change.current.spec.account.as_deref(),
            op_id: &op_id,
            policy: &self.steps,
            before: &change.current.spec,
            after: change.after().unwrap_or(&change.current.spec),
            unwritten: Unwritten::new(settle_at, !matches!(change.entry, Entry::Resume { .. })),
        };
        let worked = self.work_locked(&change, &target).await;
        let unwritten = target.take_unwritten();
        let operation = change.kind.as_str();
        match worked {
            Ok(applied) => {
                let success = change.success();
                let sub_id = change.current.id.clone();
                let stored = self.record(change, &op_id, applied, unwritten).await;
                if let (Ok(_), Some(keep)) = (&stored, routes_kept) {
                    // A route left behind is harmless (its token reaches
                    // no native); the next change of the subscription
                    // prunes it again.
                    if let Err(e) = self.store.retain_relay_routes(&sub_id, &keep).await {
                        tracing::warn!(subscription = %sub_id, error = %e, "pruning relay routes failed");
                    }
                }
                let state = if stored.is_ok() {
                    success
                } else {
                    OperationState::Failed
                };
                record::journal_closed(operation, state.as_str());
                stored
            }
            Err(failure) => {
                let (_, state) = on_failure(&change.entry, &failure, change.detached.is_set());
                record::journal_closed(operation, state.as_str());
                Err(self.leave(change, &op_id, failure, unwritten).await)
            }
        }
    }

    /// Journals the change and claims (or inserts) its row, in one
    /// transaction that also marks the first request in flight; returns
    /// the journal entry and the mark.
    async fn open(&self, c: &Change<'_>) -> Result<(String, Option<DateTime<Utc>>), Error> {
        let (tenant, id) = (c.current.tenant.as_str(), c.current.id.as_str());
        if let Entry::Resume { op_id, .. } = &c.entry {
            return Ok((op_id.clone(), None));
        }
        let op = NewOperation {
            tenant,
            subscription_id: id,
            kind: c.kind,
            actor: c.actor,
            before: (!matches!(c.entry, Entry::Insert)).then_some(&c.current.spec),
            after: c.after(),
        };
        let claim = match (&c.entry, &c.rekey) {
            // Written before the first upstream call, so every native
            // resource created is recorded against a row that exists.
            (Entry::Insert, _) => Claim::Insert(&c.current),
            (_, Some(key)) => Claim::Rekey {
                version: c.current.version,
                key: key.as_deref(),
            },
            (_, None) => Claim::Version(c.current.version),
        };
        let settle_at = settle_with_slack(&self.steps);
        let op_id = self
            .store
            .open_change(&op, self.lease, claim, Some(settle_at))
            .await?;
        self.track(&op_id);
        record::journal_started(c.kind.as_str());
        Ok((op_id, Some(settle_at)))
    }

    /// Does the work, under the account lock when the kind keeps one
    /// shared document per account (held for the whole of it, undo
    /// included).
    async fn work_locked(&self, c: &Change<'_>, target: &Target<'_>) -> Result<Applied, Failure> {
        // Nothing was done yet when locking fails: the previous state stands.
        let lock = self
            .lock_account(&c.provider, target.account)
            .await
            .map_err(Failure::Undone)?;
        let worked = self.work(c, target).await;
        if let Some(lock) = lock {
            lock.release().await;
        }
        worked
    }

    /// The account lock `<provider key>/<account>`, for kinds that
    /// serialize their writes per account; `None` for the others.
    pub(crate) async fn lock_account(
        &self,
        provider: &ProviderInstance,
        account: Option<&str>,
    ) -> Result<Option<AccountLock>, Error> {
        if !provider.adapter.capabilities().serialize_account {
            return Ok(None);
        }
        let name = format!("{}/{}", provider.key, account.unwrap_or_default());
        self.store.lock_account(&name).await.map(Some)
    }

    async fn work(&self, c: &Change<'_>, target: &Target<'_>) -> Result<Applied, Failure> {
        let adapter = c.provider.adapter.as_ref();
        match &c.work {
            Work::Reconcile {
                wanted,
                remove_unknown,
                snapshot,
            } => {
                let (natives, findings) = self
                    .compare_and_repair(
                        &c.provider,
                        target,
                        &c.current,
                        wanted,
                        *remove_unknown,
                        snapshot.as_deref(),
                    )
                    .await
                    .map_err(Failure::Stopped)?;
                Ok(Applied { natives, findings })
            }
            Work::Apply {
                old,
                wanted,
                adopt: None,
                ..
            } => {
                let natives = apply(adapter, target, old, &c.current.natives, wanted).await?;
                Ok(Applied {
                    natives,
                    findings: Vec::new(),
                })
            }
            Work::Apply {
                old,
                wanted,
                adopt: Some(adopt),
                ..
            } => {
                let (old, recorded) = self
                    .adopt(c, target, adopt, old, wanted)
                    .await
                    .map_err(Failure::Stopped)?;
                let natives = apply(adapter, target, &old, &recorded, wanted).await?;
                Ok(Applied {
                    natives,
                    findings: Vec::new(),
                })
            }
        }
    }

    /// Recovery's adoption: returns the base plans and the records to
    /// apply from. Resources may be at the old or the new state: diffing
    /// from the old plan to the new one converges either way; a replaced
    /// resource is already at the new state, and keys only the new state
    /// has were created from the new plan, so both diff from the new plan.
    async fn adopt(
        &self,
        c: &Change<'_>,
        target: &Target<'_>,
        adopt: &Adopt,
        old: &[NativePlan],
        wanted: &[NativePlan],
    ) -> Result<(Vec<NativePlan>, Vec<NativeRecord>), Error> {
        let adapter = c.provider.adapter.as_ref();
        let (recorded, replaced) = if adopt.replacements {
            adopt_replacements(adapter, target, &adopt.plans, &c.current.natives).await?
        } else {
            (c.current.natives.clone(), Vec::new())
        };
        let recorded = adopt_orphans(adapter, target, &adopt.plans, &recorded).await?;
        let mut old = old.to_vec();
        old.retain(|o| !replaced.contains(&o.key));
        for p in wanted {
            if !old.iter().any(|o| o.key == p.key) {
                old.push(p.clone());
            }
        }
        Ok((old, recorded))
    }

    /// Stores what a successful change produced and closes its entry, in
    /// one transaction. A final write that fails leaves the subscription
    /// `failed`, with the natives it made recorded.
    async fn record(
        &self,
        c: Change<'_>,
        op_id: &str,
        applied: Applied,
        unwritten: Unwritten,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        let success = c.success();
        let (tenant, id) = (c.current.tenant.clone(), c.current.id.clone());
        let old_key = c.restored_key();
        let next;
        let close = match c.work {
            Work::Reconcile { .. } => {
                let status = if applied.findings.iter().any(Finding::degrades) {
                    SubscriptionStatus::Degraded
                } else {
                    status_for(&c.current.spec)
                };
                Close::Reconciled {
                    status,
                    findings: &applied.findings,
                }
            }
            Work::Apply {
                then: Then::Delete, ..
            } => Close::Delete,
            Work::Apply {
                then: Then::Store(prepared),
                ..
            } => {
                let prepared = *prepared;
                let mut rec = c.current;
                if let Some(key) = c.rekey {
                    rec.key = key;
                }
                rec.status = status_for(&prepared.spec);
                rec.spec = prepared.spec;
                rec.warnings = prepared.warnings;
                rec.last_error = None;
                rec.natives = applied.natives;
                next = rec;
                Close::Store(&next)
            }
        };
        let progress = unwritten.progress();
        let closed = self
            .store
            .close_change(op_id, &tenant, &id, &progress, close, success, None)
            .await;
        match closed {
            Ok(rec) => {
                self.untrack(op_id);
                Ok(rec)
            }
            Err(e) => {
                // What exists upstream must stay known: when even that
                // cannot be written the entry stays running, for recovery.
                if let Err(again) = self.store.progress(op_id, &tenant, &id, &progress).await {
                    tracing::error!(op = op_id, error = %again, "change result not written; recovery will finish it");
                    // Its lease must lapse for recovery to take it.
                    self.untrack(op_id);
                    return Err(e);
                }
                let released = (SubscriptionStatus::Failed, Some(e.to_string()), old_key);
                self.release_and_end(op_id, &tenant, &id, released, OperationState::Failed, &e)
                    .await;
                Err(e)
            }
        }
    }

    /// Leaves the subscription of a failed change as [`on_failure`] says,
    /// closes its entry and returns the caller's error.
    async fn leave(
        &self,
        c: Change<'_>,
        op_id: &str,
        failure: Failure,
        unwritten: Unwritten,
    ) -> Error {
        let (leave, state) = on_failure(&c.entry, &failure, c.detached.is_set());
        let err = failure.into_error();
        let (tenant, id) = (c.current.tenant.as_str(), c.current.id.as_str());
        let progress = unwritten.progress();
        if let Err(e) = self.store.progress(op_id, tenant, id, &progress).await {
            // What exists upstream is not recorded: the entry stays
            // running, and once its lease lapses recovery finds it all by
            // looking.
            tracing::error!(op = op_id, error = %e, "failed change's steps not written; recovery will finish it");
            self.untrack(op_id);
            return err;
        }
        match (leave, &c.entry) {
            (Leave::Gone, _) => {
                if let Err(e) = self.store.delete(tenant, id).await {
                    // The entry stays running: recovery undoes the create.
                    return e;
                }
                self.end(op_id, state, Some(&err)).await;
            }
            (Leave::Previous, _) => {
                let last_error = c.current.last_error.clone();
                let released = (c.current.status, last_error, c.restored_key());
                self.release_and_end(op_id, tenant, id, released, state, &err)
                    .await;
            }
            // A create's row was never visible at a version: it becomes
            // version 1, `failed`.
            (Leave::Failed, Entry::Insert) => {
                self.mark_failed(tenant, id, &err).await;
                self.end(op_id, state, Some(&err)).await;
            }
            (Leave::Failed, _) => {
                let msg = Some(err.to_string());
                let released = (SubscriptionStatus::Failed, msg, c.restored_key());
                self.release_and_end(op_id, tenant, id, released, state, &err)
                    .await;
            }
        }
        err
    }

    /// Ends a claim without a new spec (the status, last error and, when
    /// the claim changed it, key of the pending row) and closes the
    /// change's entry, in one transaction.
    async fn release_and_end(
        &self,
        op_id: &str,
        tenant: &str,
        id: &str,
        (status, last_error, key): Released,
        state: OperationState,
        err: &Error,
    ) {
        self.untrack(op_id);
        let error = Some(err.to_string());
        let released = self
            .store
            .release_change(
                op_id,
                tenant,
                id,
                status,
                last_error,
                key.as_ref().map(|k| k.as_deref()),
                state,
                error,
            )
            .await;
        if let Err(e) = released {
            tracing::error!(sub = %id, op = op_id, error = %e, "cannot release a claimed subscription; recovery will");
        }
    }

    async fn mark_failed(&self, tenant: &str, id: &str, err: &Error) {
        if let Ok(mut rec) = self.store.get(tenant, id).await {
            rec.status = SubscriptionStatus::Failed;
            rec.last_error = Some(err.to_string());
            if let Err(e) = self.store.update(&rec).await {
                tracing::error!(sub = %id, error = %e, "cannot mark a subscription failed");
            }
        }
    }

    /// Closes a journal entry.
    pub(crate) async fn end(&self, op_id: &str, state: OperationState, error: Option<&Error>) {
        self.untrack(op_id);
        if let Err(e) = self
            .store
            .finish_operation(op_id, state, error.map(ToString::to_string))
            .await
        {
            tracing::error!(op = op_id, error = %e, "journal entry not closed; recovery will close it");
        }
    }

    /// Stops renewing a journal entry's lease: it is closed, or left for
    /// recovery.
    fn untrack(&self, op_id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(op_id);
    }

    /// Marks a journal entry as run by this process.
    pub(crate) fn track(&self, op_id: &str) {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(op_id.to_owned());
    }

    /// Journal entries this process is running.
    pub(crate) fn running_ids(&self) -> Vec<String> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal() -> Error {
        Error::Internal("forward step failed".into())
    }

    #[test]
    fn an_undone_change_is_undone_whatever_its_error() {
        // The bug this table replaced: an `Internal` forward error whose
        // undo succeeded was treated as a failed undo.
        let undone = Failure::Undone(internal());
        assert_eq!(
            on_failure(&Entry::Claim, &undone, false),
            (Leave::Previous, OperationState::Undone)
        );
        assert_eq!(
            on_failure(&Entry::Insert, &undone, false),
            (Leave::Gone, OperationState::Undone)
        );
        assert_eq!(
            on_failure(&Entry::Insert, &undone, true),
            (Leave::Failed, OperationState::Undone)
        );
    }

    #[test]
    fn a_failed_undo_or_a_recovery_failure_shows_as_failed() {
        let stuck = Failure::UndoFailed {
            cause: internal(),
            undo: internal(),
        };
        for entry in [Entry::Insert, Entry::Claim] {
            assert_eq!(
                on_failure(&entry, &stuck, false),
                (Leave::Failed, OperationState::Failed)
            );
        }
        let resume = Entry::Resume {
            op_id: "op_x".into(),
            success: OperationState::Recovered,
        };
        assert_eq!(
            on_failure(&resume, &Failure::Undone(internal()), false),
            (Leave::Failed, OperationState::Failed)
        );
        assert_eq!(
            on_failure(&Entry::Claim, &Failure::Stopped(internal()), false),
            (Leave::Previous, OperationState::Failed)
        );
    }
}
