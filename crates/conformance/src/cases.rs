//! The cases: behaviours every provider adapter shows against its
//! simulator, driven only through [`ProviderAdapter`]. Where kinds differ
//! by capability a case checks each kind on the path its capabilities
//! select, so every case asserts something for every kind.

use serde_json::json;
use switchboard_core::{
    CallbackAuth, CallbackUrl, Error, EventName, EventsPerResource, IngressRefusal, NativePlan,
    ProviderAdapter, Secret, UpstreamErrorKind,
};
use switchboard_sim::deliveries::DeliveryReport;

use crate::Harness;
use crate::receiver::Receiver;
use crate::spec::{self, CHANGED_URL, URL, plans};

fn upstream_kind(e: Error) -> UpstreamErrorKind {
    match e {
        Error::Upstream(u) => u.kind,
        other => panic!("expected an upstream error, got {other:?}"),
    }
}

/// Creates every plan and checks each resource reads back as planned.
async fn create_all(
    a: &dyn ProviderAdapter,
    account: Option<&str>,
    plans: &[NativePlan],
) -> Vec<String> {
    let mut ids = Vec::new();
    for plan in plans {
        let created = a.create(account, plan).await.expect("create");
        assert_eq!(created.events, plan.events, "created events");
        assert!(created.enabled, "a created resource is enabled");
        let got = a.get(account, &created.id).await.expect("get");
        assert_eq!(got.id, created.id);
        assert_eq!(got.events, plan.events);
        assert!(got.enabled);
        ids.push(created.id);
    }
    ids
}

/// Create → get → list → delete → get is NotFound → delete again succeeds.
pub async fn create_get_list_delete(h: &Harness) {
    let a = h.adapter();
    let spec = spec::spec(h.adapter(), h.account());
    let account = spec.account.as_deref();
    let plans = plans(a, &spec);
    let ids = create_all(a, account, &plans).await;
    for id in &ids {
        let got = a.get(account, id).await.expect("get");
        assert_eq!(got.url.as_deref(), Some(URL));
    }
    let listed = a.list(account).await.expect("list");
    for id in &ids {
        assert!(listed.iter().any(|r| &r.id == id), "list contains {id}");
    }
    for id in &ids {
        a.delete(account, id).await.expect("delete");
        assert_eq!(
            upstream_kind(a.get(account, id).await.unwrap_err()),
            UpstreamErrorKind::NotFound
        );
        a.delete(account, id)
            .await
            .expect("deleting twice succeeds");
    }
}

/// Every native event the catalog lists for the kind (through its
/// normalized name where it has one) is accepted by the simulator, which
/// knows the provider's documented event names; a typo or a name the
/// provider does not offer fails here. The plans split the events as
/// [`EventsPerResource`] says and together carry each native event once.
pub async fn every_catalog_event_is_accepted(h: &Harness) {
    let kind = h.kind();
    let a = h.adapter();
    let spec = spec::every_event_spec(h.adapter(), h.account());
    let account = spec.account.as_deref();
    let natives = spec::natives(kind);
    assert_eq!(
        spec::resolve(kind, &spec),
        natives,
        "resolution keeps order"
    );
    let plans = plans(a, &spec);
    let planned: Vec<&String> = plans.iter().flat_map(|p| &p.events).collect();
    assert_eq!(
        planned,
        natives.iter().collect::<Vec<_>>(),
        "each event once"
    );
    for plan in &plans {
        match a.capabilities().events_per_resource {
            EventsPerResource::Many => assert_eq!(plans.len(), 1, "one resource holds all"),
            EventsPerResource::One => assert_eq!(plan.events.len(), 1, "{:?}", plan.events),
            EventsPerResource::JoinedMaxChars { max_chars } => {
                assert!(plan.events.join(",").chars().count() <= max_chars)
            }
        }
    }
    let ids = create_all(a, account, &plans).await;
    for id in &ids {
        a.delete(account, id).await.expect("delete");
    }
}

/// What `preview` shows is exactly what `create` sends.
pub async fn preview_is_what_create_sends(h: &Harness) {
    let a = h.adapter();
    let spec = spec::spec(h.adapter(), h.account());
    let plans = plans(a, &spec);
    let previewed: Vec<_> = a
        .preview(spec.account.as_deref(), &plans)
        .into_iter()
        .map(|r| r.body.expect("a create has a body"))
        .collect();
    assert_eq!(previewed.len(), plans.len(), "one request per plan");
    let before = h.received_bodies().len();
    for plan in &plans {
        a.create(spec.account.as_deref(), plan)
            .await
            .expect("create");
    }
    let sent: Vec<_> = h.received_bodies()[before..].to_vec();
    assert_eq!(sent, previewed);
}

