//! The plugin part of the configuration: where packages live, which publisher keys are trusted,
//! per-call limits, and each provider's own settings.
//!
//! Per-provider settings sit under `[plugins.<provider>]` in `host.toml`, or in the environment as
//! `LESSOR_PLUGINS__<PROVIDER>__<KEY>` (a `-` in a provider id is written `_` there). Whether a
//! key is handed to the plugin as config or as a secret is the manifest's call (`config = […]`,
//! `secrets = […]`); keys the manifest does not declare are never handed over. Every value is
//! kept as a secret here, so `Debug` shows keys only.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lessor_plugin_registry::{Manifest, SignaturePolicy, TrustedKey};
use secrecy::{ExposeSecret, SecretString};

/// Checked plugin settings.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// Installed packages, by digest (`plugin_dir`); `None`: `<data_dir>/plugins`.
    pub store_dir: Option<PathBuf>,
    /// Precompiled components (`plugin_cache_dir`); `None`: `<data_dir>/plugin-cache`.
    pub cache_dir: Option<PathBuf>,
    pub signatures: SignaturePolicy,
    /// How often `serve` checks the registry for changes.
    pub reload_interval: Duration,
    pub call_timeout: Duration,
    pub memory_bytes: usize,
    /// Plugin calls that may run at once (`plugin_max_concurrent_calls`): instance slots, and
    /// the plugin call threads they run on (apart from tokio's blocking pool).
    pub max_concurrent_calls: u32,
    pub settings: ProviderSettings,
}

/// `[plugins.<provider>]` tables: values by key, by provider.
#[derive(Clone, Default)]
pub struct ProviderSettings(BTreeMap<String, BTreeMap<String, SecretString>>);

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(p, keys)| (p, keys.keys().collect::<Vec<_>>()))).finish()
    }
}

impl ProviderSettings {
    pub fn new(raw: BTreeMap<String, BTreeMap<String, SecretString>>) -> Self {
        Self(
            raw.into_iter()
                .map(|(p, keys)| (normalise(&p), keys.into_iter().map(|(k, v)| (normalise(&k), v)).collect()))
                .collect(),
        )
    }

    /// Sets one value (tests and tools).
    pub fn set(&mut self, provider: &str, key: &str, value: &str) {
        self.0.entry(normalise(provider)).or_default().insert(normalise(key), SecretString::from(value.to_owned()));
    }

    /// The config values and secrets for a plugin, restricted to the keys its manifest declares.
    pub fn for_manifest(&self, manifest: &Manifest) -> (BTreeMap<String, String>, BTreeMap<String, SecretString>) {
        let Some(values) = self.0.get(&normalise(manifest.provider().as_str())) else {
            return Default::default();
        };
        let value = |key: &String| values.get(&normalise(key));
        let config = manifest
            .config()
            .iter()
            .filter_map(|k| value(k).map(|v| (k.clone(), v.expose_secret().to_owned())))
            .collect();
        let secrets = manifest.secrets().iter().filter_map(|k| value(k).map(|v| (k.clone(), v.clone()))).collect();
        (config, secrets)
    }

    /// Keys set for `provider` that its manifest does not declare (worth a warning).
    pub fn undeclared(&self, manifest: &Manifest) -> Vec<String> {
        let Some(values) = self.0.get(&normalise(manifest.provider().as_str())) else { return Vec::new() };
        let declared: Vec<String> = manifest.config().iter().chain(manifest.secrets()).map(|k| normalise(k)).collect();
        values.keys().filter(|k| !declared.contains(k)).cloned().collect()
    }
}

/// Environment variables cannot hold `-`, and figment lower-cases their keys.
fn normalise(s: &str) -> String {
    s.to_ascii_lowercase().replace('-', "_")
}

/// `plugin_trusted_keys`: key id → base64 ed25519 public key.
pub fn trusted_keys(raw: &BTreeMap<String, String>) -> Result<Vec<TrustedKey>, String> {
    raw.iter().map(|(id, key)| TrustedKey::parse(id, key.trim()).map_err(|e| format!("`{id}`: {e}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest::from_toml(
            r#"
            name = "well-behaved"
            version = "0.1.0"
            wit = "lessor:payments@0.1.0"
            provider = "well-behaved"
            component = "w.wasm"
            config = ["endpoint"]
            secrets = ["api_key"]
            "#,
        )
        .unwrap()
    }

    #[test]
    fn only_declared_keys_are_handed_over_each_as_declared() {
        let mut s = ProviderSettings::default();
        s.set("well_behaved", "ENDPOINT", "http://127.0.0.1:9");
        s.set("well-behaved", "api_key", "sk_test");
        s.set("well-behaved", "db_password", "nope");
        let (config, secrets) = s.for_manifest(&manifest());
        assert_eq!(config.get("endpoint").map(String::as_str), Some("http://127.0.0.1:9"));
        assert!(!config.contains_key("api_key"));
        assert_eq!(secrets.get("api_key").map(|v| v.expose_secret().to_owned()).as_deref(), Some("sk_test"));
        assert_eq!(secrets.len(), 1);
        assert_eq!(s.undeclared(&manifest()), vec!["db_password".to_owned()]);
        assert!(!format!("{s:?}").contains("sk_test"));
    }
}
