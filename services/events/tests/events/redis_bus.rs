//! Consumer groups on the shared Redis: every group gets every event once, redelivery has
//! one effect, and a dead consumer's entries are claimed by another.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use lessor_events::{EventBus, EventHandler, PAYMENTS, RedisStreamBus, Round, Subscription, run_consumer};
use lessor_store::redis;

use crate::helpers::{
    Engine, Recorder, Stop, TestDb, drain, eventually, pending_count, redis_admin, redis_relay, redis_sink, redis_url,
    write_events,
};
use crate::on_each_engine;

/// A consumer that claims entries idle for 300 ms (`claim_idle`) from others.
fn subscription(group: &str, consumer: &str) -> Subscription {
    let mut sub = Subscription::new(PAYMENTS, group);
    sub.consumer = consumer.into();
    sub.block = Duration::from_millis(200);
    sub.claim_idle = Duration::from_millis(300);
    sub.batch = 10;
    sub
}

/// One of several consumers of a group, given time enough for a slow handler on a busy machine.
fn patient(group: &str, consumer: &str) -> Subscription {
    Subscription { claim_idle: Duration::from_secs(3), ..subscription(group, consumer) }
}

async fn two_groups_each_get_every_event_once(engine: Engine) {
    // Arrange: 60 events in the stream; two groups of two consumers each.
    let t = TestDb::new(engine).await;
    let (sink, ns) = redis_sink(&redis_url());
    let ids: HashSet<_> = write_events(&t.outbox(), 60).await.into_iter().collect();
    drain(&redis_relay(&t.db, &sink)).await;
    let bus = RedisStreamBus::new(&redis_url(), &ns, t.db.clone()).unwrap();
    let stop = Stop::new();
    let groups = [("chain-worker", Recorder::new()), ("indexer", Recorder::new())];

    // Act
    for (group, recorder) in &groups {
        for consumer in ["a", "b"] {
            let consumer = bus.subscribe(patient(group, consumer));
            let handler: Arc<dyn EventHandler> = Arc::new(recorder.clone());
            tokio::spawn(run_consumer(consumer, handler, |_| {}, stop.signal()));
        }
    }
    for (group, recorder) in &groups {
        eventually(Duration::from_secs(20), group, || async { recorder.calls().len() == ids.len() }).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.stop();

    // Assert
    let mut admin = redis_admin(&redis_url()).await;
    for (group, recorder) in &groups {
        let calls = recorder.calls();
        assert_eq!(calls.keys().copied().collect::<HashSet<_>>(), ids, "{group}");
        assert!(calls.values().all(|n| *n == 1), "{group}: {calls:?}");
        assert_eq!(pending_count(&mut admin, &bus.key(PAYMENTS), group).await, 0, "{group}");
    }
    let _: () = redis::cmd("DEL").arg(bus.key(PAYMENTS)).query_async(&mut admin).await.unwrap();
}

async fn redelivery_has_exactly_one_effect_per_group(engine: Engine) {
    // Arrange: a handler that commits its effects (with the handled mark) and then fails, as
    // if its process died before acknowledging: every event is delivered again.
    let t = TestDb::new(engine).await;
    let (sink, ns) = redis_sink(&redis_url());
    let ids: HashSet<_> = write_events(&t.outbox(), 40).await.into_iter().collect();
    drain(&redis_relay(&t.db, &sink)).await;
    let bus = RedisStreamBus::new(&redis_url(), &ns, t.db.clone()).unwrap();
    let stop = Stop::new();
    let duplicates = Arc::new(AtomicUsize::new(0));
    let mut recorders = Vec::new();
    for group in ["ledger", "mailer"] {
        let recorder = Recorder::new().transactional(&t.db, group).failing_first(1);
        let seen = duplicates.clone();
        let observe = move |round: &Round| {
            seen.fetch_add(round.duplicates, Ordering::Relaxed);
        };
        let handler: Arc<dyn EventHandler> = Arc::new(recorder.clone());
        tokio::spawn(run_consumer(bus.subscribe(subscription(group, "only")), handler, observe, stop.signal()));
        recorders.push((group, recorder));
    }

    // Act
    let mut admin = redis_admin(&redis_url()).await;
    for (group, _) in &recorders {
        eventually(Duration::from_secs(30), group, || async {
            duplicates.load(Ordering::Relaxed) >= 80
                && pending_count(&mut redis_admin(&redis_url()).await, &bus.key(PAYMENTS), group).await == 0
        })
        .await;
    }
    stop.stop();

    // Assert: each event redelivered once per group, its effects written once.
    assert_eq!(duplicates.load(Ordering::Relaxed), 80);
    for (group, recorder) in &recorders {
        let effects = t.effects(group).await;
        assert_eq!(effects.keys().copied().collect::<HashSet<_>>(), ids, "{group}");
        assert!(effects.values().all(|n| *n == 1), "{group}: {effects:?}");
        assert!(recorder.calls().values().all(|n| *n == 1), "the mark spared the handler a second run");
    }
    let _: () = redis::cmd("DEL").arg(bus.key(PAYMENTS)).query_async(&mut admin).await.unwrap();
}

async fn a_dead_consumers_entries_are_claimed_by_another(engine: Engine) {
    // Arrange
    let t = TestDb::new(engine).await;
    let (sink, ns) = redis_sink(&redis_url());
    let ids: HashSet<_> = write_events(&t.outbox(), 25).await.into_iter().collect();
    drain(&redis_relay(&t.db, &sink)).await;
    let bus = RedisStreamBus::new(&redis_url(), &ns, t.db.clone()).unwrap();
    let key = bus.key(PAYMENTS);
    let mut admin = redis_admin(&redis_url()).await;

    // Act 1: consumer A reads a batch and dies mid-batch (dropped while its handler hangs).
    let mut dying = bus.subscribe(subscription("chain-worker", "a"));
    let hung = Recorder::new().hanging();
    tokio::select! {
        _ = dying.poll(&hung) => panic!("the handler hangs"),
        () = eventually(Duration::from_secs(10), "A in its handler", || async { hung.total_calls() == 1 }) => {}
    }
    drop(dying);
    assert_eq!(pending_count(&mut admin, &key, "chain-worker").await, 10, "A's batch stays pending");
    assert_eq!(hung.total_calls(), 1);

    // Act 2: consumer B goes on; A's entries are claimed once idle for `claim_idle`.
    let mut survivor = bus.subscribe(subscription("chain-worker", "b"));
    let recorder = Recorder::new();
    let mut total = Round::default();
    for _ in 0..50 {
        let round = survivor.poll(&recorder).await.unwrap();
        total.claimed += round.claimed;
        total.handled += round.handled;
        if total.handled == ids.len() {
            break;
        }
    }

    // Assert
    assert_eq!(total.handled, 25);
    assert_eq!(total.claimed, 10, "A's whole batch was claimed");
    assert_eq!(recorder.calls().keys().copied().collect::<HashSet<_>>(), ids);
    assert!(recorder.calls().values().all(|n| *n == 1));
    assert_eq!(pending_count(&mut admin, &key, "chain-worker").await, 0);
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
}

on_each_engine!(
    two_groups_each_get_every_event_once,
    redelivery_has_exactly_one_effect_per_group,
    a_dead_consumers_entries_are_claimed_by_another,
);
