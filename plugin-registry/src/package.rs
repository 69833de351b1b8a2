//! A plugin package: `plugin.toml`, the component it names and an optional `plugin.sig`, read
//! from a directory or from a `.tar` / `.tar.gz` archive of one (the `archive` module).
//!
//! A [`Package`] is consistent by construction: its manifest parsed, its digests computed, and
//! the component matching the digest the manifest pins (when it pins one). Whether the package
//! is *trusted* (signature) or *runnable* (WIT world) is the registry's decision.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::manifest::{Manifest, ManifestError};
use crate::signature::{PackageSignature, SignatureFileError};

pub const MANIFEST_FILE: &str = "plugin.toml";
pub const SIGNATURE_FILE: &str = "plugin.sig";
/// The largest component a package may carry.
pub const MAX_COMPONENT_BYTES: u64 = 32 * 1024 * 1024;
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
pub const MAX_SIGNATURE_BYTES: u64 = 4 * 1024;

pub struct Package {
    manifest: Manifest,
    manifest_text: String,
    component: Vec<u8>,
    signature: Option<PackageSignature>,
    manifest_digest: Digest,
    component_digest: Digest,
}

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("cannot read {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path} is neither a package directory nor a .tar / .tar.gz archive of one")]
    NotAPackage { path: String },
    #[error("the package has no {file}")]
    MissingFile { file: String },
    #[error("{file} is a link or special file; a package holds regular files only")]
    NotARegularFile { file: String },
    #[error("{file} is {size} bytes, over the {limit}-byte limit")]
    TooLarge { file: String, size: u64, limit: u64 },
    #[error("plugin.toml is not UTF-8 text")]
    NotUtf8,
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    SignatureFile(#[from] SignatureFileError),
    #[error("the component's digest is {actual}, but plugin.toml pins {pinned}: the component was changed or replaced")]
    DigestMismatch { pinned: Digest, actual: Digest },
    #[error("the archive cannot be read: {0}")]
    Archive(String),
    #[error("archive entry `{path}` points outside the package (absolute path or `..`)")]
    UnsafePath { path: String },
    #[error("archive entry `{path}` is a {kind}; a package archive holds regular files and directories only")]
    UnsupportedEntry { path: String, kind: &'static str },
    #[error("archive entry `{path}` appears twice")]
    DuplicateEntry { path: String },
    #[error("the archive is too large: {0}")]
    ArchiveTooLarge(String),
    #[error("the archive must hold one plugin.toml, at its root or in a single top-level directory; {0}")]
    Layout(String),
}

impl Package {
    /// A package directory, or an archive file of one.
    pub fn load(path: &Path) -> Result<Self, PackageError> {
        let meta = fs::metadata(path).map_err(|source| io(path, source))?;
        if meta.is_dir() {
            Self::from_dir(path)
        } else if meta.is_file() {
            Self::from_archive(path)
        } else {
            Err(PackageError::NotAPackage { path: path.display().to_string() })
        }
    }

    /// `dir/plugin.toml`, the component it names, and `dir/plugin.sig` when present.
    pub fn from_dir(dir: &Path) -> Result<Self, PackageError> {
        let manifest_bytes = read_regular(&dir.join(MANIFEST_FILE), MANIFEST_FILE, MAX_MANIFEST_BYTES)?
            .ok_or_else(|| PackageError::MissingFile { file: MANIFEST_FILE.to_owned() })?;
        let manifest_text = String::from_utf8(manifest_bytes).map_err(|_| PackageError::NotUtf8)?;
        let manifest = Manifest::from_toml(&manifest_text)?;
        let component = read_regular(&dir.join(manifest.component()), manifest.component(), MAX_COMPONENT_BYTES)?
            .ok_or_else(|| PackageError::MissingFile { file: manifest.component().to_owned() })?;
        let signature = read_regular(&dir.join(SIGNATURE_FILE), SIGNATURE_FILE, MAX_SIGNATURE_BYTES)?
            .map(|bytes| String::from_utf8(bytes).map_err(|_| SignatureFileError::Syntax("not UTF-8 text".into())))
            .transpose()?;
        Self::build(manifest, manifest_text, component, signature.as_deref())
    }

    /// A `.tar` or `.tar.gz` file (recognised by content, not by name).
    pub fn from_archive(path: &Path) -> Result<Self, PackageError> {
        let file = fs::File::open(path).map_err(|source| io(path, source))?;
        Self::from_archive_reader(file)
    }

    pub fn from_archive_reader(reader: impl Read) -> Result<Self, PackageError> {
        let files = crate::archive::read_package_files(reader)?;
        let manifest_text = String::from_utf8(files.manifest).map_err(|_| PackageError::NotUtf8)?;
        let manifest = Manifest::from_toml(&manifest_text)?;
        let component = files
            .others
            .into_iter()
            .find_map(|(name, bytes)| (name == manifest.component()).then_some(bytes))
            .ok_or_else(|| PackageError::MissingFile { file: manifest.component().to_owned() })?;
        let signature = files
            .signature
            .map(|bytes| String::from_utf8(bytes).map_err(|_| SignatureFileError::Syntax("not UTF-8 text".into())))
            .transpose()?;
        Self::build(manifest, manifest_text, component, signature.as_deref())
    }

    /// A package from its three parts as text and bytes (what the store keeps).
    pub fn from_parts(
        manifest_text: String,
        component: Vec<u8>,
        signature_text: Option<&str>,
    ) -> Result<Self, PackageError> {
        let manifest = Manifest::from_toml(&manifest_text)?;
        let size = component.len() as u64;
        if size > MAX_COMPONENT_BYTES {
            let file = manifest.component().to_owned();
            return Err(PackageError::TooLarge { file, size, limit: MAX_COMPONENT_BYTES });
        }
        Self::build(manifest, manifest_text, component, signature_text)
    }

    fn build(
        manifest: Manifest,
        manifest_text: String,
        component: Vec<u8>,
        signature_text: Option<&str>,
    ) -> Result<Self, PackageError> {
        let component_digest = Digest::of(&component);
        if let Some(pinned) = manifest.digest()
            && *pinned != component_digest
        {
            return Err(PackageError::DigestMismatch { pinned: *pinned, actual: component_digest });
        }
        let signature = signature_text.map(PackageSignature::from_toml).transpose()?;
        let manifest_digest = Digest::of(manifest_text.as_bytes());
        Ok(Self { manifest, manifest_text, component, signature, manifest_digest, component_digest })
    }

    /// Writes the package as a `.tar.gz` (`plugin.toml`, the component, `plugin.sig` when
    /// signed, at the archive's root), atomically: a reader sees no archive or the whole one.
    pub fn write_archive(&self, path: &Path) -> std::io::Result<()> {
        let signature = self.signature.as_ref().map(PackageSignature::to_toml);
        let mut files: Vec<(&str, &[u8])> =
            vec![(MANIFEST_FILE, self.manifest_text.as_bytes()), (self.manifest.component(), &self.component)];
        if let Some(signature) = &signature {
            files.push((SIGNATURE_FILE, signature.as_bytes()));
        }
        crate::archive::write_tar_gz(path, &files)
    }

    /// The same package with `signature` as its `plugin.sig`.
    pub fn with_signature(mut self, signature: PackageSignature) -> Self {
        self.signature = Some(signature);
        self
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// `plugin.toml` exactly as read (its digest is what a signature covers).
    pub fn manifest_text(&self) -> &str {
        &self.manifest_text
    }

    pub fn component(&self) -> &[u8] {
        &self.component
    }

    pub fn signature(&self) -> Option<&PackageSignature> {
        self.signature.as_ref()
    }

    /// SHA-256 of `plugin.toml`.
    pub fn manifest_digest(&self) -> Digest {
        self.manifest_digest
    }

    /// SHA-256 of the component: the package's identity.
    pub fn component_digest(&self) -> Digest {
        self.component_digest
    }
}

impl fmt::Debug for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Package")
            .field("plugin", &self.manifest.label())
            .field("provider", &self.manifest.provider())
            .field("component_digest", &self.component_digest)
            .field("component_bytes", &self.component.len())
            .field("signed_by", &self.signature.as_ref().map(|s| s.key_id()))
            .finish()
    }
}

