//! Fault 4 as a process: the database restored from a backup taken earlier (`pg_dump`, more
//! payments, host killed, `pg_restore`, host restarted). Events published after the dump stay
//! in the stream; the restored database continues after the stream's top, so the new payments'
//! events reach every group and nothing is published twice. The payments made after the dump
//! are gone with the restore (that is what restoring an old backup means); their charges are not
//! counted as doubled.

use std::time::{Duration, Instant};

use crate::support::audit::{audit, outbox, wait_published};
use crate::support::consumers::Consumers;
use crate::support::load::{PaymentStream, first_success_after};
use crate::support::one_at_a_time;
use crate::support::servers::{Database, remove_namespace, shared_postgres_url, shared_redis_url};
use crate::support::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_restored_from_a_dump_keeps_publishing_once() {
    let _turn = one_at_a_time();
    let database = Database::create(&shared_postgres_url());
    let redis = shared_redis_url();
    let mut stack = Stack::start(&database.url, &redis, 4).await.expect("start the host");
    let consumers = Consumers::start(&database.url, &redis, &stack.namespace, &crate::kill9::GROUPS).await;
    let api = stack.host.api();

    // Arrange: payments, a dump, more payments (their events reach the stream), then the host dies.
    let stream = PaymentStream::start(&api, &stack.payers);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = stream.finish(Duration::from_secs(5)).await;
    // The groups' effects live in this database too: let them apply everything first, so the
    // dump holds them (effects of events after the dump are rolled back with the payments).
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    wait_published(&pool, Duration::from_secs(20)).await;
    let published: Vec<_> = outbox(&pool).await.into_iter().map(|e| e.event_id).collect();
    consumers.wait_for(&published, Duration::from_secs(20)).await;
    let dump = tempfile::NamedTempFile::new().expect("a dump file");
    database.dump(dump.path());
    let stream = PaymentStream::start(&api, &stack.payers);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rolled_back = stream.finish(Duration::from_secs(5)).await;
    wait_published(&pool, Duration::from_secs(20)).await;
    pool.close().await;
    stack.host.kill();

    // Act: restore the dump and start the host on it.
    database.restore(dump.path());
    let restarted = Instant::now();
    stack.restart().await.expect("the host starts on the restored database");
    let stream = PaymentStream::start(&api, &stack.payers);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = stream.finish(Duration::from_secs(5)).await;

    // Assert: the payments of before and after are all there, their events applied once each.
    let log = stack.host.log_tail(40);
    assert!(after.iter().any(|o| o.status == 201), "no payment succeeded after the restore\n{log}");
    let recovery = first_success_after(&after, restarted).expect("payments succeed after the restore");
    let outcomes: Vec<_> = before.into_iter().chain(after).collect();
    let mut findings =
        audit("database restored from a dump", &database.url, &redis, &stack, &outcomes, &rolled_back, &consumers)
            .await;
    findings.row.recovery_ms = recovery.as_millis() as u64;
    consumers.stop().await;
    remove_namespace(&redis, &stack.namespace).await;
    findings.write_and_check(&log);
    drop(stack);
}
