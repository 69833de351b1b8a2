//! What the database says about installed plugins, as typed records.

use std::fmt;

use chrono::{DateTime, Utc};

use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::names::{PluginName, ProviderId, Version};
use crate::origin::OriginPattern;
use crate::signature::KeyId;

/// The registry's change counter: every install, upgrade, activation, rollback, enable,
/// disable and removal bumps it by one. Replicas compare it to notice changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision(i64);

impl Revision {
    pub fn new(value: i64) -> Self {
        Self(value)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One installed (provider, version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRecord {
    pub provider: ProviderId,
    pub version: Version,
    pub name: PluginName,
    /// The WIT package it implements, e.g. `lessor:payments@0.1.0`.
    pub wit: String,
    /// The component's digest.
    pub digest: Digest,
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    /// `plugin.toml` exactly as installed.
    pub manifest_text: String,
    /// `plugin.sig` as installed, when the package was signed.
    pub signature_text: Option<String>,
    /// The trusted key that verified the signature.
    pub signed_by: Option<KeyId>,
    /// The origins the operator granted: the manifest's hosts and any `--grant-host` extras.
    pub grants: Vec<OriginPattern>,
    /// The provider's switch: a disabled provider serves no payments, whatever its versions.
    pub enabled: bool,
    /// Whether this is the version payments use.
    pub active: bool,
    pub installed_at: DateTime<Utc>,
    /// When it last became active.
    pub activated_at: Option<DateTime<Utc>>,
}

impl PluginRecord {
    /// `provider@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.provider, self.version)
    }

    /// Granted origins the manifest did not request (the operator's `--grant-host` extras).
    pub fn extra_grants(&self) -> impl Iterator<Item = &OriginPattern> {
        self.grants.iter().filter(|g| !self.manifest.hosts().contains(g))
    }

    /// Whether payments for this provider should reach this version now.
    pub fn serves(&self) -> bool {
        self.active && self.enabled
    }
}

/// What a host should have loaded for one provider: its active version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivePlugin {
    pub provider: ProviderId,
    pub version: Version,
    pub digest: Digest,
    pub manifest: Manifest,
    pub grants: Vec<OriginPattern>,
    /// `false`: keep nothing loaded for this provider (its payments are refused).
    pub enabled: bool,
}

impl From<PluginRecord> for ActivePlugin {
    fn from(r: PluginRecord) -> Self {
        Self {
            provider: r.provider,
            version: r.version,
            digest: r.digest,
            manifest: r.manifest,
            grants: r.grants,
            enabled: r.enabled,
        }
    }
}

/// The active plugins as of `revision` (read after it: possibly newer, never older).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveSet {
    pub revision: Revision,
    pub plugins: Vec<ActivePlugin>,
}

/// A package the registry accepted, ready to be recorded.
#[derive(Debug, Clone)]
pub struct NewPlugin {
    pub provider: ProviderId,
    pub version: Version,
    pub name: PluginName,
    pub wit: String,
    pub digest: Digest,
    pub manifest_digest: Digest,
    pub manifest_text: String,
    pub signature_text: Option<String>,
    pub signed_by: Option<KeyId>,
    pub grants: Vec<OriginPattern>,
}

/// A package's parts as the database keeps them, for a replica that lacks it on disk.
#[derive(Clone)]
pub struct StoredParts {
    pub manifest_text: String,
    pub signature_text: Option<String>,
    pub component: Vec<u8>,
}

impl fmt::Debug for StoredParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredParts").field("component_bytes", &self.component.len()).finish_non_exhaustive()
    }
}

/// Which version of a provider became active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub provider: ProviderId,
    /// The version that was active before, if any.
    pub from: Option<Version>,
    pub to: Version,
    pub revision: Revision,
}

/// What a removal took away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub provider: ProviderId,
    pub versions: Vec<Version>,
    /// Components no installed version uses any more.
    pub orphaned: Vec<Digest>,
    pub revision: Revision,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PluginRecord {
        let text = crate::testing::manifest_text("stripe", "1.0.0", None);
        let manifest = Manifest::from_toml(&text).unwrap();
        let extra: OriginPattern = "http://127.0.0.1:*".parse().unwrap();
        PluginRecord {
            provider: manifest.provider().clone(),
            version: manifest.version().clone(),
            name: manifest.name().clone(),
            wit: manifest.wit().to_owned(),
            digest: Digest::of(b"c"),
            manifest_digest: Digest::of(text.as_bytes()),
            grants: manifest.hosts().iter().cloned().chain([extra]).collect(),
            manifest,
            manifest_text: text,
            signature_text: None,
            signed_by: None,
            enabled: true,
            active: true,
            installed_at: Utc::now(),
            activated_at: None,
        }
    }

    #[test]
    fn extra_grants_are_those_the_manifest_did_not_request() {
        let r = record();
        let extras: Vec<String> = r.extra_grants().map(ToString::to_string).collect();
        assert_eq!(extras, ["http://127.0.0.1:*"]);
        assert_eq!(r.label(), "stripe@1.0.0");
    }

    #[test]
    fn only_an_active_enabled_version_serves() {
        let mut r = record();
        assert!(r.serves());
        r.enabled = false;
        assert!(!r.serves());
        r.enabled = true;
        r.active = false;
        assert!(!r.serves());
    }
}
