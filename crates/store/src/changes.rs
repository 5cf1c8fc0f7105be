//! The transactions of one change, as few as its guarantees allow.
//!
//! - **Opening** ([`Store::open_change`]): the journal entry, the claim of
//!   the row (or its insert, for a create) and the in-flight mark of the
//!   first request, in one transaction, so a subscription is never
//!   `pending` without an entry recovery can finish.
//! - **Progress** ([`Store::progress`]): the native records and steps
//!   completed since the last write, and the in-flight mark of the next
//!   request, written before that request is sent.
//! - **Closing** ([`Store::close_change`]): what was still unwritten, the
//!   change's result and the entry's close, in one transaction.
//!
//! A crash between a completed request and the next write loses only what
//! that request did, which is what a crash during the request loses too:
//! recovery already finds it by looking (the journal's `settle_at` and
//! adoption), so batching the writes weakens nothing.

use chrono::{DateTime, Utc};
use switchboard_core::operation::{Finding, OperationState, Step};
use switchboard_core::{Error, SubscriptionStatus};

use crate::claims::{claim_into, finish_reconciliation_into, release_into};
use crate::journal::{EntryWrite, Settle, lease_end, new_operation_id};
use crate::natives::{forget_native_into, upsert_native_into};
use crate::script::Script;
use crate::store::Store;
use crate::subscriptions::natives_written_once;
use crate::{NativeRecord, NewOperation, SubscriptionRecord};

/// How a change's row becomes `pending` in its opening transaction.
#[derive(Debug, Clone, Copy)]
pub enum Claim<'a> {
    /// A create: the row (pending at version 0) is inserted.
    Insert(&'a SubscriptionRecord),
    /// The row is claimed at this version; a moved-on row is a 409.
    Version(i64),
    /// The row is claimed at `version` and given `key` in the same
    /// statement (a change of the key), so a key another subscription of
    /// the tenant has is refused by the unique index (409 at `/key`)
    /// before any upstream call.
    Rekey {
        /// The version read.
        version: i64,
        /// The key the subscription has from now on.
        key: Option<&'a str>,
    },
}

/// One native-record write a change has not made yet.
#[derive(Debug, Clone, PartialEq)]
pub enum NativeWrite {
    /// The resource exists upstream (created, adopted or updated).
    Record(NativeRecord),
    /// The resource with this key was deleted upstream.
    Forget(String),
}

/// What a change did since its last write, with the in-flight mark to
/// write along.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'a> {
    /// Native records to write, in the order they happened.
    pub natives: &'a [NativeWrite],
    /// Completed steps to append to the journal entry.
    pub steps: &'a [Step],
    /// The entry holds no steps yet (this process opened it and has
    /// written none), so they are written without reading it.
    pub first_steps: bool,
    /// The in-flight mark.
    pub settle: Settle,
}

impl<'a> Progress<'a> {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.natives.is_empty() && self.steps.is_empty() && self.settle == Settle::Keep
    }

    fn entry(
        &self,
        settle: Settle,
        close: Option<(OperationState, Option<&'a str>)>,
    ) -> EntryWrite<'a> {
        EntryWrite {
            steps: self.steps,
            first_steps: self.first_steps,
            settle,
            close,
        }
    }
}

/// What a change's closing transaction stores besides its progress.
#[derive(Debug, Clone, Copy)]
pub enum Close<'a> {
    /// The new state and full native set, under the version check of
    /// [`Store::update`] (the unwritten native records are superseded).
    Store(&'a SubscriptionRecord),
    /// The row and its natives are deleted.
    Delete,
    /// A reconciliation's findings end the claim.
    Reconciled {
        /// The subscription's status after it.
        status: SubscriptionStatus,
        /// What it found.
        findings: &'a [Finding],
    },
}

