//! A change's transactions (`open_change`, `progress`, `close_change`):
//! what each writes together, on every configured backend.

use chrono::Utc;
use switchboard_core::operation::{OperationKind, OperationState, Step, StepAction};
use switchboard_core::testing::draft;
use switchboard_core::{Error, SubscriptionStatus};
use switchboard_store::{
    Claim, Close, NativeRecord, NativeWrite, NewOperation, Progress, Settle, Store,
    SubscriptionRecord, testing,
};

fn pending(tenant: &str) -> SubscriptionRecord {
    let now = Utc::now();
    SubscriptionRecord {
        id: switchboard_core::ids::subscription_id(),
        tenant: tenant.into(),
        key: None,
        status: SubscriptionStatus::Pending,
        spec: draft("talkover", "https://example.com/h", &["call.ended"])
            .validate()
            .unwrap(),
        warnings: vec![],
        last_error: None,
        version: 0,
        created_at: now,
        updated_at: now,
        natives: vec![],
        last_reconciled_at: None,
        findings: vec![],
    }
}

fn native(key: &str, id: &str) -> NativeRecord {
    NativeRecord {
        key: key.into(),
        native_id: id.into(),
        events: vec!["event_phone_call_ended".into()],
        enabled: true,
        created_at: Utc::now(),
    }
}

fn op<'a>(rec: &'a SubscriptionRecord, kind: OperationKind) -> NewOperation<'a> {
    NewOperation {
        tenant: &rec.tenant,
        subscription_id: &rec.id,
        kind,
        actor: "t",
        before: None,
        after: Some(&rec.spec),
    }
}

const LEASE: std::time::Duration = std::time::Duration::from_secs(30);

async fn each_backend<F, Fut>(f: F)
where
    F: Fn(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        f(Store::connect(&opts).await.unwrap()).await;
    }
}

#[tokio::test]
async fn a_create_is_opened_progressed_and_closed_with_every_step_in_order() {
    each_backend(|store| async move {
        let rec = pending("t");
        let op_id = store
            .open_change(
                &op(&rec, OperationKind::Create),
                LEASE,
                Claim::Insert(&rec),
                None,
            )
            .await
            .unwrap();
        let row = store.get("t", &rec.id).await.unwrap();
        assert_eq!(row.status, SubscriptionStatus::Pending);
        assert_eq!(row.version, 0);

        // The first native, written before the second request with its
        // in-flight mark; then the second, with the result.
        let first = [Step::now(StepAction::Create, "a", "n1")];
        let progress = Progress {
            natives: &[NativeWrite::Record(native("a", "n1"))],
            steps: &first,
            first_steps: true,
            settle: Settle::At(Utc::now()),
        };
        store
            .progress(&op_id, "t", &rec.id, &progress)
            .await
            .unwrap();
        assert!(store.native_is_recorded("n1").await.unwrap());

        let second = [Step::now(StepAction::Create, "b", "n2")];
        let mut done = rec.clone();
        done.status = SubscriptionStatus::Active;
        done.natives = vec![native("a", "n1"), native("b", "n2")];
        let last = Progress {
            natives: &[NativeWrite::Record(native("b", "n2"))],
            steps: &second,
            first_steps: false,
            settle: Settle::Keep,
        };
        let stored = store
            .close_change(
                &op_id,
                "t",
                &rec.id,
                &last,
                Close::Store(&done),
                OperationState::Succeeded,
                None,
            )
            .await
            .unwrap()
            .expect("a stored record");
        assert_eq!(stored.version, 1);

        let row = store.get("t", &rec.id).await.unwrap();
        assert_eq!((row.status, row.version), (SubscriptionStatus::Active, 1));
        let ids: Vec<&str> = row.natives.iter().map(|n| n.native_id.as_str()).collect();
        assert_eq!(ids, ["n1", "n2"]);
        let entry = store.operation(&op_id).await.unwrap().unwrap();
        assert_eq!(entry.state, OperationState::Succeeded);
        assert!(entry.finished_at.is_some());
        assert_eq!(entry.steps, [first[0].clone(), second[0].clone()]);
    })
    .await;
}

