//! Diff-and-apply of native resources with undo on failure, and the
//! adoption of resources a crashed process created but did not record.
//!
//! [`apply`] moves the provider from what is recorded to what is wanted,
//! key by key, recording each step as soon as it completes. When a step
//! fails it undoes the steps it made, newest first, and reports a typed
//! [`Failure`]: the cause, and whether the undo succeeded.

use std::collections::BTreeMap;
use std::sync::Mutex;

use switchboard_core::operation::StepAction;
use switchboard_core::{Error, NativePlan, ProviderAdapter, SubscriptionSpec, UpstreamErrorKind};
use switchboard_store::{NativeRecord, Store};

use crate::progress::Unwritten;
use crate::step::{self, Planned, StepError, StepPolicy, created_from, find_created};

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

/// One upstream step this change made (or may have made), kept so it can
/// be undone.
enum Done {
    Created {
        key: String,
        native_id: String,
    },
    /// A create whose outcome stayed unknown: the resource may exist.
    MaybeCreated {
        key: String,
    },
    Updated {
        key: String,
        native_id: String,
    },
    Deleted {
        key: String,
    },
    /// A delete whose outcome stayed unknown: the resource may be gone.
    MaybeDeleted {
        key: String,
        native_id: String,
    },
}

/// Where the records of each step go, and what the steps are made from.
pub(crate) struct Target<'a> {
    pub store: &'a Store,
    pub tenant: &'a str,
    pub sub_id: &'a str,
    pub account: Option<&'a str>,
    /// The journal entry of the change.
    pub op_id: &'a str,
    /// How steps wait, retry and are watched.
    pub policy: &'a StepPolicy,
    /// The spec the recorded natives were made from.
    pub before: &'a SubscriptionSpec,
    /// The spec the change moves to (the same as `before` for a delete
    /// or a reconciliation).
    pub after: &'a SubscriptionSpec,
    /// What the change did and has not written yet (`progress.rs`).
    pub unwritten: Mutex<Unwritten>,
}

impl Target<'_> {
    /// A plan of the spec the change moves to.
    pub(crate) fn forward<'p>(&'p self, plan: &'p NativePlan) -> Planned<'p> {
        Planned {
            plan,
            spec: self.after,
            from_before: false,
        }
    }

    /// A plan of the spec the recorded natives were made from.
    pub(crate) fn backward<'p>(&'p self, plan: &'p NativePlan) -> Planned<'p> {
        Planned {
            plan,
            spec: self.before,
            from_before: true,
        }
    }
}

