//! The relay load's sending side: the clock every timestamp is read from,
//! the schedule of an open-loop run, and the driver that fires deliveries
//! at the ingress.
//!
//! At a fixed rate (open loop) delivery `i` is due at `start + i / rate`,
//! whatever happened to the ones before it: when every connection is busy
//! the next deliveries go out late, and their latency still counts from the
//! time they were due, so a slow server cannot hide its stalls by slowing
//! the load down (coordinated omission). At `max` (closed loop) each
//! connection sends its next delivery as soon as the last is answered and
//! latency counts from the actual send. Every connection is one keep-alive
//! HTTP/1.1 connection ([`Conn`]).
//!
//! A delivery is *measured* when it was due inside the window (after the
//! warm-up); only measured deliveries count in the status tally, the
//! ingress latencies and the events the receiver is expected to deliver.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use tokio::task::JoinSet;

use crate::client::{Conn, Target};
use crate::natives::{Mark, Native};

/// Wall-clock nanoseconds read off one monotonic clock, so that the
/// sender's and the receiver's timestamps (same process) never disagree
/// by a clock step.
#[derive(Debug)]
pub struct Clock {
    origin: Instant,
    origin_unix_ns: u64,
}

impl Clock {
    /// A clock anchored at the current wall time.
    pub fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            origin: Instant::now(),
            origin_unix_ns: unix.as_nanos() as u64,
        }
    }

    /// Unix nanoseconds now.
    pub fn now_ns(&self) -> u64 {
        self.origin_unix_ns + self.origin.elapsed().as_nanos() as u64
    }

    /// The instant of unix nanoseconds `ns` (not before the anchor).
    pub fn instant(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns.saturating_sub(self.origin_unix_ns))
    }
}

/// How fast deliveries are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Open loop: this many deliveries per second, on schedule.
    Rate(f64),
    /// Closed loop: as fast as the connections are answered.
    Max,
}

impl FromStr for Pace {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "max" {
            return Ok(Self::Max);
        }
        match text.parse::<f64>() {
            Ok(r) if r > 0.0 && r.is_finite() => Ok(Self::Rate(r)),
            _ => Err(format!(
                "`{text}`: a rate is deliveries per second (> 0) or `max`"
            )),
        }
    }
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Rate(r) => write!(f, "{r:.0}/s"),
            Self::Max => f.write_str("max"),
        }
    }
}

/// Nanoseconds after the start at which delivery `i` is due at `rate`
/// per second.
pub fn due_offset_ns(i: u64, rate: f64) -> u64 {
    (i as f64 * 1e9 / rate) as u64
}

/// A span of unix nanoseconds, `start` included, `end` not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Window {
    /// First nanosecond.
    pub start_ns: u64,
    /// First nanosecond after it.
    pub end_ns: u64,
}

impl Window {
    /// Whether `ns` is inside.
    pub fn contains(&self, ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&ns)
    }

    /// Its length.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_ns.saturating_sub(self.start_ns))
    }
}

/// One run of the driver.
#[derive(Debug, Clone, Copy)]
pub struct Drive {
    /// How fast.
    pub pace: Pace,
    /// Concurrent connections.
    pub connections: usize,
    /// When sending starts (unix ns); the warm-up is `start..window.start`.
    pub start_ns: u64,
    /// The measured window; nothing is due at or after its end.
    pub window: Window,
    /// The first delivery's sequence number (unique across runs).
    pub first_seq: u64,
}

/// What the driver saw.
#[derive(Debug)]
pub struct Sent {
    /// Deliveries sent, warm-up included.
    pub issued: u64,
    /// Measured deliveries sent.
    pub measured: u64,
    /// Measured deliveries the ingress answered 2xx: the events the
    /// receiver should get.
    pub accepted_measured: u64,
    /// 2xx answers that arrived inside the window (accepted throughput).
    pub accepted_in_window: u64,
    /// 2xx answers, warm-up included: the events the server owes.
    pub accepted_total: u64,
    /// Statuses of the measured deliveries.
    pub statuses: BTreeMap<u16, u64>,
    /// Measured deliveries with no answer.
    pub transport_errors: u64,
    /// Ingress latency of the measured deliveries, from the actual send,
    /// microseconds.
    pub ingress: Histogram<u64>,
    /// The most a measured delivery went out after it was due.
    pub max_lag: Duration,
    /// The first non-2xx answer or transport error.
    pub first_error: Option<String>,
}

/// An HDR histogram of microseconds, 1 µs to 10 min, three digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

impl Sent {
    /// Nothing sent yet.
    pub fn new() -> Self {
        Self {
            issued: 0,
            measured: 0,
            accepted_measured: 0,
            accepted_in_window: 0,
            accepted_total: 0,
            statuses: BTreeMap::new(),
            transport_errors: 0,
            ingress: micros_histogram(),
            max_lag: Duration::ZERO,
            first_error: None,
        }
    }

