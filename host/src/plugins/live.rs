//! The providers this process serves, kept in step with the registry.
//!
//! [`LiveProviders`] holds an immutable [`Snapshot`] behind an `Arc`: a payment takes the
//! provider's [`LoadedPlugin`] (a cheap clone) and keeps it for its whole call, so a call in flight
//! finishes on the version it started with while a reload swaps the snapshot underneath. `serve`
//! runs [`LiveProviders::run`], which polls the registry's revision (every replica does, so an
//! install on one reaches all of them within `plugin_reload_ms`) and, when it moved, loads the
//! active set: unchanged plugins are kept as they are, new or changed ones are compiled (or taken
//! from the precompiled cache) off the async executor before the swap.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use lessor_plugin_registry::{ActivePlugin, OriginPattern, Registry, RegistryError, Revision};

use super::grants::Grants;
use super::runtime::{LoadedPlugin, PluginRuntime};
use crate::config::{PluginConfig, ProviderSettings};

/// What this process has for one provider.
#[derive(Clone)]
pub enum ProviderSlot {
    Serving {
        plugin: LoadedPlugin,
        grants: Vec<OriginPattern>,
    },
    /// The operator disabled the provider: its payments are refused.
    Disabled {
        version: String,
    },
    /// The active version could not be loaded here (the reason is logged and shown to operators).
    Broken {
        version: String,
        digest: String,
        reason: String,
    },
}

/// The providers as of one registry revision.
#[derive(Clone, Default)]
pub struct Snapshot {
    pub revision: Option<Revision>,
    pub providers: BTreeMap<String, ProviderSlot>,
}

impl Snapshot {
    /// Whether `provider@version` is loaded and serving in this process.
    pub fn serves(&self, provider: &str, version: &str) -> bool {
        matches!(self.providers.get(provider), Some(ProviderSlot::Serving { plugin, .. }) if plugin.version() == version)
    }
}

/// Why a payment cannot reach a provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderUnavailable {
    #[error("no payment provider `{0}` is installed")]
    Unknown(String),
    #[error("payment provider `{0}` is disabled")]
    Disabled(String),
    #[error("payment provider `{provider}` could not be loaded on this host: {reason}")]
    Broken { provider: String, reason: String },
}

pub struct LiveProviders {
    runtime: PluginRuntime,
    registry: Registry,
    settings: ProviderSettings,
    current: RwLock<Arc<Snapshot>>,
    reloading: tokio::sync::Mutex<()>,
}

impl LiveProviders {
    pub fn new(runtime: PluginRuntime, registry: Registry, config: &PluginConfig) -> Self {
        Self {
            runtime,
            registry,
            settings: config.settings.clone(),
            current: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn runtime(&self) -> &PluginRuntime {
        &self.runtime
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().expect("snapshot lock").clone()
    }

    /// The plugin serving `provider` now.
    pub fn get(&self, provider: &str) -> Result<LoadedPlugin, ProviderUnavailable> {
        match self.snapshot().providers.get(provider) {
            Some(ProviderSlot::Serving { plugin, .. }) => Ok(plugin.clone()),
            Some(ProviderSlot::Disabled { .. }) => Err(ProviderUnavailable::Disabled(provider.to_owned())),
            Some(ProviderSlot::Broken { reason, .. }) => {
                Err(ProviderUnavailable::Broken { provider: provider.to_owned(), reason: reason.clone() })
            }
            None => Err(ProviderUnavailable::Unknown(provider.to_owned())),
        }
    }

    /// Brings the snapshot up to the registry's revision; `true` when it changed.
    pub async fn refresh(&self) -> Result<bool, RegistryError> {
        let _one_at_a_time = self.reloading.lock().await;
        let old = self.snapshot();
        let revision = self.registry.revision().await?;
        if old.revision == Some(revision) {
            return Ok(false);
        }
        let active = self.registry.active_plugins().await?;
        let mut providers = BTreeMap::new();
        for plugin in active.plugins {
            let provider = plugin.provider.to_string();
            let slot = self.slot_for(plugin, old.providers.get(&provider)).await;
            providers.insert(provider, slot);
        }
        for (provider, slot) in &providers {
            let was = old.providers.get(provider).map(describe);
            let now = describe(slot);
            if was.as_deref() != Some(now.as_str()) {
                tracing::info!(provider, was = was.as_deref().unwrap_or("none"), now, "payment provider changed");
            }
        }
        for provider in old.providers.keys().filter(|p| !providers.contains_key(*p)) {
            tracing::info!(provider, "payment provider removed");
        }
        let snapshot = Snapshot { revision: Some(active.revision), providers };
        *self.current.write().expect("snapshot lock") = Arc::new(snapshot);
        Ok(true)
    }

    async fn slot_for(&self, plugin: ActivePlugin, old: Option<&ProviderSlot>) -> ProviderSlot {
        let version = plugin.version.to_string();
        if !plugin.enabled {
            return ProviderSlot::Disabled { version };
        }
        if let Some(ProviderSlot::Serving { plugin: loaded, grants }) = old
            && loaded.version() == version
            && loaded.digest() == plugin.digest
            && *grants == plugin.grants
        {
            return old.cloned().expect("matched above");
        }
        let digest = plugin.digest.to_string();
        let broken = |reason: String| {
            tracing::error!(provider = %plugin.provider, %version, reason, "payment provider cannot be loaded");
            ProviderSlot::Broken { version: version.clone(), digest: digest.clone(), reason }
        };
        let component = match self.registry.component(&plugin.digest).await {
            Ok(bytes) => bytes,
            Err(e) => return broken(e.to_string()),
        };
        for key in self.settings.undeclared(&plugin.manifest) {
            tracing::warn!(provider = %plugin.provider, key, "configured plugin key is not declared by the manifest; not handed over");
        }
        let (config, secrets) = self.settings.for_manifest(&plugin.manifest);
        // Loading calls the plugin's `info`, which needs an instance slot like any call: under
        // full load this waits for one instead of failing and leaving the provider broken.
        let grants = Grants::new(plugin.grants.clone());
        match self.runtime.load_in_slot(plugin.manifest.clone(), component, grants, config, secrets).await {
            Ok(loaded) => ProviderSlot::Serving { plugin: loaded, grants: plugin.grants.clone() },
            Err(e) => broken(e.to_string()),
        }
    }

    /// Polls the registry every `interval` until `stop` completes.
    pub async fn run(self: Arc<Self>, interval: std::time::Duration, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "could not check the plugin registry for changes");
            }
        }
    }
}

fn describe(slot: &ProviderSlot) -> String {
    match slot {
        ProviderSlot::Serving { plugin, .. } => format!("serving {}", plugin.version()),
        ProviderSlot::Disabled { version } => format!("disabled ({version})"),
        ProviderSlot::Broken { version, .. } => format!("broken ({version})"),
    }
}
