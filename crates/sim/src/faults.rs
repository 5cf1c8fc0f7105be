//! Fault injection and request logging shared by every simulator.
//!
//! This module owns the provider-neutral test harness: the [`Faults`] queue
//! (N failures with a status, `429` + `Retry-After`, added latency, dropped
//! connections, each either instead of the request or after the provider
//! applied it: "applied, answer lost"), the [`RequestLog`] of everything a simulator was sent, the
//! axum middleware that applies both in front of a simulator's real handlers,
//! and the control API mounted under [`CONTROL_PREFIX`] on every simulator
//! router. Nothing here knows about any particular provider.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Path prefix of the control API. Requests under it are never logged and
/// never faulted, so a test can always reach the harness.
pub const CONTROL_PREFIX: &str = "/_sim";

/// Largest request body the harness buffers for the log. Larger bodies are
/// refused with `413` before they reach a simulator; no documented provider
/// request comes anywhere near it.
pub const MAX_LOGGED_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Requests the log keeps: the newest this many. A simulator serving a
/// load run (`switchboard simulate`) sees millions of requests, and an
/// unbounded log would grow with every one of them.
pub const MAX_LOGGED_REQUESTS: usize = 10_000;

/// Value stored in the log in place of a secret header's value.
pub const REDACTED: &str = "***";

/// One injected fault. It applies to the next `count` requests that match
/// `method` and `path_contains`, in queue order.
///
/// Deserialized from the control API with every field optional; unknown
/// fields are rejected so that a typo in a test's fault spec fails loudly
/// instead of silently injecting nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fault {
    /// Status to answer with instead of running the real handler. `0` means
    /// "no status": only `latency_ms` is added and the real handler runs.
    pub status: u16,
    /// Response body for a status fault; `{"message":"Injected fault"}` when absent.
    pub body: Option<Value>,
    /// Seconds to put in a `Retry-After` header on a status fault.
    pub retry_after: Option<u64>,
    /// Delay before answering (or before running the real handler).
    pub latency_ms: u64,
    /// Close the connection without sending a complete response. Takes
    /// precedence over `status`.
    pub drop_connection: bool,
    /// How many matching requests this fault applies to (at least 1).
    pub count: u32,
    /// Only requests whose path contains this substring match.
    pub path_contains: Option<String>,
    /// Only requests with this method (case-insensitive) match.
    pub method: Option<String>,
    /// Run the real handler first, so the provider applies the request,
    /// and then fault the answer: `latency_ms` delays it, `drop_connection`
    /// loses it, `status` replaces it ("applied, then answered 500").
    /// Without it, `latency_ms` delays the apply itself (past a client's
    /// timeout, the request lands after the client gave up) and a status or
    /// dropped connection means the request was never applied.
    pub after_apply: bool,
}

impl Default for Fault {
    fn default() -> Self {
        Self {
            status: 0,
            body: None,
            retry_after: None,
            latency_ms: 0,
            drop_connection: false,
            count: 1,
            path_contains: None,
            method: None,
            after_apply: false,
        }
    }
}

impl Fault {
    /// A fault answering `status` once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::default()
        }
    }

    /// A `429 Too Many Requests` with `Retry-After: retry_after_secs`, once.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self {
            status: 429,
            retry_after: Some(retry_after_secs),
            ..Self::default()
        }
    }

    /// Adds `latency_ms` to the next request, which then runs normally.
    pub fn latency(latency_ms: u64) -> Self {
        Self {
            latency_ms,
            ..Self::default()
        }
    }

    /// Closes the connection of the next request without a response.
    pub fn drop_connection() -> Self {
        Self {
            drop_connection: true,
            ..Self::default()
        }
    }

    /// Applies the request first and faults only its answer (see
    /// [`Fault::after_apply`]).
    pub fn after_apply(mut self) -> Self {
        self.after_apply = true;
        self
    }

    /// Applies the fault to the next `count` matching requests.
    pub fn times(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// Uses `body` as the response body of a status fault.
    pub fn with_body(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Restricts the fault to requests whose path contains `fragment`.
    pub fn on_path(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = Some(fragment.into());
        self
    }

    /// Restricts the fault to requests with `method`.
    pub fn on_method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Checks that the fault is meaningful: it fires at least once, its status
    /// is a real HTTP status, and it does something.
    pub fn validate(&self) -> Result<(), InvalidFault> {
        if self.count == 0 {
            return Err(InvalidFault("count must be at least 1".into()));
        }
        if self.status != 0 && !(100..=599).contains(&self.status) {
            return Err(InvalidFault(format!(
                "status {} is not an HTTP status (use 0 for latency only)",
                self.status
            )));
        }
        if self.status == 0 && self.latency_ms == 0 && !self.drop_connection {
            return Err(InvalidFault(
                "a fault needs a status, latency_ms or drop_connection".into(),
            ));
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self
            .method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method));
        let path_ok = self
            .path_contains
            .as_deref()
            .is_none_or(|fragment| path.contains(fragment));
        method_ok && path_ok
    }
}

