//! The relay load's subscriber: a fast local receiver (axum on
//! 127.0.0.1, port 0) that every relay subscription points at. It checks
//! each delivery's Standard Webhooks signature with
//! `switchboard_relay::verify` (speed matters here; the independent check
//! of the signing is the end-to-end tests' Python verifier), answers 204,
//! counts deliveries, de-duplicates them by `webhook-id` and records the
//! end-to-end latency of each first delivery: receipt time minus the send
//! time the load put into the provider payload ([`Mark`], read back from
//! the envelope's unchanged `data`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hdrhistogram::Histogram;
use serde::Deserialize;
use switchboard_relay::SigningSecret;

use crate::natives::{MARK_FIELD, Mark};
use crate::pace::{Clock, Window, micros_histogram};

/// Seconds a `webhook-timestamp` may be off: the Standard Webhooks
/// reference libraries' default.
const TOLERANCE_SECS: i64 = 300;

/// What the receiver counted since the last [`Receiver::begin`] (the
/// `*_total` fields since it started).
#[derive(Debug, Clone)]
pub struct Received {
    /// The window being measured.
    pub window: Window,
    /// Distinct `webhook-id`s received, ever.
    pub unique_total: u64,
    /// First deliveries that arrived inside the window.
    pub unique_in_window: u64,
    /// First deliveries of events sent inside the window.
    pub measured: u64,
    /// End-to-end latencies of those, microseconds.
    pub latency: Histogram<u64>,
    /// Deliveries of a `webhook-id` already received (retries).
    pub repeats: u64,
    /// Events (by mark) received again under another `webhook-id`.
    pub redelivered_events: u64,
    /// Deliveries whose signature did not verify (answered 401).
    pub rejected: u64,
    /// Verified deliveries without a readable mark.
    pub unmarked: u64,
    /// Why the first rejected or unmarked delivery was.
    pub first_problem: Option<String>,
}

impl Received {
    /// Nothing received yet in `window`, `unique_total` before it.
    pub fn new(window: Window, unique_total: u64) -> Self {
        Self {
            window,
            unique_total,
            unique_in_window: 0,
            measured: 0,
            latency: micros_histogram(),
            repeats: 0,
            redelivered_events: 0,
            rejected: 0,
            unmarked: 0,
            first_problem: None,
        }
    }
}

struct Tally {
    received: Received,
    ids: HashSet<String>,
    seqs: HashSet<u64>,
}

struct Inner {
    secret: SigningSecret,
    clock: Arc<Clock>,
    tally: Mutex<Tally>,
}

impl Inner {
    fn tally(&self) -> MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    running: switchboard_sim::Running,
    inner: Arc<Inner>,
}

impl Receiver {
    /// Listens on 127.0.0.1 (a free port), verifying with `secret`.
    pub async fn start(secret: SigningSecret, clock: Arc<Clock>) -> Result<Self, String> {
        let inner = Arc::new(Inner {
            secret,
            clock,
            tally: Mutex::new(Tally {
                received: Received::new(Window::default(), 0),
                ids: HashSet::new(),
                seqs: HashSet::new(),
            }),
        });
        let router = Router::new()
            .route("/hook/{n}", post(hook))
            .with_state(inner.clone());
        let running = switchboard_sim::serve(router, ([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| format!("receiver: {e}"))?;
        Ok(Self { running, inner })
    }

    /// The URL of subscription `n`'s endpoint.
    pub fn url(&self, n: usize) -> String {
        format!("{}/hook/{n}", self.running.base_url)
    }

    /// Starts counting afresh for `window` (the `webhook-id`s seen stay
    /// known, so a late retry is still a repeat).
    pub fn begin(&self, window: Window) {
        let mut tally = self.inner.tally();
        let total = tally.received.unique_total;
        tally.received = Received::new(window, total);
    }

    /// `(events, measured)` so far: distinct events (by mark) ever
    /// received, and [`Received::measured`]; what a wait polls, without
    /// copying the histogram.
    pub fn progress(&self) -> (u64, u64) {
        let tally = self.inner.tally();
        (tally.seqs.len() as u64, tally.received.measured)
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Received {
        self.inner.tally().received.clone()
    }

    /// Stops listening.
    pub async fn stop(self) {
        let _ = self.running.shutdown().await;
    }
}

/// The envelope fields the receiver reads: the mark is in `data` (Talkover)
/// or `data.payload` (Bird's `{service, event, payload}`).
#[derive(Deserialize)]
struct Envelope {
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "switchboard_bench")]
    mark: Option<Mark>,
    payload: Option<Payload>,
}

#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "switchboard_bench")]
    mark: Option<Mark>,
}

