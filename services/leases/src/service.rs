//! The lease rules: who sees which lease, how a lease is created and moves through its life.

use std::sync::Arc;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::repo::{Cursor, LeaseFilter, LeaseRepository, RepoError};
use crate::{IllegalTransition, Installment, Lease, LeaseStatus, NewLease};

/// Who is asking. Customers see their own leases; staff (operators, admins) see all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub user_id: Uuid,
    pub is_staff: bool,
}

impl Viewer {
    fn may_see(&self, lease: &Lease) -> bool {
        self.is_staff || lease.owner_id == self.user_id
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Missing, or not visible to the viewer (the two are not told apart).
    #[error("no such lease")]
    NotFound,
    #[error("only staff may do this")]
    Forbidden,
    #[error("the owner does not exist")]
    UnknownOwner,
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    #[error("storage failed: {0}")]
    Store(String),
}

impl From<RepoError> for LeaseError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::UnknownOwner => Self::UnknownOwner,
            other => Self::Store(other.to_string()),
        }
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Lease>,
    pub next: Option<Cursor>,
}

pub const MAX_PAGE: u32 = 100;

pub struct LeaseService {
    repo: Arc<dyn LeaseRepository>,
    /// Woken after every committed change, so the search indexer need not wait for its poll.
    changed: Arc<Notify>,
}

impl LeaseService {
    pub fn new(repo: Arc<dyn LeaseRepository>, changed: Arc<Notify>) -> Self {
        Self { repo, changed }
    }

    pub fn repository(&self) -> &Arc<dyn LeaseRepository> {
        &self.repo
    }

    /// Creates a draft lease with its installment schedule. Customers create leases for
    /// themselves; staff may name another owner.
    #[tracing::instrument(name = "leases.create", skip_all, fields(owner))]
    pub async fn create(&self, viewer: Viewer, owner: Option<Uuid>, new: &NewLease) -> Result<Lease, LeaseError> {
        let owner = match owner {
            Some(other) if other != viewer.user_id && !viewer.is_staff => return Err(LeaseError::Forbidden),
            Some(other) => other,
            None => viewer.user_id,
        };
        tracing::Span::current().record("owner", tracing::field::display(owner));
        let lease = self.repo.create(owner, new).await?;
        self.changed.notify_one();
        tracing::info!(lease_id = %lease.id, "lease created");
        Ok(lease)
    }

    pub async fn get(&self, viewer: Viewer, id: Uuid) -> Result<Lease, LeaseError> {
        match self.repo.get(id).await? {
            Some(lease) if viewer.may_see(&lease) => Ok(lease),
            _ => Err(LeaseError::NotFound),
        }
    }

    /// Visible leases with these ids, in the order given (search hits keep their rank).
    pub async fn get_many_visible(&self, viewer: Viewer, ids: &[Uuid]) -> Result<Vec<Lease>, LeaseError> {
        let mut found = self.repo.get_many(ids).await?;
        found.retain(|l| viewer.may_see(l));
        let mut ordered = Vec::with_capacity(found.len());
        for id in ids {
            if let Some(pos) = found.iter().position(|l| l.id == *id) {
                ordered.push(found.swap_remove(pos));
            }
        }
        Ok(ordered)
    }

    /// Newest first. Customers are limited to their own leases whatever the filter says.
    pub async fn list(
        &self,
        viewer: Viewer,
        mut filter: LeaseFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, LeaseError> {
        if !viewer.is_staff {
            if filter.owner_id.is_some_and(|o| o != viewer.user_id) {
                return Ok(Page { items: Vec::new(), next: None });
            }
            filter.owner_id = Some(viewer.user_id);
        }
        let limit = limit.clamp(1, MAX_PAGE);
        let mut items = self.repo.list(&filter, after, limit + 1).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|l| Cursor::After { created_at: l.created_at, id: l.id })
        } else {
            None
        };
        Ok(Page { items, next })
    }

    /// Moves a lease to `to` if the life cycle allows it (staff only).
    #[tracing::instrument(name = "leases.transition", skip(self, viewer))]
    pub async fn transition(&self, viewer: Viewer, id: Uuid, to: LeaseStatus) -> Result<Lease, LeaseError> {
        // The update applies only if the status is still the one judged; when another writer
        // got there first, judge again against the new status.
        for _ in 0..3 {
            let current = self.get(viewer, id).await?;
            if !viewer.is_staff {
                return Err(LeaseError::Forbidden);
            }
            current.status.transition(to)?;
            if let Some(updated) = self.repo.set_status(id, current.status, to).await? {
                self.changed.notify_one();
                tracing::info!(from = %current.status, %to, "lease status changed");
                return Ok(updated);
            }
        }
        Err(LeaseError::Store("the lease kept changing during the update".into()))
    }

    pub async fn schedule(&self, viewer: Viewer, id: Uuid) -> Result<Vec<Installment>, LeaseError> {
        self.get(viewer, id).await?;
        Ok(self.repo.installments(id).await?)
    }
}
