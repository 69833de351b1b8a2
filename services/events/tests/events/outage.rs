//! The test the issue asks for: Redis stops while payments complete, then starts again (a
//! `redis-server` of the test's own, on its own port, without persistence): every event
//! arrives, none twice per consumer group.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lessor_events::{
    EventBus, EventHandler, PAYMENTS, RedisStreamBus, RedisStreamSink, Round, Subscription, run_consumer,
};
use lessor_store::redis;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::helpers::{
    Engine, Recorder, RedisServer, Stop, TestDb, eventually, pending_count, redis_admin, redis_relay, stream_entries,
    write_events,
};
use crate::on_each_engine;

const GROUPS: [&str; 2] = ["chain-worker", "indexer"];

async fn every_event_arrives_once_per_group_across_a_redis_outage(engine: Engine) {
    // Arrange: our own Redis; the relay and two groups of two consumers run throughout.
    let t = TestDb::new(engine).await;
    let mut server = RedisServer::start().await;
    let namespace = format!("lessor-{}", Uuid::new_v4().simple());
    let sink = RedisStreamSink::new(&server.url(), &namespace).unwrap();
    let bus = RedisStreamBus::new(&server.url(), &namespace, t.db.clone()).unwrap();
    let key = bus.key(PAYMENTS);
    let stop = Stop::new();
    let wake = Arc::new(Notify::new());
    tokio::spawn(redis_relay(&t.db, &sink).run(wake.clone(), |_| {}, stop.signal()));
    let recorders: Vec<(&str, Recorder)> = GROUPS.iter().map(|g| (*g, Recorder::new())).collect();
    let redelivered = Arc::new(AtomicUsize::new(0));
    for (group, recorder) in &recorders {
        for consumer in ["a", "b"] {
            let mut sub = Subscription::new(PAYMENTS, group);
            sub.consumer = consumer.into();
            sub.block = Duration::from_millis(200);
            sub.claim_idle = Duration::from_secs(3);
            let handler: Arc<dyn EventHandler> = Arc::new(recorder.clone());
            let redelivered = redelivered.clone();
            let observe = move |round: &Round| {
                redelivered.fetch_add(round.duplicates, Ordering::Relaxed);
            };
            tokio::spawn(run_consumer(bus.subscribe(sub), handler, observe, stop.signal()));
        }
    }
    let all_handled = |n: usize| {
        let recorders = recorders.clone();
        move || {
            let recorders = recorders.clone();
            async move { recorders.iter().all(|(_, r)| r.calls().len() == n) }
        }
    };

    // Act 1: payments complete while Redis is up.
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.extend(write_events(&t.outbox(), 5).await);
        wake.notify_one();
    }
    eventually(Duration::from_secs(20), "the first 20 events handled", all_handled(20)).await;
    let admin = redis_admin(&server.url()).await;
    for group in GROUPS {
        eventually(Duration::from_secs(10), "acknowledged", || {
            let mut admin = admin.clone();
            let key = key.clone();
            async move { pending_count(&mut admin, &key, group).await == 0 }
        })
        .await;
    }

    // Act 2: Redis dies; 30 more payments complete meanwhile.
    server.kill();
    for _ in 0..6 {
        ids.extend(write_events(&t.outbox(), 5).await);
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = t.outbox().stats(PAYMENTS).await.unwrap();
    assert_eq!(waiting.unpublished, 30, "the events wait in the outbox while Redis is down");

    // Act 3: Redis comes back on the same port, empty.
    server.restart().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !all_handled(50)().await {
        if tokio::time::Instant::now() > deadline {
            let handled: Vec<(&str, usize)> = recorders.iter().map(|(g, r)| (*g, r.calls().len())).collect();
            let stats = t.outbox().stats(PAYMENTS).await.unwrap();
            let mut admin = redis_admin(&server.url()).await;
            let groups: redis::Value =
                redis::cmd("XINFO").arg("GROUPS").arg(&key).query_async(&mut admin).await.unwrap();
            panic!("not every event handled after the restart: {handled:?}, outbox {stats:?}, groups {groups:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(Duration::from_secs(10), "all published", || async {
        t.outbox().stats(PAYMENTS).await.unwrap().unpublished == 0
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.stop();

    // Assert: every event arrived, none twice, in either group.
    let all: HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(all.len(), 50);
    for (group, recorder) in &recorders {
        let calls = recorder.calls();
        assert_eq!(calls.keys().copied().collect::<HashSet<_>>(), all, "{group}");
        let twice: Vec<_> = calls.iter().filter(|(_, n)| **n != 1).collect();
        assert!(twice.is_empty(), "{group} handled events more than once: {twice:?}");
    }
    // Redis came back empty: the relay sent the 20 events it had lost again, and each group
    // recognised them as handled.
    assert_eq!(redelivered.load(Ordering::Relaxed), 2 * 20);
    // The new server holds the 30 new entries (and the replayed 20 Redis had lost), each once.
    let mut admin = redis_admin(&server.url()).await;
    let entries = stream_entries(&mut admin, &key).await;
    let ids_in_stream: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids_in_stream, (1..=50).map(|s| format!("{s}-0")).collect::<Vec<_>>());
    for group in GROUPS {
        assert_eq!(pending_count(&mut admin, &key, group).await, 0, "{group}");
    }
}

on_each_engine!(every_event_arrives_once_per_group_across_a_redis_outage);
