//! `Engine`: the subscription use cases over the store and the adapters.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;
use switchboard_core::operation::OperationKind;
use switchboard_core::policy::UrlPolicy;
use switchboard_core::{
    Error, EventCatalog, FieldError, NativePlan, ProviderAdapter, Secret, SubscriptionSpec,
    SubscriptionStatus,
};
use switchboard_store::{ListQuery, NativeRecord, Page, Store, SubscriptionRecord};

use crate::change::{Change, Entry, Then, Work};
use crate::keyed::{Action, NativeOperation, check_immutable};
use crate::observe::{LastCall, Observed, UpstreamHealth};
use crate::relay::{RelayRuntime, RelaySettings};
use crate::step::StepPolicy;

/// One configured provider instance.
#[derive(Clone)]
pub struct ProviderInstance {
    /// Config key (`[providers.<key>]`).
    pub key: String,
    /// The adapter for its kind.
    pub adapter: Arc<dyn ProviderAdapter>,
    /// How its kind's deliveries are verified at the relay ingress; `None`
    /// when the kind cannot be relayed (a relay subscription is a 422).
    pub ingress: Option<switchboard_core::Ingress>,
}

/// A native resource a preview would create.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewResource {
    /// Plan key.
    pub key: String,
    /// Native events.
    pub events: Vec<String>,
}

/// What a create, or a change of the subscription with the same key,
/// would do, with nothing sent.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    /// Provider instance key.
    pub provider: String,
    /// Provider kind.
    pub kind: String,
    /// Native resources that would exist.
    pub native: Vec<PreviewResource>,
    /// The exact native HTTP requests of the resources that would be
    /// created (for a new subscription, every request), secrets redacted.
    pub requests: Vec<serde_json::Value>,
    /// What `on_unsupported: ignore` would drop.
    pub warnings: Vec<String>,
    /// Whether the subscription would be created, updated or left as it is.
    pub action: Action,
    /// The subscription with the key, when one exists.
    pub subscription: Option<String>,
    /// Top-level fields whose desired value differs from the stored one
    /// (secrets compared, named, never shown); empty for a create.
    pub changes: Vec<String>,
    /// What would happen to each native resource, by plan key.
    pub native_operations: Vec<NativeOperation>,
}

/// A spec checked and translated for one provider.
pub(crate) struct Prepared {
    pub(crate) spec: SubscriptionSpec,
    pub(crate) warnings: Vec<String>,
    pub(crate) plans: Vec<NativePlan>,
}

/// The subscription use cases; a handle behind one reference count, cloned
/// for every request and every delivery attempt.
#[derive(Clone)]
pub struct Engine(Arc<Parts>);

/// What an [`Engine`] holds; read through `Deref` (`engine.store`).
#[derive(Clone)]
pub struct Parts {
    pub(crate) store: Store,
    catalog: Arc<EventCatalog>,
    providers: Arc<BTreeMap<String, ProviderInstance>>,
    /// How long a journalled change holds its lease without renewal.
    pub(crate) lease: Duration,
    /// Journal entries this process is running, whose leases it renews.
    pub(crate) running: Arc<Mutex<HashSet<String>>>,
    /// Which callback URLs are accepted on create, update and preview.
    url_policy: Arc<UrlPolicy>,
    /// How upstream steps wait, retry, verify and are watched.
    pub(crate) steps: Arc<StepPolicy>,
    /// Whether no other process can share the store (SQLite): recovery
    /// then takes any other owner's running change without waiting for
    /// its lease.
    pub(crate) single_process: bool,
    /// The last upstream outcome of each provider instance, by key.
    health: Arc<BTreeMap<String, Arc<UpstreamHealth>>>,
    /// Relay mode's settings and wake-up signal; `None` when relay mode is
    /// off (`server.public_url` unset), and a relay subscription is a 422.
    pub(crate) relay: Option<Arc<RelayRuntime>>,
}

/// Set once the caller has been answered `202 pending`: from then on a
/// failure must stay visible on the subscription rather than undo
/// silently.
#[derive(Debug, Clone, Default)]
pub struct Detached(Arc<std::sync::atomic::AtomicBool>);

