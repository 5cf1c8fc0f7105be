//! Every registered kind's test fixture works: an adapter built from the
//! accepted table through the descriptor lists, one built from the refused
//! table is refused as unauthorized, and faults reach the simulator.

use std::sync::Arc;

use switchboard_core::{Error, Transport, UpstreamErrorKind};
use switchboard_sim::faults::Fault;
use switchboard_transport::{HttpTransport, TransportConfig};

fn transport() -> Arc<dyn Transport> {
    let config = TransportConfig {
        max_attempts: 1,
        ..TransportConfig::default()
    };
    Arc::new(HttpTransport::new(config, Default::default()).unwrap())
}

fn upstream_kind(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

#[tokio::test]
async fn every_fixture_accepts_its_table_and_refuses_the_other() {
    for k in switchboard_registry::kinds() {
        let fx = k.simulator.fixture().await;
        let account = fx.account.as_deref();
        let good = k.build(k.name, fx.table.clone(), transport()).unwrap();
        let listed = good.list(account).await;
        assert!(listed.is_ok(), "{}: {listed:?}", k.name);
        let bad = k
            .build(k.name, fx.refused_table.clone(), transport())
            .unwrap();
        let refused = bad.list(account).await.unwrap_err();
        assert_eq!(
            upstream_kind(refused),
            UpstreamErrorKind::Unauthorized,
            "{}",
            k.name
        );

        fx.harness.clear_requests();
        fx.harness
            .inject(Fault::status(500).on_path(fx.operations_path))
            .unwrap();
        let failed = good.list(account).await.unwrap_err();
        assert_eq!(
            upstream_kind(failed),
            UpstreamErrorKind::Unavailable,
            "{}",
            k.name
        );
        let log = fx.harness.requests();
        assert!(
            log.iter().any(|r| r.path.contains(fx.operations_path)),
            "{}",
            k.name
        );
    }
}

#[tokio::test]
async fn simulator_default_accounts_match_the_fixture() {
    for k in switchboard_registry::kinds() {
        let fx = k.simulator.fixture().await;
        match fx.account {
            Some(a) => assert!(
                k.simulator.default_accounts.contains(&a.as_str()),
                "{}",
                k.name
            ),
            None => assert!(k.simulator.default_accounts.is_empty(), "{}", k.name),
        }
    }
}
