//! `Store::import` on every configured backend: imported rows read back
//! like inserted ones (spec opened, natives attached, tenant-scoped), and
//! a batch with a bad row writes nothing.

use chrono::{SubsecRound, Utc};
use switchboard_core::testing::draft;
use switchboard_core::{Secret, SpecDraft, SubscriptionStatus};
use switchboard_store::{ListQuery, NativeRecord, Store, SubscriptionRecord, testing};

fn record(tenant: &str, n: usize) -> SubscriptionRecord {
    // Postgres keeps microseconds; whole milliseconds read back equal.
    let now = Utc::now().trunc_subsecs(3);
    SubscriptionRecord {
        id: switchboard_core::ids::subscription_id(),
        tenant: tenant.into(),
        key: None,
        status: SubscriptionStatus::Active,
        spec: SpecDraft {
            account: Some("9fbef0b7-8d4e-4a08-9207-66c22155721d".into()),
            signing_secret: Some(Secret::new(format!("whsec_{n}"))),
            ..draft(
                "talkover",
                &format!("https://hooks.example.com/{n}"),
                &["call.ended"],
            )
        }
        .validate()
        .unwrap(),
        warnings: vec![],
        last_error: None,
        version: 1,
        created_at: now,
        updated_at: now,
        natives: vec![NativeRecord {
            key: "webhook".into(),
            native_id: format!("native-{n}"),
            events: vec!["event_phone_call_ended".into()],
            enabled: true,
            created_at: now,
        }],
        last_reconciled_at: None,
        findings: vec![],
    }
}

/// Every id of `tenant`, by walking the list.
async fn all_ids(store: &Store, tenant: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list(
                Some(tenant),
                &ListQuery {
                    after,
                    limit: 200,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        ids.extend(page.data.iter().map(|r| r.id.clone()));
        match page.next_cursor {
            Some(c) => after = Some(c),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn imported_rows_read_back_and_a_bad_batch_writes_nothing() {
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        let store = Store::connect(&opts).await.unwrap();
        // More than one statement's worth, over two tenants.
        let records: Vec<SubscriptionRecord> = (0..2_500)
            .map(|n| record(if n % 5 == 0 { "other" } else { "bulk" }, n))
            .collect();
        assert_eq!(store.import(&records).await.unwrap(), 2_500, "{name}");
        assert_eq!(all_ids(&store, "bulk").await.len(), 2_000, "{name}");
        assert_eq!(all_ids(&store, "other").await.len(), 500, "{name}");

        let sample = &records[1_234];
        let got = store.get("bulk", &sample.id).await.unwrap();
        assert_eq!(got.spec, sample.spec, "{name}: the sealed spec opens");
        assert_eq!(got.natives, sample.natives, "{name}");
        assert_eq!(got.version, 1);
        assert!(store.get("other", &sample.id).await.is_err(), "{name}");

        // A batch with an id that exists already fails as a whole.
        let mut batch: Vec<SubscriptionRecord> = (0..10).map(|n| record("bulk", n)).collect();
        batch.push(records[0].clone());
        assert!(store.import(&batch).await.is_err(), "{name}");
        assert!(store.get("bulk", &batch[0].id).await.is_err(), "{name}");
        assert_eq!(all_ids(&store, "bulk").await.len(), 2_000, "{name}");
        assert_eq!(store.import(&[]).await.unwrap(), 0, "{name}");
    }
}
