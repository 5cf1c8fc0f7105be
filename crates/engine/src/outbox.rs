//! The relay delivery worker (issue 13, items 4 and 6): drains the outbox
//! the ingress fills, one attempt per claimed delivery, and keeps the
//! outbox's retention.
//!
//! One [`DeliveryWorker`] per process claims due deliveries under its own
//! worker id (`<prefix>-<ulid>`, so replicas on one Postgres and workers
//! in one process never share a claim) and takes those its process's
//! ingress stored already claimed for it ([`Handoff`]). It loads each
//! delivery's subscription once per batch, builds the envelope from the stored event
//! as the API shows it (`deliveries.rs`), writes it in the
//! subscription's format, signs it with the subscription's `whsec_`
//! secret (and with the one a rotation replaced while its overlap lasts,
//! `Delivery::previous_secret_at`), adds its auth and headers ([`switchboard_relay::build`]), sends
//! it with the [`Sender`] (which applies the callback URL policy to the
//! resolved addresses) and lets the [`RetrySchedule`], cut to the
//! subscription's `max_retries`, decide what the delivery becomes; the
//! store records it only while the claim is still this worker's.
//!
//! What is not sent:
//!
//! - a delivery of a deleted subscription, or of one no longer in relay
//!   mode, is dead-lettered (`failed`) with an attempt saying why; so is
//!   one whose subscription cannot be delivered to as it stands (no
//!   usable signing secret, a header the relay owns): only a change of the
//!   subscription fixes that, and a redelivery then sends it;
//! - a delivery of a disabled subscription waits (`pending`, no attempt
//!   counted) and is looked at again every
//!   [`DeliveryPolicy::disabled_recheck`], so re-enabling resumes it, in
//!   order for an ordered subscription; one whose event is older than
//!   the retry schedule's whole span is dead-lettered instead, as it would
//!   have been had the receiver been down that long.
//!
//! **410 Gone** ends the delivery `gone` and disables the subscription
//! (the engine's ordinary disable, as [`SYSTEM_ACTOR`], on a task of its
//! own so the worker does not wait on the provider). The subscription's
//! other open deliveries are *left*: once the disable lands they wait as
//! any disabled subscription's do, and go out if it is enabled again (a
//! dead-letter would lose them, and their order, for a receiver that was
//! merely moved). While the disable runs, this process holds them back
//! the same way; attempts already in flight, or made by another replica
//! before the disable lands, may answer 410 and end `gone` too.
//!
//! Delivery is at least once: a worker that dies, or whose lease runs
//! out mid-attempt, leaves the delivery to be claimed again, and the
//! receiver sees the same `webhook-id` on every attempt.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_core::{Error, SubscriptionSpec};
use switchboard_relay::request::MAX_TIMEOUT;
use switchboard_relay::{
    Attempt, AttemptOutcome, Decision, RetrySchedule, Sender, SigningSecret, Target, build,
    check_headers,
};
use switchboard_store::{
    ClaimedDelivery, NewAttempt, NextState, PruneCounts, Recorded, SubscriptionRecord,
};
use switchboard_telemetry::record::{self, RelayOutcome};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};

use crate::deliveries::envelope_of;
use crate::engine::{Engine, SYSTEM_ACTOR};

/// How a process's delivery worker claims, sends, retries and prunes.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Prefix of the worker id (`<prefix>-<ulid>`), for telling replicas
    /// apart in `leased_by` (a host name, say); `None`: the store's
    /// replica id.
    pub worker_prefix: Option<String>,
    /// Attempts in flight at once in this process. An attempt holds its
    /// slot until its outcome is committed, so this bounds throughput to
    /// about `concurrency` / (round trip + commit wait). Default 512.
    pub concurrency: usize,
    /// Most deliveries one claim takes. A claim never takes more than the
    /// free attempt slots, so no claimed delivery waits for one while its
    /// lease runs. Default 256.
    pub batch_size: u64,
    /// How long a claim lasts. It must outlast an attempt (the longest
    /// timeout a subscription can set, 120 s, plus the recording), or a
    /// slow attempt is taken over and sent twice. Default 180 s.
    pub lease: Duration,
    /// Longest wait between claims while idle. The ingress wakes the
    /// worker at once ([`crate::RelayRuntime::wake`]); the poll catches retries
    /// falling due, deliveries accepted by other replicas and expired
    /// leases. Default 1 s.
    pub poll_interval: Duration,
    /// The retry schedule; a subscription's `max_retries` cuts it.
    /// Default: [`RetrySchedule::default`] (10 attempts over about 3 days).
    pub schedule: RetrySchedule,
    /// How long a `delivered` delivery, its attempts and its event are
    /// kept (for the API, redelivery and replay). Default 3 days, the
    /// retry schedule's span.
    pub delivered_retention: Duration,
    /// How long `failed` and `gone` deliveries are kept: longer, so a
    /// dead letter can still be looked at and redelivered after the
    /// receiver is fixed. Default 14 days.
    pub failed_retention: Duration,
    /// How often a disabled subscription's waiting delivery is looked at
    /// again. Default 60 s.
    pub disabled_recheck: Duration,
    /// How often retention is applied and the outbox depth gauge is
    /// updated. Default 30 s.
    pub maintenance_interval: Duration,
    /// How long a worker woken by the ingress waits before it claims, so
    /// that under load one claim takes the events of several deliveries
    /// (a claim is a write transaction) rather than one each. Default 5 ms.
    pub claim_coalesce: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            worker_prefix: None,
            concurrency: 512,
            batch_size: 256,
            lease: Duration::from_secs(180),
            poll_interval: Duration::from_secs(1),
            schedule: RetrySchedule::default(),
            delivered_retention: Duration::from_secs(3 * 24 * 3600),
            failed_retention: Duration::from_secs(14 * 24 * 3600),
            disabled_recheck: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(30),
            claim_coalesce: Duration::from_millis(5),
        }
    }
}

