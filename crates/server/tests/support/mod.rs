//! A real Switchboard on port 0 with its own database and a Talkover
//! simulator, for black-box API tests (the svix-server way).

#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use switchboard::config::{Config, KeyConfig, ProviderConfig, TokenConfig};
use switchboard::{App, Running};
use switchboard_core::Secret;
use switchboard_sim::talkover::{DEFAULT_AGENT, TalkoverConfig, TalkoverSim};
use switchboard_store::StoreOptions;

/// Tokens of the test tenants.
pub const TOKEN_A: &str = "token-tenant-a-0001";
pub const TOKEN_B: &str = "token-tenant-b-0002";
pub const TOKEN_A_READ: &str = "token-tenant-a-read";
pub const TOKEN_ADMIN: &str = "token-platform-admin";
pub const PROVIDER_TOKEN: &str = "talq_e2e_token";
pub const AGENT: &str = DEFAULT_AGENT;

pub struct Env {
    pub base: String,
    /// The Talkover simulator's address (API under `/api/v1`).
    pub sim_base: String,
    pub sim: TalkoverSim,
    pub client: reqwest::Client,
    pub server: Option<Running>,
    _sim_running: switchboard_sim::Running,
}

/// Production form: only the hash of the token is configured.
fn token(name: &str, tenant: &str, token: &str, scopes: &[&str]) -> TokenConfig {
    TokenConfig {
        name: name.into(),
        tenant: tenant.into(),
        token_sha256: Some(hex::encode(switchboard_api::auth::hash_token(token))),
        token: None,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

/// Options tweaking the default environment.
#[derive(Default)]
pub struct Opts {
    /// Talkover base URL instead of the simulator's.
    pub talkover_base_url: Option<String>,
    /// Provider token instead of the one the simulator accepts.
    pub provider_token: Option<String>,
    /// Adjusts the configuration before the server is built.
    pub tweak: Option<fn(&mut Config)>,
}

pub async fn start(store: &StoreOptions, opts: Opts) -> Env {
    let sim = TalkoverSim::new(TalkoverConfig {
        tokens: vec![PROVIDER_TOKEN.into()],
        agents: vec![AGENT.into()],
    });
    let sim_running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.database.url = store.url.clone();
    config.database.schema = store.pg_schema.clone();
    config.database.max_connections = 4;
    config.events.file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/events.toml").into();
    config.limits.upstream_attempts = 1;
    // Unknown outcomes are verified and retried within a few seconds: the
    // simulator answers every request it applies unless a test says not.
    config.limits.upstream_timeout_ms = 2_000;
    config.reliability.unknown_outcome_margin_ms = 200;
    config.reliability.step_deadline_ms = 5_000;
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    config.secrets.keys = vec![KeyConfig {
        id: "k1".into(),
        key: Secret::new(key),
    }];
    config.auth.tokens = vec![
        token(
            "a",
            "tenant-a",
            TOKEN_A,
            &["subscriptions:read", "subscriptions:write"],
        ),
        token(
            "b",
            "tenant-b",
            TOKEN_B,
            &["subscriptions:read", "subscriptions:write"],
        ),
        token("a-read", "tenant-a", TOKEN_A_READ, &["subscriptions:read"]),
        token("ops", "platform", TOKEN_ADMIN, &["admin"]),
    ];
    let base_url = opts
        .talkover_base_url
        .unwrap_or_else(|| format!("{}/api/v1", sim_running.base_url));
    config.providers.insert(
        "talkover".into(),
        ProviderConfig {
            kind: "talkover".into(),
            rate_limit_per_minute: None,
            max_concurrent_requests: None,
            settings: BTreeMap::from([
                ("base_url".to_owned(), json!(base_url)),
                (
                    "token".to_owned(),
                    json!(opts.provider_token.unwrap_or_else(|| PROVIDER_TOKEN.into())),
                ),
            ]),
        },
    );
    if let Some(tweak) = opts.tweak {
        tweak(&mut config);
    }
    let app = App::build(config).await.unwrap();
    let server = app.spawn().await.unwrap();
    Env {
        base: server.base_url.clone(),
        sim_base: sim_running.base_url.clone(),
        sim,
        client: reqwest::Client::new(),
        server: Some(server),
        _sim_running: sim_running,
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    /// Reads a response whole.
    pub async fn read(r: reqwest::Response) -> Resp {
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Field pointers of a problem body.
    pub fn pointers(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e["pointer"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Env {
    pub async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Resp {
        let mut req = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Resp::read(req.send().await.unwrap()).await
    }

    /// Creates `sub_body()` for tenant A; returns its id.
    pub async fn create_sub(&self) -> String {
        let r = self
            .call("POST", "/v1/subscriptions", TOKEN_A, Some(sub_body()))
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_str().unwrap().to_owned()
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Resp {
        let r = self
            .client
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        Resp::read(r).await
    }

    pub fn sim_webhooks(&self) -> Vec<Value> {
        self.sim.webhooks(AGENT)
    }

    /// Requests the simulator answered for the API (faulted ones included).
    pub fn sim_requests(&self) -> Vec<switchboard_sim::faults::LoggedRequest> {
        self.sim.requests()
    }

    pub async fn list_all(&self, token: &str) -> Vec<Value> {
        self.call("GET", "/v1/subscriptions?limit=200", token, None)
            .await
            .json()["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

pub fn sub_body() -> Value {
    json!({
        "provider": "talkover",
        "account": AGENT,
        "name": "billing calls",
        "url": "https://billing.example.com/hooks",
        "events": ["call.ended", "native:event_action"],
        "auth": {"type": "basic", "username": "hook", "password": "pw-SECRET-1"},
        "signing_secret": "whsec-SECRET-2",
        "headers": {"X-Team": "billing"},
        "timeout_seconds": 20,
        "metadata": {"team": "billing"}
    })
}

/// Runs `f` against every configured backend.
#[macro_export]
macro_rules! each_backend {
    ($f:ident) => {
        for (name, opts) in switchboard_store::testing::backends() {
            eprintln!("backend: {name}");
            $f(&opts).await;
        }
    };
}

/// A `switchboard serve` child process; killed with SIGKILL when dropped,
/// exactly like `kill -9` (no shutdown hook runs).
pub struct Process {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Stops the server as an orchestrator does (SIGTERM) and waits for
    /// it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "SIGTERM was delivered");
        self.child.wait().unwrap()
    }
}

/// Starts the binary with `cfg` and waits for it to listen.
pub fn spawn_process(cfg: &std::path::Path) -> Process {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--config", cfg.to_str().unwrap(), "serve"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("Switchboard listening on ") {
                let _ = tx.send(addr.to_owned());
            }
        }
    });
    let base = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the server started");
    Process { child, base }
}