fn mark_of(body: &[u8]) -> Option<Mark> {
    let envelope: Envelope = serde_json::from_slice(body).ok()?;
    envelope
        .data
        .mark
        .or_else(|| envelope.data.payload.and_then(|p| p.mark))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

async fn hook(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now_ns = inner.clock.now_ns();
    let id = header(&headers, "webhook-id");
    let verified = switchboard_relay::verify(
        id,
        header(&headers, "webhook-timestamp"),
        header(&headers, "webhook-signature"),
        &body,
        &inner.secret,
        (now_ns / 1_000_000_000) as i64,
        TOLERANCE_SECS,
    );
    let mark = mark_of(&body);
    let mut tally = inner.tally();
    if let Err(e) = verified {
        tally.received.rejected += 1;
        tally
            .received
            .first_problem
            .get_or_insert_with(|| format!("webhook-id `{id}`: {e}"));
        return StatusCode::UNAUTHORIZED;
    }
    if !tally.ids.insert(id.to_owned()) {
        tally.received.repeats += 1;
        return StatusCode::NO_CONTENT;
    }
    record_first(&mut tally, mark, now_ns, id);
    StatusCode::NO_CONTENT
}

/// Counts the first delivery of a `webhook-id`.
fn record_first(tally: &mut Tally, mark: Option<Mark>, now_ns: u64, id: &str) {
    let r = &mut tally.received;
    r.unique_total += 1;
    if r.window.contains(now_ns) {
        r.unique_in_window += 1;
    }
    let Some(mark) = mark else {
        r.unmarked += 1;
        r.first_problem
            .get_or_insert_with(|| format!("webhook-id `{id}`: no {MARK_FIELD} in data"));
        return;
    };
    if !tally.seqs.insert(mark.seq) {
        r.redelivered_events += 1;
        return;
    }
    if r.window.contains(mark.sent_ns) {
        r.measured += 1;
        let micros = now_ns.saturating_sub(mark.sent_ns) / 1000;
        let _ = r.latency.record(micros.max(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_read_from_data_or_its_payload() {
        let flat =
            br#"{"id":"evt_1","data":{"event":"e","switchboard_bench":{"seq":3,"sent_ns":9}}}"#;
        assert_eq!(mark_of(flat), Some(Mark { seq: 3, sent_ns: 9 }));
        let bird = br#"{"id":"evt_2","data":{"service":"channels","payload":{"switchboard_bench":{"seq":4,"sent_ns":8}}}}"#;
        assert_eq!(mark_of(bird), Some(Mark { seq: 4, sent_ns: 8 }));
        assert_eq!(mark_of(br#"{"data":{"event":"e"}}"#), None);
        assert_eq!(mark_of(b"<xml/>"), None);
    }

    #[test]
    fn only_first_deliveries_of_window_events_are_measured() {
        let window = Window {
            start_ns: 1_000,
            end_ns: 10_000_000,
        };
        let mut tally = Tally {
            received: Received::new(window, 0),
            ids: HashSet::new(),
            seqs: HashSet::new(),
        };
        let inside = Mark {
            seq: 1,
            sent_ns: 2_000,
        };
        let before = Mark {
            seq: 2,
            sent_ns: 500,
        };
        record_first(&mut tally, Some(inside), 3_002_000, "a");
        record_first(&mut tally, Some(before), 3_000_000, "b");
        record_first(&mut tally, Some(inside), 4_000_000, "c");
        record_first(&mut tally, None, 4_000_000, "d");
        let r = &tally.received;
        assert_eq!(r.unique_total, 4);
        assert_eq!(r.unique_in_window, 4);
        assert_eq!(r.measured, 1);
        assert_eq!(r.redelivered_events, 1);
        assert_eq!(r.unmarked, 1);
        assert_eq!(r.latency.len(), 1);
        assert_eq!(
            r.latency.count_at(3_000),
            1,
            "3 ms from due time to receipt"
        );
    }
}