    fn add(&mut self, other: Self) {
        self.issued += other.issued;
        self.measured += other.measured;
        self.accepted_measured += other.accepted_measured;
        self.accepted_in_window += other.accepted_in_window;
        self.accepted_total += other.accepted_total;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        let _ = self.ingress.add(&other.ingress);
        self.max_lag = self.max_lag.max(other.max_lag);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// Sends deliveries to `natives` in turn through `target` as `drive`
/// says, and waits for every answer.
pub async fn drive(
    target: &Target,
    natives: Arc<Vec<Native>>,
    drive: Drive,
    clock: Arc<Clock>,
) -> Result<Sent, String> {
    if natives.is_empty() || drive.connections == 0 {
        return Err("relay: no natives or no connections to drive".into());
    }
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..drive.connections {
        let conn = Conn::new(target.clone());
        workers.spawn(worker(
            conn,
            natives.clone(),
            drive,
            clock.clone(),
            next.clone(),
        ));
    }
    let mut sent = Sent::new();
    while let Some(done) = workers.join_next().await {
        sent.add(done.map_err(|e| e.to_string())??);
    }
    Ok(sent)
}

async fn worker(
    mut conn: Conn,
    natives: Arc<Vec<Native>>,
    drive: Drive,
    clock: Arc<Clock>,
    next: Arc<AtomicU64>,
) -> Result<Sent, String> {
    let mut tally = Sent::new();
    tokio::time::sleep_until(clock.instant(drive.start_ns).into()).await;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let due = match drive.pace {
            Pace::Rate(rate) => drive.start_ns + due_offset_ns(i, rate),
            Pace::Max => clock.now_ns(),
        };
        if due >= drive.window.end_ns {
            break;
        }
        if matches!(drive.pace, Pace::Rate(_)) {
            tokio::time::sleep_until(clock.instant(due).into()).await;
        }
        let native = &natives[(i % natives.len() as u64) as usize];
        let mark = Mark {
            seq: drive.first_seq + i,
            sent_ns: due,
        };
        let request = native.request(mark, chrono::Utc::now())?;
        let sent_at = clock.now_ns();
        let result = conn.send_request(request).await;
        let done = clock.now_ns();
        tally.issued += 1;
        let ok = matches!(&result, Ok(r) if (200..300).contains(&r.status));
        if ok {
            tally.accepted_total += 1;
            if drive.window.contains(done) {
                tally.accepted_in_window += 1;
            }
        }
        if !drive.window.contains(due) {
            continue;
        }
        tally.measured += 1;
        tally.max_lag = tally
            .max_lag
            .max(Duration::from_nanos(sent_at.saturating_sub(due)));
        let _ = tally.ingress.record(((done - sent_at) / 1000).max(1));
        match result {
            Ok(r) => {
                *tally.statuses.entry(r.status).or_default() += 1;
                if ok {
                    tally.accepted_measured += 1;
                } else {
                    tally.first_error.get_or_insert_with(|| {
                        let body = String::from_utf8_lossy(&r.body);
                        let body: String = body.chars().take(300).collect();
                        format!("{} {}", r.status, body)
                    });
                }
            }
            Err(e) => {
                tally.transport_errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_due_evenly_from_the_start() {
        assert_eq!(due_offset_ns(0, 5000.0), 0);
        assert_eq!(due_offset_ns(1, 5000.0), 200_000);
        assert_eq!(due_offset_ns(5000, 5000.0), 1_000_000_000);
        assert_eq!(due_offset_ns(3, 2.0), 1_500_000_000);
        // Ten seconds at 5,000/s stay exact to the nanosecond.
        assert_eq!(due_offset_ns(50_000, 5000.0), 10_000_000_000);
    }

    #[test]
    fn paces_parse_as_rates_or_max() {
        assert_eq!("max".parse::<Pace>(), Ok(Pace::Max));
        assert_eq!("2500".parse::<Pace>(), Ok(Pace::Rate(2500.0)));
        assert!("0".parse::<Pace>().is_err());
        assert!("fast".parse::<Pace>().is_err());
        assert_eq!(Pace::Rate(2500.0).to_string(), "2500/s");
    }

    #[test]
    fn windows_include_their_start_only() {
        let w = Window {
            start_ns: 10,
            end_ns: 20,
        };
        assert!(w.contains(10) && w.contains(19));
        assert!(!w.contains(9) && !w.contains(20));
        assert_eq!(w.duration(), Duration::from_nanos(10));
    }

    #[test]
    fn the_clock_maps_instants_both_ways() {
        let clock = Clock::new();
        let now = clock.now_ns();
        let later = now + 5_000_000;
        let gap = clock.instant(later) - clock.instant(now);
        assert_eq!(gap, Duration::from_millis(5));
    }
}
