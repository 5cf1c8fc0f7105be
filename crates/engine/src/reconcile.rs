//! Reconciliation: comparing what the store recorded with what the provider
//! reports, and repairing the difference.
//!
//! The comparison works on a [`Snapshot`]: one listing of the account (all
//! its pages) and the native ids any of the account's subscriptions
//! recorded. A background pass (`pass.rs`) lists each account once and
//! compares all its subscriptions against it; `POST …/reconcile` lists the
//! subscription's account itself. Both compare with [`compare`] and repair
//! with [`Engine::compare_and_repair`].
//!
//! A recorded native resource that the provider no longer has is recreated;
//! one whose callback URL, events or on/off state differ from the plan is
//! replaced (deleted and created from the plan: the only repair every kind
//! supports without knowing what changed). Resources at the provider with
//! this subscription's callback URL that no subscription recorded look like
//! Switchboard's (an interrupted create, a copy made by hand): they are
//! reported, and removed only when the caller asks. While something could
//! not be repaired the subscription is `degraded`; every check records when
//! it ran and what it found.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use switchboard_core::operation::{Finding, FindingKind, OperationKind};
use switchboard_core::{Error, NativePlan, NativeResource, ProviderAdapter, UpstreamErrorKind};
use switchboard_store::{NativeRecord, SubscriptionRecord};

use crate::apply::{Target, create};
use crate::change::{Change, Entry, Work};
use crate::engine::{Detached, Engine, ProviderInstance};
use crate::step::{self, StepError};

/// One account as the provider listed it, and who recorded what in it.
pub(crate) struct Snapshot {
    /// When the listing was asked for: a change made later may be missing
    /// from it.
    pub(crate) taken_at: DateTime<Utc>,
    resources: Vec<NativeResource>,
    by_id: HashMap<String, usize>,
    by_url: HashMap<String, Vec<usize>>,
    /// Native ids some subscription of the account recorded.
    recorded: HashSet<String>,
    /// Whether the listing carries what [`compare`] needs
    /// ([`switchboard_core::Capabilities::list_is_complete`]); if not,
    /// each recorded resource is read with Get.
    complete: bool,
}

impl Snapshot {
    /// A snapshot of `resources`, listed at `taken_at`.
    pub(crate) fn new(
        resources: Vec<NativeResource>,
        recorded: HashSet<String>,
        taken_at: DateTime<Utc>,
        complete: bool,
    ) -> Self {
        let mut by_id = HashMap::with_capacity(resources.len());
        let mut by_url: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            by_id.entry(r.id.clone()).or_insert(i);
            if let Some(url) = &r.url {
                by_url.entry(url.clone()).or_default().push(i);
            }
        }
        Self {
            taken_at,
            resources,
            by_id,
            by_url,
            recorded,
            complete,
        }
    }

    /// The account of `current` listed now, with the owners of the
    /// resources at its callback URL looked up one by one (there are
    /// rarely any besides its own).
    async fn of_subscription(
        engine: &Engine,
        adapter: &dyn ProviderAdapter,
        current: &SubscriptionRecord,
    ) -> Result<Self, Error> {
        let taken_at = Utc::now();
        let resources = adapter.list(current.spec.account.as_deref()).await?;
        let mut recorded: HashSet<String> = current
            .natives
            .iter()
            .map(|n| n.native_id.clone())
            .collect();
        let url = current.spec.url.as_str();
        for r in &resources {
            if r.url.as_deref() == Some(url)
                && !recorded.contains(&r.id)
                && engine.store.native_is_recorded(&r.id).await?
            {
                recorded.insert(r.id.clone());
            }
        }
        let complete = adapter.capabilities().list_is_complete;
        Ok(Self::new(resources, recorded, taken_at, complete))
    }

    fn listed(&self, id: &str) -> Option<&NativeResource> {
        self.by_id.get(id).map(|&i| &self.resources[i])
    }

    fn at_url<'a>(&'a self, url: &str) -> impl Iterator<Item = &'a NativeResource> {
        self.by_url
            .get(url)
            .into_iter()
            .flatten()
            .map(|&i| &self.resources[i])
    }
}

