//! The workspace's bench targets, from `cargo metadata`.

use std::path::Path;

use crate::{Error, cargo};

pub struct Target {
    pub package: String,
    pub name: String,
}

/// Every `[[bench]]` of the workspace's members, in the order of `cargo metadata`.
pub fn benches(root: &Path) -> Result<Vec<Target>, Error> {
    let output = cargo().current_dir(root).args(["metadata", "--no-deps", "--format-version", "1"]).output()?;
    if !output.status.success() {
        return Err(format!("cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_bench = target["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bench"));
            if let (true, Some(package), Some(name)) = (is_bench, package["name"].as_str(), target["name"].as_str()) {
                found.push(Target { package: package.to_owned(), name: name.to_owned() });
            }
        }
    }
    Ok(found)
}
