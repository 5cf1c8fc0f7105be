//! Two `switchboard` processes on one Postgres (several replicas behind a
//! load balancer): writes to one shared Sendblue account document from
//! both must lose no entry, and a subscription changed from both at once
//! must not lose an update. Skipped, with a notice, without Postgres.

use serde_json::{Value, json};
use switchboard_sim::sendblue::{SendblueConfig, SendblueSim};

mod support;

use support::{Process, spawn_process};

const TOKEN: &str = "replica-test-token-1";

fn start(cfg: &std::path::Path) -> Process {
    spawn_process(cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_lose_nothing() {
    let Some(pg) = switchboard_store::testing::postgres() else {
        return;
    };
    let sendblue = SendblueSim::new(SendblueConfig {
        credentials: vec![("sb_key".into(), "sb_secret".into())],
    });
    let sim = switchboard_sim::serve(sendblue.router(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Entries made outside Switchboard must survive everything.
    sendblue.seed_foreign("receive", "https://foreign.example.com/a", Some("theirs"));
    sendblue.seed_foreign("call_log", "https://foreign.example.com/b", None);

    let dir = tempfile::tempdir().unwrap();
    let (_, key) = switchboard_store::SecretKey::generate("k1");
    let cfg = dir.path().join("switchboard.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
[database]
url = "{url}"
schema = "{schema}"
[[auth.tokens]]
name = "ops"
tenant = "ops"
token_sha256 = "{hash}"
[providers.sendblue]
kind = "account-v2"
base_url = "{sim}"
api_key_id = "sb_key"
api_secret_key = "sb_secret"
[[secrets.keys]]
id = "k1"
key = "{key}"
[reliability]
reconcile_interval_ms = 0
[log]
level = "warn"
"#,
            url = pg.url,
            schema = pg.pg_schema.as_deref().unwrap(),
            hash = hex::encode(switchboard_api::auth::hash_token(TOKEN)),
            sim = sim.base_url,
        ),
    )
    .unwrap();
    let a = start(&cfg);
    let b = start(&cfg);
    let client = reqwest::Client::new();

    // 16 subscriptions, 2 buckets each, created through both replicas at
    // once against the one account document.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let base = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(format!("{base}/v1/subscriptions"))
                .bearer_auth(TOKEN)
                .json(&json!({
                    "provider": "sendblue",
                    "url": format!("https://hooks.example.com/{i}"),
                    "events": ["message.received", "call.ended"],
                    "signing_secret": format!("whsec_{i}"),
                }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let doc = sendblue.document();
    let count = |bucket: &str| doc[bucket].as_array().map_or(0, Vec::len);
    assert_eq!(
        count("receive"),
        17,
        "16 of ours and the foreign one: {doc}"
    );
    assert_eq!(count("call_log"), 17);

    // Delete half through both replicas at once; the rest and the foreign
    // entries remain.
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        let base = if i % 4 == 1 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (c, id) = (client.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let r = c
                .delete(format!("{base}/v1/subscriptions/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let doc = sendblue.document();
    let urls = |bucket: &str| -> Vec<String> {
        doc[bucket]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| e["url"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let mut receive = urls("receive");
    receive.sort();
    let mut expected: Vec<String> = (0..16)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("https://hooks.example.com/{i}"))
        .collect();
    expected.push("https://foreign.example.com/a".into());
    expected.sort();
    assert_eq!(receive, expected);
    assert!(urls("call_log").contains(&"https://foreign.example.com/b".to_owned()));

    // One subscription changed through both replicas at once: exactly one
    // change wins, the other is refused, nothing is lost or mixed.
    let id = &ids[0];
    let patch = |base: String, name: &'static str| {
        let (c, id) = (client.clone(), id.clone());
        async move {
            c.patch(format!("{base}/v1/subscriptions/{id}"))
                .bearer_auth(TOKEN)
                .header("If-Match", "\"1\"")
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let (ra, rb) = tokio::join!(
        patch(a.base.clone(), "from-a"),
        patch(b.base.clone(), "from-b")
    );
    let mut statuses = [ra, rb];
    statuses.sort();
    assert_eq!(statuses[0], 200, "one change wins: {statuses:?}");
    assert!(
        matches!(statuses[1], 409 | 412),
        "the other is refused: {statuses:?}"
    );
    let now: Value = client
        .get(format!("{}/v1/subscriptions/{id}", b.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["version"], 2);
    assert_eq!(now["name"], if ra == 200 { "from-a" } else { "from-b" });
}