/// Why a [`Fault`] was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidFault(pub String);

impl std::fmt::Display for InvalidFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid fault: {}", self.0)
    }
}

impl std::error::Error for InvalidFault {}

/// Recovers the guard of a poisoned mutex: the harness never leaves its data
/// half-updated, so a panic elsewhere must not disable it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The queue of pending faults. Clones share the queue.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    queue: Arc<Mutex<VecDeque<Fault>>>,
}

impl Faults {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a fault after checking it.
    pub fn push(&self, fault: Fault) -> Result<(), InvalidFault> {
        fault.validate()?;
        lock(&self.queue).push_back(fault);
        Ok(())
    }

    /// Removes every pending fault.
    pub fn clear(&self) {
        lock(&self.queue).clear();
    }

    /// The faults still pending, with their remaining counts.
    pub fn pending(&self) -> Vec<Fault> {
        lock(&self.queue).iter().cloned().collect()
    }

    /// Takes one use of the first fault matching the request, dropping the
    /// fault once its count is used up.
    pub fn take(&self, method: &str, path: &str) -> Option<Fault> {
        let mut queue = lock(&self.queue);
        let index = queue.iter().position(|f| f.matches(method, path))?;
        let fault = queue.get_mut(index)?;
        fault.count = fault.count.saturating_sub(1);
        let taken = fault.clone();
        if taken.count == 0 {
            queue.remove(index);
        }
        Some(taken)
    }
}

/// One request as a simulator received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    /// Position in arrival order, starting at 0 for the life of the log.
    pub seq: u64,
    /// Request method, e.g. `POST`.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Header names (lower case) to values; secret-looking headers have the
    /// value [`REDACTED`], repeated headers are joined with `", "`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<Value>,
    /// The body as (lossy UTF-8) text, when it was not empty and not JSON.
    pub raw_body: Option<String>,
    /// Status sent back; `None` while in flight or when the connection was dropped.
    pub status: Option<u16>,
    /// Whether an injected fault replaced the real response.
    pub faulted: bool,
}

/// Whether a header's value must not be kept in the log: credentials for the
/// simulated API and anything that looks like one.
pub(crate) fn is_secret_header(name: &str) -> bool {
    ["authorization", "cookie", "key", "secret", "token"]
        .iter()
        .any(|needle| name.contains(needle))
}

fn logged_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let name = name.as_str().to_ascii_lowercase();
        let value = if is_secret_header(&name) {
            REDACTED.to_owned()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.entry(name)
            .and_modify(|joined| {
                if joined != REDACTED {
                    joined.push_str(", ");
                    joined.push_str(&value);
                }
            })
            .or_insert(value);
    }
    out
}

/// What the simulators were sent, in arrival order: the newest
/// [`MAX_LOGGED_REQUESTS`] requests, older ones dropped first. Clones share
/// the log.
#[derive(Debug, Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<VecDeque<LoggedRequest>>>,
    next_seq: Arc<AtomicU64>,
}

impl RequestLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a request and returns its sequence number (which keeps
    /// counting when old entries are dropped).
    pub fn record(&self, parts: &Parts, body: &[u8]) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let (json, raw) = if body.is_empty() {
            (None, None)
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(value) => (Some(value), None),
                Err(_) => (None, Some(String::from_utf8_lossy(body).into_owned())),
            }
        };
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_LOGGED_REQUESTS {
            entries.pop_front();
        }
        entries.push_back(LoggedRequest {
            seq,
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers: logged_headers(&parts.headers),
            body: json,
            raw_body: raw,
            status: None,
            faulted: false,
        });
        seq
    }

    /// Records how the request `seq` was answered.
    pub fn complete(&self, seq: u64, status: Option<u16>, faulted: bool) {
        if let Some(entry) = lock(&self.entries).iter_mut().rev().find(|e| e.seq == seq) {
            entry.status = status;
            entry.faulted = faulted;
        }
    }

    /// A snapshot of the log, oldest first.
    pub fn entries(&self) -> Vec<LoggedRequest> {
        lock(&self.entries).iter().cloned().collect()
    }

    /// Empties the log (sequence numbers keep increasing).
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// The faults and the log of one simulator, plus the router plumbing that
/// puts them in front of it.
#[derive(Debug, Clone, Default)]
pub struct Harness {
    /// Pending faults.
    pub faults: Faults,
    /// Requests received.
    pub log: RequestLog,
}

