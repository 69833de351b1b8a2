//! Where a call's time goes, by engine configuration (`PLUGIN_BENCH_VARIANTS=1`): the same calls
//! on the production configuration and on variants of it, human-readable only. Used to choose
//! the engine's settings (`host/src/plugins/engine.rs`).

use std::hint::black_box;

use host::plugins::{PluginRuntime, RuntimeConfig};

use crate::fixtures::{self, payment};
use crate::floor::stripe_payment;
use crate::timing::{calls, report};

/// The configurations compared: a name and what it changes from the production one.
fn configurations() -> Vec<(&'static str, Box<dyn Fn(&mut RuntimeConfig)>)> {
    vec![
        ("production configuration", Box::new(|_| {})),
        ("without fuel metering (epoch deadline only)", Box::new(|c| c.limits.fuel = None)),
        (
            "memory reset without PAGEMAP_SCAN, 64 KiB kept resident",
            Box::new(|c| {
                c.pagemap_scan = false;
                c.memory_keep_resident = Some(64 << 10);
            }),
        ),
        ("PAGEMAP_SCAN, 1 MiB kept resident", Box::new(|c| c.memory_keep_resident = Some(1 << 20))),
        ("tables: one page kept resident (memset, no scan)", Box::new(|c| c.table_keep_resident = 4096)),
        ("tables: 64 KiB kept resident (PAGEMAP_SCAN)", Box::new(|c| c.table_keep_resident = 64 << 10)),
        ("PAGEMAP_SCAN, 16 MiB kept resident", Box::new(|c| c.memory_keep_resident = Some(16 << 20))),
    ]
}

pub fn run(samples: usize) {
    for (title, tweak) in configurations() {
        suite(title, &fixtures::runtime(tweak), samples);
    }
}

fn suite(title: &str, runtime: &PluginRuntime, samples: usize) {
    let minimal = fixtures::minimal(runtime);
    let real = fixtures::well_behaved(runtime);
    let stripe = fixtures::stripe(runtime);
    let request = payment();
    assert!(real.process_blocking(&request).is_ok(), "the realistic call must succeed");

    println!("\n-- {title}");
    report("minimal: instantiate only", &calls(samples, || drop(black_box(minimal.instantiate_only_blocking()))));
    report("minimal info", &calls(samples, || drop(black_box(minimal.info_blocking()))));
    report("minimal process", &calls(samples, || drop(black_box(minimal.process_blocking(&request)))));
    report("well-behaved process (host HTTP)", &calls(samples, || drop(black_box(real.process_blocking(&request)))));
    report("stripe validate", &calls(samples, || drop(black_box(stripe.validate_blocking(&request)))));
    report("stripe validate + process", &calls(samples, || stripe_payment(&stripe, &request)));
}

/// One figure only, for `perf record`: `minimal` process, or `well-behaved` / `stripe`.
pub fn profile(which: &str, samples: usize) {
    let keep = std::env::var("PLUGIN_BENCH_KEEP_RESIDENT").ok().and_then(|s| s.parse().ok());
    let runtime = fixtures::runtime(|c| c.memory_keep_resident = keep);
    let request = payment();
    match which {
        "well-behaved" => {
            let real = fixtures::well_behaved(&runtime);
            report(
                "well-behaved process (host HTTP)",
                &calls(samples, || drop(black_box(real.process_blocking(&request)))),
            );
        }
        "stripe" => {
            let stripe = fixtures::stripe(&runtime);
            report("stripe validate + process", &calls(samples, || stripe_payment(&stripe, &request)));
        }
        _ => {
            let minimal = fixtures::minimal(&runtime);
            report("minimal process", &calls(samples, || drop(black_box(minimal.process_blocking(&request)))));
        }
    }
}

/// What a plugin's component imports: every import is linked into each call's fresh instance
/// again, so each one costs on every call.
pub fn print_imports(name: &str) {
    let engine = wasmtime::Engine::default();
    let component = wasmtime::component::Component::new(&engine, fixtures::package(name).component).expect(name);
    let ty = component.component_type();
    let imports: Vec<&str> = ty.imports(&engine).map(|(import, _)| import).collect();
    println!("{name} imports {}: {}", imports.len(), imports.join(", "));
}
