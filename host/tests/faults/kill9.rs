//! Fault 1: `kill -9` of the host in the middle of the stream, then a restart.

use std::time::{Duration, Instant};

use crate::support::audit::audit;
use crate::support::consumers::Consumers;
use crate::support::load::{PaymentStream, first_success_after};
use crate::support::one_at_a_time;
use crate::support::servers::{Database, remove_namespace, shared_postgres_url, shared_redis_url};
use crate::support::stack::Stack;

pub const GROUPS: [&str; 2] = ["faults-ledger", "faults-mailer"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_loses_and_doubles_nothing() {
    let _turn = one_at_a_time();
    let database = Database::create(&shared_postgres_url());
    let redis = shared_redis_url();
    let mut stack = Stack::start(&database.url, &redis, 4).await.expect("start the host");
    let consumers = Consumers::start(&database.url, &redis, &stack.namespace, &GROUPS).await;

    // Arrange: payments flowing.
    let stream = PaymentStream::start(&stack.host.api(), &stack.payers);
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Act: SIGKILL mid-stream; the clients meet a dead port, then the restarted host.
    stack.host.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let restarted = Instant::now();
    stack.restart().await.expect("the host restarts on the same database");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let outcomes = stream.finish(Duration::from_secs(5)).await;

    // Assert.
    let cut = outcomes.iter().flat_map(|o| &o.attempts).filter(|a| a.status == 0).count();
    assert!(cut > 0, "the kill did not hit the stream (no request went unanswered)");
    // Requests cut off by the kill hold their keys for the lock (2 minutes): 409 until then,
    // their payments pending for reconciliation (the audit checks them).
    let unanswered = outcomes.iter().filter(|o| !matches!(o.status, 201 | 202 | 402)).count();
    println!("kill -9: {cut} requests cut off, {unanswered} keys left in flight (409, locked for 2 minutes)");
    let recovery = first_success_after(&outcomes, restarted).expect("payments succeed after the restart");
    let mut findings = audit("kill -9 of the host", &database.url, &redis, &stack, &outcomes, &[], &consumers).await;
    findings.row.recovery_ms = recovery.as_millis() as u64;
    let log = stack.host.log_tail(40);
    consumers.stop().await;
    remove_namespace(&redis, &stack.namespace).await;
    findings.write_and_check(&log);
}