impl Harness {
    /// A harness with no faults and an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a fault for the API routes.
    pub fn inject(&self, fault: Fault) -> Result<(), InvalidFault> {
        self.faults.push(fault)
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// The request log, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.log.entries()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.log.clear();
    }

    /// The generic control API, to be merged at the root of a simulator router:
    ///
    /// - `POST /_sim/faults` (a [`Fault`] as JSON) appends a fault, `201`;
    /// - `GET /_sim/faults` lists pending faults;
    /// - `DELETE /_sim/faults` clears them, `204`;
    /// - `GET /_sim/requests` returns the log as a JSON array of [`LoggedRequest`];
    /// - `DELETE /_sim/requests` clears it, `204`.
    pub fn control_routes(&self) -> Router {
        Router::new()
            .route(
                "/_sim/faults",
                get(list_faults).post(add_fault).delete(clear_faults),
            )
            .route("/_sim/requests", get(list_requests).delete(clear_requests))
            .with_state(self.clone())
    }

    /// Wraps a simulator router: merges [`Harness::control_routes`] and puts
    /// [`instrument`] in front of everything, including the router's fallback,
    /// so that unknown paths are logged and faulted too.
    pub fn wrap(&self, router: Router) -> Router {
        router
            .merge(self.control_routes())
            .layer(from_fn_with_state(self.clone(), instrument))
    }
}

async fn list_faults(State(h): State<Harness>) -> Json<Vec<Fault>> {
    Json(h.faults.pending())
}

async fn add_fault(State(h): State<Harness>, Json(fault): Json<Fault>) -> Response {
    let echo = fault.clone();
    match h.faults.push(fault) {
        Ok(()) => (StatusCode::CREATED, Json(echo)).into_response(),
        Err(err) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "message": err.to_string() })),
        )
            .into_response(),
    }
}

async fn clear_faults(State(h): State<Harness>) -> StatusCode {
    h.faults.clear();
    StatusCode::NO_CONTENT
}

async fn list_requests(State(h): State<Harness>) -> Json<Vec<LoggedRequest>> {
    Json(h.log.entries())
}

async fn clear_requests(State(h): State<Harness>) -> StatusCode {
    h.log.clear();
    StatusCode::NO_CONTENT
}

fn is_control_path(path: &str) -> bool {
    path == CONTROL_PREFIX
        || path
            .strip_prefix(CONTROL_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Middleware run before a simulator's handlers: logs the request, then
/// applies the first matching fault, if any.
///
/// Control routes pass straight through. The body is buffered (up to
/// [`MAX_LOGGED_BODY_BYTES`]) so it can be logged and then handed on intact.
pub async fn instrument(State(h): State<Harness>, request: Request, next: Next) -> Response {
    if is_control_path(request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_LOGGED_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let seq = h.log.record(&parts, &[]);
            h.log.complete(seq, Some(413), false);
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({ "message": "Request body too large or unreadable." })),
            )
                .into_response();
        }
    };
    let seq = h.log.record(&parts, &bytes);
    let fault = h.faults.take(parts.method.as_str(), parts.uri.path());
    let request = Request::from_parts(parts, Body::from(bytes));

    let Some(fault) = fault else {
        let response = next.run(request).await;
        h.log.complete(seq, Some(response.status().as_u16()), false);
        return response;
    };
    if fault.after_apply {
        let applied = apply_late(h.clone(), seq, 0, next, request).await;
        return fault_answer(&h, seq, &fault, applied).await;
    }
    if fault.status == 0 && !fault.drop_connection {
        return apply_late(h, seq, fault.latency_ms, next, request).await;
    }
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    if fault.drop_connection {
        h.log.complete(seq, None, true);
        return dropped_connection();
    }
    let response = fault_response(&fault);
    h.log.complete(seq, Some(response.status().as_u16()), true);
    response
}

/// Applies the request after `latency_ms`, in a task of its own: like a
/// real server, the provider finishes what it started even when the
/// client gave up (timed out, or was killed) in the meantime, so the
/// request lands late.
async fn apply_late(
    h: Harness,
    seq: u64,
    latency_ms: u64,
    next: Next,
    request: Request,
) -> Response {
    let applied = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        let response = next.run(request).await;
        h.log.complete(seq, Some(response.status().as_u16()), false);
        response
    });
    applied
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The answer of a request the provider already applied (`response`),
/// delayed, lost or replaced as `fault` says.
async fn fault_answer(h: &Harness, seq: u64, fault: &Fault, response: Response) -> Response {
    if fault.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(fault.latency_ms)).await;
    }
    if fault.drop_connection {
        h.log.complete(seq, None, true);
        return dropped_connection();
    }
    if fault.status == 0 {
        h.log.complete(seq, Some(response.status().as_u16()), false);
        return response;
    }
    let replaced = fault_response(fault);
    h.log.complete(seq, Some(replaced.status().as_u16()), true);
    replaced
}

