//! The soak: a release `host serve` on PostgreSQL + Redis with the Stripe plugin calling a local
//! Stripe peer (`tests/peers/stripe.rs`, in this process), driven at a steady rate for a bounded
//! time. Every 5 s it samples the host's RSS and open file descriptors (`/proc/<pid>`), the
//! database's connections (`pg_stat_activity`), the event stream's length (`XLEN`) and the
//! window's latency and errors, and prints them as a table. At the end it fits each resource's
//! trend (least-squares slope over the second half against the first half's median, confirmed by
//! the second half's median, `trend.rs`)
//! and exits non-zero on a growing trend of RSS, file descriptors or connections, on a stream
//! longer than its trim bound, or on any error.
//!
//!     cargo bench -p host --bench soak
//!
//! `SOAK_SECS` (default 600; `BENCH_SMOKE=1`: 45), `SOAK_RATE` payments/s (default: half the
//! capacity measured first, 8 clients one request after another for 5 s, 2 s in a smoke run). PostgreSQL from
//! `TEST_POSTGRES_URL` (a fresh database is created and dropped), Redis from `TEST_REDIS_URL`
//! (a namespace of its own, removed at the end). Prints `BENCH` lines (`../support/bench_line.rs`).

#[path = "../support/bench_line.rs"]
mod bench_line;
#[path = "../../tests/plugins/build.rs"]
#[allow(dead_code, reason = "shared with the integration tests")]
mod build;
mod load;
#[path = "../../tests/peers/mod.rs"]
mod peers;
mod probes;
#[path = "../../tests/support/served.rs"]
mod served;
mod trend;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bench_line::{Baseline, emit};
use load::{Payments, Window};
use probes::{Database, Stream};
use served::Served;
use trend::{median, trend};

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const SECRET_KEY: &str = "sk_test_soak_4eC39HqLyjWDarjtT1zdp7dc";
const ADMIN: (&str, &str) = ("soak-admin@lessor.test", "soak admin password 123");
/// The stream keeps its newest 100,000 entries and trims once a tenth more were added
/// (`services/events`): it may be this long at most, with no consumer group behind.
const STREAM_BOUND: u64 = 110_000;

/// One row of the table.
struct Sample {
    secs: f64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    rss_mib: f64,
    fds: f64,
    connections: f64,
    stream: f64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = bench_line::smoke();
    let secs: u64 = env_or("SOAK_SECS", if smoke { 45 } else { 600 });
    let capacity_secs = if smoke { 2 } else { 5 };
    let packages = build::packages_dir();
    let peer = peers::stripe::StripePeer::start(SECRET_KEY).await;
    let database = Database::create().await;
    let redis_url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let namespace = format!("soak-{}", uuid::Uuid::new_v4().simple());
    let mut stream = Stream::connect(&redis_url, &namespace).await;

    let mut host = Served::new(env!("CARGO_BIN_EXE_host")).postgres(&database.url).redis(&redis_url, &namespace);
    host.set("LESSOR_PLUGINS__STRIPE__API_BASE", peer.origin());
    host.set("LESSOR_PLUGINS__STRIPE__SECRET_KEY", SECRET_KEY);
    host.set("LESSOR_PLUGINS__STRIPE__WEBHOOK_SECRET", "whsec_soak");
    let failed =
        match soak(&mut host, &peer.origin(), &packages.join("stripe"), &database, &mut stream, (capacity_secs, secs))
            .await
        {
            Ok(failed) => failed,
            Err(e) => {
                eprintln!("soak could not run: {e}\nhost log:\n{}", host.log_tail(40));
                true
            }
        };
    host.stop(Duration::from_secs(10));
    stream.remove_namespace().await;
    database.drop_now().await;
    if failed {
        std::process::exit(1);
    }
}