/// What applying does to one native resource.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NativeStep<'a> {
    /// No resource is recorded for the plan: it is created.
    Create(&'a NativePlan),
    /// The recorded resource's plan changed (or its old plan is unknown):
    /// it is updated.
    Update(&'a NativeRecord, &'a NativePlan),
    /// The recorded resource's plan is unchanged: nothing is sent.
    Keep(&'a NativeRecord, &'a NativePlan),
    /// No plan wants the recorded resource: it is deleted.
    Delete(&'a NativeRecord),
}

/// The steps that move `recorded` (made from the `old` plans, by key) to
/// `new`, in the order [`apply`] takes them, which a preview reports
/// without sending anything. Creates and updates come first, in plan
/// order, deletes last: a failure then most often has only additions to
/// undo, which cannot lose anything.
pub(crate) fn diff<'a>(
    old: &BTreeMap<&str, &NativePlan>,
    recorded: &'a [NativeRecord],
    new: &'a [NativePlan],
) -> Vec<NativeStep<'a>> {
    let mut steps: Vec<NativeStep<'a>> = new
        .iter()
        .map(|plan| match recorded.iter().find(|r| r.key == plan.key) {
            None => NativeStep::Create(plan),
            Some(rec) if old.get(plan.key.as_str()).is_some_and(|o| *o == plan) => {
                NativeStep::Keep(rec, plan)
            }
            Some(rec) => NativeStep::Update(rec, plan),
        })
        .collect();
    steps.extend(
        recorded
            .iter()
            .filter(|r| !new.iter().any(|p| p.key == r.key))
            .map(NativeStep::Delete),
    );
    steps
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
    /// Steps made, oldest first.
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
        for step in diff(&self.old, recorded, new) {
            match step {
                NativeStep::Create(plan) => self.create(plan).await?,
                NativeStep::Update(existing, plan) => self.update(existing, plan).await?,
                NativeStep::Keep(..) => {}
                NativeStep::Delete(rec) => self.delete(rec).await?,
            }
        }
        Ok(())
    }

    async fn create(&mut self, plan: &NativePlan) -> Result<(), Error> {
        match create(self.adapter, self.target, self.target.forward(plan)).await {
            Ok(rec) => {
                self.done.push(Done::Created {
                    key: plan.key.clone(),
                    native_id: rec.native_id.clone(),
                });
                self.result.insert(plan.key.clone(), rec);
                Ok(())
            }
            Err(StepError::Unknown(e)) => {
                self.done.push(Done::MaybeCreated {
                    key: plan.key.clone(),
                });
                Err(e)
            }
            Err(StepError::Failed(e)) => Err(e),
        }
    }

    /// Changes `existing` to `plan` ([`diff`] keeps an equal plan).
    async fn update(&mut self, existing: &NativeRecord, plan: &NativePlan) -> Result<(), Error> {
        let Some(old_plan) = self.old.get(plan.key.as_str()).copied() else {
            return Err(Error::Internal(format!(
                "no old plan for native `{}`",
                plan.key
            )));
        };
        let (adapter, target) = (self.adapter, self.target);
        let id = existing.native_id.as_str();
        let (from, to) = (target.backward(old_plan), target.forward(plan));
        let native = match step::update(adapter, target, id, from, to).await {
            Ok(native) => native,
            // Deleted at the provider behind our back: recreate it from the
            // new plan rather than fail the change.
            Err(StepError::Failed(Error::Upstream(e))) if e.kind == UpstreamErrorKind::NotFound => {
                tracing::warn!(sub = target.sub_id, key = %plan.key, "native resource vanished; recreating");
                target.forget(&plan.key);
                return self.create(plan).await;
            }
            Err(StepError::Unknown(e)) => {
                // It may be at the new state: undoing it sends the old one.
                self.done.push(Done::Updated {
                    key: plan.key.clone(),
                    native_id: existing.native_id.clone(),
                });
                return Err(e);
            }
            Err(StepError::Failed(e)) => return Err(e),
        };
        let rec = NativeRecord {
            created_at: existing.created_at,
            ..NativeRecord::created(plan, native)
        };
        target.record(&rec);
        target.step(StepAction::Update, &rec.key, &rec.native_id);
        self.done.push(Done::Updated {
            key: plan.key.clone(),
            native_id: rec.native_id.clone(),
        });
        self.result.insert(plan.key.clone(), rec);
        Ok(())
    }

    async fn delete(&mut self, rec: &NativeRecord) -> Result<(), Error> {
        let (adapter, target) = (self.adapter, self.target);
        match step::delete(adapter, target, &rec.key, &rec.native_id).await {
            Ok(()) => {}
            Err(StepError::Unknown(e)) => {
                self.done.push(Done::MaybeDeleted {
                    key: rec.key.clone(),
                    native_id: rec.native_id.clone(),
                });
                return Err(e);
            }
            Err(StepError::Failed(e)) => return Err(e),
        }
        target.forget(&rec.key);
        target.step(StepAction::Delete, &rec.key, &rec.native_id);
        self.done.push(Done::Deleted {
            key: rec.key.clone(),
        });
        self.result.remove(&rec.key);
        Ok(())
    }

    /// Reverses the steps made, newest first. Each undo step is itself a
    /// step: retried while transient, and verified where its outcome is
    /// unknown.
    async fn undo(&mut self) -> Result<(), Error> {
        while let Some(done) = self.done.pop() {
            self.undo_one(done).await?;
        }
        Ok(())
    }

    async fn undo_one(&mut self, done: Done) -> Result<(), Error> {
        let (adapter, target) = (self.adapter, self.target);
        match done {
            Done::Created { key, native_id } => {
                step::delete(adapter, target, &key, &native_id)
                    .await
                    .map_err(StepError::into_error)?;
                target.forget(&key);
                target.step(StepAction::UndoCreate, &key, &native_id);
            }
            Done::MaybeCreated { key } => {
                let Some(plan) = self.new.get(key.as_str()).copied() else {
                    return Ok(());
                };
                for found in find_created(adapter, target, target.forward(plan)).await? {
                    step::delete(adapter, target, &key, &found.id)
                        .await
                        .map_err(StepError::into_error)?;
                    target.step(StepAction::UndoCreate, &key, &found.id);
                }
            }
            Done::Updated { key, native_id } => {
                let (Some(old_plan), Some(new_plan)) =
                    (self.old.get(key.as_str()), self.new.get(key.as_str()))
                else {
                    return Ok(());
                };
                let (from, to) = (target.forward(new_plan), target.backward(old_plan));
                let native = step::update(adapter, target, &native_id, from, to)
                    .await
                    .map_err(StepError::into_error)?;
                let rec = NativeRecord::created(old_plan, native);
                target.record(&rec);
                target.step(StepAction::UndoUpdate, &rec.key, &rec.native_id);
            }
            Done::Deleted { key } => {
                if let Some(old_plan) = self.old.get(key.as_str()).copied() {
                    create(adapter, target, target.backward(old_plan))
                        .await
                        .map_err(StepError::into_error)?;
                }
            }
            Done::MaybeDeleted { key, native_id } => {
                let gone = match adapter.get(target.account, &native_id).await {
                    Ok(_) => false,
                    Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => true,
                    Err(e) => return Err(e),
                };
                if gone {
                    target.forget(&key);
                    if let Some(old_plan) = self.old.get(key.as_str()).copied() {
                        create(adapter, target, target.backward(old_plan))
                            .await
                            .map_err(StepError::into_error)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Creates the resource of `p` (verified before any retry) and records it.
pub(crate) async fn create(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    p: Planned<'_>,
) -> Result<NativeRecord, StepError> {
    let native = step::create(adapter, target, p).await?;
    let rec = NativeRecord::created(p.plan, native);
    target.record(&rec);
    target.step(StepAction::Create, &rec.key, &rec.native_id);
    Ok(rec)
}

/// Recovery's adoption of resources a crashed process created but did not
/// record: every resource the provider holds that creating a
/// planned-but-unrecorded native would have made ([`created_from`]) and
/// that no subscription has recorded. Recovery only runs once the dead
/// process's requests can no longer land, so what is not found now was
/// never made (the sweep still watches). An adoptee whose on/off state is
/// not the plan's (killed between a create and its "set inactive") is
/// deleted instead, and created again from the plan by the apply that
/// follows. Returns the recorded set with the adopted ones added.
pub(crate) async fn adopt_orphans(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
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
            if !created_from(candidate, target.sub_id, target.after, plan)
                || out.iter().any(|r| r.native_id == candidate.id)
                || target.store.native_is_recorded(&candidate.id).await?
            {
                continue;
            }
            if candidate.enabled != target.after.enabled {
                adapter.delete(target.account, &candidate.id).await?;
                target.step(StepAction::RemoveLate, &plan.key, &candidate.id);
                continue;
            }
            let rec = NativeRecord::created(plan, candidate.clone());
            target.record(&rec);
            target.step(StepAction::Adopt, &rec.key, &rec.native_id);
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
/// creating the new plan would have made ([`created_from`]), at the
/// plan's on/off state and recorded by no subscription, is that
/// replacement: the original is deleted and the replacement recorded.
/// Returns the records and the keys so adopted.
pub(crate) async fn adopt_replacements(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
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
        let Some(replacement) = found.iter().find(|f| {
            f.id != original
                && f.enabled == target.after.enabled
                && created_from(f, target.sub_id, target.after, plan)
        }) else {
            continue;
        };
        if target.store.native_is_recorded(&replacement.id).await? {
            continue;
        }
        adapter.delete(target.account, &original).await?;
        let rec = NativeRecord::created(plan, replacement.clone());
        target.record(&rec);
        target.step(StepAction::AdoptReplacement, &rec.key, &rec.native_id);
        out[current] = rec;
        replaced.push(plan.key.clone());
    }
    Ok((out, replaced))
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn plan(key: &str, url: &str) -> NativePlan {
        NativePlan {
            key: key.into(),
            events: vec![key.into()],
            body: serde_json::json!({ "url": url }),
            secret_pointers: Vec::new(),
        }
    }

    fn record(key: &str) -> NativeRecord {
        NativeRecord {
            key: key.into(),
            native_id: format!("n-{key}"),
            events: vec![key.into()],
            enabled: true,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn the_diff_keeps_equal_plans_and_deletes_last() {
        let old = [plan("a", "u1"), plan("b", "u1"), plan("c", "u1")];
        let recorded = [record("a"), record("b"), record("c")];
        let new = [plan("d", "u1"), plan("b", "u2"), plan("a", "u1")];
        let old: BTreeMap<&str, &NativePlan> = old.iter().map(|p| (p.key.as_str(), p)).collect();
        let steps: Vec<String> = diff(&old, &recorded, &new)
            .into_iter()
            .map(|s| match s {
                NativeStep::Create(p) => format!("create {}", p.key),
                NativeStep::Update(r, _) => format!("update {}", r.native_id),
                NativeStep::Keep(r, _) => format!("keep {}", r.native_id),
                NativeStep::Delete(r) => format!("delete {}", r.native_id),
            })
            .collect();
        assert_eq!(steps, ["create d", "update n-b", "keep n-a", "delete n-c"]);
    }
}