impl Store {
    /// Journals a change and claims (or inserts) its row in one
    /// transaction; `settle_at` is the in-flight mark of the request that
    /// follows. Returns the entry's id. A refused claim is journalled as a
    /// failed change and returned as the error.
    pub async fn open_change(
        &self,
        op: &NewOperation<'_>,
        lease: std::time::Duration,
        claim: Claim<'_>,
        settle_at: Option<DateTime<Utc>>,
    ) -> Result<String, Error> {
        let id = new_operation_id();
        let mut script = self.script();
        let running = OperationState::Running;
        self.insert_operation_into(
            &mut script,
            &id,
            op,
            running,
            &[],
            lease_end(lease),
            settle_at,
        )?;
        match claim {
            Claim::Insert(rec) => self.insert_into(&mut script, rec)?,
            Claim::Version(v) => claim_into(&mut script, op.tenant, op.subscription_id, v, None),
            Claim::Rekey { version, key } => claim_into(
                &mut script,
                op.tenant,
                op.subscription_id,
                version,
                Some(key),
            ),
        }
        if let Err(e) = self.run(script).await {
            let mut failed = self.script();
            let state = OperationState::Failed;
            self.insert_operation_into(&mut failed, &id, op, state, &[], Utc::now(), None)?;
            Self::finish_operation_into(&mut failed, &id, state, Some(&e.to_string()));
            self.run(failed).await?;
            return Err(e);
        }
        Ok(id)
    }

    /// Writes a change's progress in one transaction (nothing when there is
    /// none).
    pub async fn progress(
        &self,
        op_id: &str,
        tenant: &str,
        sub_id: &str,
        p: &Progress<'_>,
    ) -> Result<(), Error> {
        if p.is_empty() {
            return Ok(());
        }
        let mut script = self.script();
        natives_into(&mut script, tenant, sub_id, p.natives)?;
        self.entry_write_into(&mut script, op_id, p.entry(p.settle, None))
            .await?;
        self.run(script).await
    }

    /// Writes a change's last progress, its result and the close of its
    /// entry (in `state`, with `error`) in one transaction. Returns the
    /// stored record for [`Close::Store`]. On error nothing is written.
    #[allow(clippy::too_many_arguments)]
    pub async fn close_change(
        &self,
        op_id: &str,
        tenant: &str,
        sub_id: &str,
        p: &Progress<'_>,
        close: Close<'_>,
        state: OperationState,
        error: Option<String>,
    ) -> Result<Option<SubscriptionRecord>, Error> {
        let mut script = self.script();
        let stored = match close {
            Close::Store(rec) => {
                // The row (guarded, first), its natives and the entry
                // below: each written once.
                if natives_written_once(rec) {
                    script.rows_written_once();
                }
                Some(self.update_into(&mut script, rec)?)
            }
            Close::Delete => {
                Self::delete_into(&mut script, tenant, sub_id);
                None
            }
            Close::Reconciled { status, findings } => {
                natives_into(&mut script, tenant, sub_id, p.natives)?;
                finish_reconciliation_into(&mut script, tenant, sub_id, status, findings)?;
                None
            }
        };
        let close = Some((state, error.as_deref()));
        self.entry_write_into(&mut script, op_id, p.entry(Settle::Keep, close))
            .await?;
        self.run(script).await?;
        Ok(stored)
    }

    /// Ends a claim without a new spec (`status`, `last_error`; `key`,
    /// when the claim had changed it, is the key the row gets back) and
    /// closes the change's entry, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn release_change(
        &self,
        op_id: &str,
        tenant: &str,
        sub_id: &str,
        status: SubscriptionStatus,
        last_error: Option<String>,
        key: Option<Option<&str>>,
        state: OperationState,
        error: Option<String>,
    ) -> Result<(), Error> {
        let mut script = self.script();
        release_into(&mut script, tenant, sub_id, status, last_error, key);
        Self::finish_operation_into(&mut script, op_id, state, error.as_deref());
        self.run(script).await
    }
}

fn natives_into(
    script: &mut Script,
    tenant: &str,
    sub_id: &str,
    natives: &[NativeWrite],
) -> Result<(), Error> {
    for w in natives {
        match w {
            NativeWrite::Record(n) => upsert_native_into(script, tenant, sub_id, n)?,
            NativeWrite::Forget(key) => forget_native_into(script, tenant, sub_id, key),
        }
    }
    Ok(())
}
