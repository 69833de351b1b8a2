//! The baseline: pgbench running `bench/pgbench/payment.sql` (the host's SQL for one payment) at
//! the same concurrency against the same PostgreSQL server, as a process of its own.

use std::path::PathBuf;
use std::time::Duration;

use crate::served::Error;
use crate::workspace_root;

/// pgbench against one database, paying into one active lease.
#[derive(Clone)]
pub struct Pgbench {
    url: String,
    lease: String,
    owner: String,
}

/// What one pgbench run measured.
#[derive(Debug, Clone, Copy)]
pub struct PgbenchRun {
    pub tps: f64,
    /// pgbench's "latency average", milliseconds.
    pub latency_ms: f64,
}

pub fn script() -> PathBuf {
    workspace_root().join("bench").join("pgbench").join("payment.sql")
}

impl Pgbench {
    pub fn new(url: &str, lease: &str, owner: &str) -> Self {
        Self { url: url.to_owned(), lease: lease.to_owned(), owner: owner.to_owned() }
    }

    /// `pgbench -n -M prepared -c <clients> -j <min(2, clients)> -T <secs> -f
    /// bench/pgbench/payment.sql`; fails if any transaction failed. Prepared, as the host's
    /// statements are (sqlx prepares each once per connection).
    pub async fn run(&self, clients: usize, secs: Duration) -> Result<PgbenchRun, Error> {
        let threads = clients.min(2);
        let output = tokio::process::Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", &threads.to_string()])
            .args(["-T", &secs.as_secs().max(1).to_string(), "-f"])
            .arg(script())
            .args(["-D", &format!("lease={}", self.lease), "-D", &format!("owner={}", self.owner), &self.url])
            .output()
            .await
            .map_err(|e| format!("cannot run pgbench (Debian package postgresql-client): {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!("pgbench failed: {text}{}", String::from_utf8_lossy(&output.stderr)).into());
        }
        let field = |prefix: &str| {
            text.lines().find_map(|l| l.trim().strip_prefix(prefix)?.split_whitespace().next()?.parse::<f64>().ok())
        };
        if let Some(failed) = field("number of failed transactions:")
            && failed > 0.0
        {
            return Err(format!("pgbench: {failed} transactions failed: {text}").into());
        }
        let tps = field("tps = ").ok_or_else(|| format!("no tps in pgbench's output: {text}"))?;
        let latency_ms = field("latency average = ").unwrap_or(f64::NAN);
        Ok(PgbenchRun { tps, latency_ms })
    }
}
