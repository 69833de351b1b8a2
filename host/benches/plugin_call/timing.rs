//! Timing one round: per-call latency of a sandboxed call, and of a native call (too short to
//! time alone, so timed in batches).

use std::time::{Duration, Instant};

/// One round of `samples` calls, each timed on its own.
pub struct Round {
    pub median: Duration,
    pub p99: Duration,
    pub per_second: f64,
}

impl Round {
    pub fn median_us(&self) -> f64 {
        self.median.as_secs_f64() * 1e6
    }
}

/// Times `samples` calls after a tenth as many unmeasured ones.
pub fn calls(samples: usize, mut call: impl FnMut()) -> Round {
    for _ in 0..samples / 10 {
        call();
    }
    let mut times = Vec::with_capacity(samples);
    let started = Instant::now();
    for _ in 0..samples {
        let t = Instant::now();
        call();
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort_unstable();
    Round {
        median: times[samples / 2],
        p99: times[samples * 99 / 100],
        per_second: samples as f64 / total.as_secs_f64(),
    }
}

/// Times `batches` batches of `batch` calls; each batch's time per call is one sample.
pub fn batched(batches: usize, batch: usize, mut call: impl FnMut()) -> Round {
    for _ in 0..batch {
        call();
    }
    let mut times = Vec::with_capacity(batches);
    let started = Instant::now();
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..batch {
            call();
        }
        times.push(t.elapsed() / batch as u32);
    }
    let total = started.elapsed();
    times.sort_unstable();
    let calls = (batches * batch) as f64;
    Round { median: times[batches / 2], p99: times[batches * 99 / 100], per_second: calls / total.as_secs_f64() }
}

pub fn report(name: &str, round: &Round) {
    println!(
        "  {name:<44} median {:>8.3} µs   p99 {:>8.3} µs   {:>10.0} calls/s on one thread",
        round.median.as_secs_f64() * 1e6,
        round.p99.as_secs_f64() * 1e6,
        round.per_second
    );
}