/// Recorded resources read one by one, for a kind whose listing lacks
/// what the comparison needs; `None` where the provider has no such
/// resource. Empty (and no call made) when the listing is complete.
pub(crate) type Reads = HashMap<String, Option<NativeResource>>;

/// Reads `natives` with Get where `snapshot`'s listing is not enough.
pub(crate) async fn read_recorded(
    adapter: &dyn ProviderAdapter,
    account: Option<&str>,
    snapshot: &Snapshot,
    natives: &[NativeRecord],
) -> Result<Reads, Error> {
    let mut reads = Reads::new();
    if snapshot.complete {
        return Ok(reads);
    }
    for n in natives {
        let found = match adapter.get(account, &n.native_id).await {
            Ok(r) => Some(r),
            Err(Error::Upstream(e)) if e.kind == UpstreamErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        reads.insert(n.native_id.clone(), found);
    }
    Ok(reads)
}

/// One difference between a subscription and its provider.
pub(crate) enum Diff<'a> {
    /// A recorded resource the provider does not have.
    Gone {
        rec: &'a NativeRecord,
        plan: &'a NativePlan,
    },
    /// A recorded resource whose URL, events or on/off state differ.
    Drifted {
        rec: &'a NativeRecord,
        plan: &'a NativePlan,
        detail: String,
    },
    /// A wanted resource never recorded (enable raced a crash, …).
    Unrecorded { plan: &'a NativePlan },
    /// A resource at the subscription's callback URL nobody recorded.
    Lookalike { found: &'a NativeResource },
}

impl Diff<'_> {
    /// The kind of finding this difference is reported as.
    pub(crate) fn kind(&self) -> FindingKind {
        match self {
            Self::Gone { .. } | Self::Unrecorded { .. } => FindingKind::Missing,
            Self::Drifted { .. } => FindingKind::Drifted,
            Self::Lookalike { .. } => FindingKind::Unknown,
        }
    }
}

/// Compares `current` (wanting `wanted`) with `snapshot`, in memory. A
/// recorded resource whose key is no longer wanted is not looked at.
pub(crate) fn compare<'a>(
    snapshot: &'a Snapshot,
    reads: &'a Reads,
    current: &'a SubscriptionRecord,
    wanted: &'a [NativePlan],
) -> Vec<Diff<'a>> {
    let url = current.spec.url.as_str();
    let mut diffs = Vec::new();
    for rec in &current.natives {
        let Some(plan) = wanted.iter().find(|p| p.key == rec.key) else {
            continue;
        };
        let found = if snapshot.complete {
            snapshot.listed(&rec.native_id)
        } else {
            reads.get(&rec.native_id).and_then(Option::as_ref)
        };
        let Some(found) = found else {
            diffs.push(Diff::Gone { rec, plan });
            continue;
        };
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
        if !what.is_empty() {
            let detail = what.join(", ");
            diffs.push(Diff::Drifted { rec, plan, detail });
        }
    }
    for plan in wanted {
        if !current.natives.iter().any(|n| n.key == plan.key) {
            diffs.push(Diff::Unrecorded { plan });
        }
    }
    for found in snapshot.at_url(url) {
        if !snapshot.recorded.contains(&found.id)
            && !current.natives.iter().any(|n| n.native_id == found.id)
        {
            diffs.push(Diff::Lookalike { found });
        }
    }
    diffs
}

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
        self.reconcile_record(current, actor, remove_unknown, None)
            .await?;
        self.store.get(tenant, id).await
    }

    /// Reconciles `current` as read, in a journalled change claimed at its
    /// version; against `snapshot` when given (a pass's listing), else
    /// against a listing made for it.
    pub(crate) async fn reconcile_record(
        &self,
        current: SubscriptionRecord,
        actor: &str,
        remove_unknown: bool,
        snapshot: Option<Arc<Snapshot>>,
    ) -> Result<(), Error> {
        let provider = self.provider(&current.spec.provider)?.clone();
        let prepared = self.prepare(&current.id, current.spec.clone())?;
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
                snapshot,
            },
            detached: Detached::default(),
            rekey: None,
        };
        self.run(change).await.map(drop)
    }

    /// Compares `current` with `snapshot` (or a listing made now), repairs
    /// what differs, and lists what nobody recorded. Returns the native
    /// set and the findings. Repairs are recorded as they are made but not
    /// journalled as steps; only a failure to read the provider stops.
    pub(crate) async fn compare_and_repair(
        &self,
        provider: &ProviderInstance,
        target: &Target<'_>,
        current: &SubscriptionRecord,
        wanted: &[NativePlan],
        remove_unknown: bool,
        snapshot: Option<&Snapshot>,
    ) -> Result<(Vec<NativeRecord>, Vec<Finding>), Error> {
        let adapter = provider.adapter.as_ref();
        let own;
        let snapshot = match snapshot {
            Some(s) => s,
            None => {
                own = Snapshot::of_subscription(self, adapter, current).await?;
                &own
            }
        };
        let reads = read_recorded(adapter, target.account, snapshot, &current.natives).await?;
        let mut natives = current.natives.clone();
        let mut findings = Vec::new();
        for diff in compare(snapshot, &reads, current, wanted) {
            let found = match diff {
                Diff::Gone { rec, plan } => {
                    let detail = "gone at the provider".to_owned();
                    let (kept, f) =
                        replace(adapter, target, rec, plan, FindingKind::Missing, detail).await;
                    keep(&mut natives, kept);
                    f
                }
                Diff::Drifted { rec, plan, detail } => {
                    let (kept, f) =
                        replace(adapter, target, rec, plan, FindingKind::Drifted, detail).await;
                    keep(&mut natives, kept);
                    f
                }
                Diff::Unrecorded { plan } => {
                    let fresh = create(adapter, target, target.forward(plan))
                        .await
                        .map_err(StepError::into_error)?;
                    let f = finding(
                        FindingKind::Missing,
                        Some(&plan.key),
                        &fresh.native_id,
                        "was never recorded; created".into(),
                        true,
                    );
                    natives.push(fresh);
                    f
                }
                Diff::Lookalike { found } => {
                    let removed =
                        remove_unknown && adapter.delete(target.account, &found.id).await.is_ok();
                    let detail = format!(
                        "events {:?} at this callback URL, recorded by no subscription",
                        found.events
                    );
                    finding(FindingKind::Unknown, None, &found.id, detail, removed)
                }
            };
            findings.push(found);
        }
        Ok((natives, findings))
    }
}

