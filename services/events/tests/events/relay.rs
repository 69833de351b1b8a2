//! The relay on both engines against the shared Redis: order, explicit ids, crash between
//! XADD and the database commit, concurrent relays, and a Redis that lost its data.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lessor_events::{Event, EventSink, PAYMENTS, Relay};
use lessor_store::redis;
use tokio::sync::Notify;

use crate::helpers::{
    Engine, Stop, TestDb, drain, eventually, fast_relay_config, redis_admin, redis_relay, redis_sink, redis_url,
    stream_entries, write_events,
};
use crate::on_each_engine;

/// Asserts the stream holds exactly `ids`, in order, as entries `1-0`, `2-0`, …
fn assert_stream_is(entries: &[(String, String)], ids: &[uuid::Uuid]) {
    let got: Vec<(String, uuid::Uuid)> =
        entries.iter().map(|(id, json)| (id.clone(), Event::from_json(json).unwrap().id)).collect();
    let want: Vec<(String, uuid::Uuid)> = ids.iter().enumerate().map(|(i, id)| (format!("{}-0", i + 1), *id)).collect();
    assert_eq!(got, want);
}

async fn publishes_in_order_with_the_sequence_as_entry_id(engine: Engine) {
    // Arrange
    let t = TestDb::new(engine).await;
    let (sink, _ns) = redis_sink(&redis_url());
    let key = sink.key(PAYMENTS);
    let ids = write_events(&t.outbox(), 120).await;
    let relay = redis_relay(&t.db, &sink);

    // Act
    drain(&relay).await;
    drain(&relay).await;

    // Assert
    let mut admin = redis_admin(&redis_url()).await;
    assert_stream_is(&stream_entries(&mut admin, &key).await, &ids);
    let rows = t.outbox().entries(PAYMENTS).await.unwrap();
    assert!(rows.iter().enumerate().all(|(i, r)| r.seq == Some(i as i64 + 1) && r.published_at.is_some()));
    let stats = t.outbox().stats(PAYMENTS).await.unwrap();
    assert_eq!((stats.unpublished, stats.last_seq), (0, 120));
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
}

async fn a_resend_after_a_crash_between_xadd_and_commit_is_refused(engine: Engine) {
    // Arrange: a stream trimmed to ~10 entries, so most re-sent ids are no longer in it.
    let t = TestDb::new(engine).await;
    let (sink, _ns) = redis_sink(&redis_url());
    let key = sink.key(PAYMENTS);
    let sink = sink.with_maxlen(10);
    let mut config = fast_relay_config();
    config.lease = Duration::from_millis(200);
    let crashed = Relay::new(t.db.clone(), Arc::new(sink.clone()), config.clone());
    let ids = write_events(&t.outbox(), 250).await;

    // Act 1: the steps of a pass by hand, stopping after XADD, before the database records it.
    assert!(crashed.acquire_lease().await.unwrap());
    while crashed.assign_sequences().await.unwrap() > 0 {}
    let batch = crashed.unpublished(1_000).await.unwrap();
    assert_eq!(batch.len(), 250);
    let sent = sink.publish(PAYMENTS, &batch).await;
    assert!(sent.error.is_none(), "{:?}", sent.error);
    assert_eq!(sent.appended, 250);
    drop(crashed);
    let mut admin = redis_admin(&redis_url()).await;
    let len_after_crash: i64 = redis::cmd("XLEN").arg(&key).query_async(&mut admin).await.unwrap();
    assert!(len_after_crash < 250, "trimmed to about 10, got {len_after_crash}");

    // Act 2: another relay takes over once the crashed one's lease expired.
    config.holder = "relay-after-crash".into();
    let relay = Relay::new(t.db.clone(), Arc::new(sink.clone()), config);
    tokio::time::sleep(Duration::from_millis(250)).await;
    let (mut appended, mut already) = (0, 0);
    loop {
        let pass = relay.run_once().await.unwrap();
        assert!(pass.leader);
        already += pass.already_there;
        appended += pass.published - pass.already_there;
        if pass.lag.is_none() {
            break;
        }
    }

    // Assert: every re-sent entry was refused as already there, nothing was appended twice.
    assert_eq!((appended, already), (0, 250));
    let len: i64 = redis::cmd("XLEN").arg(&key).query_async(&mut admin).await.unwrap();
    assert_eq!(len, len_after_crash);
    assert!(t.outbox().entries(PAYMENTS).await.unwrap().iter().all(|r| r.published_at.is_some()));
    let entries = stream_entries(&mut admin, &key).await;
    let tail = &ids[250 - entries.len()..];
    let got: Vec<uuid::Uuid> = entries.iter().map(|(_, json)| Event::from_json(json).unwrap().id).collect();
    assert_eq!(got, tail, "the stream's tail is the last events, once each");
    assert_eq!(entries.last().unwrap().0, "250-0");

    // And the next event goes on from there.
    let next = write_events(&t.outbox(), 1).await;
    drain(&relay).await;
    let entries = stream_entries(&mut admin, &key).await;
    assert_eq!(entries.last().unwrap().0, "251-0");
    assert_eq!(Event::from_json(&entries.last().unwrap().1).unwrap().id, next[0]);
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
}

