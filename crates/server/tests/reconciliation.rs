//! The background reconciliation pass, by account, over real HTTP against
//! the simulators: what it finds and repairs, that clean subscriptions are
//! marked without journal entries, that its upstream calls are the
//! listings' pages (and Telegent's token mints) whatever the number of
//! subscriptions, and that a pass over its call budget resumes at the next
//! tick on a restarted server. Each test runs on SQLite and, when
//! configured, Postgres.

mod rig;

use std::collections::BTreeMap;

use rig::*;
use serde_json::{Value, json};
use switchboard_engine::ReconcilePolicy;
use switchboard_sim::faults::Fault;
use switchboard_sim::talkover::{DEFAULT_AGENT, DEFAULT_TOKEN};
use switchboard_store::StoreOptions;

/// Calls the Talkover simulator directly, as someone changing webhooks
/// behind Switchboard's back.
async fn at_talkover(rig: &Rig, method: &str, path: &str, body: Option<Value>) {
    let url = format!(
        "{}/agents/{DEFAULT_AGENT}/webhooks{path}",
        rig.sim_urls[TALKOVER]
    );
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .bearer_auth(DEFAULT_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "{method} {path}: {}", r.status());
}

/// The reconciler's lock is one per process (a replica runs one pass at a
/// time), so the tests of this file, which share a process, take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `f` against every configured backend, one test at a time.
macro_rules! each_backend {
    ($f:ident) => {
        let _serial = SERIAL.lock().await;
        for (name, opts) in switchboard_store::testing::backends() {
            eprintln!("backend: {name}");
            $f(&opts).await;
        }
    };
}

fn unlimited() -> ReconcilePolicy {
    ReconcilePolicy::default()
}

/// The one native id of subscription view `v`.
fn native_of(v: &Value) -> String {
    v["native"][0]["id"].as_str().unwrap().to_owned()
}

