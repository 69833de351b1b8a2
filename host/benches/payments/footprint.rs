//! Footprint (issue 12, item 6): idle RSS of a fresh host on an empty SQLite database, RSS with
//! ten plugins installed, and start-up to `/ready` with an empty plugin cache (cold: every
//! component compiled) and again with the cache it left (precompiled).
//!
//! The CLI installs a package under the provider id its component reports (a copy under another
//! id is refused as disagreeing with the manifest), so the ten are ten distinct built packages.

use std::path::Path;
use std::time::Duration;

use crate::served::{Error, Served};

/// Ten packages from `cargo xtask plugins`, each a provider of its own.
pub const TEN_PLUGINS: [&str; 10] = [
    "stripe",
    "bank",
    "echo-v1",
    "minimal",
    "well-behaved",
    "panic",
    "deep-recursion",
    "infinite-loop",
    "memory-bomb",
    "huge-output",
];

/// How long a started host is left alone before its RSS is read.
const SETTLE: Duration = Duration::from_secs(2);

pub struct Footprint {
    /// KiB, one per round.
    pub idle_rss: Vec<f64>,
    pub ten_plugins_rss: Vec<f64>,
    /// Milliseconds to `/ready`, one per round.
    pub cold_start: Vec<f64>,
    pub precompiled_start: Vec<f64>,
}

pub async fn measure(binary: &str, packages: &Path, rounds: usize) -> Result<Footprint, Error> {
    let mut f = Footprint { idle_rss: vec![], ten_plugins_rss: vec![], cold_start: vec![], precompiled_start: vec![] };

    let mut plugged = Served::new(binary);
    plugged.set("LESSOR_LOG_LEVEL", "warn");
    plugged.cli(&["migrate"])?;
    for name in TEN_PLUGINS {
        plugged.install(&packages.join(name), &[]).map_err(|e| format!("installing {name}: {e}"))?;
    }
    let cache = plugged.data_dir().join("plugin-cache");

    for _ in 0..rounds {
        // A fresh host on an empty SQLite database (migrated at start), nothing installed.
        let mut idle = Served::new(binary);
        idle.set("LESSOR_LOG_LEVEL", "warn");
        idle.start().await?;
        tokio::time::sleep(SETTLE).await;
        f.idle_rss.push(idle.rss_kib() as f64);
        drop(idle);

        // Ten plugins, the cache emptied: each component is compiled at start.
        if cache.exists() {
            std::fs::remove_dir_all(&cache)?;
        }
        f.cold_start.push(ms(plugged.start().await?));
        tokio::time::sleep(SETTLE).await;
        f.ten_plugins_rss.push(plugged.rss_kib() as f64);
        plugged.stop(Duration::from_secs(10));

        // The same again, the cache as the cold start left it.
        f.precompiled_start.push(ms(plugged.start().await?));
        plugged.stop(Duration::from_secs(10));
    }
    Ok(f)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