async fn two_relays_at_once_publish_every_event_once(engine: Engine) {
    // Arrange: two relays whose lease is shorter than a pass, so both work at times.
    let t = TestDb::new(engine).await;
    let (sink, _ns) = redis_sink(&redis_url());
    let key = sink.key(PAYMENTS);
    let stop = Stop::new();
    let wake = Arc::new(Notify::new());
    for holder in ["relay-a", "relay-b"] {
        let mut config = fast_relay_config();
        config.holder = holder.into();
        config.batch = 7;
        config.lease = Duration::from_millis(1);
        config.poll = Duration::from_millis(5);
        let relay = Relay::new(t.db.clone(), Arc::new(sink.clone()), config);
        tokio::spawn(relay.run(wake.clone(), |_| {}, stop.signal()));
    }

    // Act: events keep arriving while both relays run.
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.extend(write_events(&t.outbox(), 10).await);
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually(Duration::from_secs(30), "everything published", || async {
        t.outbox().stats(PAYMENTS).await.unwrap().unpublished == 0
    })
    .await;
    stop.stop();

    // Assert: ids 1..=200, each event once.
    let mut admin = redis_admin(&redis_url()).await;
    let entries = stream_entries(&mut admin, &key).await;
    assert_eq!(entries.len(), 200);
    let entry_ids: Vec<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    let want: Vec<String> = (1..=200).map(|s| format!("{s}-0")).collect();
    assert_eq!(entry_ids, want);
    let events: HashSet<uuid::Uuid> = entries.iter().map(|(_, json)| Event::from_json(json).unwrap().id).collect();
    assert_eq!(events, ids.into_iter().collect::<HashSet<_>>());
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
}

async fn what_redis_lost_is_published_again(engine: Engine) {
    // Arrange: 30 events published, then the stream is gone (a Redis without its data).
    let t = TestDb::new(engine).await;
    let (sink, _ns) = redis_sink(&redis_url());
    let key = sink.key(PAYMENTS);
    let ids = write_events(&t.outbox(), 30).await;
    let relay = redis_relay(&t.db, &sink);
    drain(&relay).await;
    let mut admin = redis_admin(&redis_url()).await;
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();

    // Act
    let pass = relay.run_once().await.unwrap();
    drain(&relay).await;

    // Assert
    assert_eq!(pass.replayed, 30);
    assert_stream_is(&stream_entries(&mut admin, &key).await, &ids);
    assert_eq!(relay.run_once().await.unwrap().replayed, 0, "nothing more once the stream caught up");
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
}