async fn pass_repairs_and_reports(store: &StoreOptions) {
    let rig = Rig::start(RigOpts::new(store.clone())).await;
    let mut subs = Vec::new();
    for n in 0..5 {
        subs.push(rig.create(body(TALKOVER, None, n)).await);
    }
    let id = |i: usize| subs[i]["id"].as_str().unwrap().to_owned();
    let url = |i: usize| subs[i]["url"].as_str().unwrap().to_owned();
    // 0: deleted at the provider; 1: its URL changed there; 2: a copy made
    // at its URL; 3: untouched; 4: degraded by a repair the provider
    // refused, then put right at the provider by hand.
    at_talkover(&rig, "DELETE", &format!("/{}", native_of(&subs[0])), None).await;
    let moved = json!({"webhook_url": "https://evil.example.com/x"});
    at_talkover(
        &rig,
        "PUT",
        &format!("/{}", native_of(&subs[1])),
        Some(moved),
    )
    .await;
    let copy = json!({"name": "copy", "webhook_url": url(2), "events": ["event_action"]});
    at_talkover(&rig, "POST", "", Some(copy)).await;
    let native4 = format!("/{}", native_of(&subs[4]));
    let moved = json!({"webhook_url": "https://evil.example.com/y"});
    at_talkover(&rig, "PUT", &native4, Some(moved)).await;
    rig.talkover
        .inject(Fault::status(403).on_method("DELETE").times(10))
        .unwrap();
    let path = format!("/v1/subscriptions/{}/reconcile", id(4));
    let (_, v) = rig.call("POST", &path, TOKEN, None).await;
    assert_eq!(v["status"], "degraded", "{v}");
    rig.talkover.clear_faults();
    at_talkover(&rig, "PUT", &native4, Some(json!({"webhook_url": url(4)}))).await;

    rig.clear_requests();
    let report = rig.tick(&unlimited()).await;
    let pass = &report.pass;
    assert!(pass.finished_at.is_some(), "one tick is the whole pass");
    assert_eq!(
        (
            pass.accounts_done,
            pass.subscriptions_checked,
            pass.findings,
            pass.repairs
        ),
        (1, 5, 3, 3)
    );
    // One list, one create for the missing one, a delete and a create for
    // the drifted one; the lookalike is only reported.
    let calls: Vec<String> = rig
        .requests(TALKOVER)
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(calls, ["GET", "POST", "DELETE", "POST"], "{calls:?}");
    assert_eq!(
        pass.upstream_calls, 4,
        "the pass counts what the provider saw"
    );

    let hooks = rig.talkover.webhooks(DEFAULT_AGENT);
    let hook_at = |u: &str| hooks.iter().filter(|h| h["webhook_url"] == u).count();
    let v0 = rig.get(&id(0)).await;
    assert_eq!(v0["findings"][0]["kind"], "missing", "{v0}");
    assert_eq!(v0["findings"][0]["repaired"], true);
    assert_eq!(hook_at(&url(0)), 1, "recreated");
    let v1 = rig.get(&id(1)).await;
    assert_eq!(v1["findings"][0]["kind"], "drifted", "{v1}");
    assert_eq!(hook_at(&url(1)), 1);
    assert_eq!(
        hook_at("https://evil.example.com/x"),
        0,
        "the drifted one replaced"
    );
    let v2 = rig.get(&id(2)).await;
    assert_eq!(v2["findings"][0]["kind"], "unknown", "{v2}");
    assert_eq!(v2["findings"][0]["repaired"], false);
    assert_eq!(v2["status"], "active");
    assert_eq!(hook_at(&url(2)), 2, "a lookalike is not removed by a pass");
    for i in [3, 4] {
        let v = rig.get(&id(i)).await;
        assert_eq!(v["status"], "active", "{v}");
        assert_eq!(v["findings"], json!([]));
        assert!(v["last_reconciled_at"].is_string());
    }
    // Only the subscriptions with findings were journalled.
    for (i, expected) in [
        (0, vec!["reconcile", "create"]),
        (1, vec!["reconcile", "create"]),
        (2, vec!["reconcile", "create"]),
        (3, vec!["create"]),
        (4, vec!["reconcile", "create"]),
    ] {
        assert_eq!(rig.operations(&id(i)).await, expected, "subscription {i}");
    }

    let progress = rig.progress().await;
    assert_eq!(progress["current"], Value::Null);
    let last = &progress["last_finished"];
    assert_eq!(last["id"], json!(pass.id));
    assert_eq!(last["subscriptions_checked"], 5);
    assert_eq!(last["accounts_remaining"], 0);
    assert_eq!(last["upstream_calls"], 4);
    let talkover = progress["recent_accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["provider"] == TALKOVER)
        .unwrap()
        .clone();
    assert_eq!(talkover["account"], DEFAULT_AGENT);
    assert_eq!(talkover["list_calls"], 1);
    let (status, _) = rig.call("GET", "/v1/reconciliation", TOKEN, None).await;
    assert_eq!(status, 403, "operators only");
}

#[tokio::test]
async fn a_pass_repairs_missing_and_drifted_reports_lookalikes_and_journals_only_findings() {
    each_backend!(pass_repairs_and_reports);
}

/// Upstream calls of one pass, by provider key, from the simulators' logs;
/// every one of them is a read (a list page or a token mint).
async fn calls_of_a_pass(rig: &Rig) -> BTreeMap<&'static str, Vec<String>> {
    rig.clear_requests();
    rig.full_pass(&unlimited()).await;
    PROVIDERS
        .iter()
        .map(|p| {
            let calls = rig
                .requests(p)
                .iter()
                .map(|r| format!("{} {}", r.method, r.path))
                .collect();
            (*p, calls)
        })
        .collect()
}

/// Checks one pass's calls against the listings: Bird's pages, one GET
/// for the others, plus Telegent's token mints (its List endpoint needs
/// its own token, minted once).
fn assert_listings_only(calls: &BTreeMap<&'static str, Vec<String>>, bird_pages: usize) {
    let bird = &calls[BIRD];
    assert_eq!(bird.len(), bird_pages, "Bird: one call per page: {bird:?}");
    assert!(bird.iter().all(|c| c.starts_with("GET ")), "{bird:?}");
    assert_eq!(calls[TALKOVER].len(), 1, "{:?}", calls[TALKOVER]);
    assert_eq!(calls[SENDBLUE].len(), 1, "{:?}", calls[SENDBLUE]);
    let telegent = &calls[TELEGENT];
    let lists = telegent
        .iter()
        .filter(|c| c.contains("/account/webhooks"))
        .count();
    let mints = telegent.iter().filter(|c| c.contains("oauth2")).count();
    assert_eq!((lists, lists + mints), (1, telegent.len()), "{telegent:?}");
    assert!(mints <= 1, "{telegent:?}");
}

