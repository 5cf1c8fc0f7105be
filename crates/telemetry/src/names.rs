//! Every metric Switchboard exports, named and described once: its name,
//! type, unit, label keys and help text. The recording functions
//! (`record.rs`) and the registration of help texts ([`describe`]) read
//! this list, and docs/operations.md lists the same names (a test checks).
//!
//! Label values are bounded by construction: route templates, methods,
//! status classes, provider keys (operator-chosen in config), provider
//! kinds, and the fixed vocabularies of `record.rs`. No subscription id,
//! tenant, URL or other caller-chosen string is ever a label.

use metrics::Unit;

/// How a metric behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

/// One exported metric.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The exported name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// What one unit of its value is.
    pub unit: Unit,
    /// Its label keys, in the order they are documented.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
}

const fn counter(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: Unit::Count,
        labels,
        help,
    }
}

const fn seconds(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram,
        unit: Unit::Seconds,
        labels,
        help,
    }
}

const fn gauge(name: &'static str, labels: &'static [&'static str], help: &'static str) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        unit: Unit::Count,
        labels,
        help,
    }
}

/// `1`, labelled with the version of the running binary.
pub const BUILD_INFO: Metric = gauge(
    "switchboard_build_info",
    &["version"],
    "Always 1; the label carries the running version.",
);

/// API requests answered.
pub const HTTP_REQUESTS: Metric = counter(
    "switchboard_http_requests_total",
    &["route", "method", "status_class"],
    "API requests answered, by route template (`unmatched` for no route), method and status class.",
);

/// How long API requests took to answer.
pub const HTTP_REQUEST_DURATION: Metric = seconds(
    "switchboard_http_request_duration_seconds",
    &["route", "method", "status_class"],
    "Time from receiving an API request to sending its response head.",
);

/// Adapter calls to a provider (one create, update, delete, get or list,
/// whatever HTTP requests it takes).
pub const UPSTREAM_CALLS: Metric = counter(
    "switchboard_upstream_calls_total",
    &["provider", "kind", "operation", "outcome"],
    "Calls to a provider instance by operation and outcome (ok, rejected, rate_limited, unavailable, timeout, unknown_outcome).",
);

/// How long adapter calls took, transport retries and waits included.
pub const UPSTREAM_CALL_DURATION: Metric = seconds(
    "switchboard_upstream_call_duration_seconds",
    &["provider", "kind", "operation", "outcome"],
    "Duration of calls to a provider instance, the transport's retries and waits included.",
);

/// HTTP requests sent to providers, each attempt counted.
pub const UPSTREAM_REQUESTS: Metric = counter(
    "switchboard_upstream_requests_total",
    &["provider", "status_class"],
    "HTTP requests sent to a provider instance (every attempt), by status class, or timeout, connect_error or interrupted when no answer came.",
);

/// Upstream retries: the transport's (same request again) and the
/// engine's (a step tried again after a transient failure).
pub const UPSTREAM_RETRIES: Metric = counter(
    "switchboard_upstream_retries_total",
    &["provider", "layer"],
    "Retries of upstream requests: layer `transport` repeats one HTTP request, layer `step` repeats a native step after a transient failure.",
);

/// Requests held back by a provider instance's own limits.
pub const UPSTREAM_WAITS: Metric = counter(
    "switchboard_upstream_waits_total",
    &["provider", "limit"],
    "Requests that waited for a provider instance's rate limit (`rate`) or concurrency cap (`concurrency`).",
);

/// How long those requests waited.
pub const UPSTREAM_WAIT_DURATION: Metric = seconds(
    "switchboard_upstream_wait_seconds",
    &["provider", "limit"],
    "Time requests waited for a provider instance's rate limit or concurrency cap.",
);

/// Journal entries opened by changes.
pub const JOURNAL_STARTED: Metric = counter(
    "switchboard_journal_entries_started_total",
    &["operation"],
    "Changes journalled and claimed, by operation (create, update, enable, disable, rotate_secret, delete, reconcile).",
);

/// Journal entries closed, by the state they closed with.
pub const JOURNAL_CLOSED: Metric = counter(
    "switchboard_journal_entries_closed_total",
    &["operation", "state"],
    "Journal entries closed, by operation and state (succeeded, undone, failed, recovered).",
);

/// Native steps whose outcome became unknown.
pub const UNKNOWN_OPENED: Metric = counter(
    "switchboard_unknown_outcomes_opened_total",
    &["provider"],
    "Native steps whose request may have been applied although no usable answer came; each is verified at the provider.",
);

