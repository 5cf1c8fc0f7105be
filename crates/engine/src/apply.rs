//! Diff-and-apply of native resources with undo on failure.

use std::collections::BTreeMap;

use chrono::Utc;
use switchboard_core::{Error, NativePlan, ProviderAdapter, UpstreamErrorKind};
use switchboard_store::{NativeRecord, Store};

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
    /// Journals one completed native step. The native record itself is
    /// already written; a journal failure only loses history, so it is
    /// logged rather than failing the change.
    async fn step(&self, action: &str, key: &str, native_id: &str) {
        let step = serde_json::json!({
            "action": action, "key": key, "native_id": native_id, "at": Utc::now().to_rfc3339(),
        });
        if let Err(e) = self.store.add_step(self.op_id, step).await {
            tracing::warn!(op = self.op_id, error = %e, "journal step not written");
        }
    }
}

/// Moves the provider from `recorded` (made from `old` plans) to `new`.
/// Returns the native records that now exist. On failure, every step this
/// call made is undone and the first error is returned; if the undo itself
/// fails, the error says so and the records of what really exists are
/// left in the store.
pub(crate) async fn apply(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    old: &[NativePlan],
    recorded: &[NativeRecord],
    new: &[NativePlan],
) -> Result<Vec<NativeRecord>, Error> {
    let old_by_key: BTreeMap<&str, &NativePlan> = old.iter().map(|p| (p.key.as_str(), p)).collect();
    let new_by_key: BTreeMap<&str, &NativePlan> = new.iter().map(|p| (p.key.as_str(), p)).collect();
    let recorded_by_key: BTreeMap<&str, &NativeRecord> =
        recorded.iter().map(|n| (n.key.as_str(), n)).collect();

    let mut done: Vec<Done> = Vec::new();
    let mut result: BTreeMap<String, NativeRecord> = recorded
        .iter()
        .map(|n| (n.key.clone(), n.clone()))
        .collect();

    let outcome = async {
        // Creates and updates first, deletes last: a failure then most
        // often has only additions to undo, which cannot lose anything.
        for plan in new {
            match recorded_by_key.get(plan.key.as_str()) {
                None => {
                    let rec = create(adapter, target, plan).await?;
                    done.push(Done::Created {
                        key: plan.key.clone(),
                        native_id: rec.native_id.clone(),
                    });
                    result.insert(plan.key.clone(), rec);
                }
                Some(existing) => {
                    let Some(old_plan) = old_by_key.get(plan.key.as_str()) else {
                        return Err(Error::Internal(format!("no old plan for native `{}`", plan.key)));
                    };
                    if *old_plan == plan {
                        continue;
                    }
                    let rec = match adapter.update(target.account, &existing.native_id, old_plan, plan).await {
                        Ok(native) => NativeRecord {
                            key: plan.key.clone(),
                            native_id: native.id,
                            events: plan.events.clone(),
                            enabled: native.enabled,
                            created_at: existing.created_at,
                        },
                        // Deleted at the provider behind our back: recreate
                        // it from the new plan rather than fail the change.
                        Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => {
                            tracing::warn!(sub = target.sub_id, key = %plan.key, "native resource vanished; recreating");
                            target.store.forget_native(target.tenant, target.sub_id, &plan.key).await?;
                            let rec = create(adapter, target, plan).await?;
                            done.push(Done::Created {
                                key: plan.key.clone(),
                                native_id: rec.native_id.clone(),
                            });
                            result.insert(plan.key.clone(), rec);
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    target.store.record_native(target.tenant, target.sub_id, &rec).await?;
                    target.step("update", &rec.key, &rec.native_id).await;
                    done.push(Done::Updated {
                        key: plan.key.clone(),
                        native_id: rec.native_id.clone(),
                    });
                    result.insert(plan.key.clone(), rec);
                }
            }
        }
        for rec in recorded {
            if !new_by_key.contains_key(rec.key.as_str()) {
                adapter.delete(target.account, &rec.native_id).await?;
                target.store.forget_native(target.tenant, target.sub_id, &rec.key).await?;
                target.step("delete", &rec.key, &rec.native_id).await;
                done.push(Done::Deleted { key: rec.key.clone() });
                result.remove(&rec.key);
            }
        }
        Ok::<(), Error>(())
    }
    .await;

    match outcome {
        Ok(()) => Ok(result.into_values().collect()),
        Err(err) => {
            if let Err(undo_err) = undo(adapter, target, &old_by_key, &new_by_key, done).await {
                tracing::error!(sub = target.sub_id, error = %undo_err, "undo after a failed change failed");
                return Err(Error::Internal(format!(
                    "{err}; undoing the partial change also failed ({undo_err}); the subscription is marked failed"
                )));
            }
            Err(err)
        }
    }
}

async fn create(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    plan: &NativePlan,
) -> Result<NativeRecord, Error> {
    let native = adapter.create(target.account, plan).await?;
    let rec = NativeRecord {
        key: plan.key.clone(),
        native_id: native.id,
        events: plan.events.clone(),
        enabled: native.enabled,
        created_at: Utc::now(),
    };
    if let Err(e) = target
        .store
        .record_native(target.tenant, target.sub_id, &rec)
        .await
    {
        // The resource exists upstream but could not be recorded: remove it
        // now rather than leave an orphan the database does not know about.
        let _ = adapter.delete(target.account, &rec.native_id).await;
        return Err(e);
    }
    target.step("create", &rec.key, &rec.native_id).await;
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
            let rec = NativeRecord {
                key: plan.key.clone(),
                native_id: candidate.id.clone(),
                events: plan.events.clone(),
                enabled: candidate.enabled,
                created_at: Utc::now(),
            };
            target
                .store
                .record_native(target.tenant, target.sub_id, &rec)
                .await?;
            target.step("adopt", &rec.key, &rec.native_id).await;
            out.push(rec);
            break;
        }
    }
    Ok(out)
}