/// Puts `kept` in place of the record with its key.
fn keep(natives: &mut [NativeRecord], kept: NativeRecord) {
    if let Some(slot) = natives.iter_mut().find(|n| n.key == kept.key) {
        *slot = kept;
    }
}

/// Replaces recorded native `rec` (missing or drifted) from `plan`: a
/// drifted one is deleted first, then the plan is created. Returns the
/// record to keep (the fresh one, or `rec` when the repair failed) and the
/// finding.
async fn replace(
    adapter: &dyn ProviderAdapter,
    target: &Target<'_>,
    rec: &NativeRecord,
    plan: &NativePlan,
    kind: FindingKind,
    detail: String,
) -> (NativeRecord, Finding) {
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
    match repaired {
        Ok(fresh) => {
            let f = finding(kind, Some(&rec.key), &rec.native_id, detail, true);
            (fresh, f)
        }
        Err(e) => {
            tracing::warn!(sub = %target.sub_id, key = %rec.key, error = %e, "repair failed");
            let detail = format!("{detail}; repair failed: {e}");
            let f = finding(kind, Some(&rec.key), &rec.native_id, detail, false);
            (rec.clone(), f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::SubscriptionStatus;
    use switchboard_core::testing::draft;

    const URL: &str = "https://hooks.example.com/a";

    fn plan(key: &str) -> NativePlan {
        NativePlan {
            key: key.into(),
            events: vec![key.into()],
            body: serde_json::Value::Null,
            secret_pointers: Vec::new(),
        }
    }

    fn listed(id: &str, event: &str, url: &str) -> NativeResource {
        NativeResource {
            id: id.into(),
            events: vec![event.into()],
            enabled: true,
            url: Some(url.into()),
            ..Default::default()
        }
    }

    /// A subscription at [`URL`] that recorded `natives` as `(key, id)`.
    fn subscription(natives: &[(&str, &str)]) -> SubscriptionRecord {
        let now = Utc::now();
        SubscriptionRecord {
            id: "sub_1".into(),
            tenant: "t".into(),
            key: None,
            status: SubscriptionStatus::Active,
            spec: draft("p", URL, &["call.ended"]).validate().unwrap(),
            warnings: Vec::new(),
            last_error: None,
            version: 1,
            created_at: now,
            updated_at: now,
            natives: natives
                .iter()
                .map(|(key, id)| NativeRecord {
                    key: (*key).into(),
                    native_id: (*id).into(),
                    events: vec![(*key).into()],
                    enabled: true,
                    created_at: now,
                })
                .collect(),
            last_reconciled_at: None,
            findings: Vec::new(),
        }
    }

    fn shown(diffs: &[Diff<'_>]) -> Vec<String> {
        diffs
            .iter()
            .map(|d| match d {
                Diff::Gone { rec, .. } => format!("gone {}", rec.native_id),
                Diff::Drifted { rec, detail, .. } => format!("drifted {}: {detail}", rec.native_id),
                Diff::Unrecorded { plan } => format!("unrecorded {}", plan.key),
                Diff::Lookalike { found } => format!("lookalike {}", found.id),
            })
            .collect()
    }

    #[test]
    fn one_listing_finds_every_kind_of_difference() {
        let current = subscription(&[("a", "n1"), ("b", "n2"), ("c", "n3")]);
        let wanted = [plan("a"), plan("b"), plan("c"), plan("d")];
        let resources = vec![
            listed("n2", "b", "https://evil.example.com/"),
            listed("n3", "c", URL),
            listed("n9", "x", URL),
            listed("n8", "y", URL),
            listed("n7", "z", "https://elsewhere.example.com/"),
        ];
        // n8 belongs to another subscription of the account.
        let recorded = ["n1", "n2", "n3", "n8"].map(String::from).into();
        let snapshot = Snapshot::new(resources, recorded, Utc::now(), true);
        let reads = Reads::new();
        let diffs = compare(&snapshot, &reads, &current, &wanted);
        assert_eq!(
            shown(&diffs),
            [
                "gone n1",
                "drifted n2: url is Some(\"https://evil.example.com/\")",
                "unrecorded d",
                "lookalike n9",
            ]
        );
        let clean = subscription(&[("c", "n3")]);
        let only_c = [plan("c")];
        let snapshot = Snapshot::new(
            vec![listed("n3", "c", URL)],
            ["n3".to_owned()].into(),
            Utc::now(),
            true,
        );
        assert!(compare(&snapshot, &reads, &clean, &only_c).is_empty());
    }

    #[test]
    fn an_incomplete_listing_is_not_trusted_for_recorded_resources() {
        let current = subscription(&[("a", "n1"), ("b", "n2")]);
        let wanted = [plan("a"), plan("b")];
        // The listing names the ids but says nothing of their state; what
        // counts is what Get returned for each.
        let bare = |id: &str| NativeResource {
            id: id.into(),
            ..Default::default()
        };
        let snapshot = Snapshot::new(
            vec![bare("n1"), bare("n2")],
            HashSet::new(),
            Utc::now(),
            false,
        );
        let reads: Reads = [
            ("n1".to_owned(), Some(listed("n1", "a", URL))),
            ("n2".to_owned(), None),
        ]
        .into();
        assert_eq!(
            shown(&compare(&snapshot, &reads, &current, &wanted)),
            ["gone n2"]
        );
    }
}
