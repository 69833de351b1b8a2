//! What a plugin call costs, on a fresh instance per call (the only way the host calls plugins):
//!
//! 1. `sandbox.fresh_call`: the `minimal` test plugin's `process` against the same function
//!    compiled into this bench and called directly (`floor.rs`);
//! 2. `stripe.call`: the real Stripe plugin's `validate` + `process`, its HTTP request to the
//!    Stripe API answered in-process by a canned PaymentIntent (the host's `HttpTransport` seam,
//!    `fixtures.rs`), against the minimal plugin's `validate` + `process`;
//! 3. `growth.stripe_call.threads_<n>`: (2) on 1, 2, 4, 8, 16 and 32 threads, calls per second
//!    (`growth.rs`).
//!
//! Each figure is the median over interleaved rounds (sandbox round, baseline round, …) of each
//! round's median call, printed as `BENCH` lines (`../support/bench_line.rs`).
//!
//!     cargo bench -p host --bench plugin_call
//!
//! builds the plugins with `cargo xtask plugins` first. Environment: `BENCH_SMOKE=1` (a few
//! hundred calls, two rounds), `PLUGIN_BENCH_ROUNDS`, `PLUGIN_BENCH_SAMPLES` (calls per round),
//! `PLUGIN_BENCH_GROWTH_SECS` (per thread count and round). `PLUGIN_BENCH_VARIANTS=1` also times
//! the calls on variants of the engine configuration (`variants.rs`); `PLUGIN_BENCH_PROFILE=minimal`
//! (or `well-behaved`, `stripe`) times only that call, for `perf record`, with
//! `PLUGIN_BENCH_KEEP_RESIDENT=bytes`. `PLUGIN_BENCH_PACKAGES=DIR` loads the plugins from another
//! `cargo xtask plugins --out DIR`, to compare two builds of the plugins on one host binary.

#[path = "../support/bench_line.rs"]
mod bench_line;
#[path = "../../tests/plugins/build.rs"]
#[allow(dead_code, reason = "shared with the integration tests")]
mod build;
mod fixtures;
mod floor;
mod growth;
mod timing;
mod variants;

use std::time::Duration;

use floor::Sizes;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let smoke = bench_line::smoke();
    let sizes = Sizes {
        rounds: env_or("PLUGIN_BENCH_ROUNDS", if smoke { 2 } else { 5 }).max(1),
        samples: env_or("PLUGIN_BENCH_SAMPLES", if smoke { 300 } else { 10_000 }).max(100),
    };
    let growth_secs: f64 = env_or("PLUGIN_BENCH_GROWTH_SECS", if smoke { 0.1 } else { 1.0 });
    if std::env::var_os("PLUGIN_BENCH_PACKAGES").is_none() {
        build::packages_dir();
    }
    if let Ok(which) = std::env::var("PLUGIN_BENCH_PROFILE") {
        variants::profile(&which, sizes.samples);
        return;
    }
    println!(
        "plugin_call: {} rounds of {} calls per figure, a fresh instance per call{}",
        sizes.rounds,
        sizes.samples,
        if smoke { " (smoke)" } else { "" }
    );
    variants::print_imports("minimal");
    variants::print_imports("stripe");

    let runtime = fixtures::runtime(|_| {});
    floor::sandbox_floor(&runtime, sizes);
    floor::stripe_call(&runtime, sizes);
    let stripe = fixtures::stripe(&runtime);
    growth::stripe(&stripe, if smoke { 1 } else { 3 }, Duration::from_secs_f64(growth_secs));

    if std::env::var_os("PLUGIN_BENCH_VARIANTS").is_some() {
        variants::run(sizes.samples);
    }
}