/// An update changes the callback URL; the resource is found under the id
/// the update returns (kinds whose identity is the URL get a new one, and
/// then the old identity is gone), and a no-op update changes nothing.
pub async fn update_changes_only_what_differs(h: &Harness) {
    let a = h.adapter();
    let spec = spec::spec(h.adapter(), h.account());
    let account = spec.account.as_deref();
    let old = plans(a, &spec);
    let changed = spec
        .clone()
        .with(|d| d.url = CallbackUrl::parse(CHANGED_URL).unwrap())
        .unwrap();
    let new = plans(a, &changed);
    assert_eq!(
        old.len(),
        new.len(),
        "a URL change keeps the resource split"
    );
    for (o, n) in old.iter().zip(&new) {
        let created = a.create(account, o).await.expect("create");
        let updated = a.update(account, &created.id, o, n).await.expect("update");
        let got = a.get(account, &updated.id).await.expect("get");
        assert_eq!(got.url.as_deref(), Some(CHANGED_URL));
        assert_eq!(got.events, n.events);
        if updated.id != created.id {
            assert_eq!(
                upstream_kind(a.get(account, &created.id).await.unwrap_err()),
                UpstreamErrorKind::NotFound,
                "a replaced resource is gone"
            );
        }
        let before = h.received_bodies().len();
        let unchanged = a
            .update(account, &updated.id, n, n)
            .await
            .expect("no-op update");
        assert_eq!(unchanged.id, updated.id);
        assert_eq!(
            h.received_bodies().len(),
            before,
            "a no-op update writes nothing"
        );
    }
    assert_eq!(a.list(account).await.expect("list").len(), new.len());
}

/// Disable and enable on the path the kind's capabilities select, the one
/// the engine takes (`Engine::wanted` in crates/engine): with
/// `native_disable` the plans carry the switch and an update flips it in
/// place; without it the plans cannot express "disabled", so disabling
/// deletes every resource and enabling creates them again.
pub async fn disable_and_enable(h: &Harness) {
    let a = h.adapter();
    let spec = spec::spec(h.adapter(), h.account());
    let account = spec.account.as_deref();
    let on = plans(a, &spec);
    let off_spec = spec.clone().with(|d| d.enabled = false).unwrap();
    let off = plans(a, &off_spec);
    let ids = create_all(a, account, &on).await;
    if a.capabilities().native_disable {
        assert_ne!(on, off, "the plans carry the switch");
        for ((p_on, p_off), id) in on.iter().zip(&off).zip(&ids) {
            a.update(account, id, p_on, p_off).await.expect("disable");
            assert!(!a.get(account, id).await.expect("get").enabled);
            a.update(account, id, p_off, p_on).await.expect("enable");
            assert!(a.get(account, id).await.expect("get").enabled);
        }
    } else {
        assert_eq!(on, off, "without native disable the plans ignore `enabled`");
        for id in &ids {
            a.delete(account, id).await.expect("disable deletes");
        }
        assert!(
            a.list(account).await.expect("list").is_empty(),
            "a disabled subscription leaves nothing at the provider"
        );
        let again = create_all(a, account, &on).await;
        let listed = a.list(account).await.expect("list");
        assert_eq!(listed.len(), on.len(), "enabling recreates every resource");
        for id in &again {
            assert!(
                listed.iter().any(|r| &r.id == id && r.enabled),
                "{id} is back"
            );
        }
    }
}

/// Provider failures are classified the same way for every kind.
pub async fn errors_are_classified(h: &Harness) {
    let a = h.adapter();
    let spec = spec::spec(h.adapter(), h.account());
    let account = spec.account.as_deref();
    let plan = plans(a, &spec).remove(0);

    h.fail_next(500, None);
    assert_eq!(
        upstream_kind(a.create(account, &plan).await.unwrap_err()),
        UpstreamErrorKind::Unavailable
    );
    h.fail_next(503, None);
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::Unavailable
    );
    h.fail_next(504, None);
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::Timeout
    );
    h.fail_next(429, Some(7));
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::RateLimited {
            retry_after: Some(std::time::Duration::from_secs(7))
        }
    );
    h.drop_next();
    assert_eq!(
        upstream_kind(a.list(account).await.unwrap_err()),
        UpstreamErrorKind::Unavailable
    );

    let bad = h.adapter_with_bad_credentials();
    assert_eq!(
        upstream_kind(bad.create(account, &plan).await.unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );
    assert_eq!(
        upstream_kind(bad.list(account).await.unwrap_err()),
        UpstreamErrorKind::Unauthorized
    );

    assert_eq!(
        upstream_kind(
            a.get(account, "00000000-0000-4000-8000-000000000000")
                .await
                .unwrap_err()
        ),
        UpstreamErrorKind::NotFound
    );
    // After the injected faults the provider works again and nothing leaked.
    assert!(a.list(account).await.expect("list").is_empty());
}

