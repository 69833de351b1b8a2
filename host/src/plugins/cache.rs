//! Compiled components, once per content digest: precompiled `.cwasm` files on disk keyed by the
//! component's SHA-256, the wasmtime major version and the engine's compatibility hash (which
//! covers the exact wasmtime version and every setting that changes generated code).

use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use lessor_plugin_registry::Digest;
use wasmtime::component::Component;
use wasmtime::{Engine, ModuleVersionStrategy};

/// Where a component came from on load, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a precompiled file.
    Hit,
    /// Compiled now (and stored when a cache directory is configured).
    Compiled,
}

pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
    /// `wasmtime<major>-<compatibility hash>`, the part of a file name shared by one engine.
    engine_key: String,
}

impl ComponentCache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(dir) = &dir {
            fs::create_dir_all(dir)?;
        }
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("wasmtime{}-{:016x}", ModuleVersionStrategy::default().as_str(), hasher.finish());
        Ok(Self { dir, engine_key })
    }

    pub(crate) fn path_for(&self, digest: &Digest) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(format!("{}-{}.cwasm", digest.hex(), self.engine_key)))
    }

    /// The compiled component for `bytes`, from the cache when possible.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        digest: &Digest,
        bytes: &[u8],
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let Some(path) = self.path_for(digest) else {
            return Ok((Component::new(engine, bytes)?, CacheOutcome::Compiled));
        };
        if path.is_file() {
            // SAFETY: files in the cache directory are written only by `store` below, from
            // `Engine::precompile_component`, and renamed into place whole; the directory is the
            // operator's, as trusted as the binary (see `RuntimeConfig::cache_dir`). wasmtime
            // checks the version and configuration recorded in the file before using it.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "discarding unusable precompiled component")
                }
            }
        }
        let precompiled = engine.precompile_component(bytes)?;
        if let Err(e) = store(&path, &precompiled) {
            tracing::warn!(path = %path.display(), error = %e, "cannot store precompiled component");
        }
        // SAFETY: `precompiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &precompiled)? };
        Ok((component, CacheOutcome::Compiled))
    }
}

/// Writes beside the target and renames, so a reader never sees half a file.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let tmp = path.with_extension(format!("tmp{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}