fn io(path: &Path, source: std::io::Error) -> PackageError {
    PackageError::Io { path: path.display().to_string(), source }
}

/// Reads a regular file of at most `limit` bytes; `None` when it does not exist. Links are
/// refused rather than followed.
fn read_regular(path: &Path, name: &str, limit: u64) -> Result<Option<Vec<u8>>, PackageError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io(path, source)),
    };
    if !meta.file_type().is_file() {
        return Err(PackageError::NotARegularFile { file: name.to_owned() });
    }
    let too_large = |size| PackageError::TooLarge { file: name.to_owned(), size, limit };
    if meta.len() > limit {
        return Err(too_large(meta.len()));
    }
    let file = fs::File::open(path).map_err(|source| io(path, source))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|source| io(path, source))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some(bytes))
}

/// Writes `plugin.sig` into a package directory (what `host plugin sign` leaves behind),
/// replacing an older one whole.
pub fn write_signature(package_dir: &Path, signature: &PackageSignature) -> std::io::Result<PathBuf> {
    let path = package_dir.join(SIGNATURE_FILE);
    crate::store::write_atomically(&path, signature.to_toml().as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{manifest_text, write_dir};

    #[test]
    fn a_directory_package_loads_with_its_digests() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), &manifest_text("stripe", "1.0.0", None), b"wasm bytes", None);
        let package = Package::load(dir.path()).unwrap();
        assert_eq!(package.manifest().label(), "stripe@1.0.0");
        assert_eq!(package.component(), b"wasm bytes");
        assert_eq!(package.component_digest(), Digest::of(b"wasm bytes"));
        assert_eq!(package.manifest_digest(), Digest::of(package.manifest_text().as_bytes()));
        assert!(package.signature().is_none());
    }

    #[test]
    fn a_pinned_digest_must_match_the_component() {
        let dir = tempfile::tempdir().unwrap();
        let pinned = Digest::of(b"original");
        write_dir(dir.path(), &manifest_text("stripe", "1.0.0", Some(pinned)), b"originaL", None);
        match Package::load(dir.path()) {
            Err(e @ PackageError::DigestMismatch { .. }) => {
                assert!(e.to_string().contains(&pinned.to_string()), "{e}");
            }
            other => panic!("expected a digest mismatch, got {other:?}"),
        }
        write_dir(dir.path(), &manifest_text("stripe", "1.0.0", Some(pinned)), b"original", None);
        assert!(Package::load(dir.path()).is_ok());
    }

    #[test]
    fn missing_and_linked_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(Package::from_dir(dir.path()), Err(PackageError::MissingFile { .. })));
        fs::write(dir.path().join(MANIFEST_FILE), manifest_text("stripe", "1.0.0", None)).unwrap();
        assert!(
            matches!(Package::from_dir(dir.path()), Err(PackageError::MissingFile { file }) if file == "stripe.wasm")
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", dir.path().join("stripe.wasm")).unwrap();
            assert!(matches!(Package::from_dir(dir.path()), Err(PackageError::NotARegularFile { .. })));
        }
    }

    #[test]
    fn an_oversized_component_is_refused() {
        let big = vec![0u8; MAX_COMPONENT_BYTES as usize + 1];
        let result = Package::from_parts(manifest_text("stripe", "1.0.0", None), big, None);
        assert!(matches!(result, Err(PackageError::TooLarge { .. })));
    }

    #[test]
    fn a_malformed_signature_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), &manifest_text("stripe", "1.0.0", None), b"x", Some("key_id = 1"));
        assert!(matches!(Package::load(dir.path()), Err(PackageError::SignatureFile(_))));
    }
}
