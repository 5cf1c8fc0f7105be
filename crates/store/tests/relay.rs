//! Relay storage (issue 13) on every configured backend: accepting events
//! exactly once, claiming deliveries (leases, concurrency, order),
//! recording attempts, the API's reads and re-drives, retention, and the
//! ingress routes.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_core::{Error, Secret};
use switchboard_store::{
    Accepted, ClaimedDelivery, DeliveryFilter, DeliveryStatus, NewAttempt, NewEvent, NewRelayRoute,
    NextState, Recorded, Store, StoreOptions, testing,
};

const LEASE: Duration = Duration::from_secs(30);

fn event<'a>(sub: &'a str, dedup: &'a str, at: DateTime<Utc>) -> NewEvent<'a> {
    NewEvent {
        tenant: "t",
        subscription_id: sub,
        event_type: "call.ended",
        provider: "talkover",
        occurred_at: None,
        received_at: at,
        payload: r#"{"call":{"id":7},"note":"as received"}"#,
        dedup_key: dedup,
        ordered: false,
    }
}

fn sub_id() -> String {
    switchboard_core::ids::subscription_id()
}

async fn accept(store: &Store, e: &NewEvent<'_>) -> String {
    match store.accept_event(e).await.unwrap() {
        Accepted::New(id) => id,
        other => panic!("expected a new event, got {other:?}"),
    }
}

fn attempt<'a>(c: &'a ClaimedDelivery, worker: &'a str, next: NextState) -> NewAttempt<'a> {
    NewAttempt {
        delivery_id: &c.delivery.id,
        worker_id: worker,
        attempt: c.delivery.attempts + 1,
        started_at: Utc::now(),
        latency: Duration::from_millis(12),
        status_code: Some(500),
        outcome: "response",
        response_excerpt: Some("oops"),
        error: None,
        next,
    }
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store, StoreOptions) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        let store = Store::connect(&opts).await.unwrap();
        f(store, opts).await;
    }
}

#[tokio::test]
async fn an_event_is_accepted_once_and_a_retry_is_recognised() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let now = Utc::now();
        let first = accept(&store, &event(&sub, "req-1", now)).await;
        assert!(first.starts_with("evt_"));
        assert_eq!(
            store
                .accept_event(&event(&sub, "req-1", now))
                .await
                .unwrap(),
            Accepted::Duplicate(first.clone())
        );
        assert_eq!(store.outbox_depth().await.unwrap(), 1, "no second delivery");
        // The key is per subscription.
        let other = sub_id();
        accept(&store, &event(&other, "req-1", now)).await;
        accept(&store, &event(&sub, "req-2", now)).await;
        assert_eq!(store.outbox_depth().await.unwrap(), 3);

        // Concurrent retries of one delivery: exactly one is stored.
        let store = Arc::new(store);
        let sub = Arc::new(sub_id());
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, sub) = (Arc::clone(&store), Arc::clone(&sub));
                tokio::spawn(async move {
                    store
                        .accept_event(&event(&sub, "same", Utc::now()))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut new = Vec::new();
        let mut dups = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Accepted::New(id) => new.push(id),
                Accepted::Duplicate(id) => dups.push(id),
            }
        }
        assert_eq!(new.len(), 1, "{new:?}");
        assert!(dups.iter().all(|d| *d == new[0]), "{dups:?}");
        assert_eq!(store.outbox_depth().await.unwrap(), 4);
    })
    .await;
}

