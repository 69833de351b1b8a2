//! Indexing lag: how long after a lease is committed it can be found by search, with the
//! host's own indexer on the embedded index (SQLite + tantivy), leases arriving at a steady
//! rate. Prints p50/p95/p99/max per round and the `BENCH` lines `indexing.lag_p50`,
//! `indexing.lag_p95`, `indexing.lag_p99` in ms (median over rounds, spread over rounds).
//!
//!     cargo bench -p host --bench indexing_lag
//!
//! `LAG_BENCH_LEASES` (per round, default 1000), `LAG_BENCH_ROUNDS` (default 3) and
//! `LAG_BENCH_RATE` (leases per second, default 200) change the load; `BENCH_SMOKE=1`: two
//! rounds of 100.

#[path = "support/bench_line.rs"]
mod bench_line;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_line::{Baseline, emit};
use host::{Application, Config};
use lessor_auth::Role;
use lessor_leases::{LeaseInput, NewLease, Viewer};
use lessor_search::SearchQuery;
use uuid::Uuid;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let smoke = bench_line::smoke();
    let n = env_or("LAG_BENCH_LEASES", if smoke { 100 } else { 1000 }).max(1) as usize;
    let rounds = env_or("LAG_BENCH_ROUNDS", if smoke { 2 } else { 3 }).max(1);
    let rate = env_or("LAG_BENCH_RATE", 200).max(1);
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.database = lessor_store::DatabaseTarget::from_config(None, dir.path()).unwrap();
    // One client address and token drive the whole load: the per-client rate limits would cap it.
    config.rate_limits = host::config::RateLimits { per_token: 0, per_address: 0, webhook: 0 };
    let app = Application::build(config).await.unwrap();
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped(std::future::pending()));

    let email = "bench@example.com";
    let owner = state.auth.create_user(email, "bench password 123".to_owned().into(), Role::Customer).await.unwrap();
    let viewer = Viewer { user_id: owner.id, is_staff: false };
    let input: LeaseInput = serde_json::from_value(serde_json::json!({
        "vehicle": {"vin": "WDD2220821A123456", "make": "Mercedes-Benz", "model": "S 580", "year": 2025, "category": "luxury"},
        "start_date": "2026-12-31", "term_months": 36, "monthly_amount": 129900, "deposit": 500000, "currency": "EUR"
    }))
    .unwrap();
    let lease = NewLease::parse(input, chrono::Utc::now().date_naive()).unwrap();

    let (mut p50, mut p95, mut p99) = (Vec::new(), Vec::new(), Vec::new());
    println!("indexing lag, {rounds} rounds of {n} leases at {rate}/s (SQLite + tantivy, {} cores):", num_cpus());
    let mut earlier = HashSet::new();
    for round in 0..rounds {
        let lags = lags(&state, viewer, &lease, n, rate, &mut earlier).await;
        let ms = |p: f64| percentile(&lags, p).as_secs_f64() * 1e3;
        println!(
            "  round {}: p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
            round + 1,
            ms(0.50),
            ms(0.95),
            ms(0.99),
            ms(1.0)
        );
        p50.push(ms(0.50));
        p95.push(ms(0.95));
        p99.push(ms(0.99));
    }
    emit("indexing.lag_p50", "ms", &p50, Baseline::None);
    emit("indexing.lag_p95", "ms", &p95, Baseline::None);
    emit("indexing.lag_p99", "ms", &p99, Baseline::None);
}

/// Creates `n` leases at `rate` per second and returns, sorted, how long after each create
/// returned it first showed up in search. `earlier` holds the leases of earlier rounds (which
/// the poller ignores); this round's are added to it.
async fn lags(
    state: &host::http::AppState,
    viewer: Viewer,
    lease: &NewLease,
    n: usize,
    rate: u64,
    earlier: &mut HashSet<Uuid>,
) -> Vec<Duration> {
    // A poller notes when each new lease first shows up in search (newest first).
    let seen: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let poller = {
        let (seen, search, earlier) = (seen.clone(), state.search.clone(), Arc::new(earlier.clone()));
        tokio::spawn(async move {
            let query = SearchQuery { limit: 100, ..SearchQuery::default() };
            loop {
                let page = search.search(&query).await.unwrap();
                let now = Instant::now();
                let done = {
                    let mut seen = seen.lock().unwrap();
                    for id in page.ids.into_iter().filter(|id| !earlier.contains(id)) {
                        seen.entry(id).or_insert(now);
                    }
                    seen.len() >= n
                };
                if done {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };

    let started = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let mut created = Vec::with_capacity(n);
    for i in 0..n {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let made = state.leases.create(viewer, None, lease).await.unwrap();
        created.push((made.id, Instant::now()));
    }
    tokio::time::timeout(Duration::from_secs(60), poller).await.expect("every lease indexed within 60 s").unwrap();

    earlier.extend(created.iter().map(|(id, _)| *id));
    let seen = seen.lock().unwrap();
    let mut lags: Vec<Duration> = created.iter().map(|(id, at)| seen[id].saturating_duration_since(*at)).collect();
    lags.sort();
    lags
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
