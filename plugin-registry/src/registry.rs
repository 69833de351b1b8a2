//! [`Registry`]: the rules for installing and switching plugin versions.
//!
//! - **install** admits a package (signature policy, then the component checker), stores it by
//!   digest and records it; a provider's first version becomes active, later ones wait.
//! - **upgrade** does the same and makes the new version active; the old one stays installed.
//! - **activate** / **rollback** switch the active version; rollback goes to the version that
//!   was active before, and again to the one before that.
//! - **enable** / **disable** switch a provider on or off: a disabled provider serves nothing.
//! - **remove** deletes versions, but not the live one (active and enabled) unless forced.
//!
//! Every change bumps the revision; a host polls [`Registry::revision`] and, when it moved,
//! reloads [`Registry::active_plugins`], fetching components with [`Registry::component`].

use std::sync::Arc;

use lessor_store::Db;

use crate::checker::ComponentChecker;
use crate::digest::Digest;
use crate::error::RegistryError;
use crate::names::{PluginRef, ProviderId, Version};
use crate::origin::OriginPattern;
use crate::package::Package;
use crate::records::{Activation, ActiveSet, NewPlugin, PluginRecord, Removal, Revision};
use crate::repo::{GrantChange, InsertMode, Inserted, PluginRepository, RepoError, SqlPlugins};
use crate::signature::{KeyId, SignaturePolicy};
use crate::store::{PackageStore, PackageStoreError};

/// Installed plugins: records in the database, packages in a [`PackageStore`]. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    repo: Arc<dyn PluginRepository>,
    store: PackageStore,
    policy: SignaturePolicy,
}

/// What the operator accepts beyond the package's own claims when admitting it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Admission<'a> {
    /// Origins granted beyond those the manifest requests (`--grant-host`).
    pub extra_grants: &'a [OriginPattern],
    /// Accept a package whose publisher (signing key, or none) differs from the live version's
    /// (`--allow-new-publisher`). Without it such a package is refused, so a package that merely
    /// claims a provider id never receives the secrets set for that provider.
    pub allow_new_publisher: bool,
}

/// What [`Registry::install`] and [`Registry::upgrade`] recorded.
#[derive(Debug, Clone)]
pub struct Installed {
    pub record: PluginRecord,
    pub revision: Revision,
    /// The version that was active before an upgrade.
    pub replaced: Option<Version>,
    /// On an upgrade, the replaced version's record as it was (to show what changed).
    pub previous: Option<PluginRecord>,
}

/// What [`Registry::grant`] and [`Registry::revoke`] changed: every version of the provider
/// with its grants now.
#[derive(Debug, Clone)]
pub struct GrantsChanged {
    pub versions: Vec<PluginRecord>,
    pub revision: Revision,
}

impl Registry {
    pub fn new(repo: Arc<dyn PluginRepository>, store: PackageStore, policy: SignaturePolicy) -> Self {
        Self { repo, store, policy }
    }

    /// A registry whose records live in `db` (migrated to 0003 or later).
    pub fn with_db(db: Db, store: PackageStore, policy: SignaturePolicy) -> Self {
        Self::new(Arc::new(SqlPlugins::new(db)), store, policy)
    }

    pub fn policy(&self) -> &SignaturePolicy {
        &self.policy
    }

    pub fn store(&self) -> &PackageStore {
        &self.store
    }

    /// Checks a package's signature against the policy; returns the signer, if any.
    pub fn verify_signature(&self, package: &Package) -> Result<Option<KeyId>, RegistryError> {
        self.policy
            .verify(&package.manifest_digest(), &package.component_digest(), package.signature())
            .map_err(|refusal| RegistryError::Signature { plugin: package.manifest().label(), refusal })
    }

    /// Installs a package. `extra_grants` are origins the operator grants beyond those the
    /// manifest requests (`--grant-host`). The provider's first version becomes active.
    pub async fn install(
        &self,
        package: &Package,
        extra_grants: &[OriginPattern],
        checker: &dyn ComponentChecker,
    ) -> Result<Installed, RegistryError> {
        self.install_with(package, Admission { extra_grants, ..Admission::default() }, checker).await
    }