impl DeliveryPolicy {
    /// Checks the policy for a configuration loader: counts and intervals
    /// positive, and a lease that outlasts the longest attempt. Names the
    /// field at fault.
    pub fn check(&self) -> Result<(), String> {
        if self.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("batch_size must be at least 1".into());
        }
        for (name, d) in [
            ("poll_interval", self.poll_interval),
            ("disabled_recheck", self.disabled_recheck),
            ("maintenance_interval", self.maintenance_interval),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.lease <= MAX_TIMEOUT {
            return Err(format!(
                "lease must be longer than the longest attempt ({} s)",
                MAX_TIMEOUT.as_secs()
            ));
        }
        Ok(())
    }
}

/// What one [`DeliveryWorker::deliver_due`] pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Deliveries claimed.
    pub claimed: usize,
    /// Answered 2xx.
    pub delivered: usize,
    /// Due again later.
    pub retried: usize,
    /// Dead-lettered (retries used up, or refused without sending).
    pub failed: usize,
    /// Answered 410.
    pub gone: usize,
    /// Handed back unsent (disabled subscription), no attempt counted.
    pub postponed: usize,
    /// The claim had passed to another worker; nothing was written.
    pub lease_lost: usize,
    /// The outcome could not be written (store error); the delivery is
    /// claimed again once its lease runs out.
    pub errors: usize,
}

impl DeliveryReport {
    fn add(&mut self, handled: Handled) {
        let slot = match handled {
            Handled::Recorded(RelayOutcome::Delivered) => &mut self.delivered,
            Handled::Recorded(RelayOutcome::Retry) => &mut self.retried,
            Handled::Recorded(RelayOutcome::Failed) => &mut self.failed,
            Handled::Recorded(RelayOutcome::Gone) => &mut self.gone,
            Handled::Recorded(RelayOutcome::LeaseLost) => &mut self.lease_lost,
            Handled::Postponed => &mut self.postponed,
            Handled::Error => &mut self.errors,
        };
        *slot += 1;
    }
}

/// What one maintenance run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// What retention deleted.
    pub pruned: PruneCounts,
    /// Deliveries pending or being attempted (the gauge's value).
    pub depth: u64,
}

/// How one claimed delivery ended for the worker.
#[derive(Debug, Clone, Copy)]
enum Handled {
    Recorded(RelayOutcome),
    Postponed,
    Error,
}

/// What a delivery's subscription allows, worked out once per batch.
#[derive(Debug)]
enum Route {
    /// Send it like this.
    Send(Box<Delivering>),
    /// Hand it back unsent until `until`; dead-letter it instead once its
    /// event is older than `give_up_after`.
    Wait {
        reason: String,
        until: DateTime<Utc>,
        give_up_after: Option<Duration>,
    },
    /// Dead-letter it unsent.
    DeadLetter(String),
}

/// A subscription's delivery settings, ready for attempts.
#[derive(Debug)]
struct Delivering {
    target: Target,
    secrets: Vec<SigningSecret>,
    schedule: RetrySchedule,
}

/// The subscriptions of one claimed batch, each loaded once by whichever
/// of its deliveries gets there first.
type Routes = HashMap<(String, String), Arc<OnceCell<Route>>>;

