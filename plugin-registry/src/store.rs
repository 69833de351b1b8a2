//! Packages on disk, addressed by their component's digest:
//! `<root>/sha256/<hex>/{plugin.toml, component.wasm, plugin.sig}`.
//!
//! Directories appear whole (written under a temporary name, then renamed) and files are
//! replaced whole, so a reader never sees half a package. Reading verifies the component against
//! the digest it is filed under: a file changed on disk is reported, never loaded.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::Digest;
use crate::package::{
    MANIFEST_FILE, MAX_COMPONENT_BYTES, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, Package, PackageError,
};

pub const COMPONENT_FILE: &str = "component.wasm";
const SIGNATURE_FILE: &str = crate::package::SIGNATURE_FILE;

#[derive(Debug, thiserror::Error)]
pub enum PackageStoreError {
    #[error("package {digest} is not in the package store")]
    NotFound { digest: Digest },
    #[error(
        "the stored component {digest} was modified on disk (it now hashes to {actual}); remove it and install the package again"
    )]
    Tampered { digest: Digest, actual: Digest },
    #[error("the stored package {digest} is unreadable: {source}")]
    Corrupt { digest: Digest, source: PackageError },
    #[error("package store at {path}: {source}")]
    Io { path: String, source: io::Error },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> PackageStoreError + '_ {
    move |source| PackageStoreError::Io { path: path.display().to_string(), source }
}

/// Content-addressed package storage under one directory. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PackageStore {
    root: PathBuf,
}

impl PackageStore {
    /// Opens (creating when missing) the store under `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, PackageStoreError> {
        let root = root.into();
        let objects = root.join("sha256");
        fs::create_dir_all(&objects).map_err(io_at(&objects))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory a package with this component digest lives in.
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path_of(digest).join(COMPONENT_FILE).is_file()
    }

    /// Stores a package; returns its directory. Storing it again (or another manifest for the
    /// same component) leaves the directory holding exactly this package's files.
    pub fn put(&self, package: &Package) -> Result<PathBuf, PackageStoreError> {
        let dir = self.path_of(&package.component_digest());
        let signature = package.signature().map(|s| s.to_toml());
        if !dir.exists() {
            let tmp = temp_path(&dir);
            let written = write_package(&tmp, package, signature.as_deref()).and_then(|()| fs::rename(&tmp, &dir));
            match written {
                Ok(()) => {
                    sync_dir(dir.parent().unwrap_or(&self.root));
                    return Ok(dir);
                }
                // Someone else stored the same component meanwhile: fall through and update it.
                Err(_) if dir.is_dir() => {
                    let _ = fs::remove_dir_all(&tmp);
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&tmp);
                    return Err(io_at(&dir)(e));
                }
            }
        }
        replace_if_different(&dir.join(MANIFEST_FILE), package.manifest_text().as_bytes())?;
        replace_if_different(&dir.join(COMPONENT_FILE), package.component())?;
        let sig_path = dir.join(SIGNATURE_FILE);
        match &signature {
            Some(text) => replace_if_different(&sig_path, text.as_bytes())?,
            None => match fs::remove_file(&sig_path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_at(&sig_path)(e)),
            },
        }
        Ok(dir)
    }

    /// The stored component, verified against its digest.
    pub fn component(&self, digest: &Digest) -> Result<Vec<u8>, PackageStoreError> {
        let path = self.path_of(digest).join(COMPONENT_FILE);
        let bytes = read_capped(&path, MAX_COMPONENT_BYTES)?.ok_or(PackageStoreError::NotFound { digest: *digest })?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(PackageStoreError::Tampered { digest: *digest, actual });
        }
        Ok(bytes)
    }

    /// The whole stored package, its component verified against its digest.
    pub fn get(&self, digest: &Digest) -> Result<Package, PackageStoreError> {
        let component = self.component(digest)?;
        let dir = self.path_of(digest);
        let corrupt = |source| PackageStoreError::Corrupt { digest: *digest, source };
        let manifest = read_capped(&dir.join(MANIFEST_FILE), MAX_MANIFEST_BYTES)?
            .ok_or_else(|| corrupt(PackageError::MissingFile { file: MANIFEST_FILE.to_owned() }))?;
        let manifest = String::from_utf8(manifest).map_err(|_| corrupt(PackageError::NotUtf8))?;
        let signature = read_capped(&dir.join(SIGNATURE_FILE), MAX_SIGNATURE_BYTES)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        Package::from_parts(manifest, component, signature.as_deref()).map_err(corrupt)
    }

    /// Removes a stored package (nothing happens when it is not there).
    pub fn remove(&self, digest: &Digest) -> Result<(), PackageStoreError> {
        let dir = self.path_of(digest);
        let doomed = temp_path(&dir);
        match fs::rename(&dir, &doomed) {
            Ok(()) => fs::remove_dir_all(&doomed).map_err(io_at(&doomed)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_at(&dir)(e)),
        }
    }
}

