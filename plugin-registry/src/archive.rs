//! Reading a package from a `.tar` or `.tar.gz` archive, in memory and defensively: only regular
//! files and directories, no absolute paths or `..`, no entry twice, bounded sizes. Nothing is
//! ever extracted to disk.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use flate2::read::GzDecoder;
use tar::EntryType;

use crate::package::{
    MANIFEST_FILE, MAX_COMPONENT_BYTES, MAX_MANIFEST_BYTES, MAX_SIGNATURE_BYTES, PackageError, SIGNATURE_FILE,
};

/// At most this many entries (files, directories, metadata) in one archive.
pub const MAX_ENTRIES: usize = 256;
/// At most this many bytes of file content in one archive, all entries together.
pub const MAX_CONTENT_BYTES: u64 = 2 * MAX_COMPONENT_BYTES;

/// The files of the package's directory inside an archive.
pub(crate) struct PackageFiles {
    pub manifest: Vec<u8>,
    pub signature: Option<Vec<u8>>,
    /// The other files of the package directory by name (one of them is the component).
    pub others: Vec<(String, Vec<u8>)>,
}

/// Writes `files` (name, content) at the root of a `.tar.gz` at `path`, through a temporary file
/// renamed into place. Entries carry no owner or time, so the same files make the same archive.
pub(crate) fn write_tar_gz(path: &Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("package"),
        std::process::id()
    ));
    let written = (|| {
        let file = std::fs::File::create(&tmp)?;
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(file, flate2::Compression::default()));
        for (name, content) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_entry_type(EntryType::Regular);
            header.set_cksum();
            builder.append_data(&mut header, name, *content)?;
        }
        builder.into_inner()?.finish()?.sync_all()
    })();
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// At most this many bytes of tar stream (headers included, after decompression) are read.
const MAX_STREAM_BYTES: u64 = MAX_CONTENT_BYTES + 4 * 1024 * 1024;

pub(crate) fn read_package_files(reader: impl Read) -> Result<PackageFiles, PackageError> {
    read_capped(reader, MAX_STREAM_BYTES)
}

fn read_capped(reader: impl Read, cap: u64) -> Result<PackageFiles, PackageError> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(archive_error)?;
    let gzip = head.starts_with(&[0x1f, 0x8b]);
    let files = if gzip {
        read_entries(Capped { inner: GzDecoder::new(reader), left: cap })?
    } else {
        read_entries(Capped { inner: reader, left: cap })?
    };
    split_package(files)
}

/// Fails, rather than ends, once more than `left` bytes were asked for: bounds what a gzip bomb
/// or an oversized metadata entry (which the tar reader buffers whole) can make us read.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let message = "the archive unpacks to more bytes than a package may hold";
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, message));
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn archive_error(e: std::io::Error) -> PackageError {
    PackageError::Archive(e.to_string())
}

/// Every regular file at most two levels deep, by its normalised path (`a/b`).
fn read_entries(reader: impl Read) -> Result<BTreeMap<String, Vec<u8>>, PackageError> {
    let mut archive = tar::Archive::new(reader);
    let mut files = BTreeMap::new();
    let mut content: u64 = 0;
    for (index, entry) in archive.entries().map_err(archive_error)?.enumerate() {
        if index >= MAX_ENTRIES {
            return Err(PackageError::ArchiveTooLarge(format!("more than {MAX_ENTRIES} entries")));
        }
        let entry = entry.map_err(archive_error)?;
        let raw_path = entry.path().map_err(archive_error)?.into_owned();
        let shown = raw_path.display().to_string();
        let path = normalise(&raw_path).ok_or_else(|| PackageError::UnsafePath { path: shown.clone() })?;
        match entry.header().entry_type() {
            EntryType::Directory | EntryType::XGlobalHeader => continue,
            EntryType::Regular | EntryType::Continuous => {}
            other => return Err(PackageError::UnsupportedEntry { path: shown, kind: kind_name(other) }),
        }
        let size = entry.header().size().map_err(archive_error)?;
        let name = path.rsplit('/').next().unwrap_or_default();
        let limit = match name {
            MANIFEST_FILE => MAX_MANIFEST_BYTES,
            SIGNATURE_FILE => MAX_SIGNATURE_BYTES,
            _ => MAX_COMPONENT_BYTES,
        };
        if size > limit {
            return Err(PackageError::TooLarge { file: shown, size, limit });
        }
        content += size;
        if content > MAX_CONTENT_BYTES {
            return Err(PackageError::ArchiveTooLarge(format!("over {MAX_CONTENT_BYTES} bytes of content")));
        }
        if path.is_empty() || path.matches('/').count() > 1 {
            continue; // not part of a package directory; its data is skipped unread
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.take(limit + 1).read_to_end(&mut bytes).map_err(archive_error)?;
        if bytes.len() as u64 > limit {
            return Err(PackageError::TooLarge { file: shown, size: bytes.len() as u64, limit });
        }
        if files.insert(path, bytes).is_some() {
            return Err(PackageError::DuplicateEntry { path: shown });
        }
    }
    Ok(files)
}

/// `./a/b` → `a/b`; `None` for absolute paths, `..` and names that are not UTF-8.
fn normalise(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Symlink => "symbolic link",
        EntryType::Link => "hard link",
        EntryType::Char | EntryType::Block => "device",
        EntryType::Fifo => "named pipe",
        EntryType::GNUSparse => "sparse file",
        _ => "special entry",
    }
}

