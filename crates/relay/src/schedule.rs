//! The retry schedule of relay deliveries and the decision taken after
//! each attempt. Pure: the clock (`now`) and the randomness (`rng`) are
//! passed in, so every boundary is unit-tested.
//!
//! **Default delays** after the first attempt, in the spirit of Standard
//! Webhooks and Svix (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, …) stretched to
//! about three days, so that a subscriber down over a weekend still gets
//! its events: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h. That is
//! 10 attempts in all, the last one 75 h 35 min 5 s (≈ 3.1 days) after
//! the first, before jitter.
//!
//! **Jitter** is ±20 % of each delay, uniform. After a subscriber's outage
//! every delivery that failed during it would otherwise come back at the
//! same instants and knock the recovering receiver over again; ±20 % spreads
//! them while keeping the schedule as documented ("about 5 minutes"). Full
//! jitter (0 to the delay) would make the early retries arbitrarily short
//! and the total unpredictable.
//!
//! **`Retry-After`** (delay-seconds or an HTTP-date, RFC 9110 §10.2.3) on
//! a failed answer is honoured: the next attempt waits for the later of the
//! scheduled delay and `Retry-After`, the latter capped at
//! `max_retry_after` (default 24 h) so a receiver cannot park a delivery
//! indefinitely. It never adds attempts.
//!
//! **Decisions**: only 2xx is delivered. 410 Gone stops at once and turns
//! the subscription's relay off (the receiver said the endpoint is gone for
//! good). Every other answer (3xx included: redirects are not followed, a
//! moved endpoint must be changed in the subscription), a timeout or a
//! transport failure is retried until the schedule is used up, then given
//! up (dead-lettered). A refused address is retried like a failure when a
//! DNS name resolved to refused addresses (the answer can change: a record
//! briefly pointing at a private address must not lose the event, and the
//! schedule bounds the cost of a name that stays refused) and given up at
//! once when the URL itself is refused, an IP literal or an internal host
//! name (nothing but an edit of the URL or the policy can change that).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::attempt::AttemptOutcome;

/// The default delays after the first attempt (see the module docs).
pub const DEFAULT_DELAYS: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(14 * 3600),
    Duration::from_secs(20 * 3600),
    Duration::from_secs(24 * 3600),
];

/// The default cap on a honoured `Retry-After`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Relative jitter applied to each scheduled delay: ±20 %.
pub const JITTER: f64 = 0.2;

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A 2xx: done.
    Delivered,
    /// Try again at this instant.
    Retry {
        /// When the next attempt is due.
        at: DateTime<Utc>,
    },
    /// The schedule is used up (or the failure is permanent): dead-letter.
    GiveUp,
    /// 410 Gone: stop and disable the subscription's relay.
    Gone,
}

/// The delays between attempts and the `Retry-After` cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    /// Delay before attempt `n + 2`, for each `n`; empty means one attempt.
    delays: Vec<Duration>,
    /// Longest `Retry-After` honoured.
    max_retry_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: DEFAULT_DELAYS.to_vec(),
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl RetrySchedule {
    /// A schedule of `delays` after the first attempt. Every delay must be
    /// positive (a zero delay would retry in a tight loop).
    pub fn new(delays: Vec<Duration>, max_retry_after: Duration) -> Result<Self, String> {
        if let Some(i) = delays.iter().position(Duration::is_zero) {
            return Err(format!(
                "retry delay {i} is zero; every delay must be positive"
            ));
        }
        Ok(Self {
            delays,
            max_retry_after,
        })
    }

    /// This schedule cut to at most `max_retries` retries (a subscription's
    /// `max_retries`); never lengthened.
    pub fn limited_to(mut self, max_retries: u32) -> Self {
        self.delays
            .truncate(usize::try_from(max_retries).unwrap_or(usize::MAX));
        self
    }

    /// The configured delays after the first attempt.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX - 1)
            .saturating_add(1)
    }

    /// From the first attempt to the last, before jitter.
    pub fn total(&self) -> Duration {
        self.delays.iter().sum()
    }

    /// The decision after attempt number `attempt` (1 for the first) ended
    /// with `outcome` at `now`.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
        rng: &mut R,
    ) -> Decision {
        match outcome {
            AttemptOutcome::Response { status, .. } if (200..300).contains(status) => {
                return Decision::Delivered;
            }
            AttemptOutcome::Response { status: 410, .. } => return Decision::Gone,
            AttemptOutcome::Refused {
                permanent: true, ..
            } => return Decision::GiveUp,
            _ => {}
        }
        let index = usize::try_from(attempt.max(1) - 1).unwrap_or(usize::MAX);
        let Some(&base) = self.delays.get(index) else {
            return Decision::GiveUp;
        };
        let mut delay = base.mul_f64(rng.random_range((1.0 - JITTER)..=(1.0 + JITTER)));
        if let AttemptOutcome::Response {
            retry_after: Some(value),
            ..
        } = outcome
            && let Some(asked) = parse_retry_after(value, now)
        {
            delay = delay.max(asked.min(self.max_retry_after));
        }
        // A delay beyond chrono's range is a configuration absurdity; the
        // largest representable instant still means "much later".
        let at = chrono::Duration::from_std(delay)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Decision::Retry { at }
    }
}