#[tokio::test]
async fn due_deliveries_are_claimed_once_with_their_event() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let now = Utc::now();
        let a = accept(&store, &event(&sub, "a", now)).await;
        let b = accept(&store, &event(&sub, "b", now)).await;
        let later = now + chrono::Duration::hours(1);
        accept(&store, &event(&sub, "later", later)).await;

        let claimed = store
            .claim_due_deliveries("w1", now, 10, LEASE)
            .await
            .unwrap();
        let events: HashSet<_> = claimed.iter().map(|c| c.event.id.clone()).collect();
        assert_eq!(events, HashSet::from([a.clone(), b]));
        for c in &claimed {
            assert_eq!(c.delivery.status, DeliveryStatus::Delivering);
            assert_eq!(c.delivery.leased_by.as_deref(), Some("w1"));
            assert_eq!(c.delivery.webhook_id, c.event.id);
            assert_eq!(c.delivery.subscription_id, sub);
            assert_eq!(c.delivery.attempts, 0);
            assert_eq!(c.event.payload, r#"{"call":{"id":7},"note":"as received"}"#);
            assert_eq!(c.event.event_type, "call.ended");
        }
        assert!(
            store
                .claim_due_deliveries("w2", now, 10, LEASE)
                .await
                .unwrap()
                .is_empty(),
            "claimed deliveries are not claimed again while leased"
        );
        for c in &claimed {
            let done = attempt(c, "w1", NextState::Delivered);
            assert_eq!(store.record_attempt(&done).await.unwrap(), Recorded::Stored);
        }
        let due_later = store
            .claim_due_deliveries("w2", later, 10, LEASE)
            .await
            .unwrap();
        assert_eq!(
            due_later.len(),
            1,
            "only the later one; the others are leased"
        );
        assert_ne!(due_later[0].event.id, a);
    })
    .await;
}

