//! Recording: one function per event Switchboard counts, so every label
//! key is written here once and every fixed label vocabulary is an enum.
//! Without an installed recorder (unit tests, tools) these do nothing.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram, counter, gauge, histogram};

use crate::names::*;

/// The status class of an HTTP status (`2xx`).
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// A request method as a label: the standard ones by name, anything else
/// (a caller can send any token) as `other`.
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

/// The labelled handles of one (route, method, status class).
fn http_request_handles(route: &str, method: &str, class: &str) -> RequestHandles {
    let labels = [
        ("route", route.to_owned()),
        ("method", method.to_owned()),
        ("status_class", class.to_owned()),
    ];
    (
        counter!(HTTP_REQUESTS.name, &labels),
        histogram!(HTTP_REQUEST_DURATION.name, &labels),
    )
}

/// The API's request count and duration. Each (route, method, status
/// class) is looked up in the recorder once and its handles kept: building
/// the labelled key and finding it in the registry on every request cost
/// about 3% of a cheap request (docs/benchmarks.md). Make it once the
/// recorder is installed: handles found before stay with the recorder of
/// that time.
#[derive(Default)]
pub struct HttpRequests {
    /// By route template, then by method and status class label.
    handles: RwLock<HashMap<String, RouteHandles>>,
}

/// One route's handles, by method and status class label.
type RouteHandles = HashMap<(&'static str, &'static str), RequestHandles>;

/// The request counter and duration histogram of one label set.
type RequestHandles = (Counter, Histogram);

impl HttpRequests {
    /// One API request answered. `route` is the matched route template,
    /// or `unmatched`.
    pub fn record(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let key = (method_label(method), status_class(status));
        {
            let handles = self.handles.read().unwrap_or_else(PoisonError::into_inner);
            if let Some((count, duration)) = handles.get(route).and_then(|by| by.get(&key)) {
                count.increment(1);
                duration.record(elapsed);
                return;
            }
        }
        let mut handles = self.handles.write().unwrap_or_else(PoisonError::into_inner);
        let (count, duration) = handles
            .entry(route.to_owned())
            .or_default()
            .entry(key)
            .or_insert_with(|| http_request_handles(route, key.0, key.1));
        count.increment(1);
        duration.record(elapsed);
    }
}

/// How an adapter call to a provider ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did what was asked.
    Ok,
    /// The provider refused it (validation, credentials, not found) or
    /// answered something its documentation does not describe.
    Rejected,
    /// The provider asked to slow down (429).
    RateLimited,
    /// The provider failed (5xx) or could not be reached.
    Unavailable,
    /// No answer in time.
    Timeout,
    /// The request may have been applied but its answer was lost or
    /// unreadable (connection broken after sending, an unreadable 2xx).
    UnknownOutcome,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::UnknownOutcome => "unknown_outcome",
        }
    }
}

/// One adapter call to provider instance `provider` of `kind`.
/// `operation` is the adapter method (`create`, `update`, `delete`,
/// `get`, `list`).
pub fn upstream_call(
    provider: &str,
    kind: &'static str,
    operation: &'static str,
    outcome: Outcome,
    elapsed: Duration,
) {
    let labels = [
        ("provider", provider.to_owned()),
        ("kind", kind.to_owned()),
        ("operation", operation.to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ];
    counter!(UPSTREAM_CALLS.name, &labels).increment(1);
    histogram!(UPSTREAM_CALL_DURATION.name, &labels).record(elapsed);
}

/// One HTTP attempt to `provider`: its status, or why none came
/// (`timeout`, `connect_error`, `interrupted`).
pub fn upstream_request(provider: &str, answer: Result<u16, &'static str>) {
    let class = answer.map_or_else(|why| why, status_class);
    counter!(UPSTREAM_REQUESTS.name, "provider" => provider.to_owned(), "status_class" => class)
        .increment(1);
}

/// Who repeats an upstream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLayer {
    /// The transport repeats one HTTP request.
    Transport,
    /// The engine repeats a native step after a transient failure.
    Step,
}

/// One retry of an upstream request to `provider`.
pub fn upstream_retry(provider: &str, layer: RetryLayer) {
    let layer = match layer {
        RetryLayer::Transport => "transport",
        RetryLayer::Step => "step",
    };
    counter!(UPSTREAM_RETRIES.name, "provider" => provider.to_owned(), "layer" => layer)
        .increment(1);
}

/// Which of a provider instance's limits held a request back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `rate_limit_per_minute`.
    Rate,
    /// `max_concurrent_requests`.
    Concurrency,
}

