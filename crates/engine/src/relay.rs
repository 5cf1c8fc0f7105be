//! Relay mode on the registration side (issue 13): what a relay
//! subscription's natives look like at the provider, the ingress routes
//! they are reached by, and the settings the ingress and the delivery
//! workers share.
//!
//! A relay subscription's natives point at `server.public_url` +
//! `/ingress/{token}` and carry a credential Switchboard generated, in the
//! spec field the kind's [`Ingress`] names. Both the token and the
//! credential of a native are derived from the subscription's random seed
//! (`Delivery::seed`, sealed with the spec) and the native's plan key with
//! HMAC-SHA256: they are unguessable, different for every native, and the
//! same each time the subscription is planned, so a change that keeps a
//! native keeps its URL and credential and an unchanged native is never
//! touched upstream. Only a token's hash is stored (`relay_routes`), next
//! to the sealed credential the ingress verifies with.
//!
//! The subscriber-facing fields (`url`, `auth`, `headers`,
//! `signing_secret`, `method`, `format`, `timeout_seconds`,
//! `max_retries`) are Switchboard's to honour in relay mode, so they are
//! checked here against what the delivery workers can do, not against the
//! provider's capability matrix.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use switchboard_core::{
    CallbackAuth, CallbackUrl, Error, FieldError, Ingress, IngressCredential, NativePlan, Secret,
    SpecDraft, SubscriptionSpec,
};
use switchboard_relay::{SigningSecret, request};
use switchboard_store::NewRelayRoute;
use tokio::sync::Notify;

use switchboard_core::operation::OperationKind;
use switchboard_store::{NativeRecord, SubscriptionRecord};

use crate::engine::{Detached, Engine, Prepared, ProviderInstance};
use crate::outbox::{Handoff, Reserved};

/// What relay mode needs from configuration.
#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// `server.public_url`, without a trailing `/`: the origin providers
    /// reach the ingress at.
    pub public_url: String,
    /// Most bytes of a provider's delivery body the ingress accepts (413
    /// above).
    pub max_payload_bytes: usize,
    /// Retries the delivery schedule has after the first attempt: the
    /// most a relay subscription's `max_retries` may ask for.
    pub max_retries: u32,
}

/// Relay state shared by the engine, the ingress and the delivery workers.
#[derive(Debug)]
pub struct RelayRuntime {
    /// The settings.
    pub settings: RelaySettings,
    /// Notified whenever an event is accepted or a delivery is made due
    /// again in this process, so an idle worker sends at once instead of at
    /// its next poll.
    pub wake: Notify,
    /// The way to this process's running delivery worker, once one runs.
    handoff: std::sync::Mutex<Option<Handoff>>,
}

/// Path prefix of the ingress route.
pub const INGRESS_PATH: &str = "/ingress/";

