//! Crash safety: `kill -9` of the server at points of a multi-resource
//! change, then a restart; the store and an independent provider (the Bird
//! simulator, running in this test process so it survives the kill) must
//! agree, with nothing orphaned at the provider.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_sim::bird::{BirdConfig, BirdSim};
use switchboard_sim::faults::{Fault, Harness};

mod support;

use support::{Process, spawn_process};

const TOKEN: &str = "crash-test-token-1";
const WORKSPACE: &str = "2f4a7c1e-8b5d-4e6f-9a0b-1c2d3e4f5a6b";

/// Short timeouts, so that a killed process's requests settle (and
/// recovery may look) within seconds, and a fast maintenance tick.
const RELIABILITY: &str = "[reliability]
reconcile_interval_ms = 0
unknown_outcome_margin_ms = 300
step_deadline_ms = 5000
maintenance_interval_ms = 100
operation_lease_ms = 1000";

/// The database of a test: a SQLite file in `dir`, or a Postgres schema.
fn database(dir: &std::path::Path, pg: Option<&switchboard_store::StoreOptions>) -> String {
    match pg {
        Some(o) => format!(
            "url = \"{}\"\nschema = \"{}\"",
            o.url,
            o.pg_schema.as_deref().unwrap_or_default()
        ),
        None => format!(
            "url = \"sqlite://{}?mode=rwc\"",
            dir.join("sb.db").display()
        ),
    }
}

fn config(dir: &std::path::Path, bird_url: &str) -> std::path::PathBuf {
    config_on(dir, bird_url, None)
}

fn config_on(
    dir: &std::path::Path,
    bird_url: &str,
    pg: Option<&switchboard_store::StoreOptions>,
) -> std::path::PathBuf {
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    let hash = hex::encode(switchboard_api::auth::hash_token(TOKEN));
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[database]
{db}
[[auth.tokens]]
name = "ops"
tenant = "ops"
token_sha256 = "{hash}"
[providers.bird]
kind = "accesskey-workspace"
base_url = "{bird_url}"
access_key = "bird_crash_key"
[limits]
upstream_attempts = 1
upstream_timeout_ms = 1000
[[secrets.keys]]
id = "k1"
key = "{key}"
{reliability}
[log]
level = "warn"
"#,
        db = database(dir, pg),
        reliability = RELIABILITY,
    );
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(cfg: &std::path::Path) -> Process {
    spawn_process(cfg)
}

fn kill9(s: Process) {
    drop(s);
}

fn sim() -> BirdSim {
    BirdSim::new(BirdConfig {
        access_keys: vec!["bird_crash_key".into()],
        workspaces: vec![WORKSPACE.into()],
        ..BirdConfig::default()
    })
}

fn body() -> Value {
    json!({
        "provider": "bird", "account": WORKSPACE,
        "url": "https://billing.example.com/hooks",
        "events": ["message.received", "message.sent", "conversation.created", "conversation.updated"],
        "signing_secret": "whsec_crash"
    })
}

