//! Every reason the registry refuses an operation, in words an operator understands.

use crate::checker::ComponentRefusal;
use crate::digest::Digest;
use crate::names::{ProviderId, Version};
use crate::package::PackageError;
use crate::repo::RepoError;
use crate::signature::{KeyId, SignatureRefusal};
use crate::store::PackageStoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The package could not be read, or is inconsistent (bad manifest, unsafe archive, pinned
    /// digest not matching the component, …).
    #[error("invalid package: {0}")]
    Package(#[from] PackageError),
    #[error("{plugin} refused: {refusal}")]
    Signature { plugin: String, refusal: SignatureRefusal },
    #[error("{plugin} refused: the component does not implement {wit}: {refusal}")]
    Component { plugin: String, wit: String, refusal: ComponentRefusal },
    #[error(
        "{provider}@{version} is already installed (component {digest}); publish the new build under another version, or remove this one first"
    )]
    DuplicateVersion { provider: ProviderId, version: Version, digest: Digest },
    /// The package comes from another publisher than the live version, whose secrets it would
    /// receive (`--allow-new-publisher` overrides).
    #[error(
        "{plugin} refused: {provider}@{live_version} is published by {}, but this package is {}; the secrets set for {provider} would go to another publisher (pass --allow-new-publisher if that is intended)",
        publisher_words(.live_publisher), publisher_words_new(.new_publisher)
    )]
    NewPublisher {
        plugin: String,
        provider: ProviderId,
        live_version: Version,
        live_publisher: Option<KeyId>,
        new_publisher: Option<KeyId>,
    },
    #[error("no plugin is installed for provider `{provider}`")]
    NotInstalled { provider: ProviderId },
    #[error("`{provider}` is installed, but not in version {version}")]
    VersionNotInstalled { provider: ProviderId, version: Version },
    #[error("{provider} is not installed yet: install it first, then upgrade")]
    UpgradeOfUnknownProvider { provider: ProviderId },
    #[error("{provider} has no previously active version to roll back to{}", active_note(.active))]
    NoRollbackTarget { provider: ProviderId, active: Option<Version> },
    #[error(
        "{provider}@{version} is the active version of enabled provider {provider}; disable the provider or activate another version first, or force the removal"
    )]
    RemoveActive { provider: ProviderId, version: Version },
    #[error("component {digest} is neither in the package store nor in the database")]
    ComponentUnavailable { digest: Digest },
    #[error(transparent)]
    Store(#[from] PackageStoreError),
    #[error("stored plugin record is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

fn publisher_words(key: &Option<KeyId>) -> String {
    match key {
        Some(k) => format!("key `{k}`"),
        None => "no one (unsigned)".to_owned(),
    }
}

fn publisher_words_new(key: &Option<KeyId>) -> String {
    match key {
        Some(k) => format!("signed by key `{k}`"),
        None => "unsigned".to_owned(),
    }
}

fn active_note(active: &Option<Version>) -> String {
    match active {
        Some(v) => format!(" (active: {v})"),
        None => String::new(),
    }
}

impl From<RepoError> for RegistryError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Duplicate { provider, version, digest } => Self::DuplicateVersion { provider, version, digest },
            RepoError::NotInstalled { provider } => Self::NotInstalled { provider },
            RepoError::VersionNotInstalled { provider, version } => Self::VersionNotInstalled { provider, version },
            RepoError::NoRollbackTarget { provider, active } => Self::NoRollbackTarget { provider, active },
            RepoError::ActiveAndEnabled { provider, version } => Self::RemoveActive { provider, version },
            RepoError::Corrupt(detail) => Self::Corrupt(detail),
            RepoError::Database(e) => Self::Database(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderId {
        ProviderId::parse("stripe").unwrap()
    }

    fn version() -> Version {
        Version::parse("1.2.0").unwrap()
    }

    #[test]
    fn repository_outcomes_become_the_matching_refusals() {
        let digest = Digest::of(b"c");
        let cases: Vec<(RepoError, &str)> = vec![
            (RepoError::Duplicate { provider: provider(), version: version(), digest }, "is already installed"),
            (RepoError::NotInstalled { provider: provider() }, "no plugin is installed for provider `stripe`"),
            (
                RepoError::VersionNotInstalled { provider: provider(), version: version() },
                "`stripe` is installed, but not in version 1.2.0",
            ),
            (
                RepoError::NoRollbackTarget { provider: provider(), active: None },
                "stripe has no previously active version to roll back to",
            ),
            (
                RepoError::ActiveAndEnabled { provider: provider(), version: version() },
                "stripe@1.2.0 is the active version of enabled provider stripe",
            ),
            (RepoError::Corrupt("grants: x".into()), "stored plugin record is corrupt: grants: x"),
        ];
        for (repo, words) in cases {
            let message = RegistryError::from(repo).to_string();
            assert!(message.contains(words), "{message:?} should contain {words:?}");
        }
        let database = RegistryError::from(RepoError::Database(sqlx::Error::RowNotFound));
        assert!(matches!(database, RegistryError::Database(_)));
    }

    #[test]
    fn a_rollback_refusal_names_the_active_version() {
        let e = RegistryError::NoRollbackTarget { provider: provider(), active: Some(version()) };
        assert_eq!(e.to_string(), "stripe has no previously active version to roll back to (active: 1.2.0)");
    }
}
