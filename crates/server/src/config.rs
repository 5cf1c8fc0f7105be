//! Configuration: built-in defaults → `config/default.toml` (or `--config
//! FILE` / `SWITCHBOARD_CONFIG`) → `SWITCHBOARD_…` environment variables
//! with `__` between levels. Parsed into validated types at start-up; every
//! error names the key path.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use switchboard_core::Secret;

/// The default config file, read when no file is named and it exists.
pub const DEFAULT_FILE: &str = "config/default.toml";

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The origin providers reach Switchboard at
    /// (`https://switchboard.example.com`): relay natives are registered
    /// with `<public_url>/ingress/<token>`. Required when `relay.enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Longest wait for in-flight requests at shutdown.
    pub shutdown_grace_seconds: u64,
}

/// `[database]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://…?mode=rwc` or `postgres://…`.
    pub url: String,
    /// Pool size per process.
    pub max_connections: u32,
    /// Postgres only: schema to create and use instead of `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

/// `[events]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Path of the event catalog.
    pub file: PathBuf,
}

/// One `[[auth.tokens]]` entry.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Name shown in logs.
    pub name: String,
    /// Tenant the token acts for.
    pub tenant: String,
    /// Hex SHA-256 of the token (preferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// The token itself (local use only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Granted scopes.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

fn default_scopes() -> Vec<String> {
    vec!["subscriptions:read".into(), "subscriptions:write".into()]
}

/// `[auth]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

/// One `[providers.<key>]` table: the kind, shared keys, and the kind's own
/// keys (parsed by the adapter crate).
#[derive(Clone, Serialize, Deserialize)]
pub struct ProviderConfig {
    /// The name of a registered provider kind (`switchboard_registry::kinds()`).
    pub kind: String,
    /// Requests per minute to this provider instance (all requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// Requests in flight to this provider instance at once (default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_requests: Option<u32>,
    /// Everything else: base_url and the kind's credentials.
    #[serde(flatten)]
    pub settings: BTreeMap<String, serde_json::Value>,
}

impl ProviderConfig {
    /// The kind-specific keys as the kind's parser takes them.
    pub fn table(&self) -> serde_json::Value {
        serde_json::Value::Object(self.settings.clone().into_iter().collect())
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials live in `settings`; only the key names are shown.
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body.
    pub body_bytes: usize,
    /// Largest total size of a request's headers.
    pub header_bytes: usize,
    /// Longest a request may take before the caller gets a 503.
    pub request_timeout_ms: u64,
    /// Requests served at once; more are refused with 503.
    pub max_concurrent_requests: usize,
    /// How long a create waits for its upstream work before answering 202
    /// `pending`; the work then finishes in the background.
    pub upstream_budget_ms: u64,
    /// Sustained requests per second per token (0: unlimited).
    pub per_token_rps: u32,
    /// Requests a token may burst above its rate.
    pub per_token_burst: u32,
    /// Timeout of one upstream attempt.
    pub upstream_timeout_ms: u64,
    /// Upstream attempts (1 = no retry).
    pub upstream_attempts: u32,
}

/// `[simulators]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorsConfig {
    /// Start the built-in simulators and point every provider of a
    /// simulated kind at them.
    pub enabled: bool,
    /// Where they listen (port 0: any free port).
    pub listen: SocketAddr,
    /// Provider kind → the accounts its simulator knows (Talkover agents,
    /// Telegent `AccountId`s, Bird workspaces). A kind left out keeps its
    /// simulator's defaults.
    #[serde(default)]
    pub accounts: BTreeMap<String, Vec<String>>,
}

/// One `[[secrets.keys]]` entry: a data-encryption key.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key id, stored next to every value it seals.
    pub id: String,
    /// 32 random bytes, base64 (`switchboard secrets generate-key`).
    pub key: Secret,
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyConfig({}, ***)", self.id)
    }
}

/// `[secrets]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// Data-encryption keys; the first seals, all open.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Demo mode only, when `keys` is empty: where a generated key is kept.
    pub demo_key_file: PathBuf,
}

