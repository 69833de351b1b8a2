//! `host plugin pack DIR`: builds the provider crate for `wasm32-wasip2`, writes the packaged
//! `plugin.toml` (version from `Cargo.toml`, the component's digest pinned), checks the component
//! as an install would, signs it when asked, and writes `NAME-VERSION.tar.gz`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use lessor_plugin_registry::{ComponentChecker, Digest, Package, PublisherKey};

use crate::plugins::{PluginRuntime, RuntimeChecker, RuntimeConfig};

const WASM_TARGET: &str = "wasm32-wasip2";

#[derive(Debug, clap::Args)]
pub struct PackArgs {
    /// The provider crate's folder (Cargo.toml and plugin.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Sign the package with this publisher key file (made by `host plugin keygen`).
    #[arg(long, value_name = "KEY_FILE")]
    pub sign: Option<PathBuf>,
    /// Where to write the archive (default: DIR/NAME-VERSION.tar.gz).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Packs the crate; returns the archive's path and the package.
pub fn pack(args: &PackArgs) -> anyhow::Result<(PathBuf, Package)> {
    let dir = &args.dir;
    let (crate_name, version) = crate_name_and_version(&dir.join("Cargo.toml"))?;
    let manifest_path = dir.join("plugin.toml");
    let text =
        std::fs::read_to_string(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?;
    let mut manifest: toml::Table = text.parse().with_context(|| format!("{}", manifest_path.display()))?;
    if let Some(written) = manifest.get("version").and_then(toml::Value::as_str)
        && written != version
    {
        bail!(
            "{} says version {written} but Cargo.toml says {version}: the version lives in Cargo.toml only (remove it from plugin.toml)",
            manifest_path.display()
        );
    }
    let key = args.sign.as_deref().map(read_key).transpose()?;

    ensure_wasm_target()?;
    let component = build(dir, &crate_name)?;
    manifest.insert("version".into(), version.clone().into());
    manifest.insert("digest".into(), Digest::of(&component).to_string().into());
    let manifest_text = format!(
        "# Packed by `host plugin pack`: version from Cargo.toml, digest of the component.\n{}",
        toml::to_string(&manifest).context("writing plugin.toml")?
    );
    let mut package = Package::from_parts(manifest_text, component, None).context("the packaged plugin.toml")?;

    // The checks an install makes of the component (WIT world, exports, `info` matching the manifest).
    let runtime = PluginRuntime::new(RuntimeConfig::default()).context("starting the plugin runtime")?;
    RuntimeChecker::new(runtime)
        .check(package.manifest(), package.component())
        .map_err(|refusal| anyhow::anyhow!("the component would be refused at install: {refusal}"))?;

    if let Some(key) = &key {
        let signature = key.sign_package(&package);
        package = package.with_signature(signature);
    }
    let name = package.manifest().name().to_string();
    let out = args.out.clone().unwrap_or_else(|| dir.join(format!("{name}-{version}.tar.gz")));
    package.write_archive(&out).with_context(|| format!("writing {}", out.display()))?;
    Ok((out, package))
}

fn crate_name_and_version(path: &Path) -> anyhow::Result<(String, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let cargo: toml::Table = text.parse().with_context(|| format!("{}", path.display()))?;
    let package = cargo.get("package").and_then(toml::Value::as_table);
    let name = package.and_then(|p| p.get("name")).and_then(toml::Value::as_str);
    let version = package.and_then(|p| p.get("version")).and_then(toml::Value::as_str);
    match (name, version) {
        (Some(name), Some(version)) => Ok((name.to_owned(), version.to_owned())),
        _ => bail!("{}: [package] needs a name and a version written out (version = \"1.2.0\")", path.display()),
    }
}

fn read_key(path: &Path) -> anyhow::Result<PublisherKey> {
    PublisherKey::read(path).with_context(|| format!("reading the key {}", path.display()))
}

/// `cargo build --release --target wasm32-wasip2` in the crate; the component's bytes.
fn build(dir: &Path, crate_name: &str) -> anyhow::Result<Vec<u8>> {
    let manifest = dir.join("Cargo.toml");
    let status = cargo()
        .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(&manifest)
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building the component failed ({status}); cargo's messages are above");
    }
    let artifact =
        target_dir(&manifest)?.join(WASM_TARGET).join("release").join(format!("{}.wasm", crate_name.replace('-', "_")));
    std::fs::read(&artifact).with_context(|| format!("reading {} (is the crate a cdylib?)", artifact.display()))
}

/// Where cargo puts this crate's build output (`CARGO_TARGET_DIR`, its config, or `target/`).
fn target_dir(manifest: &Path) -> anyhow::Result<PathBuf> {
    let out = cargo()
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(manifest)
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).context("reading cargo metadata")?;
    metadata["target_directory"].as_str().map(PathBuf::from).context("cargo metadata names no target directory")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Adds the `wasm32-wasip2` standard library with rustup when the toolchain lacks it.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc).args(["--print", "sysroot"]).output().context("running rustc")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib").join("rustlib").join(WASM_TARGET).is_dir() {
        return Ok(());
    }
    eprintln!("adding the {WASM_TARGET} target (rustup target add {WASM_TARGET})");
    let status = Command::new("rustup").args(["target", "add", WASM_TARGET]).status().context("running rustup")?;
    if !status.success() {
        bail!("`rustup target add {WASM_TARGET}` failed ({status})");
    }
    Ok(())
}