/// Finds the package directory (the archive root, or its one top-level directory).
fn split_package(files: BTreeMap<String, Vec<u8>>) -> Result<PackageFiles, PackageError> {
    let manifests: Vec<&String> = files.keys().filter(|p| p.rsplit('/').next() == Some(MANIFEST_FILE)).collect();
    let prefix = match manifests.as_slice() {
        [] => return Err(PackageError::MissingFile { file: MANIFEST_FILE.to_owned() }),
        [one] => one.strip_suffix(MANIFEST_FILE).unwrap_or_default().to_owned(),
        many => {
            let list = many.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ");
            return Err(PackageError::Layout(format!("found {list}")));
        }
    };
    let mut manifest = None;
    let mut signature = None;
    let mut others = Vec::new();
    for (path, bytes) in files {
        let Some(name) = path.strip_prefix(&prefix).filter(|n| !n.contains('/')) else { continue };
        match name {
            MANIFEST_FILE => manifest = Some(bytes),
            SIGNATURE_FILE => signature = Some(bytes),
            _ => others.push((name.to_owned(), bytes)),
        }
    }
    let manifest = manifest.ok_or_else(|| PackageError::MissingFile { file: MANIFEST_FILE.to_owned() })?;
    Ok(PackageFiles { manifest, signature, others })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Package;
    use crate::testing::{TarEntry, manifest_text, tar_bytes};

    fn package_entries(prefix: &str) -> Vec<TarEntry> {
        vec![
            TarEntry::file(&format!("{prefix}plugin.toml"), manifest_text("stripe", "1.0.0", None).as_bytes()),
            TarEntry::file(&format!("{prefix}stripe.wasm"), b"component"),
        ]
    }

    #[test]
    fn plain_and_gzipped_archives_load_from_the_root_or_one_directory() {
        for prefix in ["", "./", "stripe/", "./stripe/"] {
            for gzip in [false, true] {
                let bytes = tar_bytes(&package_entries(prefix), gzip);
                let package = Package::from_archive_reader(bytes.as_slice())
                    .unwrap_or_else(|e| panic!("{prefix:?} gzip={gzip}: {e}"));
                assert_eq!(package.component(), b"component");
            }
        }
    }

    #[test]
    fn parent_paths_are_refused() {
        let mut entries = package_entries("");
        entries.push(TarEntry::file("../evil.wasm", b"x"));
        let bytes = tar_bytes(&entries, true);
        match Package::from_archive_reader(bytes.as_slice()) {
            Err(e @ PackageError::UnsafePath { .. }) => assert!(e.to_string().contains("../evil.wasm"), "{e}"),
            other => panic!("expected an unsafe path, got {other:?}"),
        }
    }

    #[test]
    fn absolute_paths_are_refused() {
        let mut entries = package_entries("");
        entries.push(TarEntry::file("/etc/evil", b"x"));
        let bytes = tar_bytes(&entries, false);
        assert!(matches!(Package::from_archive_reader(bytes.as_slice()), Err(PackageError::UnsafePath { .. })));
    }

    #[test]
    fn links_are_refused() {
        let mut entries = package_entries("");
        entries[1] = TarEntry::symlink("stripe.wasm", "/etc/passwd");
        let bytes = tar_bytes(&entries, false);
        assert!(matches!(
            Package::from_archive_reader(bytes.as_slice()),
            Err(PackageError::UnsupportedEntry { kind: "symbolic link", .. })
        ));
        let mut entries = package_entries("");
        entries.push(TarEntry::hard_link("copy.wasm", "stripe.wasm"));
        let bytes = tar_bytes(&entries, false);
        assert!(matches!(
            Package::from_archive_reader(bytes.as_slice()),
            Err(PackageError::UnsupportedEntry { kind: "hard link", .. })
        ));
    }

    #[test]
    fn duplicates_and_oversized_entries_are_refused() {
        let mut entries = package_entries("");
        entries.push(TarEntry::file("stripe.wasm", b"other"));
        let bytes = tar_bytes(&entries, false);
        assert!(matches!(Package::from_archive_reader(bytes.as_slice()), Err(PackageError::DuplicateEntry { .. })));

        let mut entries = package_entries("");
        entries[0] = TarEntry::file("plugin.toml", &vec![b' '; MAX_MANIFEST_BYTES as usize + 1]);
        let bytes = tar_bytes(&entries, true);
        assert!(matches!(Package::from_archive_reader(bytes.as_slice()), Err(PackageError::TooLarge { .. })));
    }

    #[test]
    fn two_packages_in_one_archive_are_ambiguous() {
        let mut entries = package_entries("a/");
        entries.extend(package_entries("b/"));
        let bytes = tar_bytes(&entries, false);
        assert!(matches!(Package::from_archive_reader(bytes.as_slice()), Err(PackageError::Layout(_))));
    }

    #[test]
    fn reading_stops_at_the_stream_cap() {
        let bytes = tar_bytes(&package_entries(""), true);
        let result = read_capped(bytes.as_slice(), 1024);
        match result {
            Err(PackageError::Archive(message)) => assert!(message.contains("more bytes than a package"), "{message}"),
            Err(other) => panic!("expected the cap to stop reading, got {other}"),
            Ok(_) => panic!("expected the cap to stop reading"),
        }
        assert!(read_capped(bytes.as_slice(), 64 * 1024).is_ok());
    }

    #[test]
    fn garbage_is_not_an_archive() {
        let result = Package::from_archive_reader(&b"definitely not a tar file, but long enough to have a header"[..]);
        assert!(matches!(result, Err(PackageError::Archive(_) | PackageError::MissingFile { .. })), "{result:?}");
    }
}