/// `[policy]`: which callback URLs are accepted (see `UrlPolicy`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Accept `http://` callbacks.
    pub allow_http: bool,
    /// Accept private, loopback, link-local and metadata hosts.
    pub allow_private: bool,
    /// Networks accepted although not public (`"10.1.0.0/16"`).
    pub allowed_subnets: Vec<String>,
    /// Longest accepted URL.
    pub max_len: usize,
}

impl PolicyConfig {
    /// The validated policy.
    pub fn to_policy(&self) -> Result<switchboard_core::policy::UrlPolicy, String> {
        let value = serde_json::to_value(self).map_err(|e| e.to_string())?;
        switchboard_core::config::parse_table(value).map_err(|e| format!("policy.{e}"))
    }
}

/// `[reliability]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReliabilityConfig {
    /// How long a change's journal lease lasts; a change whose process
    /// died is recovered once its lease has passed.
    pub operation_lease_ms: u64,
    /// How often leases are renewed and abandoned changes are looked for.
    pub maintenance_interval_ms: u64,
    /// How often a tick of the reconciliation pass runs (one replica at a
    /// time): each tick goes on with the pass, which compares every
    /// subscription with one listing of its account and repairs drift; 0
    /// turns the background pass off.
    pub reconcile_interval_ms: u64,
    /// The share of each provider instance's rate limit a tick may spend:
    /// `rate_limit_per_minute` × the interval in minutes × this share
    /// upstream calls (at least one); the rest is left to API traffic. An
    /// instance without a rate limit is not limited.
    pub reconcile_budget_share: f64,
    /// Added to every wait for an upstream request to settle: a provider
    /// may apply a request a little after Switchboard's attempt timed out.
    /// A request whose answer was lost is verified only after its
    /// attempt's timeout plus this margin.
    pub unknown_outcome_margin_ms: u64,
    /// How long one upstream step keeps retrying transient failures
    /// (5xx, 408, 429, timeouts, dropped connections), verifying before
    /// each retry of a create.
    pub step_deadline_ms: u64,
    /// How long the sweep keeps re-verifying a step whose outcome was
    /// unknown, removing or adopting what lands late.
    pub verify_window_ms: u64,
}

/// `[metrics]`: Prometheus metrics at `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Record and serve metrics.
    pub enabled: bool,
    /// A listener of their own, served without authentication (bind it
    /// where only the scraper reaches); unset: the API listener serves
    /// them to admin tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// The stored-subscription counts are read again at a scrape at most
    /// this often.
    pub subscriptions_refresh_ms: u64,
}

/// `[telemetry]`: the optional OTLP trace export.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`;
    /// spans go to its `/v1/traces`); unset: no export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Share of traces exported, 0 to 1.
    pub sample_ratio: f64,
}

/// `[relay]`: relay mode (issue 13), where providers deliver to
/// Switchboard's ingress and Switchboard delivers to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// Accept relay subscriptions, serve `/ingress/{token}` and run the
    /// delivery workers. Needs `server.public_url`.
    pub enabled: bool,
    /// Most bytes of a provider's delivery the ingress accepts (413 above).
    pub max_payload_bytes: usize,
    /// Delivery attempts in flight at once in this process.
    pub concurrency: usize,
    /// Deliveries claimed per round trip to the database.
    pub batch_size: u32,
    /// How long a claimed delivery stays this replica's; after a crash
    /// another replica retries it once this has passed (a restarted
    /// SQLite server at once). Keep it above the longest attempt (120 s),
    /// or a slow attempt may be taken over and sent twice.
    pub lease_ms: u64,
    /// How often an idle worker looks for due deliveries (events accepted
    /// by this process wake it at once; those of other replicas and due
    /// retries wait for this).
    pub poll_interval_ms: u64,
    /// Delays before each retry, in seconds; the default spans about three
    /// days, as Standard Webhooks suggests. ±20 % jitter is added.
    pub retry_schedule_seconds: Vec<u64>,
    /// The longest `Retry-After` a receiver is obeyed for, in seconds.
    pub max_retry_after_seconds: u64,
    /// Delivered deliveries, their attempts and events are deleted this
    /// many hours after they finished.
    pub retention_hours: u64,
    /// Dead-lettered (`failed`, `gone`) deliveries are kept this many
    /// hours, so they can still be read and redelivered.
    pub failed_retention_hours: u64,
}

