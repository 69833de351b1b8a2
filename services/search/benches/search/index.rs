//! The on-disk indexes the bench searches, kept between runs under `target/bench/` (building a
//! million leases takes minutes): reused when its marker says it holds the same leases from the
//! same generator and it answers with that many, else built again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lessor_search::{LeaseDocument, SearchIndex, SearchQuery, TantivyIndex, WriterConfig};

use crate::data::{GENERATOR, lease};

/// Where the index of `count` leases is kept: `target/bench/search-index-<count>`.
fn dir(count: u64) -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target/tmp sits in target/");
    target.join("bench").join(format!("search-index-{count}"))
}

/// The marker written after a complete build: what the index holds and how long it took.
fn marker(count: u64, build_secs: f64) -> String {
    format!("generator {GENERATOR}\nleases {count}\nbuild_secs {build_secs:.2}\n")
}

/// The build time the marker in `dir` records, if it describes `count` leases of this generator.
fn recorded_build_secs(dir: &Path, count: u64) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("bench-marker")).ok()?;
    let expected = marker(count, 0.0);
    let same = text.lines().take(2).eq(expected.lines().take(2));
    same.then(|| text.lines().nth(2)?.strip_prefix("build_secs ")?.parse().ok()).flatten()
}

/// The index of `count` leases, reused or built, reopened as a restarted host would (default
/// writer).
pub async fn open(count: u64) -> TantivyIndex {
    let dir = dir(count);
    if let Some(secs) = recorded_build_secs(&dir, count) {
        let index = TantivyIndex::open(&dir).expect("reopen");
        let total = index.search(&SearchQuery::default()).await.expect("count").estimated_total;
        if !index.recreated() && total == count {
            println!("{count} leases: reusing the index in {} (built in {secs:.1} s by an earlier run)", dir.display());
            return index;
        }
        println!("{count} leases: the index in {} holds {total}, building it again", dir.display());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("remove the old index");
    }
    std::fs::create_dir_all(&dir).expect("create the index directory");
    let secs = build(&dir, count).await;
    std::fs::write(dir.join("bench-marker"), marker(count, secs)).expect("write the marker");
    TantivyIndex::open(&dir).expect("reopen")
}

async fn build(dir: &Path, count: u64) -> f64 {
    let index = TantivyIndex::open_with(dir, WriterConfig { threads: 2, memory_bytes: 256 << 20 }).expect("open");
    let batch = 10_000;
    let started = Instant::now();
    let mut n = 0;
    while n < count {
        let docs: Vec<LeaseDocument> = (n..(n + batch).min(count)).map(|i| lease(i, count)).collect();
        index.upsert(&docs).await.expect("upsert");
        n += docs.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{count} leases: built the index in {elapsed:.1} s, {:.0} leases/s (batches of {batch}, one commit each, 2 writer threads)",
        count as f64 / elapsed
    );
    elapsed
}
