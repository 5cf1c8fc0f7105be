//! The account-v2 adapter against the Sendblue simulator over real HTTP,
//! in an account that already holds entries other tools created: they must
//! survive everything Switchboard does.

use std::sync::Arc;

use serde_json::{Value, json};
use switchboard_account_v2::{AccountV2Adapter, AccountV2Config};
use switchboard_core::{
    Error, NativePlan, OnUnsupported, ProviderAdapter, Secret, SpecDraft, SubscriptionSpec,
    UpstreamErrorKind, testing,
};
use switchboard_sim::faults::Fault;
use switchboard_sim::sendblue::{
    DEFAULT_KEY_ID, DEFAULT_SECRET_KEY, SendblueConfig, SendblueSim, V1_PATH, V2_PATH,
};
use switchboard_transport::{HttpTransport, TransportConfig};

const SUB: &str = "sub_01TEST000000000000000000";
const OURS: &str = "https://billing.example.com/hooks";

struct Account {
    sim: SendblueSim,
    running: switchboard_sim::Running,
}

impl Account {
    /// A simulator whose account already has foreign entries in three
    /// buckets, one of them with its own secret.
    async fn start() -> Self {
        let sim = SendblueSim::new(SendblueConfig::default());
        sim.seed_foreign("receive", "https://crm.example.com/in", Some("crm-secret"));
        sim.seed_foreign("receive", "https://audit.example.com/all", None);
        sim.seed_foreign("call_log", "https://crm.example.com/calls", None);
        sim.seed_foreign("contact_created", "https://crm.example.com/contacts", None);
        let running = switchboard_sim::serve(sim.router(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self { sim, running }
    }

    fn adapter_at(&self, path: &str) -> AccountV2Adapter {
        let transport = HttpTransport::new(
            TransportConfig {
                max_attempts: 1,
                ..TransportConfig::default()
            },
            Default::default(),
        )
        .unwrap();
        let cfg = AccountV2Config::from_json(json!({
            "base_url": self.running.base_url,
            "api_key_id": DEFAULT_KEY_ID,
            "api_secret_key": DEFAULT_SECRET_KEY,
            "path": path,
        }))
        .unwrap();
        AccountV2Adapter::new("sendblue", cfg, Arc::new(transport))
    }

    fn adapter(&self) -> AccountV2Adapter {
        self.adapter_at(V2_PATH)
    }

    fn methods(&self) -> Vec<String> {
        self.sim.requests().into_iter().map(|r| r.method).collect()
    }
}

fn spec(url: &str, events: &[&str], secret: Option<&str>) -> SubscriptionSpec {
    let events: Vec<String> = events.iter().map(|e| format!("native:{e}")).collect();
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    SpecDraft {
        signing_secret: secret.map(Secret::new),
        ..testing::draft("sendblue", url, &events)
    }
    .validate()
    .unwrap()
}

fn plans(a: &AccountV2Adapter, s: &SubscriptionSpec) -> Vec<NativePlan> {
    let events: Vec<String> = s
        .events
        .iter()
        .map(|e| e.to_string().trim_start_matches("native:").to_owned())
        .collect();
    a.plan(SUB, s, &events).unwrap()
}

/// The foreign entries as the document holds them, secrets included.
fn foreign(doc: &Value) -> Value {
    json!({
        "receive": doc["receive"].as_array().unwrap().iter()
            .filter(|i| !i.to_string().contains("billing")).cloned().collect::<Vec<_>>(),
        "call_log": doc["call_log"].as_array().unwrap().iter()
            .filter(|i| !i.to_string().contains("billing")).cloned().collect::<Vec<_>>(),
        "contact_created": doc["contact_created"].clone(),
    })
}

fn upstream_kind(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn foreign_entries_survive_create_update_and_delete() {
    let acc = Account::start().await;
    let a = acc.adapter();
    let initial = acc.sim.document();
    let initial_foreign = foreign(&initial);

    let s = spec(OURS, &["receive", "call_log"], Some("ours-1"));
    let v1 = plans(&a, &s);
    let mut ids = Vec::new();
    for p in &v1 {
        ids.push(a.create(None, p).await.expect("create").id);
    }
    assert_eq!(ids, [format!("receive {OURS}"), format!("call_log {OURS}")]);
    let doc = acc.sim.document();
    assert_eq!(foreign(&doc), initial_foreign);
    assert!(
        doc["receive"]
            .as_array()
            .unwrap()
            .contains(&json!({"url": OURS, "secret": "ours-1"}))
    );

    // Secret rotation: same URL, new secret.
    let v2 = plans(&a, &spec(OURS, &["receive", "call_log"], Some("ours-2")));
    for (i, (o, n)) in v1.iter().zip(&v2).enumerate() {
        let r = a.update(None, &ids[i], o, n).await.expect("rotate");
        assert_eq!(r.id, ids[i]);
    }
    let doc = acc.sim.document();
    assert_eq!(foreign(&doc), initial_foreign);
    assert!(
        doc["call_log"]
            .as_array()
            .unwrap()
            .contains(&json!({"url": OURS, "secret": "ours-2"}))
    );
    assert!(!doc.to_string().contains("ours-1"));

    // URL change: a new identity, the old entry gone.
    let moved = "https://billing.example.com/hooks/v2";
    let v3 = plans(&a, &spec(moved, &["receive", "call_log"], Some("ours-2")));
    for (i, (o, n)) in v2.iter().zip(&v3).enumerate() {
        let r = a.update(None, &ids[i], o, n).await.expect("move");
        assert_eq!(r.url.as_deref(), Some(moved));
        ids[i] = r.id;
    }
    let doc = acc.sim.document();
    assert_eq!(foreign(&doc), initial_foreign);
    assert!(!doc.to_string().contains(&format!("\"{OURS}\"")));

    for id in &ids {
        a.delete(None, id).await.expect("delete");
    }
    assert_eq!(acc.sim.document(), initial, "the account is as it was");
    assert!(
        acc.methods().iter().all(|m| m != "PUT"),
        "the replace-all PUT is never used"
    );
}

#[tokio::test]
async fn list_and_get_see_foreign_entries_without_their_secrets() {
    let acc = Account::start().await;
    let a = acc.adapter();
    let listed = a.list(None).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(listed.len(), 4);
    assert!(ids.contains(&"receive https://crm.example.com/in"));
    assert!(ids.contains(&"contact_created https://crm.example.com/contacts"));
    assert!(!format!("{listed:?}").contains("crm-secret"));
    let got = a
        .get(None, "call_log https://crm.example.com/calls")
        .await
        .unwrap();
    assert_eq!(got.events, ["call_log"]);
    assert_eq!(
        upstream_kind(
            a.get(None, "outbound https://crm.example.com/calls")
                .await
                .unwrap_err()
        ),
        UpstreamErrorKind::NotFound
    );
}

#[tokio::test]
async fn an_existing_entry_is_a_conflict_naming_it() {
    let acc = Account::start().await;
    let a = acc.adapter();
    let taken = plans(
        &a,
        &spec("https://crm.example.com/in", &["receive"], Some("x")),
    );
    acc.sim.clear_requests();
    match a.create(None, &taken[0]).await.unwrap_err() {
        Error::Conflict(msg) => {
            assert!(msg.contains("receive https://crm.example.com/in"), "{msg}");
            assert!(!msg.contains("crm-secret"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(acc.methods(), ["GET"], "nothing is written");

    // The same URL in another bucket is another entry.
    let other_bucket = plans(&a, &spec("https://crm.example.com/in", &["outbound"], None));
    a.create(None, &other_bucket[0])
        .await
        .expect("another bucket");

    // Another subscription's entry collides just the same.
    let first = plans(&a, &spec(OURS, &["line_blocked"], None));
    a.create(None, &first[0]).await.unwrap();
    assert!(matches!(
        a.create(None, &first[0]).await,
        Err(Error::Conflict(_))
    ));

    // So does moving onto a foreign URL; our entry stays where it was.
    let onto = plans(
        &a,
        &spec("https://crm.example.com/calls", &["call_log"], None),
    );
    let mine = plans(&a, &spec(OURS, &["call_log"], None));
    let created = a.create(None, &mine[0]).await.unwrap();
    assert!(matches!(
        a.update(None, &created.id, &mine[0], &onto[0]).await,
        Err(Error::Conflict(_))
    ));
    assert_eq!(
        acc.sim.document()["call_log"],
        json!(["https://crm.example.com/calls", OURS])
    );
}

#[tokio::test]
async fn the_v1_path_works_when_configured() {
    let acc = Account::start().await;
    let a = acc.adapter_at(V1_PATH);
    let p = plans(&a, &spec(OURS, &["outbound"], Some("s")));
    let created = a.create(None, &p[0]).await.unwrap();
    assert_eq!(a.get(None, &created.id).await.unwrap().id, created.id);
    a.delete(None, &created.id).await.unwrap();
    let requests = acc.sim.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests.iter().all(|r| r.path == V1_PATH));
    assert_eq!(acc.sim.document()["outbound"], json!([]));

    // A path Sendblue does not serve is a configuration problem, not a
    // missing entry.
    let wrong = acc.adapter_at("/api/v3/account/webhooks");
    assert_eq!(
        upstream_kind(wrong.list(None).await.unwrap_err()),
        UpstreamErrorKind::Protocol
    );
}

#[tokio::test]
async fn a_secret_on_contact_created_is_refused() {
    let acc = Account::start().await;
    let a = acc.adapter();
    let s = spec(OURS, &["contact_created"], Some("s"));
    let events = ["contact_created".to_owned()];
    match a.plan(SUB, &s, &events).unwrap_err() {
        Error::Invalid(errs) => assert_eq!(errs[0].pointer, "/signing_secret"),
        other => panic!("{other:?}"),
    }
    let s = s
        .with(|d| d.on_unsupported = OnUnsupported::Ignore)
        .unwrap();
    let p = a.plan(SUB, &s, &events).unwrap();
    a.create(None, &p[0]).await.unwrap();
    assert_eq!(
        acc.sim.document()["contact_created"],
        json!(["https://crm.example.com/contacts", OURS])
    );

    // Were one sent anyway, Sendblue's 400 maps back to the secret.
    let forced = NativePlan {
        key: "contact_created".into(),
        events: vec!["contact_created".into()],
        body: json!({"webhooks": [{"url": "https://x.example.com", "secret": "s"}], "type": "contact_created"}),
        secret_pointers: vec!["/webhooks/0/secret".into()],
    };
    match upstream_kind(a.create(None, &forced).await.unwrap_err()) {
        UpstreamErrorKind::Rejected(errs) => {
            assert_eq!(errs[0].pointer, "/signing_secret");
            assert_eq!(errs[0].provider.as_deref(), Some("sendblue"));
        }
        k => panic!("{k:?}"),
    }
}

#[tokio::test]
async fn error_status_with_http_200_is_an_error() {
    let acc = Account::start().await;
    let a = acc.adapter();
    let p = plans(&a, &spec(OURS, &["receive"], None));
    acc.sim
        .inject(
            Fault::status(200)
                .with_body(json!({"status": "ERROR", "message": "Invalid webhook URL"}))
                .on_method("POST"),
        )
        .unwrap();
    match upstream_kind(a.create(None, &p[0]).await.unwrap_err()) {
        UpstreamErrorKind::Rejected(errs) => assert_eq!(errs[0].pointer, "/url"),
        k => panic!("{k:?}"),
    }
    acc.sim
        .inject(
            Fault::status(200)
                .with_body(json!({"status": "ERROR", "message": "Invalid API key"}))
                .on_method("GET"),
        )
        .unwrap();
    assert_eq!(
        upstream_kind(a.list(None).await.unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );
    assert_eq!(a.list(None).await.unwrap().len(), 4, "nothing was added");
}

#[tokio::test]
async fn a_half_failed_update_puts_the_old_entry_back() {
    let acc = Account::start().await;
    let a = acc.adapter();
    let old = plans(&a, &spec(OURS, &["receive"], Some("old-secret")));
    let created = a.create(None, &old[0]).await.unwrap();
    let before = acc.sim.document();

    // Rotation: the DELETE goes through, the append fails, the old entry
    // (with its old secret) is appended again.
    let rotated = plans(&a, &spec(OURS, &["receive"], Some("new-secret")));
    acc.sim
        .inject(Fault::status(500).on_method("POST"))
        .unwrap();
    assert_eq!(
        upstream_kind(
            a.update(None, &created.id, &old[0], &rotated[0])
                .await
                .unwrap_err()
        ),
        UpstreamErrorKind::Unavailable
    );
    assert_eq!(acc.sim.document(), before);

    // Move: the append goes through, removing the old entry fails, the new
    // entry is removed again.
    let moved = plans(
        &a,
        &spec(
            "https://billing.example.com/new",
            &["receive"],
            Some("old-secret"),
        ),
    );
    acc.sim
        .inject(Fault::status(500).on_method("DELETE"))
        .unwrap();
    assert_eq!(
        upstream_kind(
            a.update(None, &created.id, &old[0], &moved[0])
                .await
                .unwrap_err()
        ),
        UpstreamErrorKind::Unavailable
    );
    assert_eq!(acc.sim.document(), before);
}

#[tokio::test]
async fn deleting_what_is_gone_sends_no_delete() {
    let acc = Account::start().await;
    let a = acc.adapter();
    a.delete(None, &format!("receive {OURS}")).await.unwrap();
    a.delete(None, "not an identity").await.unwrap();
    assert_eq!(acc.methods(), ["GET"]);
    // An entry removed behind Switchboard's back cannot be updated: the
    // engine recreates it from the NotFound.
    let p = plans(&a, &spec(OURS, &["receive"], Some("a")));
    let q = plans(&a, &spec(OURS, &["receive"], Some("b")));
    assert_eq!(
        upstream_kind(
            a.update(None, &format!("receive {OURS}"), &p[0], &q[0])
                .await
                .unwrap_err()
        ),
        UpstreamErrorKind::NotFound
    );
}
