//! The load generator: wrk as a process of its own, driven by `bench/wrk/payments.lua`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::served::Error;
use crate::workspace_root;

/// What one wrk run measured (from the `WRK_RESULT` line the Lua script prints).
#[derive(Debug, Clone, Copy)]
pub struct WrkRun {
    pub requests: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The load of one run: where, how hard, what to pay with.
pub struct Load<'a> {
    pub base: &'a str,
    pub connections: usize,
    pub duration: Duration,
    pub customers_file: &'a Path,
    pub provider: &'a str,
    pub payment_method: &'a str,
    /// Makes the run's Idempotency-Keys unique.
    pub run: &'a str,
}

/// `wrk -t<min(2, c)> -c<c> -d<secs> --latency -s bench/wrk/payments.lua <base>`; fails when a
/// request failed (a non-2xx answer, a socket error or a timeout).
pub async fn run(load: &Load<'_>) -> Result<WrkRun, Error> {
    let threads = load.connections.min(2);
    let script = workspace_root().join("bench").join("wrk").join("payments.lua");
    let output = tokio::process::Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{}", load.connections))
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .args(["--timeout", "10s", "--latency", "-s"])
        .arg(&script)
        .arg(load.base)
        .env("BENCH_CUSTOMERS", load.customers_file)
        .env("BENCH_PROVIDER", load.provider)
        .env("BENCH_PAYMENT_METHOD", load.payment_method)
        .env("BENCH_RUN", load.run)
        .output()
        .await
        .map_err(|e| format!("cannot run wrk (Debian package wrk): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed: {text}{}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let result: Value = text
        .lines()
        .find_map(|l| l.strip_prefix("WRK_RESULT "))
        .and_then(|json| serde_json::from_str(json).ok())
        .ok_or_else(|| format!("no WRK_RESULT line in wrk's output: {text}"))?;
    let n = |key: &str| result[key].as_f64().unwrap_or(f64::NAN);
    let failed =
        ["non_2xx", "connect_errors", "read_errors", "write_errors", "timeouts"].iter().map(|k| n(k)).sum::<f64>();
    if failed > 0.0 || n("requests") < 1.0 {
        return Err(format!("wrk saw failed requests: {result}").into());
    }
    Ok(WrkRun {
        requests: n("requests") as u64,
        per_sec: n("requests") / (n("duration_us") / 1e6),
        p50_ms: n("p50_us") / 1e3,
        p99_ms: n("p99_us") / 1e3,
    })
}
