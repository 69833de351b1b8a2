//! The stream's identity (issue 12, item 4): a database restored from an older dump keeps
//! publishing after the stream's top, once each; a second database against the same Redis
//! namespace is refused, naming both database ids and the namespace.

use std::collections::HashMap;
use std::process::Command;

use lessor_events::{PAYMENTS, RelayError, SinkError, database_id};
use lessor_store::redis;
use lessor_store::testing::PgTestDb;
use lessor_store::{DatabaseTarget, Db};

use crate::helpers::{Engine, TestDb, drain, redis_admin, redis_relay, redis_sink, redis_url, write_events};

fn event_ids(entries: &[(String, String)]) -> Vec<uuid::Uuid> {
    entries.iter().map(|(_, json)| lessor_events::Event::from_json(json).unwrap().id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restored_from_an_older_dump_keeps_publishing_once_each() {
    // Arrange: 10 events published, 3 written but not yet sequenced, then a dump.
    let t = TestDb::new(Engine::Postgres).await;
    let (sink, _ns) = redis_sink(&redis_url());
    let key = sink.key(PAYMENTS);
    let relay = redis_relay(&t.db, &sink);
    let mut ids = write_events(&t.outbox(), 10).await;
    drain(&relay).await;
    ids.extend(write_events(&t.outbox(), 3).await);
    let dump = Command::new("pg_dump").arg("--no-owner").arg(&t.pg().unwrap().url).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    // The original goes on: the 3 and 5 more reach the stream (ids 11..=18).
    ids.extend(write_events(&t.outbox(), 5).await);
    drain(&relay).await;
    relay.release().await.unwrap();
    let mut admin = redis_admin(&redis_url()).await;
    let _: () = redis::cmd("XGROUP").arg("CREATE").arg(&key).arg("g").arg("0").query_async(&mut admin).await.unwrap();

    // Act: restore the dump into a fresh database and run a relay on it, with new events.
    let restored_pg = PgTestDb::create("lessor_events_restored").await;
    let mut psql = Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", &restored_pg.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(psql.stdin.as_mut().unwrap(), &dump.stdout).unwrap();
    drop(psql.stdin.take());
    assert!(psql.wait().unwrap().success());
    let dir = tempfile::tempdir().unwrap();
    let restored =
        Db::connect(&DatabaseTarget::from_config(Some(&restored_pg.url), dir.path()).unwrap()).await.unwrap();
    restored.migrate().await.unwrap();
    assert_eq!(database_id(&restored).await.unwrap(), database_id(&t.db).await.unwrap());
    // The dump holds the old relay's lease; a real start waits for it to expire (15 s).
    let expire = "UPDATE event_streams SET relay_expires_at = 0";
    lessor_store::on_db!(&restored, pool => sqlx::query(expire).execute(pool).await.map(drop)).unwrap();
    let relay = redis_relay(&restored, &sink);
    drain(&relay).await;
    let after = write_events(&lessor_events::Outbox::new(restored.clone()), 4).await;
    drain(&relay).await;

    // Assert: the stream holds every event once, the new ones after the old top.
    let entries = crate::helpers::stream_entries(&mut admin, &key).await;
    let mut want = ids.clone();
    want.extend(&after);
    assert_eq!(event_ids(&entries), want);
    let tops: Vec<i64> = entries.iter().map(|(id, _)| id.trim_end_matches("-0").parse().unwrap()).collect();
    assert_eq!(tops[..18], (1..=18).collect::<Vec<_>>()[..]);
    assert!(tops[18..].iter().all(|t| *t > 18));
    // And a consumer group receives each exactly once.
    let reply: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg(&["GROUP", "g", "c", "COUNT", "1000", "STREAMS", key.as_str(), ">"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut seen: HashMap<uuid::Uuid, usize> = HashMap::new();
    for entry in reply.keys.iter().flat_map(|k| &k.ids) {
        let json: String = entry.get(lessor_events::redis_stream::EVENT_FIELD).unwrap();
        *seen.entry(lessor_events::Event::from_json(&json).unwrap().id).or_default() += 1;
    }
    assert_eq!(seen.len(), 22);
    assert!(seen.values().all(|n| *n == 1));
    assert!(after.iter().all(|id| seen.contains_key(id)));
    let _: () = redis::cmd("DEL").arg(&key).arg(format!("{key}:owner")).query_async(&mut admin).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_database_is_refused_by_a_namespace_another_database_owns() {
    // Arrange: a first database publishes to a namespace.
    let first = TestDb::new(Engine::Postgres).await;
    let (sink, namespace) = redis_sink(&redis_url());
    write_events(&first.outbox(), 3).await;
    drain(&redis_relay(&first.db, &sink)).await;

    // Act: a second fresh database against the same namespace.
    let second = TestDb::new(Engine::Postgres).await;
    write_events(&second.outbox(), 2).await;
    let err = redis_relay(&second.db, &sink).run_once().await.unwrap_err();

    // Assert
    let (one, two) = (database_id(&first.db).await.unwrap(), database_id(&second.db).await.unwrap());
    assert!(matches!(err, RelayError::Sink(SinkError::OwnedByAnother { .. })), "{err}");
    let text = err.to_string();
    assert!(text.contains(&one) && text.contains(&two) && text.contains(&namespace), "{text}");
    assert!(text.contains("LESSOR_REDIS_NAMESPACE"));
    let mut admin = redis_admin(&redis_url()).await;
    let len: i64 = redis::cmd("XLEN").arg(sink.key(PAYMENTS)).query_async(&mut admin).await.unwrap();
    assert_eq!(len, 3, "nothing of the second database was published");
    let key = sink.key(PAYMENTS);
    let _: () = redis::cmd("DEL").arg(&key).arg(format!("{key}:owner")).query_async(&mut admin).await.unwrap();
}