/// A request to `provider` that waited `waited` for `limit`.
pub fn upstream_wait(provider: &str, limit: Limit, waited: Duration) {
    let limit = match limit {
        Limit::Rate => "rate",
        Limit::Concurrency => "concurrency",
    };
    let labels = [
        ("provider", provider.to_owned()),
        ("limit", limit.to_owned()),
    ];
    counter!(UPSTREAM_WAITS.name, &labels).increment(1);
    histogram!(UPSTREAM_WAIT_DURATION.name, &labels).record(waited);
}

/// A change journalled and claimed; `operation` is its journal kind.
pub fn journal_started(operation: &'static str) {
    counter!(JOURNAL_STARTED.name, "operation" => operation).increment(1);
}

/// A journal entry closed in `state` (`succeeded`, `undone`, `failed`,
/// `recovered`).
pub fn journal_closed(operation: &'static str, state: &'static str) {
    counter!(JOURNAL_CLOSED.name, "operation" => operation, "state" => state).increment(1);
}

/// A native step to `provider` whose outcome became unknown.
pub fn unknown_opened(provider: &str) {
    counter!(UNKNOWN_OPENED.name, "provider" => provider.to_owned()).increment(1);
    gauge!(UNKNOWN_OPEN.name, "provider" => provider.to_owned()).increment(1.0);
}

/// How an unknown-outcome step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The step took effect (verified, or a retry succeeded).
    Applied,
    /// Verified not applied, and the step failed.
    NotApplied,
    /// Still unknown at the step's deadline: the sweep goes on looking.
    Unresolved,
}

/// An unknown-outcome step to `provider` ended.
pub fn unknown_resolved(provider: &str, resolution: Resolution) {
    let resolution = match resolution {
        Resolution::Applied => "applied",
        Resolution::NotApplied => "not_applied",
        Resolution::Unresolved => "unresolved",
    };
    counter!(UNKNOWN_RESOLVED.name, "provider" => provider.to_owned(), "resolution" => resolution)
        .increment(1);
    gauge!(UNKNOWN_OPEN.name, "provider" => provider.to_owned()).decrement(1.0);
}

/// The sweep adopted (`adopted`) or removed (`removed`) a resource that
/// landed at `provider` after its change gave up on it.
pub fn late_landing(provider: &str, adopted: bool) {
    let action = if adopted { "adopted" } else { "removed" };
    counter!(LATE_LANDINGS.name, "provider" => provider.to_owned(), "action" => action)
        .increment(1);
}

/// One tick of the reconciliation pass took `elapsed`.
pub fn reconcile_tick(elapsed: Duration) {
    histogram!(RECONCILE_TICK_DURATION.name).record(elapsed);
}

/// A reconciliation pass completed after `elapsed`.
pub fn reconcile_pass(elapsed: Duration) {
    histogram!(RECONCILE_PASS_DURATION.name).record(elapsed);
}

/// What the pass's check of one account of `provider` found and cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountTally {
    /// Subscriptions compared.
    pub checked: u64,
    /// Findings of kind `missing`.
    pub missing: u64,
    /// Findings of kind `drifted`.
    pub drifted: u64,
    /// Findings of kind `unknown`.
    pub unknown: u64,
    /// Journalled repairs.
    pub repairs: u64,
    /// HTTP requests sent.
    pub upstream_calls: u64,
    /// Whether the check failed.
    pub failed: bool,
}

/// One account of `provider` checked by the reconciliation pass.
pub fn reconcile_account(provider: &str, t: &AccountTally) {
    let p = || provider.to_owned();
    counter!(RECONCILE_CHECKED.name, "provider" => p()).increment(t.checked);
    for (kind, n) in [
        ("missing", t.missing),
        ("drifted", t.drifted),
        ("unknown", t.unknown),
    ] {
        counter!(RECONCILE_FINDINGS.name, "provider" => p(), "kind" => kind).increment(n);
    }
    counter!(RECONCILE_REPAIRS.name, "provider" => p()).increment(t.repairs);
    counter!(RECONCILE_CALLS.name, "provider" => p()).increment(t.upstream_calls);
    counter!(RECONCILE_ERRORS.name, "provider" => p()).increment(u64::from(t.failed));
}

/// A POST answered from the stored response of its Idempotency-Key.
pub fn idempotency_replay() {
    counter!(IDEMPOTENCY_REPLAYS.name).increment(1);
}

/// Why an Idempotency-Key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// The first request with the key still runs (409).
    InProgress,
    /// The key was used with another request (422).
    Mismatch,
}

