//! Wiring and serving. `App::build` validates everything that can fail
//! (config, catalog, providers, database, migrations) before a socket is
//! bound; `App::serve` takes the listener and the shutdown signal as
//! arguments (the mini-redis way), so tests bind port 0.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use switchboard_api::metrics::Exposition;
use switchboard_api::{AppState, TokenEntry};
use switchboard_core::{EventCatalog, Transport};
use switchboard_engine::{DeliveryPolicy, Engine, ReconcilePolicy, RelaySettings, StepPolicy};
use switchboard_relay::Sender;
use switchboard_store::{Cipher, SecretKey, Store, StoreOptions};
use switchboard_telemetry::Metrics;
use switchboard_telemetry::otlp::{OtlpSettings, TraceExport};
use switchboard_transport::{HttpTransport, TransportConfig};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::demo::Simulators;
use crate::providers;

/// Why the application could not be built.
#[derive(Debug)]
pub enum StartError {
    /// The configuration is invalid (the message names the key).
    Config(String),
    /// A configured resource (database, simulator socket) is unavailable.
    Unavailable(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(m) => write!(f, "invalid configuration: {m}"),
            Self::Unavailable(m) => write!(f, "cannot start: {m}"),
        }
    }
}

/// A built application, ready to serve.
pub struct App {
    /// The validated configuration (simulator URLs applied).
    pub config: Config,
    state: AppState,
    simulators: Simulators,
    /// The metrics recorder, when `[metrics]` is enabled.
    metrics: Option<Metrics>,
    /// `[metrics] listen`, bound, with what it serves.
    metrics_listener: Option<(TcpListener, Arc<Exposition>)>,
    /// How relay deliveries are sent (used when relay mode is on).
    delivery: (DeliveryPolicy, Arc<Sender>),
    /// This replica's liveness lock (Postgres): held while the process
    /// serves, so the others can tell at once when it has died.
    liveness: Option<switchboard_store::AccountLock>,
}

impl App {
    /// Validates and wires everything; starts the simulators in demo mode.
    /// The steps run in this order so that what needs no I/O fails first
    /// and the database is touched only with a valid configuration.
    pub async fn build(mut config: Config) -> Result<Self, StartError> {
        let catalog = load_catalog(&config)?;
        let simulators = if config.simulators.enabled {
            Simulators::start(&mut config).await?
        } else {
            Simulators::default()
        };
        let transport = transport(&config)?;
        let instances = config
            .providers
            .iter()
            .map(|(key, p)| providers::build(key, p, transport.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(StartError::Config)?;
        let tokens = tokens(&config).map_err(StartError::Config)?;
        let (store, liveness) = connect_store(&config).await?;
        let single_process = store.backend() == "sqlite";
        // The store is one handle shared by the engine (use cases) and the
        // API (its own tables); neither reaches it through the other.
        let engine = Engine::new(store.clone(), Arc::new(catalog), instances)
            .with_lease(Duration::from_millis(config.reliability.operation_lease_ms))
            .with_step_policy(step_policy(&config))
            .single_process(single_process)
            .with_url_policy(config.policy.to_policy().map_err(StartError::Config)?);
        let engine = match (&config.server.public_url, config.relay.enabled) {
            (Some(public_url), true) => engine.with_relay(RelaySettings {
                public_url: public_url.trim_end_matches('/').to_owned(),
                max_payload_bytes: config.relay.max_payload_bytes,
                max_retries: u32::try_from(config.relay.retry_schedule_seconds.len())
                    .unwrap_or(u32::MAX),
            }),
            _ => engine,
        };
        recover_interrupted(&engine, single_process).await;
        let mut state = AppState::new(engine, store, tokens, limits(&config));
        let metrics = config.metrics.enabled.then(switchboard_telemetry::install);
        let mut metrics_listener = None;
        if let Some(m) = &metrics {
            let exposition = Arc::new(exposition(&config, m, &state));
            match config.metrics.listen {
                Some(addr) => {
                    let listener = TcpListener::bind(addr).await.map_err(|e| {
                        StartError::Unavailable(format!("metrics.listen: cannot bind {addr}: {e}"))
                    })?;
                    metrics_listener = Some((listener, exposition));
                }
                None => state = state.with_metrics(exposition),
            }
        }
        let delivery = delivery(&config)?;
        Ok(Self {
            delivery,
            state,
            config,
            simulators,
            metrics,
            metrics_listener,
            liveness,
        })
    }

    /// Where `/metrics` is served without authentication, when `[metrics]
    /// listen` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// The engine this application serves (for tools and tests that drive
    /// background work, such as a reconciliation tick, themselves).
    pub fn engine(&self) -> Engine {
        self.state.engine.clone()
    }

    /// Base URLs of the running simulators, by provider key.
    pub fn simulated_providers(&self) -> Vec<(String, String)> {
        self.simulators.providers()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let maintenance = self.state.engine.spawn_maintenance(Duration::from_millis(
            self.config.reliability.maintenance_interval_ms,
        ));
        let reconciler = (self.config.reliability.reconcile_interval_ms > 0).then(|| {
            self.state.engine.spawn_reconciler(
                Duration::from_millis(self.config.reliability.reconcile_interval_ms),
                reconcile_policy(&self.config),
            )
        });
        let upkeep = self.metrics.map(|m| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(METRICS_UPKEEP);
                loop {
                    tick.tick().await;
                    m.run_upkeep();
                }
            })
        });
        let metrics_server = self.metrics_listener.map(|(l, exposition)| {
            tracing::info!(addr = ?l.local_addr().ok(), "serving /metrics on its own listener");
            let router = switchboard_api::metrics::open_router(exposition);
            tokio::spawn(crate::listen::serve(l, router, std::future::pending()))
        });
        let liveness = {
            let store = self.state.store.clone();
            let held = self.liveness;
            tokio::spawn(async move { store.keep_liveness(held, LIVENESS_CHECK).await })
        };
        let deliveries = self.state.engine.relay().is_some().then(|| {
            self.state
                .engine
                .spawn_delivery_workers(self.delivery.0.clone(), self.delivery.1.clone())
        });
        let mut router = switchboard_api::router(self.state.clone());
        if self.config.simulators.enabled {
            // Demo mode's own routes, not part of v1 (docs/operations.md).
            router = router.merge(self.simulators.routes(self.state, listener.local_addr()?)?);
        }
        let result = crate::listen::serve(listener, router, shutdown).await;
        maintenance.abort();
        if let Some(r) = reconciler {
            r.abort();
        }
        if let Some(task) = deliveries {
            task.abort();
        }
        liveness.abort();
        for task in [upkeep, metrics_server].into_iter().flatten() {
            task.abort();
        }
        self.simulators.shutdown().await;
        result
    }

    /// Binds `listen` and serves in a background task (for tests and tools).
    pub async fn spawn(self) -> std::io::Result<Running> {
        let listener = TcpListener::bind(self.config.server.listen).await?;
        let addr = listener.local_addr()?;
        let metrics_url = self.metrics_addr().map(|a| format!("http://{a}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Running {
            base_url: format!("http://{addr}"),
            metrics_url,
            stop,
            task,
        })
    }
}

