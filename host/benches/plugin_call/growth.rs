//! Figure 7 (its plugin half): the Stripe plugin's `validate` + `process` from 1 to 32 threads at
//! once, each call in its own fresh instance, as calls per second.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use host::plugins::LoadedPlugin;

use crate::bench_line::{Baseline, emit};
use crate::fixtures::payment;
use crate::floor::stripe_payment;

pub const THREADS: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// `growth.stripe_call.threads_<n>`: Stripe payments (validate + process) per second on `n`
/// threads, rounds interleaved over the thread counts; baseline: the one-thread figure.
pub fn stripe(stripe: &LoadedPlugin, rounds: usize, duration: Duration) {
    println!(
        "\n-- growth: Stripe validate + process on n threads, {:.1} s per figure, calls/s",
        duration.as_secs_f64()
    );
    let mut figures: Vec<Vec<f64>> = vec![Vec::new(); THREADS.len()];
    for round in 0..rounds {
        let line: Vec<String> = THREADS
            .iter()
            .zip(&mut figures)
            .map(|(&threads, figure)| {
                let rate = throughput(stripe, threads, duration);
                figure.push(rate);
                format!("{threads}: {rate:.0}")
            })
            .collect();
        println!("  round {}: {}", round + 1, line.join("   "));
    }
    let one = figures[0].clone();
    for (threads, figure) in THREADS.iter().zip(&figures) {
        let baseline = Baseline::Measured { name: "the same on 1 thread", rounds: &one };
        emit(&format!("growth.stripe_call.threads_{threads}"), "calls/s", figure, baseline);
    }
}

/// Payments per second on `threads` threads calling as fast as they can for `duration`.
fn throughput(stripe: &LoadedPlugin, threads: usize, duration: Duration) -> f64 {
    let stop = AtomicBool::new(false);
    let start = Barrier::new(threads + 1);
    let request = payment();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let mut calls = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        stripe_payment(stripe, &request);
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        let calls: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
        calls as f64 / started.elapsed().as_secs_f64()
    })
}
