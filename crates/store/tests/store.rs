//! Store behaviour on every configured backend.

use chrono::Utc;
use switchboard_core::testing::draft;
use switchboard_core::{CallbackAuth, Error, Secret, SpecDraft, SubscriptionStatus};
use switchboard_store::{ListQuery, NativeRecord, Store, SubscriptionRecord, testing};

fn record(tenant: &str, provider: &str) -> SubscriptionRecord {
    let now = Utc::now();
    SubscriptionRecord {
        id: switchboard_core::ids::subscription_id(),
        tenant: tenant.into(),
        key: None,
        status: SubscriptionStatus::Active,
        spec: SpecDraft {
            account: Some("9fbef0b7-8d4e-4a08-9207-66c22155721d".into()),
            auth: CallbackAuth::Bearer {
                token: Secret::new("tok"),
            },
            ..draft(provider, "https://example.com/h", &["call.ended"])
        }
        .validate()
        .unwrap(),
        warnings: vec!["w".into()],
        last_error: None,
        version: 1,
        created_at: now,
        updated_at: now,
        natives: vec![NativeRecord {
            key: "webhook".into(),
            native_id: "n1".into(),
            events: vec!["event_phone_call_ended".into()],
            enabled: true,
            created_at: now,
        }],
        last_reconciled_at: None,
        findings: vec![],
    }
}

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        let store = Store::connect(&opts)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(store.backend(), name);
        f(store).await;
    }
}

