//! Per-call cost of a plugin on a fresh instance (the way the host always calls plugins).
//!
//! `cargo bench -p host --bench plugin_call` builds the test plugins with `cargo xtask plugins`,
//! then times single-threaded calls: `minimal` (`info` and `process`, nothing else) and
//! `well-behaved` `process` (config, a secret, a log line, a form-encoded host HTTP request and
//! its response) against an in-process HTTP transport, so the figure is the sandbox's cost and
//! not a network's. Prints median, p99 and calls per second on one core, for the production
//! configuration and two variants that show where time goes (fuel metering; memory reset without
//! PAGEMAP_SCAN).
//!
//! Environment: `PLUGIN_BENCH_SAMPLES=n` sets the calls per figure. `PLUGIN_BENCH_QUICK=1` runs
//! only the two `process` figures of the production configuration. `PLUGIN_BENCH_PROFILE=1` runs
//! only `minimal process` (`=well-behaved`: only that plugin's `process`), for `perf record`, with
//! `PLUGIN_BENCH_KEEP_RESIDENT=bytes`. `PLUGIN_BENCH_PACKAGES=DIR` loads the plugins from another
//! `cargo xtask plugins --out DIR` instead of building them, to compare two builds of the plugins
//! (or two SDKs) on one host binary.

#[path = "../tests/plugins/build.rs"]
#[allow(dead_code, reason = "shared with the integration tests")]
mod build;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use host::plugins::http::{HttpFailure, HttpResponse, HttpTransport, OutboundRequest};
use host::plugins::types::{Money, PaymentRequest};
use host::plugins::{Grants, LoadedPlugin, PluginRuntime, RuntimeConfig};
use secrecy::SecretString;

/// Answers every request at once, like a provider API with zero latency.
struct InstantProvider;

impl HttpTransport for InstantProvider {
    fn send(&self, request: OutboundRequest, _: Duration, _: usize) -> Result<HttpResponse, HttpFailure> {
        black_box(&request);
        Ok(HttpResponse {
            status: 200,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: b"ch_3MtwBwLkdIwHu7ix28a3tqPa".to_vec(),
        })
    }
}

fn payment() -> PaymentRequest {
    PaymentRequest {
        payment_id: "0b9f3c1e-8d2a-4f6b-9c3d-2e1f0a9b8c7d".into(),
        lease_id: "lease-4711".into(),
        installment_id: Some("inst-12".into()),
        amount: Money { amount: 48_900, currency: "EUR".into() },
        payment_method: "tok_visa_4242".into(),
        idempotency_key: "idem-0b9f3c1e".into(),
        metadata: vec![("contract".into(), "C-2024-0042".into()), ("channel".into(), "portal".into())],
    }
}

struct Stats {
    median: Duration,
    p99: Duration,
    per_second: f64,
}

fn measure(samples: usize, mut call: impl FnMut()) -> Stats {
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
    Stats {
        median: times[samples / 2],
        p99: times[samples * 99 / 100],
        per_second: samples as f64 / total.as_secs_f64(),
    }
}

fn report(name: &str, stats: &Stats) {
    println!(
        "{name:<34} median {:>7.1} µs   p99 {:>7.1} µs   {:>8.0} calls/s on one core",
        stats.median.as_secs_f64() * 1e6,
        stats.p99.as_secs_f64() * 1e6,
        stats.per_second
    );
}

fn load(
    runtime: &PluginRuntime,
    name: &str,
    grants: Grants,
    config: &[(&str, &str)],
    secrets: &[(&str, &str)],
) -> LoadedPlugin {
    let p = package(name);
    let secrets: BTreeMap<String, SecretString> =
        secrets.iter().map(|(k, v)| ((*k).to_owned(), SecretString::from(*v))).collect();
    runtime.load(&p.manifest, &p.component, grants, build::map(config), secrets).expect(name)
}

fn package(name: &str) -> build::Package {
    match std::env::var_os("PLUGIN_BENCH_PACKAGES") {
        Some(dir) => package_in(std::path::Path::new(&dir), name),
        None => build::package(name),
    }
}

