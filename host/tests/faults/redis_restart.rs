//! Fault 3: Redis restarted without persistence during the stream (a `redis-server` of the
//! test's own): the stream, the consumer groups and the sessions are gone. The relay publishes
//! again what the stream lost, the groups are created again and apply each event once, clients
//! log in again and go on.

use std::time::{Duration, Instant};

use crate::support::audit::{audit, stream_entries};
use crate::support::consumers::Consumers;
use crate::support::load::{PaymentStream, attempts, first_success_after};
use crate::support::one_at_a_time;
use crate::support::servers::{Database, PrivateRedis, shared_postgres_url};
use crate::support::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_without_persistence_loses_and_doubles_no_event() {
    let _turn = one_at_a_time();
    let mut redis = PrivateRedis::start().await;
    let database = Database::create(&shared_postgres_url());
    let stack = Stack::start(&database.url, &redis.url(), 4).await.expect("start the host");
    let consumers = Consumers::start(&database.url, &redis.url(), &stack.namespace, &crate::kill9::GROUPS).await;
    let stream = PaymentStream::start(&stack.host.api(), &stack.payers);
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Act: Redis dies and comes back empty.
    let pool = sqlx::PgPool::connect(&database.url).await.expect("connect");
    let published_before: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT event_id FROM event_outbox WHERE published_at IS NOT NULL")
            .fetch_all(&pool)
            .await
            .expect("published events");
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.start_again().await;
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let outcomes = stream.finish(Duration::from_secs(10)).await;

    // Assert.
    let log = stack.host.log_tail(40);
    let errors: Vec<u16> =
        attempts(&outcomes).iter().filter(|a| a.status >= 500 && a.status != 503).map(|a| a.status).collect();
    assert!(errors.is_empty(), "answers other than 503 while Redis was down: {errors:?}\n{log}");
    let recovery = first_success_after(&outcomes, back).expect("payments succeed once Redis is back");
    let mut findings =
        audit("Redis restart, no persistence", &database.url, &redis.url(), &stack, &outcomes, &[], &consumers).await;
    findings.row.recovery_ms = recovery.as_millis() as u64;
    // The relay sent again what the empty stream lost (the groups applied those once, above).
    let stream = stream_entries(&redis.url(), &stack.namespace).await;
    let resent = published_before.iter().filter(|id| stream.contains_key(&id.to_string())).count();
    assert!(!published_before.is_empty(), "nothing was published before Redis died");
    assert_eq!(
        resent,
        published_before.len(),
        "events published before the restart missing from the new stream\n{log}"
    );
    println!("Redis back empty: {resent} events published before were sent again");
    consumers.stop().await;
    pool.close().await;
    findings.write_and_check(&log);
    drop(stack);
}
