//! Plugin records behind a trait, with one SQL implementation for both engines ([`SqlPlugins`]).
//!
//! Every change runs in one transaction that first bumps `plugin_registry_state.revision`: the
//! bump serialises concurrent changes (a row lock on PostgreSQL, the write lock on SQLite), and a
//! change that turns out to change nothing is rolled back, bump included. The rules that must
//! hold against concurrent writers (no duplicate version, at most one active version, what may
//! be removed) are checked inside that transaction; the others live in [`crate::Registry`].

mod rows;
mod sql;

pub use sql::SqlPlugins;

use async_trait::async_trait;

use crate::digest::Digest;
use crate::names::{ProviderId, Version};
use crate::origin::OriginPattern;
use crate::records::{Activation, NewPlugin, PluginRecord, Removal, Revision, StoredParts};

/// What [`PluginRepository::insert`] recorded.
#[derive(Debug)]
pub struct Inserted {
    pub record: PluginRecord,
    pub revision: Revision,
    /// On an upgrade, the version it replaced, as it was before.
    pub previous: Option<PluginRecord>,
}

/// [`PluginRepository::change_grant`]: add an origin or take it away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantChange {
    Grant,
    Revoke,
}

/// How [`PluginRepository::insert`] treats the provider's other versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertMode {
    /// Record the version; it becomes active only when it is the provider's first.
    Install,
    /// Record the version and make it active; the provider must already be installed.
    Upgrade,
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{provider}@{version} is already installed (component {digest})")]
    Duplicate { provider: ProviderId, version: Version, digest: Digest },
    #[error("provider {provider} is not installed")]
    NotInstalled { provider: ProviderId },
    #[error("{provider}@{version} is not installed")]
    VersionNotInstalled { provider: ProviderId, version: Version },
    #[error("provider {provider} has no earlier active version")]
    NoRollbackTarget { provider: ProviderId, active: Option<Version> },
    #[error("{provider}@{version} is the active version of an enabled provider")]
    ActiveAndEnabled { provider: ProviderId, version: Version },
    #[error("stored plugin record is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[async_trait]
pub trait PluginRepository: Send + Sync {
    async fn revision(&self) -> Result<Revision, RepoError>;

    /// Every installed version, by provider, then in installation order.
    async fn list(&self) -> Result<Vec<PluginRecord>, RepoError>;

    /// The installed versions of one provider, in installation order (empty when none).
    async fn versions(&self, provider: &ProviderId) -> Result<Vec<PluginRecord>, RepoError>;

    /// The active version of every provider that has one, by provider.
    async fn active(&self) -> Result<Vec<PluginRecord>, RepoError>;

    /// Records a version (and its component bytes). A new provider starts enabled; a new
    /// version of a known provider inherits its enabled switch. Refuses a duplicate version;
    /// in [`InsertMode::Upgrade`], refuses a provider that is not installed, and carries the
    /// operator's grants of the version it replaces (the active one, else the newest) over to
    /// the new one, read in the same transaction. Returns the record, the revision and, on an
    /// upgrade, the replaced version's record as it was.
    async fn insert(&self, new: &NewPlugin, component: &[u8], mode: InsertMode) -> Result<Inserted, RepoError>;

    /// Grants `origin` to every installed version of `provider` (replacing a grant of the same
    /// origin that differs only in `+private`), or revokes it from every version (whatever its
    /// `+private`). `None` when no version changed (nothing bumped).
    async fn change_grant(
        &self,
        provider: &ProviderId,
        origin: &OriginPattern,
        change: GrantChange,
    ) -> Result<Option<(Vec<PluginRecord>, Revision)>, RepoError>;

    /// Sets the provider's switch; `None` when it already was so (nothing bumped).
    async fn set_enabled(&self, provider: &ProviderId, enabled: bool) -> Result<Option<Revision>, RepoError>;

    /// Makes `version` the active one; `None` when it already was.
    async fn activate(&self, provider: &ProviderId, version: &Version) -> Result<Option<Activation>, RepoError>;

    /// Makes the most recently active other version active again. The version left behind is
    /// no longer a rollback target, so repeated rollbacks walk back through the history.
    async fn rollback(&self, provider: &ProviderId) -> Result<Activation, RepoError>;

    /// Removes one version, or all of a provider's when `version` is `None`. Unless `force`,
    /// refuses to remove the active version of an enabled provider.
    async fn delete(&self, provider: &ProviderId, version: Option<&Version>, force: bool)
    -> Result<Removal, RepoError>;

    /// A package's parts by component digest, while some installed version uses it.
    async fn stored_parts(&self, digest: &Digest) -> Result<Option<StoredParts>, RepoError>;
}