/// A consumer group far behind while the stream is trimmed: nothing it has not read, or read
/// and not acknowledged, is trimmed away; once it acknowledges, the stream shrinks back to
/// `maxlen` (issue 12, item 5).
async fn a_group_far_behind_loses_nothing_to_trimming(engine: Engine) {
    // Arrange: a stream kept to 5 entries, and a group that reads nothing yet.
    let t = TestDb::new(engine).await;
    let (sink, _ns) = redis_sink(&redis_url());
    let key = sink.key(PAYMENTS);
    let sink = sink.with_maxlen(5);
    let relay = redis_relay(&t.db, &sink);
    let mut admin = redis_admin(&redis_url()).await;
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg("slow")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut admin)
        .await
        .unwrap();
    let len = |admin: &mut lessor_store::redis::aio::ConnectionManager| {
        let mut admin = admin.clone();
        let key = key.clone();
        async move { redis::cmd("XLEN").arg(&key).query_async::<i64>(&mut admin).await.unwrap() }
    };

    // Act 1: 100 events published and trimmed after every batch, none read.
    let first = write_events(&t.outbox(), 100).await;
    drain(&relay).await;
    assert_eq!(len(&mut admin).await, 100, "unread entries are kept");

    // Act 2: the group reads them all without acknowledging, and 20 more arrive.
    let read: lessor_store::redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("slow")
        .arg("c1")
        .arg("COUNT")
        .arg(1_000)
        .arg("STREAMS")
        .arg(&key)
        .arg(">")
        .query_async(&mut admin)
        .await
        .unwrap();
    let delivered: Vec<String> = read.keys.iter().flat_map(|k| k.ids.iter().map(|e| e.id.clone())).collect();
    assert_eq!(delivered.len(), first.len());
    write_events(&t.outbox(), 20).await;
    drain(&relay).await;
    assert_eq!(len(&mut admin).await, 120, "pending entries are kept");

    // Act 3: the group acknowledges what it read; 10 more arrive.
    let _: i64 = redis::cmd("XACK").arg(&key).arg("slow").arg(&delivered).query_async(&mut admin).await.unwrap();
    write_events(&t.outbox(), 10).await;
    drain(&relay).await;

    // Assert: the 30 the group has not read are kept (ids 101-130), nothing older.
    let entries = stream_entries(&mut admin, &key).await;
    assert_eq!(entries.len(), 30);
    assert_eq!(entries.first().map(|(id, _)| id.as_str()), Some("101-0"));
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
}

on_each_engine!(
    a_group_far_behind_loses_nothing_to_trimming,
    publishes_in_order_with_the_sequence_as_entry_id,
    a_resend_after_a_crash_between_xadd_and_commit_is_refused,
    two_relays_at_once_publish_every_event_once,
    what_redis_lost_is_published_again,
);

mod foreign_entries {
    use super::*;

    /// The stream holds entries this outbox did not write (another deployment on the same
    /// key, or a database restored behind the stream): the relay stops instead of counting
    /// its events as published.
    #[tokio::test]
    async fn stop_the_relay_instead_of_losing_events() {
        // Arrange
        let t = TestDb::new(Engine::Sqlite).await;
        let (sink, _ns) = redis_sink(&redis_url());
        let key = sink.key(PAYMENTS);
        let mut admin = redis_admin(&redis_url()).await;
        for id in ["2-0", "5-0"] {
            let _: String =
                redis::cmd("XADD").arg(&key).arg(id).arg("event").arg("{}").query_async(&mut admin).await.unwrap();
        }
        write_events(&t.outbox(), 6).await;
        let relay = redis_relay(&t.db, &sink);

        // Act
        let result = relay.run_once().await;

        // Assert: seq 1 was trimmed (below the oldest entry), seq 2 is someone else's.
        let err = result.expect_err("conflict");
        assert!(
            matches!(err, lessor_events::RelayError::Sink(lessor_events::SinkError::Conflict { seq: 2, .. })),
            "{err}"
        );
        let rows = t.outbox().entries(PAYMENTS).await.unwrap();
        assert!(rows[0].published_at.is_some());
        assert!(rows[1..].iter().all(|r| r.published_at.is_none()), "nothing past the conflict counts as published");
        let _: () = redis::cmd("DEL").arg(&key).query_async(&mut admin).await.unwrap();
    }
}
