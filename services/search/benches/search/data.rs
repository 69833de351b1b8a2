//! Search latency of the embedded index at 100,000 leases.
//!
//! `cargo bench -p lessor-search --bench search` builds an on-disk tantivy index of synthetic
//! leases (makes, models, categories and VINs from small tables, a fixed-seed generator),
//! reports indexing throughput, reopens the index as a restarted host would, then runs mixed
//! queries one at a time and prints p50/p95/p99/max latency per kind of query.
//!
//! `SEARCH_BENCH_LEASES` (default 100000) and `SEARCH_BENCH_QUERIES` (default 3000) lower
//! the counts for a quick run.

use std::time::{Duration, Instant};

use lessor_search::{LeaseDocument, SearchIndex, SearchQuery, TantivyIndex, WriterConfig};
use uuid::Uuid;

/// A make, its VIN manufacturer code, and its models with their category.
type Make = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const CATALOGUE: &[Make] = &[
    (
        "Toyota",
        "JTD",
        &[("Corolla", "compact"), ("Camry", "midsize"), ("RAV4", "suv"), ("Prius", "economy"), ("Hilux", "truck")],
    ),
    (
        "Volkswagen",
        "WVW",
        &[("Golf", "compact"), ("Passat", "midsize"), ("Tiguan", "suv"), ("ID.4", "electric"), ("Polo", "economy")],
    ),
    (
        "BMW",
        "WBA",
        &[("3 Series", "midsize"), ("X5", "suv"), ("i4", "electric"), ("M3", "sports"), ("7 Series", "luxury")],
    ),
    (
        "Mercedes-Benz",
        "WDD",
        &[("C-Class", "midsize"), ("E-Class", "midsize"), ("GLE", "suv"), ("S-Class", "luxury"), ("Sprinter", "van")],
    ),
    ("Audi", "WAU", &[("A4", "midsize"), ("A6", "luxury"), ("Q5", "suv"), ("e-tron GT", "electric")]),
    (
        "Ford",
        "1FA",
        &[("Focus", "compact"), ("Mustang", "sports"), ("F-150", "truck"), ("Transit", "van"), ("Explorer", "suv")],
    ),
    ("Tesla", "5YJ", &[("Model 3", "electric"), ("Model Y", "electric"), ("Model S", "luxury")]),
    ("Honda", "JHM", &[("Civic", "compact"), ("Accord", "midsize"), ("CR-V", "suv"), ("Jazz", "economy")]),
    ("Hyundai", "KMH", &[("i30", "compact"), ("Tucson", "suv"), ("Ioniq 5", "electric")]),
    ("Kia", "KNA", &[("Ceed", "compact"), ("Sportage", "suv"), ("EV6", "electric"), ("Picanto", "economy")]),
    ("Porsche", "WP0", &[("911", "sports"), ("Cayenne", "suv"), ("Taycan", "electric")]),
    ("Bentley", "SCB", &[("Continental GT", "luxury"), ("Bentayga", "luxury")]),
    ("Škoda", "TMB", &[("Octavia", "compact"), ("Superb", "midsize"), ("Kodiaq", "suv")]),
    ("Renault", "VF1", &[("Clio", "economy"), ("Megane", "compact"), ("Trafic", "van")]),
    ("Peugeot", "VF3", &[("208", "economy"), ("3008", "suv"), ("Expert", "van")]),
    ("Volvo", "YV1", &[("XC60", "suv"), ("XC90", "luxury"), ("V60", "midsize")]),
    ("Nissan", "SJN", &[("Leaf", "electric"), ("Qashqai", "suv"), ("Navara", "truck")]),
    ("Land Rover", "SAL", &[("Range Rover", "luxury"), ("Defender", "suv")]),
];
const STATUSES: [(&str, u64); 4] = [("active", 60), ("completed", 25), ("draft", 10), ("terminated", 5)];
const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";
const OWNERS: u64 = 5_000;
const START_MILLIS: i64 = 1_640_995_200_000; // 2022-01-01

