//! What a running change has done upstream and not written yet.
//!
//! A change's native records and journal steps are kept here and written
//! in one transaction before the next request that may change the provider
//! (with that request's in-flight mark), or with the change's closing
//! write (`change.rs`). A crash in between loses only what the last
//! request did, which a crash during that request loses too, and recovery
//! already finds that by looking (the in-flight mark tells it when, and
//! adoption what). Writing per request instead of per fact is what keeps a
//! create at two transactions.

use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use switchboard_core::operation::{Step, StepAction};
use switchboard_store::{NativeRecord, NativeWrite, Progress, Settle};

use crate::apply::Target;
use crate::step::StepPolicy;

/// The unwritten part of a change, and the in-flight mark the journal
/// holds for it.
#[derive(Debug, Default)]
pub(crate) struct Unwritten {
    natives: Vec<NativeWrite>,
    steps: Vec<Step>,
    /// The `settle_at` the journal entry holds; a request sent before it
    /// less the step policy's bound and margin needs no new mark.
    settle_at: Option<DateTime<Utc>>,
    /// The journal entry may hold steps already (false only for an entry
    /// this process opened and has written none to), so appending must
    /// read them first.
    entry_has_steps: bool,
}

impl Unwritten {
    /// Nothing unwritten; the journal entry holds `settle_at` and, unless
    /// it was just opened, maybe steps.
    pub(crate) fn new(settle_at: Option<DateTime<Utc>>, just_opened: bool) -> Mutex<Self> {
        Mutex::new(Self {
            settle_at,
            entry_has_steps: !just_opened,
            ..Self::default()
        })
    }

    /// All of it, for a change's last write.
    pub(crate) fn progress(&self) -> Progress<'_> {
        Progress {
            natives: &self.natives,
            steps: &self.steps,
            first_steps: !self.entry_has_steps,
            settle: Settle::Keep,
        }
    }
}

/// The in-flight mark a request sent now needs: the moment it can no
/// longer be applied.
pub(crate) fn settle_after_now(policy: &StepPolicy) -> DateTime<Utc> {
    Utc::now()
        + chrono::Duration::from_std(policy.call_bound + policy.margin)
            .unwrap_or(chrono::Duration::minutes(5))
}

/// The mark to write when a new one is needed: one margin later than
/// needed, so the requests that follow within that margin (the next
/// native of the change) need no write of their own.
pub(crate) fn settle_with_slack(policy: &StepPolicy) -> DateTime<Utc> {
    settle_after_now(policy) + chrono::Duration::from_std(policy.margin).unwrap_or_default()
}

impl Target<'_> {
    fn unwritten(&self) -> MutexGuard<'_, Unwritten> {
        self.unwritten.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a native resource that now exists upstream.
    pub(crate) fn record(&self, rec: &NativeRecord) {
        self.unwritten()
            .natives
            .push(NativeWrite::Record(rec.clone()));
    }

    /// Notes that the native resource of `key` was deleted upstream.
    pub(crate) fn forget(&self, key: &str) {
        self.unwritten()
            .natives
            .push(NativeWrite::Forget(key.to_owned()));
    }

    /// Notes one completed (or unknown) native step for the journal.
    pub(crate) fn step(&self, action: StepAction, key: &str, native_id: &str) {
        self.unwritten()
            .steps
            .push(Step::now(action, key, native_id));
    }

    /// Before a request that may change the provider: writes what is
    /// unwritten and, when the journal's mark would pass before this
    /// request can no longer land, a later mark.
    pub(crate) async fn in_flight(&self) {
        let (covered, empty) = {
            let u = self.unwritten();
            let needed = settle_after_now(self.policy);
            (
                u.settle_at.is_some_and(|at| at >= needed),
                u.natives.is_empty() && u.steps.is_empty(),
            )
        };
        if covered && empty {
            return;
        }
        let settle = if covered {
            Settle::Keep
        } else {
            Settle::At(settle_with_slack(self.policy))
        };
        self.write_progress(settle).await;
    }

    /// Writes what is unwritten with `settle`. A failed write keeps it
    /// for the next write (the closing one at the latest): the journal
    /// then relies on the lease alone, as it would after a crash, and the
    /// sweep still catches a late landing.
    pub(crate) async fn write_progress(&self, settle: Settle) {
        let (natives, steps, first_steps) = {
            let mut u = self.unwritten();
            let first = !u.entry_has_steps;
            (
                std::mem::take(&mut u.natives),
                std::mem::take(&mut u.steps),
                first,
            )
        };
        let p = Progress {
            natives: &natives,
            steps: &steps,
            first_steps,
            settle,
        };
        let written = self
            .store
            .progress(self.op_id, self.tenant, self.sub_id, &p)
            .await;
        let mut u = self.unwritten();
        match written {
            Ok(()) => {
                if let Settle::At(at) = settle {
                    u.settle_at = Some(at);
                }
                u.entry_has_steps |= !steps.is_empty();
            }
            Err(e) => {
                tracing::warn!(op = self.op_id, error = %e, "change progress not written; kept for the next write");
                let later_natives = std::mem::replace(&mut u.natives, natives);
                u.natives.extend(later_natives);
                let later_steps = std::mem::replace(&mut u.steps, steps);
                u.steps.extend(later_steps);
            }
        }
    }

    /// Takes what is unwritten, for the change's closing write.
    pub(crate) fn take_unwritten(&self) -> Unwritten {
        std::mem::take(&mut *self.unwritten())
    }
}