/// An Idempotency-Key refused.
pub fn idempotency_conflict(reason: Conflict) {
    let reason = match reason {
        Conflict::InProgress => "in_progress",
        Conflict::Mismatch => "mismatch",
    };
    counter!(IDEMPOTENCY_CONFLICTS.name, "reason" => reason).increment(1);
}

/// `count` stored subscriptions of provider instance `provider` in `status`.
pub fn subscriptions(provider: &str, status: &'static str, count: u64) {
    gauge!(SUBSCRIPTIONS.name, "provider" => provider.to_owned(), "status" => status)
        .set(count as f64);
}

/// How the relay ingress answered a provider's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressOutcome {
    /// Verified and stored (200).
    Accepted,
    /// Verified; the provider's retry of a stored event, nothing stored
    /// (200).
    Duplicate,
    /// Not verified (401); the reason is one of `IngressRefusal::reason`'s
    /// fixed labels.
    Refused(&'static str),
    /// No route has this token, or relay mode is off (404).
    NotFound,
    /// The body is larger than the ingress accepts (413).
    TooLarge,
    /// The store failed; the provider is asked to retry (5xx).
    Error,
}

impl IngressOutcome {
    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Refused(_) => "refused",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::Error => "error",
        }
    }
}

/// The `provider` label of an ingress delivery whose route is not known.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// One delivery answered by the relay ingress after `elapsed`, for
/// provider instance `provider` ([`UNKNOWN_PROVIDER`] when its route token
/// is not known).
pub fn ingress_request(provider: &str, outcome: IngressOutcome, elapsed: Duration) {
    let labels = [
        ("provider", provider.to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ];
    counter!(INGRESS_REQUESTS.name, &labels).increment(1);
    histogram!(INGRESS_DURATION.name, &labels).record(elapsed);
    if let IngressOutcome::Refused(reason) = outcome {
        counter!(INGRESS_REFUSALS.name, "provider" => provider.to_owned(), "reason" => reason)
            .increment(1);
    }
}

/// How a relay delivery attempt ended for its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayOutcome {
    /// The subscriber answered 2xx.
    Delivered,
    /// Due again later.
    Retry,
    /// Dead-lettered: retries used up, or refused without sending.
    Failed,
    /// The subscriber answered 410 Gone.
    Gone,
    /// Another worker took the delivery over; the attempt was not recorded.
    LeaseLost,
}

impl RelayOutcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Failed => "failed",
            Self::Gone => "gone",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// One relay delivery attempt of an event from provider instance
/// `provider`. `sent` is how long the request took when one was sent
/// (`None`: refused before sending); `end_to_end` is the time from the
/// event's acceptance, for a delivered one.
pub fn relay_attempt(
    provider: &str,
    outcome: RelayOutcome,
    sent: Option<Duration>,
    end_to_end: Option<Duration>,
) {
    let p = || provider.to_owned();
    counter!(RELAY_ATTEMPTS.name, "provider" => p(), "outcome" => outcome.as_str()).increment(1);
    if let Some(sent) = sent {
        histogram!(RELAY_ATTEMPT_DURATION.name, "provider" => p()).record(sent);
    }
    if let Some(e2e) = end_to_end {
        histogram!(RELAY_DELIVERY_LATENCY.name, "provider" => p()).record(e2e);
    }
}

/// `depth` relay deliveries are pending or being attempted.
pub fn relay_outbox_depth(depth: u64) {
    gauge!(RELAY_OUTBOX_DEPTH.name).set(depth as f64);
}