/// A fresh relay seed: 32 random bytes, base64url.
pub(crate) fn new_seed() -> Secret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// HMAC-SHA256 of `purpose` and `native_key` under `seed`, base64url.
fn derive(seed: &Secret, purpose: &str, native_key: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(seed.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(purpose.as_bytes());
    mac.update(&[0]);
    mac.update(native_key.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The route token of the native with plan key `native_key`.
pub(crate) fn route_token(seed: &Secret, native_key: &str) -> String {
    derive(seed, "route", native_key)
}

/// The ingress credential of the native with plan key `native_key`.
pub(crate) fn route_credential(seed: &Secret, native_key: &str) -> Secret {
    Secret::new(derive(seed, "credential", native_key))
}

/// The ingress URL of a route token.
pub(crate) fn ingress_url(settings: &RelaySettings, token: &str) -> String {
    format!("{}{INGRESS_PATH}{token}", settings.public_url)
}

impl RelayRuntime {
    /// Relay state for `settings`.
    pub fn new(settings: RelaySettings) -> Arc<Self> {
        Arc::new(Self {
            settings,
            wake: Notify::new(),
            handoff: std::sync::Mutex::default(),
        })
    }

    /// Makes `handoff` the way to this process's delivery worker (the one
    /// started last, should there be several).
    pub(crate) fn open_handoff(&self, handoff: Handoff) {
        *self.lock_handoff() = Some(handoff);
    }

    /// A free attempt slot of this process's running delivery worker, for
    /// a delivery the ingress is about to store claimed by it.
    pub(crate) fn reserve_handoff(&self) -> Option<Reserved> {
        self.lock_handoff().as_ref()?.reserve()
    }

    fn lock_handoff(&self) -> std::sync::MutexGuard<'_, Option<Handoff>> {
        self.handoff
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How long deliveries are signed with both secrets after a rotation.
pub const ROTATION_OVERLAP: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// `current`'s seed and rotation overlap on `desired`, when both are
/// relayed and `desired` has no seed (an update's spec is rebuilt from the
/// request, which never carries them): the natives keep their routes.
/// Leaving relay mode drops them.
pub(crate) fn carry_seed(
    current: &SubscriptionSpec,
    desired: SubscriptionSpec,
) -> SubscriptionSpec {
    let keep = desired.delivery.is_relay() && desired.delivery.seed.is_none();
    if !(keep && current.delivery.is_relay() && current.delivery.seed.is_some()) {
        return desired;
    }
    let mut draft = desired.into_draft();
    draft.delivery.seed = current.delivery.seed.clone();
    draft.delivery.previous_secret = current.delivery.previous_secret.clone();
    draft.delivery.previous_until = current.delivery.previous_until;
    // Only fields no rule looks at changed.
    draft
        .validate()
        .expect("a valid spec with its relay state added is valid")
}

/// The subscriber-facing fields of a relay subscription against what the
/// delivery workers do: a Standard Webhooks secret (they always sign),
/// custom headers that do not collide with the relay's own, and a timeout
/// within [`request::MAX_TIMEOUT`].
fn check_subscriber_side(spec: &SpecDraft, settings: &RelaySettings, errors: &mut Vec<FieldError>) {
    match &spec.signing_secret {
        None => errors.push(FieldError::new(
            "/signing_secret",
            "is required for relayed delivery: events are signed with Standard Webhooks; give a `whsec_…` secret",
        )),
        Some(secret) => {
            if let Err(e) = SigningSecret::parse(secret.expose()) {
                errors.push(FieldError::new(
                    "/signing_secret",
                    format!("is not a Standard Webhooks secret: {e}"),
                ));
            }
        }
    }
    if let Err(e) = request::check_headers(&spec.headers, &spec.auth) {
        errors.push(FieldError::new("/headers", e.to_string()));
    }
    let max = request::MAX_TIMEOUT.as_secs();
    if spec
        .timeout_seconds
        .is_some_and(|t| t == 0 || u64::from(t) > max)
    {
        errors.push(FieldError::new(
            "/timeout_seconds",
            format!("must be between 1 and {max} seconds for relayed delivery"),
        ));
    }
    if spec.max_retries.is_some_and(|r| r > settings.max_retries) {
        errors.push(FieldError::new(
            "/max_retries",
            format!(
                "must be at most {}: the relay's retry schedule (`relay.retry_schedule_seconds`) has no more",
                settings.max_retries
            ),
        ));
    }
}

/// What a relay subscription of one provider can ask for: the callback
/// fields Switchboard honours itself (the same for every kind) and what
/// the kind's ingress imposes. `GET /v1/providers` shows it next to the
/// native matrix.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RelayCapabilities {
    /// Callback auth types the relay sends.
    pub auth: Vec<&'static str>,
    /// How deliveries are signed: `standard-webhooks` (required `whsec_`
    /// secret).
    pub signing: &'static str,
    /// Whether custom headers are sent.
    pub headers: bool,
    /// Delivery methods.
    pub methods: Vec<&'static str>,
    /// Delivery formats.
    pub formats: Vec<&'static str>,
    /// Accepted `timeout_seconds`.
    pub timeout_seconds: switchboard_core::capabilities::Range,
    /// Accepted `max_retries`.
    pub max_retries: switchboard_core::capabilities::Range,
    /// Whether `ordered` delivery can be asked for.
    pub ordered: bool,
    /// How the ingress verifies the provider's deliveries:
    /// `bearer_token` or `signing_secret`.
    pub ingress_credential: &'static str,
    /// Whether each relayed native carries one event (the provider's
    /// deliveries do not name theirs).
    pub one_event_per_native: bool,
    /// Native events that cannot be relayed (the provider sends them
    /// without the credential).
    pub unrelayable_events: Vec<&'static str>,
}

/// What the provider sees of a relay subscription: its events, filters,
/// account, name, enabled flag and provider options, delivering to `url`
/// with `credential` where the kind's ingress reads it. The subscriber's
/// callback fields stay with Switchboard.
fn native_draft(
    spec: &SubscriptionSpec,
    ingress: &Ingress,
    url: CallbackUrl,
    credential: Secret,
) -> SpecDraft {
    let mut draft = spec.clone().into_draft();
    draft.url = url;
    draft.auth = CallbackAuth::None;
    draft.signing_secret = None;
    draft.headers = BTreeMap::new();
    draft.method = None;
    draft.format = None;
    draft.timeout_seconds = None;
    draft.max_retries = None;
    draft.delivery = Default::default();
    ingress.credential.apply(&mut draft, credential);
    draft
}

/// The ingress URL of a route token as a callback URL.
fn route_url(settings: &RelaySettings, token: &str) -> Result<CallbackUrl, Error> {
    CallbackUrl::parse(&ingress_url(settings, token))
        .map_err(|e| Error::Internal(format!("server.public_url makes no callback URL: {e}")))
}

impl Engine {
    /// What a relay subscription of `provider` can ask for; `None` when
    /// relay mode is off or the kind cannot be relayed.
    pub fn relay_capabilities(&self, provider: &ProviderInstance) -> Option<RelayCapabilities> {
        let (relay, ingress) = self.relay_for(provider).ok()?;
        let signed = ingress.credential == IngressCredential::SigningSecret;
        Some(RelayCapabilities {
            auth: vec!["none", "basic", "bearer", "api_key"],
            signing: "standard-webhooks",
            headers: true,
            methods: vec!["POST", "PUT", "PATCH"],
            formats: vec!["json", "xml"],
            timeout_seconds: switchboard_core::capabilities::Range {
                min: 1,
                max: u32::try_from(request::MAX_TIMEOUT.as_secs()).unwrap_or(u32::MAX),
            },
            max_retries: switchboard_core::capabilities::Range {
                min: 0,
                max: relay.settings.max_retries,
            },
            ordered: true,
            ingress_credential: if signed {
                "signing_secret"
            } else {
                "bearer_token"
            },
            one_event_per_native: !ingress.names_event,
            unrelayable_events: if signed {
                provider.adapter.capabilities().unsigned_events.clone()
            } else {
                Vec::new()
            },
        })
    }

    /// Rotates a relay subscription's Standard Webhooks secret (given, or
    /// a new `whsec_` one): nothing changes upstream, and deliveries are
    /// signed with the old secret too for [`ROTATION_OVERLAP`].
    pub(crate) async fn rotate_relay_secret(
        &self,
        current: SubscriptionRecord,
        actor: &str,
        given: Option<Secret>,
    ) -> Result<(SubscriptionRecord, Secret), Error> {
        let secret = given.unwrap_or_else(|| SigningSecret::generate().to_secret());
        if let Err(e) = SigningSecret::parse(secret.expose()) {
            return Err(Error::field(
                "/signing_secret",
                format!("is not a Standard Webhooks secret: {e}"),
            ));
        }
        let previous = current.spec.signing_secret.clone();
        let until = chrono::Utc::now()
            + chrono::Duration::from_std(ROTATION_OVERLAP).unwrap_or(chrono::Duration::MAX);
        let spec = current.spec.clone().with(|d| {
            d.signing_secret = Some(secret.clone());
            d.delivery.previous_secret = previous;
            d.delivery.previous_until = Some(until);
        })?;
        let prepared = self.prepare(&current.id, spec)?;
        let kind = OperationKind::RotateSecret;
        let rec = self
            .transition(current, prepared, kind, actor, &Detached::default())
            .await?;
        Ok((rec, secret))
    }

    /// Relay mode and the kind's ingress, or the 422 that says why a
    /// subscription of `provider` cannot be relayed.
    fn relay_for(
        &self,
        provider: &ProviderInstance,
    ) -> Result<(Arc<RelayRuntime>, Ingress), Error> {
        let Some(relay) = self.relay.clone() else {
            return Err(Error::field(
                "/delivery",
                "relay mode is off on this server (`server.public_url` is not set)",
            ));
        };
        let Some(ingress) = provider.ingress else {
            return Err(Error::Invalid(vec![FieldError::provider(
                "/delivery",
                format!(
                    "provider `{}` (kind {}) cannot be relayed: Switchboard cannot verify its deliveries",
                    provider.key,
                    provider.adapter.kind()
                ),
                provider.key.clone(),
            )]));
        };
        Ok((relay, ingress))
    }

    /// [`Engine::prepare`] of a relay subscription: the subscriber side is
    /// checked against the relay, the native side against the provider,
    /// and every native gets its own route and credential.
    pub(crate) fn prepare_relay(
        &self,
        provider: &ProviderInstance,
        id: &str,
        spec: SubscriptionSpec,
    ) -> Result<Prepared, Error> {
        let (relay, ingress) = self.relay_for(provider)?;
        let kind = provider.adapter.kind();
        let mut errors = Vec::new();
        check_subscriber_side(&spec, &relay.settings, &mut errors);
        let seed = spec.delivery.seed.clone().unwrap_or_else(new_seed);
        let spec = spec.with(|d| d.delivery.seed = Some(seed.clone()))?;
        let url = route_url(&relay.settings, &route_token(&seed, ""))?;
        let mut native = native_draft(&spec, &ingress, url, route_credential(&seed, ""));
        let warnings = match provider
            .adapter
            .capabilities()
            .check(&provider.key, kind, &mut native)
        {
            Ok(w) => w,
            Err(Error::Invalid(e)) => {
                errors.extend(e);
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        let events = match self.catalog().resolve(kind, &provider.key, &native.events) {
            Ok(ev) => ev,
            Err(e) => {
                errors.extend(e);
                Vec::new()
            }
        };
        self.check_relayable(provider, &ingress, &spec, &events, &mut errors);
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        let native = native.validate()?;
        let plans = self.plan_routes(
            provider,
            &ingress,
            &relay.settings,
            id,
            &native,
            &seed,
            &events,
        )?;
        if !ingress.names_event
            && let Some(plan) = plans.iter().find(|p| p.events.len() != 1)
        {
            return Err(Error::Invalid(vec![FieldError::provider(
                "/events",
                format!(
                    "provider `{}` (kind {kind}) does not say which event a delivery is for, so a relayed native carries one event; native `{}` would carry {}",
                    provider.key,
                    plan.key,
                    plan.events.len()
                ),
                provider.key.clone(),
            )]));
        }
        Ok(Prepared {
            spec,
            warnings,
            plans,
        })
    }

    /// Native events the ingress could not verify: a kind whose credential
    /// is a signing secret cannot relay an event it does not sign.
    fn check_relayable(
        &self,
        provider: &ProviderInstance,
        ingress: &Ingress,
        spec: &SubscriptionSpec,
        events: &[String],
        errors: &mut Vec<FieldError>,
    ) {
        if ingress.credential != IngressCredential::SigningSecret {
            return;
        }
        let unsigned = &provider.adapter.capabilities().unsigned_events;
        for (i, event) in events.iter().enumerate() {
            if unsigned.contains(&event.as_str()) {
                let pointer = if spec.events.len() == events.len() {
                    format!("/events/{i}")
                } else {
                    "/events".to_owned()
                };
                errors.push(FieldError::provider(
                    pointer,
                    format!(
                        "native event `{event}` cannot be relayed: provider `{}` (kind {}) sends it without a signature Switchboard could verify",
                        provider.key,
                        provider.adapter.kind()
                    ),
                    provider.key.clone(),
                ));
            }
        }
    }

    /// The plans of a relay subscription's natives: planned once to learn
    /// the plan keys, then each key again with its own route URL and
    /// credential (plan keys do not depend on the URL or the credential).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn plan_routes(
        &self,
        provider: &ProviderInstance,
        ingress: &Ingress,
        settings: &RelaySettings,
        id: &str,
        native: &SubscriptionSpec,
        seed: &Secret,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        let adapter = &provider.adapter;
        let keys: Vec<String> = adapter
            .plan(id, native, events)?
            .into_iter()
            .map(|p| p.key)
            .collect();
        let mut plans = Vec::with_capacity(keys.len());
        for key in keys {
            let url = route_url(settings, &route_token(seed, &key))?;
            let credential = route_credential(seed, &key);
            let spec = native.clone().with(|d| {
                d.url = url;
                ingress.credential.apply(d, credential);
            })?;
            let plan = adapter
                .plan(id, &spec, events)?
                .into_iter()
                .find(|p| p.key == key)
                .ok_or_else(|| {
                    Error::Internal(format!("plan key `{key}` changed with the route URL"))
                })?;
            plans.push(plan);
        }
        Ok(plans)
    }

    /// The plans behind a stored relay subscription (no checks: it passed
    /// them when stored).
    pub(crate) fn stored_relay_plans(
        &self,
        provider: &ProviderInstance,
        id: &str,
        spec: &SubscriptionSpec,
        events: &[String],
    ) -> Result<Vec<NativePlan>, Error> {
        let (relay, ingress) = self.relay_for(provider)?;
        let seed = spec
            .delivery
            .seed
            .clone()
            .ok_or_else(|| Error::Internal(format!("relay subscription `{id}` has no seed")))?;
        let url = route_url(&relay.settings, &route_token(&seed, ""))?;
        let native = native_draft(spec, &ingress, url, route_credential(&seed, "")).validate()?;
        self.plan_routes(
            provider,
            &ingress,
            &relay.settings,
            id,
            &native,
            &seed,
            events,
        )
    }

    /// Writes the ingress routes of `plans` (a relay subscription's
    /// natives-to-be), before any of them is created upstream: a delivery
    /// that follows a create at once finds its route.
    pub(crate) async fn write_routes(
        &self,
        tenant: &str,
        id: &str,
        spec: &SubscriptionSpec,
        plans: &[NativePlan],
    ) -> Result<(), Error> {
        let (Some(seed), true) = (&spec.delivery.seed, spec.delivery.is_relay()) else {
            return Ok(());
        };
        let material: Vec<(String, Secret)> = plans
            .iter()
            .map(|p| (route_token(seed, &p.key), route_credential(seed, &p.key)))
            .collect();
        let routes: Vec<NewRelayRoute<'_>> = plans
            .iter()
            .zip(&material)
            .map(|(p, (token, credential))| NewRelayRoute {
                token,
                tenant,
                subscription_id: id,
                native_key: &p.key,
                provider: &spec.provider,
                credential,
                events: &p.events,
                ordered: spec.delivery.ordered,
            })
            .collect();
        self.store.put_relay_routes(&routes).await
    }

    /// The ingress URL each of a relay subscription's `natives` is
    /// registered with, as `(native key, URL)` in the natives' order;
    /// nothing for a direct subscription. The URLs carry the secret route
    /// tokens, so the API never shows them: this is for demo mode, whose
    /// simulators are told which registered webhook to deliver from.
    pub fn ingress_urls(
        &self,
        spec: &SubscriptionSpec,
        natives: &[NativeRecord],
    ) -> Result<Vec<(String, String)>, Error> {
        if !spec.delivery.is_relay() {
            return Ok(Vec::new());
        }
        let relay = self.relay.as_ref().ok_or_else(|| {
            Error::Conflict("relay mode is off on this server: no ingress route is served".into())
        })?;
        let seed = spec
            .delivery
            .seed
            .as_ref()
            .ok_or_else(|| Error::Internal("a relay subscription has no seed".into()))?;
        Ok(natives
            .iter()
            .map(|n| {
                let token = route_token(seed, &n.key);
                (n.key.clone(), ingress_url(&relay.settings, &token))
            })
            .collect())
    }
}