/// A server running in the background; stops when dropped or shut down.
pub struct Running {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// `http://127.0.0.1:PORT` of the metrics listener, when `[metrics]
    /// listen` is set.
    pub metrics_url: Option<String>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Graceful shutdown.
    pub async fn shutdown(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// The event catalog named by `events.file`, checked against the
/// registered provider kinds.
fn load_catalog(config: &Config) -> Result<EventCatalog, StartError> {
    let text = std::fs::read_to_string(&config.events.file).map_err(|e| {
        StartError::Config(format!(
            "events.file: cannot read {}: {e}",
            config.events.file.display()
        ))
    })?;
    EventCatalog::from_toml(&text)
        .and_then(|c| switchboard_registry::check_catalog(&c).map(|()| c))
        .map_err(|e| StartError::Config(format!("events.file: {e}")))
}

/// The upstream HTTP transport: `[limits]` timeouts and attempts, and each
/// provider instance's rate limit and concurrency.
fn transport(config: &Config) -> Result<Arc<dyn Transport>, StartError> {
    let rate_limits: HashMap<String, u32> = config
        .providers
        .iter()
        .filter_map(|(k, p)| providers::rate_limit(p).map(|r| (k.clone(), r)))
        .collect();
    let concurrency = config
        .providers
        .iter()
        .map(|(k, p)| (k.clone(), p.max_concurrent_requests.unwrap_or(8) as usize))
        .collect();
    let transport = HttpTransport::new(
        TransportConfig {
            request_timeout: Duration::from_millis(config.limits.upstream_timeout_ms),
            max_attempts: config.limits.upstream_attempts,
            ..TransportConfig::default()
        },
        rate_limits,
    )
    .map_err(StartError::Unavailable)?
    .with_concurrency(concurrency);
    Ok(Arc::new(transport))
}

/// How upstream steps wait, retry and are watched: the transport's
/// timeouts and `[reliability]`'s margin, deadline and window.
fn step_policy(config: &Config) -> StepPolicy {
    let r = &config.reliability;
    StepPolicy {
        margin: Duration::from_millis(r.unknown_outcome_margin_ms),
        deadline: Duration::from_millis(r.step_deadline_ms),
        window: Duration::from_millis(r.verify_window_ms),
        ..StepPolicy::from_transport(
            Duration::from_millis(config.limits.upstream_timeout_ms),
            config.limits.upstream_attempts,
            TransportConfig::default().max_backoff,
        )
    }
}

/// How the reconciliation pass spends upstream calls: per tick, each
/// provider instance with a rate limit may use
/// `reliability.reconcile_budget_share` of what that limit allows over one
/// `reliability.reconcile_interval_ms` (at least one call); the others are
/// unlimited.
pub fn reconcile_policy(config: &Config) -> ReconcilePolicy {
    let r = &config.reliability;
    let minutes = r.reconcile_interval_ms as f64 / 60_000.0;
    let budgets = config
        .providers
        .iter()
        .filter_map(|(key, p)| {
            let per_minute = f64::from(providers::rate_limit(p)?);
            let calls = (per_minute * minutes * r.reconcile_budget_share).floor() as u64;
            Some((key.clone(), calls.max(1)))
        })
        .collect();
    ReconcilePolicy {
        budgets,
        ..ReconcilePolicy::default()
    }
}

/// The configured API tokens, each with the SHA-256 of its secret (given
/// as `token_sha256`, or hashed here from `token`).
fn tokens(config: &Config) -> Result<Vec<TokenEntry>, String> {
    config
        .auth
        .tokens
        .iter()
        .map(|t| {
            let sha256 = match (&t.token_sha256, &t.token) {
                (Some(h), _) => hex_to_32(h)
                    .ok_or_else(|| format!("auth.tokens `{}`: bad token_sha256", t.name))?,
                (None, Some(tok)) => switchboard_api::auth::hash_token(tok.expose()),
                (None, None) => return Err(format!("auth.tokens `{}`: no token", t.name)),
            };
            Ok(TokenEntry {
                name: t.name.clone(),
                tenant: t.tenant.clone(),
                sha256,
                scopes: t.scopes.clone(),
            })
        })
        .collect()
}

/// Connects to (and migrates) the database and takes this replica's
/// liveness lock.
async fn connect_store(
    config: &Config,
) -> Result<(Store, Option<switchboard_store::AccountLock>), StartError> {
    let unavailable =
        |e: switchboard_core::Error| StartError::Unavailable(format!("database.url: {e}"));
    let mut opts = StoreOptions::new(config.database.url.clone(), cipher(config)?);
    opts.max_connections = config.database.max_connections;
    opts.pg_schema = config.database.schema.clone();
    let store = Store::connect(&opts).await.map_err(unavailable)?;
    let liveness = store.hold_liveness().await.map_err(unavailable)?;
    Ok((store, liveness))
}

/// Finishes or undoes the changes a previous process left half done,
/// before serving. On SQLite (one process) every running entry is
/// abandoned; on Postgres only those whose lease has passed. A failure is
/// logged, not fatal: the maintenance task retries.
async fn recover_interrupted(engine: &Engine, single_process: bool) {
    match engine.recover(single_process).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(count = n, "recovered interrupted changes"),
        Err(e) => {
            tracing::warn!(error = %e, "start-up recovery failed; the maintenance task retries")
        }
    }
}

/// The OTLP trace export `[telemetry]` asks for, started; `None` when no
/// endpoint is set, or (with a notice) when the exporter cannot be built:
/// traces are an aid, and their loss must not stop the gateway. Call it
/// before the async runtime starts (see `switchboard_telemetry::otlp`).
pub fn trace_export(config: &Config) -> Option<TraceExport> {
    let t = &config.telemetry;
    let settings = OtlpSettings {
        endpoint: t.otlp_endpoint.clone()?,
        service_name: t.service_name.clone(),
        sample_ratio: t.sample_ratio,
    };
    TraceExport::start(&settings)
        .map_err(|e| {
            eprintln!("switchboard: telemetry.otlp_endpoint: traces are not exported: {e}")
        })
        .ok()
}

/// How often histogram samples are folded into their buckets when
/// nobody scrapes (rendering folds them too).
const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// How often the liveness lock's connection is checked (Postgres): a lock
/// lost with its connection is taken again within this, about as soon as
/// the other replicas' 5 s look for dead replicas would notice it.
const LIVENESS_CHECK: Duration = Duration::from_secs(2);

/// What `/metrics` serves: the recorder and the subscription counts,
/// every configured provider instance included.
fn exposition(config: &Config, metrics: &Metrics, state: &AppState) -> Exposition {
    Exposition::new(
        metrics.clone(),
        state.store.clone(),
        Duration::from_millis(config.metrics.subscriptions_refresh_ms),
        config.providers.keys().cloned().collect(),
    )
}

/// The API's request limits from `[limits]`.
fn limits(config: &Config) -> switchboard_api::Limits {
    let l = &config.limits;
    switchboard_api::Limits {
        body_bytes: l.body_bytes,
        header_bytes: l.header_bytes,
        request_timeout: Duration::from_millis(l.request_timeout_ms),
        max_concurrent_requests: l.max_concurrent_requests,
        upstream_budget: Duration::from_millis(l.upstream_budget_ms),
        per_token_rps: l.per_token_rps,
        per_token_burst: l.per_token_burst,
    }
}

/// The data-encryption keys of `config`. In demo mode without keys, a key
/// is read from (or generated into) `secrets.demo_key_file`, with a notice.
pub fn cipher(config: &Config) -> Result<Cipher, StartError> {
    if !config.secrets.keys.is_empty() {
        let keys = config
            .secrets
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                SecretKey::from_base64(&k.id, k.key.expose())
                    .map_err(|e| StartError::Config(format!("secrets.keys[{i}].{e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Cipher::new(keys).map_err(|e| StartError::Config(format!("secrets.keys: {e}")));
    }
    if !config.simulators.enabled {
        return Err(StartError::Config(
            "secrets.keys: at least one key is required outside demo mode".into(),
        ));
    }
    let path = &config.secrets.demo_key_file;
    let key = match std::fs::read_to_string(path) {
        Ok(text) => {
            let (id, b64) = text.trim().split_once(':').unwrap_or(("demo", text.trim()));
            SecretKey::from_base64(id, b64).map_err(|e| {
                StartError::Config(format!("secrets.demo_key_file {}: {e}", path.display()))
            })?
        }
        Err(_) => {
            let (key, b64) = SecretKey::generate("demo");
            write_private(path, &format!("demo:{b64}\n")).map_err(|e| {
                StartError::Unavailable(format!("secrets.demo_key_file {}: {e}", path.display()))
            })?;
            println!(
                "Demo mode: generated a data-encryption key in {} (configure [secrets] keys in production).",
                path.display()
            );
            key
        }
    };
    Cipher::new(vec![key]).map_err(StartError::Config)
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

fn hex_to_32(h: &str) -> Option<[u8; 32]> {
    hex::decode(h).ok()?.try_into().ok()
}

/// The delivery workers' policy from `[relay]` and their sender, bound to
/// the callback URL `[policy]` (applied again to every resolved address).
fn delivery(config: &Config) -> Result<(DeliveryPolicy, Arc<Sender>), StartError> {
    let r = &config.relay;
    let hours = |h: u64| Duration::from_secs(h.saturating_mul(3600));
    let policy = DeliveryPolicy {
        concurrency: r.concurrency,
        batch_size: u64::from(r.batch_size),
        lease: Duration::from_millis(r.lease_ms),
        poll_interval: Duration::from_millis(r.poll_interval_ms),
        schedule: config.relay_schedule().map_err(StartError::Config)?,
        delivered_retention: hours(r.retention_hours),
        failed_retention: hours(r.failed_retention_hours),
        ..DeliveryPolicy::default()
    };
    let url_policy = config.policy.to_policy().map_err(StartError::Config)?;
    let sender = Sender::new(url_policy).map_err(|e| StartError::Unavailable(e.to_string()))?;
    Ok((policy, Arc::new(sender)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_spends_its_share_of_each_rate_limit() {
        let mut config = Config::default();
        config.reliability.reconcile_interval_ms = 300_000;
        config.reliability.reconcile_budget_share = 0.5;
        let table = |kind: &str, limit: Option<u32>| crate::config::ProviderConfig {
            kind: kind.into(),
            rate_limit_per_minute: limit,
            max_concurrent_requests: None,
            settings: Default::default(),
        };
        config
            .providers
            .insert("tg".into(), table("telegent", None));
        config
            .providers
            .insert("tk".into(), table("talkover", Some(600)));
        config
            .providers
            .insert("open".into(), table("talkover", None));
        let policy = reconcile_policy(&config);
        // Telegent's documented 50/min over 5 minutes, half of it.
        assert_eq!(policy.budgets.get("tg"), Some(&125));
        assert_eq!(policy.budgets.get("tk"), Some(&1500));
        assert_eq!(policy.budgets.get("open"), None, "no limit, no budget");
        config.reliability.reconcile_interval_ms = 100;
        assert_eq!(reconcile_policy(&config).budgets.get("tg"), Some(&1));
    }
}