/// Claims everything due with `tasks` claimers spread over `stores`,
/// recording each claimed delivery as delivered; returns the delivery ids
/// each claimer took.
async fn claim_all(stores: &[Arc<Store>], tasks: usize, total: usize) -> Vec<Vec<String>> {
    let claimed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let claimed = Arc::clone(&claimed);
            tokio::spawn(async move {
                let worker = format!("w{i}");
                let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                let mut mine = Vec::new();
                while claimed.load(std::sync::atomic::Ordering::SeqCst) < total {
                    assert!(tokio::time::Instant::now() < deadline, "claiming stalled");
                    let got = store
                        .claim_due_deliveries(&worker, Utc::now(), 3, LEASE)
                        .await
                        .unwrap();
                    claimed.fetch_add(got.len(), std::sync::atomic::Ordering::SeqCst);
                    for c in &got {
                        let done = store
                            .record_attempt(&attempt(c, &worker, NextState::Delivered))
                            .await
                            .unwrap();
                        assert_eq!(done, Recorded::Stored);
                        mine.push(c.delivery.id.clone());
                    }
                    tokio::task::yield_now().await;
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.push(h.await.unwrap());
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_take_disjoint_deliveries_and_miss_none() {
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        // On Postgres two handles (two replicas' pools) on one schema; on
        // SQLite one store shared by concurrent tasks.
        let mut stores = vec![Arc::new(Store::connect(&opts).await.unwrap())];
        if name == "postgres" {
            stores.push(Arc::new(Store::connect(&opts).await.unwrap()));
        }
        for round in 0..5 {
            let total = 40;
            let subs: Vec<String> = (0..4).map(|_| sub_id()).collect();
            let mut expected = HashSet::new();
            for i in 0..total {
                let dedup = format!("r{round}-{i}");
                let e = event(&subs[i % subs.len()], &dedup, Utc::now());
                accept(&stores[0], &e).await;
                expected.insert(dedup);
            }
            let per_claimer = claim_all(&stores, 6, total).await;
            let mut seen = HashSet::new();
            for id in per_claimer.iter().flatten() {
                assert!(seen.insert(id.clone()), "{name}: {id} claimed twice");
            }
            assert_eq!(seen.len(), total, "{name}: every delivery claimed");
            assert_eq!(stores[0].outbox_depth().await.unwrap(), 0, "{name}");
            for id in &seen {
                let d = stores[0].get_delivery("t", id).await.unwrap().unwrap();
                assert_eq!(d.delivery.status, DeliveryStatus::Delivered);
                assert_eq!(d.attempts.len(), 1, "{name}: one attempt each");
                assert!(expected.contains(&d.event.dedup_key));
            }
        }
    }
}

#[tokio::test]
async fn an_expired_lease_is_claimed_again_and_the_old_worker_writes_nothing() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let t0 = Utc::now();
        accept(&store, &event(&sub, "x", t0)).await;
        let a = store
            .claim_due_deliveries("a", t0, 10, LEASE)
            .await
            .unwrap();
        assert_eq!(a.len(), 1);
        let within = t0 + chrono::Duration::seconds(10);
        assert!(
            store
                .claim_due_deliveries("b", within, 10, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let after = t0 + chrono::Duration::seconds(31);
        let b = store
            .claim_due_deliveries("b", after, 10, LEASE)
            .await
            .unwrap();
        assert_eq!(b.len(), 1, "a dead worker's delivery is claimed again");
        assert_eq!(b[0].delivery.id, a[0].delivery.id);
        assert_eq!(b[0].delivery.attempts, 0, "the lost attempt is not counted");

        let lost = store
            .record_attempt(&attempt(&a[0], "a", NextState::Delivered))
            .await
            .unwrap();
        assert_eq!(lost, Recorded::LeaseLost);
        let d = store
            .get_delivery("t", &a[0].delivery.id)
            .await
            .unwrap()
            .unwrap();
        assert!(d.attempts.is_empty(), "a lost lease writes no attempt");
        assert_eq!(d.delivery.status, DeliveryStatus::Delivering);
        assert_eq!(d.delivery.leased_by.as_deref(), Some("b"));

        let stored = store
            .record_attempt(&attempt(&b[0], "b", NextState::Delivered))
            .await
            .unwrap();
        assert_eq!(stored, Recorded::Stored);
        let d = store
            .get_delivery("t", &a[0].delivery.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.delivery.status, DeliveryStatus::Delivered);
        assert_eq!(d.delivery.lease_until, None);
        assert_eq!(d.attempts.len(), 1);
        assert_eq!(d.attempts[0].status_code, Some(500));
        assert_eq!(d.attempts[0].latency_ms, 12);
        assert_eq!(d.attempts[0].response_excerpt.as_deref(), Some("oops"));
    })
    .await;
}

#[tokio::test]
async fn retries_come_due_at_their_time_and_the_last_dead_letters() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let t0 = Utc::now();
        accept(&store, &event(&sub, "r", t0)).await;
        let c = store.claim_due_deliveries("w", t0, 1, LEASE).await.unwrap();
        let at = t0 + chrono::Duration::minutes(5);
        let mut wrong = attempt(&c[0], "w", NextState::Retry { at });
        wrong.attempt = 2;
        assert_eq!(
            store.record_attempt(&wrong).await.unwrap(),
            Recorded::LeaseLost,
            "an attempt number out of sequence is refused"
        );
        let retry = attempt(&c[0], "w", NextState::Retry { at });
        assert_eq!(
            store.record_attempt(&retry).await.unwrap(),
            Recorded::Stored
        );
        let before = at - chrono::Duration::seconds(1);
        assert!(
            store
                .claim_due_deliveries("w", before, 1, LEASE)
                .await
                .unwrap()
                .is_empty()
        );
        let again = store.claim_due_deliveries("w", at, 1, LEASE).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery.attempts, 1);
        assert_eq!(again[0].delivery.last_status_code, Some(500));
        assert_eq!(again[0].delivery.webhook_id, c[0].delivery.webhook_id);
        let mut last = attempt(&again[0], "w", NextState::Failed);
        last.status_code = None;
        last.outcome = "timeout";
        last.error = Some("no answer within 10s");
        assert_eq!(store.record_attempt(&last).await.unwrap(), Recorded::Stored);
        let d = store
            .get_delivery("t", &c[0].delivery.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.delivery.status, DeliveryStatus::Failed);
        assert_eq!(d.delivery.attempts, 2);
        assert_eq!(
            d.delivery.last_error.as_deref(),
            Some("no answer within 10s")
        );
        let numbers: Vec<u32> = d.attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(numbers, [1, 2]);
        assert_eq!(store.outbox_depth().await.unwrap(), 0);
    })
    .await;
}