    /// [`Registry::install`] with the operator's [`Admission`].
    pub async fn install_with(
        &self,
        package: &Package,
        admission: Admission<'_>,
        checker: &dyn ComponentChecker,
    ) -> Result<Installed, RegistryError> {
        self.admit(package, admission, checker, InsertMode::Install).await
    }

    /// Installs a new version of an installed provider and makes it active. Grants are those of
    /// the new manifest plus `extra_grants` plus the operator's grants of the version it
    /// replaces (those its manifest did not request): an upgrade never drops what the operator
    /// granted.
    pub async fn upgrade(
        &self,
        package: &Package,
        extra_grants: &[OriginPattern],
        checker: &dyn ComponentChecker,
    ) -> Result<Installed, RegistryError> {
        self.upgrade_with(package, Admission { extra_grants, ..Admission::default() }, checker).await
    }

    /// [`Registry::upgrade`] with the operator's [`Admission`].
    pub async fn upgrade_with(
        &self,
        package: &Package,
        admission: Admission<'_>,
        checker: &dyn ComponentChecker,
    ) -> Result<Installed, RegistryError> {
        self.admit(package, admission, checker, InsertMode::Upgrade).await
    }

    async fn admit(
        &self,
        package: &Package,
        admission: Admission<'_>,
        checker: &dyn ComponentChecker,
        mode: InsertMode,
    ) -> Result<Installed, RegistryError> {
        let extra_grants = admission.extra_grants;
        let manifest = package.manifest();
        let plugin = manifest.label();
        let signed_by = self.verify_signature(package)?;

        // Cheap refusals before the expensive check; the transaction checks them again.
        let existing = self.repo.versions(manifest.provider()).await?;
        if let Some(same) = existing.iter().find(|r| &r.version == manifest.version()) {
            return Err(RegistryError::DuplicateVersion {
                provider: same.provider.clone(),
                version: same.version.clone(),
                digest: same.digest,
            });
        }
        if mode == InsertMode::Upgrade && existing.is_empty() {
            return Err(RegistryError::UpgradeOfUnknownProvider { provider: manifest.provider().clone() });
        }
        // Secrets are set per provider: they must keep going to the publisher they were set for.
        // The reference is the live version (active), else the newest installed one.
        if let Some(live) = existing.iter().find(|r| r.active).or(existing.last())
            && !same_publisher(live.signed_by.as_ref(), signed_by.as_ref())
            && !admission.allow_new_publisher
        {
            return Err(RegistryError::NewPublisher {
                plugin,
                provider: live.provider.clone(),
                live_version: live.version.clone(),
                live_publisher: live.signed_by.clone(),
                new_publisher: signed_by,
            });
        }
        let replaced = match mode {
            InsertMode::Upgrade => existing.iter().find(|r| r.active).map(|r| r.version.clone()),
            InsertMode::Install => None,
        };

        checker.check(manifest, package.component()).map_err(|refusal| RegistryError::Component {
            plugin: plugin.clone(),
            wit: manifest.wit().to_owned(),
            refusal,
        })?;

        let grants = merge_grants(manifest.hosts(), extra_grants);
        let new = NewPlugin {
            provider: manifest.provider().clone(),
            version: manifest.version().clone(),
            name: manifest.name().clone(),
            wit: manifest.wit().to_owned(),
            digest: package.component_digest(),
            manifest_digest: package.manifest_digest(),
            manifest_text: package.manifest_text().to_owned(),
            signature_text: package.signature().map(|s| s.to_toml()),
            signed_by,
            grants,
        };

        let was_stored = self.store.contains(&new.digest);
        self.store.put(package)?;
        let inserted = self.repo.insert(&new, package.component(), mode).await;
        let Inserted { record, revision, previous } = match inserted {
            Ok(done) => done,
            Err(e) => {
                if !was_stored && let Err(cleanup) = self.store.remove(&new.digest) {
                    tracing::warn!(plugin, error = %cleanup, "cannot remove a package that was not installed");
                }
                return Err(match e {
                    RepoError::NotInstalled { provider } => RegistryError::UpgradeOfUnknownProvider { provider },
                    other => other.into(),
                });
            }
        };
        tracing::info!(
            plugin, provider = %record.provider, digest = %record.digest, active = record.active,
            revision = revision.get(), upgrade = (mode == InsertMode::Upgrade), "plugin installed"
        );
        Ok(Installed { record, revision, replaced, previous })
    }