impl Default for RelayConfig {
    /// Off; when on, the relay's documented defaults.
    fn default() -> Self {
        Self {
            enabled: false,
            max_payload_bytes: 256 * 1024,
            concurrency: 512,
            batch_size: 256,
            lease_ms: 180_000,
            poll_interval_ms: 1_000,
            retry_schedule_seconds: switchboard_relay::schedule::DEFAULT_DELAYS
                .iter()
                .map(std::time::Duration::as_secs)
                .collect(),
            max_retry_after_seconds: switchboard_relay::schedule::DEFAULT_MAX_RETRY_AFTER.as_secs(),
            retention_hours: 72,
            failed_retention_hours: 14 * 24,
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter (`info`, `switchboard=debug,info`); `RUST_LOG` wins.
    pub level: String,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[database]`.
    pub database: DatabaseConfig,
    /// `[events]`.
    pub events: EventsConfig,
    /// `[auth]`.
    #[serde(default)]
    pub auth: AuthConfig,
    /// `[providers.<key>]`.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[simulators]`.
    pub simulators: SimulatorsConfig,
    /// `[secrets]`.
    pub secrets: SecretsConfig,
    /// `[reliability]`.
    pub reliability: ReliabilityConfig,
    /// `[policy]`.
    pub policy: PolicyConfig,
    /// `[log]`.
    pub log: LogConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[telemetry]`.
    pub telemetry: TelemetryConfig,
    /// `[relay]`.
    pub relay: RelayConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
                public_url: None,
                shutdown_grace_seconds: 20,
            },
            database: DatabaseConfig {
                url: "sqlite://switchboard.db?mode=rwc".into(),
                max_connections: 16,
                schema: None,
            },
            events: EventsConfig {
                file: PathBuf::from("config/events.toml"),
            },
            auth: AuthConfig::default(),
            providers: BTreeMap::new(),
            limits: LimitsConfig {
                body_bytes: 64 * 1024,
                header_bytes: 16 * 1024,
                request_timeout_ms: 30_000,
                max_concurrent_requests: 512,
                upstream_budget_ms: 10_000,
                per_token_rps: 50,
                per_token_burst: 100,
                upstream_timeout_ms: 10_000,
                upstream_attempts: 3,
            },
            simulators: SimulatorsConfig {
                enabled: false,
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                accounts: crate::demo::default_accounts(),
            },
            secrets: SecretsConfig {
                keys: Vec::new(),
                demo_key_file: PathBuf::from("switchboard.demo-key"),
            },
            policy: PolicyConfig {
                allow_http: false,
                allow_private: false,
                allowed_subnets: Vec::new(),
                max_len: 2048,
            },
            reliability: ReliabilityConfig {
                operation_lease_ms: 30_000,
                maintenance_interval_ms: 5_000,
                reconcile_interval_ms: 300_000,
                reconcile_budget_share: 0.5,
                unknown_outcome_margin_ms: 5_000,
                step_deadline_ms: 60_000,
                verify_window_ms: 900_000,
            },
            log: LogConfig {
                format: "text".into(),
                level: "info".into(),
            },
            metrics: MetricsConfig {
                enabled: true,
                listen: None,
                subscriptions_refresh_ms: 15_000,
            },
            telemetry: TelemetryConfig {
                otlp_endpoint: None,
                service_name: "switchboard".into(),
                sample_ratio: 1.0,
            },
            relay: RelayConfig::default(),
        }
    }
}

/// The top-level config sections. Other `SWITCHBOARD_…` variables
/// (`SWITCHBOARD_CONFIG`, test switches) are not configuration.
const SECTIONS: [&str; 14] = [
    "server",
    "database",
    "events",
    "auth",
    "providers",
    "limits",
    "simulators",
    "secrets",
    "reliability",
    "policy",
    "log",
    "metrics",
    "telemetry",
    "relay",
];

impl Config {
    /// Loads defaults → file → environment. `file` is `--config` /
    /// `SWITCHBOARD_CONFIG`; without it, [`DEFAULT_FILE`] is read if present.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(format!("config file {} does not exist", path.display()));
                }
                fig = fig.merge(Toml::file_exact(path));
            }
            None => {
                if Path::new(DEFAULT_FILE).exists() {
                    fig = fig.merge(Toml::file_exact(DEFAULT_FILE));
                }
            }
        }
        fig = fig.merge(Env::prefixed("SWITCHBOARD_").split("__").filter(|k| {
            // The section is what precedes the first `_` or `.` (section
            // names have no underscore), before or after figment's split.
            let first = k.as_str().split(['_', '.']).next().unwrap_or_default();
            SECTIONS.iter().any(|s| first.eq_ignore_ascii_case(s))
        }));
        Self::from_figment(fig)
    }

    /// Parses a figment (tests build their own).
    pub fn from_figment(fig: Figment) -> Result<Self, String> {
        let cfg: Config = fig.extract().map_err(|e| {
            e.into_iter()
                .map(|e| {
                    let path = e.path.join(".");
                    let what = e.kind.to_string();
                    if path.is_empty() {
                        what
                    } else {
                        format!("{path}: {what}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what the types cannot: ranges, formats and the rules that
    /// tie keys together. The first problem found is reported, naming its key.
    fn validate(&self) -> Result<(), String> {
        self.validate_limits()?;
        self.validate_log_and_database()?;
        self.validate_observability()?;
        self.validate_relay()?;
        let demo = self.simulators.enabled;
        self.validate_simulators(demo)?;
        self.validate_secrets(demo)?;
        for (i, t) in self.auth.tokens.iter().enumerate() {
            validate_token(&format!("auth.tokens[{i}]"), t, demo)?;
        }
        for (key, p) in &self.providers {
            validate_provider(key, p)?;
        }
        Ok(())
    }

    /// `[limits]`, `[policy]` and `[reliability]` (checked in this order
    /// since the first releases; the order decides which of several
    /// problems is reported).
    fn validate_limits(&self) -> Result<(), String> {
        if self.limits.body_bytes < 1024 {
            return Err("limits.body_bytes: must be at least 1024".into());
        }
        self.policy.to_policy()?;
        if self.limits.header_bytes < 1024 {
            return Err("limits.header_bytes: must be at least 1024".into());
        }
        if self.limits.max_concurrent_requests == 0 {
            return Err("limits.max_concurrent_requests: must be at least 1".into());
        }
        if self.limits.upstream_budget_ms >= self.limits.request_timeout_ms {
            return Err(
                "limits.upstream_budget_ms: must be below limits.request_timeout_ms".into(),
            );
        }
        if self.limits.request_timeout_ms < 100 {
            return Err("limits.request_timeout_ms: must be at least 100".into());
        }
        if self.reliability.maintenance_interval_ms < 100
            || self.reliability.operation_lease_ms < 3 * self.reliability.maintenance_interval_ms
        {
            return Err(
                "reliability: maintenance_interval_ms must be at least 100, and operation_lease_ms at least three times it (leases are renewed each interval)"
                    .into(),
            );
        }
        if self.limits.upstream_attempts == 0 {
            return Err("limits.upstream_attempts: must be at least 1".into());
        }
        let r = &self.reliability;
        if !(r.reconcile_budget_share > 0.0 && r.reconcile_budget_share <= 1.0) {
            return Err("reliability.reconcile_budget_share: must be above 0 and at most 1".into());
        }
        if r.verify_window_ms < r.unknown_outcome_margin_ms.max(1) {
            // The window would close before the first look.
            return Err(
                "reliability.verify_window_ms: must be at least 1 and at least reliability.unknown_outcome_margin_ms"
                    .into(),
            );
        }
        Ok(())
    }

    /// `log.format`, `database.url` and `database.schema`.
    fn validate_log_and_database(&self) -> Result<(), String> {
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err("log.format: must be `text` or `json`".into());
        }
        if !(self.database.url.starts_with("sqlite:") || self.database.url.starts_with("postgres"))
        {
            return Err("database.url: must start with sqlite: or postgres://".into());
        }
        if let Some(schema) = &self.database.schema
            && (schema.is_empty()
                || !schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err("database.schema: letters, digits and `_` only".into());
        }
        Ok(())
    }

    /// `[metrics]` and `[telemetry]`: a metrics listener apart from the
    /// API's, an http(s) collector URL without credentials, a ratio.
    fn validate_observability(&self) -> Result<(), String> {
        if let Some(listen) = self.metrics.listen
            && listen.port() != 0
            && listen == self.server.listen
        {
            return Err("metrics.listen: must differ from server.listen (unset it to serve /metrics on the API listener)".into());
        }
        let t = &self.telemetry;
        if let Some(endpoint) = &t.otlp_endpoint {
            let authority = endpoint
                .strip_prefix("http://")
                .or_else(|| endpoint.strip_prefix("https://"))
                .map(|rest| rest.split('/').next().unwrap_or_default());
            match authority {
                Some(a) if !a.is_empty() && !a.contains('@') => {}
                _ => {
                    return Err(
                        "telemetry.otlp_endpoint: must be an http:// or https:// URL without credentials (`http://collector:4318`)"
                            .into(),
                    );
                }
            }
        }
        if t.service_name.is_empty() {
            return Err("telemetry.service_name: must not be empty".into());
        }
        if !(0.0..=1.0).contains(&t.sample_ratio) {
            return Err("telemetry.sample_ratio: must be between 0 and 1".into());
        }
        Ok(())
    }

    /// `server.public_url` is an http(s) origin, required by relay mode;
    /// the relay's numbers are in range.
    fn validate_relay(&self) -> Result<(), String> {
        if let Some(url) = &self.server.public_url {
            check_public_url(url).map_err(|e| format!("server.public_url: {e}"))?;
        }
        let r = &self.relay;
        if !r.enabled {
            return Ok(());
        }
        if self.server.public_url.is_none() {
            return Err("server.public_url: is required when relay.enabled is true (providers deliver to <public_url>/ingress/<token>)".into());
        }
        let checks = [
            (
                r.max_payload_bytes == 0,
                "relay.max_payload_bytes: must be at least 1",
            ),
            (r.concurrency == 0, "relay.concurrency: must be at least 1"),
            (r.batch_size == 0, "relay.batch_size: must be at least 1"),
            (r.lease_ms < 1_000, "relay.lease_ms: must be at least 1000"),
            (
                r.poll_interval_ms == 0,
                "relay.poll_interval_ms: must be at least 1",
            ),
            (
                r.retention_hours == 0,
                "relay.retention_hours: must be at least 1",
            ),
            (
                r.failed_retention_hours == 0,
                "relay.failed_retention_hours: must be at least 1",
            ),
        ];
        if let Some((_, problem)) = checks.iter().find(|(bad, _)| *bad) {
            return Err((*problem).into());
        }
        self.relay_schedule()
            .map(|_| ())
            .map_err(|e| format!("relay.retry_schedule_seconds: {e}"))
    }

    /// The relay's retry schedule.
    pub fn relay_schedule(&self) -> Result<switchboard_relay::RetrySchedule, String> {
        let r = &self.relay;
        switchboard_relay::RetrySchedule::new(
            r.retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            Duration::from_secs(r.max_retry_after_seconds),
        )
    }

    /// Demo mode is built in, and every simulated account names a
    /// registered kind.
    fn validate_simulators(&self, demo: bool) -> Result<(), String> {
        if demo && !cfg!(feature = "demo") {
            return Err(crate::demo::NOT_BUILT.into());
        }
        for kind in self.simulators.accounts.keys() {
            if switchboard_registry::find(kind).is_none() {
                return Err(format!(
                    "simulators.accounts.{kind}: `{kind}` is not a provider kind of this build"
                ));
            }
        }
        Ok(())
    }

    /// At least one data-encryption key outside demo mode, each well formed.
    fn validate_secrets(&self, demo: bool) -> Result<(), String> {
        if self.secrets.keys.is_empty() && !demo {
            return Err(
                "secrets.keys: at least one key is required outside demo mode ([simulators] enabled = true); \
                 create one with `switchboard secrets generate-key`"
                    .into(),
            );
        }
        for (i, k) in self.secrets.keys.iter().enumerate() {
            switchboard_store::SecretKey::from_base64(&k.id, k.key.expose())
                .map_err(|e| format!("secrets.keys[{i}].{e}"))?;
        }
        Ok(())
    }
}

