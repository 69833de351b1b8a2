//! Search latency of the embedded index at 100,000 and 1,000,000 leases.
//!
//!     cargo bench -p lessor-search --bench search
//!
//! Builds (or reuses, `index.rs`) an on-disk tantivy index of synthetic leases per size
//! (`data.rs`), reopened as a restarted host would, then runs rounds of mixed queries one at a
//! time, the sizes' rounds interleaved (100k round, 1M round, 100k round, …). Prints per round
//! and size p50/p95, then per kind of query p50/p95/p99/max over all rounds, and the `BENCH`
//! lines `search.p50.leases_<n>` / `search.p95.leases_<n>` in ms (median over rounds, the p95
//! against issue 12's target: 5 ms at 100k, 20 ms at 1M). Also times small upserts (the
//! indexer's steady state) on the smallest index.
//!
//! `SEARCH_BENCH_LEASES` (comma-separated sizes, default `100000,1000000`),
//! `SEARCH_BENCH_QUERIES` (per round, default 600), `SEARCH_BENCH_ROUNDS` (default 5).
//! `BENCH_SMOKE=1`: 2,000 leases, 2 rounds of 100 queries.

#[path = "../../../../host/benches/support/bench_line.rs"]
mod bench_line;
mod data;
mod index;

use std::time::{Duration, Instant};

use bench_line::{Baseline, emit};
use data::{KINDS, Rng, lease, query, vocabulary};
use lessor_search::{LeaseDocument, SearchIndex, TantivyIndex};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// "100k", "1m", "2k": the size in a metric's name.
fn size_name(count: u64) -> String {
    match count {
        n if n >= 1_000_000 && n % 1_000_000 == 0 => format!("{}m", n / 1_000_000),
        n if n >= 1_000 && n % 1_000 == 0 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// p95 targets of issue 12, in ms, for the sizes it names.
fn target_ms(count: u64) -> Option<f64> {
    match count {
        100_000 => Some(5.0),
        1_000_000 => Some(20.0),
        _ => None,
    }
}

/// One index under test and every latency measured on it.
struct Size {
    count: u64,
    index: TantivyIndex,
    rng: Rng,
    by_kind: Vec<Vec<Duration>>,
    hits: Vec<u64>,
    p50: Vec<f64>,
    p95: Vec<f64>,
}

impl Size {
    /// One round of `queries` mixed queries, one at a time (`spawn_blocking` included).
    async fn round(&mut self, words: &[String], queries: u64) {
        let mut all = Vec::with_capacity(queries as usize);
        for n in 0..queries {
            let kind = (n % KINDS.len() as u64) as usize;
            let query = query(&mut self.rng, kind, words);
            let started = Instant::now();
            let page = self.index.search(&query).await.expect("search");
            let elapsed = started.elapsed();
            self.by_kind[kind].push(elapsed);
            self.hits[kind] += page.estimated_total;
            all.push(elapsed);
        }
        all.sort();
        self.p50.push(millis(percentile(&all, 50.0)));
        self.p95.push(millis(percentile(&all, 95.0)));
    }

    fn print_kinds(&mut self) {
        println!("\n{} leases, every round (latency in ms):", self.count);
        println!(
            "{:<20} {:>6} {:>8} {:>8} {:>8} {:>8} {:>11}",
            "kind", "count", "p50", "p95", "p99", "max", "mean hits"
        );
        for (kind, durations) in self.by_kind.iter_mut().enumerate() {
            durations.sort();
            println!(
                "{:<20} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>11.1}",
                KINDS[kind],
                durations.len(),
                millis(percentile(durations, 50.0)),
                millis(percentile(durations, 95.0)),
                millis(percentile(durations, 99.0)),
                millis(percentile(durations, 100.0)),
                self.hits[kind] as f64 / durations.len().max(1) as f64
            );
        }
    }

    fn emit(&self) {
        let name = size_name(self.count);
        emit(&format!("search.p50.leases_{name}"), "ms", &self.p50, Baseline::None);
        let target = match target_ms(self.count) {
            Some(value) => Baseline::Fixed { name: "target (issue 12)", value },
            None => Baseline::None,
        };
        emit(&format!("search.p95.leases_{name}"), "ms", &self.p95, target);
    }
}

/// The indexer's steady state on the host's default writer: small batches, one commit each.
/// The leases are re-written unchanged, so a reused index stays as built.
async fn small_upserts(index: &TantivyIndex, count: u64) {
    let mut latencies = Vec::new();
    for round in 0..20 {
        let docs: Vec<LeaseDocument> = (0..100).map(|i| lease((round * 100 + i) % count, count)).collect();
        let started = Instant::now();
        index.upsert(&docs).await.expect("upsert");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "upsert of 100 existing leases at {count} (replace, commit with fsync, reload), 20 rounds: p50 {:.1} ms, max {:.1} ms",
        millis(percentile(&latencies, 50.0)),
        millis(percentile(&latencies, 100.0))
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument has nothing to select here.
    let smoke = bench_line::smoke();
    let counts: Vec<u64> = match std::env::var("SEARCH_BENCH_LEASES") {
        Ok(list) => list.split(',').filter_map(|n| n.trim().parse().ok()).filter(|n| *n > 0).collect(),
        Err(_) if smoke => vec![2_000],
        Err(_) => vec![100_000, 1_000_000],
    };
    let queries: u64 = env_or("SEARCH_BENCH_QUERIES", if smoke { 100 } else { 600 }).max(KINDS.len() as u64);
    let rounds: usize = env_or("SEARCH_BENCH_ROUNDS", if smoke { 2 } else { 5 }).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    runtime.block_on(async {
        let words = vocabulary();
        let mut sizes = Vec::new();
        for (n, &count) in counts.iter().enumerate() {
            let index = index::open(count).await;
            let mut rng = Rng(0xC0FFEE + n as u64);
            for kind in 0..KINDS.len() {
                for _ in 0..25 {
                    index.search(&query(&mut rng, kind, &words)).await.expect("warm-up");
                }
            }
            let (by_kind, hits) = (vec![Vec::new(); KINDS.len()], vec![0; KINDS.len()]);
            sizes.push(Size { count, index, rng, by_kind, hits, p50: Vec::new(), p95: Vec::new() });
        }
        if let Some(smallest) = sizes.iter().min_by_key(|s| s.count) {
            small_upserts(&smallest.index, smallest.count).await;
        }
        println!("\n{rounds} rounds of {queries} mixed queries per size, one at a time, limit 20:");
        for round in 0..rounds {
            for size in &mut sizes {
                size.round(&words, queries).await;
                println!(
                    "  round {} at {:>8} leases: p50 {:.3} ms   p95 {:.3} ms",
                    round + 1,
                    size.count,
                    size.p50.last().expect("a round"),
                    size.p95.last().expect("a round")
                );
            }
        }
        for size in &mut sizes {
            size.print_kinds();
        }
        for size in &sizes {
            size.emit();
        }
    });
}