#[tokio::test]
async fn round_trip_and_tenant_scoping() {
    each_backend(|store| async move {
        let rec = record("billing", "talkover");
        store.insert(&rec).await.unwrap();
        let got = store.get("billing", &rec.id).await.unwrap();
        assert_eq!(got.spec, rec.spec);
        assert_eq!(got.natives.len(), 1);
        assert_eq!(got.natives[0].native_id, "n1");
        assert!(matches!(
            store.get("other", &rec.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.delete("other", &rec.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(store.get("billing", &rec.id).await.is_ok());
        store.delete("billing", &rec.id).await.unwrap();
        assert!(matches!(
            store.get("billing", &rec.id).await,
            Err(Error::NotFound { .. })
        ));
    })
    .await;
}

#[tokio::test]
async fn list_pages_by_cursor_and_filters() {
    each_backend(|store| async move {
        let mut ids = Vec::new();
        for i in 0..5 {
            let mut r = record("t1", if i % 2 == 0 { "a" } else { "b" });
            if i == 4 {
                r.status = SubscriptionStatus::Disabled;
            }
            store.insert(&r).await.unwrap();
            ids.push(r.id);
        }
        store.insert(&record("t2", "a")).await.unwrap();

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list(
                    Some("t1"),
                    &ListQuery {
                        limit: 2,
                        after: after.clone(),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            assert!(page.data.len() <= 2);
            seen.extend(page.data.iter().map(|r| r.id.clone()));
            assert!(page.data.iter().all(|r| r.natives.len() == 1));
            match page.next_cursor {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, ids);

        let only_a = store
            .list(
                Some("t1"),
                &ListQuery {
                    limit: 50,
                    provider: Some("a".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(only_a.data.len(), 3);
        let disabled = store
            .list(
                Some("t1"),
                &ListQuery {
                    limit: 50,
                    status: Some(SubscriptionStatus::Disabled),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(disabled.data.len(), 1);
        assert_eq!(disabled.data[0].id, ids[4]);
    })
    .await;
}

#[tokio::test]
async fn update_is_guarded_by_version() {
    each_backend(|store| async move {
        let rec = record("t", "a");
        store.insert(&rec).await.unwrap();
        let mut changed = rec.clone();
        changed.status = SubscriptionStatus::Disabled;
        changed.natives[0].enabled = false;
        let saved = store.update(&changed).await.unwrap();
        assert_eq!(saved.version, 2);
        // A writer still holding version 1 loses instead of overwriting.
        assert!(matches!(
            store.update(&changed).await,
            Err(Error::Conflict(_))
        ));
        let got = store.get("t", &rec.id).await.unwrap();
        assert_eq!(got.status, SubscriptionStatus::Disabled);
        assert!(!got.natives[0].enabled);
        assert_eq!(got.version, 2);
    })
    .await;
}

#[tokio::test]
async fn natives_are_recorded_and_forgotten_one_by_one() {
    each_backend(|store| async move {
        let mut rec = record("t", "a");
        rec.natives.clear();
        rec.status = SubscriptionStatus::Pending;
        store.insert(&rec).await.unwrap();
        let n = NativeRecord {
            key: "k1".into(),
            native_id: "x".into(),
            events: vec!["e".into()],
            enabled: true,
            created_at: Utc::now(),
        };
        store.record_native("t", &rec.id, &n).await.unwrap();
        store
            .record_native(
                "t",
                &rec.id,
                &NativeRecord {
                    native_id: "y".into(),
                    ..n.clone()
                },
            )
            .await
            .unwrap();
        let got = store.get("t", &rec.id).await.unwrap();
        assert_eq!(got.natives.len(), 1);
        assert_eq!(got.natives[0].native_id, "y");
        store.forget_native("t", &rec.id, "k1").await.unwrap();
        assert!(store.get("t", &rec.id).await.unwrap().natives.is_empty());
    })
    .await;
}

/// SQLite: what the writer commits is copied from the WAL into the
/// database file by the background checkpoint. The writer's own
/// checkpoint starts only thousands of pages later, far past what this
/// writes, and nothing is written after the inserts, so only the
/// background checkpoint can grow the file.
#[tokio::test]
async fn sqlite_commits_reach_the_database_file_through_the_background_checkpoint() {
    let opts = testing::sqlite();
    let path = opts
        .url
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let store = Store::connect(&opts).await.unwrap();
    let size = || std::fs::metadata(&path).unwrap().len();
    let before = size();
    for _ in 0..100 {
        store.insert(&record("t", "talkover")).await.unwrap();
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while size() <= before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the database file stayed at {before} bytes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let q = ListQuery {
        limit: 50,
        ..ListQuery::default()
    };
    let page = store.list(Some("t"), &q).await.unwrap();
    assert_eq!(
        page.data.len(),
        50,
        "a first page, read beside the checkpoints"
    );
}

#[tokio::test]
async fn concurrent_migrations_are_safe() {
    // Two replicas starting at once against one database.
    let opts = testing::postgres().unwrap_or_else(testing::sqlite);
    let (a, b) = tokio::join!(Store::connect(&opts), Store::connect(&opts));
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn account_locks_exclude_other_stores_on_the_same_database() {
    // Two stores stand for two replicas. Each task reads a shared counter,
    // yields, and writes it back incremented: without mutual exclusion the
    // interleaved read-modify-write sequences lose increments.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    for (name, opts) in testing::backends() {
        let a = Store::connect(&opts).await.unwrap();
        let b = Store::connect(&opts).await.unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let counter = counter.clone();
            tasks.push(tokio::spawn(async move {
                let lock = store.lock_account("sendblue/acct-1").await.unwrap();
                let seen = counter.load(Ordering::SeqCst);
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                }
                counter.store(seen + 1, Ordering::SeqCst);
                lock.release().await;
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(counter.load(Ordering::SeqCst), 40, "{name}: no lost update");
        // A different account is not blocked by a held lock.
        let held = a.lock_account("sendblue/acct-1").await.unwrap();
        let other = b.lock_account("sendblue/acct-2").await.unwrap();
        other.release().await;
        held.release().await;
    }
}

/// Postgres: a replica whose liveness lock went with its connection (a
/// Postgres restart, a proxy's idle timeout) takes the lock again, so the
/// other replicas stop taking it for dead.
#[tokio::test]
async fn a_liveness_lock_lost_with_its_connection_is_taken_again() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let Some(opts) = testing::postgres() else {
        return;
    };
    let store = Store::connect(&opts).await.unwrap();
    let other = Database::connect(opts.url.as_str()).await.unwrap();
    let key = switchboard_store::lock_key(&format!("replica/{}", store.replica_id()));
    // The session holding the advisory lock `key`, if one does.
    let holder = || async {
        let row = other
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND ((classid::bigint << 32) | objid::bigint) = $1",
                [key.into()],
            ))
            .await
            .unwrap();
        row.map(|r| r.try_get::<i32>("", "pid").unwrap())
    };
    let held = store.hold_liveness().await.unwrap();
    let keeper = tokio::spawn({
        let store = store.clone();
        async move {
            store
                .keep_liveness(held, std::time::Duration::from_millis(20))
                .await
        }
    });
    let first = holder().await.expect("the lock is held");
    other
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_terminate_backend($1)",
            [first.into()],
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match holder().await {
            Some(pid) if pid != first => break,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "the liveness lock was not taken again"
            ),
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    keeper.abort();
}

#[tokio::test]
async fn a_held_account_lock_is_visible_to_other_postgres_sessions() {
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
    let Some(opts) = testing::postgres() else {
        return;
    };
    let store = Store::connect(&opts).await.unwrap();
    let other = Database::connect(opts.url.as_str()).await.unwrap();
    let try_lock = |key: i64| {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_lock($1) AS got",
            [key.into()],
        )
    };
    let key = switchboard_store::lock_key("sendblue/acct-9");
    let held = store.lock_account("sendblue/acct-9").await.unwrap();
    let row = other.query_one_raw(try_lock(key)).await.unwrap().unwrap();
    assert!(
        !row.try_get::<bool>("", "got").unwrap(),
        "another session cannot take a held lock"
    );
    held.release().await;
    let row = other.query_one_raw(try_lock(key)).await.unwrap().unwrap();
    assert!(
        row.try_get::<bool>("", "got").unwrap(),
        "released locks can be taken"
    );
}

/// Journals a `kind` change of `rec` (spec before = after), by actor `x`.
async fn journal(
    store: &Store,
    rec: &SubscriptionRecord,
    kind: switchboard_core::operation::OperationKind,
) -> String {
    let op = switchboard_store::NewOperation {
        tenant: &rec.tenant,
        subscription_id: &rec.id,
        kind,
        actor: "x",
        before: Some(&rec.spec),
        after: Some(&rec.spec),
    };
    store
        .start_operation(&op, std::time::Duration::from_secs(30))
        .await
        .unwrap()
}

/// `opts` connected with `keys` as its cipher (the first seals).
async fn with_keys(
    opts: &mut switchboard_store::StoreOptions,
    keys: &[&switchboard_store::SecretKey],
) -> Store {
    opts.cipher =
        switchboard_store::Cipher::new(keys.iter().map(|k| (*k).clone()).collect()).unwrap();
    Store::connect(opts).await.unwrap()
}

#[tokio::test]
async fn key_rotation_reseals_everything_with_the_new_key() {
    use switchboard_core::operation::OperationKind;
    use switchboard_store::SecretKey;
    for (name, mut opts) in testing::backends() {
        let old = SecretKey::generate("old").0;
        let new = SecretKey::generate("new").0;
        let before = with_keys(&mut opts, &[&old]).await;
        let rec = record("t", "a");
        before.insert(&rec).await.unwrap();
        let op = journal(&before, &rec, OperationKind::Update).await;
        let credential = switchboard_core::Secret::new("route-credential");
        before
            .insert_relay_route(&switchboard_store::NewRelayRoute {
                events: &[],
                ordered: false,
                token: "route-token",
                tenant: "t",
                subscription_id: &rec.id,
                native_key: "webhook",
                provider: "talkover",
                credential: &credential,
            })
            .await
            .unwrap();

        let both = with_keys(&mut opts, &[&new, &old]).await;
        let n = both.rotate_keys().await.unwrap();
        assert_eq!(
            n, 4,
            "{name}: the spec, both journalled specs and the route credential"
        );
        assert_eq!(both.rotate_keys().await.unwrap(), 0, "{name}: idempotent");

        let only_new = with_keys(&mut opts, &[&new]).await;
        assert_eq!(
            only_new.get("t", &rec.id).await.unwrap().spec,
            rec.spec,
            "{name}"
        );
        let (ops, _) = only_new
            .list_operations("t", &rec.id, 10, None)
            .await
            .unwrap();
        assert_eq!(ops[0].id, op);
        assert_eq!(ops[0].before.as_ref(), Some(&rec.spec));
        let route = only_new
            .relay_route_by_token("route-token")
            .await
            .unwrap()
            .expect("the route survives rotation");
        assert_eq!(route.credential.expose(), "route-credential", "{name}");
    }
}

#[tokio::test]
async fn a_journal_entry_reads_back_typed() {
    use switchboard_core::operation::{OperationKind, OperationState, Step, StepAction};
    each_backend(|store| async move {
        let rec = record("t", "a");
        store.insert(&rec).await.unwrap();
        let op = journal(&store, &rec, OperationKind::RotateSecret).await;
        let steps = [
            Step::now(StepAction::AdoptReplacement, "webhook", "n2"),
            Step::now(StepAction::UndoCreate, "webhook", "n2"),
        ];
        for step in &steps {
            store.add_step(&op, step).await.unwrap();
        }
        let (ops, _) = store.list_operations("t", &rec.id, 10, None).await.unwrap();
        assert_eq!(ops[0].kind, OperationKind::RotateSecret);
        assert_eq!(ops[0].state, OperationState::Running);
        store
            .finish_operation(&op, OperationState::Undone, Some("boom".into()))
            .await
            .unwrap();
        let (ops, _) = store.list_operations("t", &rec.id, 10, None).await.unwrap();
        assert_eq!(ops[0].state, OperationState::Undone);
        assert_eq!(ops[0].steps, steps);
        assert_eq!(ops[0].error.as_deref(), Some("boom"));
    })
    .await;
}

/// Rotation walks each table page by page: rows past the first page are
/// re-sealed too, and every one opens with the new key alone.
#[tokio::test]
async fn key_rotation_crosses_page_boundaries() {
    use switchboard_store::SecretKey;
    // More than one page of the rotation walk (200 rows).
    const ROWS: usize = 250;
    for (name, mut opts) in testing::backends() {
        let old = SecretKey::generate("old").0;
        let new = SecretKey::generate("new").0;
        let before = with_keys(&mut opts, &[&old]).await;
        let mut ids = Vec::with_capacity(ROWS);
        for _ in 0..ROWS {
            let rec = record("t", "a");
            before.insert(&rec).await.unwrap();
            ids.push(rec.id);
        }

        let both = with_keys(&mut opts, &[&new, &old]).await;
        assert_eq!(both.rotate_keys().await.unwrap(), ROWS as u64, "{name}");
        assert_eq!(both.rotate_keys().await.unwrap(), 0, "{name}: idempotent");

        let only_new = with_keys(&mut opts, &[&new]).await;
        for id in [&ids[0], &ids[199], &ids[200], &ids[ROWS - 1]] {
            only_new
                .get("t", id)
                .await
                .unwrap_or_else(|e| panic!("{name}: {id} does not open with the new key: {e}"));
        }
    }
}

#[tokio::test]
async fn keys_are_unique_within_a_tenant_only() {
    each_backend(|store| async move {
        let mut first = record("billing", "talkover");
        first.key = Some("calls".into());
        store.insert(&first).await.unwrap();
        // Any number of subscriptions without a key.
        store.insert(&record("billing", "talkover")).await.unwrap();
        store.insert(&record("billing", "talkover")).await.unwrap();

        let mut second = record("billing", "talkover");
        second.key = Some("calls".into());
        let refused = store.insert(&second).await;
        let Err(Error::Taken(field)) = refused else {
            panic!("a second subscription got the key: {refused:?}");
        };
        assert_eq!(field.pointer, "/key");

        let mut other_tenant = record("support", "talkover");
        other_tenant.key = Some("calls".into());
        store.insert(&other_tenant).await.unwrap();

        let found = store
            .find_by_key("billing", "calls")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (found.id.as_str(), found.key.as_deref()),
            (first.id.as_str(), Some("calls"))
        );
        let theirs = store
            .find_by_key("support", "calls")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(theirs.id, other_tenant.id);
        assert!(
            store
                .find_by_key("billing", "nope")
                .await
                .unwrap()
                .is_none()
        );

        // The key is written with the rest of the record.
        let mut renamed = found;
        renamed.key = Some("calls-v2".into());
        store.update(&renamed).await.unwrap();
        assert!(
            store
                .find_by_key("billing", "calls")
                .await
                .unwrap()
                .is_none()
        );
        let row = store.get("billing", &first.id).await.unwrap();
        assert_eq!(row.key.as_deref(), Some("calls-v2"));
    })
    .await;
}

#[tokio::test]
async fn text_and_times_are_stored_exactly_as_given() {
    // Quotes, backslashes, placeholders and escapes in text come back as
    // they went in, through every write and read path (the SQLite writer
    // and inline reads bind values themselves); timestamps to the
    // microsecond.
    let awkward = r#"a'b''c\d\\e $1 $2 E'\n' "q" ; -- /* ü 日本 🙂 */"#;
    each_backend(|store| async move {
        let mut rec = record(awkward, "talkover");
        rec.key = Some(format!("key {awkward}"));
        rec.last_error = Some(format!("error {awkward}\nsecond line\ttab"));
        rec.warnings = vec![awkward.into()];
        rec.natives[0].native_id = format!("native {awkward}");
        rec.natives[0].events = vec![awkward.into()];
        store.insert(&rec).await.unwrap();
        let got = store
            .find_by_key(awkward, rec.key.as_deref().unwrap())
            .await
            .unwrap()
            .expect("found by its key");
        assert_eq!(got.tenant, rec.tenant);
        assert_eq!(got.key, rec.key);
        assert_eq!(got.last_error, rec.last_error);
        assert_eq!(got.warnings, rec.warnings);
        assert_eq!(got.natives[0].native_id, rec.natives[0].native_id);
        assert_eq!(got.natives[0].events, rec.natives[0].events);
        assert_eq!(
            got.created_at.timestamp_micros(),
            rec.created_at.timestamp_micros()
        );

        let saved = store.update(&got).await.unwrap();
        let again = store.get(awkward, &rec.id).await.unwrap();
        assert_eq!(
            again.updated_at.timestamp_micros(),
            saved.updated_at.timestamp_micros()
        );
    })
    .await;
}

#[tokio::test]
async fn a_refused_guard_undoes_the_whole_script() {
    each_backend(|store| async move {
        let rec = record("t", "talkover");
        store.insert(&rec).await.unwrap();
        let current = store.update(&rec).await.unwrap();

        // The stale write's version check is refused: its deletion and
        // rewrite of the natives, which come after it, do not happen.
        let mut stale = rec.clone();
        stale.natives.clear();
        assert!(matches!(
            store.update(&stale).await,
            Err(Error::Conflict(_))
        ));
        // The deletion of another tenant's row is refused: the deletion
        // of the natives, which comes before it, is undone.
        assert!(matches!(
            store.delete("other", &rec.id).await,
            Err(Error::NotFound { .. })
        ));
        let got = store.get("t", &rec.id).await.unwrap();
        assert_eq!(got.version, current.version);
        assert_eq!(got.natives.len(), 1);
        assert_eq!(got.natives[0].native_id, "n1");
    })
    .await;
}

/// An update rewrites the natives it keeps, drops the ones it lost and
/// adds new ones, in one write; two natives given with one key leave the
/// last (on Postgres such a script is not run as one statement, whose
/// second insert could not rewrite the first's row).
#[tokio::test]
async fn an_update_rewrites_keeps_drops_and_adds_natives() {
    each_backend(|store| async move {
        let mut rec = record("t", "talkover");
        let first = rec.natives[0].clone();
        let native = |key: &str, id: &str| NativeRecord {
            key: key.into(),
            native_id: id.into(),
            ..first.clone()
        };
        rec.natives = vec![native("a", "n1"), native("b", "n2")];
        store.insert(&rec).await.unwrap();

        rec.natives = vec![native("a", "n1-new"), native("c", "n3")];
        let rec = store.update(&rec).await.unwrap();
        let got = store.get("t", &rec.id).await.unwrap();
        let ids: Vec<(&str, &str)> = got
            .natives
            .iter()
            .map(|n| (n.key.as_str(), n.native_id.as_str()))
            .collect();
        assert_eq!(ids, [("a", "n1-new"), ("c", "n3")]);

        let mut twice = got.clone();
        twice.natives = vec![native("d", "n4"), native("d", "n5")];
        store.update(&twice).await.unwrap();
        let got = store.get("t", &rec.id).await.unwrap();
        assert_eq!(got.natives.len(), 1);
        assert_eq!(got.natives[0].native_id, "n5");
    })
    .await;
}

/// `fut` polled at most `polls` times, the runtime given a turn between
/// polls; `None` when it was not done by then and was dropped (cut off,
/// as a request that timed out or a caller that went away cuts it).
async fn cut_after<F: std::future::Future>(polls: usize, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    for _ in 0..polls {
        let polled = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(out) = polled {
            return Some(out);
        }
        tokio::task::yield_now().await;
    }
    None
}

/// Writes cut off at every point of their way leave no connection inside
/// a transaction: the writes after them are committed, as a second store
/// on the same database sees, and each cut-off write happened whole or
/// not at all. Cut after a number of polls, not a time, so that some are
/// cut on any machine: a write is never done at its first poll (it waits
/// for the writer thread or for Postgres).
#[tokio::test]
async fn writes_cut_off_midway_leave_no_transaction_behind() {
    for (name, opts) in testing::backends() {
        let store = Store::connect(&opts).await.unwrap();
        let mut cut = Vec::new();
        let mut kept = Vec::new();
        for i in 0..200 {
            let rec = record("t", "talkover");
            match cut_after(1 + i % 16, store.insert(&rec)).await {
                Some(done) => done.unwrap(),
                None => cut.push(rec.id.clone()),
            }
            kept.push(rec.id);
        }
        // A delete is a transaction of two statements (the natives, then
        // the guarded row) on either backend.
        for (i, id) in kept.into_iter().enumerate() {
            if cut_after(1 + i % 16, store.delete("t", &id))
                .await
                .is_none()
            {
                cut.push(id);
            }
        }
        assert!(!cut.is_empty(), "{name}: no write was cut off");
        let after: Vec<_> = (0..20).map(|_| record("t", "talkover")).collect();
        for rec in &after {
            store.insert(rec).await.unwrap();
        }
        let other = Store::connect(&opts).await.unwrap();
        for rec in &after {
            let got = other.get("t", &rec.id).await;
            assert!(got.is_ok(), "{name}: a later write is not visible: {got:?}");
        }
        for id in cut {
            match other.get("t", &id).await {
                Ok(got) => assert_eq!(got.natives.len(), 1, "{name}: {id} half written"),
                Err(Error::NotFound { .. }) => {}
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
}

/// Postgres: connections the hot reads keep between uses go back to the
/// pool once idle, so work that takes its connection from the pool alone
/// (here two account locks, each holding one) is not left waiting for
/// them. With a pool of 4, the reads keep 3; without the give-back the
/// second lock waits out the pool's acquire timeout and fails.
#[tokio::test]
async fn kept_connections_go_back_to_the_pool_when_idle() {
    let Some(opts) = testing::postgres() else {
        return;
    };
    assert_eq!(opts.max_connections, 4);
    let store = Store::connect(&opts).await.unwrap();
    let rec = record("t", "talkover");
    store.insert(&rec).await.unwrap();
    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (store, id) = (store.clone(), rec.id.clone());
        reads.spawn(async move { store.get("t", &id).await });
    }
    while let Some(got) = reads.join_next().await {
        assert_eq!(got.unwrap().unwrap().id, rec.id);
    }
    let a = store.lock_account("sendblue/acct-1").await.unwrap();
    let b = store.lock_account("sendblue/acct-2").await.unwrap();
    b.release().await;
    a.release().await;
    // The reads still work after the locks.
    assert_eq!(store.get("t", &rec.id).await.unwrap().id, rec.id);
}