/// `Retry-After` as delay-seconds or an HTTP-date, relative to `now`; a
/// date in the past is zero. `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value)
        .ok()
        .map(SystemTime::into)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2025-03-01T12:00:00Z".parse().unwrap()
    }

    fn answer(status: u16, retry_after: Option<&str>) -> AttemptOutcome {
        AttemptOutcome::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
            excerpt: String::new(),
        }
    }

    fn retry_in(d: Decision) -> Duration {
        match d {
            Decision::Retry { at } => (at - now()).to_std().unwrap(),
            other => panic!("expected a retry, got {other:?}"),
        }
    }

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn the_default_spans_about_three_days_in_ten_attempts() {
        let s = RetrySchedule::default();
        assert_eq!(s.max_attempts(), 10);
        assert_eq!(
            s.total(),
            Duration::from_secs(75 * 3600 + 35 * 60 + 5),
            "documented in the module docs and docs/api.md"
        );
        assert!(s.delays().windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn only_2xx_is_delivered() {
        let s = RetrySchedule::default();
        for status in [200, 201, 202, 204, 299] {
            assert_eq!(
                s.decide(1, &answer(status, None), now(), &mut rng()),
                Decision::Delivered,
                "{status}"
            );
        }
        // Redirects are not followed, so a 3xx is a failed attempt.
        for status in [100, 301, 302, 304, 307, 308, 400, 401, 404, 429, 500, 503] {
            assert!(
                matches!(
                    s.decide(1, &answer(status, None), now(), &mut rng()),
                    Decision::Retry { .. }
                ),
                "{status}"
            );
        }
    }

    #[test]
    fn gone_stops_at_any_attempt() {
        let s = RetrySchedule::default();
        for attempt in [1, 5, 10, 11] {
            assert_eq!(
                s.decide(attempt, &answer(410, Some("60")), now(), &mut rng()),
                Decision::Gone
            );
        }
    }

    #[test]
    fn each_retry_follows_its_delay_within_the_jitter() {
        let s = RetrySchedule::default();
        let failures = [
            answer(500, None),
            AttemptOutcome::Timeout,
            AttemptOutcome::Failed {
                message: "connection refused".into(),
            },
        ];
        let mut r = rng();
        for (i, base) in DEFAULT_DELAYS.iter().enumerate() {
            let attempt = u32::try_from(i).unwrap() + 1;
            for outcome in &failures {
                let wait = retry_in(s.decide(attempt, outcome, now(), &mut r));
                assert!(
                    wait >= base.mul_f64(0.8) && wait <= base.mul_f64(1.2),
                    "attempt {attempt}: {wait:?} vs {base:?}"
                );
            }
        }
    }

    #[test]
    fn jitter_spreads_both_ways() {
        let s = RetrySchedule::default();
        let base = DEFAULT_DELAYS[1];
        let waits: Vec<Duration> = (0..200)
            .map(|seed| {
                let mut r = StdRng::seed_from_u64(seed);
                retry_in(s.decide(2, &answer(503, None), now(), &mut r))
            })
            .collect();
        assert!(waits.iter().any(|w| *w < base.mul_f64(0.9)));
        assert!(waits.iter().any(|w| *w > base.mul_f64(1.1)));
        assert!(
            waits
                .iter()
                .all(|w| *w >= base.mul_f64(0.8) && *w <= base.mul_f64(1.2))
        );
    }

    #[test]
    fn the_last_attempt_gives_up() {
        let s = RetrySchedule::default();
        assert!(matches!(
            s.decide(9, &answer(500, None), now(), &mut rng()),
            Decision::Retry { .. }
        ));
        for attempt in [10, 11, u32::MAX] {
            assert_eq!(
                s.decide(attempt, &answer(500, None), now(), &mut rng()),
                Decision::GiveUp
            );
            // Retry-After does not add attempts.
            assert_eq!(
                s.decide(attempt, &answer(429, Some("1")), now(), &mut rng()),
                Decision::GiveUp
            );
        }
        let once = RetrySchedule::new(Vec::new(), DEFAULT_MAX_RETRY_AFTER).unwrap();
        assert_eq!(once.max_attempts(), 1);
        assert_eq!(
            once.decide(1, &AttemptOutcome::Timeout, now(), &mut rng()),
            Decision::GiveUp
        );
    }

    #[test]
    fn a_subscription_can_shorten_the_schedule() {
        let s = RetrySchedule::default().limited_to(3);
        assert_eq!(s.max_attempts(), 4);
        assert_eq!(s.delays(), &DEFAULT_DELAYS[..3]);
        assert_eq!(
            s.decide(4, &answer(500, None), now(), &mut rng()),
            Decision::GiveUp
        );
        assert_eq!(RetrySchedule::default().limited_to(50).max_attempts(), 10);
        assert_eq!(RetrySchedule::default().limited_to(0).max_attempts(), 1);
    }

    #[test]
    fn retry_after_wins_when_later_and_is_capped() {
        let s = RetrySchedule::new(
            vec![Duration::from_secs(10), Duration::from_secs(10)],
            Duration::from_secs(3600),
        )
        .unwrap();
        // Later than the schedule: honoured exactly.
        assert_eq!(
            retry_in(s.decide(1, &answer(429, Some("120")), now(), &mut rng())),
            Duration::from_secs(120)
        );
        // Earlier than the schedule: the schedule's (jittered) delay holds.
        let wait = retry_in(s.decide(1, &answer(503, Some("1")), now(), &mut rng()));
        assert!(wait >= Duration::from_secs(8) && wait <= Duration::from_secs(12));
        // Longer than the cap: the cap.
        assert_eq!(
            retry_in(s.decide(1, &answer(429, Some("864000")), now(), &mut rng())),
            Duration::from_secs(3600)
        );
        // As an HTTP-date.
        let date = httpdate::fmt_http_date((now() + chrono::Duration::seconds(600)).into());
        assert_eq!(
            retry_in(s.decide(1, &answer(503, Some(&date)), now(), &mut rng())),
            Duration::from_secs(600)
        );
        // Garbage is ignored, not fatal.
        let wait = retry_in(s.decide(1, &answer(429, Some("soon")), now(), &mut rng()));
        assert!(wait <= Duration::from_secs(12));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(
            parse_retry_after(" 30 ", now()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sat, 01 Mar 2025 12:01:40 GMT", now()),
            Some(Duration::from_secs(100))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "1.5", "soon", "2025-03-01T12:01:40Z"] {
            assert_eq!(parse_retry_after(bad, now()), None, "{bad:?}");
        }
    }

    #[test]
    fn refused_addresses_depend_on_whether_dns_can_change() {
        let s = RetrySchedule::default();
        let refused = |permanent| AttemptOutcome::Refused {
            permanent,
            reason: "points at a loopback address 127.0.0.1".into(),
        };
        assert_eq!(
            s.decide(1, &refused(true), now(), &mut rng()),
            Decision::GiveUp
        );
        assert!(matches!(
            s.decide(1, &refused(false), now(), &mut rng()),
            Decision::Retry { .. }
        ));
        assert_eq!(
            s.decide(10, &refused(false), now(), &mut rng()),
            Decision::GiveUp
        );
    }

    #[test]
    fn zero_delays_are_refused() {
        let err = RetrySchedule::new(
            vec![Duration::from_secs(1), Duration::ZERO],
            DEFAULT_MAX_RETRY_AFTER,
        )
        .unwrap_err();
        assert!(err.contains("delay 1"), "{err}");
    }
}
