//! Subscriptions as code over real HTTP: keys, `PUT`, `GET` and `DELETE`
//! by key, and keyed previews, against the simulators. A repeated `PUT` of
//! the same desired state must change nothing anywhere (no upstream
//! request, no journal or audit entry, the same version); a different one
//! must change exactly what differs. Each test runs on SQLite and, when
//! configured, Postgres.

mod rig;
mod support;

use rig::{BIRD, PROVIDERS, Rig, RigOpts, TALKOVER};
use serde_json::{Value, json};
use support::{Env, Opts, TOKEN_A, TOKEN_A_READ, TOKEN_B, sub_body};
use switchboard_sim::bird::DEFAULT_WORKSPACE;
use switchboard_sim::talkover::DEFAULT_AGENT;
use switchboard_store::StoreOptions;

/// An answer, with the headers these tests look at.
struct Answer {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    body: Value,
    text: String,
}

impl Answer {
    fn pointers(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["pointer"].as_str()).collect())
            .unwrap_or_default()
    }
}

/// Sends `method path` to the server at `base` with `token`, a JSON body
/// and an `If-Match` when given.
async fn send(
    base: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
    if_match: Option<&str>,
) -> Answer {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    if let Some(v) = if_match {
        req = req.header("if-match", v);
    }
    let r = req.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, etag, location) = (r.status().as_u16(), header("etag"), header("location"));
    let text = r.text().await.unwrap();
    Answer {
        status,
        etag,
        location,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

fn by_key(key: &str) -> String {
    format!("/v1/subscriptions/by-key/{key}")
}

/// `body` with `key` set.
fn keyed(mut body: Value, key: &str) -> Value {
    body["key"] = json!(key);
    body
}

/// PUT `body` under `key` to the rig (tenant `tenant-r`).
async fn put(rig: &Rig, key: &str, body: &Value) -> Answer {
    send(&rig.base, "PUT", &by_key(key), rig::TOKEN, Some(body), None).await
}

/// The keyed preview of `body` under `key`.
async fn preview(rig: &Rig, key: &str, body: &Value) -> Answer {
    let body = keyed(body.clone(), key);
    let path = "/v1/subscriptions/preview";
    let r = send(&rig.base, "POST", path, rig::TOKEN, Some(&body), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r
}

/// The number of entries in the rig tenant's audit log.
async fn audit_entries(rig: &Rig) -> usize {
    let path = "/v1/audit?tenant=tenant-r&limit=200";
    let r = send(&rig.base, "GET", path, rig::ADMIN, None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["data"].as_array().unwrap().len()
}

fn actions(preview: &Value) -> Vec<&str> {
    preview["native_operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["action"].as_str().unwrap())
        .collect()
}

async fn put_is_idempotent(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    for (n, provider) in PROVIDERS.into_iter().enumerate() {
        let key = format!("{provider}-calls");
        let body = rig::body(provider, None, n);

        let planned = preview(&rig, &key, &body).await.body;
        assert_eq!(planned["action"], "create", "{provider}: {planned}");
        assert_eq!(planned["subscription"], Value::Null);
        assert_eq!(planned["changes"], json!([]));
        let ops = planned["native_operations"].as_array().unwrap();
        assert!(!ops.is_empty(), "{provider}");
        assert!(ops.iter().all(|o| o["action"] == "create"));
        let requests: Vec<&Value> = ops
            .iter()
            .flat_map(|o| o["requests"].as_array().unwrap())
            .collect();
        assert!(!requests.is_empty(), "{provider}: a create's requests");
        assert_eq!(
            planned["requests"].as_array().unwrap().len(),
            requests.len()
        );

        let created = put(&rig, &key, &body).await;
        assert_eq!(created.status, 201, "{provider}: {}", created.text);
        let id = created.body["id"].as_str().unwrap().to_owned();
        assert_eq!(created.body["key"], key.as_str());
        assert_eq!(created.body["status"], "active");
        assert_eq!(created.etag.as_deref(), Some("\"1\""));
        let location = format!("/v1/subscriptions/{id}");
        assert_eq!(created.location.as_deref(), Some(location.as_str()));
        let audited = audit_entries(&rig).await;
        assert_eq!(rig.operations(&id).await, ["create"], "{provider}");

        rig.clear_requests();
        let again = put(&rig, &key, &body).await;
        assert_eq!(again.status, 200, "{provider}: {}", again.text);
        assert_eq!(again.body["id"], id.as_str());
        assert_eq!(
            again.body["version"], 1,
            "{provider}: the version is unchanged"
        );
        assert_eq!(again.etag.as_deref(), Some("\"1\""));
        assert!(
            rig.requests(provider).is_empty(),
            "{provider}: an unchanged PUT sent {:?}",
            rig.requests(provider)
        );
        assert_eq!(
            rig.operations(&id).await,
            ["create"],
            "{provider}: no journal entry"
        );
        assert_eq!(
            audit_entries(&rig).await,
            audited,
            "{provider}: no audit entry"
        );

        let planned = preview(&rig, &key, &body).await.body;
        assert_eq!(planned["action"], "unchanged", "{provider}: {planned}");
        assert_eq!(planned["subscription"], id.as_str());
        assert_eq!(planned["changes"], json!([]));
        assert!(actions(&planned).iter().all(|a| *a == "keep"), "{planned}");
        assert_eq!(planned["requests"], json!([]));
        assert!(rig.requests(provider).is_empty(), "a preview sends nothing");

        let got = send(&rig.base, "GET", &by_key(&key), rig::TOKEN, None, None).await;
        assert_eq!((got.status, &got.body["id"]), (200, &json!(id)));
        assert_eq!(got.etag.as_deref(), Some("\"1\""));
    }
    let list = send(
        &rig.base,
        "GET",
        "/v1/subscriptions",
        rig::TOKEN,
        None,
        None,
    )
    .await;
    let mut keys: Vec<&str> = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    keys.sort_unstable();
    let mut expected: Vec<String> = PROVIDERS.iter().map(|p| format!("{p}-calls")).collect();
    expected.sort_unstable();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn an_identical_put_changes_nothing_for_every_kind() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        put_is_idempotent(&opts).await;
    }
}

/// The Talkover webhook of the rig's default agent.
fn talkover_hook(rig: &Rig) -> Value {
    let hooks = rig.talkover.webhooks(DEFAULT_AGENT);
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    hooks[0].clone()
}

async fn put_replaces(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    let first = json!({
        "provider": TALKOVER, "account": DEFAULT_AGENT, "name": "calls",
        "url": "https://hooks.example.com/a", "events": ["call.ended"],
        "signing_secret": "whsec-ONE-secret",
    });
    let created = put(&rig, "calls", &first).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let native = created.body["native"][0]["id"].clone();

    // A full replacement: the absent `name` is removed, not kept.
    let mut second = first.clone();
    second["url"] = json!("https://hooks.example.com/b");
    second["events"] = json!(["call.ended", "call.started"]);
    second.as_object_mut().unwrap().remove("name");
    let planned = preview(&rig, "calls", &second).await;
    assert_eq!(planned.body["action"], "update", "{}", planned.text);
    assert_eq!(planned.body["changes"], json!(["events", "name", "url"]));
    let op = &planned.body["native_operations"][0];
    assert_eq!(
        (&op["action"], &op["native_id"]),
        (&json!("update"), &native)
    );
    assert_eq!(op["desired"]["webhook_url"], "https://hooks.example.com/b");
    assert!(!planned.text.contains("whsec-ONE"), "{}", planned.text);

    rig.clear_requests();
    let updated = put(&rig, "calls", &second).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(
        (&updated.body["id"], &updated.body["version"]),
        (&json!(id), &json!(2))
    );
    assert_eq!(updated.etag.as_deref(), Some("\"2\""));
    assert!(updated.body.get("name").is_none(), "{}", updated.text);
    assert!(!rig.requests(TALKOVER).is_empty());
    let hook = talkover_hook(&rig);
    assert_eq!(hook["webhook_url"], "https://hooks.example.com/b");
    assert_eq!(
        hook["events"],
        json!(["event_phone_call_ended", "event_phone_call_started"])
    );
    assert_eq!(rig.operations(&id).await, ["update", "create"]);

    // Only the secret differs: the server compares it, names it, shows it
    // nowhere, and applies it.
    let mut third = second.clone();
    third["signing_secret"] = json!("whsec-TWO-secret");
    let planned = preview(&rig, "calls", &third).await;
    assert_eq!(planned.body["action"], "update", "{}", planned.text);
    assert_eq!(planned.body["changes"], json!(["signing_secret"]));
    assert_eq!(actions(&planned.body), ["update"]);
    assert!(!planned.text.contains("whsec-TWO"), "{}", planned.text);
    rig.clear_requests();
    let rotated = put(&rig, "calls", &third).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert_eq!(rotated.body["version"], 3);
    assert!(!rotated.text.contains("whsec-TWO"));
    assert!(!rig.requests(TALKOVER).is_empty());
    assert_eq!(talkover_hook(&rig)["webhook_secret"], "whsec-TWO-secret");

    // `If-Match` is honoured like PATCH's.
    let stale = send(
        &rig.base,
        "PUT",
        &by_key("calls"),
        rig::TOKEN,
        Some(&second),
        Some("\"2\""),
    )
    .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    assert_eq!(talkover_hook(&rig)["webhook_secret"], "whsec-TWO-secret");

    // Bird: one native per event, so a new event is a native create and a
    // dropped one a native delete, the others kept.
    let bird = rig::body(BIRD, None, 1);
    assert_eq!(put(&rig, "sms", &bird).await.status, 201);
    let mut more = bird.clone();
    more["events"] = json!(["message.received", "message.sent"]);
    let planned = preview(&rig, "sms", &more).await.body;
    assert_eq!(actions(&planned), ["keep", "create"], "{planned}");
    let create = &planned["native_operations"][1];
    assert_eq!(create["native_id"], Value::Null);
    let url = create["requests"][0]["url"].as_str().unwrap();
    assert!(url.contains(DEFAULT_WORKSPACE), "{url}");
    assert_eq!(planned["requests"], create["requests"]);
    let grown = put(&rig, "sms", &more).await;
    assert_eq!(grown.status, 200, "{}", grown.text);
    assert_eq!(grown.body["native"].as_array().unwrap().len(), 2);
    assert_eq!(rig.bird.subscriptions(DEFAULT_WORKSPACE).len(), 2);
    let mut fewer = bird.clone();
    fewer["events"] = json!(["message.sent"]);
    let planned = preview(&rig, "sms", &fewer).await.body;
    assert_eq!(actions(&planned), ["keep", "delete"], "{planned}");
    assert_eq!(put(&rig, "sms", &fewer).await.status, 200);
    assert_eq!(rig.bird.subscriptions(DEFAULT_WORKSPACE).len(), 1);

    // `provider` and `account` cannot change: 422 for a PUT and a keyed
    // preview alike, and nothing is sent to either provider.
    rig.clear_requests();
    let moved = put(&rig, "calls", &rig::body(BIRD, None, 2)).await;
    assert_eq!(moved.status, 422, "{}", moved.text);
    assert_eq!(moved.pointers(), ["/provider", "/account"]);
    assert!(
        moved.text.contains("delete and re-create"),
        "{}",
        moved.text
    );
    let body = keyed(rig::body(BIRD, None, 2), "calls");
    let path = "/v1/subscriptions/preview";
    let planned = send(&rig.base, "POST", path, rig::TOKEN, Some(&body), None).await;
    assert_eq!(planned.status, 422, "{}", planned.text);
    assert_eq!(planned.pointers(), ["/provider", "/account"]);
    assert!(rig.requests(TALKOVER).is_empty() && rig.requests(BIRD).is_empty());
    assert_eq!(
        talkover_hook(&rig)["webhook_url"],
        "https://hooks.example.com/b"
    );
}

#[tokio::test]
async fn a_put_replaces_the_desired_state_and_changes_only_what_differs() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        put_replaces(&opts).await;
    }
}

/// `(requests the simulator answered, webhooks it holds)`.
fn upstream(env: &Env) -> (usize, usize) {
    (env.sim_requests().len(), env.sim_webhooks().len())
}

async fn call(env: &Env, method: &str, path: &str, token: &str, body: Option<&Value>) -> Answer {
    send(&env.base, method, path, token, body, None).await
}

async fn keys_are_checked(env: &Env) {
    let post = "/v1/subscriptions";
    let first = call(
        env,
        "POST",
        post,
        TOKEN_A,
        Some(&keyed(sub_body(), "billing")),
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["key"], "billing");
    let first_id = first.body["id"].as_str().unwrap().to_owned();

    // A second subscription with the key: 409 at `/key`, nothing upstream.
    let before = upstream(env);
    let mut dup = keyed(sub_body(), "billing");
    dup["url"] = json!("https://other.example.com/hooks");
    let refused = call(env, "POST", post, TOKEN_A, Some(&dup)).await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.pointers(), ["/key"]);
    assert_eq!(upstream(env), before, "nothing was sent upstream");
    assert_eq!(env.list_all(TOKEN_A).await.len(), 1);

    // Keys that are not keys.
    let long = "k".repeat(129);
    for bad in ["-x", ".x", "a b", "caf\u{e9}", long.as_str()] {
        let r = call(env, "POST", post, TOKEN_A, Some(&keyed(sub_body(), bad))).await;
        assert_eq!(
            (r.status, r.pointers()),
            (422, vec!["/key"]),
            "{bad:?}: {}",
            r.text
        );
    }
    for bad in ["-x", ".x", "a%20b", long.as_str()] {
        let r = call(env, "PUT", &by_key(bad), TOKEN_A, Some(&sub_body())).await;
        assert_eq!(
            (r.status, r.pointers()),
            (422, vec!["/key"]),
            "{bad:?}: {}",
            r.text
        );
        let r = call(env, "GET", &by_key(bad), TOKEN_A, None).await;
        assert_eq!(r.status, 404, "{bad:?}: {}", r.text);
    }
    let mismatch = keyed(sub_body(), "billing");
    let r = call(env, "PUT", &by_key("other"), TOKEN_A, Some(&mismatch)).await;
    assert_eq!((r.status, r.pointers()), (422, vec!["/key"]), "{}", r.text);
    assert_eq!(upstream(env), before);
    assert_eq!(env.list_all(TOKEN_A).await.len(), 1);

    // The by-key route is not the `{id}` route's: an unknown key is the
    // key's 404.
    let unknown = call(env, "GET", &by_key("unknown"), TOKEN_A, None).await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.text.contains("subscription with key `unknown`"),
        "{}",
        unknown.text
    );
    // `If-Match` cannot match a subscription that does not exist.
    let fresh = send(
        &env.base,
        "PUT",
        &by_key("fresh"),
        TOKEN_A,
        Some(&sub_body()),
        Some("*"),
    )
    .await;
    assert_eq!(fresh.status, 412, "{}", fresh.text);
    assert_eq!(upstream(env), before);

    // PATCH sets, changes and removes a key, under the same rule.
    let second = call(env, "POST", post, TOKEN_A, Some(&sub_body())).await;
    assert_eq!(second.body["key"], Value::Null);
    let second_id = second.body["id"].as_str().unwrap().to_owned();
    let path = |id: &str| format!("/v1/subscriptions/{id}");
    let taken = json!({"key": "billing"});
    let r = call(env, "PATCH", &path(&second_id), TOKEN_A, Some(&taken)).await;
    assert_eq!((r.status, r.pointers()), (409, vec!["/key"]), "{}", r.text);
    let renamed = json!({"key": "billing-v2"});
    let r = call(env, "PATCH", &path(&first_id), TOKEN_A, Some(&renamed)).await;
    assert_eq!(
        (r.status, &r.body["key"]),
        (200, &json!("billing-v2")),
        "{}",
        r.text
    );
    assert_eq!(
        call(env, "GET", &by_key("billing"), TOKEN_A, None)
            .await
            .status,
        404
    );
    let got = call(env, "GET", &by_key("billing-v2"), TOKEN_A, None).await;
    assert_eq!(got.body["id"], first_id.as_str());
    let r = call(env, "PATCH", &path(&second_id), TOKEN_A, Some(&taken)).await;
    assert_eq!(
        (r.status, &r.body["key"]),
        (200, &json!("billing")),
        "{}",
        r.text
    );
    let cleared = json!({"key": null});
    let r = call(env, "PATCH", &path(&second_id), TOKEN_A, Some(&cleared)).await;
    assert_eq!(
        (r.status, &r.body["key"]),
        (200, &Value::Null),
        "{}",
        r.text
    );

    // Another tenant's key of the same name is another subscription.
    let theirs = call(
        env,
        "PUT",
        &by_key("billing-v2"),
        TOKEN_B,
        Some(&sub_body()),
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    assert_ne!(theirs.body["id"], first_id.as_str());
    let mine = call(env, "GET", &by_key("billing-v2"), TOKEN_A, None).await;
    assert_eq!(mine.body["id"], first_id.as_str());
    let gone = call(env, "DELETE", &by_key("billing-v2"), TOKEN_B, None).await;
    assert_eq!(gone.status, 204, "{}", gone.text);
    assert_eq!(
        call(env, "GET", &by_key("billing-v2"), TOKEN_B, None)
            .await
            .status,
        404
    );
    assert_eq!(
        call(env, "GET", &by_key("billing-v2"), TOKEN_A, None)
            .await
            .status,
        200
    );

    // Scopes: reading by key needs read, changing needs write.
    let r = call(env, "GET", &by_key("billing-v2"), TOKEN_A_READ, None).await;
    assert_eq!(r.status, 200);
    let r = call(
        env,
        "PUT",
        &by_key("billing-v2"),
        TOKEN_A_READ,
        Some(&sub_body()),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(env, "DELETE", &by_key("billing-v2"), TOKEN_A_READ, None).await;
    assert_eq!(r.status, 403);

    // `account` cannot change.
    let mut elsewhere = sub_body();
    elsewhere["account"] = json!("another-agent");
    let r = call(env, "PUT", &by_key("billing-v2"), TOKEN_A, Some(&elsewhere)).await;
    assert_eq!(
        (r.status, r.pointers()),
        (422, vec!["/account"]),
        "{}",
        r.text
    );

    // DELETE by key removes the native webhook, then the subscription.
    let hooks = env.sim_webhooks().len();
    let r = call(env, "DELETE", &by_key("billing-v2"), TOKEN_A, None).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(env.sim_webhooks().len(), hooks - 1);
    let gone = call(env, "GET", &path(&first_id), TOKEN_A, None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(
        call(env, "DELETE", &by_key("billing-v2"), TOKEN_A, None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn keys_are_valid_unique_per_tenant_and_address_their_subscription() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        let env = support::start(&opts, Opts::default()).await;
        keys_are_checked(&env).await;
    }
}

async fn previews_without_a_match(store: &StoreOptions) {
    let env = support::start(store, Opts::default()).await;
    let path = "/v1/subscriptions/preview";
    // No key, or a key nobody has: what a create would do.
    for body in [sub_body(), keyed(sub_body(), "nobody-has-it")] {
        let r = call(&env, "POST", path, TOKEN_A, Some(&body)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["action"], "create");
        assert_eq!(r.body["subscription"], Value::Null);
        assert_eq!(r.body["requests"][0]["method"], "POST");
        assert_eq!(r.body["native_operations"][0]["action"], "create");
        assert!(!r.text.contains("SECRET"), "{}", r.text);
    }
    // Another tenant's key is not this tenant's.
    let theirs = call(&env, "PUT", &by_key("shared"), TOKEN_B, Some(&sub_body())).await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    let body = keyed(sub_body(), "shared");
    let r = call(&env, "POST", path, TOKEN_A, Some(&body)).await;
    assert_eq!(
        (r.status, &r.body["action"]),
        (200, &json!("create")),
        "{}",
        r.text
    );
    let r = call(&env, "POST", path, TOKEN_B, Some(&body)).await;
    assert_eq!(
        (r.status, &r.body["action"]),
        (200, &json!("unchanged")),
        "{}",
        r.text
    );
    assert_eq!(r.body["subscription"], theirs.body["id"]);
    // The secrets count: the same body with another password is an update
    // that names `auth` and shows neither password.
    let mut other = body.clone();
    other["auth"]["password"] = json!("pw-SECRET-9");
    let r = call(&env, "POST", path, TOKEN_B, Some(&other)).await;
    assert_eq!(r.body["action"], "update", "{}", r.text);
    assert_eq!(r.body["changes"], json!(["auth"]));
    assert!(!r.text.contains("SECRET"), "{}", r.text);
}

#[tokio::test]
async fn a_keyed_preview_without_a_match_is_a_create() {
    for (name, opts) in switchboard_store::testing::backends() {
        eprintln!("backend: {name}");
        previews_without_a_match(&opts).await;
    }
}