/// The running version (set once, when the recorder is installed).
pub fn build_info() {
    gauge!(BUILD_INFO.name, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_within_their_vocabulary() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(422), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(method_label("PATCH"), "PATCH");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(method_label("get"), "other", "methods are case-sensitive");
    }

    /// Renders what `f` records with a local Prometheus recorder.
    fn rendered(f: impl FnOnce()) -> String {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, f);
        handle.render()
    }

    /// The label keys of every sample of `name` in `text`, as a real
    /// exposition parser reads them.
    fn label_keys(text: &str, name: &str) -> Vec<Vec<String>> {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| {
                let mut keys: Vec<String> = s.labels.keys().cloned().collect();
                keys.sort();
                keys
            })
            .collect()
    }

    #[test]
    fn recorded_labels_are_the_documented_ones() {
        let text = rendered(|| {
            // prometheus-parse reads no `}` inside a label value, so the
            // route here has no parameter.
            HttpRequests::default().record(
                "/v1/subscriptions",
                "GET",
                200,
                Duration::from_millis(3),
            );
            upstream_call("tk", "talkover", "create", Outcome::Ok, Duration::ZERO);
            upstream_request("tk", Ok(201));
            upstream_retry("tk", RetryLayer::Step);
            upstream_wait("tk", Limit::Rate, Duration::from_millis(1));
            journal_started("create");
            journal_closed("create", "succeeded");
            unknown_opened("tk");
            unknown_resolved("tk", Resolution::Applied);
            late_landing("tk", true);
            reconcile_account("tk", &AccountTally::default());
            idempotency_conflict(Conflict::Mismatch);
            subscriptions("tk", "active", 3);
            relay_attempt(
                "tk",
                RelayOutcome::Delivered,
                Some(Duration::from_millis(4)),
                Some(Duration::from_millis(9)),
            );
            relay_outbox_depth(2);
            ingress_request(
                "tk",
                IngressOutcome::Refused("stale"),
                Duration::from_millis(1),
            );
            build_info();
        });
        let checked = [
            (HTTP_REQUESTS, HTTP_REQUESTS.name),
            (HTTP_REQUEST_DURATION, HTTP_REQUEST_DURATION.name),
            (UPSTREAM_CALLS, UPSTREAM_CALLS.name),
            (UPSTREAM_REQUESTS, UPSTREAM_REQUESTS.name),
            (UPSTREAM_RETRIES, UPSTREAM_RETRIES.name),
            (UPSTREAM_WAITS, UPSTREAM_WAITS.name),
            (JOURNAL_STARTED, JOURNAL_STARTED.name),
            (JOURNAL_CLOSED, JOURNAL_CLOSED.name),
            (UNKNOWN_RESOLVED, UNKNOWN_RESOLVED.name),
            (UNKNOWN_OPEN, UNKNOWN_OPEN.name),
            (LATE_LANDINGS, LATE_LANDINGS.name),
            (RECONCILE_FINDINGS, RECONCILE_FINDINGS.name),
            (IDEMPOTENCY_CONFLICTS, IDEMPOTENCY_CONFLICTS.name),
            (SUBSCRIPTIONS, SUBSCRIPTIONS.name),
            (BUILD_INFO, BUILD_INFO.name),
            (RELAY_ATTEMPTS, RELAY_ATTEMPTS.name),
            (RELAY_ATTEMPT_DURATION, RELAY_ATTEMPT_DURATION.name),
            (RELAY_DELIVERY_LATENCY, RELAY_DELIVERY_LATENCY.name),
            (RELAY_OUTBOX_DEPTH, RELAY_OUTBOX_DEPTH.name),
            (INGRESS_REQUESTS, INGRESS_REQUESTS.name),
            (INGRESS_REFUSALS, INGRESS_REFUSALS.name),
            (INGRESS_DURATION, INGRESS_DURATION.name),
        ];
        for (metric, sample) in checked {
            let keys = label_keys(&text, sample);
            assert!(!keys.is_empty(), "{sample} not rendered:\n{text}");
            let mut documented: Vec<&str> = metric.labels.to_vec();
            documented.sort();
            for k in keys {
                assert_eq!(k, documented, "{sample}");
            }
        }
        assert!(text.contains("switchboard_unknown_outcomes_open{provider=\"tk\"} 0"));
        assert!(text.contains("switchboard_http_request_duration_seconds_bucket{"));
    }

    #[test]
    fn kept_request_handles_count_each_route_method_and_class_apart() {
        let text = rendered(|| {
            let requests = HttpRequests::default();
            for status in [200, 201, 404, 200] {
                requests.record("/v1/subscriptions", "POST", status, Duration::ZERO);
            }
            requests.record("/v1/subscriptions", "GET", 200, Duration::ZERO);
            requests.record("/healthz", "GET", 200, Duration::ZERO);
        });
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        let mut counted: Vec<(String, String, String, f64)> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == HTTP_REQUESTS.name)
            .map(|s| {
                let label = |k: &str| s.labels.get(k).unwrap_or_default().to_owned();
                let prometheus_parse::Value::Counter(n) = s.value else {
                    panic!("{} is not a counter", s.metric);
                };
                (label("route"), label("method"), label("status_class"), n)
            })
            .collect();
        counted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let expected = [
            ("/healthz", "GET", "2xx", 1.0),
            ("/v1/subscriptions", "GET", "2xx", 1.0),
            ("/v1/subscriptions", "POST", "2xx", 3.0),
            ("/v1/subscriptions", "POST", "4xx", 1.0),
        ]
        .map(|(r, m, c, n)| (r.to_owned(), m.to_owned(), c.to_owned(), n));
        assert_eq!(counted, expected, "{text}");
    }
}