/// A claimed delivery, the shared route of its subscription, and the
/// stored versions of the batch's subscriptions (a deleted one has none).
type Claimed = (
    ClaimedDelivery,
    Arc<OnceCell<Route>>,
    Arc<HashMap<String, i64>>,
);

/// The way from this process's ingress to its running delivery worker
/// ([`DeliveryWorker::run`] opens it). A delivery the ingress accepts
/// while the worker has a free attempt slot is stored already claimed by
/// the worker ([`switchboard_store::Store::accept_claimed_event`]) and
/// passed over in memory with that slot: it costs no claim (a write, on
/// SQLite a turn of the one writer), no read of its event and no wait to
/// coalesce claims. Deliveries that find no free slot, ordered ones, and
/// everything due later (retries, other replicas' events, expired leases)
/// are claimed as before.
#[derive(Debug)]
pub(crate) struct Handoff {
    worker_id: Arc<str>,
    lease: Duration,
    slots: Arc<Semaphore>,
    queue: mpsc::UnboundedSender<Handed>,
}

/// A delivery handed to the worker, with the attempt slot taken for it.
type Handed = (ClaimedDelivery, OwnedSemaphorePermit);

/// One of the worker's attempt slots, taken by the ingress for a delivery
/// it is about to store claimed. Dropped unused, the slot is free again.
pub(crate) struct Reserved {
    worker_id: Arc<str>,
    lease_until: DateTime<Utc>,
    slot: OwnedSemaphorePermit,
    queue: mpsc::UnboundedSender<Handed>,
}

impl Handoff {
    /// A free attempt slot of a worker that still runs, if there is one.
    pub(crate) fn reserve(&self) -> Option<Reserved> {
        if self.queue.is_closed() {
            return None;
        }
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(Reserved {
            worker_id: Arc::clone(&self.worker_id),
            lease_until: Utc::now() + chrono_duration(self.lease),
            slot,
            queue: self.queue.clone(),
        })
    }
}

impl Reserved {
    /// The worker to store the delivery claimed by.
    pub(crate) fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The end of the claim's lease.
    pub(crate) fn lease_until(&self) -> DateTime<Utc> {
        self.lease_until
    }

    /// Passes the stored, claimed delivery to the worker.
    pub(crate) fn hand(self, claimed: ClaimedDelivery) {
        if let Err(mpsc::error::SendError((c, _))) = self.queue.send((claimed, self.slot)) {
            // The worker stopped after the slot was taken: its claim is
            // released like those of its attempts in flight.
            tracing::info!(delivery = %c.delivery.id, worker = %self.worker_id,
                "relay worker stopped before taking a delivery; it goes out once its claim is released");
        }
    }
}

/// A process's relay delivery worker. Cheap to clone: clones share the
/// worker id, the attempt slots and the state of running disables.
#[derive(Clone)]
pub struct DeliveryWorker {
    engine: Engine,
    policy: Arc<DeliveryPolicy>,
    sender: Arc<Sender>,
    id: Arc<str>,
    /// One permit per attempt in flight in the worker loop.
    slots: Arc<Semaphore>,
    /// Subscriptions this process is disabling after a 410.
    disabling: Arc<Mutex<HashSet<String>>>,
    /// Subscriptions as last loaded, by id: reused while the stored
    /// version is the same (one light query per claim tells), so a claim
    /// does not read and open every subscription it touches again.
    records: Arc<Mutex<HashMap<String, Arc<SubscriptionRecord>>>>,
}

/// How often a worker looks for claims of dead replicas (Postgres).
pub const DEAD_REPLICA_CHECK: Duration = Duration::from_secs(5);

/// Most handed deliveries started together (their subscriptions' versions
/// are read once for all of them).
const HANDED_AT_ONCE: usize = 256;

/// Most subscriptions a worker keeps loaded; past it the cache starts over.
const RECORDS_KEPT: usize = 10_000;

impl Engine {
    /// A delivery worker on this engine's store with a fresh worker id.
    pub fn delivery_worker(&self, policy: DeliveryPolicy, sender: Arc<Sender>) -> DeliveryWorker {
        let prefix = policy
            .worker_prefix
            .clone()
            .unwrap_or_else(|| self.store.replica_id().to_owned());
        let concurrency = policy.concurrency.max(1);
        DeliveryWorker {
            engine: self.clone(),
            policy: Arc::new(policy),
            sender,
            id: format!("{prefix}-{}", ulid::Ulid::new()).into(),
            slots: Arc::new(Semaphore::new(concurrency)),
            disabling: Arc::default(),
            records: Arc::default(),
        }
    }

