//! Indexing lag: how long after a lease is committed it can be found by search, with the
//! host's own indexer on the embedded index (SQLite + tantivy), leases arriving at a steady
//! rate. Prints p50/p95/p99/max.
//!
//!     cargo bench -p host --bench indexing_lag
//!
//! `LAG_BENCH_LEASES` (default 2000) and `LAG_BENCH_RATE` (leases per second, default 200)
//! change the load.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    let n = env_or("LAG_BENCH_LEASES", 2000) as usize;
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

    // A poller notes when each lease first shows up in search (newest first).
    let seen: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let poller = {
        let (seen, search) = (seen.clone(), state.search.clone());
        tokio::spawn(async move {
            let query = SearchQuery { limit: 100, ..SearchQuery::default() };
            loop {
                let page = search.search(&query).await.unwrap();
                let now = Instant::now();
                let done = {
                    let mut seen = seen.lock().unwrap();
                    for id in page.ids {
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
        let made = state.leases.create(viewer, None, &lease).await.unwrap();
        created.push((made.id, Instant::now()));
    }
    let write_secs = started.elapsed().as_secs_f64();
    tokio::time::timeout(Duration::from_secs(60), poller).await.expect("every lease indexed within 60 s").unwrap();

    let seen = seen.lock().unwrap();
    let mut lags: Vec<Duration> = created.iter().map(|(id, at)| seen[id].saturating_duration_since(*at)).collect();
    lags.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("indexing lag, {n} leases at {:.0}/s (SQLite + tantivy, {} cores):", n as f64 / write_secs, num_cpus());
    println!(
        "  p50 {:.1} ms   p95 {:.1} ms   p99 {:.1} ms   max {:.1} ms",
        ms(percentile(&lags, 0.50)),
        ms(percentile(&lags, 0.95)),
        ms(percentile(&lags, 0.99)),
        ms(*lags.last().unwrap())
    );
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