/// How those steps ended.
pub const UNKNOWN_RESOLVED: Metric = counter(
    "switchboard_unknown_outcomes_resolved_total",
    &["provider", "resolution"],
    "Unknown-outcome steps ended: `applied` (the step took effect), `not_applied` (verified absent; the step failed), `unresolved` (left to the sweep).",
);

/// Unknown-outcome steps being verified now.
pub const UNKNOWN_OPEN: Metric = gauge(
    "switchboard_unknown_outcomes_open",
    &["provider"],
    "Unknown-outcome steps this process is verifying right now.",
);

/// Resources the sweep found landed after their change gave up on them.
pub const LATE_LANDINGS: Metric = counter(
    "switchboard_late_landings_total",
    &["provider", "action"],
    "Native resources the sweep found created after their change had given up on them: `adopted` or `removed`.",
);

/// Reconciliation ticks.
pub const RECONCILE_TICK_DURATION: Metric = seconds(
    "switchboard_reconcile_tick_duration_seconds",
    &[],
    "Duration of one tick of the background reconciliation pass.",
);

/// Completed reconciliation passes.
pub const RECONCILE_PASS_DURATION: Metric = seconds(
    "switchboard_reconcile_pass_duration_seconds",
    &[],
    "Wall time of a completed reconciliation pass, from its first tick to its last account.",
);

/// Subscriptions compared with their provider by the pass.
pub const RECONCILE_CHECKED: Metric = counter(
    "switchboard_reconcile_subscriptions_checked_total",
    &["provider"],
    "Subscriptions the reconciliation pass compared with their provider's listing.",
);

/// Differences the pass found.
pub const RECONCILE_FINDINGS: Metric = counter(
    "switchboard_reconcile_findings_total",
    &["provider", "kind"],
    "Differences the reconciliation pass found, by kind (missing, drifted, unknown).",
);

/// Journalled repairs the pass ran.
pub const RECONCILE_REPAIRS: Metric = counter(
    "switchboard_reconcile_repairs_total",
    &["provider"],
    "Subscriptions the reconciliation pass repaired in a journalled change.",
);

/// Upstream requests the pass spent.
pub const RECONCILE_CALLS: Metric = counter(
    "switchboard_reconcile_upstream_calls_total",
    &["provider"],
    "HTTP requests the reconciliation pass sent to a provider instance (listings and repairs).",
);

/// Accounts whose check failed.
pub const RECONCILE_ERRORS: Metric = counter(
    "switchboard_reconcile_account_errors_total",
    &["provider"],
    "Accounts the reconciliation pass could not check (listing or repair failed).",
);

/// Idempotent POSTs answered from the stored first response.
pub const IDEMPOTENCY_REPLAYS: Metric = counter(
    "switchboard_idempotency_replays_total",
    &[],
    "POSTs answered by replaying the stored response of an earlier request with the same Idempotency-Key.",
);

/// Idempotency keys refused.
pub const IDEMPOTENCY_CONFLICTS: Metric = counter(
    "switchboard_idempotency_conflicts_total",
    &["reason"],
    "Idempotency-Key refusals: `in_progress` (409, the first request still runs) or `mismatch` (422, another request used the key).",
);

/// Stored subscriptions.
pub const SUBSCRIPTIONS: Metric = gauge(
    "switchboard_subscriptions",
    &["provider", "status"],
    "Stored subscriptions by provider instance and status, counted at scrape time (cached for metrics.subscriptions_refresh_ms).",
);

/// Provider deliveries answered by the relay ingress.
pub const INGRESS_REQUESTS: Metric = counter(
    "switchboard_ingress_requests_total",
    &["provider", "outcome"],
    "Provider deliveries answered by the relay ingress, by provider instance (`unknown` when the route token is not known) and outcome (accepted, duplicate, refused, not_found, too_large, error).",
);

/// Why the relay ingress refused deliveries.
pub const INGRESS_REFUSALS: Metric = counter(
    "switchboard_ingress_refusals_total",
    &["provider", "reason"],
    "Provider deliveries the relay ingress refused with 401, by reason (unauthenticated, bad_signature, stale, malformed).",
);

/// How long the relay ingress took to answer deliveries.
pub const INGRESS_DURATION: Metric = seconds(
    "switchboard_ingress_request_duration_seconds",
    &["provider", "outcome"],
    "Time from receiving a provider delivery at the relay ingress to answering it; for an accepted one, until its event was durably stored.",
);

