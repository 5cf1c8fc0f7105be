//! Demo mode (`[simulators] enabled = true`): one built-in simulator per
//! registered kind in use, accepting the configured credentials, with every
//! provider of that kind pointed at it. Each kind's simulator is started
//! through the registry, so this module names no kind and reads no kind's
//! config keys. Without the `demo` cargo feature the binary links no
//! simulator and demo mode is a configuration error.
//!
//! Demo mode also serves `POST /demo/deliveries` next to the API (not part
//! of v1): it makes a simulator deliver for a relay subscription, which
//! nobody outside could ask for, since the ingress URLs carry secret route
//! tokens the API never shows and the simulators listen on random ports.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use switchboard_api::AppState;

use crate::app::StartError;
use crate::config::Config;

/// What asking for demo mode in a build without it says.
pub const NOT_BUILT: &str = "simulators.enabled: this build has no provider simulators (built without the `demo` feature); set it to false";

/// The simulators of a running server (none outside demo mode).
#[derive(Debug, Default)]
pub struct Simulators {
    #[cfg(feature = "demo")]
    running: Vec<switchboard_sim::Running>,
    /// `(provider key, simulator base URL)`, by key.
    providers: BTreeMap<String, String>,
    /// `(provider key, simulator root)`, by key: where its control routes
    /// are (Talkover's base URL ends in its API prefix, they do not).
    #[cfg(feature = "demo")]
    roots: BTreeMap<String, String>,
}

/// `[simulators.accounts]` by default: each simulated kind's own default
/// accounts (kinds without accounts are left out).
pub fn default_accounts() -> BTreeMap<String, Vec<String>> {
    #[cfg(feature = "demo")]
    {
        switchboard_registry::kinds()
            .iter()
            .filter(|k| !k.simulator.default_accounts.is_empty())
            .map(|k| {
                let accounts = k.simulator.default_accounts.iter();
                (
                    k.name.to_owned(),
                    accounts.map(|a| (*a).to_owned()).collect(),
                )
            })
            .collect()
    }
    #[cfg(not(feature = "demo"))]
    BTreeMap::new()
}

impl Simulators {
    /// The providers pointed at a simulator and its base URL, by key.
    pub fn providers(&self) -> Vec<(String, String)> {
        self.providers.clone().into_iter().collect()
    }

    /// Starts one simulator per registered kind that a provider uses and
    /// rewrites those providers' `base_url` to it. A provider table the
    /// kind cannot parse is a configuration error; a socket that cannot be
    /// bound makes the server unavailable.
    #[cfg(feature = "demo")]
    pub async fn start(config: &mut Config) -> Result<Self, StartError> {
        use switchboard_sim::factory::SimSetup;
        let mut started = Self::default();
        for kind in switchboard_registry::kinds() {
            let tables: Vec<(String, serde_json::Value)> = config
                .providers
                .iter()
                .filter(|(_, p)| p.kind == kind.name)
                .map(|(key, p)| (key.clone(), p.table()))
                .collect();
            if tables.is_empty() {
                continue;
            }
            let tables: Vec<(&str, &serde_json::Value)> =
                tables.iter().map(|(k, t)| (k.as_str(), t)).collect();
            let defaults = || {
                kind.simulator
                    .default_accounts
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect()
            };
            let accounts: Vec<String> = config
                .simulators
                .accounts
                .get(kind.name)
                .cloned()
                .unwrap_or_else(defaults);
            let setup = SimSetup {
                tables: &tables,
                accounts: &accounts,
                page_size: None,
            };
            let sim = (kind.simulator.build)(&setup).map_err(StartError::Config)?;
            let served = switchboard_sim::serve(sim.router(), config.simulators.listen)
                .await
                .map_err(|e| StartError::Unavailable(format!("simulators.listen: {e}")))?;
            tracing::info!(kind = kind.name, url = %served.base_url, "simulator listening");
            let base = format!("{}{}", served.base_url, kind.simulator.api_prefix);
            let of_kind = config
                .providers
                .iter_mut()
                .filter(|(_, p)| p.kind == kind.name);
            for (key, p) in of_kind {
                p.settings
                    .insert("base_url".into(), serde_json::Value::String(base.clone()));
                started.providers.insert(key.clone(), base.clone());
                started.roots.insert(key.clone(), served.base_url.clone());
            }
            started.running.push(served);
        }
        Ok(started)
    }