/// Sends a request to the server in the background: the test kills the
/// server while it is under way, so its answer is never read.
fn in_background(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> tokio::task::JoinHandle<()> {
    let request = client.request(method, url).bearer_auth(TOKEN).json(&body);
    tokio::spawn(async move {
        let _ = request.send().await;
    })
}

/// Waits until `seen` POSTs/PATCHes reached the simulator. The server is
/// another process, so this polls its effect at the provider (every 2 ms,
/// for at most 60 s) rather than waiting a fixed time.
async fn wait_for_calls(sim: &Harness, method: &str, seen: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if sim.requests().iter().filter(|r| r.method == method).count() >= seen {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the server never sent {seen} {method} requests");
}

/// The subscriptions once recovery has finished every interrupted change
/// (none is `pending`). Recovery waits until a dead process's requests can
/// no longer land, so this polls (every 20 ms, for at most 60 s).
async fn settled(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let all = subs(client, base).await;
        if all.iter().all(|s| s["status"] != "pending") {
            return all;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recovery never finished: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn subs(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let page: Value = client
        .get(format!("{base}/v1/subscriptions?limit=200"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["data"].as_array().cloned().unwrap_or_default()
}

/// The store's native ids equal the provider's subscription ids.
fn assert_agree(sim: &BirdSim, stored: &[Value]) {
    let mut at_provider: Vec<String> = sim
        .subscriptions(WORKSPACE)
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    let mut recorded: Vec<String> = stored
        .iter()
        .flat_map(|s| s["native"].as_array().cloned().unwrap_or_default())
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    at_provider.sort();
    recorded.sort();
    assert_eq!(
        recorded, at_provider,
        "store and provider agree; nothing orphaned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_fan_out_create_leaves_nothing_behind() {
    let bird = sim();
    let running = switchboard_sim::serve(bird.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    // Each point: the number of creates the provider has received when the
    // process is killed (the last one still in flight). On Postgres the
    // restarted replica sees at once that the dead one no longer holds its
    // liveness lock, instead of waiting for the lease.
    let pg = switchboard_store::testing::postgres();
    let runs = (1..=4)
        .map(|p| (p, None))
        .chain((1..=4).filter(|_| pg.is_some()).map(|p| (p, pg.as_ref())));
    for (point, pg) in runs {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_on(dir.path(), &running.base_url, pg);
        bird.clear_requests();
        let server = start(&cfg);
        // Every create is held at the provider long enough to be cut off.
        bird.inject(Fault::latency(400).on_method("POST").times(8))
            .unwrap();
        let request = in_background(
            &client,
            reqwest::Method::POST,
            format!("{}/v1/subscriptions", server.base),
            body(),
        );
        wait_for_calls(&bird, "POST", point).await;
        kill9(server);
        let _ = request.await;
        bird.clear_faults();

        let server = start(&cfg);
        let stored = settled(&client, &server.base).await;
        assert!(
            stored.is_empty(),
            "point {point}: an unanswered create is undone: {stored:?}"
        );
        assert_agree(&bird, &stored);
        kill9(server);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_an_update_finishes_it_after_restart() {
    let bird = sim();
    let running = switchboard_sim::serve(bird.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for point in 1..=3 {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &running.base_url);
        let server = start(&cfg);
        let created: Value = client
            .post(format!("{}/v1/subscriptions", server.base))
            .bearer_auth(TOKEN)
            .json(&body())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        bird.clear_requests();
        bird.inject(Fault::latency(400).on_method("PATCH").times(8))
            .unwrap();
        let request = in_background(
            &client,
            reqwest::Method::PATCH,
            format!("{}/v1/subscriptions/{id}", server.base),
            json!({"url": "https://billing.example.com/v2"}),
        );
        wait_for_calls(&bird, "PATCH", point).await;
        kill9(server);
        let _ = request.await;
        bird.clear_faults();

        let server = start(&cfg);
        let stored = settled(&client, &server.base).await;
        let mine: Vec<Value> = stored
            .iter()
            .filter(|s| s["id"] == id.as_str())
            .cloned()
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["status"], "active", "point {point}: {:?}", mine[0]);
        assert_eq!(
            mine[0]["url"], "https://billing.example.com/v2",
            "the change was finished"
        );
        assert_eq!(mine[0]["native"].as_array().unwrap().len(), 4);
        for s in bird.subscriptions(WORKSPACE).iter().filter(|s| {
            mine[0]["native"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == s["id"])
        }) {
            assert_eq!(s["url"], "https://billing.example.com/v2");
        }
        assert_agree(&bird, &stored);
        let history: Value = client
            .get(format!("{}/v1/subscriptions/{id}/operations", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let kinds: Vec<(&str, &str)> = history["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| (o["kind"].as_str().unwrap(), o["state"].as_str().unwrap()))
            .collect();
        assert_eq!(kinds, [("update", "recovered"), ("create", "succeeded")]);
        // Clean up so the next point starts from an empty provider.
        let r = client
            .delete(format!("{}/v1/subscriptions/{id}", server.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert!(bird.subscriptions(WORKSPACE).is_empty());
        kill9(server);
    }
}

/// A Sendblue simulator, running in this process (it survives the kill),
/// that accepts the credentials of [`sendblue_config`].
async fn sendblue_sim() -> (
    switchboard_sim::sendblue::SendblueSim,
    switchboard_sim::Running,
) {
    use switchboard_sim::sendblue::{SendblueConfig, SendblueSim};
    let sendblue = SendblueSim::new(SendblueConfig {
        credentials: vec![("sb_key".into(), "sb_secret".into())],
    });
    let running = switchboard_sim::serve(sendblue.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (sendblue, running)
}

/// The configuration of a Sendblue crash test: SQLite in `dir`, the
/// simulator at `sim_url`.
fn sendblue_config(dir: &std::path::Path, sim_url: &str) -> std::path::PathBuf {
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    let cfg = dir.join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite://{db}?mode=rwc"
[[auth.tokens]]
name = "ops"
tenant = "ops"
token_sha256 = "{hash}"
[providers.sendblue]
kind = "account-v2"
base_url = "{sim}"
api_key_id = "sb_key"
api_secret_key = "sb_secret"
[limits]
upstream_attempts = 1
upstream_timeout_ms = 1000
[[secrets.keys]]
id = "k1"
key = "{key}"
{reliability}
[log]
level = "warn"
"#,
            reliability = RELIABILITY,
            db = dir.join("sb.db").display(),
            hash = hex::encode(switchboard_api::auth::hash_token(TOKEN)),
            sim = sim_url,
        ),
    )
    .unwrap();
    cfg
}

/// Sendblue changes a URL by adding the new entry, then removing the old
/// one (its identity is the URL). A kill between the two must end, after
/// restart, with only the new entries and every foreign entry intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_between_a_sendblue_add_and_remove_converges() {
    let (sendblue, running) = sendblue_sim().await;
    sendblue.seed_foreign("receive", "https://foreign.example.com/a", Some("theirs"));
    let dir = tempfile::tempdir().unwrap();
    let cfg = sendblue_config(dir.path(), &running.base_url);
    let client = reqwest::Client::new();
    let server = start(&cfg);
    let created: Value = client
        .post(format!("{}/v1/subscriptions", server.base))
        .bearer_auth(TOKEN)
        .json(
            &json!({"provider": "sendblue", "url": "https://billing.example.com/v1",
                      "events": ["message.received", "call.ended"], "signing_secret": "whsec_sb"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    sendblue.clear_requests();
    // Hold every removal so the process dies after an add, before its remove.
    sendblue
        .inject(Fault::latency(2000).on_method("DELETE").times(4))
        .unwrap();
    let request = in_background(
        &client,
        reqwest::Method::PATCH,
        format!("{}/v1/subscriptions/{id}", server.base),
        json!({"url": "https://billing.example.com/v2"}),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !sendblue.requests().iter().any(|r| r.method == "DELETE") {
        assert!(std::time::Instant::now() < deadline, "no removal was sent");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    kill9(server);
    let _ = request.await;
    sendblue.clear_faults();

    let server = start(&cfg);
    settled(&client, &server.base).await;
    let sub: Value = client
        .get(format!("{}/v1/subscriptions/{id}", server.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sub["status"], "active", "{sub}");
    assert_eq!(sub["url"], "https://billing.example.com/v2");
    let doc = sendblue.document();
    let urls = |bucket: &str| -> Vec<String> {
        let mut v: Vec<String> = doc[bucket]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e["url"].as_str().unwrap().to_owned())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        urls("receive"),
        [
            "https://billing.example.com/v2",
            "https://foreign.example.com/a"
        ]
    );
    assert_eq!(urls("call_log"), ["https://billing.example.com/v2"]);
    let mut recorded: Vec<String> = sub["native"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            "call_log https://billing.example.com/v2",
            "receive https://billing.example.com/v2"
        ]
    );
}

/// A Sendblue create killed while the provider is still processing its
/// first append, which lands after the kill: recovery waits until it can
/// no longer land, finds it, and undoes the create. Only the foreign entry
/// is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_sendblue_still_applies_a_create_leaves_nothing() {
    let (sendblue, running) = sendblue_sim().await;
    sendblue.seed_foreign("receive", "https://foreign.example.com/a", None);
    let dir = tempfile::tempdir().unwrap();
    let cfg = sendblue_config(dir.path(), &running.base_url);
    let client = reqwest::Client::new();
    let server = start(&cfg);
    sendblue
        .inject(Fault::latency(700).on_method("POST"))
        .unwrap();
    let request = in_background(
        &client,
        reqwest::Method::POST,
        format!("{}/v1/subscriptions", server.base),
        json!({"provider": "sendblue", "url": "https://billing.example.com/v1",
                          "events": ["message.received", "call.ended"]}),
    );
    wait_for_calls(&sendblue, "POST", 1).await;
    kill9(server);
    let _ = request.await;

    let server = start(&cfg);
    let stored = settled(&client, &server.base).await;
    assert!(stored.is_empty(), "the create was undone: {stored:?}");
    let doc = sendblue.document();
    assert_eq!(
        doc["receive"],
        json!(["https://foreign.example.com/a"]),
        "the late append was removed, the foreign entry kept: {doc}"
    );
    assert_eq!(doc["call_log"], json!([]), "{doc}");
}

/// A disabled Bird subscription gains an event: the new subscription is
/// created (active: Bird's create has no status) and then set inactive.
/// Killed between the two, recovery must not adopt an active native for a
/// disabled subscription: everything ends inactive and recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_set_inactive_finishes_the_state() {
    let bird = sim();
    let running = switchboard_sim::serve(bird.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &running.base_url);
    let server = start(&cfg);
    let mut disabled = body();
    disabled["events"] = json!(["message.received"]);
    disabled["enabled"] = json!(false);
    let created: Value = client
        .post(format!("{}/v1/subscriptions", server.base))
        .bearer_auth(TOKEN)
        .json(&disabled)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["status"], "disabled", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    bird.clear_requests();
    // "Set inactive" is held, then refused: it never applies.
    bird.inject(Fault {
        latency_ms: 500,
        ..Fault::status(503).on_method("PATCH").times(100)
    })
    .unwrap();
    let request = in_background(
        &client,
        reqwest::Method::PATCH,
        format!("{}/v1/subscriptions/{id}", server.base),
        json!({"events": ["message.received", "message.sent"]}),
    );
    wait_for_calls(&bird, "PATCH", 1).await;
    kill9(server);
    let _ = request.await;
    bird.clear_faults();

    let server = start(&cfg);
    let stored = settled(&client, &server.base).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["status"], "disabled", "{}", stored[0]);
    assert_eq!(stored[0]["native"].as_array().unwrap().len(), 2);
    for s in bird.subscriptions(WORKSPACE) {
        assert_eq!(s["status"], "inactive", "nothing delivers: {s}");
    }
    assert_agree(&bird, &stored);
}
