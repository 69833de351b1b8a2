//! Fault 2: PostgreSQL restarted during the stream (a cluster of the test's own, stopped as by a
//! crash with `pg_ctl stop -m immediate`). While it is down the API answers 503 and `/ready`
//! names the database; the host recovers by itself, without a restart, within 5 s of the
//! database being back.

use std::time::{Duration, Instant};

use crate::support::audit::audit;
use crate::support::consumers::Consumers;
use crate::support::load::{PaymentStream, attempts, first_success_after};
use crate::support::one_at_a_time;
use crate::support::servers::{Database, PrivatePostgres, remove_namespace, shared_redis_url};
use crate::support::stack::Stack;

const DOWN_FOR: Duration = Duration::from_secs(4);
/// How long a request waits for a database connection before its 503
/// (`LESSOR_DATABASE_ACQUIRE_TIMEOUT_MS`; 5 s by default).
const ACQUIRE_TIMEOUT_MS: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_stream_answers_503_and_recovers_within_5_s() {
    let _turn = one_at_a_time();
    let postgres = PrivatePostgres::start();
    let database = Database::create(&postgres.url("postgres"));
    let redis = shared_redis_url();
    let acquire = ACQUIRE_TIMEOUT_MS.to_string();
    let env = [("LESSOR_DATABASE_ACQUIRE_TIMEOUT_MS", acquire.as_str())];
    let mut stack = Stack::start_with(&database.url, &redis, 4, &env).await.expect("start the host");
    let consumers = Consumers::start(&database.url, &redis, &stack.namespace, &crate::kill9::GROUPS).await;
    let stream = PaymentStream::start(&stack.host.api(), &stack.payers);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Act: the database goes away for DOWN_FOR, then comes back.
    postgres.stop("immediate");
    let down = Instant::now();
    let mut ready_while_down = Vec::new();
    tokio::time::sleep(Duration::from_millis(1100)).await; // `/ready` answers from a probe up to 1 s old
    while down.elapsed() < DOWN_FOR {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ready_while_down.push(stack.host.ready().await.expect("/ready answers while the database is down"));
    }
    // From the start command: PostgreSQL may accept connections before `pg_ctl -w` returns, so
    // this also counts its start-up (crash recovery) against the 5 s.
    let back = Instant::now();
    postgres.start_again();
    stack.host.wait_ready(Duration::from_secs(30)).await.expect("/ready is 200 again");
    let ready_after = back.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outcomes = stream.finish(Duration::from_secs(10)).await;

    // Assert: 503 (never 500) while down, /ready naming the database, recovery within 5 s.
    let log = stack.host.log_tail(40);
    let all = attempts(&outcomes);
    let errors: Vec<u16> = all.iter().filter(|a| a.status >= 500 && a.status != 503).map(|a| a.status).collect();
    assert!(errors.is_empty(), "answers other than 503 while PostgreSQL was down: {errors:?}\n{log}");
    let settled = down + Duration::from_millis(1000);
    let timeline: Vec<String> = all
        .iter()
        .filter(|a| a.at > down - Duration::from_millis(500) && a.at < back + Duration::from_secs(6))
        .map(|a| format!("{}:{}:{}", a.at.duration_since(down).as_millis(), a.status, a.took.as_millis()))
        .collect();
    let log = format!("answers (ms after the stop: status): {timeline:?}\n{log}");
    let while_down: Vec<u16> = all.iter().filter(|a| a.at > settled && a.at < back).map(|a| a.status).collect();
    assert!(!while_down.is_empty(), "no request was answered while PostgreSQL was down\n{log}");
    assert!(while_down.iter().all(|s| *s == 503), "while PostgreSQL was down: {while_down:?}\n{log}");
    // Answered within the connection wait (plus a margin for a loaded 2-core machine).
    let slow: Vec<u128> = all
        .iter()
        .filter(|a| a.status == 503 && a.took > Duration::from_millis(ACQUIRE_TIMEOUT_MS + 1500))
        .map(|a| a.took.as_millis())
        .collect();
    assert!(slow.is_empty(), "503s slower than the connection wait of {ACQUIRE_TIMEOUT_MS} ms: {slow:?}\n{log}");
    for (status, body) in &ready_while_down {
        assert_eq!(*status, 503, "/ready while the database is down: {body}");
        assert_eq!(body["checks"]["database"], "down", "/ready must name the database: {body}");
    }
    // A key whose request failed with the database must not stay locked (409 for its whole
    // 2-minute lock): every client got its answer once the database was back.
    let stuck: Vec<&str> =
        outcomes.iter().filter(|o| !matches!(o.status, 201 | 202 | 402)).map(|o| o.key.as_str()).collect();
    assert!(stuck.is_empty(), "keys still without an answer after PostgreSQL came back: {stuck:?}\n{log}");
    let first_payment = first_success_after(&outcomes, back).expect("payments succeed once PostgreSQL is back");
    let recovery = first_payment.max(ready_after);
    println!("PostgreSQL back: /ready 200 after {ready_after:?}, first payment 201 after {first_payment:?}");
    let mut findings = audit("PostgreSQL restart", &database.url, &redis, &stack, &outcomes, &[], &consumers).await;
    findings.row.recovery_ms = recovery.as_millis() as u64;
    consumers.stop().await;
    remove_namespace(&redis, &stack.namespace).await;
    let row = findings.write_and_check(&log);
    assert!(
        row.recovery_ms <= 5000,
        "the host took {} ms to recover after PostgreSQL came back\n{log}",
        row.recovery_ms
    );
    drop(stack);
}
