//! The processes a suite run measures, set up the same way every time:
//! a temporary directory with the configuration (SQLite file or a fresh
//! Postgres schema; every provider pointed at `switchboard simulate` in a
//! process of its own; rate limits, per-token limits and upstream
//! concurrency raised so nothing throttles; reconciliation off, since the
//! seeded natives exist only in the database; a fixed data-encryption key
//! that `seed` seals with), and the two children started from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::client::{Conn, Target};
use crate::process::Child;

/// The API token of the tenant under load.
pub const TOKEN: &str = "sb_bench_token_0123456789";
/// The tenant under load; the seed puts 9 of every 10 rows here.
pub const TENANT: &str = "bench";
/// A second tenant, so every query has others' rows to skip.
pub const NEIGHBOUR: &str = "neighbour";
/// 32 fixed bytes, base64: the server and `seed` must share the key.
const KEY: &str = "c3dpdGNoYm9hcmQtYmVuY2gtZml4ZWQta2V5LTMyYiE=";
/// The event catalog the server reads, shipped inside the tool.
const EVENTS: &str = include_str!("../../../config/events.toml");

/// One provider of each kind, with credentials the simulators accept.
const PROVIDERS: &str = r#"
[providers.talkover]
kind = "talkover"
token = "talq_bench_token"

[providers.telegent]
kind = "telegent"
account_key = "DID-BENCH"
account_secret = "bench-secret"

[providers.bird]
kind = "accesskey-workspace"
access_key = "bird_bench_key"

[providers.sendblue]
kind = "account-v2"
api_key_id = "sb_bench_key_id"
api_secret_key = "sb_bench_secret"
"#;

/// Where the suite's database lives.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A file in the temporary directory.
    Sqlite,
    /// A fresh schema on this server.
    Postgres {
        /// `postgres://…`.
        url: String,
        /// `bench_<ulid>`.
        schema: String,
    },
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }
}

/// The binaries the suite starts.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `switchboard`.
    pub server: PathBuf,
}

impl Binaries {
    /// `switchboard` in `dir`, by default the directory of this
    /// executable (the same target directory and profile).
    pub fn locate(dir: Option<&Path>) -> Result<Self, String> {
        let dir = match dir {
            Some(d) => d.to_owned(),
            None => std::env::current_exe()
                .map_err(|e| e.to_string())?
                .parent()
                .ok_or("the executable has no directory")?
                .to_owned(),
        };
        let server = dir.join(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
        if !server.is_file() {
            return Err(format!(
                "{} not found: build it first (cargo build [--release] -p switchboard)",
                server.display()
            ));
        }
        Ok(Self { server })
    }
}

/// The temporary directory and the configs of one backend's run.
pub struct Suite {
    dir: tempfile::TempDir,
    backend: Backend,
    bins: Binaries,
}

/// A running server.
pub struct Server {
    /// The process (stopped when dropped).
    pub child: Child,
    /// Where and as whom to send requests.
    pub target: Target,
    /// Spawn to the first 200 from `/readyz`.
    pub startup: Duration,
}

impl Suite {
    /// A fresh directory with the event catalog.
    pub fn new(backend: Backend, bins: Binaries) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("switchboard-bench-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("events.toml"), EVENTS).map_err(|e| e.to_string())?;
        Ok(Self { dir, backend, bins })
    }

