//! Diff-and-apply of native resources with undo on failure, and the
//! adoption of resources a crashed process created but did not record.
//!
//! [`apply`] moves the provider from what is recorded to what is wanted,
//! key by key, recording each step as soon as it completes. When a step
//! fails it undoes the steps it made, newest first, and reports a typed
//! [`Failure`]: the cause, and whether the undo succeeded.

use std::collections::BTreeMap;

use switchboard_core::operation::{Step, StepAction};
use switchboard_core::{Error, NativePlan, ProviderAdapter, UpstreamErrorKind};
use switchboard_store::{NativeRecord, Store};

/// Why a change's upstream work stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A step failed and every step already made was undone (or none was
    /// made): the provider is back at the previous state.
    Undone(Error),
    /// A step failed and undoing the steps already made failed too: the
    /// records say what really exists, and the subscription must show it.
    UndoFailed {
        /// The error that stopped the change.
        cause: Error,
        /// The error that stopped the undo.
        undo: Error,
    },
    /// Work that has no undo (reconciliation's repairs) stopped half way;
    /// what it did is recorded.
    Stopped(Error),
}

impl Failure {
    /// The error the caller gets: the cause, or, when the provider was left
    /// half-changed, an internal error that says so.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Self::Undone(e) | Self::Stopped(e) => e,
            Self::UndoFailed { cause, undo } => Error::Internal(format!(
                "{cause}; undoing the partial change also failed ({undo}); the subscription is marked failed"
            )),
        }
    }
}

/// One completed upstream step, kept so it can be undone.
enum Done {
    Created { key: String, native_id: String },
    Updated { key: String, native_id: String },
    Deleted { key: String },
}

/// Where the records of each step go.
pub(crate) struct Target<'a> {
    pub store: &'a Store,
    pub tenant: &'a str,
    pub sub_id: &'a str,
    pub account: Option<&'a str>,
    /// The journal entry of the change.
    pub op_id: &'a str,
}

impl Target<'_> {
    /// Records a native resource the moment it exists upstream.
    pub(crate) async fn record(&self, rec: &NativeRecord) -> Result<(), Error> {
        self.store
            .record_native(self.tenant, self.sub_id, rec)
            .await
    }

    /// Forgets a native resource once it is deleted upstream.
    async fn forget(&self, key: &str) -> Result<(), Error> {
        self.store
            .forget_native(self.tenant, self.sub_id, key)
            .await
    }

    /// Journals one completed native step. The native record itself is
    /// already written; a journal failure only loses history, so it is
    /// logged rather than failing the change.
    async fn step(&self, action: StepAction, key: &str, native_id: &str) {
        let step = Step::now(action, key, native_id);
        if let Err(e) = self.store.add_step(self.op_id, &step).await {
            tracing::warn!(op = self.op_id, error = %e, "journal step not written");
        }
    }
}

/// Moves the provider from `recorded` (made from `old` plans) to `new`.
/// Returns the native records that now exist. On failure, every step this
/// call made is undone; if the undo itself fails, the records of what
/// really exists are left in the store and [`Failure::UndoFailed`] says so.
pub(crate) async fn apply(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    old: &[NativePlan],
    recorded: &[NativeRecord],
    new: &[NativePlan],
) -> Result<Vec<NativeRecord>, Failure> {
    let mut run = Run {
        adapter,
        target,
        old: old.iter().map(|p| (p.key.as_str(), p)).collect(),
        new: new.iter().map(|p| (p.key.as_str(), p)).collect(),
        done: Vec::new(),
        result: recorded
            .iter()
            .map(|n| (n.key.clone(), n.clone()))
            .collect(),
    };
    match run.forward(recorded, new).await {
        Ok(()) => Ok(run.result.into_values().collect()),
        Err(cause) => match run.undo().await {
            Ok(()) => Err(Failure::Undone(cause)),
            Err(undo) => {
                tracing::error!(sub = target.sub_id, error = %undo, "undo after a failed change failed");
                Err(Failure::UndoFailed { cause, undo })
            }
        },
    }
}