/// A package from another `cargo xtask plugins --out DIR` (to compare two builds of the plugins).
fn package_in(dir: &std::path::Path, name: &str) -> build::Package {
    let dir = dir.join(name);
    let text = std::fs::read_to_string(dir.join("plugin.toml")).expect("plugin.toml");
    let manifest = host::plugins::Manifest::from_toml(&text).expect("plugin.toml");
    let component = std::fs::read(dir.join(manifest.component())).expect("component");
    build::Package { manifest, manifest_text: text, component }
}

fn runtime(tweak: impl FnOnce(&mut RuntimeConfig)) -> PluginRuntime {
    let mut config = RuntimeConfig {
        cache_dir: Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("plugin-bench-cache")),
        ..RuntimeConfig::default()
    };
    tweak(&mut config);
    PluginRuntime::with_transport(config, Arc::new(InstantProvider)).expect("runtime")
}

/// Prints what a plugin's component imports: every import is linked into each call's fresh
/// instance again, so each one costs on every call.
fn print_imports(name: &str) {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, package(name).component).expect(name);
    let ty = component.component_type();
    let imports: Vec<&str> = ty.imports(&engine).map(|(import, _)| import).collect();
    println!("{name} imports {}: {}", imports.len(), imports.join(", "));
}

/// well-behaved requests http://127.0.0.1:*; the in-process transport answers for that origin.
fn load_well_behaved(runtime: &PluginRuntime) -> LoadedPlugin {
    load(
        runtime,
        "well-behaved",
        Grants::new(["http://127.0.0.1:9".parse::<host::plugins::Origin>().expect("origin")]),
        &[("endpoint", "http://127.0.0.1:9")],
        &[("api_key", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"), ("webhook_secret", "whsec")],
    )
}

/// Runs the standard set of calls on one runtime configuration.
fn suite(title: &str, runtime: &PluginRuntime, samples: usize, full: bool) {
    let minimal = load(runtime, "minimal", Grants::none(), &[], &[]);
    let real = load_well_behaved(runtime);
    let request = payment();
    assert!(real.process_blocking(&request).is_ok(), "the realistic call must succeed");

    println!("-- {title}");
    if full {
        report("minimal: instantiate only", &measure(samples, || drop(black_box(minimal.instantiate_only_blocking()))));
        report("minimal info", &measure(samples, || drop(black_box(minimal.info_blocking()))));
    }
    report("minimal process", &measure(samples, || drop(black_box(minimal.process_blocking(&request)))));
    if full {
        report("well-behaved validate", &measure(samples, || drop(black_box(real.validate_blocking(&request)))));
    }
    report("well-behaved process (host HTTP)", &measure(samples, || drop(black_box(real.process_blocking(&request)))));
}

fn main() {
    let samples: usize = std::env::var("PLUGIN_BENCH_SAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    if std::env::var_os("PLUGIN_BENCH_PACKAGES").is_none() {
        build::packages_dir();
    }
    println!("plugin_call: {samples} calls each, a fresh instance per call, one thread");
    if let Some(which) = std::env::var_os("PLUGIN_BENCH_PROFILE") {
        // One call only, for `perf record`: `minimal process`, or `well-behaved process` when set
        // to `well-behaved`.
        let keep = std::env::var("PLUGIN_BENCH_KEEP_RESIDENT").ok().and_then(|s| s.parse().ok());
        let runtime = runtime(|c| c.memory_keep_resident = keep);
        let request = payment();
        if which == "well-behaved" {
            let real = load_well_behaved(&runtime);
            report(
                "well-behaved process (host HTTP)",
                &measure(samples, || drop(black_box(real.process_blocking(&request)))),
            );
        } else {
            let minimal = load(&runtime, "minimal", Grants::none(), &[], &[]);
            report("minimal process", &measure(samples, || drop(black_box(minimal.process_blocking(&request)))));
        }
        return;
    }
    print_imports("minimal");
    print_imports("well-behaved");
    if std::env::var_os("PLUGIN_BENCH_QUICK").is_some() {
        suite("production configuration", &runtime(|_| {}), samples, false);
        return;
    }
    suite("production configuration", &runtime(|_| {}), samples, true);
    suite("without fuel metering (epoch deadline only)", &runtime(|c| c.limits.fuel = None), samples, false);
    suite(
        "memory reset without PAGEMAP_SCAN, 64 KiB kept resident",
        &runtime(|c| {
            c.pagemap_scan = false;
            c.memory_keep_resident = Some(64 << 10);
        }),
        samples,
        false,
    );
}