#[tokio::test]
async fn ordered_subscriptions_get_one_delivery_at_a_time_in_order() {
    each_backend(|store, _| async move {
        let ordered = sub_id();
        let free = sub_id();
        let now = Utc::now();
        let mut order = Vec::new();
        for i in 0..3 {
            let key = format!("o{i}");
            let e = NewEvent {
                ordered: true,
                ..event(&ordered, &key, now)
            };
            order.push(accept(&store, &e).await);
        }
        for i in 0..2 {
            accept(&store, &event(&free, &format!("f{i}"), now)).await;
        }
        let mut t = now;
        let mut delivered = Vec::new();
        for step in 0..7 {
            let claimed = store.claim_due_deliveries("w", t, 10, LEASE).await.unwrap();
            let mine: Vec<_> = claimed
                .iter()
                .filter(|c| c.delivery.subscription_id == ordered)
                .collect();
            if step == 0 {
                assert_eq!(claimed.len() - mine.len(), 2, "unordered ones all at once");
            }
            if delivered.len() == order.len() {
                assert!(mine.is_empty());
                break;
            }
            assert_eq!(mine.len(), 1, "step {step}: one at a time");
            assert_eq!(
                mine[0].event.id,
                order[delivered.len()],
                "step {step}: in order"
            );
            // The first attempt of each fails once: while the oldest waits
            // for its retry, the later ones stay back.
            let far = t + chrono::Duration::hours(2);
            let next = if mine[0].delivery.attempts == 0 {
                NextState::Retry { at: far }
            } else {
                NextState::Delivered
            };
            let rec = attempt(mine[0], "w", next);
            store.record_attempt(&rec).await.unwrap();
            for c in claimed
                .iter()
                .filter(|c| c.delivery.subscription_id != ordered)
            {
                store
                    .record_attempt(&attempt(c, "w", NextState::Delivered))
                    .await
                    .unwrap();
            }
            if matches!(next, NextState::Retry { .. }) {
                let waiting = store.claim_due_deliveries("w", t, 10, LEASE).await.unwrap();
                assert!(waiting.is_empty(), "nothing later while the oldest waits");
                t = far;
            } else {
                delivered.push(mine[0].event.id.clone());
            }
        }
        assert_eq!(delivered, order);
    })
    .await;
}

