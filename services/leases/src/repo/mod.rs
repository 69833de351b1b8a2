//! Lease storage behind a trait, with one SQL implementation for both engines.

mod cursor;
mod rows;
mod sql;

pub use cursor::{Cursor, CursorError};
pub use sql::SqlLeases;

use async_trait::async_trait;
use uuid::Uuid;

use crate::{Installment, Lease, LeaseStatus, NewLease};

/// Which leases a listing covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseFilter {
    pub owner_id: Option<Uuid>,
    pub status: Option<LeaseStatus>,
}

/// A claimed row of the search outbox: "re-index this lease".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub id: i64,
    pub lease_id: Uuid,
    /// Unix milliseconds when the change was committed.
    pub enqueued_at: i64,
    /// How many times a worker has claimed it, this time included.
    pub attempts: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("the owner does not exist")]
    UnknownOwner,
    #[error("stored lease is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

#[async_trait]
pub trait LeaseRepository: Send + Sync {
    /// Stores the lease, its schedule and a search outbox entry in one transaction.
    async fn create(&self, owner_id: Uuid, lease: &NewLease) -> Result<Lease, RepoError>;
    async fn get(&self, id: Uuid) -> Result<Option<Lease>, RepoError>;
    /// The leases with these ids that exist, in no particular order.
    async fn get_many(&self, ids: &[Uuid]) -> Result<Vec<Lease>, RepoError>;
    /// Newest first, strictly after `after` in that order; at most `limit`.
    async fn list(&self, filter: &LeaseFilter, after: Option<&Cursor>, limit: u32) -> Result<Vec<Lease>, RepoError>;
    /// Moves `id` from `from` to `to` (with a search outbox entry) only if it is still in
    /// `from`; `None` when another writer changed it first.
    async fn set_status(&self, id: Uuid, from: LeaseStatus, to: LeaseStatus) -> Result<Option<Lease>, RepoError>;
    async fn installments(&self, lease_id: Uuid) -> Result<Vec<Installment>, RepoError>;

    /// Claims up to `limit` outbox entries available at `now_ms`, hiding them from other
    /// workers for `hold_ms`. Entries of a worker that dies reappear after that.
    async fn claim_outbox(&self, now_ms: i64, hold_ms: i64, limit: u32) -> Result<Vec<OutboxEntry>, RepoError>;
    /// Removes entries whose leases the index now holds.
    async fn complete_outbox(&self, ids: &[i64]) -> Result<(), RepoError>;
    /// Makes entries available again at `available_at` (Unix ms), noting the error.
    async fn defer_outbox(&self, ids: &[i64], available_at: i64, error: &str) -> Result<(), RepoError>;
    /// When the oldest pending entry was enqueued (Unix ms).
    async fn oldest_outbox_entry(&self) -> Result<Option<i64>, RepoError>;
    /// Enqueues every lease (for a rebuild of the index); returns how many.
    async fn enqueue_all(&self, now_ms: i64) -> Result<u64, RepoError>;
}
