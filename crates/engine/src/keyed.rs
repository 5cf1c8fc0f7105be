//! Subscriptions by key (subscriptions as code): finding one by the key
//! its team gave it, keeping keys unique within a tenant, and comparing a
//! desired state with the stored one: what `PUT /v1/subscriptions/by-key/…`
//! applies and what a keyed preview reports. The comparison is pure: both
//! states are planned and diffed the way [`apply`](crate::apply) diffs
//! them, and nothing is sent.

use std::collections::BTreeMap;

use serde::Serialize;
use switchboard_core::adapter::redact_body;
use switchboard_core::{Error, FieldError, NativePlan, SubscriptionSpec, SubscriptionStatus};
use switchboard_store::{NativeRecord, SubscriptionRecord};

use crate::apply::{NativeStep, diff};
use crate::engine::{Engine, Prepared, Preview, PreviewResource, ProviderInstance};

/// What applying a desired state does to the subscription with its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// No subscription has the key (or none was given): one is created.
    Create,
    /// The subscription differs from the desired state (or is `failed`,
    /// which applying the same state repairs): it is changed.
    Update,
    /// The subscription already is the desired state: nothing happens.
    Unchanged,
}

/// What applying does to one native resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NativeAction {
    /// Created at the provider.
    Create,
    /// Changed at the provider.
    Update,
    /// Deleted at the provider.
    Delete,
    /// Left as it is: nothing is sent.
    Keep,
}

/// One native resource's part of a change, with nothing sent.
#[derive(Debug, Clone, Serialize)]
pub struct NativeOperation {
    /// Plan key (stable identity within the subscription).
    pub key: String,
    /// What happens to it.
    pub action: NativeAction,
    /// The provider's id of the existing resource (all but a create).
    pub native_id: Option<String>,
    /// The native events it carries afterwards (a delete: before).
    pub events: Vec<String>,
    /// A create: the exact requests, secrets redacted. An update's
    /// requests depend on what the provider holds at the time (some kinds
    /// read before they write), so they are not listed.
    pub requests: Vec<serde_json::Value>,
    /// An update: the native resource as it will be (the provider's create
    /// body), secrets redacted.
    pub desired: Option<serde_json::Value>,
}

/// The provider's parts of a change: `provider`, `account`; they cannot
/// change, so a desired state naming others is refused (422) for each.
pub(crate) fn check_immutable(
    current: &SubscriptionSpec,
    desired: &SubscriptionSpec,
) -> Result<(), Error> {
    let detail = "cannot change; delete and re-create the subscription";
    let mut errors = Vec::new();
    if desired.provider != current.provider {
        errors.push(FieldError::new("/provider", detail));
    }
    if desired.account != current.account {
        errors.push(FieldError::new("/account", detail));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid(errors))
    }
}

/// A desired state checked and planned against the subscription it would
/// change.
struct Compared {
    provider: ProviderInstance,
    prepared: Prepared,
    old: Vec<NativePlan>,
    wanted: Vec<NativePlan>,
    action: Action,
}

impl Engine {
    /// The subscription of `tenant` with `key`, if there is one.
    pub async fn find_by_key(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        self.store.find_by_key(tenant, key).await
    }

    /// The subscription of `tenant` with `key`; 404 when there is none.
    pub async fn get_by_key(&self, tenant: &str, key: &str) -> Result<SubscriptionRecord, Error> {
        self.find_by_key(tenant, key)
            .await?
            .ok_or_else(|| Error::NotFound {
                what: "subscription with key",
                id: key.to_owned(),
            })
    }

    /// Refuses `key` when a subscription of `tenant` other than `owner`
    /// has it (409 at `/key`). Checked before any upstream call, so
    /// nothing is created for a request that will be refused; the unique
    /// index is the final guard against a concurrent writer.
    pub(crate) async fn check_key_free(
        &self,
        tenant: &str,
        key: Option<&str>,
        owner: Option<&str>,
    ) -> Result<(), Error> {
        let Some(key) = key else {
            return Ok(());
        };
        match self.store.find_by_key(tenant, key).await? {
            Some(other) if Some(other.id.as_str()) != owner => Err(Error::Taken(FieldError::new(
                "/key",
                format!("`{key}` is already the key of subscription `{}`", other.id),
            ))),
            _ => Ok(()),
        }
    }

    /// Whether `desired` is what `current` already is: the validated
    /// specs (secrets included) are equal and the subscription is not
    /// `failed`. `provider` or `account` other than the current ones are a
    /// 422, as for any change.
    pub fn is_unchanged(
        &self,
        current: &SubscriptionRecord,
        desired: SubscriptionSpec,
    ) -> Result<bool, Error> {
        Ok(self.compare(current, desired)?.action == Action::Unchanged)
    }

    /// What changing `current` to `desired` would do, with nothing sent:
    /// the fields that differ and each native resource's operation.
    pub fn preview_change(
        &self,
        current: &SubscriptionRecord,
        desired: SubscriptionSpec,
    ) -> Result<Preview, Error> {
        let c = self.compare(current, desired)?;
        let changes = changed_fields(&current.spec, &c.prepared.spec)?;
        let old: BTreeMap<&str, &NativePlan> = c.old.iter().map(|p| (p.key.as_str(), p)).collect();
        let mut preview = preview_of(&c.provider, c.prepared, &c.wanted, &old, &current.natives);
        preview.action = c.action;
        preview.subscription = Some(current.id.clone());
        preview.changes = changes;
        Ok(preview)
    }