/// Sets the host up, measures capacity (unless `SOAK_RATE` is set), runs the steady load while
/// sampling, and judges. `Ok(true)` when the soak failed.
async fn soak(
    host: &mut Served,
    peer: &str,
    stripe: &std::path::Path,
    database: &Database,
    stream: &mut Stream,
    (capacity_secs, secs): (u64, u64),
) -> Result<bool, served::Error> {
    host.cli(&["migrate"])?;
    host.create_admin(ADMIN.0, ADMIN.1)?;
    host.install(stripe, &["--grant-host", peer, "--allow-private"])?;
    host.start().await?;
    let api = host.api();
    let admin = api.login(ADMIN.0, ADMIN.1).await?;
    let mut customers = Vec::new();
    for _ in 0..8 {
        customers.push(api.customer_with_active_lease(&admin).await?);
    }
    let payments = Payments::new(api, customers);

    let mut errors = 0;
    let rate = match std::env::var("SOAK_RATE").ok().and_then(|r| r.parse::<f64>().ok()) {
        Some(rate) => rate,
        None => {
            let capacity = payments.capacity(8, Duration::from_secs(capacity_secs)).await;
            errors += report_errors("capacity", payments.take_window());
            emit("soak.capacity", "payments/s", &[capacity], Baseline::None);
            println!("capacity: {capacity:.0} payments/s (8 clients, one request after another, {capacity_secs} s)");
            (capacity / 2.0).round().max(1.0)
        }
    };
    println!("soak: {rate:.0} payments/s for {secs} s, sampled every {} s", SAMPLE_EVERY.as_secs());
    println!(
        "{:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>5} {:>9} {:>8}",
        "t s", "sent/s", "p50 ms", "p99 ms", "errors", "RSS MiB", "fds", "db conns", "stream"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let driver = tokio::spawn({
        let (payments, stop) = (payments.clone(), stop.clone());
        async move { payments.steady(rate, stop).await }
    });
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next = started + SAMPLE_EVERY;
    while next <= started + Duration::from_secs(secs) {
        tokio::time::sleep_until(next.into()).await;
        next += SAMPLE_EVERY;
        let window = payments.take_window();
        let sample = sample(host, database, stream, started, &window).await;
        errors += report_errors("window", window);
        println!(
            "{:>6.0} {:>8.0} {:>8.2} {:>8.2} {:>7} {:>8.1} {:>5.0} {:>9.0} {:>8.0}",
            sample.secs,
            sample.rate,
            sample.p50_ms,
            sample.p99_ms,
            sample.errors,
            sample.rss_mib,
            sample.fds,
            sample.connections,
            sample.stream
        );
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    driver.await?;
    errors += report_errors("last answers", payments.take_window());
    if !host.is_running() {
        println!("host serve is no longer running:\n{}", host.log_tail(30));
        return Ok(true);
    }
    Ok(judge(&samples, rate, errors))
}

async fn sample(host: &Served, database: &Database, stream: &mut Stream, started: Instant, window: &Window) -> Sample {
    let mut latencies = window.latencies.clone();
    latencies.sort();
    Sample {
        secs: started.elapsed().as_secs_f64(),
        rate: (latencies.len() as u64 + window.errors) as f64 / SAMPLE_EVERY.as_secs_f64(),
        p50_ms: percentile_ms(&latencies, 0.50),
        p99_ms: percentile_ms(&latencies, 0.99),
        errors: window.errors,
        rss_mib: host.rss_kib() as f64 / 1024.0,
        fds: host.open_fds() as f64,
        connections: database.connections().await as f64,
        stream: stream.len().await as f64,
    }
}

/// Prints the first error of `window` when it had any; returns how many.
fn report_errors(phase: &str, window: Window) -> u64 {
    if let Some(first) = &window.first_error {
        println!("  {phase}: {} errors, the first: {first}", window.errors);
    }
    window.errors
}

/// Prints the trends and the `BENCH` lines; `true` when the soak failed.
fn judge(samples: &[Sample], rate: f64, errors: u64) -> bool {
    let series = |f: fn(&Sample) -> f64| samples.iter().map(|s| (s.secs, f(s))).collect::<Vec<_>>();
    let rss = trend(&series(|s| s.rss_mib));
    let fds = trend(&series(|s| s.fds));
    let connections = trend(&series(|s| s.connections));
    let stream = trend(&series(|s| s.stream));
    let longest_stream = samples.iter().map(|s| s.stream as u64).max().unwrap_or(0);
    // Growth over the second half beyond max(absolute, relative × first-half median), by its
    // slope and by its median, fails. Descriptors include the clients' open connections, which
    // follow latency.
    let checks = [
        ("RSS (MiB)", &rss, rss.grows(8.0, 0.05)),
        ("open fds", &fds, fds.grows(8.0, 0.10)),
        ("db connections", &connections, connections.grows(2.0, 0.20)),
    ];
    println!("\ntrend over the second half (least squares) against the first half's median:");
    let mut failed = false;
    for (name, t, grows) in &checks {
        println!(
            "  {name:<16} first half {:>10.1}   second half {:>10.1}   slope {:>+9.2}/min ({:>+8.1})   {}",
            t.first_half_median,
            t.second_half_median,
            t.slope_per_min,
            t.second_half_growth,
            if *grows { "GROWS" } else { "flat" }
        );
        failed |= grows;
    }
    let stream_over = longest_stream > STREAM_BOUND;
    println!(
        "  {:<16} first half {:>10.1}   slope {:>+9.2}/min   longest {longest_stream} (bound {STREAM_BOUND})   {}",
        "stream length",
        stream.first_half_median,
        stream.slope_per_min,
        if stream_over { "OVER THE BOUND" } else { "within the bound" }
    );
    println!("  errors: {errors}");
    failed |= stream_over || errors > 0 || samples.len() < 2;

    let windows = |f: fn(&Sample) -> f64| samples.iter().map(f).collect::<Vec<_>>();
    let target = Baseline::Fixed { name: "the rate asked for", value: rate };
    emit("soak.rate", "payments/s", &windows(|s| s.rate), target);
    emit("soak.p50", "ms", &windows(|s| s.p50_ms), Baseline::None);
    emit("soak.p99", "ms", &windows(|s| s.p99_ms), Baseline::None);
    emit("soak.rss_growth", "MiB/min", &[rss.slope_per_min], Baseline::None);
    emit("soak.fd_growth", "fds/min", &[fds.slope_per_min], Baseline::None);
    emit("soak.db_connection_growth", "connections/min", &[connections.slope_per_min], Baseline::None);
    emit("soak.stream_growth", "entries/min", &[stream.slope_per_min], Baseline::None);
    emit("soak.errors", "requests", &[errors as f64], Baseline::None);
    println!(
        "soak {}: median p99 {:.2} ms over {} windows",
        if failed { "FAILED" } else { "passed" },
        median(&windows(|s| s.p99_ms)),
        samples.len()
    );
    failed
}
