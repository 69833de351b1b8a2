//! The `BENCH` lines of this bench (protocol: `../support/bench_line.rs`).

use crate::bench_line::{Baseline, emit};
use crate::footprint::Footprint;
use crate::rounds::Rounds;
use crate::setups::Setup;

const PGBENCH_TPS: &str = "pgbench tx/s, bench/pgbench/payment.sql, same clients, same server";
const PGBENCH_LATENCY: &str = "pgbench latency average, same clients";
const LAG_TARGET_MS: f64 = 20.0;

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

pub fn setup(setup: Setup, r: &Rounds, peak_rss_kib: f64) {
    let m = |what: &str| format!("e2e.{}.{what}", setup.name());
    emit(&m("payments_per_s"), "payments/s", &r.rate, Baseline::Measured { name: PGBENCH_TPS, rounds: &r.pg_tps });
    let latency = Baseline::Measured { name: PGBENCH_LATENCY, rounds: &r.pg_latency_ms };
    emit(&m("p50_ms"), "ms", &r.p50_ms, latency);
    let latency = Baseline::Measured { name: PGBENCH_LATENCY, rounds: &r.pg_latency_ms };
    emit(&m("p99_ms"), "ms", &r.p99_ms, latency);
    emit(&m("host_cpu"), "% of a core", &r.host_cpu, Baseline::None);
    if setup == Setup::StripePgRedis {
        // The Stripe peer runs in the bench process (with the event-lag reader, a small share).
        emit(&m("peer_cpu"), "% of a core", &r.bench_cpu, Baseline::None);
    }
    if setup.postgres() {
        let under_pgbench =
            Baseline::Measured { name: "PostgreSQL CPU under pgbench", rounds: &r.postgres_cpu_pgbench };
        emit(&m("postgres_cpu"), "% of a core", &r.postgres_cpu, under_pgbench);
    }
    emit(&m("rss_peak_mib"), "MiB", &[mib(peak_rss_kib)], Baseline::None);
    if setup.redis() {
        let events = |what: &str| format!("events.{}.{what}", setup.name());
        emit(&events("lag_p50_ms"), "ms", &r.lag_p50_ms, Baseline::None);
        let target = Baseline::Fixed { name: "target (issue 12)", value: LAG_TARGET_MS };
        emit(&events("lag_p99_ms"), "ms", &r.lag_p99_ms, target);
    }
}

pub fn growth(connections: usize, r: &Rounds) {
    let baseline = Baseline::Measured { name: PGBENCH_TPS, rounds: &r.pg_tps };
    emit(&format!("growth.e2e.clients_{connections}"), "payments/s", &r.rate, baseline);
}

pub fn footprint(f: &Footprint, peak_rss_a_kib: Option<f64>) {
    let idle: Vec<f64> = f.idle_rss.iter().copied().map(mib).collect();
    emit("footprint.idle_rss_mib", "MiB", &idle, Baseline::None);
    let idle_baseline = || Baseline::Measured { name: "idle RSS, nothing installed", rounds: &idle };
    if let Some(peak) = peak_rss_a_kib {
        emit("footprint.rss_peak_mib", "MiB", &[mib(peak)], idle_baseline());
    }
    let logins: Vec<f64> = f.after_logins_rss.iter().copied().map(mib).collect();
    emit("footprint.rss_after_logins_mib", "MiB", &logins, idle_baseline());
    let ten: Vec<f64> = f.ten_plugins_rss.iter().copied().map(mib).collect();
    emit("footprint.rss_10_plugins_mib", "MiB", &ten, idle_baseline());
    emit("footprint.startup_cold_ms", "ms", &f.cold_start, Baseline::None);
    let cold = Baseline::Measured { name: "cold start (empty plugin cache)", rounds: &f.cold_start };
    emit("footprint.startup_precompiled_ms", "ms", &f.precompiled_start, cold);
}
