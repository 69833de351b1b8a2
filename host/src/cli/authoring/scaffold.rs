//! `host plugin new NAME`: a provider crate in a folder of its own, ready to `cargo test` and
//! `host plugin pack`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::scaffold_files::{cargo_toml, gitignore, lib_rs, plugin_toml};

/// The SDK version the scaffold depends on (the one this host speaks).
pub const SDK_VERSION: &str = "0.2";

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Provider id (and crate, package and component name): 1-64 of a-z, 0-9 and -.
    pub name: String,
    /// The folder to create it in (default: the current one); the crate goes in DIR/NAME.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Depend on the SDK at this path instead of the crates.io release (a checkout of Lessor's
    /// `plugins/sdk`).
    #[arg(long, value_name = "PATH")]
    pub sdk_path: Option<PathBuf>,
}

/// Writes the crate; returns its folder.
pub fn scaffold(args: &NewArgs) -> anyhow::Result<PathBuf> {
    let name = lessor_plugin_registry::ProviderId::parse(&args.name)
        .map_err(|_| anyhow::anyhow!("`{}` is not a provider id: use 1-64 of a-z, 0-9 and -", args.name))?;
    let name = name.as_str();
    if !args.dir.is_dir() {
        bail!("the folder {} does not exist; create it first", args.dir.display());
    }
    let root = args.dir.join(name);
    if root.exists() {
        bail!("{} already exists; choose another name or folder", root.display());
    }
    let sdk = match &args.sdk_path {
        Some(path) => {
            let path = path.canonicalize().with_context(|| format!("--sdk-path {}", path.display()))?;
            if !path.join("Cargo.toml").is_file() {
                bail!("--sdk-path {}: no Cargo.toml there (point it at Lessor's plugins/sdk)", path.display());
            }
            format!("{{ path = {:?} }}", path.display().to_string())
        }
        None => format!("{SDK_VERSION:?}"),
    };
    write(&root.join("Cargo.toml"), &cargo_toml(name, &sdk))?;
    write(&root.join("plugin.toml"), &plugin_toml(name))?;
    write(&root.join(".gitignore"), gitignore())?;
    write(&root.join("src").join("lib.rs"), &lib_rs(name))?;
    Ok(root)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `acme-pay` → `AcmePay` (`Provider3ds` for `3ds`: a type name cannot start with a digit).
pub(super) fn type_name(name: &str) -> String {
    let camel: String = name
        .split('-')
        .flat_map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars)
        })
        .collect();
    if camel.is_empty() || camel.starts_with(|c: char| c.is_ascii_digit()) { format!("Provider{camel}") } else { camel }
}

#[cfg(test)]
mod tests {
    #[test]
    fn type_names_are_rust_identifiers() {
        assert_eq!(super::type_name("acme"), "Acme");
        assert_eq!(super::type_name("acme-pay"), "AcmePay");
        assert_eq!(super::type_name("3ds-pay"), "Provider3dsPay");
    }
}
