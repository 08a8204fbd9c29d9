//! Aggregates kept current in the same transaction as each batch.
//!
//! [`apply`] runs after a batch's requests are written and before its commit, with exactly what
//! the batch changed ([`Applied`]); a rollup that fails rolls the whole batch back, so rollups
//! and `requests` never disagree. Add a rollup by adding a call here (its SQL in this module or a
//! sibling of `store/`).

use rusqlite::Transaction;

use super::{RequestRecord, RunId, StageRank};

/// A request stored for the first time by this batch.
#[derive(Debug, Clone, Copy)]
pub struct NewRequest<'a> {
    /// `requests.id`.
    pub id: i64,
    /// The event stored (the most complete stage of its request in the batch).
    pub record: &'a RequestRecord,
    /// `requests.endpoint_id`.
    pub endpoint_id: Option<i64>,
    /// `requests.identity_id`.
    pub identity_id: Option<i64>,
    /// `requests.purpose_id`.
    pub purpose_id: Option<i64>,
    /// `requests.test_id`.
    pub test_id: Option<i64>,
    /// `requests.user_id`.
    pub user_id: Option<i64>,
}

/// A stored request moved to a more complete stage by this batch.
#[derive(Debug, Clone, Copy)]
pub struct Advance<'a> {
    /// `requests.id`.
    pub id: i64,
    /// The event now stored.
    pub record: &'a RequestRecord,
    /// Stage before.
    pub before_stage: StageRank,
    /// Status code before.
    pub before_status: Option<i64>,
}

/// What one batch changed.
#[derive(Debug, Clone, Copy)]
pub struct Applied<'a> {
    /// The run the batch belongs to.
    pub run: RunId,
    /// Requests stored for the first time.
    pub new: &'a [NewRequest<'a>],
    /// Requests moved to a more complete stage.
    pub advanced: &'a [Advance<'a>],
}

/// Updates every rollup for one batch, inside its transaction.
pub(super) fn apply(_tx: &Transaction<'_>, _applied: &Applied<'_>) -> rusqlite::Result<()> {
    // No rollup yet: `requests` is the whole truth. Query rollups hook in here.
    Ok(())
}