    /// Checks `desired` against `current` and plans both, as an update
    /// would.
    fn compare(
        &self,
        current: &SubscriptionRecord,
        desired: SubscriptionSpec,
    ) -> Result<Compared, Error> {
        check_immutable(&current.spec, &desired)?;
        if desired.url != current.spec.url {
            self.check_url(&desired)?;
        }
        let provider = self.provider(&current.spec.provider)?.clone();
        let desired = crate::relay::carry_seed(&current.spec, desired);
        let prepared = self.prepare(&current.id, desired)?;
        // A failed subscription's natives may not be its spec's (a change
        // that failed after its caller was answered): applying the same
        // spec again is what repairs it.
        let action =
            if prepared.spec == current.spec && current.status != SubscriptionStatus::Failed {
                Action::Unchanged
            } else {
                Action::Update
            };
        let old = self.plans_for(&current.id, &current.spec, &current.natives)?;
        let wanted = self.wanted(&provider, &prepared);
        Ok(Compared {
            provider,
            prepared,
            old,
            wanted,
            action,
        })
    }
}

/// The preview of moving the `recorded` natives (made from the `old`
/// plans) to `wanted`, the plans of `prepared`: a create when nothing is
/// recorded.
pub(crate) fn preview_of(
    provider: &ProviderInstance,
    prepared: Prepared,
    wanted: &[NativePlan],
    old: &BTreeMap<&str, &NativePlan>,
    recorded: &[NativeRecord],
) -> Preview {
    let operations: Vec<NativeOperation> = diff(old, recorded, wanted)
        .into_iter()
        .map(|step| operation(provider, prepared.spec.account.as_deref(), step))
        .collect();
    Preview {
        provider: provider.key.clone(),
        kind: provider.adapter.kind().to_owned(),
        native: wanted
            .iter()
            .map(|p| PreviewResource {
                key: p.key.clone(),
                events: p.events.clone(),
            })
            .collect(),
        requests: operations
            .iter()
            .flat_map(|o| o.requests.iter().cloned())
            .collect(),
        warnings: prepared.warnings,
        action: Action::Create,
        subscription: None,
        changes: Vec::new(),
        native_operations: operations,
    }
}

/// One step of a diff as a preview shows it.
fn operation(
    provider: &ProviderInstance,
    account: Option<&str>,
    step: NativeStep<'_>,
) -> NativeOperation {
    let adapter = &provider.adapter;
    let existing = |rec: &NativeRecord| Some(rec.native_id.clone());
    let (key, action, native_id, events) = match step {
        NativeStep::Create(p) => (&p.key, NativeAction::Create, None, &p.events),
        NativeStep::Update(r, p) => (&p.key, NativeAction::Update, existing(r), &p.events),
        NativeStep::Keep(r, p) => (&p.key, NativeAction::Keep, existing(r), &p.events),
        NativeStep::Delete(r) => (&r.key, NativeAction::Delete, existing(r), &r.events),
    };
    let requests = match step {
        NativeStep::Create(p) => adapter
            .preview(account, std::slice::from_ref(p))
            .iter()
            .map(|r| r.redacted(adapter.base_url()))
            .collect(),
        _ => Vec::new(),
    };
    let desired = match step {
        NativeStep::Update(_, p) => Some(redact_body(&p.body, &p.secret_pointers)),
        _ => None,
    };
    NativeOperation {
        key: key.clone(),
        action,
        native_id,
        events: events.clone(),
        requests,
        desired,
    }
}

/// The top-level fields of the request whose values differ between the
/// two specs (a spec serializes with the request's field names), sorted.
/// Secrets are compared like every other value and only their field is
/// named; the serialized specs never leave this function.
fn changed_fields(
    current: &SubscriptionSpec,
    desired: &SubscriptionSpec,
) -> Result<Vec<String>, Error> {
    let as_map = |spec: &SubscriptionSpec| match serde_json::to_value(spec) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        _ => Err(Error::Internal(
            "a spec did not serialize as an object".into(),
        )),
    };
    let (before, after) = (as_map(current)?, as_map(desired)?);
    let fields: std::collections::BTreeSet<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    Ok(fields.into_iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use switchboard_core::testing::draft;
    use switchboard_core::{Secret, SpecDraft};

    use super::*;

    #[test]
    fn changed_fields_name_secrets_and_nothing_else() {
        let spec = |secret: &str, url: &str| {
            SpecDraft {
                signing_secret: Some(Secret::new(secret)),
                ..draft("talkover", url, &["call.ended"])
            }
            .validate()
            .unwrap()
        };
        let base = spec("whsec-1", "https://x.example.com/a");
        assert!(changed_fields(&base, &base).unwrap().is_empty());
        let rotated = spec("whsec-2", "https://x.example.com/a");
        assert_eq!(changed_fields(&base, &rotated).unwrap(), ["signing_secret"]);
        let moved = spec("whsec-2", "https://x.example.com/b");
        assert_eq!(
            changed_fields(&base, &moved).unwrap(),
            ["signing_secret", "url"]
        );
    }
}
