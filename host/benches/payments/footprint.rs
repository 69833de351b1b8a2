//! Footprint (issue 12, item 6): idle RSS of a fresh host on an empty SQLite database, RSS with
//! ten plugins installed, and start-up to `/ready` with an empty plugin cache (cold: every
//! component compiled) and again with the cache it left (precompiled).
//!
//! Also the RSS of that idle host after [`LOGINS`] logins: each argon2id verification
//! takes a 19 MiB block, which glibc kept resident once freed until the host fixed its mmap
//! threshold (`host/src/allocator.rs`): 31 -> 246 MiB before, 32 MiB after.
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

/// Logins of one admin against the idle host, [`AT_ONCE`] at a time (more would be refused 429 by
/// the bound on concurrent password hashing).
const LOGINS: usize = 16;
const AT_ONCE: usize = 4;

pub struct Footprint {
    /// KiB, one per round.
    pub idle_rss: Vec<f64>,
    pub after_logins_rss: Vec<f64>,
    pub ten_plugins_rss: Vec<f64>,
    /// Milliseconds to `/ready`, one per round.
    pub cold_start: Vec<f64>,
    pub precompiled_start: Vec<f64>,
}

pub async fn measure(binary: &str, packages: &Path, rounds: usize) -> Result<Footprint, Error> {
    let mut f = Footprint {
        idle_rss: vec![],
        after_logins_rss: vec![],
        ten_plugins_rss: vec![],
        cold_start: vec![],
        precompiled_start: vec![],
    };

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
        idle.cli(&["migrate"])?;
        idle.create_admin(ADMIN, PASSWORD)?;
        idle.start().await?;
        tokio::time::sleep(SETTLE).await;
        f.idle_rss.push(idle.rss_kib() as f64);
        logins(&idle).await?;
        tokio::time::sleep(SETTLE).await;
        f.after_logins_rss.push(idle.rss_kib() as f64);
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

const ADMIN: &str = "footprint@example.com";
const PASSWORD: &str = "footprint password 1";

/// [`LOGINS`] logins, [`AT_ONCE`] at a time; every one must succeed.
async fn logins(host: &Served) -> Result<(), Error> {
    for _ in 0..LOGINS / AT_ONCE {
        let mut wave = tokio::task::JoinSet::new();
        for _ in 0..AT_ONCE {
            let api = host.api();
            wave.spawn(async move { api.login(ADMIN, PASSWORD).await.map_err(|e| e.to_string()) });
        }
        while let Some(result) = wave.join_next().await {
            result.map_err(|e| e.to_string())?.map_err(|e| format!("a footprint login failed: {e}"))?;
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
