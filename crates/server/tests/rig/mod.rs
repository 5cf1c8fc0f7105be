//! A real Switchboard on port 0 with one simulator per provider kind, over
//! real HTTP, for reconciliation: subscriptions are seeded through the API,
//! passes are run tick by tick on the server's own engine, and upstream
//! calls are counted from the simulators' request logs. Shared by
//! `tests/reconciliation.rs` and `benches/reconcile.rs`.

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard::config::{Config, KeyConfig, ProviderConfig, TokenConfig};
use switchboard::{App, Running};
use switchboard_core::Secret;
use switchboard_engine::{Engine, ReconcilePolicy, TickReport};
use switchboard_sim::bird::{BirdConfig, BirdSim, DEFAULT_ACCESS_KEY, DEFAULT_WORKSPACE};
use switchboard_sim::faults::LoggedRequest;
use switchboard_sim::sendblue::{DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SendblueConfig, SendblueSim};
use switchboard_sim::talkover::{DEFAULT_AGENT, DEFAULT_TOKEN, TalkoverConfig, TalkoverSim};
use switchboard_sim::telegent::{
    DEFAULT_ACCOUNT, DEFAULT_ACCOUNT_KEY, DEFAULT_ACCOUNT_SECRET, TelegentConfig, TelegentSim,
};
use switchboard_store::StoreOptions;

/// Token of the tenant that owns the subscriptions.
pub const TOKEN: &str = "token-reconcile-0001";
/// An admin token.
pub const ADMIN: &str = "token-reconcile-admin";

/// The provider keys, one per kind.
pub const TALKOVER: &str = "talkover";
pub const BIRD: &str = "bird";
pub const TELEGENT: &str = "telegent";
pub const SENDBLUE: &str = "sendblue";
/// Every provider key of the rig.
pub const PROVIDERS: [&str; 4] = [TALKOVER, BIRD, TELEGENT, SENDBLUE];

/// What the rig starts with.
pub struct RigOpts {
    /// The database.
    pub store: StoreOptions,
    /// Largest page Bird's List returns.
    pub bird_page_size: usize,
    /// Talkover agents besides the default one.
    pub extra_agents: Vec<String>,
    /// Adjusts the configuration before the server is built.
    pub tweak: Option<fn(&mut Config)>,
}

impl RigOpts {
    /// Defaults over `store`.
    pub fn new(store: StoreOptions) -> Self {
        Self {
            store,
            bird_page_size: switchboard_sim::bird::MAX_LIMIT,
            extra_agents: Vec::new(),
            tweak: None,
        }
    }
}

/// The server, its engine and the four simulators.
pub struct Rig {
    /// `http://127.0.0.1:PORT` of the server.
    pub base: String,
    /// The configuration the server runs with (restarts reuse it).
    pub config: Config,
    engine: Engine,
    server: Option<Running>,
    pub talkover: TalkoverSim,
    pub bird: BirdSim,
    pub telegent: TelegentSim,
    pub sendblue: SendblueSim,
    /// Base URLs of the simulators, by provider key.
    pub sim_urls: BTreeMap<&'static str, String>,
    _sims: Vec<switchboard_sim::Running>,
    client: reqwest::Client,
}

fn token(name: &str, secret: &str, scopes: &[&str]) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        tenant: "tenant-r".into(),
        token_sha256: Some(hex::encode(switchboard_api::auth::hash_token(secret))),
        token: None,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn provider(kind: &str, settings: Value) -> ProviderConfig {
    ProviderConfig {
        kind: kind.into(),
        // High enough that nothing throttles (Telegent's default is 50).
        rate_limit_per_minute: Some(6_000_000),
        max_concurrent_requests: Some(64),
        settings: serde_json::from_value(settings).unwrap(),
    }
}

