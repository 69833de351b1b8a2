//! CPU use of the host, of this bench process (the Stripe peer lives here) and of PostgreSQL
//! (every process named `postgres`), from `/proc`, over a stretch of time. PostgreSQL's
//! backends come and go with their connections (pgbench's end with its run), so they are
//! sampled every 100 ms while the stretch lasts and each one counts up to its last sample.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::served::process_cpu_time;

/// CPU used over a stretch, in percent of one core (200 % is both cores of this machine).
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    pub host: f64,
    pub bench: f64,
    pub postgres: f64,
}

/// Measures from [`Meter::start`] to [`Meter::stop`].
pub struct Meter {
    at: Instant,
    host_pid: Option<u32>,
    host: Duration,
    bench: Duration,
    running: Arc<AtomicBool>,
    sampler: std::thread::JoinHandle<Duration>,
}

impl Meter {
    pub fn start(host_pid: Option<u32>) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let flag = running.clone();
        let sampler = std::thread::spawn(move || {
            let first = sample_postgres();
            let mut last = first.clone();
            while flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                last.extend(sample_postgres());
            }
            last.extend(sample_postgres());
            last.iter().map(|(pid, t)| t.saturating_sub(first.get(pid).copied().unwrap_or_default())).sum()
        });
        Self {
            at: Instant::now(),
            host_pid,
            host: host_pid.map_or(Duration::ZERO, process_cpu_time),
            bench: process_cpu_time(std::process::id()),
            running,
            sampler,
        }
    }

    pub fn stop(self) -> Usage {
        self.running.store(false, Ordering::SeqCst);
        let postgres = self.sampler.join().unwrap_or_default();
        let secs = self.at.elapsed().as_secs_f64().max(1e-9);
        let pct = |d: Duration| 100.0 * d.as_secs_f64() / secs;
        let host = self.host_pid.map_or(Duration::ZERO, process_cpu_time);
        Usage {
            host: pct(host.saturating_sub(self.host)),
            bench: pct(process_cpu_time(std::process::id()).saturating_sub(self.bench)),
            postgres: pct(postgres),
        }
    }
}

/// CPU time of every process named `postgres` now.
fn sample_postgres() -> BTreeMap<u32, Duration> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return BTreeMap::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|pid| (pid, process_cpu_time(pid)))
        .filter(|(_, t)| !t.is_zero())
        .collect()
}
