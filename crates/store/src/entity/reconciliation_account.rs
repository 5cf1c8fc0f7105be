//! `reconciliation_accounts`: what the last check of each (provider
//! instance, account) found and cost.

use sea_orm::entity::prelude::*;

/// An account row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reconciliation_accounts")]
pub struct Model {
    /// Provider instance key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: String,
    /// The account; `''` where the credentials are the account.
    #[sea_orm(primary_key, auto_increment = false)]
    pub account: String,
    /// The pass that checked it last.
    pub pass_id: String,
    /// When.
    pub checked_at: DateTimeUtc,
    /// Subscriptions compared.
    pub subscriptions_checked: i64,
    /// Differences found.
    pub findings: i64,
    /// Journalled per-subscription repairs.
    pub repairs: i64,
    /// Requests sent to the provider, repairs included.
    pub upstream_calls: i64,
    /// Of those, the listing's (pages and token mints): what the next
    /// check of this account is expected to cost before any repair.
    pub list_calls: i64,
    /// Why the check failed, if it did.
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
}

/// Relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