    /// The database backend.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The server's config file (written by [`Suite::write_server_config`]).
    pub fn server_config(&self) -> PathBuf {
        self.dir.path().join("server.toml")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The whole config; providers keep their default `base_url` unless
    /// `urls` gives theirs.
    fn config(&self, urls: &BTreeMap<String, String>) -> String {
        let hash = |t: &str| hex::encode(sha2::Sha256::digest(t.as_bytes()));
        let database = match &self.backend {
            Backend::Sqlite => format!(
                "url = \"sqlite://{}?mode=rwc\"",
                self.path("bench.db").display()
            ),
            Backend::Postgres { url, schema } => format!("url = \"{url}\"\nschema = \"{schema}\""),
        };
        let mut providers = String::new();
        for block in PROVIDERS.split("\n\n") {
            providers.push_str(block.trim_end());
            providers
                .push_str("\nrate_limit_per_minute = 1000000000\nmax_concurrent_requests = 4096\n");
            let key = block
                .lines()
                .find_map(|l| l.trim().strip_prefix("[providers."))
                .and_then(|l| l.strip_suffix(']'));
            if let Some(url) = key.and_then(|k| urls.get(k)) {
                providers.push_str(&format!("base_url = \"{url}\"\n"));
            }
            providers.push('\n');
        }
        format!(
            r#"# Written by switchboard-bench run.
[server]
listen = "127.0.0.1:0"
shutdown_grace_seconds = 5

[database]
{database}

[events]
file = "{events}"

[[auth.tokens]]
name = "{TENANT}"
tenant = "{TENANT}"
token_sha256 = "{bench}"

[[auth.tokens]]
name = "{NEIGHBOUR}"
tenant = "{NEIGHBOUR}"
token_sha256 = "{neighbour}"
{providers}
[limits]
per_token_rps = 0
max_concurrent_requests = 100000

[reliability]
reconcile_interval_ms = 0

[simulators]
enabled = false

[[secrets.keys]]
id = "bench"
key = "{KEY}"

[log]
level = "info"
"#,
            events = self.path("events.toml").display(),
            bench = hash(TOKEN),
            neighbour = hash("sb_bench_neighbour_token_0123"),
        )
    }

    /// Starts `switchboard simulate` and returns it with each provider's
    /// `base_url`.
    pub async fn start_simulators(&self) -> Result<(Child, BTreeMap<String, String>), String> {
        let config = self.path("simulators.toml");
        std::fs::write(&config, self.config(&BTreeMap::new())).map_err(|e| e.to_string())?;
        let urls_file = self.path("simulators.json");
        let mut child = Child::spawn(
            "switchboard simulate",
            Command::new(&self.bins.server)
                .arg("--config")
                .arg(&config)
                .args(["simulate", "--listen", "127.0.0.1:0", "--urls-file"])
                .arg(&urls_file)
                .current_dir(self.dir.path()),
            &self.path("simulators.log"),
        )?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !urls_file.exists() {
            child.check_running()?;
            if Instant::now() > deadline {
                return Err(format!("simulate wrote no URL file:\n{}", child.log_tail()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let text = std::fs::read_to_string(&urls_file).map_err(|e| e.to_string())?;
        let urls = serde_json::from_str(&text).map_err(|e| format!("{text}: {e}"))?;
        Ok((child, urls))
    }

    /// Writes the server's config with the simulators' URLs.
    pub fn write_server_config(&self, urls: &BTreeMap<String, String>) -> Result<(), String> {
        std::fs::write(self.server_config(), self.config(urls)).map_err(|e| e.to_string())
    }

    /// Starts `switchboard serve` and waits until `/readyz` answers 200.
    pub async fn start_server(&self) -> Result<Server, String> {
        let started = Instant::now();
        let mut child = Child::spawn(
            "switchboard serve",
            Command::new(&self.bins.server)
                .arg("--config")
                .arg(self.server_config())
                .arg("serve")
                .current_dir(self.dir.path()),
            &self.path("server.log"),
        )?;
        let deadline = started + Duration::from_secs(300);
        let base = child
            .announced("Switchboard listening on ", deadline)
            .await?;
        let target = Target::new(&base, TOKEN).await?;
        let mut conn = Conn::new(target.clone());
        loop {
            match conn.send(http::Method::GET, "/readyz", None).await {
                Ok(r) if r.status == 200 => break,
                _ if Instant::now() > deadline => {
                    return Err(format!("/readyz never answered 200:\n{}", child.log_tail()));
                }
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
        Ok(Server {
            child,
            target,
            startup: started.elapsed(),
        })
    }

    /// Drops the Postgres schema (the SQLite file goes with the directory).
    pub async fn clean_up(self) -> Result<(), String> {
        if let Backend::Postgres { url, schema } = &self.backend {
            use sea_orm::ConnectionTrait;
            let db = sea_orm::Database::connect(url.as_str())
                .await
                .map_err(|e| e.to_string())?;
            db.execute_unprepared(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