#[tokio::test]
async fn a_dead_lettered_delivery_no_longer_holds_the_next_back() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let now = Utc::now();
        let e = |k: &'static str| NewEvent {
            ordered: true,
            ..event(&sub, k, now)
        };
        let first = accept(&store, &e("1")).await;
        let second = accept(&store, &e("2")).await;
        let c = store
            .claim_due_deliveries("w", now, 10, LEASE)
            .await
            .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].event.id, first);
        store
            .record_attempt(&attempt(&c[0], "w", NextState::Failed))
            .await
            .unwrap();
        let c = store
            .claim_due_deliveries("w", now, 10, LEASE)
            .await
            .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].event.id, second);
    })
    .await;
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_by_page_and_filter_per_tenant() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let now = Utc::now();
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut e = event(&sub, "", now);
            let key = format!("l{i}");
            e.dedup_key = &key;
            if i == 4 {
                e.event_type = "message.received";
            }
            accept(&store, &e).await;
        }
        let c = store
            .claim_due_deliveries("w", now, 2, LEASE)
            .await
            .unwrap();
        for c in &c {
            store
                .record_attempt(&attempt(c, "w", NextState::Delivered))
                .await
                .unwrap();
        }
        let all = DeliveryFilter::default();
        let mut cursor = None;
        loop {
            let (page, next) = store
                .list_deliveries("t", &sub, &all, cursor.as_deref(), 2)
                .await
                .unwrap();
            assert!(page.len() <= 2);
            ids.extend(page.into_iter().map(|d| d.id));
            match next {
                Some(n) => cursor = Some(n),
                None => break,
            }
        }
        assert_eq!(ids.len(), 5);
        let mut sorted = ids.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(ids, sorted, "newest first");

        let delivered = DeliveryFilter {
            status: Some(DeliveryStatus::Delivered),
            ..DeliveryFilter::default()
        };
        let (page, _) = store
            .list_deliveries("t", &sub, &delivered, None, 50)
            .await
            .unwrap();
        assert_eq!(page.len(), 2);
        assert!(page.iter().all(|d| d.status == DeliveryStatus::Delivered));
        let typed = DeliveryFilter {
            event_type: Some("message.received".into()),
            ..DeliveryFilter::default()
        };
        let (page, _) = store
            .list_deliveries("t", &sub, &typed, None, 50)
            .await
            .unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].event_type, "message.received");
        let (other, _) = store
            .list_deliveries("other", &sub, &all, None, 50)
            .await
            .unwrap();
        assert!(other.is_empty(), "another tenant sees nothing");
        assert!(
            store
                .get_delivery("other", &ids[0])
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.get_delivery("t", &ids[0]).await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_redelivery_starts_a_new_series_with_the_same_webhook_id() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let now = Utc::now();
        accept(&store, &event(&sub, "d", now)).await;
        let c = store
            .claim_due_deliveries("w", now, 1, LEASE)
            .await
            .unwrap();
        let id = c[0].delivery.id.clone();
        assert!(
            matches!(
                store.redeliver("t", &id, now).await,
                Err(Error::Conflict(_))
            ),
            "not while an attempt runs"
        );
        store
            .record_attempt(&attempt(&c[0], "w", NextState::Failed))
            .await
            .unwrap();
        assert!(matches!(
            store.redeliver("other", &id, now).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.redeliver("t", "dlv_unknown", now).await,
            Err(Error::NotFound { .. })
        ));
        let d = store.redeliver("t", &id, now).await.unwrap();
        assert_eq!(d.status, DeliveryStatus::Pending);
        assert_eq!(d.attempts, 0);
        assert_eq!(d.webhook_id, c[0].delivery.webhook_id);
        let again = store
            .claim_due_deliveries("w", now, 1, LEASE)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].delivery.id, id);
        assert_eq!(again[0].delivery.attempts, 0);
        store
            .record_attempt(&attempt(&again[0], "w", NextState::Delivered))
            .await
            .unwrap();
        let detail = store.get_delivery("t", &id).await.unwrap().unwrap();
        assert_eq!(detail.delivery.status, DeliveryStatus::Delivered);
        let numbers: Vec<u32> = detail.attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(numbers, [1, 1], "both series are kept");
    })
    .await;
}

#[tokio::test]
async fn a_replay_redelivers_events_since_a_time_without_open_deliveries() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let t0 = Utc::now() - chrono::Duration::hours(1);
        let old = accept(&store, &event(&sub, "old", t0)).await;
        let t1 = t0 + chrono::Duration::minutes(30);
        let done = accept(&store, &event(&sub, "done", t1)).await;
        let open = accept(&store, &event(&sub, "open", t1)).await;
        let now = Utc::now();
        let c = store
            .claim_due_deliveries("w", now, 10, LEASE)
            .await
            .unwrap();
        for c in &c {
            if c.event.id != open {
                store
                    .record_attempt(&attempt(c, "w", NextState::Delivered))
                    .await
                    .unwrap();
            }
        }
        let n = store.replay_since("t", &sub, t1, now, false).await.unwrap();
        assert_eq!(n, 1, "only `done`: `old` is earlier, `open` is still open");
        assert_eq!(
            store
                .replay_since("other", &sub, t0, now, false)
                .await
                .unwrap(),
            0,
            "another tenant replays nothing"
        );
        let (page, _) = store
            .list_deliveries("t", &sub, &DeliveryFilter::default(), None, 50)
            .await
            .unwrap();
        assert_eq!(page.len(), 4);
        let replayed = &page[0];
        assert_eq!(replayed.event_id, done);
        assert_eq!(replayed.webhook_id, done);
        assert_eq!(replayed.status, DeliveryStatus::Pending);
        assert!(page.iter().filter(|d| d.event_id == old).count() == 1);
    })
    .await;
}

