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
    Ok(rec)
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