    /// Demo mode is not compiled in: always [`NOT_BUILT`].
    #[cfg(not(feature = "demo"))]
    pub async fn start(_config: &mut Config) -> Result<Self, StartError> {
        Err(StartError::Config(NOT_BUILT.into()))
    }

    /// The demo-only routes served next to the API (`POST
    /// /demo/deliveries`); the simulators deliver to `server`, the API's
    /// listener, as a TLS-terminating proxy at `server.public_url` would.
    #[cfg(feature = "demo")]
    pub fn routes(&self, state: AppState, server: SocketAddr) -> std::io::Result<axum::Router> {
        emit::router(state, self.roots.clone(), server)
    }

    /// No simulators are compiled in: no routes.
    #[cfg(not(feature = "demo"))]
    pub fn routes(&self, _state: AppState, _server: SocketAddr) -> std::io::Result<axum::Router> {
        Ok(axum::Router::new())
    }

    /// Stops every simulator.
    pub async fn shutdown(self) {
        #[cfg(feature = "demo")]
        for sim in self.running {
            let _ = sim.shutdown().await;
        }
    }
}

/// `POST /demo/deliveries`: the simulator of a relay subscription's
/// provider delivers to the native's ingress URL, as the provider
/// documents, and the caller gets the simulator's report with the route
/// token redacted. Authenticated and tenant-scoped like `/v1` (another
/// tenant's subscription is a 404), errors as problem+json.
#[cfg(feature = "demo")]
mod emit {
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::extract::State;
    use axum::routing::post;
    use axum::{Extension, Json, Router};
    use serde::Deserialize;
    use serde_json::Value;
    use switchboard_api::AppState;
    use switchboard_api::auth::{Caller, WRITE};
    use switchboard_api::extract::ApiJson;
    use switchboard_api::problem::ApiError;
    use switchboard_core::Error;
    use switchboard_engine::INGRESS_PATH;
    use switchboard_sim::deliveries::{DELIVERIES_PATH, DeliveryOrder, MAX_REPEAT};
    use switchboard_sim::faults::REDACTED;
    use switchboard_store::NativeRecord;

    /// The route's path.
    pub const PATH: &str = "/demo/deliveries";

    /// Where orders go.
    struct Targets {
        /// Simulator roots by provider key.
        roots: BTreeMap<String, String>,
        /// `http://IP:PORT` of the API listener.
        server: String,
        client: reqwest::Client,
    }

