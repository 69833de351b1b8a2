//! Project automation, by the cargo-xtask convention: `cargo xtask <task>`.
//!
//! `cargo xtask plugins [--out DIR]` builds every plugin under `plugins/` (a directory with a
//! `plugin.toml`) for `wasm32-wasip2` in the plugins workspace, then lays out one installable
//! package per plugin: `DIR/<name>/plugin.toml` and the component it names. `DIR` defaults to
//! `target/plugins`. Tests, benches and CI all go through this command.
//!
//! `cargo xtask bench [--smoke]` runs every benchmark in release mode and prints one table of
//! their figures, also written to `bench/results.json` (see `bench/mod.rs`).

mod bench;

use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const WASM_TARGET: &str = "wasm32-wasip2";

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("plugins") => parse_out(&args[1..]).and_then(|out| build_plugins(&out)),
        Some("bench") => bench::run(&args[1..]),
        _ => Err("usage: cargo xtask plugins [--out DIR] | cargo xtask bench [--smoke]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives one level below the workspace root").to_owned()
}

/// `cargo`, the one running xtask when there is one.
fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")))
}

fn parse_out(args: &[String]) -> Result<PathBuf, Error> {
    match args {
        [] => Ok(root().join("target").join("plugins")),
        [flag, dir] if flag == "--out" => Ok(PathBuf::from(dir)),
        _ => Err(format!("unexpected arguments {args:?}; usage: cargo xtask plugins [--out DIR]").into()),
    }
}

fn build_plugins(out: &Path) -> Result<(), Error> {
    let root = root();
    let workspace = root.join("plugins");
    ensure_wasm_target()?;

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "--target", WASM_TARGET, "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(workspace.join("target"))
        // A host build's settings must not leak into the guest build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building the plugins workspace failed ({status})").into());
    }

    let artifacts = workspace.join("target").join(WASM_TARGET).join("release");
    let mut packaged = Vec::new();
    for dir in plugin_dirs(&workspace)? {
        packaged.push(package(&dir, &artifacts, out)?);
    }
    packaged.sort();
    println!("xtask: {} plugin packages in {}: {}", packaged.len(), out.display(), packaged.join(", "));
    Ok(())
}

/// Every directory under `plugins/` (two levels deep: `plugins/x`, `plugins/testing/x`) with a `plugin.toml`.
fn plugin_dirs(workspace: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = Vec::new();
    let mut pending = vec![(workspace.to_owned(), 0)];
    while let Some((dir, depth)) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry?.path();
            if !path.is_dir() || path.file_name().is_some_and(|n| n == "target" || n == "sdk") {
                continue;
            }
            if path.join("plugin.toml").is_file() {
                found.push(path);
            } else if depth < 1 {
                pending.push((path, depth + 1));
            }
        }
    }
    Ok(found)
}

/// Copies one plugin's manifest and component into `out/<name>/`; returns the name.
fn package(dir: &Path, artifacts: &Path, out: &Path) -> Result<String, Error> {
    let manifest_path = dir.join("plugin.toml");
    let manifest_text = fs::read_to_string(&manifest_path)?;
    let manifest: toml::Table = manifest_text.parse().map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let name = string_key(&manifest, "name", &manifest_path)?;
    let component = string_key(&manifest, "component", &manifest_path)?;
    if !is_plain_file_name(&name) || !is_plain_file_name(&component) || !component.ends_with(".wasm") {
        return Err(format!(
            "{}: `name` and `component` must be plain file names (component *.wasm)",
            manifest_path.display()
        )
        .into());
    }

    let cargo_path = dir.join("Cargo.toml");
    let cargo_toml: toml::Table =
        fs::read_to_string(&cargo_path)?.parse().map_err(|e| format!("{}: {e}", cargo_path.display()))?;
    let crate_name = cargo_toml
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{}: no [package] name", cargo_path.display()))?;
    let artifact = artifacts.join(format!("{}.wasm", crate_name.replace('-', "_")));
    if !artifact.is_file() {
        return Err(format!("{}: no component at {} (is it a cdylib?)", dir.display(), artifact.display()).into());
    }

    let package_dir = out.join(&name);
    fs::create_dir_all(&package_dir)?;
    copy_atomically(&artifact, &package_dir.join(&component))?;
    copy_atomically(&manifest_path, &package_dir.join("plugin.toml"))?;
    Ok(name)
}

fn string_key(table: &toml::Table, key: &str, path: &Path) -> Result<String, Error> {
    table
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: missing string `{key}`", path.display()).into())
}

fn is_plain_file_name(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '\\'])
}

/// Readers (tests running side by side) see the old file or the new one, never half of one.
fn copy_atomically(from: &Path, to: &Path) -> Result<(), Error> {
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    fs::copy(from, &tmp).map_err(|e| format!("copy {} -> {}: {e}", from.display(), tmp.display()))?;
    fs::rename(&tmp, to)?;
    Ok(())
}

/// Adds the wasm32-wasip2 standard library through rustup when this toolchain lacks it.
fn ensure_wasm_target() -> Result<(), Error> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let sysroot =
        Command::new(rustc).args(["--print", "sysroot"]).output().map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib").join("rustlib").join(WASM_TARGET).is_dir() {
        return Ok(());
    }
    eprintln!("xtask: adding the {WASM_TARGET} target with rustup");
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("rustup target add {WASM_TARGET} failed ({status})").into()) }
}
