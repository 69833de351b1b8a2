//! Feeds the search index from the search outbox: at least once, in any order, losing
//! nothing. Each outbox entry only says "lease X changed"; the indexer reads the lease's
//! current state, so replays and reordering cannot leave a stale document behind.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lessor_search::{LeaseDocument, SearchError, SearchIndex};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::Lease;
use crate::repo::{LeaseRepository, RepoError};

/// How long a claimed batch stays hidden from other workers.
const HOLD: Duration = Duration::from_secs(30);
const BATCH: u32 = 500;
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub fn document(lease: &Lease) -> LeaseDocument {
    LeaseDocument {
        id: lease.id,
        owner_id: lease.owner_id,
        status: lease.status.as_str().to_owned(),
        category: lease.vehicle.category.as_str().to_owned(),
        make: lease.vehicle.make.clone(),
        model: lease.vehicle.model.clone(),
        vin: lease.vehicle.vin.clone(),
        year: lease.vehicle.year,
        start_date: lease.start_date.format("%Y-%m-%d").to_string(),
        monthly_amount: lease.monthly_amount,
        currency: lease.currency.code().to_owned(),
        created_at: lease.created_at.timestamp_millis(),
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Outbox entries whose leases the index now holds.
    pub indexed: usize,
    /// Outbox entries put back for a later try.
    pub deferred: usize,
    /// Age of the oldest entry still waiting after this pass.
    pub lag: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error(transparent)]
    Repo(#[from] RepoError),
}

pub struct SearchIndexer {
    repo: Arc<dyn LeaseRepository>,
    index: Arc<dyn SearchIndex>,
}

/// Exponential backoff from 500 ms, at most a minute.
fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(1, 10) as u32 - 1;
    (Duration::from_millis(500) * 2u32.pow(exp)).min(MAX_BACKOFF)
}

impl SearchIndexer {
    pub fn new(repo: Arc<dyn LeaseRepository>, index: Arc<dyn SearchIndex>) -> Self {
        Self { repo, index }
    }

    /// Claims one batch, indexes it, and completes or defers its entries.
    pub async fn run_once(&self) -> Result<Pass, IndexerError> {
        let now = Utc::now().timestamp_millis();
        let entries = self.repo.claim_outbox(now, HOLD.as_millis() as i64, BATCH).await?;
        let mut pass = Pass::default();
        if !entries.is_empty() {
            let ids: Vec<Uuid> = entries.iter().map(|e| e.lease_id).collect::<BTreeSet<_>>().into_iter().collect();
            let entry_ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
            match self.push(&ids).await {
                Ok(()) => {
                    self.repo.complete_outbox(&entry_ids).await?;
                    pass.indexed = entries.len();
                }
                Err(e) => {
                    let attempts = entries.iter().map(|e| e.attempts).max().unwrap_or(1);
                    let retry_at = now + backoff(attempts).as_millis() as i64;
                    tracing::warn!(engine = self.index.engine(), error = %e, attempts, "indexing deferred");
                    self.repo.defer_outbox(&entry_ids, retry_at, &e.to_string()).await?;
                    pass.deferred = entries.len();
                }
            }
        }
        let now = Utc::now().timestamp_millis();
        pass.lag = self.repo.oldest_outbox_entry().await?.map(|t| Duration::from_millis((now - t).max(0) as u64));
        Ok(pass)
    }

    /// Writes the current state of `ids`: documents for leases that exist, deletions for
    /// those that do not.
    async fn push(&self, ids: &[Uuid]) -> Result<(), PushError> {
        let leases = self.repo.get_many(ids).await?;
        let docs: Vec<LeaseDocument> = leases.iter().map(document).collect();
        self.index.upsert(&docs).await?;
        let gone: Vec<Uuid> = ids.iter().filter(|id| !leases.iter().any(|l| l.id == **id)).copied().collect();
        if !gone.is_empty() {
            self.index.delete(&gone).await?;
        }
        Ok(())
    }

    /// Runs passes until `stop` resolves: straight on while there is work, otherwise
    /// waiting for `changed` or `poll`, whichever comes first. `observe` sees every pass.
    pub async fn run(
        self,
        changed: Arc<Notify>,
        poll: Duration,
        observe: impl Fn(&Pass) + Send,
        stop: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(stop);
        loop {
            let busy = match self.run_once().await {
                Ok(pass) => {
                    observe(&pass);
                    pass.indexed + pass.deferred > 0
                }
                Err(e) => {
                    tracing::warn!(error = %e, "search indexer pass failed");
                    false
                }
            };
            if busy {
                // More work may be waiting: go straight on, unless asked to stop.
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    () = tokio::task::yield_now() => continue,
                }
            }
            tokio::select! {
                () = &mut stop => return,
                () = changed.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Search(#[from] SearchError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(50), MAX_BACKOFF);
    }
}
