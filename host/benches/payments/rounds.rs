//! Interleaved rounds of one configuration: a wrk round against the host, then a pgbench round at
//! the same concurrency on the same PostgreSQL server, and again; CPU read from `/proc` around
//! each, event lag read by the probe during the host's rounds.

use std::time::Duration;

use crate::cpu;
use crate::lag::{self, LagProbe};
use crate::pgbench::Pgbench;
use crate::served::Error;
use crate::stack::Stack;
use crate::wrk::{self, Load};

/// The figures of one configuration, one entry per round.
#[derive(Default)]
pub struct Rounds {
    pub rate: Vec<f64>,
    pub p50_ms: Vec<f64>,
    pub p99_ms: Vec<f64>,
    pub pg_tps: Vec<f64>,
    pub pg_latency_ms: Vec<f64>,
    pub host_cpu: Vec<f64>,
    pub bench_cpu: Vec<f64>,
    pub postgres_cpu: Vec<f64>,
    pub postgres_cpu_pgbench: Vec<f64>,
    pub lag_p50_ms: Vec<f64>,
    pub lag_p99_ms: Vec<f64>,
    /// Requests wrk completed over all rounds, warm-up included.
    pub requests: u64,
    /// wrk runs (each may leave up to its connections' requests cut off when it stops).
    pub runs: u64,
}

/// How hard and how long.
pub struct Plan {
    pub connections: usize,
    pub rounds: usize,
    pub duration: Duration,
    pub warmup: Duration,
}

/// Runs `plan` against `stack`, with `baseline` as the pgbench side; `label` names the rounds
/// in the printed lines and makes the Idempotency-Keys unique.
pub async fn run(
    stack: &Stack,
    baseline: &Pgbench,
    probe: Option<&LagProbe>,
    plan: &Plan,
    label: &str,
) -> Result<Rounds, Error> {
    let (_, provider) = stack.setup.package();
    let pid = stack.host.pid();
    let mut out = Rounds::default();
    if !plan.warmup.is_zero() {
        let run = format!("{label}-warmup-{}", uuid::Uuid::new_v4().simple());
        let warmup = wrk::run(&stack_load(stack, provider, plan.connections, plan.warmup, &run)).await;
        out.requests += match warmup {
            Ok(w) => w.requests,
            Err(e) => return Err(format!("{e}; {}", stack.probe_payment().await).into()),
        };
        out.runs += 1;
    }
    for round in 1..=plan.rounds {
        if let Some(p) = probe {
            p.take().await;
            p.record(true);
        }
        let run = format!("{label}-{round}-{}", uuid::Uuid::new_v4().simple());
        let meter = cpu::Meter::start(pid);
        let w = match wrk::run(&stack_load(stack, provider, plan.connections, plan.duration, &run)).await {
            Ok(w) => w,
            Err(e) => return Err(format!("{e}; {}", stack.probe_payment().await).into()),
        };
        let used = meter.stop();
        out.requests += w.requests;
        out.runs += 1;
        if let Some(p) = probe {
            tokio::time::sleep(lag::DRAIN).await;
            p.record(false);
            let lags = p.take().await;
            out.lag_p50_ms.push(lag::quantile(&lags, 0.5));
            out.lag_p99_ms.push(lag::quantile(&lags, 0.99));
        }
        let meter = cpu::Meter::start(pid);
        let pg = baseline.run(plan.connections, plan.duration).await?;
        let pg_used = meter.stop();
        println!(
            "  {label} round {round}: host {:.0} payments/s (p50 {:.2} ms, p99 {:.2} ms; CPU host {:.0} %, bench {:.0} %, \
             PostgreSQL {:.0} %) | pgbench {:.0} tx/s ({:.2} ms average; PostgreSQL {:.0} %) | ratio {:.2}{}",
            w.per_sec,
            w.p50_ms,
            w.p99_ms,
            used.host,
            used.bench,
            used.postgres,
            pg.tps,
            pg.latency_ms,
            pg_used.postgres,
            w.per_sec / pg.tps,
            match out.lag_p99_ms.last() {
                Some(p99) if probe.is_some() =>
                    format!(" | event lag p50 {:.1} ms, p99 {p99:.1} ms", out.lag_p50_ms[round - 1]),
                _ => String::new(),
            }
        );
        out.rate.push(w.per_sec);
        out.p50_ms.push(w.p50_ms);
        out.p99_ms.push(w.p99_ms);
        out.pg_tps.push(pg.tps);
        out.pg_latency_ms.push(pg.latency_ms);
        out.host_cpu.push(used.host);
        out.bench_cpu.push(used.bench);
        out.postgres_cpu.push(used.postgres);
        out.postgres_cpu_pgbench.push(pg_used.postgres);
    }
    Ok(out)
}

fn stack_load<'a>(
    stack: &'a Stack,
    provider: &'a str,
    connections: usize,
    duration: Duration,
    run: &'a str,
) -> Load<'a> {
    Load {
        base: &stack.host.base,
        connections,
        duration,
        customers_file: &stack.customers_file,
        provider,
        payment_method: stack.setup.payment_method(),
        run,
    }
}