    /// Starts this process's delivery worker ([`DeliveryWorker::run`])
    /// and its maintenance ([`DeliveryWorker::maintain`] every
    /// `maintenance_interval`) on one task. Aborting the handle stops both
    /// and drops the attempts in flight, whose deliveries are claimed
    /// again once their leases run out, or on a single-process store when
    /// the next process starts its worker (which first releases every
    /// claim left behind).
    pub fn spawn_delivery_workers(
        &self,
        policy: DeliveryPolicy,
        sender: Arc<Sender>,
    ) -> JoinHandle<()> {
        let worker = self.delivery_worker(policy, sender);
        let single_process = self.single_process;
        tokio::spawn(async move {
            if single_process {
                worker.release_dead_claims().await;
            }
            tokio::join!(
                worker.run(),
                worker.maintain_forever(),
                worker.watch_dead_replicas(single_process)
            );
        })
    }
}

impl DeliveryWorker {
    /// The id this worker claims under.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// On a single-process store (SQLite), hands back the claims a previous
    /// process left when it died or was stopped mid-attempt: no other
    /// process can hold one, so their deliveries go out again now rather
    /// than once their leases (`relay.lease_ms`, minutes) have passed.
    async fn release_dead_claims(&self) {
        match self.engine.store.release_relay_claims().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(
                    count = n,
                    "relay deliveries claimed by a previous process are due again"
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "releasing a previous process's relay claims failed; they are taken again once their leases pass");
            }
        }
    }

    /// Several replicas (Postgres): every [`DEAD_REPLICA_CHECK`], hands
    /// back the claims of replicas that died, so a `kill -9` delays their
    /// deliveries by seconds, not by a lease. Only for workers named after
    /// their replica (no `worker_prefix`), whose claims say whose they are.
    async fn watch_dead_replicas(&self, single_process: bool) {
        if single_process || self.policy.worker_prefix.is_some() {
            return;
        }
        let mut tick = tokio::time::interval(DEAD_REPLICA_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.engine.store.release_claims_of_dead_replicas().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(
                        count = n,
                        "relay deliveries claimed by a dead replica are due again"
                    );
                    if let Some(relay) = self.engine.relay() {
                        relay.wake.notify_one();
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "looking for dead replicas' relay claims failed")
                }
            }
        }
    }

    /// One pass: claims up to `batch_size` due deliveries (no more than
    /// `concurrency`), attempts them all at once and returns once every
    /// outcome is written.
    pub async fn deliver_due(&self) -> Result<DeliveryReport, Error> {
        let limit = self.policy.batch_size.min(self.policy.concurrency as u64);
        let claimed = self.claim(limit).await?;
        let mut report = DeliveryReport {
            claimed: claimed.len(),
            ..DeliveryReport::default()
        };
        let mut tasks = JoinSet::new();
        for (delivery, route, versions) in claimed {
            let worker = self.clone();
            tasks.spawn(async move { worker.deliver(delivery, route, &versions).await });
        }
        while let Some(done) = tasks.join_next().await {
            report.add(done.unwrap_or_else(|e| {
                tracing::error!(error = %e, "a relay attempt task failed");
                Handled::Error
            }));
        }
        Ok(report)
    }

    /// The worker loop. It opens this process's [`Handoff`] and starts an
    /// attempt, on a task of its own, for each delivery the ingress hands
    /// over, and claims due deliveries for its free attempt slots: at
    /// start, when woken (an event stored unclaimed, a redelivery), every
    /// `poll_interval`, at once again while claims come back full and
    /// slots are free, and when a slot frees after a full claim found none
    /// free. A slow receiver holds one slot, not a batch. Never returns.
    pub async fn run(&self) {
        let relay = self.engine.relay().cloned();
        let (queue, mut handed) = mpsc::unbounded_channel();
        // Closed when relay mode is off or a later worker of this process
        // took the handoff over: then this one only claims.
        let mut handoff_open = match &relay {
            Some(r) => {
                r.open_handoff(Handoff {
                    worker_id: Arc::clone(&self.id),
                    lease: self.policy.lease,
                    slots: Arc::clone(&self.slots),
                    queue,
                });
                true
            }
            None => false,
        };
        let mut tasks: JoinSet<Handled> = JoinSet::new();
        let mut arrived = Vec::new();
        let mut claim_now = true;
        let mut more_due = false;
        let mut next_poll = tokio::time::Instant::now();
        loop {
            // Registered before the claim, so a wake-up during it counts.
            let wake = relay.as_deref().map(|r| r.wake.notified());
            let mut wake = std::pin::pin!(wake);
            if let Some(w) = wake.as_mut().as_pin_mut() {
                w.enable();
            }
            while let Some(done) = tasks.try_join_next() {
                log_join(done);
            }
            if claim_now {
                more_due = self.start_due(&mut tasks).await;
                next_poll = tokio::time::Instant::now() + self.policy.poll_interval;
                claim_now = false;
            }
            let free = self.slots.available_permits();
            if more_due && free > 0 {
                claim_now = true;
                continue;
            }
            tokio::select! {
                n = handed.recv_many(&mut arrived, HANDED_AT_ONCE), if handoff_open => {
                    if n == 0 {
                        handoff_open = false;
                    } else {
                        self.start_handed(std::mem::take(&mut arrived), &mut tasks).await;
                    }
                }
                () = woken(wake.as_mut().as_pin_mut()) => {
                    tokio::time::sleep(self.policy.claim_coalesce).await;
                    claim_now = true;
                }
                () = tokio::time::sleep_until(next_poll) => claim_now = true,
                Some(done) = tasks.join_next(), if free == 0 && more_due => {
                    log_join(done);
                    claim_now = true;
                }
            }
        }
    }

    /// Starts the attempts of deliveries the ingress handed over.
    async fn start_handed(&self, handed: Vec<Handed>, tasks: &mut JoinSet<Handled>) {
        let (claimed, slots): (Vec<_>, Vec<_>) = handed.into_iter().unzip();
        let ready = match self.with_routes(claimed).await {
            Ok(ready) => ready,
            Err(e) => {
                tracing::warn!(error = %e, worker = %self.id,
                    "loading the subscriptions of handed relay deliveries failed; they go out once their leases run out");
                return;
            }
        };
        for (claimed, slot) in ready.into_iter().zip(slots) {
            self.spawn_attempt(tasks, claimed, slot);
        }
    }

    /// Starts the attempt of `claimed` on a task of its own, holding `slot`
    /// until its outcome is written.
    fn spawn_attempt(
        &self,
        tasks: &mut JoinSet<Handled>,
        (delivery, route, versions): Claimed,
        slot: OwnedSemaphorePermit,
    ) {
        let worker = self.clone();
        tasks.spawn(async move {
            let _slot = slot;
            worker.deliver(delivery, route, &versions).await
        });
    }

    /// Claims for the free slots and starts the attempts; whether to claim
    /// again once a slot is free (the claim came back full, or no slot was
    /// free to claim for).
    async fn start_due(&self, tasks: &mut JoinSet<Handled>) -> bool {
        // Slots are taken before the claim: the ingress takes them too,
        // and no claimed delivery should wait for one while its lease runs.
        let limit = self.policy.batch_size.min(self.policy.concurrency as u64);
        let mut slots = Vec::new();
        while (slots.len() as u64) < limit {
            match Arc::clone(&self.slots).try_acquire_owned() {
                Ok(slot) => slots.push(slot),
                Err(_) => break,
            }
        }
        if slots.is_empty() {
            return true;
        }
        let want = slots.len() as u64;
        let claimed = match self.claim(want).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, worker = %self.id, "claiming relay deliveries failed");
                return false;
            }
        };
        let full = claimed.len() as u64 == want;
        for (claimed, slot) in claimed.into_iter().zip(slots) {
            self.spawn_attempt(tasks, claimed, slot);
        }
        full
    }

    /// Claims up to `limit` due deliveries, each with the shared loader of
    /// its subscription.
    async fn claim(&self, limit: u64) -> Result<Vec<Claimed>, Error> {
        let claimed = self
            .engine
            .store
            .claim_due_deliveries(&self.id, Utc::now(), limit, self.policy.lease)
            .await?;
        self.with_routes(claimed).await
    }

    /// Claimed deliveries, in the same order, each with the shared loader
    /// of its subscription and the stored versions of them all (one read).
    async fn with_routes(&self, claimed: Vec<ClaimedDelivery>) -> Result<Vec<Claimed>, Error> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<String> = claimed
            .iter()
            .map(|c| c.delivery.subscription_id.clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let versions = Arc::new(self.engine.store.subscription_versions(&ids).await?);
        let mut routes = Routes::new();
        Ok(claimed
            .into_iter()
            .map(|c| {
                let key = (
                    c.delivery.tenant.clone(),
                    c.delivery.subscription_id.clone(),
                );
                let route = Arc::clone(routes.entry(key).or_default());
                (c, route, Arc::clone(&versions))
            })
            .collect())
    }

    /// The subscription `id` of `tenant` at stored version `version`: the
    /// one loaded before when it has that version, else read anew.
    async fn subscription(
        &self,
        tenant: &str,
        id: &str,
        version: i64,
    ) -> Result<Arc<SubscriptionRecord>, Error> {
        let cached = self.lock_records().get(id).cloned();
        if let Some(rec) = cached.filter(|r| r.version == version && r.tenant == tenant) {
            return Ok(rec);
        }
        let rec = Arc::new(self.engine.store.get(tenant, id).await?);
        let mut records = self.lock_records();
        if records.len() >= RECORDS_KEPT {
            records.clear();
        }
        records.insert(id.to_owned(), Arc::clone(&rec));
        Ok(rec)
    }

    fn lock_records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<SubscriptionRecord>>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Handles one claimed delivery as its subscription allows.
    async fn deliver(
        &self,
        c: ClaimedDelivery,
        route: Arc<OnceCell<Route>>,
        versions: &HashMap<String, i64>,
    ) -> Handled {
        let d = &c.delivery;
        let route = route
            .get_or_init(|| {
                let version = versions.get(&d.subscription_id).copied();
                self.route(&d.tenant, &d.subscription_id, version)
            })
            .await;
        match route {
            Route::Send(how) => self.attempt(&c, how).await,
            Route::DeadLetter(reason) => self.dead_letter(&c, reason).await,
            Route::Wait {
                reason,
                until,
                give_up_after,
            } => {
                let age = (Utc::now() - c.event.received_at)
                    .to_std()
                    .unwrap_or_default();
                match give_up_after {
                    Some(span) if age > *span => {
                        let reason = format!(
                            "{reason} for longer than the retry schedule ({} s); dead-lettered",
                            span.as_secs()
                        );
                        self.dead_letter(&c, &reason).await
                    }
                    _ => self.postpone(&c, *until, reason).await,
                }
            }
        }
    }

    /// What the subscription allows its deliveries now.
    async fn route(&self, tenant: &str, id: &str, version: Option<i64>) -> Route {
        let now = Utc::now();
        let wait = |reason: String, give_up_after| Route::Wait {
            reason,
            until: now + chrono_duration(self.policy.disabled_recheck),
            give_up_after,
        };
        let loaded = match version {
            Some(v) => self.subscription(tenant, id, v).await,
            None => Err(Error::NotFound {
                what: "subscription",
                id: id.to_owned(),
            }),
        };
        let rec = match loaded {
            Ok(rec) => rec,
            Err(Error::NotFound { .. }) => {
                return Route::DeadLetter(format!(
                    "subscription `{id}` was deleted; nothing was sent"
                ));
            }
            Err(e) => {
                tracing::warn!(error = %e, subscription = %id, "loading a relay subscription failed");
                return wait(format!("could not load the subscription: {e}"), None);
            }
        };
        let spec = &rec.spec;
        if !spec.delivery.is_relay() {
            return Route::DeadLetter(format!(
                "subscription `{id}` is no longer relayed (delivery `{}`); nothing was sent",
                spec.delivery.mode.as_str()
            ));
        }
        if !spec.enabled {
            let span = self.schedule_for(spec).total();
            return wait("the subscription is disabled".into(), Some(span));
        }
        if self.is_disabling(id) {
            return wait(
                "the subscription is being disabled after a 410 Gone".into(),
                None,
            );
        }
        match self.delivering(spec) {
            Ok(d) => Route::Send(Box::new(d)),
            Err(reason) => Route::DeadLetter(reason),
        }
    }

    /// The policy's schedule, cut to the subscription's `max_retries`.
    fn schedule_for(&self, spec: &SubscriptionSpec) -> RetrySchedule {
        match spec.max_retries {
            Some(n) => self.policy.schedule.clone().limited_to(n),
            None => self.policy.schedule.clone(),
        }
    }

    /// The delivery settings of `spec`, or why it cannot be delivered to
    /// as it stands.
    fn delivering(&self, spec: &SubscriptionSpec) -> Result<Delivering, String> {
        let secret = spec
            .signing_secret
            .as_ref()
            .ok_or("the subscription has no signing secret; relay deliveries are always signed")?;
        let secret = SigningSecret::parse(secret.expose())
            .map_err(|e| format!("the subscription's signing secret is unusable: {e}"))?;
        let mut secrets = vec![secret];
        // During a rotation's overlap the replaced secret signs too, so a
        // receiver still holding it verifies. It parsed when it was the
        // current one; should it not now, the current one still signs.
        let previous = spec.delivery.previous_secret_at(Utc::now());
        if let Some(Ok(previous)) = previous.map(|p| SigningSecret::parse(p.expose())) {
            secrets.push(previous);
        }
        let target = Target::from_spec(spec);
        check_headers(&target.headers, &target.auth).map_err(|e| e.to_string())?;
        Ok(Delivering {
            target,
            secrets,
            schedule: self.schedule_for(spec),
        })
    }

    /// Sends one attempt and records what the schedule makes of it.
    async fn attempt(&self, c: &ClaimedDelivery, how: &Delivering) -> Handled {
        // The envelope exactly as the API shows it.
        let envelope = match envelope_of(&c.event) {
            Ok(e) => e,
            Err(e) => return self.dead_letter(c, &e.to_string()).await,
        };
        let body = envelope.body(how.target.format);
        let timestamp = Utc::now().timestamp();
        let request = match build(
            &how.target,
            &c.delivery.webhook_id,
            timestamp,
            body.into(),
            &how.secrets,
        ) {
            Ok(r) => r,
            Err(e) => return self.dead_letter(c, &e.to_string()).await,
        };
        let attempt = self.sender.send(request).await;
        let number = c.delivery.attempts + 1;
        let decision = how
            .schedule
            .decide(number, &attempt.outcome, Utc::now(), &mut rand::rng());
        let (next, outcome) = match decision {
            Decision::Delivered => (NextState::Delivered, RelayOutcome::Delivered),
            Decision::Retry { at } => (NextState::Retry { at }, RelayOutcome::Retry),
            Decision::GiveUp => (NextState::Failed, RelayOutcome::Failed),
            Decision::Gone => (NextState::Gone, RelayOutcome::Gone),
        };
        if decision == Decision::Gone {
            self.disable(c);
        }
        let written = self.record(c, &attempt, next).await;
        let handled = match written {
            Some(Recorded::Stored) => Handled::Recorded(outcome),
            Some(Recorded::LeaseLost) => Handled::Recorded(RelayOutcome::LeaseLost),
            None => return Handled::Error,
        };
        let end_to_end = (outcome == RelayOutcome::Delivered).then(|| {
            (Utc::now() - c.event.received_at)
                .to_std()
                .unwrap_or_default()
        });
        if let Handled::Recorded(o) = handled {
            record::relay_attempt(&c.event.provider, o, Some(attempt.latency), end_to_end);
        }
        handled
    }

    /// Writes `attempt` and the delivery's `next` state; `None` when the
    /// store failed (logged).
    async fn record(
        &self,
        c: &ClaimedDelivery,
        attempt: &Attempt,
        next: NextState,
    ) -> Option<Recorded> {
        let (outcome, excerpt, error) = match &attempt.outcome {
            AttemptOutcome::Response { excerpt, .. } => ("response", Some(excerpt.as_str()), None),
            AttemptOutcome::Timeout => ("timeout", None, Some("no answer within the timeout")),
            AttemptOutcome::Failed { message } => ("failed", None, Some(message.as_str())),
            AttemptOutcome::Refused { reason, .. } => ("refused", None, Some(reason.as_str())),
        };
        let new = NewAttempt {
            delivery_id: &c.delivery.id,
            worker_id: &self.id,
            attempt: c.delivery.attempts + 1,
            started_at: attempt.started_at,
            latency: attempt.latency,
            status_code: attempt.outcome.status(),
            outcome,
            response_excerpt: excerpt,
            error,
            next,
        };
        self.write(c, self.engine.store.record_attempt(&new).await)
    }

    /// Dead-letters a delivery unsent, with an attempt saying why.
    async fn dead_letter(&self, c: &ClaimedDelivery, reason: &str) -> Handled {
        tracing::warn!(delivery = %c.delivery.id, subscription = %c.delivery.subscription_id, %reason, "relay delivery dead-lettered unsent");
        let attempt = Attempt {
            started_at: Utc::now(),
            latency: Duration::ZERO,
            outcome: AttemptOutcome::Refused {
                permanent: true,
                reason: reason.to_owned(),
            },
        };
        match self.record(c, &attempt, NextState::Failed).await {
            Some(Recorded::Stored) => {
                record::relay_attempt(&c.event.provider, RelayOutcome::Failed, None, None);
                Handled::Recorded(RelayOutcome::Failed)
            }
            Some(Recorded::LeaseLost) => {
                record::relay_attempt(&c.event.provider, RelayOutcome::LeaseLost, None, None);
                Handled::Recorded(RelayOutcome::LeaseLost)
            }
            None => Handled::Error,
        }
    }

    /// Hands a delivery back unsent until `until`.
    async fn postpone(&self, c: &ClaimedDelivery, until: DateTime<Utc>, reason: &str) -> Handled {
        let d = &c.delivery;
        let written = self
            .engine
            .store
            .postpone_delivery(&d.id, &self.id, d.attempts, until, reason)
            .await;
        match self.write(c, written) {
            Some(Recorded::Stored) => Handled::Postponed,
            Some(Recorded::LeaseLost) => Handled::Recorded(RelayOutcome::LeaseLost),
            None => Handled::Error,
        }
    }

    /// A store write's outcome, its failure logged.
    fn write(&self, c: &ClaimedDelivery, written: Result<Recorded, Error>) -> Option<Recorded> {
        match written {
            Ok(Recorded::LeaseLost) => {
                tracing::info!(delivery = %c.delivery.id, worker = %self.id, "relay lease lost; another worker holds the delivery");
                Some(Recorded::LeaseLost)
            }
            Ok(r) => Some(r),
            Err(e) => {
                tracing::warn!(delivery = %c.delivery.id, error = %e, "recording a relay delivery failed; it is retried once its lease runs out");
                None
            }
        }
    }

    fn is_disabling(&self, id: &str) -> bool {
        self.disabling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    /// Disables the subscription of a delivery answered 410, on a task of
    /// its own; once per subscription at a time in this process.
    fn disable(&self, c: &ClaimedDelivery) {
        let id = c.delivery.subscription_id.clone();
        let first = self
            .disabling
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone());
        if !first {
            return;
        }
        let engine = self.engine.clone();
        let disabling = Arc::clone(&self.disabling);
        let tenant = c.delivery.tenant.clone();
        tokio::spawn(async move {
            match engine.set_enabled(&tenant, SYSTEM_ACTOR, &id, false).await {
                Ok(_) => {
                    tracing::info!(subscription = %id, "relay receiver answered 410 Gone; subscription disabled");
                }
                Err(e) => {
                    tracing::warn!(subscription = %id, error = %e, "relay receiver answered 410 Gone; disabling the subscription failed");
                }
            }
            disabling
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&id);
        });
    }

    /// Applies retention and updates the outbox depth gauge.
    pub async fn maintain(&self) -> Result<Maintenance, Error> {
        let now = Utc::now();
        let store = &self.engine.store;
        let pruned = store
            .prune_relay(
                now - chrono_duration(self.policy.delivered_retention),
                now - chrono_duration(self.policy.failed_retention),
            )
            .await?;
        let depth = store.outbox_depth().await?;
        record::relay_outbox_depth(depth);
        Ok(Maintenance { pruned, depth })
    }

    /// [`DeliveryWorker::maintain`] every `maintenance_interval`, the
    /// first time at once. Never returns.
    async fn maintain_forever(&self) {
        let mut tick = tokio::time::interval(self.policy.maintenance_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.maintain().await {
                Ok(m) if m.pruned.deliveries > 0 => {
                    tracing::debug!(
                        deliveries = m.pruned.deliveries,
                        events = m.pruned.events,
                        "relay retention applied"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "relay maintenance failed"),
            }
        }
    }
}

