//! AFL target: bytes as a plugin package archive (tar or tar.gz) and as a `plugin.toml`.

use lessor_plugin_registry::{Manifest, Package};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = Package::from_archive_reader(data);
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = Manifest::from_toml(text);
        }
    });
}