/// SplitMix64: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn owner(n: u64) -> Uuid {
    Uuid::from_u64_pair(0x0_1ea5e, n)
}

fn lease(rng: &mut Rng, n: u64, count: u64) -> LeaseDocument {
    let (make, wmi, models) = rng.pick(CATALOGUE);
    let (model, category) = rng.pick(models);
    let mut vin = String::from(*wmi);
    vin.extend((0..14).map(|_| char::from(*rng.pick(VIN_CHARS))));
    let roll = rng.below(100);
    let mut cumulative = 0;
    let status = STATUSES.iter().find(|(_, weight)| {
        cumulative += weight;
        roll < cumulative
    });
    // Spread over three years, in creation order, with some jitter.
    let span = 3 * 365 * 86_400_000_i64;
    let created_at = START_MILLIS + span * n as i64 / count as i64 + rng.below(60_000) as i64;
    LeaseDocument {
        id: Uuid::from_u64_pair(0x1ea5e, n),
        owner_id: owner(rng.below(OWNERS)),
        status: status.map_or("active", |(name, _)| name).to_owned(),
        category: (*category).to_owned(),
        make: (*make).to_owned(),
        model: (*model).to_owned(),
        vin,
        year: 2018 + rng.below(8) as u16,
        start_date: format!("20{:02}-{:02}-01", 22 + rng.below(4), 1 + rng.below(12)),
        monthly_amount: 19_900 + 100 * rng.below(2_000) as i64,
        currency: "EUR".into(),
        created_at,
    }
}

/// Words people type: makes and model names of 3+ letters, lowercased.
fn vocabulary() -> Vec<String> {
    let mut words: Vec<String> = CATALOGUE
        .iter()
        .flat_map(|(make, _, models)| std::iter::once(*make).chain(models.iter().map(|(model, _)| *model)))
        .flat_map(|name| name.split([' ', '-', '.']).map(str::to_lowercase).collect::<Vec<_>>())
        .filter(|word| word.len() >= 3 && word.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    words.sort();
    words.dedup();
    words
}

/// One typo: a substitution, deletion or transposition inside the word.
fn with_typo(rng: &mut Rng, word: &str) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    let at = 1 + rng.below(chars.len() as u64 - 2) as usize;
    match rng.below(3) {
        0 => chars[at] = if chars[at] == 'x' { 'y' } else { 'x' },
        1 => {
            chars.remove(at);
        }
        _ => chars.swap(at, at + 1),
    }
    chars.into_iter().collect()
}

const KINDS: [&str; 8] = [
    "one word",
    "typo word",
    "prefix",
    "make + model",
    "one word + owner",
    "typo word + owner",
    "prefix + owner",
    "no text + owner",
];