#[tokio::test]
async fn a_refused_claim_is_journalled_failed_and_changes_nothing() {
    each_backend(|store| async move {
        let mut rec = pending("t");
        rec.status = SubscriptionStatus::Active;
        rec.version = 1;
        store.insert(&rec).await.unwrap();
        let refused = store
            .open_change(
                &op(&rec, OperationKind::Update),
                LEASE,
                Claim::Version(7),
                None,
            )
            .await;
        assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
        let row = store.get("t", &rec.id).await.unwrap();
        assert_eq!((row.status, row.version), (SubscriptionStatus::Active, 1));
        let (ops, _) = store.list_operations("t", &rec.id, 10, None).await.unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].state, OperationState::Failed);
        assert!(
            ops[0]
                .error
                .as_deref()
                .unwrap_or_default()
                .contains("change in progress")
        );
    })
    .await;
}

#[tokio::test]
async fn a_close_that_fails_writes_nothing_of_it() {
    each_backend(|store| async move {
        let rec = pending("t");
        let op_id = store
            .open_change(
                &op(&rec, OperationKind::Create),
                LEASE,
                Claim::Insert(&rec),
                None,
            )
            .await
            .unwrap();
        // A stale version: the guarded write refuses, so the steps and the
        // close given with it must not be written either.
        let mut stale = rec.clone();
        stale.version = 5;
        let steps = [Step::now(StepAction::Create, "a", "n1")];
        let last = Progress {
            natives: &[],
            steps: &steps,
            first_steps: true,
            settle: Settle::Keep,
        };
        let closed = store
            .close_change(
                &op_id,
                "t",
                &rec.id,
                &last,
                Close::Store(&stale),
                OperationState::Succeeded,
                None,
            )
            .await;
        assert!(matches!(closed, Err(Error::Conflict(_))), "{closed:?}");
        let entry = store.operation(&op_id).await.unwrap().unwrap();
        assert_eq!(entry.state, OperationState::Running);
        assert!(entry.steps.is_empty());
        assert_eq!(store.get("t", &rec.id).await.unwrap().version, 0);
    })
    .await;
}

#[tokio::test]
async fn a_rekeying_claim_meets_the_unique_index_and_its_release_gives_the_key_back() {
    each_backend(|store| async move {
        let mut taken = pending("t");
        taken.key = Some("billing".into());
        taken.status = SubscriptionStatus::Active;
        taken.version = 1;
        store.insert(&taken).await.unwrap();
        let mut rec = pending("t");
        rec.key = Some("old".into());
        rec.status = SubscriptionStatus::Active;
        rec.version = 1;
        store.insert(&rec).await.unwrap();

        let update = op(&rec, OperationKind::Update);
        let refused = store
            .open_change(
                &update,
                LEASE,
                Claim::Rekey {
                    version: 1,
                    key: Some("billing"),
                },
                None,
            )
            .await;
        let Err(Error::Taken(field)) = refused else {
            panic!("a taken key was claimed: {refused:?}");
        };
        assert_eq!(field.pointer, "/key");
        let row = store.get("t", &rec.id).await.unwrap();
        assert_eq!(
            (row.status, row.key.as_deref()),
            (SubscriptionStatus::Active, Some("old"))
        );

        let op_id = store
            .open_change(
                &update,
                LEASE,
                Claim::Rekey {
                    version: 1,
                    key: Some("new"),
                },
                None,
            )
            .await
            .unwrap();
        let claimed = store.find_by_key("t", "new").await.unwrap().unwrap();
        assert_eq!(
            (claimed.id.as_str(), claimed.status),
            (rec.id.as_str(), SubscriptionStatus::Pending)
        );
        store
            .release_change(
                &op_id,
                "t",
                &rec.id,
                SubscriptionStatus::Active,
                None,
                Some(Some("old")),
                OperationState::Undone,
                None,
            )
            .await
            .unwrap();
        assert!(store.find_by_key("t", "new").await.unwrap().is_none());
        let row = store.find_by_key("t", "old").await.unwrap().unwrap();
        assert_eq!((row.id, row.status), (rec.id, SubscriptionStatus::Active));
    })
    .await;
}