/// Reverses `done`, newest first.
async fn undo(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    old: &BTreeMap<&str, &NativePlan>,
    new: &BTreeMap<&str, &NativePlan>,
    done: Vec<Done>,
) -> Result<(), Error> {
    for step in done.into_iter().rev() {
        match step {
            Done::Created { key, native_id } => {
                adapter.delete(target.account, &native_id).await?;
                target
                    .store
                    .forget_native(target.tenant, target.sub_id, &key)
                    .await?;
                target.step("undo-create", &key, &native_id).await;
            }
            Done::Updated { key, native_id } => {
                let (Some(old_plan), Some(new_plan)) =
                    (old.get(key.as_str()), new.get(key.as_str()))
                else {
                    continue;
                };
                let native = adapter
                    .update(target.account, &native_id, new_plan, old_plan)
                    .await?;
                let rec = NativeRecord {
                    key: key.clone(),
                    native_id: native.id,
                    events: old_plan.events.clone(),
                    enabled: native.enabled,
                    created_at: Utc::now(),
                };
                target
                    .store
                    .record_native(target.tenant, target.sub_id, &rec)
                    .await?;
                target.step("undo-update", &rec.key, &rec.native_id).await;
            }
            Done::Deleted { key } => {
                if let Some(old_plan) = old.get(key.as_str()) {
                    create(adapter, target, old_plan).await?;
                }
            }
        }
    }
    Ok(())
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
        let rec = NativeRecord {
            key: plan.key.clone(),
            native_id: replacement.id.clone(),
            events: plan.events.clone(),
            enabled: replacement.enabled,
            created_at: Utc::now(),
        };
        target
            .store
            .record_native(target.tenant, target.sub_id, &rec)
            .await?;
        target
            .step("adopt-replacement", &rec.key, &rec.native_id)
            .await;
        out[current] = rec;
        replaced.push(plan.key.clone());
    }
    Ok((out, replaced))
}