async fn serve(router: axum::Router) -> switchboard_sim::Running {
    switchboard_sim::serve(router, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

impl Rig {
    /// Starts the simulators and a server pointed at them; the background
    /// reconciler is off (ticks are run by the caller).
    pub async fn start(opts: RigOpts) -> Rig {
        let mut agents = vec![DEFAULT_AGENT.to_owned()];
        agents.extend(opts.extra_agents);
        let talkover = TalkoverSim::new(TalkoverConfig {
            tokens: vec![DEFAULT_TOKEN.into()],
            agents,
        });
        let bird = BirdSim::new(BirdConfig {
            page_size_max: opts.bird_page_size,
            ..BirdConfig::default()
        });
        let telegent = TelegentSim::new(TelegentConfig::default());
        let sendblue = SendblueSim::new(SendblueConfig::default());
        let sims = vec![
            serve(talkover.router()).await,
            serve(bird.router()).await,
            serve(telegent.router()).await,
            serve(sendblue.router()).await,
        ];
        let sim_urls = BTreeMap::from([
            (TALKOVER, format!("{}/api/v1", sims[0].base_url)),
            (BIRD, sims[1].base_url.clone()),
            (TELEGENT, sims[2].base_url.clone()),
            (SENDBLUE, sims[3].base_url.clone()),
        ]);
        let mut config = config(&opts.store, &sim_urls);
        if let Some(tweak) = opts.tweak {
            tweak(&mut config);
        }
        let (engine, server) = launch(config.clone()).await;
        Rig {
            base: server.base_url.clone(),
            config,
            engine,
            server: Some(server),
            talkover,
            bird,
            telegent,
            sendblue,
            sim_urls,
            _sims: sims,
            client: reqwest::Client::new(),
        }
    }

    /// Stops the server and starts a new one (a new engine, the same
    /// database): what a restart or a move to another replica looks like.
    pub async fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.unwrap();
        }
        let (engine, server) = launch(self.config.clone()).await;
        self.base = server.base_url.clone();
        self.engine = engine;
        self.server = Some(server);
    }

    /// One tick of the reconciliation pass on the server's engine.
    pub async fn tick(&self, policy: &ReconcilePolicy) -> TickReport {
        self.engine
            .reconcile_tick(policy)
            .await
            .unwrap()
            .expect("no other reconciler holds the lock")
    }

    /// Runs ticks until the pass under way has finished.
    pub async fn full_pass(&self, policy: &ReconcilePolicy) -> Vec<TickReport> {
        let mut ticks = Vec::new();
        loop {
            let report = self.tick(policy).await;
            let done = report.pass.finished_at.is_some();
            ticks.push(report);
            if done {
                return ticks;
            }
        }
    }

    /// `(status, body)` of a request with `token`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Creates a subscription; panics unless it is created.
    pub async fn create(&self, body: Value) -> Value {
        create(&self.client, &self.base, body).await
    }

    /// Creates `n` subscriptions of `provider` in its default account
    /// (numbered from `from`), `parallel` at a time.
    pub async fn seed(&self, provider: &str, from: usize, n: usize, parallel: usize) {
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in from..from + n {
            let permit = permits.clone().acquire_owned().await.unwrap();
            let (client, base) = (self.client.clone(), self.base.clone());
            let b = body(provider, None, i);
            tasks.spawn(async move {
                create(&client, &base, b).await;
                drop(permit);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }

    /// A subscription as the API shows it.
    pub async fn get(&self, id: &str) -> Value {
        let (status, v) = self
            .call("GET", &format!("/v1/subscriptions/{id}"), TOKEN, None)
            .await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// The kinds of the journal entries of subscription `id`, newest first.
    pub async fn operations(&self, id: &str) -> Vec<String> {
        let (_, v) = self
            .call(
                "GET",
                &format!("/v1/subscriptions/{id}/operations"),
                TOKEN,
                None,
            )
            .await;
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    /// `GET /v1/reconciliation` as an admin.
    pub async fn progress(&self) -> Value {
        let (status, v) = self.call("GET", "/v1/reconciliation", ADMIN, None).await;
        assert_eq!(status, 200, "{v}");
        v
    }

    /// Requests the simulator behind `provider` received.
    pub fn requests(&self, provider: &str) -> Vec<LoggedRequest> {
        match provider {
            TALKOVER => self.talkover.requests(),
            BIRD => self.bird.requests(),
            TELEGENT => self.telegent.requests(),
            SENDBLUE => self.sendblue.requests(),
            other => panic!("no provider {other}"),
        }
    }

    /// The engine of the running server.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Forgets every simulator's request log.
    pub fn clear_requests(&self) {
        self.talkover.clear_requests();
        self.bird.clear_requests();
        self.telegent.clear_requests();
        self.sendblue.clear_requests();
    }
}

/// The server's configuration: the four providers at their simulators,
/// no background reconciler, limits raised.
fn config(store: &StoreOptions, urls: &BTreeMap<&'static str, String>) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.database.url = store.url.clone();
    config.database.schema = store.pg_schema.clone();
    config.database.max_connections = 8;
    config.events.file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/events.toml").into();
    config.limits.upstream_attempts = 1;
    config.limits.per_token_rps = 1_000_000;
    config.limits.per_token_burst = 1_000_000;
    config.limits.upstream_timeout_ms = 10_000;
    config.reliability.reconcile_interval_ms = 0;
    config.reliability.unknown_outcome_margin_ms = 200;
    config.reliability.step_deadline_ms = 2_000;
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    config.secrets.keys = vec![KeyConfig {
        id: "k1".into(),
        key: Secret::new(key),
    }];
    config.auth.tokens = vec![
        token("r", TOKEN, &["subscriptions:read", "subscriptions:write"]),
        token("ops", ADMIN, &["admin"]),
    ];
    config.providers = BTreeMap::from([
        (
            TALKOVER.to_owned(),
            provider(
                "talkover",
                json!({"base_url": urls[TALKOVER], "token": DEFAULT_TOKEN}),
            ),
        ),
        (
            BIRD.to_owned(),
            provider(
                "accesskey-workspace",
                json!({"base_url": urls[BIRD], "access_key": DEFAULT_ACCESS_KEY}),
            ),
        ),
        (
            TELEGENT.to_owned(),
            provider(
                "telegent",
                json!({"base_url": urls[TELEGENT], "account_key": DEFAULT_ACCOUNT_KEY, "account_secret": DEFAULT_ACCOUNT_SECRET}),
            ),
        ),
        (
            SENDBLUE.to_owned(),
            provider(
                "account-v2",
                json!({"base_url": urls[SENDBLUE], "api_key_id": DEFAULT_KEY_ID, "api_secret_key": DEFAULT_SECRET_KEY}),
            ),
        ),
    ]);
    config
}

async fn create(client: &reqwest::Client, base: &str, body: Value) -> Value {
    let r = client
        .post(format!("{base}/v1/subscriptions"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "{v}");
    v
}

async fn launch(config: Config) -> (Engine, Running) {
    let app = App::build(config).await.unwrap();
    let engine = app.engine();
    (engine, app.spawn().await.unwrap())
}

/// Subscription `n` of `provider` in `account` (its default one when
/// `None`): its own callback URL, one event (one native resource), and for
/// Bird its own filter (Bird allows five subscriptions per event and
/// filter combination).
pub fn body(provider: &str, account: Option<&str>, n: usize) -> Value {
    let url = format!("https://hooks.example.com/{provider}/{n}");
    match provider {
        TALKOVER => json!({
            "provider": provider, "account": account.unwrap_or(DEFAULT_AGENT),
            "url": url, "events": ["call.ended"],
        }),
        BIRD => json!({
            "provider": provider, "account": account.unwrap_or(DEFAULT_WORKSPACE),
            "url": url, "events": ["message.received"],
            "filters": [{"key": "channelId", "value": format!("channel-{n}")}],
        }),
        TELEGENT => json!({
            "provider": provider, "account": account.unwrap_or(DEFAULT_ACCOUNT),
            "url": url, "events": ["call.ended"],
        }),
        SENDBLUE => json!({
            "provider": provider, "url": url, "events": ["message.received"],
        }),
        other => panic!("no provider {other}"),
    }
}