/// Resolves when `wake` is notified; never without one (relay mode off).
async fn woken(wake: Option<std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>>) {
    match wake {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

fn log_join(done: Result<Handled, tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a relay attempt task failed");
    }
}

/// `d` as a chrono duration; one beyond chrono's range (a configuration
/// absurdity) as the largest.
fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_passes_its_own_check() {
        let p = DeliveryPolicy::default();
        assert_eq!(p.check(), Ok(()));
        assert!(p.lease > MAX_TIMEOUT);
        let short = DeliveryPolicy {
            lease: Duration::from_secs(60),
            ..DeliveryPolicy::default()
        };
        assert!(short.check().unwrap_err().starts_with("lease"));
        let none = DeliveryPolicy {
            concurrency: 0,
            ..DeliveryPolicy::default()
        };
        assert!(none.check().unwrap_err().starts_with("concurrency"));
        let busy = DeliveryPolicy {
            poll_interval: Duration::ZERO,
            ..DeliveryPolicy::default()
        };
        assert!(busy.check().unwrap_err().starts_with("poll_interval"));
    }

    #[test]
    fn reports_count_each_ending_in_its_own_slot() {
        let mut r = DeliveryReport::default();
        for h in [
            Handled::Recorded(RelayOutcome::Delivered),
            Handled::Recorded(RelayOutcome::Retry),
            Handled::Recorded(RelayOutcome::Retry),
            Handled::Recorded(RelayOutcome::Failed),
            Handled::Recorded(RelayOutcome::Gone),
            Handled::Recorded(RelayOutcome::LeaseLost),
            Handled::Postponed,
            Handled::Error,
        ] {
            r.add(h);
        }
        assert_eq!(
            r,
            DeliveryReport {
                claimed: 0,
                delivered: 1,
                retried: 2,
                failed: 1,
                gone: 1,
                postponed: 1,
                lease_lost: 1,
                errors: 1,
            }
        );
    }
}
