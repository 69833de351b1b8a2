//! Builds the test plugins with `cargo xtask plugins` (the command CI and operators use), once per
//! test binary; cargo's own lock serialises concurrent binaries, and xtask installs files atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use host::plugins::Manifest;

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ sits in the workspace root").to_owned()
}

/// `target/plugins`, built on first use.
pub fn packages_dir() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args(["xtask", "plugins"])
            .status()
            .expect("run `cargo xtask plugins`");
        assert!(status.success(), "`cargo xtask plugins` failed: {status}");
        root.join("target").join("plugins")
    })
}

/// One installable package as `cargo xtask plugins` laid it out.
pub struct Package {
    pub manifest: Manifest,
    /// `plugin.toml` as built, for tests that write a variant of it.
    pub manifest_text: String,
    pub component: Vec<u8>,
}

pub fn package(name: &str) -> Package {
    let dir = packages_dir().join(name);
    let text = std::fs::read_to_string(dir.join("plugin.toml")).unwrap_or_else(|e| panic!("{name}/plugin.toml: {e}"));
    let manifest = Manifest::from_toml(&text).unwrap_or_else(|e| panic!("{name}/plugin.toml: {e}"));
    let component = std::fs::read(dir.join(manifest.component())).unwrap_or_else(|e| panic!("{name} component: {e}"));
    Package { manifest, manifest_text: text, component }
}

pub fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}
