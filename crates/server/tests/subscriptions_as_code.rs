//! Subscriptions as code and the client commands, end to end: the real
//! `switchboard` binary (`plan`, `apply`, `subscriptions …`, `providers`,
//! `events`, `healthcheck`) against a server on port 0 whose four
//! providers are simulators. What each provider holds is read from its
//! simulator and compared with what the API reports; that planning and a
//! second apply send nothing is read from the simulators' request logs.
//! Runs on SQLite and, when configured, Postgres.

mod rig;

use std::collections::BTreeMap;
use std::process::Command;

use rig::*;
use serde_json::Value;
use switchboard_sim::bird::DEFAULT_WORKSPACE;
use switchboard_sim::talkover::DEFAULT_AGENT;
use switchboard_sim::telegent::DEFAULT_ACCOUNT;
use switchboard_store::StoreOptions;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// The secret the file takes from the environment.
const HOOK_SECRET: &str = "whsec-from-env-7f3a";
const CRM_TOKEN: &str = "crm-token-from-env-91";
/// The callback URL of the subscription made without a key.
const MANUAL_URL: &str = "https://hooks.example.com/talkover/1";

/// What a run of the binary printed and how it ended.
#[derive(Debug)]
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self:#?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:#?}"))
    }
}

/// Runs the binary with `args` (off the runtime's threads, so that the
/// server in this process keeps answering), with the file's variables set
/// and no `SWITCHBOARD_*` from the outer environment.
async fn sb(args: &[&str]) -> Out {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("SWITCHBOARD_SERVER")
            .env_remove("SWITCHBOARD_TOKEN")
            .env_remove("SWITCHBOARD_CONFIG")
            .env("HOOK_SECRET", HOOK_SECRET)
            .env("CRM_TOKEN", CRM_TOKEN)
            .output()
            .unwrap();
        Out {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Runs the binary against the rig's server with its token.
async fn at(rig: &Rig, args: &[&str]) -> Out {
    let mut all = args.to_vec();
    all.extend(["--server", &rig.base, "--token", TOKEN]);
    sb(&all).await
}

/// The file's entries, by key, as TOML tables.
fn entry(key: &str) -> String {
    match key {
        "calls" => format!(
            r#"[[subscription]]
key = "calls"
provider = "talkover"
account = "{DEFAULT_AGENT}"
name = "billing calls"
url = "https://billing.example.com/calls"
events = ["call.ended", "native:event_action"]
signing_secret = "${{HOOK_SECRET}}"
headers = {{ X-Team = "billing" }}
"#
        ),
        "crm-telegent" => format!(
            r#"[[subscription]]
key = "crm-telegent"
provider = "telegent"
account = "{DEFAULT_ACCOUNT}"
url = "https://crm.example.com/telegent"
events = ["message.received", "call.ended"]
auth = {{ type = "bearer", token = "${{CRM_TOKEN}}" }}
"#
        ),
        "crm-bird" => format!(
            r#"[[subscription]]
key = "crm-bird"
provider = "bird"
account = "{DEFAULT_WORKSPACE}"
url = "https://crm.example.com/bird"
events = ["message.received", "message.sent"]
signing_secret = "${{HOOK_SECRET}}"
"#
        ),
        "crm-sendblue" => r#"[[subscription]]
key = "crm-sendblue"
provider = "sendblue"
url = "https://crm.example.com/sendblue"
events = ["message.received", "line.blocked"]
signing_secret = "${HOOK_SECRET}"
"#
        .to_owned(),
        other => panic!("no entry {other}"),
    }
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// Callback URLs each provider holds, one per native resource, sorted.
fn at_providers(rig: &Rig) -> BTreeMap<&'static str, Vec<String>> {
    let urls = |items: Vec<Value>, field: &str| -> Vec<String> {
        items
            .iter()
            .map(|w| w[field].as_str().unwrap().to_owned())
            .collect()
    };
    let sendblue: Vec<String> = rig
        .sendblue
        .document()
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .map(|w| w.as_str().or(w["url"].as_str()).unwrap().to_owned())
        .collect();
    let mut all = BTreeMap::from([
        (
            TALKOVER,
            urls(rig.talkover.webhooks(DEFAULT_AGENT), "webhook_url"),
        ),
        (
            TELEGENT,
            urls(rig.telegent.webhooks(DEFAULT_ACCOUNT), "WebhookUrl"),
        ),
        (BIRD, urls(rig.bird.subscriptions(DEFAULT_WORKSPACE), "url")),
        (SENDBLUE, sendblue),
    ]);
    all.values_mut().for_each(|v| v.sort());
    all
}

/// The same as the API reports it (through `subscriptions list --json`).
async fn in_api(rig: &Rig) -> (BTreeMap<&'static str, Vec<String>>, Vec<Value>) {
    let listed = at(rig, &["subscriptions", "list", "--all", "--json"]).await;
    let data = listed.ok().json()["data"].as_array().unwrap().clone();
    let mut all: BTreeMap<&'static str, Vec<String>> =
        PROVIDERS.iter().map(|p| (*p, Vec::new())).collect();
    for s in &data {
        let provider = PROVIDERS
            .iter()
            .find(|p| **p == s["provider"].as_str().unwrap())
            .unwrap();
        for _ in s["native"].as_array().unwrap() {
            all.get_mut(provider)
                .unwrap()
                .push(s["url"].as_str().unwrap().to_owned());
        }
    }
    all.values_mut().for_each(|v| v.sort());
    (all, data)
}

/// Asserts that the providers hold exactly what the API reports, and
/// returns the subscriptions' keys (`-` for none), sorted.
async fn agree(rig: &Rig) -> Vec<String> {
    let (api, data) = in_api(rig).await;
    assert_eq!(at_providers(rig), api);
    let mut keys: Vec<String> = data
        .iter()
        .map(|s| s["key"].as_str().unwrap_or("-").to_owned())
        .collect();
    keys.sort();
    keys
}

fn sent_nothing(rig: &Rig) {
    for p in PROVIDERS {
        assert_eq!(rig.requests(p), vec![], "{p} was called");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_apply_prune_across_the_four_kinds() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        plan_apply_prune(&opts).await;
    }
}

async fn plan_apply_prune(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    // Made by hand, without a key: no apply may touch it.
    let manual = rig.create(body(TALKOVER, None, 1)).await;
    let manual_id = manual["id"].as_str().unwrap();
    let all = ["calls", "crm-telegent", "crm-bird", "crm-sendblue"];
    let v1 = write(&dir, "v1.toml", &all.map(entry).join("\n"));
    rig.clear_requests();

    let plan = at(&rig, &["plan", "-f", &v1]).await;
    plan.ok();
    for key in all {
        assert!(
            plan.stdout.contains(&format!("+ {key}: create")),
            "{plan:#?}"
        );
    }
    assert!(plan.stdout.contains("POST http://127.0.0.1"), "{plan:#?}");
    assert!(
        plan.stdout
            .contains("Plan: 4 to create, 0 to update, 0 to delete, 0 unchanged."),
        "{plan:#?}"
    );
    assert!(!plan.stdout.contains(HOOK_SECRET) && !plan.stdout.contains(CRM_TOKEN));
    sent_nothing(&rig);
    assert_eq!(agree(&rig).await, ["-"]);

    let applied = at(&rig, &["apply", "-f", &v1]).await;
    applied.ok();
    assert!(
        applied
            .stdout
            .contains("Applied: 4 created, 0 updated, 0 deleted, 0 unchanged."),
        "{applied:#?}"
    );
    assert!(
        applied.stdout.contains("+ crm-bird: created sub_"),
        "{applied:#?}"
    );
    assert_eq!(
        agree(&rig).await,
        ["-", "calls", "crm-bird", "crm-sendblue", "crm-telegent"]
    );
    // The secret came from the environment, all the way to the provider.
    let hooks = rig.talkover.webhooks(DEFAULT_AGENT);
    let calls = hooks
        .iter()
        .find(|w| w["webhook_url"] == "https://billing.example.com/calls")
        .unwrap();
    assert_eq!(calls["webhook_secret"], HOOK_SECRET);

    rig.clear_requests();
    let again = at(&rig, &["apply", "-f", &v1]).await;
    again.ok();
    assert!(
        again
            .stdout
            .contains("No changes. 4 subscription(s) up to date."),
        "{again:#?}"
    );
    sent_nothing(&rig);

    edit_and_prune(&rig, &dir, manual_id).await;
}

/// The file loses `crm-sendblue` and `calls` gets a new URL.
async fn edit_and_prune(rig: &Rig, dir: &tempfile::TempDir, manual_id: &str) {
    let v2_text = ["calls", "crm-telegent", "crm-bird"]
        .map(entry)
        .join("\n")
        .replace("billing.example.com/calls", "billing.example.com/v2/calls");
    let v2 = write(dir, "v2.toml", &v2_text);
    let plan = at(rig, &["plan", "-f", &v2]).await;
    plan.ok();
    assert!(
        plan.stdout.contains("~ calls: update sub_") && plan.stdout.contains("(talkover): url"),
        "{plan:#?}"
    );
    assert!(plan.stdout.contains("= crm-bird: unchanged"), "{plan:#?}");
    assert!(!plan.stdout.contains("- crm-sendblue"), "{plan:#?}");
    assert!(plan.stdout.contains("(--prune deletes them): crm-sendblue"));
    assert!(
        plan.stdout
            .contains("Plan: 0 to create, 1 to update, 0 to delete, 2 unchanged."),
        "{plan:#?}"
    );
    let pruning = at(rig, &["plan", "-f", &v2, "--prune"]).await;
    pruning.ok();
    assert!(
        pruning.stdout.contains("- crm-sendblue: delete sub_"),
        "{pruning:#?}"
    );
    assert!(
        pruning
            .stdout
            .contains("delete native receive https://crm.example.com/sendblue")
    );
    assert!(
        pruning
            .stdout
            .contains("Plan: 0 to create, 1 to update, 1 to delete, 2 unchanged."),
        "{pruning:#?}"
    );
    let json = at(rig, &["plan", "-f", &v2, "--prune", "--json"]).await;
    assert_eq!(
        json.ok().json()["summary"],
        serde_json::json!({"create": 0, "update": 1, "delete": 1, "unchanged": 2, "failed": 0})
    );
    sent_nothing(rig);

    let applied = at(rig, &["apply", "-f", &v2, "--prune"]).await;
    applied.ok();
    assert!(
        applied
            .stdout
            .contains("Applied: 0 created, 1 updated, 1 deleted, 2 unchanged."),
        "{applied:#?}"
    );
    assert_eq!(agree(rig).await, ["-", "calls", "crm-bird", "crm-telegent"]);
    let talkover = &at_providers(rig)[TALKOVER];
    assert!(talkover.contains(&"https://billing.example.com/v2/calls".to_owned()));
    assert!(at_providers(rig)[SENDBLUE].is_empty());
    // The subscription without a key is still there, at the provider too.
    at(rig, &["subscriptions", "get", manual_id]).await.ok();
    assert!(talkover.contains(&MANUAL_URL.to_owned()), "{talkover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_name_the_key_and_fail_the_run() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        problems(&opts).await;
    }
}

async fn problems(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    let dir = tempfile::tempdir().unwrap();

    // A file with an unset variable and an unknown field: nothing is
    // planned, nothing is sent, each problem names its entry and field.
    let broken = format!(
        "{}\n{}urll = \"https://typo.example.com\"\n",
        entry("calls").replace("${HOOK_SECRET}", "${NOT_SET_ANYWHERE}"),
        entry("crm-bird"),
    );
    let broken = write(&dir, "broken.toml", &broken);
    rig.clear_requests();
    for command in ["plan", "apply"] {
        let out = at(&rig, &[command, "-f", &broken]).await;
        assert_eq!(out.code, Some(2), "{out:#?}");
        assert!(
            out.stderr.contains(
                "subscription #1 (key `calls`): signing_secret: environment variable `NOT_SET_ANYWHERE` is not set"
            ),
            "{out:#?}"
        );
        assert!(
            out.stderr
                .contains("subscription #2 (key `crm-bird`): urll: unknown field `urll`"),
            "{out:#?}"
        );
    }
    sent_nothing(&rig);
    assert_eq!(agree(&rig).await, Vec::<String>::new());

    // The server refuses one entry (422): the others are applied, the
    // problem is shown with its key, field and provider, the run fails.
    let refused = entry("calls")
        .replace("key = \"calls\"", "key = \"too-slow\"")
        .replace("headers =", "timeout_seconds = 300\nheaders =");
    let mixed = write(
        &dir,
        "mixed.toml",
        &[refused, entry("crm-sendblue")].join("\n"),
    );
    let plan = at(&rig, &["plan", "-f", &mixed]).await;
    assert_eq!(plan.code, Some(1), "{plan:#?}");
    assert!(
        plan.stderr.contains(
            "error: subscription `too-slow`: The request is invalid (HTTP 422, provider `talkover`)"
        ),
        "{plan:#?}"
    );
    assert!(
        plan.stderr.contains("/timeout_seconds: must be between"),
        "{plan:#?}"
    );
    assert!(plan.stdout.contains("+ crm-sendblue: create"), "{plan:#?}");
    assert!(plan.stdout.contains(", 1 failed."), "{plan:#?}");
    sent_nothing(&rig);
    let apply = at(&rig, &["apply", "-f", &mixed]).await;
    assert_eq!(apply.code, Some(1), "{apply:#?}");
    assert!(
        apply.stderr.contains("subscription `too-slow`"),
        "{apply:#?}"
    );
    assert!(
        apply
            .stdout
            .contains("Applied: 1 created, 0 updated, 0 deleted, 0 unchanged, 1 failed."),
        "{apply:#?}"
    );
    assert_eq!(agree(&rig).await, ["crm-sendblue"]);

    // Without a token, or without a server, nothing is attempted.
    let out = sb(&["plan", "-f", &mixed, "--server", &rig.base]).await;
    assert_eq!(out.code, Some(2), "{out:#?}");
    assert!(out.stderr.contains("SWITCHBOARD_TOKEN"), "{out:#?}");
    let closed = closed_port();
    let out = sb(&["apply", "-f", &mixed, "--server", &closed, "--token", TOKEN]).await;
    assert_eq!(out.code, Some(1), "{out:#?}");
    assert!(out.stderr.contains("cannot reach"), "{out:#?}");
}

/// The URL of a port nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_read_and_change_subscriptions() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        client_commands(&opts).await;
    }
}