    /// Grants `origin` to every installed version of `provider`, live: hosts reload the
    /// provider with it at their next registry check. `None` when every version had it already.
    pub async fn grant(
        &self,
        provider: &ProviderId,
        origin: &OriginPattern,
    ) -> Result<Option<GrantsChanged>, RegistryError> {
        self.change_grant(provider, origin, GrantChange::Grant).await
    }

    /// Takes `origin` (whatever its `+private`) away from every installed version of
    /// `provider`, live: the provider's next request there is refused (`egress-denied`).
    /// `None` when no version had it.
    pub async fn revoke(
        &self,
        provider: &ProviderId,
        origin: &OriginPattern,
    ) -> Result<Option<GrantsChanged>, RegistryError> {
        self.change_grant(provider, origin, GrantChange::Revoke).await
    }

    async fn change_grant(
        &self,
        provider: &ProviderId,
        origin: &OriginPattern,
        change: GrantChange,
    ) -> Result<Option<GrantsChanged>, RegistryError> {
        let changed = self.repo.change_grant(provider, origin, change).await?;
        Ok(changed.map(|(versions, revision)| {
            tracing::info!(%provider, %origin, ?change, revision = revision.get(), "plugin grants changed");
            GrantsChanged { versions, revision }
        }))
    }

    /// Every installed version, by provider, in installation order.
    pub async fn list(&self) -> Result<Vec<PluginRecord>, RegistryError> {
        Ok(self.repo.list().await?)
    }

    /// The installed versions of a provider, or the one version named.
    pub async fn inspect(&self, target: &PluginRef) -> Result<Vec<PluginRecord>, RegistryError> {
        let versions = self.repo.versions(&target.provider).await?;
        if versions.is_empty() {
            return Err(RegistryError::NotInstalled { provider: target.provider.clone() });
        }
        match &target.version {
            None => Ok(versions),
            Some(version) => {
                let one: Vec<PluginRecord> = versions.into_iter().filter(|r| &r.version == version).collect();
                if one.is_empty() {
                    Err(RegistryError::VersionNotInstalled {
                        provider: target.provider.clone(),
                        version: version.clone(),
                    })
                } else {
                    Ok(one)
                }
            }
        }
    }

    /// Switches a provider on; `None` when it already was on.
    pub async fn enable(&self, provider: &ProviderId) -> Result<Option<Revision>, RegistryError> {
        self.set_enabled(provider, true).await
    }

    /// Switches a provider off: hosts unload it and refuse its payments. `None` when it already
    /// was off.
    pub async fn disable(&self, provider: &ProviderId) -> Result<Option<Revision>, RegistryError> {
        self.set_enabled(provider, false).await
    }

    async fn set_enabled(&self, provider: &ProviderId, enabled: bool) -> Result<Option<Revision>, RegistryError> {
        let revision = self.repo.set_enabled(provider, enabled).await?;
        if let Some(revision) = revision {
            tracing::info!(%provider, enabled, revision = revision.get(), "plugin provider switched");
        }
        Ok(revision)
    }

    /// Makes an installed version the active one; `None` when it already was.
    pub async fn activate(
        &self,
        provider: &ProviderId,
        version: &Version,
    ) -> Result<Option<Activation>, RegistryError> {
        let activation = self.repo.activate(provider, version).await?;
        if let Some(a) = &activation {
            tracing::info!(%provider, to = %a.to, revision = a.revision.get(), "plugin version activated");
        }
        Ok(activation)
    }

    /// Makes the previously active version active again.
    pub async fn rollback(&self, provider: &ProviderId) -> Result<Activation, RegistryError> {
        let activation = self.repo.rollback(provider).await?;
        tracing::info!(%provider, to = %activation.to, revision = activation.revision.get(), "plugin rolled back");
        Ok(activation)
    }

