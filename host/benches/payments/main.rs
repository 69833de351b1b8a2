//! Payments end to end, measured from outside (issue 12, "One bench command", items 3, 4, 6 and
//! the end-to-end half of 7):
//!
//! - the release `host serve` runs as its own process (`tests/support/served.rs`), configured,
//!   migrated and given its plugin with the CLI as an operator would;
//! - the load is wrk, a process of its own, with `bench/wrk/payments.lua` (`POST
//!   /api/v1/payments`, a unique Idempotency-Key per request, several customers), `-t2 -c8
//!   --latency`; p50 and p99 are wrk's;
//! - the baseline is pgbench (`-c 8 -j 2 -n -f bench/pgbench/payment.sql`: the SQL the host runs
//!   for one payment, prepared as the host's statements are: `-M prepared`) on the same
//!   PostgreSQL server, round for round with the host's rounds.
//!
//! Configurations (`setups.rs`): (a) the Stripe plugin calling the local Stripe peer (running in
//! this process: this process's CPU is reported as the peer's) on PostgreSQL + Redis; (b) the
//! `echo` plugin on PostgreSQL + Redis; (c) `echo` on PostgreSQL alone; (d) `echo` on SQLite.
//! Also: event lag under (a) and (b) (`lag.rs`), the growth of (a) with 1–32 connections, and the
//! footprint (`footprint.rs`). Every figure is printed as a `BENCH` line (`../support/bench_line.rs`).
//!
//!     cargo bench -p host --bench payments
//!
//! Environment: `BENCH_SMOKE=1` (one short round each), `PAYMENTS_BENCH_ROUNDS` (3),
//! `PAYMENTS_BENCH_SECS` (10, per round), `PAYMENTS_BENCH_ONLY` (comma-separated setup names,
//! `growth`, `footprint`: run only those), `TEST_POSTGRES_URL`.

#[path = "../support/bench_line.rs"]
mod bench_line;
#[path = "../../tests/plugins/build.rs"]
#[allow(dead_code, reason = "shared with the integration tests")]
mod build;
mod cpu;
mod footprint;
mod lag;
#[path = "../../tests/peers/mod.rs"]
mod peers;
mod pgbench;
mod report;
mod rounds;
#[path = "../../tests/support/served.rs"]
mod served;
mod setups;
mod stack;
mod wrk;

use std::path::PathBuf;
use std::time::Duration;

use peers::stripe::StripePeer;
use rounds::Plan;
use served::Error;
use setups::{STRIPE_KEY, Setup};
use stack::Stack;

pub fn workspace_root() -> PathBuf {
    build::workspace_root()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Growth: wrk connections of the (a) configuration.
const GROWTH: [usize; 6] = [1, 2, 4, 8, 16, 32];
const CONCURRENCY: usize = 8;
const CUSTOMERS: usize = 8;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("payments bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let smoke = bench_line::smoke();
    let rounds = env_or("PAYMENTS_BENCH_ROUNDS", if smoke { 1 } else { 3 }).max(1);
    let secs = Duration::from_secs(env_or("PAYMENTS_BENCH_SECS", if smoke { 2 } else { 10 }).max(1));
    let main_plan = Plan {
        connections: CONCURRENCY,
        rounds,
        duration: secs,
        warmup: Duration::from_secs(if smoke { 1 } else { 3 }),
    };
    let growth_plan = |connections| Plan {
        connections,
        rounds,
        duration: if smoke { Duration::from_secs(1) } else { secs / 2 },
        warmup: Duration::ZERO,
    };
    let only: Option<Vec<String>> =
        std::env::var("PAYMENTS_BENCH_ONLY").ok().map(|v| v.split(',').map(|s| s.trim().to_owned()).collect());
    let wanted = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == name));

    let binary = env!("CARGO_BIN_EXE_host");
    let packages = build::packages_dir();
    println!(
        "payments: host {binary} as its own process; wrk -c{CONCURRENCY} ({} round(s) of {} s, interleaved with pgbench \
         -c {CONCURRENCY} -j 2 -M prepared -f {}); {CUSTOMERS} customers",
        rounds,
        secs.as_secs(),
        pgbench::script().display()
    );
    let peer = StripePeer::start(STRIPE_KEY).await;
    let mut peak_rss_a = None;
    let mut kept_baseline = None;
    for setup in Setup::ALL {
        let needed_as_baseline = setup == Setup::EchoPg && wanted(Setup::EchoSqlite.name());
        if !wanted(setup.name()) && !(setup == Setup::StripePgRedis && wanted("growth")) && !needed_as_baseline {
            continue;
        }
        let stack = Stack::start(setup, binary, packages, &peer, CUSTOMERS).await?;
        println!("{}: host pid {}, {}", setup.name(), stack.host.pid().unwrap_or(0), stack.host.base);
        let probe = match &stack.namespace {
            Some(ns) => Some(lag::LagProbe::start(stack::REDIS_URL, ns).await?),
            None => None,
        };
        let baseline = match (&stack.pgbench, &kept_baseline) {
            (Some(own), _) => own.clone(),
            (None, Some((_, kept))) => pgbench::Pgbench::clone(kept),
            (None, None) => return Err("no PostgreSQL database for the pgbench rounds".into()),
        };
        if wanted(setup.name()) {
            let figures = rounds::run(&stack, &baseline, probe.as_ref(), &main_plan, setup.name()).await?;
            let peak = stack.host.peak_rss_kib() as f64;
            stack.check_payments(figures.requests, figures.runs * CONCURRENCY as u64).await?;
            report::setup(setup, &figures, peak);
            if setup == Setup::StripePgRedis {
                peak_rss_a = Some(peak);
            }
        }
        if setup == Setup::StripePgRedis && wanted("growth") {
            for n in GROWTH {
                let figures = rounds::run(&stack, &baseline, None, &growth_plan(n), &format!("clients_{n}")).await?;
                report::growth(n, &figures);
            }
        }
        if let Some(p) = probe {
            p.stop().await?;
        }
        if needed_as_baseline {
            kept_baseline = stack.into_database();
        }
    }
    drop(kept_baseline);
    if wanted("footprint") {
        let f = footprint::measure(binary, packages, if smoke { 1 } else { rounds }).await?;
        report::footprint(&f, peak_rss_a);
    }
    Ok(())
}