/// Relay delivery attempts, by how each ended for its delivery.
pub const RELAY_ATTEMPTS: Metric = counter(
    "switchboard_relay_attempts_total",
    &["provider", "outcome"],
    "Relay delivery attempts by the provider instance the event came from and outcome: `delivered` (2xx), `retry` (due again), `failed` (dead-lettered, or refused without sending), `gone` (410), `lease_lost` (another worker took the delivery over; nothing recorded).",
);

/// How long relay delivery attempts took.
pub const RELAY_ATTEMPT_DURATION: Metric = seconds(
    "switchboard_relay_attempt_duration_seconds",
    &["provider"],
    "Time from sending a relay delivery attempt to the subscriber's response head, or to its failure.",
);

/// From acceptance at the ingress to the subscriber's 2xx.
pub const RELAY_DELIVERY_LATENCY: Metric = seconds(
    "switchboard_relay_delivery_latency_seconds",
    &["provider"],
    "End-to-end latency of delivered relay events: from the ingress accepting the event to the subscriber's 2xx, retries included.",
);

/// Relay deliveries still to make.
pub const RELAY_OUTBOX_DEPTH: Metric = gauge(
    "switchboard_relay_outbox_depth",
    &[],
    "Relay deliveries pending or being attempted, across tenants and replicas (counted by the delivery workers every relay maintenance interval).",
);

/// Every metric, in documentation order.
pub const ALL: &[Metric] = &[
    BUILD_INFO,
    HTTP_REQUESTS,
    HTTP_REQUEST_DURATION,
    UPSTREAM_CALLS,
    UPSTREAM_CALL_DURATION,
    UPSTREAM_REQUESTS,
    UPSTREAM_RETRIES,
    UPSTREAM_WAITS,
    UPSTREAM_WAIT_DURATION,
    JOURNAL_STARTED,
    JOURNAL_CLOSED,
    UNKNOWN_OPENED,
    UNKNOWN_RESOLVED,
    UNKNOWN_OPEN,
    LATE_LANDINGS,
    RECONCILE_TICK_DURATION,
    RECONCILE_PASS_DURATION,
    RECONCILE_CHECKED,
    RECONCILE_FINDINGS,
    RECONCILE_REPAIRS,
    RECONCILE_CALLS,
    RECONCILE_ERRORS,
    IDEMPOTENCY_REPLAYS,
    IDEMPOTENCY_CONFLICTS,
    SUBSCRIPTIONS,
    INGRESS_REQUESTS,
    INGRESS_REFUSALS,
    INGRESS_DURATION,
    RELAY_ATTEMPTS,
    RELAY_ATTEMPT_DURATION,
    RELAY_DELIVERY_LATENCY,
    RELAY_OUTBOX_DEPTH,
];

/// Bucket bounds of the latency histograms, in seconds: from a cached
/// read (milliseconds) to a step that retried to its deadline (a minute).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Bucket bounds of [`RECONCILE_PASS_DURATION`], in seconds: a pass is
/// spread over ticks minutes apart.
pub const PASS_BUCKETS: &[f64] = &[
    1.0, 10.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// Bucket bounds of [`RELAY_DELIVERY_LATENCY`], in seconds: a first
/// attempt takes milliseconds, a retried one up to the schedule's three
/// days.
pub const RELAY_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 300.0, 1800.0, 7200.0, 36000.0,
    86400.0, 259200.0,
];

/// Registers every metric's help text and unit with the installed recorder.
pub fn describe() {
    for m in ALL {
        match m.kind {
            Kind::Counter => metrics::describe_counter!(m.name, m.unit, m.help),
            Kind::Gauge => metrics::describe_gauge!(m.name, m.unit, m.help),
            Kind::Histogram => metrics::describe_histogram!(m.name, m.unit, m.help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in ALL {
            assert!(seen.insert(m.name), "{} is listed twice", m.name);
            assert!(m.name.starts_with("switchboard_"), "{}", m.name);
            match m.kind {
                Kind::Counter => assert!(m.name.ends_with("_total"), "{}", m.name),
                Kind::Histogram => assert!(m.name.ends_with("_seconds"), "{}", m.name),
                Kind::Gauge => assert!(!m.name.ends_with("_total"), "{}", m.name),
            }
            for l in m.labels {
                assert!(
                    !["id", "subscription", "tenant", "url", "account"].contains(l),
                    "{} has an unbounded label {l}",
                    m.name
                );
            }
        }
    }

    #[test]
    fn every_metric_is_documented_for_operators() {
        let doc = include_str!("../../../docs/operations.md");
        for m in ALL {
            assert!(
                doc.contains(&format!("`{}`", m.name)),
                "docs/operations.md does not list {}",
                m.name
            );
        }
    }
}