impl Detached {
    /// Marks the work as running on after its caller was answered.
    pub fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the caller was already answered.
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::ops::Deref for Engine {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// Actor name of changes Switchboard makes on its own (recovery).
pub const SYSTEM_ACTOR: &str = "switchboard";

impl Engine {
    /// Wires the engine. Every adapter is wrapped so that its calls are
    /// traced, counted and remembered for readiness (`observe.rs`).
    pub fn new(store: Store, catalog: Arc<EventCatalog>, providers: Vec<ProviderInstance>) -> Self {
        let mut health = BTreeMap::new();
        let providers = providers
            .into_iter()
            .map(|p| {
                let (adapter, h) = Observed::wrap(&p.key, p.adapter);
                health.insert(p.key.clone(), h);
                (p.key.clone(), ProviderInstance { adapter, ..p })
            })
            .collect();
        Self(Arc::new(Parts {
            store,
            catalog,
            providers: Arc::new(providers),
            health: Arc::new(health),
            lease: Duration::from_secs(30),
            running: Arc::default(),
            url_policy: Arc::default(),
            steps: Arc::default(),
            single_process: false,
            relay: None,
        }))
    }

    /// The parts, for the builders below (copied only if already shared).
    fn parts(&mut self) -> &mut Parts {
        Arc::make_mut(&mut self.0)
    }

    /// Turns relay mode on.
    pub fn with_relay(mut self, settings: RelaySettings) -> Self {
        self.parts().relay = Some(RelayRuntime::new(settings));
        self
    }

    /// Relay mode's shared state, when it is on.
    pub fn relay(&self) -> Option<&Arc<RelayRuntime>> {
        self.relay.as_ref()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets how upstream steps wait, retry, verify and are watched.
    pub fn with_step_policy(mut self, policy: StepPolicy) -> Self {
        self.parts().steps = Arc::new(policy);
        self
    }

    /// Declares the store single-process (SQLite): any running change of
    /// another owner is abandoned and is recovered as soon as its requests
    /// can no longer land.
    pub fn single_process(mut self, single: bool) -> Self {
        self.parts().single_process = single;
        self
    }

    /// Sets the callback URL policy.
    pub fn with_url_policy(mut self, policy: UrlPolicy) -> Self {
        self.parts().url_policy = Arc::new(policy);
        self
    }

    /// Applies the URL policy to a new or changed callback URL. Stored
    /// subscriptions are not re-checked when they are enabled, disabled or
    /// deleted: a tightened policy must not strand them.
    pub(crate) fn check_url(&self, spec: &SubscriptionSpec) -> Result<(), Error> {
        self.url_policy
            .check(&spec.url)
            .map_err(|detail| Error::field("/url", detail))
    }

    /// Sets how long a change's journal lease lasts without renewal; a
    /// crashed process's changes are recovered once it has passed.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.parts().lease = lease;
        self
    }

    /// The journal lease.
    pub(crate) fn lease(&self) -> Duration {
        self.lease
    }

    /// The plans behind what is recorded now, the base of a diff. The spec
    /// was checked when it was stored; if the catalog has changed since
    /// (an event removed), the native events recorded for its resources are
    /// what really exists upstream and are used instead, so an old
    /// subscription can still be changed or deleted.
    pub(crate) fn plans_for(
        &self,
        id: &str,
        spec: &SubscriptionSpec,
        natives: &[NativeRecord],
    ) -> Result<Vec<NativePlan>, Error> {
        let provider = self.provider(&spec.provider)?;
        let kind = provider.adapter.kind();
        let events = self
            .catalog
            .resolve(kind, &provider.key, &spec.events)
            .unwrap_or_else(|_| {
                let mut recorded: Vec<String> = Vec::new();
                for e in natives.iter().flat_map(|n| &n.events) {
                    if !recorded.contains(e) {
                        recorded.push(e.clone());
                    }
                }
                recorded
            });
        if spec.delivery.is_relay() {
            return self.stored_relay_plans(provider, id, spec, &events);
        }
        provider.adapter.plan(id, spec, &events)
    }

    /// The event catalog.
    pub fn catalog(&self) -> &EventCatalog {
        &self.catalog
    }

    /// Configured provider instances, by key.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderInstance> {
        self.providers.values()
    }

    /// Each provider instance's last upstream call since start-up, by key
    /// (`None`: no call yet).
    pub fn upstream_health(&self) -> BTreeMap<String, Option<LastCall>> {
        self.health
            .iter()
            .map(|(key, h)| (key.clone(), h.last()))
            .collect()
    }

    pub(crate) fn provider(&self, key: &str) -> Result<&ProviderInstance, Error> {
        self.providers.get(key).ok_or_else(|| {
            let known: Vec<&str> = self.providers.keys().map(String::as_str).collect();
            Error::field(
                "/provider",
                format!(
                    "`{key}` is not a configured provider; configured: {}",
                    known.join(", ")
                ),
            )
        })
    }

    /// Pure: capabilities, catalog and translation. No state is touched.
    pub(crate) fn prepare(&self, id: &str, spec: SubscriptionSpec) -> Result<Prepared, Error> {
        let provider = self.provider(&spec.provider)?;
        if spec.delivery.is_relay() {
            return self.prepare_relay(provider, id, spec);
        }
        let adapter = &provider.adapter;
        let kind = adapter.kind();
        let mut errors: Vec<FieldError> = Vec::new();
        let mut draft = spec.into_draft();
        let warnings = match adapter
            .capabilities()
            .check(&provider.key, kind, &mut draft)
        {
            Ok(w) => w,
            Err(Error::Invalid(e)) => {
                errors.extend(e);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let events = match self.catalog.resolve(kind, &provider.key, &draft.events) {
            Ok(ev) => ev,
            Err(e) => {
                errors.extend(e);
                Vec::new()
            }
        };
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        // Dropping what the provider cannot do keeps every rule of a spec.
        let spec = draft.validate()?;
        let mut warnings = warnings;
        if spec.signing_secret.is_some()
            && spec.on_unsupported == switchboard_core::OnUnsupported::Ignore
        {
            for event in events
                .iter()
                .filter(|e| adapter.capabilities().unsigned_events.contains(&e.as_str()))
            {
                warnings.push(format!(
                    "`signing_secret` not applied to native event `{event}`: provider `{}` (kind {kind}) cannot sign it",
                    provider.key
                ));
            }
        }
        let plans = adapter.plan(id, &spec, &events)?;
        Ok(Prepared {
            spec,
            warnings,
            plans,
        })
    }

    /// The plans that should exist for `prepared`: all of them while
    /// enabled, or while the provider can switch a resource off natively;
    /// none while disabled at a provider that cannot (the subscription is
    /// kept and the resources are recreated on enable).
    pub(crate) fn wanted(
        &self,
        provider: &ProviderInstance,
        prepared: &Prepared,
    ) -> Vec<NativePlan> {
        if prepared.spec.enabled || provider.adapter.capabilities().native_disable {
            prepared.plans.clone()
        } else {
            Vec::new()
        }
    }

    /// What creating `spec` would send, with nothing sent.
    pub fn preview(&self, spec: SubscriptionSpec) -> Result<Preview, Error> {
        self.check_url(&spec)?;
        let provider = self.provider(&spec.provider)?.clone();
        let prepared = self.prepare("sub_PREVIEW", spec)?;
        let wanted = self.wanted(&provider, &prepared);
        Ok(crate::keyed::preview_of(
            &provider,
            prepared,
            &wanted,
            &BTreeMap::new(),
            &[],
        ))
    }

    /// Creates a subscription and its native resources. On any failure the
    /// resources already created are removed and nothing is stored.
    pub async fn create(
        &self,
        tenant: &str,
        actor: &str,
        spec: SubscriptionSpec,
    ) -> Result<SubscriptionRecord, Error> {
        let id = switchboard_core::ids::subscription_id();
        self.create_with_id(tenant, actor, &id, spec, &Detached::default())
            .await
    }

    /// [`Engine::create`] with an id chosen by the caller (so it can answer
    /// `202` with it while the work goes on). When `detached` is set by the
    /// time the work fails, the caller has already been told the change is
    /// pending: the subscription is kept as `failed` with the error, with
    /// every native resource removed, instead of vanishing.
    pub async fn create_with_id(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        spec: SubscriptionSpec,
        detached: &Detached,
    ) -> Result<SubscriptionRecord, Error> {
        self.create_keyed(tenant, actor, id, None, spec, detached)
            .await
    }

    /// [`Engine::create_with_id`] of a subscription with `key` (see
    /// [`switchboard_core::record::check_key`]), which no other
    /// subscription of `tenant` may have: checked before any upstream
    /// call (409 at `/key`), and by the unique index when the row is
    /// inserted, still before any.
    pub async fn create_keyed(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        key: Option<String>,
        spec: SubscriptionSpec,
        detached: &Detached,
    ) -> Result<SubscriptionRecord, Error> {
        if let Some(key) = &key {
            switchboard_core::record::check_key(key)?;
        }
        self.check_url(&spec)?;
        let provider = self.provider(&spec.provider)?.clone();
        let prepared = self.prepare(id, spec)?;
        self.check_key_free(tenant, key.as_deref(), None).await?;
        let now = Utc::now();
        let current = SubscriptionRecord {
            id: id.to_owned(),
            tenant: tenant.to_owned(),
            key,
            status: SubscriptionStatus::Pending,
            spec: prepared.spec.clone(),
            warnings: prepared.warnings.clone(),
            last_error: None,
            // Becomes 1 when the create completes.
            version: 0,
            created_at: now,
            updated_at: now,
            natives: Vec::new(),
            last_reconciled_at: None,
            findings: Vec::new(),
        };
        let wanted = self.wanted(&provider, &prepared);
        let change = Change {
            kind: OperationKind::Create,
            actor,
            provider,
            current,
            entry: Entry::Insert,
            work: Work::Apply {
                old: Vec::new(),
                wanted,
                adopt: None,
                then: Then::Store(Box::new(prepared)),
            },
            detached: detached.clone(),
            rekey: None,
        };
        stored(self.run(change).await)
    }

    /// One subscription.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<SubscriptionRecord, Error> {
        self.store.get(tenant, id).await
    }

    /// A page of subscriptions of `tenant`, or of all tenants (admins).
    pub async fn list(&self, tenant: Option<&str>, q: &ListQuery) -> Result<Page, Error> {
        self.store.list(tenant, q).await
    }

    /// Replaces the desired state with `new_spec` (already merged from a
    /// PATCH) and applies only what differs. `if_version` is the caller's
    /// `If-Match`.
    pub async fn update(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        new_spec: SubscriptionSpec,
        if_version: Option<i64>,
    ) -> Result<SubscriptionRecord, Error> {
        let current = self.store.get(tenant, id).await?;
        self.update_with(actor, current, new_spec, if_version, &Detached::default())
            .await
    }

    /// [`Engine::update`] of `current` (as the caller read it: the claim
    /// refuses it if it has moved on since) whose caller may be answered
    /// `202` before it ends (see [`Detached`]): a failure after that leaves
    /// the subscription `failed` with the error (at its previous, undone
    /// state).
    pub async fn update_with(
        &self,
        actor: &str,
        current: SubscriptionRecord,
        new_spec: SubscriptionSpec,
        if_version: Option<i64>,
        detached: &Detached,
    ) -> Result<SubscriptionRecord, Error> {
        let key = current.key.clone();
        self.update_keyed(actor, current, key, new_spec, if_version, detached)
            .await
    }

    /// [`Engine::update_with`] that also gives the subscription `key`
    /// (`None`: no key). A new key no other subscription of the tenant may
    /// have is checked before any upstream call and set with the claim,
    /// where the unique index refuses a taken one (409 at `/key`); a
    /// change that does not complete gives the old key back.
    pub async fn update_keyed(
        &self,
        actor: &str,
        current: SubscriptionRecord,
        key: Option<String>,
        new_spec: SubscriptionSpec,
        if_version: Option<i64>,
        detached: &Detached,
    ) -> Result<SubscriptionRecord, Error> {
        if let Some(v) = if_version
            && v != current.version
        {
            return Err(Error::PreconditionFailed(format!(
                "If-Match version {v} is not the current version {}",
                current.version
            )));
        }
        if new_spec.url != current.spec.url {
            self.check_url(&new_spec)?;
        }
        check_immutable(&current.spec, &new_spec)?;
        let new_spec = crate::relay::carry_seed(&current.spec, new_spec);
        let prepared = self.prepare(&current.id, new_spec)?;
        let rekey = (key != current.key).then_some(key);
        if let Some(key) = &rekey {
            if let Some(key) = key {
                switchboard_core::record::check_key(key)?;
            }
            self.check_key_free(&current.tenant, key.as_deref(), Some(&current.id))
                .await?;
        }
        let kind = OperationKind::Update;
        let ran = self.claimed(current, Some(prepared), kind, actor, detached, rekey);
        stored(ran.await)
    }

    /// Switches deliveries on or off.
    pub async fn set_enabled(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        enabled: bool,
    ) -> Result<SubscriptionRecord, Error> {
        let current = self.store.get(tenant, id).await?;
        self.set_enabled_with(actor, current, enabled, &Detached::default())
            .await
    }

    /// [`Engine::set_enabled`] of `current` (as the caller read it) whose
    /// caller may be answered `202` first.
    pub async fn set_enabled_with(
        &self,
        actor: &str,
        current: SubscriptionRecord,
        enabled: bool,
        detached: &Detached,
    ) -> Result<SubscriptionRecord, Error> {
        let spec = current.spec.clone().with(|d| d.enabled = enabled)?;
        let prepared = self.prepare(&current.id, spec)?;
        let kind = if enabled {
            OperationKind::Enable
        } else {
            OperationKind::Disable
        };
        self.transition(current, prepared, kind, actor, detached)
            .await
    }

    /// Replaces the signing secret on every native resource (Talkover PUT,
    /// Bird PATCH, Sendblue remove + re-add) and returns the new secret,
    /// generated unless given. On failure nothing changes.
    pub async fn rotate_secret(
        &self,
        tenant: &str,
        actor: &str,
        id: &str,
        given: Option<Secret>,
    ) -> Result<(SubscriptionRecord, Secret), Error> {
        let current = self.store.get(tenant, id).await?;
        if current.spec.delivery.is_relay() {
            return self.rotate_relay_secret(current, actor, given).await;
        }
        let provider = self.provider(&current.spec.provider)?;
        if provider
            .adapter
            .capabilities()
            .signing_secret_max_len
            .is_none()
        {
            return Err(Error::Invalid(vec![FieldError::provider(
                "/signing_secret",
                format!(
                    "provider `{}` (kind {}) does not sign deliveries; there is no secret to rotate",
                    provider.key,
                    provider.adapter.kind()
                ),
                provider.key.clone(),
            )]));
        }
        let secret = given.unwrap_or_else(generate_secret);
        let spec = current.spec.clone().with(|d| {
            d.signing_secret = Some(secret.clone());
            // The secret must reach the provider: never drop it silently.
            d.on_unsupported = switchboard_core::OnUnsupported::Reject;
        })?;
        let mut prepared = self.prepare(id, spec)?;
        let on_unsupported = current.spec.on_unsupported;
        prepared.spec = prepared.spec.with(|d| d.on_unsupported = on_unsupported)?;
        // No budget: the caller must see the secret, so it always waits.
        let rec = self
            .transition(
                current,
                prepared,
                OperationKind::RotateSecret,
                actor,
                &Detached::default(),
            )
            .await?;
        Ok((rec, secret))
    }

    /// Deletes every native resource, then the subscription.
    pub async fn delete(&self, tenant: &str, actor: &str, id: &str) -> Result<(), Error> {
        let current = self.store.get(tenant, id).await?;
        self.delete_with(actor, current, &Detached::default()).await
    }

    /// [`Engine::delete`] of `current` (as the caller read it) whose
    /// caller may be answered `202` first.
    pub async fn delete_with(
        &self,
        actor: &str,
        current: SubscriptionRecord,
        detached: &Detached,
    ) -> Result<(), Error> {
        self.claimed(current, None, OperationKind::Delete, actor, detached, None)
            .await
            .map(drop)
    }

    /// A change of `current` to the `prepared` spec, claimed at the version
    /// read.
    pub(crate) async fn transition(
        &self,
        current: SubscriptionRecord,
        prepared: Prepared,
        kind: OperationKind,
        actor: &str,
        detached: &Detached,
    ) -> Result<SubscriptionRecord, Error> {
        stored(
            self.claimed(current, Some(prepared), kind, actor, detached, None)
                .await,
        )
    }

    /// A change claimed at the version read that moves `current` to the
    /// `next` spec, or, with `None`, to nothing: every native resource is
    /// deleted, then the row. `rekey` is the key the subscription gets
    /// with the claim, when it changes.
    async fn claimed(
        &self,
        current: SubscriptionRecord,
        next: Option<Prepared>,
        kind: OperationKind,
        actor: &str,
        detached: &Detached,
        rekey: Option<Option<String>>,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        let provider = self.provider(&current.spec.provider)?.clone();
        let old = self.plans_for(&current.id, &current.spec, &current.natives)?;
        let (wanted, then) = match next {
            Some(prepared) => (
                self.wanted(&provider, &prepared),
                Then::Store(Box::new(prepared)),
            ),
            None => (Vec::new(), Then::Delete),
        };
        let change = Change {
            kind,
            actor,
            provider,
            current,
            entry: Entry::Claim,
            work: Work::Apply {
                old,
                wanted,
                adopt: None,
                then,
            },
            detached: detached.clone(),
            rekey,
        };
        self.run(change).await
    }
}

/// The record a storing change returns.
fn stored(ran: Result<Option<SubscriptionRecord>, Error>) -> Result<SubscriptionRecord, Error> {
    ran?.ok_or_else(|| Error::Internal("a storing change returned no record".into()))
}

/// A new signing secret: `whsec_` and 32 random bytes, base64url.
fn generate_secret() -> Secret {
    use base64::Engine as _;
    let bytes: [u8; 32] = rand::random();
    Secret::new(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

pub(crate) fn status_for(spec: &SubscriptionSpec) -> SubscriptionStatus {
    if spec.enabled {
        SubscriptionStatus::Active
    } else {
        SubscriptionStatus::Disabled
    }
}
