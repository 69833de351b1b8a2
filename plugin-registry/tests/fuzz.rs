//! Fuzz targets (issue 11 item 16): property tests over arbitrary input for the plugin manifest
//! parser and the package reader (`.tar` and `.tar.gz`, in memory). Run by `scripts/fuzz.sh`
//! with a large `PROPTEST_CASES`; plain `cargo test` runs a few cases. Whatever the input: a
//! typed error or a package, never a panic.

use std::io::Write;

use lessor_plugin_registry::{Manifest, Package};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

const MANIFEST: &str = r#"name = "stripe"
version = "0.1.0"
wit = "lessor:payments@0.1.0"
provider = "stripe"
component = "stripe.wasm"
hosts = ["https://api.stripe.com"]
config = ["api_base"]
secrets = ["secret_key", "webhook_secret"]
"#;

/// A well-formed package archive: `pkg/plugin.toml` and `pkg/stripe.wasm`.
fn tar_of(manifest: &[u8], component: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in [("pkg/plugin.toml", manifest), ("pkg/stripe.wasm", component)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append_data(&mut header, path, bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// `bytes` with some positions overwritten and maybe cut short.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for &(at, value) in edits {
        if !bytes.is_empty() {
            let at = at % bytes.len();
            bytes[at] = value;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_manifest_text(text in "\\PC{0,400}") {
        let _ = Manifest::from_toml(&text);
    }

    #[test]
    fn fuzz_manifest_mutated(edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 0..6)) {
        let text = mutate(MANIFEST.as_bytes().to_vec(), &edits, None);
        if let Ok(text) = String::from_utf8(text) {
            let _ = Manifest::from_toml(&text);
        }
    }

    #[test]
    fn fuzz_package_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), gz in any::<bool>()) {
        let bytes = if gz { [&[0x1f, 0x8b][..], &bytes].concat() } else { bytes };
        let _ = Package::from_archive_reader(bytes.as_slice());
    }

    #[test]
    fn fuzz_package_mutated(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in proptest::option::of(any::<usize>()),
        gz in any::<bool>(),
        component in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let archive = tar_of(MANIFEST.as_bytes(), &component);
        let archive = if gz { gzip(&archive) } else { archive };
        let bytes = mutate(archive, &edits, cut);
        let _ = Package::from_archive_reader(bytes.as_slice());
    }
}
