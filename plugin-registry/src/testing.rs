//! Helpers for this crate's unit tests: manifests, package directories and hand-made archives.

use std::path::Path;

use crate::digest::Digest;

/// A manifest for provider `provider` (also its package name) at `version`.
pub fn manifest_text(provider: &str, version: &str, pinned: Option<Digest>) -> String {
    let mut text = format!(
        "name = \"{provider}\"\nversion = \"{version}\"\nwit = \"lessor:payments@0.1.0\"\n\
         provider = \"{provider}\"\ncomponent = \"{provider}.wasm\"\nhosts = [\"https://api.{provider}.test\"]\n"
    );
    if let Some(digest) = pinned {
        text.push_str(&format!("digest = \"{digest}\"\n"));
    }
    text
}

/// Writes a package directory; the component file is named after the manifest's provider.
pub fn write_dir(dir: &Path, manifest: &str, component: &[u8], signature: Option<&str>) {
    let parsed = crate::Manifest::from_toml(manifest).unwrap();
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    std::fs::write(dir.join(parsed.component()), component).unwrap();
    match signature {
        Some(text) => std::fs::write(dir.join("plugin.sig"), text).unwrap(),
        None => {
            let _ = std::fs::remove_file(dir.join("plugin.sig"));
        }
    }
}

/// One tar entry, written with its name as given (the `tar` builder would refuse `..`).
pub struct TarEntry {
    name: String,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<String>,
}

impl TarEntry {
    pub fn file(name: &str, data: &[u8]) -> Self {
        Self { name: name.to_owned(), kind: tar::EntryType::Regular, data: data.to_vec(), link: None }
    }

    pub fn symlink(name: &str, target: &str) -> Self {
        Self { name: name.to_owned(), kind: tar::EntryType::Symlink, data: Vec::new(), link: Some(target.to_owned()) }
    }

    pub fn hard_link(name: &str, target: &str) -> Self {
        Self { name: name.to_owned(), kind: tar::EntryType::Link, data: Vec::new(), link: Some(target.to_owned()) }
    }
}

pub fn tar_bytes(entries: &[TarEntry], gzip: bool) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_old();
        let old = header.as_old_mut();
        old.name[..entry.name.len()].copy_from_slice(entry.name.as_bytes());
        if let Some(link) = &entry.link {
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, entry.data.as_slice()).unwrap();
    }
    let tar = builder.into_inner().unwrap();
    if !gzip {
        return tar;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &tar).unwrap();
    encoder.finish().unwrap()
}
