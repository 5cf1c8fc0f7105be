//! The subscription counts behind the `switchboard_subscriptions` gauge,
//! on every configured backend.

use chrono::Utc;
use switchboard_core::SubscriptionStatus;
use switchboard_core::testing::draft;
use switchboard_store::{Store, SubscriptionRecord, testing};

fn record(tenant: &str, provider: &str, status: SubscriptionStatus) -> SubscriptionRecord {
    let now = Utc::now();
    SubscriptionRecord {
        id: switchboard_core::ids::subscription_id(),
        tenant: tenant.into(),
        key: None,
        status,
        spec: draft(provider, "https://example.com/h", &["call.ended"])
            .validate()
            .unwrap(),
        warnings: Vec::new(),
        last_error: None,
        version: 1,
        created_at: now,
        updated_at: now,
        natives: Vec::new(),
        last_reconciled_at: None,
        findings: Vec::new(),
    }
}

#[tokio::test]
async fn counts_group_every_tenant_by_provider_and_status() {
    for (name, opts) in testing::backends() {
        eprintln!("backend: {name}");
        let store = Store::connect(&opts).await.unwrap();
        assert!(
            store
                .count_by_provider_and_status()
                .await
                .unwrap()
                .is_empty()
        );
        use SubscriptionStatus::{Active, Disabled};
        for (tenant, provider, status) in [
            ("a", "talkover", Active),
            ("b", "talkover", Active),
            ("a", "talkover", Disabled),
            ("a", "bird", Active),
        ] {
            store
                .insert(&record(tenant, provider, status))
                .await
                .unwrap();
        }
        let mut counts = store.count_by_provider_and_status().await.unwrap();
        counts.sort_by(|x, y| (&x.0, x.1.as_str()).cmp(&(&y.0, y.1.as_str())));
        assert_eq!(
            counts,
            [
                ("bird".to_owned(), Active, 1),
                ("talkover".to_owned(), Active, 2),
                ("talkover".to_owned(), Disabled, 1),
            ],
            "{name}"
        );
    }
}
