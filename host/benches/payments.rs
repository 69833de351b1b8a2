//! Payments per second end to end on PostgreSQL, beside pgbench doing the same SQL transaction.
//!
//! `cargo bench -p host --bench payments` (env: `PAYMENTS_BENCH_CONCURRENCY`, default 8;
//! `PAYMENTS_BENCH_SECS` per phase, default 10; `PAYMENTS_BENCH_ROUNDS`, default 3;
//! `PAYMENTS_BENCH_POOL`, the host's database connections, default concurrency + 2;
//! `TEST_POSTGRES_URL`). Each round runs the host, then pgbench; the median round is reported.
//!
//! 1. The host: `POST /api/v1/payments` over a real socket with an `Idempotency-Key`, through
//!    auth, the idempotency store, the payments service, the `echo` provider plugin in its
//!    sandbox (a fresh instance per call), the payment row, its status change, the
//!    `payment.completed` outbox row, and the relay publishing it (in-process bus).
//! 2. pgbench with a custom script at the same concurrency against the same database and
//!    tables: insert a payment, update its status, insert an outbox row, in one transaction.

#[path = "../tests/plugins/build.rs"]
#[allow(dead_code)]
mod build;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use host::plugins::RuntimeChecker;
use host::{Application, Config};
use lessor_auth::Role;
use lessor_plugin_registry::Package;
use lessor_store::DatabaseTarget;
use lessor_store::testing::PgTestDb;
use secrecy::SecretString;
use serde_json::{Value, json};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const PASSWORD: &str = "correct horse battery staple";