/// The public origin the relay case registers its ingress URL under.
const PUBLIC_ORIGIN: &str = "https://relay.example.com";

/// Relay mode (issue 13): a native registered through the adapter with a
/// generated credential, placed in the spec field the kind's
/// [`switchboard_core::Ingress::credential`] names, gets deliveries from the
/// simulator made exactly as the provider documents them, and the kind's
/// ingress check accepts them: the same verdict and extraction for a
/// retried delivery (which the caller then drops by dedup id or content
/// hash), the native event it names or, when it names none, the one event
/// the native was registered for, normalized through the catalog back to
/// the caller's name. A corrupted credential or signature is refused, and
/// so is a delivery older than the kind's `max_age` where it has one.
pub async fn ingress_verifies_simulated_deliveries(h: &Harness) {
    let kind = h.kind();
    let ingress = switchboard_registry::find(kind)
        .expect("a registered kind")
        .ingress;
    let a = h.adapter();
    let caps = a.capabilities();
    let native = spec::natives(kind)
        .iter()
        .find(|n| !caps.unsigned_events.contains(&n.as_str()))
        .expect("an event a relay native can authenticate");
    let secret = format!("sb-relay-{kind}-0b1c2d3e4f5a6b7c");
    let url = format!("{PUBLIC_ORIGIN}/ingress/rt_conformance?v=1");
    let mut draft =
        spec::with_events(a, h.account(), vec![EventName::Native(native.clone())]).into_draft();
    draft.url = CallbackUrl::parse(&url).expect("a valid URL");
    draft.auth = CallbackAuth::None;
    draft.signing_secret = None;
    ingress
        .credential
        .apply(&mut draft, Secret::new(secret.clone()));
    let relay_spec = draft.validate().expect("a valid relay spec");
    let account = relay_spec.account.as_deref();
    let plan = plans(a, &relay_spec).remove(0);
    let created = a.create(account, &plan).await.expect("create");

    let receiver = Receiver::start(ingress, PUBLIC_ORIGIN, &secret).await;
    let order = |extra: serde_json::Value| {
        let mut order = json!({"url": url, "deliver_to": receiver.origin});
        order
            .as_object_mut()
            .expect("an object")
            .extend(extra.as_object().expect("an object").clone());
        order
    };
    let statuses = |r: &DeliveryReport| r.attempts.iter().map(|a| a.status).collect::<Vec<_>>();

    let genuine = h.deliver(order(json!({"repeat": 2}))).await;
    assert_eq!(statuses(&genuine), [Some(204), Some(204)], "{genuine:?}");
    let outcomes = receiver.outcomes();
    let first = outcomes[0].clone().expect("a genuine delivery verifies");
    assert_eq!(outcomes[1], Ok(first.clone()), "a retry verifies the same");
    if let Some(named) = &first.native_event {
        assert_eq!(named, native, "the delivery names the registered event");
    }
    let named = first.native_event.as_deref().unwrap_or(native);
    assert_eq!(
        spec::catalog().normalized_name(kind, named),
        spec::caller_name(kind, native).to_string()
    );
    assert_eq!(
        first.payload, genuine.body,
        "the payload is relayed unchanged"
    );

    let corrupt = h.deliver(order(json!({"corrupt": true}))).await;
    assert_eq!(statuses(&corrupt), [Some(401)]);
    assert!(
        matches!(
            receiver.outcomes()[2],
            Err(IngressRefusal::Unauthenticated | IngressRefusal::BadSignature)
        ),
        "{:?}",
        receiver.outcomes()[2]
    );

    let age = ingress
        .max_age
        .unwrap_or(std::time::Duration::from_secs(24 * 3600));
    let dated = chrono::Utc::now().timestamp() - age.as_secs() as i64 - 3600;
    let old = h.deliver(order(json!({"timestamp": dated}))).await;
    match ingress.max_age {
        Some(_) => {
            assert_eq!(statuses(&old), [Some(401)]);
            assert_eq!(receiver.outcomes()[3], Err(IngressRefusal::Stale));
        }
        None => assert_eq!(statuses(&old), [Some(204)], "nothing dated is checked"),
    }
    a.delete(account, &created.id).await.expect("delete");
}