/// One `[[auth.tokens]]` entry, reported at `at`: exactly one of a SHA-256
/// or (demo mode only) a plain token, a tenant, and known scopes.
fn validate_token(at: &str, t: &TokenConfig, demo: bool) -> Result<(), String> {
    match (&t.token_sha256, &t.token) {
        (Some(h), None) => {
            let ok = h.len() == 64 && hex::decode(h).is_ok();
            if !ok {
                return Err(format!(
                    "{at}.token_sha256: must be 64 hex characters (SHA-256)"
                ));
            }
        }
        (None, Some(_)) if !demo => {
            return Err(format!(
                "{at}.token: plain tokens are only accepted in demo mode ([simulators] enabled = true); \
                 configure token_sha256 (hex SHA-256 of the token) instead"
            ));
        }
        (None, Some(tok)) if tok.expose().len() >= 8 => {}
        (None, Some(_)) => {
            return Err(format!("{at}.token: must be at least 8 characters"));
        }
        _ => return Err(format!("{at}: set exactly one of token_sha256 or token")),
    }
    if t.tenant.is_empty() {
        return Err(format!("{at}.tenant: must not be empty"));
    }
    for s in &t.scopes {
        if !["subscriptions:read", "subscriptions:write", "admin"].contains(&s.as_str()) {
            return Err(format!(
                "{at}.scopes: `{s}` is not one of subscriptions:read, subscriptions:write, admin"
            ));
        }
    }
    Ok(())
}

