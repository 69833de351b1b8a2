//! Database rows and their conversion into records.

use chrono::{DateTime, Utc};

use super::RepoError;
use crate::manifest::Manifest;
use crate::origin::OriginPattern;
use crate::records::PluginRecord;

pub(super) const PLUGIN_COLUMNS: &str = "provider, version, name, wit, digest, manifest_digest, manifest, signature, \
     signed_by, grants, enabled, active, installed_at, activated_at";

#[derive(sqlx::FromRow)]
pub(super) struct PluginRow {
    provider: String,
    version: String,
    name: String,
    wit: String,
    digest: String,
    manifest_digest: String,
    manifest: String,
    signature: Option<String>,
    signed_by: Option<String>,
    grants: String,
    enabled: bool,
    active: bool,
    installed_at: DateTime<Utc>,
    activated_at: Option<DateTime<Utc>>,
}

/// What an operation needs to know about a provider's versions before changing them.
#[derive(sqlx::FromRow)]
pub(super) struct VersionState {
    pub version: String,
    pub digest: String,
    pub enabled: bool,
    pub active: bool,
    pub activated_revision: Option<i64>,
}

pub(super) fn corrupt(what: &str, e: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{what}: {e}"))
}

impl TryFrom<PluginRow> for PluginRecord {
    type Error = RepoError;

    fn try_from(r: PluginRow) -> Result<Self, RepoError> {
        let manifest = Manifest::from_toml(&r.manifest).map_err(|e| corrupt("manifest", e))?;
        let grants: Vec<OriginPattern> = serde_json::from_str(&r.grants).map_err(|e| corrupt("grants", e))?;
        let record = PluginRecord {
            provider: r.provider.parse().map_err(|e| corrupt("provider", e))?,
            version: r.version.parse().map_err(|e| corrupt("version", e))?,
            name: r.name.parse().map_err(|e| corrupt("name", e))?,
            wit: r.wit,
            digest: r.digest.parse().map_err(|e| corrupt("digest", e))?,
            manifest_digest: r.manifest_digest.parse().map_err(|e| corrupt("manifest_digest", e))?,
            manifest,
            manifest_text: r.manifest,
            signature_text: r.signature,
            signed_by: r.signed_by.map(|k| k.parse()).transpose().map_err(|e| corrupt("signed_by", e))?,
            grants,
            enabled: r.enabled,
            active: r.active,
            installed_at: r.installed_at,
            activated_at: r.activated_at,
        };
        if record.manifest.provider() != &record.provider || record.manifest.version() != &record.version {
            return Err(corrupt("manifest", format!("it does not describe {}", record.label())));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::testing::manifest_text;

    fn row(provider: &str, version: &str) -> PluginRow {
        let manifest = manifest_text(provider, version, None);
        PluginRow {
            provider: provider.into(),
            version: version.into(),
            name: provider.into(),
            wit: "lessor:payments@0.1.0".into(),
            digest: Digest::of(b"c").to_string(),
            manifest_digest: Digest::of(manifest.as_bytes()).to_string(),
            manifest,
            signature: None,
            signed_by: Some("acme".into()),
            grants: r#"["https://api.stripe.test:443"]"#.into(),
            enabled: true,
            active: false,
            installed_at: Utc::now(),
            activated_at: None,
        }
    }

    #[test]
    fn a_good_row_becomes_a_record() {
        let record = PluginRecord::try_from(row("stripe", "1.0.0")).unwrap();
        assert_eq!(record.label(), "stripe@1.0.0");
        assert_eq!(record.grants.len(), 1);
        assert_eq!(record.signed_by.unwrap().as_str(), "acme");
    }

    #[test]
    fn a_row_that_does_not_add_up_is_corrupt() {
        let mut mismatched = row("stripe", "1.0.0");
        mismatched.manifest = manifest_text("stripe", "2.0.0", None);
        let mut bad_grants = row("stripe", "1.0.0");
        bad_grants.grants = r#"["file:///etc"]"#.into();
        let mut bad_digest = row("stripe", "1.0.0");
        bad_digest.digest = "md5:00".into();
        for (what, bad) in [("manifest", mismatched), ("grants", bad_grants), ("digest", bad_digest)] {
            match PluginRecord::try_from(bad) {
                Err(RepoError::Corrupt(detail)) => assert!(detail.starts_with(what), "{detail}"),
                other => panic!("{what}: expected corrupt, got {other:?}"),
            }
        }
    }
}