    /// Body of `POST /demo/deliveries`.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Order {
        /// The relay subscription (`sub_…`).
        subscription: String,
        /// A native event of one of its natives (as listed in its
        /// `native`); default: the first native's first event.
        #[serde(default)]
        event: Option<String>,
        /// Send the identical delivery this many times (a provider retry).
        #[serde(default)]
        repeat: Option<u32>,
        /// Send a wrong credential or signature.
        #[serde(default)]
        corrupt: bool,
    }

    pub(super) fn router(
        state: AppState,
        roots: BTreeMap<String, String>,
        server: SocketAddr,
    ) -> std::io::Result<Router> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        let targets = Targets {
            roots,
            server: switchboard_sim::base_url_for(server),
            client,
        };
        Ok(Router::new()
            .route(PATH, post(deliver))
            .layer(Extension(Arc::new(targets)))
            .with_state(state))
    }

    async fn deliver(
        State(state): State<AppState>,
        Extension(targets): Extension<Arc<Targets>>,
        caller: Caller,
        body: Result<ApiJson<Order>, ApiError>,
    ) -> Result<Json<Value>, ApiError> {
        caller.require(WRITE)?;
        let ApiJson(order) = body?;
        if order.repeat.is_some_and(|r| !(1..=MAX_REPEAT).contains(&r)) {
            return Err(Error::field("/repeat", format!("must be 1 to {MAX_REPEAT}")).into());
        }
        let tenant = caller.tenant_for(&state, &order.subscription).await?;
        let sub = state.engine.get(&tenant, &order.subscription).await?;
        if !sub.spec.delivery.is_relay() {
            return Err(Error::field(
                "/subscription",
                "only relay subscriptions are delivered through Switchboard",
            )
            .into());
        }
        let routes = state.engine.ingress_urls(&sub.spec, &sub.natives)?;
        let (url, event) = pick(&sub.natives, routes, order.event.as_deref())?;
        let provider = &sub.spec.provider;
        let root = targets
            .roots
            .get(provider)
            .ok_or_else(|| Error::Conflict(format!("provider `{provider}` has no simulator")))?;
        let sim_order = DeliveryOrder {
            url,
            event,
            repeat: order.repeat,
            corrupt: order.corrupt,
            deliver_to: Some(targets.server.clone()),
            ..DeliveryOrder::default()
        };
        Ok(Json(run(&targets.client, root, &sim_order, &sub.id).await?))
    }

    /// The ingress URL of the native carrying `event`, or of the first
    /// native, and the event to name in the order: only where that native
    /// carries several, since the URL alone selects a native of one event
    /// however the simulator spells it (Bird's `sms.inbound` for the
    /// native event `channels:sms.inbound`).
    fn pick(
        natives: &[NativeRecord],
        routes: Vec<(String, String)>,
        event: Option<&str>,
    ) -> Result<(String, Option<String>), Error> {
        let mut pairs = natives.iter().zip(routes);
        let Some(event) = event else {
            return pairs
                .next()
                .map(|(_, (_, url))| (url, None))
                .ok_or_else(|| {
                    Error::Conflict(
                        "the subscription has no native resources to deliver from".into(),
                    )
                });
        };
        pairs
            .find(|(n, _)| n.events.iter().any(|e| e == event))
            .map(|(n, (_, url))| (url, (n.events.len() > 1).then(|| event.to_owned())))
            .ok_or_else(|| {
                let known: Vec<&str> = natives
                    .iter()
                    .flat_map(|n| n.events.iter().map(String::as_str))
                    .collect();
                Error::field(
                    "/event",
                    format!(
                        "is not a native event of the subscription; its natives carry: {}",
                        known.join(", ")
                    ),
                )
            })
    }

    /// Sends `order` for `subscription` to the simulator at `root` and
    /// reads its report. The report names the registered URL, whose route
    /// token is a secret.
    async fn run(
        client: &reqwest::Client,
        root: &str,
        order: &DeliveryOrder,
        subscription: &str,
    ) -> Result<Value, Error> {
        let token = order
            .url
            .rsplit_once(INGRESS_PATH)
            .map_or("", |(_, token)| token);
        let failed =
            |e: reqwest::Error| Error::Internal(format!("the simulator did not answer: {e}"));
        let response = client
            .post(format!("{root}{DELIVERIES_PATH}"))
            .json(order)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        let mut text = response.text().await.map_err(failed)?;
        if !token.is_empty() {
            text = text.replace(token, REDACTED);
        }
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Internal(format!("the simulator's answer is not JSON: {e}")))?;
        if status.is_success() {
            return Ok(body);
        }
        let message = body["message"].as_str().unwrap_or_default().to_owned();
        Err(match status.as_u16() {
            // Simulators keep their state in memory: after a restart, a
            // reconcile recreates the natives (docs/operations.md).
            404 => Error::Conflict(format!(
                "{message}: the simulator does not know this native (simulators forget theirs at a restart); POST /v1/subscriptions/{subscription}/reconcile recreates it"
            )),
            409 => Error::Conflict(message),
            422 => Error::field("/event", message),
            _ => Error::Internal(format!("the simulator answered {status}: {message}")),
        })
    }
}