#[tokio::test]
async fn pruning_deletes_finished_deliveries_their_attempts_and_orphaned_events() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let now = Utc::now();
        let mut by_event = std::collections::HashMap::new();
        for (key, next) in [
            ("ok1", Some(NextState::Delivered)),
            ("ok2", Some(NextState::Delivered)),
            ("dead", Some(NextState::Failed)),
            ("open", None),
        ] {
            by_event.insert(accept(&store, &event(&sub, key, now)).await, next);
        }
        let c = store
            .claim_due_deliveries("w", now, 10, LEASE)
            .await
            .unwrap();
        for c in &c {
            if let Some(next) = by_event[&c.event.id] {
                store.record_attempt(&attempt(c, "w", next)).await.unwrap();
            }
        }
        let later = Utc::now() + chrono::Duration::seconds(5);
        let long_ago = now - chrono::Duration::days(1);
        let pruned = store.prune_relay(later, long_ago).await.unwrap();
        assert_eq!(pruned.deliveries, 2);
        assert_eq!(pruned.attempts, 2);
        assert_eq!(pruned.events, 2);
        let (left, _) = store
            .list_deliveries("t", &sub, &DeliveryFilter::default(), None, 50)
            .await
            .unwrap();
        let mut statuses: Vec<_> = left.iter().map(|d| d.status).collect();
        statuses.sort_by_key(|s| s.as_str());
        assert_eq!(
            statuses,
            [DeliveryStatus::Delivering, DeliveryStatus::Failed]
        );
        let pruned = store.prune_relay(later, later).await.unwrap();
        assert_eq!(
            (pruned.deliveries, pruned.attempts, pruned.events),
            (1, 1, 1)
        );
        assert_eq!(store.outbox_depth().await.unwrap(), 1, "open ones stay");
        // The pruned events' dedup keys are gone with them.
        assert!(matches!(
            store.accept_event(&event(&sub, "ok1", now)).await.unwrap(),
            Accepted::New(_)
        ));
        assert!(matches!(
            store.accept_event(&event(&sub, "open", now)).await.unwrap(),
            Accepted::Duplicate(_)
        ));
    })
    .await;
}

#[tokio::test]
async fn routes_are_found_by_token_replaced_per_native_and_deleted() {
    each_backend(|store, _| async move {
        let sub = sub_id();
        let secret = Secret::new("whsec-credential-value");
        let route = NewRelayRoute {
            events: &[],
            ordered: false,
            token: "token-one",
            tenant: "t",
            subscription_id: &sub,
            native_key: "webhook",
            provider: "talkover",
            credential: &secret,
        };
        store.insert_relay_route(&route).await.unwrap();
        let found = store
            .relay_route_by_token("token-one")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.tenant, "t");
        assert_eq!(found.subscription_id, sub);
        assert_eq!(found.native_key, "webhook");
        assert_eq!(found.provider, "talkover");
        assert_eq!(found.credential.expose(), "whsec-credential-value");
        assert!(
            store
                .relay_route_by_token("token-two")
                .await
                .unwrap()
                .is_none()
        );

        let rotated = Secret::new("second-credential");
        let replacement = NewRelayRoute {
            token: "token-two",
            credential: &rotated,
            ..route
        };
        store.insert_relay_route(&replacement).await.unwrap();
        assert!(
            store
                .relay_route_by_token("token-one")
                .await
                .unwrap()
                .is_none(),
            "a native has one route"
        );
        let found = store
            .relay_route_by_token("token-two")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.credential.expose(), "second-credential");

        let other = NewRelayRoute {
            token: "token-three",
            native_key: "other",
            ..route
        };
        store.insert_relay_route(&other).await.unwrap();
        assert!(store.delete_relay_route(&sub, "other").await.unwrap());
        assert!(
            store
                .relay_route_by_token("token-three")
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.delete_relay_routes(&sub).await.unwrap(), 1);
        assert!(
            store
                .relay_route_by_token("token-two")
                .await
                .unwrap()
                .is_none()
        );
    })
    .await;
}