async fn client_commands(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    let first = rig.create(body(TALKOVER, None, 1)).await;
    rig.create(body(BIRD, None, 2)).await;
    rig.create(body(SENDBLUE, None, 3)).await;
    let id = first["id"].as_str().unwrap();

    let table = at(&rig, &["subscriptions", "list"]).await;
    let lines: Vec<&str> = table.ok().stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("PROVIDER") && lines[0].contains("URL"),
        "{table:#?}"
    );
    assert_eq!(lines.len(), 4, "{table:#?}");
    assert!(lines[1].starts_with(id) && lines[1].contains(MANUAL_URL));
    // Pages of one, followed to the end by --all, cut by --limit.
    let json = at(&rig, &["subscriptions", "list", "--limit", "2", "--json"]).await;
    let page = json.ok().json();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());
    let birds = at(
        &rig,
        &["subscriptions", "list", "--provider", BIRD, "--json"],
    )
    .await;
    let birds = birds.ok().json()["data"].as_array().unwrap().clone();
    assert_eq!(birds.len(), 1);
    assert_eq!(birds[0]["provider"], BIRD);
    assert_eq!(birds[0]["key"], Value::Null);

    let got = at(&rig, &["subscriptions", "get", id, "--json"]).await;
    assert_eq!(got.ok().json()["id"], id);
    let detail = at(&rig, &["subscriptions", "get", id]).await;
    assert!(detail.ok().stdout.contains("NATIVE ID"), "{detail:#?}");
    assert!(
        detail
            .stdout
            .contains(&format!("url                 {MANUAL_URL}"))
    );

    let off = at(&rig, &["subscriptions", "disable", id, "--json"]).await;
    assert_eq!(off.ok().json()["status"], "disabled");
    assert_eq!(rig.talkover.webhooks(DEFAULT_AGENT)[0]["enabled"], false);
    let on = at(&rig, &["subscriptions", "enable", id]).await;
    assert!(
        on.ok().stdout.contains("status              active"),
        "{on:#?}"
    );
    assert_eq!(rig.talkover.webhooks(DEFAULT_AGENT)[0]["enabled"], true);
    let checked = at(&rig, &["subscriptions", "reconcile", id, "--json"]).await;
    assert!(checked.ok().json()["last_reconciled_at"].is_string());

    let deleted = at(&rig, &["subscriptions", "delete", id]).await;
    assert_eq!(deleted.ok().stdout.trim(), format!("deleted {id}"));
    assert!(rig.talkover.webhooks(DEFAULT_AGENT).is_empty());
    let gone = at(&rig, &["subscriptions", "get", id]).await;
    assert_eq!(gone.code, Some(1), "{gone:#?}");
    assert!(gone.stderr.contains("Not found (HTTP 404)"), "{gone:#?}");

    let providers = at(&rig, &["providers"]).await;
    let header = providers.ok().stdout.lines().next().unwrap().to_owned();
    for p in PROVIDERS {
        assert!(header.contains(p), "{providers:#?}");
    }
    assert!(providers.stdout.contains("accesskey-workspace"));
    let events = at(&rig, &["events"]).await;
    assert!(events.ok().stdout.starts_with("EVENT"), "{events:#?}");
    let row = events
        .stdout
        .lines()
        .find(|l| l.starts_with("message.received"))
        .unwrap();
    assert!(
        row.contains("channels:sms.inbound") && row.contains("New_Sms"),
        "{row}"
    );
    let catalog = at(&rig, &["events", "--json"]).await;
    assert!(catalog.ok().json()["data"].as_array().unwrap().len() > 10);

    let ready = sb(&["healthcheck", "--server", &rig.base]).await;
    assert!(ready.ok().stdout.starts_with("ready: "), "{ready:#?}");
    assert_eq!(ready.stdout.lines().count(), 1);
    let down = sb(&["healthcheck", "--server", &closed_port()]).await;
    assert_eq!(down.code, Some(1), "{down:#?}");
    assert!(down.stdout.starts_with("not ready: "), "{down:#?}");
}