async fn calls_follow_pages(store: &StoreOptions) {
    const PAGE: usize = 7;
    let mut opts = RigOpts::new(store.clone());
    opts.bird_page_size = PAGE;
    let rig = Rig::start(opts).await;
    let pages = |subs: usize| subs.div_ceil(PAGE);
    let mut per_pass = Vec::new();
    for (from, n) in [(0, 10), (10, 50)] {
        for p in PROVIDERS {
            rig.seed(p, from, n, 8).await;
        }
        let subs = from + n;
        let calls = calls_of_a_pass(&rig).await;
        assert_listings_only(&calls, pages(subs));
        let total: usize = calls.values().map(Vec::len).sum();
        let progress = rig.progress().await;
        assert_eq!(progress["last_finished"]["upstream_calls"], total);
        assert_eq!(progress["last_finished"]["subscriptions_checked"], 4 * subs);
        assert_eq!(progress["last_finished"]["repairs"], 0);
        per_pass.push((subs, calls[BIRD].len()));
    }
    // Six times the subscriptions, and Bird's calls grew with its pages
    // (2 → 9), nothing else grew at all.
    assert_eq!(per_pass, [(10, 2), (60, 9)]);
}

#[tokio::test]
async fn upstream_calls_per_pass_are_the_list_pages_for_10_and_60_subscriptions() {
    each_backend!(calls_follow_pages);
}

async fn budget_resumes_after_restart(store: &StoreOptions) {
    let agents = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
    ];
    let mut opts = RigOpts::new(store.clone());
    opts.extra_agents = agents.iter().map(|a| (*a).to_owned()).collect();
    let mut rig = Rig::start(opts).await;
    // Three accounts in key order: the two extra agents, then the default.
    let mut ids = Vec::new();
    for (n, agent) in [agents[0], agents[1], DEFAULT_AGENT]
        .into_iter()
        .enumerate()
    {
        let v = rig.create(body(TALKOVER, Some(agent), n)).await;
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    let policy = ReconcilePolicy {
        budgets: BTreeMap::from([(TALKOVER.to_owned(), 1)]),
        ..ReconcilePolicy::default()
    };
    let checked = async |rig: &Rig| {
        let mut at = Vec::new();
        for id in &ids {
            at.push(
                rig.get(id).await["last_reconciled_at"]
                    .as_str()
                    .map(str::to_owned),
            );
        }
        at
    };

    rig.clear_requests();
    let first = rig.tick(&policy).await;
    assert_eq!((first.accounts, first.upstream_calls), (1, 1));
    assert!(first.pass.finished_at.is_none(), "the budget stopped it");
    assert_eq!(rig.requests(TALKOVER).len(), 1);
    let after_first = checked(&rig).await;
    assert!(after_first[0].is_some() && after_first[1].is_none() && after_first[2].is_none());
    let progress = rig.progress().await;
    assert_eq!(progress["current"]["accounts_done"], 1);
    assert_eq!(progress["current"]["accounts_remaining"], 2);
    assert_eq!(
        progress["current"]["providers"][TALKOVER]["resume_after"],
        agents[0]
    );

    // Another process takes over: it resumes at the second account.
    rig.restart().await;
    rig.clear_requests();
    let second = rig.tick(&policy).await;
    assert_eq!(second.pass.id, first.pass.id, "the same pass goes on");
    assert_eq!((second.accounts, second.upstream_calls), (1, 1));
    let after_second = checked(&rig).await;
    assert_eq!(
        after_second[0], after_first[0],
        "the first account is not checked again"
    );
    assert!(after_second[1].is_some() && after_second[2].is_none());

    let third = rig.tick(&policy).await;
    assert_eq!(third.accounts, 1);
    assert!(third.pass.finished_at.is_some());
    assert_eq!(
        (
            third.pass.ticks,
            third.pass.accounts_done,
            third.pass.upstream_calls
        ),
        (3, 3, 3)
    );
    assert_eq!(rig.requests(TALKOVER).len(), 2, "one list per tick");
    assert!(checked(&rig).await.iter().all(Option::is_some));
}

#[tokio::test]
async fn a_pass_over_its_budget_resumes_at_the_next_tick_after_a_restart() {
    each_backend!(budget_resumes_after_restart);
}