/// A unique sibling name for `path` (dot-prefixed: never a digest directory).
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let unique = format!(".{name}.tmp-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    path.with_file_name(unique)
}

fn write_package(dir: &Path, package: &Package, signature: Option<&str>) -> io::Result<()> {
    fs::create_dir(dir)?;
    write_synced(&dir.join(MANIFEST_FILE), package.manifest_text().as_bytes())?;
    write_synced(&dir.join(COMPONENT_FILE), package.component())?;
    if let Some(text) = signature {
        write_synced(&dir.join(SIGNATURE_FILE), text.as_bytes())?;
    }
    sync_dir(dir);
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    io::Write::write_all(&mut file, bytes)?;
    file.sync_all()
}

/// Best effort: makes a rename durable on file systems that need the directory synced.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `bytes` beside `path` and renames it into place: readers see the old file or the new.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    let result = write_synced(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn replace_if_different(path: &Path, bytes: &[u8]) -> Result<(), PackageStoreError> {
    if fs::read(path).is_ok_and(|current| current == bytes) {
        return Ok(());
    }
    write_atomically(path, bytes).map_err(io_at(path))
}

/// Reads at most `limit` bytes of a regular file; `None` when it does not exist.
fn read_capped(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, PackageStoreError> {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_at(path))?;
    if bytes.len() as u64 > limit {
        let source = io::Error::new(io::ErrorKind::InvalidData, format!("over {limit} bytes"));
        return Err(io_at(path)(source));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher::PublisherKey;
    use crate::signature::KeyId;
    use crate::testing::manifest_text;

    fn package(version: &str, component: &[u8]) -> Package {
        Package::from_parts(manifest_text("stripe", version, None), component.to_vec(), None).unwrap()
    }

    #[test]
    fn a_stored_package_reads_back_whole() {
        let root = tempfile::tempdir().unwrap();
        let store = PackageStore::open(root.path()).unwrap();
        let key = PublisherKey::generate(KeyId::parse("acme").unwrap());
        let original = package("1.0.0", b"component");
        let signed = key.sign_package(&original);
        let original = original.with_signature(signed.clone());
        let dir = store.put(&original).unwrap();
        assert_eq!(dir, root.path().join("sha256").join(original.component_digest().hex()));
        assert!(store.contains(&original.component_digest()));

        let back = store.get(&original.component_digest()).unwrap();
        assert_eq!(back.manifest_text(), original.manifest_text());
        assert_eq!(back.component(), b"component");
        assert_eq!(back.signature(), Some(&signed));
        // No temporary names are left behind.
        let names: Vec<_> = fs::read_dir(root.path().join("sha256")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_component_changed_on_disk_is_detected() {
        let root = tempfile::tempdir().unwrap();
        let store = PackageStore::open(root.path()).unwrap();
        let package = package("1.0.0", b"component");
        let dir = store.put(&package).unwrap();
        let mut bytes = fs::read(dir.join(COMPONENT_FILE)).unwrap();
        bytes[0] ^= 1;
        fs::write(dir.join(COMPONENT_FILE), bytes).unwrap();
        assert!(matches!(store.component(&package.component_digest()), Err(PackageStoreError::Tampered { .. })));
        assert!(matches!(store.get(&package.component_digest()), Err(PackageStoreError::Tampered { .. })));
    }

    #[test]
    fn storing_again_replaces_the_other_files() {
        let root = tempfile::tempdir().unwrap();
        let store = PackageStore::open(root.path()).unwrap();
        let key = PublisherKey::generate(KeyId::parse("acme").unwrap());
        let first = package("1.0.0", b"same bytes");
        let first = first.with_signature(key.sign(&Digest::of(b"m"), &Digest::of(b"c")));
        store.put(&first).unwrap();
        let second = package("1.0.1", b"same bytes");
        store.put(&second).unwrap();
        let back = store.get(&second.component_digest()).unwrap();
        assert_eq!(back.manifest().version().as_str(), "1.0.1");
        assert!(back.signature().is_none());
    }

    #[test]
    fn missing_and_removed_packages_are_not_found() {
        let root = tempfile::tempdir().unwrap();
        let store = PackageStore::open(root.path()).unwrap();
        let package = package("1.0.0", b"component");
        assert!(matches!(store.component(&package.component_digest()), Err(PackageStoreError::NotFound { .. })));
        store.put(&package).unwrap();
        store.remove(&package.component_digest()).unwrap();
        store.remove(&package.component_digest()).unwrap();
        assert!(!store.contains(&package.component_digest()));
        assert!(matches!(store.get(&package.component_digest()), Err(PackageStoreError::NotFound { .. })));
    }
}
