//! `reconciliation_passes`: one row per reconciliation pass, its progress
//! and where it resumes.

use sea_orm::entity::prelude::*;

/// A pass row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_passes")]
pub struct Model {
    /// `rcp_<ulid>`; sorts by start.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// When its first tick began.
    pub started_at: DateTimeUtc,
    /// When its last account was done; `NULL` while it runs.
    pub finished_at: Option<DateTimeUtc>,
    /// Intervals it has run in so far.
    pub ticks: i64,
    /// Accounts with subscriptions when it began.
    pub accounts_total: i64,
    /// Accounts checked so far.
    pub accounts_done: i64,
    /// Subscriptions compared so far.
    pub subscriptions_checked: i64,
    /// Differences found so far.
    pub findings: i64,
    /// Journalled per-subscription repairs so far.
    pub repairs: i64,
    /// Requests sent to providers so far.
    pub upstream_calls: i64,
    /// Accounts whose check failed so far.
    pub errors: i64,
    /// JSON object: provider key → `{"after": <last account done>, "done"}`.
    #[sea_orm(column_type = "Text")]
    pub cursors: String,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
