//! The embedded bus on SQLite and PostgreSQL: the same guarantees as consumer groups on
//! Redis, from cursors in the database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lessor_events::{
    EventBus, EventHandler, InProcessBus, PAYMENTS, Relay, Round, StartFrom, Subscription, run_consumer,
};
use lessor_store::{Db, on_db};
use tokio::sync::Notify;

use crate::helpers::{Engine, Recorder, Stop, TestDb, drain, eventually, fast_relay_config, write_events};
use crate::on_each_engine;

fn subscription(group: &str, consumer: &str) -> Subscription {
    let mut sub = Subscription::new(PAYMENTS, group);
    sub.consumer = consumer.into();
    sub.block = Duration::from_millis(200);
    sub.claim_idle = Duration::from_millis(300);
    sub.batch = 10;
    sub
}

fn relay(db: &Db, bus: &InProcessBus) -> Relay {
    Relay::new(db.clone(), Arc::new(bus.sink()), fast_relay_config())
}

/// The group's last acknowledged sequence (0 before the group exists).
async fn cursor(db: &Db, group: &str) -> i64 {
    let sql = "SELECT last_seq FROM event_consumer_offsets WHERE group_name = $1 AND stream = $2";
    let seq: Option<i64> =
        on_db!(db, pool => sqlx::query_scalar(sql).bind(group).bind(PAYMENTS).fetch_optional(pool).await).unwrap();
    seq.unwrap_or(0)
}

async fn every_group_gets_every_event_once_in_order(engine: Engine) {
    // Arrange: the relay and two groups of two consumers run; writers wake the relay.
    let t = TestDb::new(engine).await;
    let bus = InProcessBus::new(t.db.clone());
    let stop = Stop::new();
    let wake = Arc::new(Notify::new());
    tokio::spawn(relay(&t.db, &bus).run(wake.clone(), |_| {}, stop.signal()));
    let groups = [("chain-worker", Recorder::new()), ("indexer", Recorder::new())];
    for (group, recorder) in &groups {
        for consumer in ["a", "b"] {
            let handler: Arc<dyn EventHandler> = Arc::new(recorder.clone());
            let sub = Subscription { claim_idle: Duration::from_secs(3), ..subscription(group, consumer) };
            tokio::spawn(run_consumer(bus.subscribe(sub), handler, |_| {}, stop.signal()));
        }
    }

    // Act
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.extend(write_events(&t.outbox(), 10).await);
        wake.notify_one();
    }
    for (group, recorder) in &groups {
        eventually(Duration::from_secs(20), group, || async { recorder.calls().len() == ids.len() }).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.stop();

    // Assert: every event once per group, in the order written.
    for (group, recorder) in &groups {
        assert_eq!(recorder.order(), ids, "{group}");
        assert!(recorder.calls().values().all(|n| *n == 1), "{group}");
        assert_eq!(cursor(&t.db, group).await, 80);
    }
}

async fn a_dead_consumer_is_taken_over_from_the_group_cursor(engine: Engine) {
    // Arrange
    let t = TestDb::new(engine).await;
    let bus = InProcessBus::new(t.db.clone());
    let ids: HashSet<_> = write_events(&t.outbox(), 10).await.into_iter().collect();
    drain(&relay(&t.db, &bus)).await;

    // Act 1: consumer A takes the group (its lease lasting 1.5 s) and dies mid-batch.
    let sub = |name| Subscription { claim_idle: Duration::from_millis(1_500), ..subscription("chain-worker", name) };
    let mut dying = bus.subscribe(sub("a"));
    let hung = Recorder::new().hanging();
    tokio::select! {
        _ = dying.poll(&hung) => panic!("the handler hangs"),
        () = eventually(Duration::from_secs(10), "A in its handler", || async { hung.total_calls() == 1 }) => {}
    }
    drop(dying);

    // Act 2: consumer B waits while A's lease lasts, then goes on from the cursor.
    let mut survivor = bus.subscribe(sub("b"));
    let recorder = Recorder::new();
    let first = survivor.poll(&recorder).await.unwrap();
    let mut total = Round::default();
    for _ in 0..50 {
        let round = survivor.poll(&recorder).await.unwrap();
        total.handled += round.handled;
        if total.handled == ids.len() {
            break;
        }
    }

    // Assert
    assert_eq!(first, Round::default(), "A still held the group");
    assert_eq!(total.handled, 10);
    assert_eq!(hung.total_calls(), 1);
    assert_eq!(recorder.calls().keys().copied().collect::<HashSet<_>>(), ids);
    assert!(recorder.calls().values().all(|n| *n == 1));
    assert_eq!(cursor(&t.db, "chain-worker").await, 10);
}

async fn redelivery_after_a_failure_has_one_effect(engine: Engine) {
    // Arrange: the handler commits its effects and the handled mark, then fails.
    let t = TestDb::new(engine).await;
    let bus = InProcessBus::new(t.db.clone());
    let ids: HashSet<_> = write_events(&t.outbox(), 20).await.into_iter().collect();
    drain(&relay(&t.db, &bus)).await;
    let recorder = Recorder::new().transactional(&t.db, "ledger").failing_first(1);
    let stop = Stop::new();
    let handler: Arc<dyn EventHandler> = Arc::new(recorder.clone());

    // Act
    tokio::spawn(run_consumer(bus.subscribe(subscription("ledger", "only")), handler, |_| {}, stop.signal()));
    eventually(Duration::from_secs(30), "cursor at the end", || async { cursor(&t.db, "ledger").await == 20 }).await;
    stop.stop();

    // Assert
    let effects = t.effects("ledger").await;
    assert_eq!(effects.keys().copied().collect::<HashSet<_>>(), ids);
    assert!(effects.values().all(|n| *n == 1), "{effects:?}");
    assert!(recorder.calls().values().all(|n| *n == 1), "the redelivered event was skipped by its mark");
}

async fn consumers_resume_from_the_group_cursor(engine: Engine) {
    // Arrange: five events handled by one consumer, which then stops.
    let t = TestDb::new(engine).await;
    let bus = InProcessBus::new(t.db.clone());
    let relay = relay(&t.db, &bus);
    write_events(&t.outbox(), 5).await;
    drain(&relay).await;
    let first = Recorder::new();
    let mut consumer = bus.subscribe(subscription("indexer", "first"));
    assert_eq!(consumer.poll(&first).await.unwrap().handled, 5);
    consumer.close().await;
    let mut latecomer = bus.subscribe(Subscription { start: StartFrom::Latest, ..subscription("late", "x") });
    assert_eq!(latecomer.poll(&Recorder::new()).await.unwrap(), Round::default());

    // Act: five more; a new consumer of the group (the lease was released) and the late group.
    let newer: HashSet<_> = write_events(&t.outbox(), 5).await.into_iter().collect();
    drain(&relay).await;
    let second = Recorder::new();
    let mut replacement = bus.subscribe(subscription("indexer", "second"));
    let round = replacement.poll(&second).await.unwrap();
    let late = Recorder::new();
    let late_round = latecomer.poll(&late).await.unwrap();

    // Assert
    assert_eq!(round.handled, 5);
    assert_eq!(second.calls().keys().copied().collect::<HashSet<_>>(), newer);
    assert_eq!(late_round.handled, 5);
    assert_eq!(late.calls().keys().copied().collect::<HashSet<_>>(), newer, "a Latest group starts at its creation");
}

on_each_engine!(
    every_group_gets_every_event_once_in_order,
    a_dead_consumer_is_taken_over_from_the_group_cursor,
    redelivery_after_a_failure_has_one_effect,
    consumers_resume_from_the_group_cursor,
);