    /// Removes one version (`provider@version`) or all of a provider's (`provider`). The active
    /// version of an enabled provider is removed only with `force`. Packages no version uses any
    /// more leave this host's store (other hosts' copies are caches and harmless).
    pub async fn remove(&self, target: &PluginRef, force: bool) -> Result<Removal, RegistryError> {
        let removal = self.repo.delete(&target.provider, target.version.as_ref(), force).await?;
        for digest in &removal.orphaned {
            if let Err(e) = self.store.remove(digest) {
                tracing::warn!(%digest, error = %e, "cannot remove an unused package from the store");
            }
        }
        tracing::info!(plugin = %target, force, revision = removal.revision.get(), "plugin removed");
        Ok(removal)
    }

    pub async fn revision(&self) -> Result<Revision, RegistryError> {
        Ok(self.repo.revision().await?)
    }

    /// What a host should have loaded: each provider's active version (enabled or not), as of
    /// the returned revision. The revision is read first, so the plugins are never older.
    pub async fn active_plugins(&self) -> Result<ActiveSet, RegistryError> {
        let revision = self.repo.revision().await?;
        let plugins = self.repo.active().await?.into_iter().map(Into::into).collect();
        Ok(ActiveSet { revision, plugins })
    }

    /// A component's bytes, verified against its digest: from this host's store, or (when
    /// another replica installed it) from the database, then kept in the store.
    pub async fn component(&self, digest: &Digest) -> Result<Vec<u8>, RegistryError> {
        match self.store.component(digest) {
            Ok(bytes) => return Ok(bytes),
            Err(PackageStoreError::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let parts =
            self.repo.stored_parts(digest).await?.ok_or(RegistryError::ComponentUnavailable { digest: *digest })?;
        let package = Package::from_parts(parts.manifest_text, parts.component, parts.signature_text.as_deref())
            .map_err(|e| RegistryError::Corrupt(format!("package {digest} in the database: {e}")))?;
        if package.component_digest() != *digest {
            let actual = package.component_digest();
            return Err(RegistryError::Corrupt(format!("the database copy of {digest} hashes to {actual}")));
        }
        self.store.put(&package)?;
        Ok(package.component().to_vec())
    }
}

/// What the operator grants: the manifest's hosts, then the extras not already among them.
fn merge_grants(requested: &[OriginPattern], extra: &[OriginPattern]) -> Vec<OriginPattern> {
    let mut grants: Vec<OriginPattern> = Vec::with_capacity(requested.len() + extra.len());
    for origin in requested.iter().chain(extra) {
        if !grants.contains(origin) {
            grants.push(origin.clone());
        }
    }
    grants
}

/// Whether a package signed by `new` comes from the publisher of one signed by `live`. A first
/// signature on a provider that was unsigned is no new publisher: an unsigned package proves no
/// one's identity, and any signature that verified is by a key the operator trusts.
fn same_publisher(live: Option<&KeyId>, new: Option<&KeyId>) -> bool {
    match (live, new) {
        (None, _) => true,
        (Some(live), Some(new)) => live == new,
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<OriginPattern> {
        list.iter().map(|s| OriginPattern::parse_grant(s).unwrap()).collect()
    }

    #[test]
    fn grants_are_the_requested_hosts_then_new_extras() {
        let requested = patterns(&["https://api.stripe.com", "http://127.0.0.1:*"]);
        let extra = patterns(&["api.stripe.com", "http://127.0.0.1:*", "sandbox.stripe.test:8443"]);
        let merged: Vec<String> = merge_grants(&requested, &extra).iter().map(ToString::to_string).collect();
        assert_eq!(merged, ["https://api.stripe.com:443", "http://127.0.0.1:*", "https://sandbox.stripe.test:8443"]);
    }

    #[test]
    fn the_publisher_may_start_signing_but_never_change_or_stop() {
        let (a, b) = (KeyId::parse("acme").unwrap(), KeyId::parse("mallory").unwrap());
        assert!(same_publisher(None, None));
        assert!(same_publisher(None, Some(&a)));
        assert!(same_publisher(Some(&a), Some(&a)));
        assert!(!same_publisher(Some(&a), Some(&b)));
        assert!(!same_publisher(Some(&a), None));
    }

    #[test]
    fn nothing_requested_and_nothing_extra_grants_nothing() {
        assert!(merge_grants(&[], &[]).is_empty());
    }
}