/// One `[providers.<key>]` table: the key's characters and the limits.
fn validate_provider(key: &str, p: &ProviderConfig) -> Result<(), String> {
    if key.is_empty()
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "providers.{key}: keys use letters, digits, `-` and `_`"
        ));
    }
    if p.max_concurrent_requests == Some(0) {
        return Err(format!(
            "providers.{key}.max_concurrent_requests: must be at least 1"
        ));
    }
    if p.rate_limit_per_minute == Some(0) {
        return Err(format!(
            "providers.{key}.rate_limit_per_minute: must be at least 1"
        ));
    }
    Ok(())
}

/// An http(s) origin with a host and nothing after it but an optional `/`:
/// ingress URLs are built by appending `/ingress/<token>`.
fn check_public_url(raw: &str) -> Result<(), String> {
    let url = url::Url::parse(raw).map_err(|e| format!("is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must be an origin only (`https://switchboard.example.com`), without path, query or fragment".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `toml` over the defaults in demo mode (no key needed); tests
    /// that need it to succeed run only where demo mode is built in.
    fn parse(toml: &str) -> Result<Config, String> {
        Config::from_figment(
            Figment::from(Serialized::defaults(Config::default()))
                .merge(Toml::string("[simulators]\nenabled = true"))
                .merge(Toml::string(toml)),
        )
    }

    #[test]
    fn production_needs_keys_and_hashed_tokens() {
        let prod = "[simulators]\nenabled = false\n";
        let e = parse(prod).unwrap_err();
        assert!(e.starts_with("secrets.keys: at least one key"), "{e}");
        let key = format!(
            "[[secrets.keys]]\nid = \"k1\"\nkey = \"{}\"\n",
            "A".repeat(43) + "="
        );
        parse(&format!("{prod}{key}")).unwrap();
        let e = parse(&format!(
            "{prod}{key}[[auth.tokens]]\nname = \"a\"\ntenant = \"t\"\ntoken = \"plain-token-1\"\n"
        ))
        .unwrap_err();
        assert!(
            e.starts_with("auth.tokens[0].token: plain tokens are only accepted in demo mode"),
            "{e}"
        );
        let e = parse(&format!(
            "{prod}[[secrets.keys]]\nid = \"k1\"\nkey = \"short\"\n"
        ))
        .unwrap_err();
        assert_eq!(e, "secrets.keys[0].key: not base64");
    }

    #[cfg(feature = "demo")]
    #[test]
    fn errors_name_the_key_path() {
        let e = parse("[server]\nlisten = \"nope\"").unwrap_err();
        assert!(e.starts_with("server.listen"), "{e}");
        let e = parse("[server]\nlisten = \"127.0.0.1:1\"\nbogus = 1").unwrap_err();
        assert!(e.contains("bogus"), "{e}");
        let e = parse("[[auth.tokens]]\nname = \"a\"\ntenant = \"t\"\ntoken_sha256 = \"xyz\"")
            .unwrap_err();
        assert_eq!(
            e,
            "auth.tokens[0].token_sha256: must be 64 hex characters (SHA-256)"
        );
        let e = parse("[providers.x]\nkind = \"talkover\"\nrate_limit_per_minute = 0").unwrap_err();
        assert!(e.starts_with("providers.x.rate_limit_per_minute"), "{e}");
        let e = parse("[reliability]\nverify_window_ms = 100\nunknown_outcome_margin_ms = 200")
            .unwrap_err();
        assert!(e.starts_with("reliability.verify_window_ms"), "{e}");
        for share in ["0", "1.5", "-0.1"] {
            let e = parse(&format!("[reliability]\nreconcile_budget_share = {share}")).unwrap_err();
            assert!(
                e.starts_with("reliability.reconcile_budget_share"),
                "{share}: {e}"
            );
        }
    }

    #[cfg(feature = "demo")]
    #[test]
    fn observability_keys_are_checked() {
        let c = parse("").unwrap();
        assert!(c.metrics.enabled && c.metrics.listen.is_none());
        assert_eq!(c.telemetry.otlp_endpoint, None, "no export by default");
        let c = parse(
            "[metrics]\nlisten = \"127.0.0.1:9464\"\n[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nsample_ratio = 0.25",
        )
        .unwrap();
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(c.telemetry.sample_ratio, 0.25);
        for (toml, key) in [
            ("[metrics]\nlisten = \"nope\"", "metrics.listen"),
            ("[metrics]\nlisten = \"127.0.0.1:8080\"", "metrics.listen"),
            ("[metrics]\nbogus = 1", "metrics"),
            (
                "[telemetry]\notlp_endpoint = \"collector:4318\"",
                "telemetry.otlp_endpoint",
            ),
            (
                "[telemetry]\notlp_endpoint = \"https://u:p@collector\"",
                "telemetry.otlp_endpoint",
            ),
            ("[telemetry]\nsample_ratio = 1.5", "telemetry.sample_ratio"),
            ("[telemetry]\nservice_name = \"\"", "telemetry.service_name"),
        ] {
            let e = parse(toml).unwrap_err();
            assert!(e.starts_with(key), "{toml}: {e}");
        }
    }

    #[cfg(feature = "demo")]
    #[test]
    fn provider_tables_keep_kind_specific_keys() {
        let c = parse(
            "[providers.tk]\nkind = \"talkover\"\ntoken = \"talq_x\"\nrate_limit_per_minute = 5",
        )
        .unwrap();
        let p = &c.providers["tk"];
        assert_eq!(p.kind, "talkover");
        assert_eq!(p.rate_limit_per_minute, Some(5));
        assert_eq!(p.settings["token"], "talq_x");
        assert!(!format!("{p:?}").contains("talq_x"));
    }

    #[cfg(feature = "demo")]
    #[test]
    fn simulator_accounts_are_per_registered_kind() {
        let c =
            parse("[simulators.accounts]\ntalkover = [\"3c1d2a4e-5f60-4b7a-8c9d-0e1f2a3b4c5d\"]")
                .unwrap();
        assert_eq!(
            c.simulators.accounts["talkover"],
            ["3c1d2a4e-5f60-4b7a-8c9d-0e1f2a3b4c5d"]
        );
        // Kinds left out keep their simulator's defaults.
        assert_eq!(
            c.simulators.accounts["telegent"],
            [switchboard_sim::telegent::DEFAULT_ACCOUNT]
        );
        let e = parse("[simulators.accounts]\npigeon = [\"a\"]").unwrap_err();
        assert!(e.starts_with("simulators.accounts.pigeon:"), "{e}");
    }

    #[cfg(not(feature = "demo"))]
    #[test]
    fn demo_mode_needs_the_demo_feature() {
        assert_eq!(parse("").unwrap_err(), crate::demo::NOT_BUILT);
    }

    #[cfg(feature = "demo")]
    #[test]
    fn shipped_configs_parse() {
        for file in ["../../config/default.toml", "../../config/example.toml"] {
            let text = std::fs::read_to_string(file).unwrap();
            parse(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}