async fn token(
    client: &reqwest::Client,
    base: &str,
    app_auth: &lessor_auth::AuthService,
    role: Role,
) -> (String, String) {
    let email = format!("bench-{role}-{}@example.com", uuid::Uuid::new_v4().simple());
    let user = app_auth.create_user(&email, SecretString::from(PASSWORD.to_owned()), role).await.unwrap();
    let body: Value = client
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (body["access_token"].as_str().unwrap().to_owned(), user.id.to_string())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let concurrency = env_or("PAYMENTS_BENCH_CONCURRENCY", 8) as usize;
    let seconds = env_or("PAYMENTS_BENCH_SECS", 10);
    let rounds = env_or("PAYMENTS_BENCH_ROUNDS", 3).max(1) as usize;
    let pg = PgTestDb::create("lessor_bench").await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::defaults();
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.database = DatabaseTarget::from_config(Some(&pg.url), dir.path()).unwrap();
    // Every request holds at most one connection at a time: one each, and two for the relay and
    // the other background tasks (pgbench opens one per client).
    let pool = env_or("PAYMENTS_BENCH_POOL", concurrency as u64 + 2) as u32;
    config.database_max_connections = pool;
    config.log_level = "warn".into();
    // One client address and token drive the whole load: the per-client rate limits would cap it.
    config.rate_limits = host::config::RateLimits { per_token: 0, per_address: 0, webhook: 0 };
    config.collection_interval = None;
    config.reconcile_interval = Duration::from_secs(3600);
    config.plugins.cache_dir = Some(std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-plugin-cache"));
    // A generous per-account limit: the bench logs in a few users only.
    let app = Application::build(config).await.expect("application");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let package = Package::load(&build::packages_dir().join("echo-v1")).unwrap();
    let checker = RuntimeChecker::new(state.providers.runtime().clone());
    state.providers.registry().install(&package, &[], &checker).await.unwrap();
    state.providers.refresh().await.unwrap();

    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build().unwrap();
    let (customer, owner_id) = token(&client, &base, &state.auth, Role::Customer).await;
    let (operator, _) = token(&client, &base, &state.auth, Role::Operator).await;
    let lease: Value = client
        .post(format!("{base}/api/v1/leases"))
        .bearer_auth(&customer)
        .json(&json!({
            "vehicle": {"vin": "WDD2220821A123456", "make": "Mercedes-Benz", "model": "S 580", "year": 2025, "category": "luxury"},
            "start_date": "2026-12-31", "term_months": 12, "monthly_amount": 129900, "deposit": 0, "currency": "EUR"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let lease_id = lease["id"].as_str().unwrap().to_owned();
    let activated = client
        .patch(format!("{base}/api/v1/leases/{lease_id}"))
        .bearer_auth(&operator)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), 200);

    let script = dir.path().join("payment.sql");
    std::fs::write(&script, PGBENCH_SCRIPT).unwrap();
    let host = HostLoad { client, base, customer, lease_id: lease_id.clone(), concurrency, seconds };
    let pgbench = Pgbench { script, concurrency, seconds, lease_id, owner_id, url: pg.url.clone() };

    // Rounds of the host then pgbench, so both see the tables at about the same size and the
    // machine in about the same state; the median round is the figure.
    let mut ratios = Vec::new();
    let (mut host_rates, mut pg_rates) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (rate, p50, p99, failed) = host.run(round).await;
        let tps = pgbench.run();
        println!(
            "round {round}: host {rate:.0} payments/s (p50 {:.2} ms, p99 {:.2} ms, {failed} failed); \
             pgbench {tps:.0} transactions/s; host / pgbench = {:.2}",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            rate / tps
        );
        host_rates.push(rate);
        pg_rates.push(tps);
        ratios.push(rate / tps);
    }
    println!(
        "median of {rounds} rounds at concurrency {concurrency} (host pool {pool} connections, {seconds} s each): \
         host {:.0} payments/s, pgbench {:.0} transactions/s, host / pgbench = {:.2}",
        median(&mut host_rates),
        median(&mut pg_rates),
        median(&mut ratios)
    );
    let _ = stop.send(());
    let _ = server.await;
    drop(pg);
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// pgbench's transaction: what the host commits for a payment, in plain SQL.
const PGBENCH_SCRIPT: &str = r#"\set amount random(100, 100000)
SELECT gen_random_uuid() AS pid, gen_random_uuid() AS eid \gset
BEGIN;
INSERT INTO payments (id, lease_id, owner_id, amount, currency, provider, payment_method, idempotency_key, status, created_at, updated_at)
    VALUES (':pid', ':lease', ':owner', :amount, 'EUR', 'echo', 'tok_bench', 'pgbench-:pid', 'pending', now(), now());
UPDATE payments SET status = 'succeeded', provider_tx_id = 'echo-:pid', process_attempts = 1, updated_at = now()
    WHERE id = ':pid' AND status = 'pending';
INSERT INTO event_outbox (stream, event_id, event_type, payload, created_at)
    VALUES ('payments', ':eid', 'payment.completed', '{"schema":"lessor.event/1","id":":eid","type":"payment.completed","data":{"payment_id":":pid"}}', 0);
COMMIT;
"#;

/// `concurrency` clients posting payments to the host, each with its own idempotency keys.
struct HostLoad {
    client: reqwest::Client,
    base: String,
    customer: String,
    lease_id: String,
    concurrency: usize,
    seconds: u64,
}

impl HostLoad {
    /// Payments per second, latency p50 and p99, failures; one second of warm-up first.
    async fn run(&self, round: usize) -> (f64, Duration, Duration, u64) {
        let running = Arc::new(AtomicBool::new(true));
        let failures = Arc::new(AtomicU64::new(0));
        let warmup_until = Instant::now() + Duration::from_secs(1);
        let mut workers = Vec::new();
        for w in 0..self.concurrency {
            let (client, base, customer, lease_id) =
                (self.client.clone(), self.base.clone(), self.customer.clone(), self.lease_id.clone());
            let (running, failures) = (running.clone(), failures.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while running.load(Ordering::Relaxed) {
                    n += 1;
                    let body = json!({"lease_id": lease_id, "amount": 1000 + n as i64, "currency": "EUR",
                                      "provider": "echo", "payment_method": "tok_bench"});
                    let started = Instant::now();
                    let response = client
                        .post(format!("{base}/api/v1/payments"))
                        .bearer_auth(&customer)
                        .header("idempotency-key", format!("bench-{round}-{w}-{n}"))
                        .json(&body)
                        .send()
                        .await;
                    let ok = match response {
                        Ok(r) if r.status() == 201 => r.json::<Value>().await.is_ok_and(|p| p["status"] == "succeeded"),
                        _ => false,
                    };
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    } else if started >= warmup_until {
                        latencies.push(started.elapsed());
                    }
                }
                latencies
            }));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let measured_from = Instant::now();
        tokio::time::sleep(Duration::from_secs(self.seconds)).await;
        running.store(false, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for w in workers {
            latencies.extend(w.await.unwrap());
        }
        let elapsed = measured_from.elapsed().as_secs_f64();
        latencies.sort();
        let rate = latencies.len() as f64 / elapsed;
        (rate, percentile(&latencies, 0.5), percentile(&latencies, 0.99), failures.load(Ordering::Relaxed))
    }
}

/// pgbench with [`PGBENCH_SCRIPT`] at the same concurrency against the same database.
struct Pgbench {
    script: std::path::PathBuf,
    concurrency: usize,
    seconds: u64,
    lease_id: String,
    owner_id: String,
    url: String,
}

impl Pgbench {
    fn run(&self) -> f64 {
        let output = std::process::Command::new("pgbench")
            .args(["-n", "-c", &self.concurrency.to_string(), "-j", "2", "-T", &self.seconds.to_string(), "-f"])
            .arg(&self.script)
            .args(["-D", &format!("lease={}", self.lease_id), "-D", &format!("owner={}", self.owner_id), &self.url])
            .output()
            .expect("pgbench (postgresql-client)");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "pgbench failed: {text}{}", String::from_utf8_lossy(&output.stderr));
        let failed = text.lines().find(|l| l.contains("number of failed")).unwrap_or("").trim().to_owned();
        assert!(failed.is_empty() || failed.contains(": 0 "), "pgbench transactions failed: {failed}");
        text.lines()
            .find_map(|l| {
                l.strip_prefix("tps = ").and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok())
            })
            .expect("pgbench prints tps")
    }
}