fn query(rng: &mut Rng, kind: usize, words: &[String]) -> SearchQuery {
    let long: Vec<&String> = words.iter().filter(|word| word.len() >= 5).collect();
    let text = match kind % 4 {
        0 => rng.pick(words).clone(),
        1 => {
            let word = rng.pick(&long).as_str();
            with_typo(rng, word)
        }
        2 => {
            let word = rng.pick(&long).to_string();
            word[..3 + rng.below(2) as usize].to_owned()
        }
        _ => {
            let (make, _, models) = rng.pick(CATALOGUE);
            let (model, _) = rng.pick(models);
            format!("{make} {model}")
        }
    };
    let text = if kind == 7 { String::new() } else { text };
    let owner_id = (kind >= 4).then(|| owner(rng.below(OWNERS)));
    SearchQuery { text, owner_id, limit: 20, ..SearchQuery::default() }
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn build(dir: &std::path::Path, count: u64) {
    let index = TantivyIndex::open_with(dir, WriterConfig { threads: 2, memory_bytes: 256 << 20 }).expect("open");
    let mut rng = Rng(0x5EED);
    let batch = 10_000;
    let started = Instant::now();
    let mut n = 0;
    while n < count {
        let docs: Vec<LeaseDocument> = (n..(n + batch).min(count)).map(|i| lease(&mut rng, i, count)).collect();
        index.upsert(&docs).await.expect("upsert");
        n += docs.len() as u64;
    }
    let elapsed = started.elapsed();
    println!(
        "indexed {count} leases in {:.2} s: {:.0} leases/s (batches of {batch}, one commit each, 2 writer threads)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
}

/// The indexer's steady state on the host's default writer: small batches, one commit each.
async fn small_upserts(index: &TantivyIndex, count: u64) {
    let mut rng = Rng(0xBA7C4);
    let mut latencies = Vec::new();
    for round in 0..20 {
        let docs: Vec<LeaseDocument> = (0..100).map(|i| lease(&mut rng, (round * 100 + i) % count, count)).collect();
        let started = Instant::now();
        index.upsert(&docs).await.expect("upsert");
        latencies.push(started.elapsed());
    }
    latencies.sort();
    println!(
        "upsert of 100 existing leases (replace, commit with fsync, reload), 20 rounds: p50 {:.1} ms, max {:.1} ms",
        millis(percentile(&latencies, 50.0)),
        millis(percentile(&latencies, 100.0))
    );
}

async fn measure(index: &TantivyIndex, queries: u64) {
    let words = vocabulary();
    let mut rng = Rng(0xC0FFEE);
    for kind in 0..KINDS.len() {
        for _ in 0..25 {
            index.search(&query(&mut rng, kind, &words)).await.expect("warm-up");
        }
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
    let mut hits = vec![0u64; KINDS.len()];
    let mut slowest = Vec::with_capacity(queries as usize);
    for n in 0..queries {
        let kind = (n % KINDS.len() as u64) as usize;
        let query = query(&mut rng, kind, &words);
        let started = Instant::now();
        let page = index.search(&query).await.expect("search");
        let elapsed = started.elapsed();
        samples[kind].push(elapsed);
        hits[kind] += page.estimated_total;
        slowest.push((elapsed, KINDS[kind], query.text));
    }
    slowest.sort_by_key(|(elapsed, _, _)| std::cmp::Reverse(*elapsed));
    println!("\n{queries} queries, one at a time, limit 20 (latency in ms, spawn_blocking included):");
    println!("{:<20} {:>6} {:>8} {:>8} {:>8} {:>8} {:>11}", "kind", "count", "p50", "p95", "p99", "max", "mean hits");
    let mut all = Vec::new();
    for (kind, mut durations) in samples.into_iter().enumerate() {
        durations.sort();
        let count = durations.len().max(1);
        println!(
            "{:<20} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>11.1}",
            KINDS[kind],
            durations.len(),
            millis(percentile(&durations, 50.0)),
            millis(percentile(&durations, 95.0)),
            millis(percentile(&durations, 99.0)),
            millis(percentile(&durations, 100.0)),
            hits[kind] as f64 / count as f64
        );
        all.extend(durations);
    }
    all.sort();
    println!(
        "{:<20} {:>6} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
        "all",
        all.len(),
        millis(percentile(&all, 50.0)),
        millis(percentile(&all, 95.0)),
        millis(percentile(&all, 99.0)),
        millis(percentile(&all, 100.0))
    );
    println!("slowest:");
    for (elapsed, kind, text) in slowest.iter().take(8) {
        println!("  {:>8.3} ms  {kind:<20} {text:?}", millis(*elapsed));
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument has nothing to select here.
    let leases = env_count("SEARCH_BENCH_LEASES", 100_000).max(1);
    let queries = env_count("SEARCH_BENCH_QUERIES", 3_000).max(KINDS.len() as u64);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        build(dir.path(), leases).await;
        // Reopened as a restarted host would, with its default writer.
        let index = TantivyIndex::open(dir.path()).expect("reopen");
        small_upserts(&index, leases).await;
        measure(&index, queries).await;
    });
}