fn fault_response(fault: &Fault) -> Response {
    // `validate` keeps statuses in 100..=599, which `from_u16` accepts; the
    // fallback only guards faults built without going through `Faults::push`.
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = fault
        .body
        .clone()
        .unwrap_or_else(|| json!({ "message": "Injected fault" }));
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = fault.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A response whose body fails on the first poll. hyper has then buffered
/// only the head, never flushed it, and closes the connection on a body
/// error, so the client sees the connection close before any response.
fn dropped_connection() -> Response {
    let mut response = Response::new(Body::new(AbortingBody));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// A body that errors immediately; see [`dropped_connection`].
struct AbortingBody;

impl HttpBody for AbortingBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, io::Error>>> {
        Poll::Ready(Some(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "simulated dropped connection",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_decrements_and_removes() {
        let faults = Faults::new();
        faults
            .push(Fault::status(503).times(2).on_method("post"))
            .expect("valid fault");
        assert!(faults.take("GET", "/x").is_none());
        assert_eq!(faults.take("POST", "/x").map(|f| f.status), Some(503));
        assert_eq!(faults.pending().len(), 1);
        assert_eq!(faults.take("POST", "/x").map(|f| f.count), Some(0));
        assert!(faults.pending().is_empty());
        assert!(faults.take("POST", "/x").is_none());
    }

    #[test]
    fn path_filter_and_queue_order() {
        let faults = Faults::new();
        faults
            .push(Fault::status(500).on_path("/toggle"))
            .expect("valid fault");
        faults.push(Fault::status(502)).expect("valid fault");
        assert_eq!(faults.take("GET", "/a").map(|f| f.status), Some(502));
        assert_eq!(
            faults.take("PATCH", "/a/toggle").map(|f| f.status),
            Some(500)
        );
        assert!(faults.take("PATCH", "/a/toggle").is_none());
    }

    #[test]
    fn invalid_faults_are_refused() {
        let faults = Faults::new();
        assert!(faults.push(Fault::status(503).times(0)).is_err());
        assert!(faults.push(Fault::status(99)).is_err());
        assert!(faults.push(Fault::default()).is_err());
        assert!(faults.push(Fault::latency(5)).is_ok());
    }

    #[test]
    fn fault_deserializes_with_defaults() {
        let fault: Fault = serde_json::from_value(json!({ "status": 429, "retry_after": 7 }))
            .expect("valid fault JSON");
        assert_eq!(fault, Fault::rate_limited(7));
        assert!(serde_json::from_value::<Fault>(json!({ "stauts": 500 })).is_err());
    }

    #[test]
    fn secret_headers_are_redacted() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("Bearer abc"));
        headers.insert("x-api-key", HeaderValue::from_static("k"));
        headers.insert("x-webhook-secret", HeaderValue::from_static("s"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.append("accept", HeaderValue::from_static("a"));
        headers.append("accept", HeaderValue::from_static("b"));
        let logged = logged_headers(&headers);
        assert_eq!(logged["authorization"], REDACTED);
        assert_eq!(logged["x-api-key"], REDACTED);
        assert_eq!(logged["x-webhook-secret"], REDACTED);
        assert_eq!(logged["content-type"], "application/json");
        assert_eq!(logged["accept"], "a, b");
    }

    #[test]
    fn the_log_keeps_the_newest_entries() {
        let log = RequestLog::new();
        let extra = 5;
        for _ in 0..MAX_LOGGED_REQUESTS + extra {
            let (parts, ()) = axum::http::Request::builder()
                .uri("/x")
                .body(())
                .expect("a valid request")
                .into_parts();
            let seq = log.record(&parts, b"");
            log.complete(seq, Some(200), false);
        }
        let entries = log.entries();
        assert_eq!(entries.len(), MAX_LOGGED_REQUESTS);
        assert_eq!(entries[0].seq, extra as u64);
        assert_eq!(
            entries.last().map(|e| (e.seq, e.status)),
            Some(((MAX_LOGGED_REQUESTS + extra - 1) as u64, Some(200)))
        );
        log.clear();
        let (parts, ()) = axum::http::Request::builder()
            .uri("/y")
            .body(())
            .expect("a valid request")
            .into_parts();
        assert_eq!(
            log.record(&parts, b""),
            (MAX_LOGGED_REQUESTS + extra) as u64
        );
    }

    #[test]
    fn control_paths() {
        assert!(is_control_path("/_sim"));
        assert!(is_control_path("/_sim/faults"));
        assert!(!is_control_path("/_simulator"));
        assert!(!is_control_path("/api/v1/_sim"));
    }
}