/// The state of one [`apply`] call.
struct Run<'a> {
    adapter: &'a dyn ProviderAdapter,
    target: &'a Target<'a>,
    old: BTreeMap<&'a str, &'a NativePlan>,
    new: BTreeMap<&'a str, &'a NativePlan>,
    /// Completed steps, oldest first.
    done: Vec<Done>,
    /// The records as they stand, by key.
    result: BTreeMap<String, NativeRecord>,
}

impl Run<'_> {
    async fn forward(
        &mut self,
        recorded: &[NativeRecord],
        new: &[NativePlan],
    ) -> Result<(), Error> {
        // Creates and updates first, deletes last: a failure then most
        // often has only additions to undo, which cannot lose anything.
        for plan in new {
            match recorded.iter().find(|r| r.key == plan.key) {
                None => self.create(plan).await?,
                Some(existing) => self.update(existing, plan).await?,
            }
        }
        for rec in recorded {
            if !self.new.contains_key(rec.key.as_str()) {
                self.adapter
                    .delete(self.target.account, &rec.native_id)
                    .await?;
                self.target.forget(&rec.key).await?;
                self.target
                    .step(StepAction::Delete, &rec.key, &rec.native_id)
                    .await;
                self.done.push(Done::Deleted {
                    key: rec.key.clone(),
                });
                self.result.remove(&rec.key);
            }
        }
        Ok(())
    }

    async fn create(&mut self, plan: &NativePlan) -> Result<(), Error> {
        let rec = create(self.adapter, self.target, plan).await?;
        self.done.push(Done::Created {
            key: plan.key.clone(),
            native_id: rec.native_id.clone(),
        });
        self.result.insert(plan.key.clone(), rec);
        Ok(())
    }

    /// Changes `existing` to `plan`; an equal plan is skipped.
    async fn update(&mut self, existing: &NativeRecord, plan: &NativePlan) -> Result<(), Error> {
        let Some(old_plan) = self.old.get(plan.key.as_str()).copied() else {
            return Err(Error::Internal(format!(
                "no old plan for native `{}`",
                plan.key
            )));
        };
        if old_plan == plan {
            return Ok(());
        }
        let (adapter, target) = (self.adapter, self.target);
        let native = match adapter
            .update(target.account, &existing.native_id, old_plan, plan)
            .await
        {
            Ok(native) => native,
            // Deleted at the provider behind our back: recreate it from the
            // new plan rather than fail the change.
            Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => {
                tracing::warn!(sub = target.sub_id, key = %plan.key, "native resource vanished; recreating");
                target.forget(&plan.key).await?;
                return self.create(plan).await;
            }
            Err(e) => return Err(e),
        };
        let rec = NativeRecord {
            created_at: existing.created_at,
            ..NativeRecord::created(plan, native)
        };
        target.record(&rec).await?;
        target
            .step(StepAction::Update, &rec.key, &rec.native_id)
            .await;
        self.done.push(Done::Updated {
            key: plan.key.clone(),
            native_id: rec.native_id.clone(),
        });
        self.result.insert(plan.key.clone(), rec);
        Ok(())
    }

    /// Reverses the completed steps, newest first.
    async fn undo(&mut self) -> Result<(), Error> {
        let (adapter, target) = (self.adapter, self.target);
        while let Some(step) = self.done.pop() {
            match step {
                Done::Created { key, native_id } => {
                    adapter.delete(target.account, &native_id).await?;
                    target.forget(&key).await?;
                    target.step(StepAction::UndoCreate, &key, &native_id).await;
                }
                Done::Updated { key, native_id } => {
                    let (Some(old_plan), Some(new_plan)) =
                        (self.old.get(key.as_str()), self.new.get(key.as_str()))
                    else {
                        continue;
                    };
                    let native = adapter
                        .update(target.account, &native_id, new_plan, old_plan)
                        .await?;
                    let rec = NativeRecord::created(old_plan, native);
                    target.record(&rec).await?;
                    target
                        .step(StepAction::UndoUpdate, &rec.key, &rec.native_id)
                        .await;
                }
                Done::Deleted { key } => {
                    if let Some(old_plan) = self.old.get(key.as_str()) {
                        create(adapter, target, old_plan).await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Creates the resource of `plan` and records it.
async fn create(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    plan: &NativePlan,
) -> Result<NativeRecord, Error> {
    let native = adapter.create(target.account, plan).await?;
    let rec = NativeRecord::created(plan, native);
    if let Err(e) = target.record(&rec).await {
        // The resource exists upstream but could not be recorded: remove it
        // now rather than leave an orphan the database does not know about.
        let _ = adapter.delete(target.account, &rec.native_id).await;
        return Err(e);
    }
    target
        .step(StepAction::Create, &rec.key, &rec.native_id)
        .await;
    Ok(rec)
}

/// Records, as this subscription's, every resource the provider holds that
/// matches a planned-but-unrecorded native (same callback URL and events)
/// and that no subscription has recorded: resources created just before a
/// crash, before their record was written. Returns the recorded set with
/// the adopted ones added.
pub(crate) async fn adopt_orphans(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    url: &str,
    plans: &[NativePlan],
    recorded: &[NativeRecord],
) -> Result<Vec<NativeRecord>, Error> {
    let mut out = recorded.to_vec();
    let missing: Vec<&NativePlan> = plans
        .iter()
        .filter(|p| !recorded.iter().any(|r| r.key == p.key))
        .collect();
    if missing.is_empty() {
        return Ok(out);
    }
    let found = adapter.list(target.account).await?;
    for plan in missing {
        for candidate in &found {
            if candidate.url.as_deref() != Some(url) || candidate.events != plan.events {
                continue;
            }
            if out.iter().any(|r| r.native_id == candidate.id)
                || target.store.native_is_recorded(&candidate.id).await?
            {
                continue;
            }
            let rec = NativeRecord::created(plan, candidate.clone());
            target.record(&rec).await?;
            target
                .step(StepAction::Adopt, &rec.key, &rec.native_id)
                .await;
            out.push(rec);
            break;
        }
    }
    Ok(out)
}

/// For kinds that change a resource by replacing it (Sendblue's identity is
/// its URL; Bird recreates to clear a field), a crash can fall between
/// creating the replacement and deleting the original. For each recorded
/// native whose plan now points elsewhere, a provider resource that
/// matches the new plan (URL and events) and is recorded by no subscription
/// is that replacement: the original is deleted and the replacement
/// recorded. Returns the records and the keys so adopted.
pub(crate) async fn adopt_replacements(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    url: &str,
    plans: &[NativePlan],
    recorded: &[NativeRecord],
) -> Result<(Vec<NativeRecord>, Vec<String>), Error> {
    let mut out = recorded.to_vec();
    let mut replaced = Vec::new();
    let candidates: Vec<&NativePlan> = plans
        .iter()
        .filter(|p| recorded.iter().any(|r| r.key == p.key))
        .collect();
    if candidates.is_empty() {
        return Ok((out, replaced));
    }
    let found = adapter.list(target.account).await?;
    for plan in candidates {
        let Some(current) = out.iter().position(|r| r.key == plan.key) else {
            continue;
        };
        let original = out[current].native_id.clone();
        let Some(replacement) = found
            .iter()
            .find(|f| f.id != original && f.url.as_deref() == Some(url) && f.events == plan.events)
        else {
            continue;
        };
        if target.store.native_is_recorded(&replacement.id).await? {
            continue;
        }
        adapter.delete(target.account, &original).await?;
        let rec = NativeRecord::created(plan, replacement.clone());
        target.record(&rec).await?;
        target
            .step(StepAction::AdoptReplacement, &rec.key, &rec.native_id)
            .await;
        out[current] = rec;
        replaced.push(plan.key.clone());
    }
    Ok((out, replaced))
}
