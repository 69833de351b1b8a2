//! The registry's [`ComponentChecker`] backed by this host's runtime: a package is admitted only
//! when this host can really run it (it knows the claimed WIT version, the component exports that
//! version's `provider` interface, links against the host's imports, and its `info` reports the
//! manifest's provider and version).

use std::collections::BTreeMap;

use lessor_plugin_registry::{ComponentChecker, ComponentRefusal, Manifest};

use super::error::LoadError;
use super::grants::Grants;
use super::runtime::PluginRuntime;
use super::versions::WitVersion;

/// Loads the component once, with nothing granted, and throws the instance away. The compiled
/// form stays in the runtime's cache, so the first real load after an install is fast.
pub struct RuntimeChecker {
    runtime: PluginRuntime,
}

impl RuntimeChecker {
    pub fn new(runtime: PluginRuntime) -> Self {
        Self { runtime }
    }
}

impl ComponentChecker for RuntimeChecker {
    fn check(&self, manifest: &Manifest, component: &[u8]) -> Result<(), ComponentRefusal> {
        match self.runtime.load(manifest, component, Grants::none(), BTreeMap::new(), BTreeMap::new()) {
            Ok(_) => Ok(()),
            Err(e) => Err(refusal(e)),
        }
    }
}

fn refusal(e: LoadError) -> ComponentRefusal {
    match e {
        LoadError::UnknownWitVersion { claimed, .. } => ComponentRefusal::UnknownWit {
            claimed,
            known: WitVersion::known().into_iter().map(str::to_owned).collect(),
        },
        LoadError::MissingExport { export, .. } => ComponentRefusal::MissingExport { export },
        LoadError::InvalidComponent { detail, .. } => {
            ComponentRefusal::Invalid(format!("not a valid component: {detail}"))
        }
        LoadError::UnsatisfiedImport { detail, .. } => {
            ComponentRefusal::Invalid(format!("it needs an import this host does not provide: {detail}"))
        }
        LoadError::InfoMismatch { provider, version, reported, reported_version, .. } => {
            ComponentRefusal::Invalid(format!(
                "its `info` reports provider `{reported}` version {reported_version}, but the manifest says `{provider}` version {version}"
            ))
        }
        LoadError::InfoFailed { source, .. } => ComponentRefusal::Invalid(format!("its `info` call failed: {source}")),
        LoadError::UndeclaredKey { what, key, .. } => {
            ComponentRefusal::Invalid(format!("{what} `{key}` is not declared"))
        }
    }
}
