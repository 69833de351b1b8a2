//! Redis Streams: the relay's sink ([`RedisStreamSink`], `XADD` with explicit ids) and the
//! consumer-group bus ([`RedisStreamBus`], `XREADGROUP` / `XACK` / `XAUTOCLAIM`).
//!
//! The stream of `stream` lives at the key `<namespace>:<stream>` (e.g. `lessor:payments`),
//! the same namespacing as every other key `lessor_store::RedisConn` writes. Each entry is
//! `<seq>-0 event <envelope JSON>`.
//!
//! Sink and consumers open connections of their own rather than share the host's
//! `RedisConn`: a consumer's blocking read would hold up everyone on a shared connection,
//! and their reconnect backoff is bounded (see `manager_config`) so publication resumes
//! within seconds of Redis coming back.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lessor_store::Db;
use lessor_store::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use lessor_store::redis::streams::{
    StreamAutoClaimReply, StreamId, StreamInfoGroupsReply, StreamPendingReply, StreamRangeReply, StreamReadReply,
};
use lessor_store::redis::{self, RedisError, Value};
use tokio::sync::OnceCell;
use url::Url;

use crate::bus::{BusError, EventBus, EventConsumer, EventHandler, Round, StartFrom, Subscription, deliver};
use crate::outbox::OutboxEntry;
use crate::relay::{EventSink, Published, SinkError};

/// Entries kept per stream by default, beyond those a consumer group still needs (see
/// [`RedisStreamSink`]).
pub const DEFAULT_MAXLEN: usize = 100_000;
/// The field of a stream entry that holds the event.
pub const EVENT_FIELD: &str = "event";

fn stream_key(namespace: &str, stream: &str) -> String {
    format!("{namespace}:{stream}")
}

/// Redis's answer to an `XADD` whose explicit id is not above the stream's last id.
fn is_not_above_top(e: &RedisError) -> bool {
    e.to_string().contains("equal or smaller than the target stream top item")
}

/// `<ms>-<n>` → `<ms>`.
fn seq_of(id: &str) -> Option<i64> {
    id.split_once('-').map_or(id, |(ms, _)| ms).parse().ok()
}

/// How every connection of this module connects and reconnects: at most two attempts of 2 s
/// each, a second or two apart, then the command fails and the caller's own backoff takes
/// over. (`ConnectionManagerConfig`'s defaults, and a large `factor`, let a reconnect sleep
/// for up to minutes while Redis is down, holding every command back that long.)
pub(crate) fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(response_timeout)
        .set_number_of_retries(1)
        .set_factor(2)
        .set_max_delay(500)
}

/// Appends relay batches to the stream with `XADD <key> <seq>-0 event <json>`, and trims it by
/// the slowest consumer group: the stream keeps its newest `maxlen` entries, and beyond them
/// every entry some group has not acknowledged (pending) or not yet read. So a group far behind
/// loses nothing to trimming; the stream grows while it lags and shrinks once it catches up.
///
/// Trimming keeps the stream's last id, so a re-sent entry is refused even when old entries
/// were trimmed away. It runs after a publication once a tenth of `maxlen` entries were added
/// since the last trim (a few round trips: the top, the groups, each lagging group's oldest
/// pending entry).
#[derive(Clone)]
pub struct RedisStreamSink {
    client: redis::Client,
    namespace: String,
    maxlen: usize,
    conn: std::sync::Arc<OnceCell<ConnectionManager>>,
    added_since_trim: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for RedisStreamSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStreamSink").field("namespace", &self.namespace).field("maxlen", &self.maxlen).finish()
    }
}

impl RedisStreamSink {
    /// Validates the URL; nothing is connected until the first publication.
    pub fn new(url: &Url, namespace: &str) -> Result<Self, RedisError> {
        Ok(Self {
            client: redis::Client::open(url.as_str())?,
            namespace: namespace.to_owned(),
            maxlen: DEFAULT_MAXLEN,
            conn: Default::default(),
            added_since_trim: Default::default(),
        })
    }

    pub fn with_maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = maxlen.max(1);
        self
    }

    pub fn key(&self, stream: &str) -> String {
        stream_key(&self.namespace, stream)
    }

    async fn conn(&self) -> Result<ConnectionManager, RedisError> {
        let config = manager_config(Duration::from_secs(2));
        let conn = self.conn.get_or_try_init(|| self.client.get_connection_manager_with_config(config)).await?;
        Ok(conn.clone())
    }

    /// Trims the stream below the oldest entry any group still needs, keeping at least the
    /// newest `maxlen`: `XTRIM <key> MINID <floor>` (exact, so a test sees what it asked for).
    async fn trim(&self, conn: &mut ConnectionManager, key: &str) -> Result<(), RedisError> {
        let top: StreamRangeReply =
            redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1).query_async(conn).await?;
        let Some(top) = top.ids.first().and_then(|e| seq_of(&e.id)) else { return Ok(()) };
        let mut floor = top - i64::try_from(self.maxlen).unwrap_or(i64::MAX) + 1;
        if floor <= 1 {
            return Ok(());
        }
        let groups: StreamInfoGroupsReply = redis::cmd("XINFO").arg("GROUPS").arg(key).query_async(conn).await?;
        for group in groups.groups {
            // Everything above the group's last delivered entry is unread; of what was
            // delivered, the oldest pending entry is the first it has not acknowledged.
            let mut needed = seq_of(&group.last_delivered_id).map_or(1, |s| s + 1);
            if group.pending > 0 {
                let pending: StreamPendingReply =
                    redis::cmd("XPENDING").arg(key).arg(&group.name).query_async(conn).await?;
                if let StreamPendingReply::Data(data) = pending {
                    needed = needed.min(seq_of(&data.start_id).unwrap_or(1));
                }
            }
            floor = floor.min(needed);
        }
        if floor > 1 {
            let _: i64 = redis::cmd("XTRIM").arg(key).arg("MINID").arg(format!("{floor}-0")).query_async(conn).await?;
        }
        Ok(())
    }

    /// After a refused `XADD`: the stream must hold this very event under that id, or have
    /// trimmed it away (the id is below the oldest entry). Another event under the id, or a
    /// hole where the entry should be, means another writer or a database restored behind
    /// the stream; publishing then stops, rather than count an event as published that is not.
    async fn check_already_there(
        &self,
        conn: &mut ConnectionManager,
        key: &str,
        seq: i64,
        entry: &OutboxEntry,
    ) -> Result<(), SinkError> {
        let id = format!("{seq}-0");
        let found: StreamRangeReply = redis::cmd("XRANGE").arg(key).arg(&id).arg(&id).query_async(conn).await?;
        let conflict = Err(SinkError::Conflict { seq, event_id: entry.event_id });
        if let Some(held) = found.ids.first() {
            let same = held.get::<String>(EVENT_FIELD).as_deref() == Some(entry.payload.as_str());
            return if same { Ok(()) } else { conflict };
        }
        let oldest: StreamRangeReply =
            redis::cmd("XRANGE").arg(key).arg("-").arg("+").arg("COUNT").arg(1).query_async(conn).await?;
        match oldest.ids.first().and_then(|e| seq_of(&e.id)) {
            Some(first) if first < seq => conflict,
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl EventSink for RedisStreamSink {
    fn engine(&self) -> &'static str {
        "redis"
    }

    async fn top_seq(&self, stream: &str) -> Result<Option<i64>, SinkError> {
        let mut conn = self.conn().await?;
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.key(stream))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        Ok(Some(reply.ids.first().and_then(|e| seq_of(&e.id)).unwrap_or(0)))
    }

    async fn claim(&self, stream: &str, database_id: &str) -> Result<bool, SinkError> {
        let mut conn = self.conn().await?;
        let key = format!("{}:owner", self.key(stream));
        // `SET … NX GET`: sets the owner if none, answers the owner there was (Redis ≥ 7).
        let owner: Option<String> =
            redis::cmd("SET").arg(&key).arg(database_id).arg("NX").arg("GET").query_async(&mut conn).await?;
        match owner {
            Some(owner) if owner != database_id => Err(SinkError::OwnedByAnother {
                namespace: self.namespace.clone(),
                key: self.key(stream),
                owner,
                ours: database_id.to_owned(),
            }),
            Some(_) => Ok(true),
            None => Ok(false),
        }
    }

    async fn tail(&self, stream: &str, after: i64, count: u32) -> Result<Vec<(i64, String)>, SinkError> {
        let mut conn = self.conn().await?;
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.key(stream))
            .arg(format!("({after}-0"))
            .arg("+")
            .arg("COUNT")
            .arg(count.max(1))
            .query_async(&mut conn)
            .await?;
        Ok(reply.ids.iter().filter_map(|e| Some((seq_of(&e.id)?, e.get::<String>(EVENT_FIELD)?))).collect())
    }

    async fn publish(&self, stream: &str, entries: &[OutboxEntry]) -> Published {
        let mut published = Published::default();
        let mut conn = match self.conn().await {
            Ok(conn) => conn,
            Err(e) => {
                published.error = Some(e.into());
                return published;
            }
        };
        let key = self.key(stream);
        for entry in entries {
            let Some(seq) = entry.seq.filter(|s| *s > 0) else {
                published.error = Some(SinkError::BadEntry { seq: entry.seq.unwrap_or(0) });
                break;
            };
            let added: Result<String, RedisError> = redis::cmd("XADD")
                .arg(&key)
                .arg(format!("{seq}-0"))
                .arg(EVENT_FIELD)
                .arg(&entry.payload)
                .query_async(&mut conn)
                .await;
            let outcome = match added {
                Ok(_) => Ok(true),
                Err(e) if is_not_above_top(&e) => {
                    self.check_already_there(&mut conn, &key, seq, entry).await.map(|()| false)
                }
                Err(e) => Err(e.into()),
            };
            match outcome {
                Ok(true) => published.appended += 1,
                Ok(false) => published.already_there += 1,
                Err(e) => {
                    published.error = Some(e);
                    break;
                }
            }
        }
        use std::sync::atomic::Ordering;
        let added = self.added_since_trim.fetch_add(published.appended, Ordering::Relaxed) + published.appended;
        if published.appended > 0 && added >= (self.maxlen / 10).max(1) {
            self.added_since_trim.store(0, Ordering::Relaxed);
            // What trimming fails to remove now, the next trim does; the publication stands.
            if let Err(e) = self.trim(&mut conn, &key).await {
                tracing::warn!(stream = %key, error = %e, "could not trim the event stream");
            }
        }
        published
    }
}

/// Consumer groups on the Redis Stream. Every consumer opens a connection of its own (a
/// blocking read would hold up anyone sharing one); `db` holds the `event_handled` marks.
#[derive(Clone, Debug)]
pub struct RedisStreamBus {
    client: redis::Client,
    namespace: String,
    db: Db,
}

impl RedisStreamBus {
    /// Validates the URL; nothing is connected until a consumer's first round.
    pub fn new(url: &Url, namespace: &str, db: Db) -> Result<Self, RedisError> {
        Ok(Self { client: redis::Client::open(url.as_str())?, namespace: namespace.to_owned(), db })
    }

    pub fn key(&self, stream: &str) -> String {
        stream_key(&self.namespace, stream)
    }
}

impl EventBus for RedisStreamBus {
    fn engine(&self) -> &'static str {
        "redis"
    }

    fn subscribe(&self, subscription: Subscription) -> Box<dyn EventConsumer> {
        Box::new(RedisConsumer {
            client: self.client.clone(),
            key: self.key(&subscription.stream),
            db: self.db.clone(),
            sub: subscription,
            conn: None,
            group_ready: false,
            own_pending_done: false,
            claim_cursor: "0-0".to_owned(),
        })
    }
}

struct RedisConsumer {
    client: redis::Client,
    key: String,
    db: Db,
    sub: Subscription,
    conn: Option<ConnectionManager>,
    group_ready: bool,
    /// Whether this consumer's own pending entries (from a previous life) were read.
    own_pending_done: bool,
    /// Where the next `XAUTOCLAIM` scan starts.
    claim_cursor: String,
}

fn millis(d: Duration) -> u64 {
    d.as_millis().try_into().unwrap_or(u64::MAX)
}

impl RedisConsumer {
    async fn conn(&mut self) -> Result<ConnectionManager, RedisError> {
        if let Some(conn) = &self.conn {
            return Ok(conn.clone());
        }
        // A blocking read answers after `block`.
        let config = manager_config(self.sub.block + Duration::from_secs(2));
        let conn = self.client.get_connection_manager_with_config(config).await?;
        self.conn = Some(conn.clone());
        Ok(conn)
    }

    /// `XGROUP CREATE … MKSTREAM`; an existing group is fine.
    async fn ensure_group(&mut self, conn: &mut ConnectionManager) -> Result<(), RedisError> {
        let start = match self.sub.start {
            StartFrom::Beginning => "0",
            StartFrom::Latest => "$",
        };
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.key)
            .arg(&self.sub.group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => tracing::info!(key = %self.key, group = %self.sub.group, start, "consumer group created"),
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        self.group_ready = true;
        Ok(())
    }

    /// `XREADGROUP` of `id` (`>` for new entries, `0` for this consumer's pending ones).
    async fn read(&self, conn: &mut ConnectionManager, id: &str, block: bool) -> Result<Vec<StreamId>, RedisError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.sub.group).arg(&self.sub.consumer).arg("COUNT").arg(self.sub.batch);
        if block {
            cmd.arg("BLOCK").arg(millis(self.sub.block).max(1));
        }
        cmd.arg("STREAMS").arg(&self.key).arg(id);
        let reply: StreamReadReply = cmd.query_async(conn).await?;
        Ok(reply.keys.into_iter().flat_map(|k| k.ids).collect())
    }

    /// `XAUTOCLAIM`: takes over entries idle longer than `claim_idle`, scanning the pending
    /// list a page per round.
    async fn claim(&mut self, conn: &mut ConnectionManager) -> Result<Vec<StreamId>, RedisError> {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&self.key)
            .arg(&self.sub.group)
            .arg(&self.sub.consumer)
            .arg(millis(self.sub.claim_idle))
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(self.sub.batch)
            .query_async(conn)
            .await?;
        if !reply.deleted_ids.is_empty() {
            tracing::warn!(key = %self.key, group = %self.sub.group, ids = ?reply.deleted_ids,
                "pending entries were trimmed from the stream before being handled");
        }
        self.claim_cursor = reply.next_stream_id;
        Ok(reply.claimed)
    }

    /// Handles `entries` (just read or claimed) in order, acknowledging each one handled.
    ///
    /// Entries wait their turn while still pending, and another consumer may claim one
    /// once it has been idle for `claim_idle`. So whenever a third of that has passed, the
    /// rest of the batch is claimed again by this consumer (`XCLAIM … JUSTID`, which resets
    /// their idle time) with a minimum idle time just under how long this consumer has held
    /// them: an entry another consumer claimed meanwhile has been idle for less than that, is
    /// not taken back, and is dropped from this batch.
    async fn handle_all(
        &self,
        conn: &mut ConnectionManager,
        entries: Vec<StreamId>,
        handler: &dyn EventHandler,
        round: &mut Round,
    ) -> Result<(), BusError> {
        let mut entries: VecDeque<StreamId> = entries.into();
        let mut held_since = Instant::now();
        while let Some(entry) = entries.pop_front() {
            let held = held_since.elapsed();
            if held >= self.sub.claim_idle / 3 {
                let ids: Vec<&str> = std::iter::once(&entry).chain(&entries).map(|e| e.id.as_str()).collect();
                let kept: Vec<String> = redis::cmd("XCLAIM")
                    .arg(&self.key)
                    .arg(&self.sub.group)
                    .arg(&self.sub.consumer)
                    .arg(millis(held.saturating_sub(self.sub.claim_idle / 4)))
                    .arg(&ids)
                    .arg("JUSTID")
                    .query_async(conn)
                    .await?;
                held_since = Instant::now();
                if kept.len() < ids.len() {
                    tracing::info!(key = %self.key, group = %self.sub.group, lost = ids.len() - kept.len(),
                        "entries of this batch were claimed by another consumer");
                    entries.retain(|e| kept.contains(&e.id));
                }
                if !kept.contains(&entry.id) {
                    continue;
                }
            }
            let payload = match entry.map.get(EVENT_FIELD) {
                Some(Value::BulkString(bytes)) => std::str::from_utf8(bytes).ok(),
                Some(Value::SimpleString(s)) => Some(s.as_str()),
                _ => None,
            };
            let outcome = deliver(&self.db, &self.sub.group, &entry.id, payload, handler).await?;
            outcome.count(round);
            if outcome.settled() {
                redis::cmd("XACK").arg(&self.key).arg(&self.sub.group).arg(&entry.id).query_async::<i64>(conn).await?;
            }
        }
        Ok(())
    }

    async fn round(&mut self, handler: &dyn EventHandler) -> Result<Round, BusError> {
        let mut conn = self.conn().await?;
        if !self.group_ready {
            self.ensure_group(&mut conn).await?;
        }
        let mut round = Round::default();
        // This consumer's own unacknowledged entries first (a restart under the same name).
        if !self.own_pending_done {
            let mine = self.read(&mut conn, "0", false).await?;
            if mine.is_empty() {
                self.own_pending_done = true;
            } else {
                round.claimed += mine.len();
                self.handle_all(&mut conn, mine, handler, &mut round).await?;
                if round.failed > 0 {
                    // Failed entries stay pending under this name: leave them to XAUTOCLAIM.
                    self.own_pending_done = true;
                }
                return Ok(round);
            }
        }
        // Entries another consumer took and never acknowledged.
        let claimed = self.claim(&mut conn).await?;
        if !claimed.is_empty() {
            round.claimed += claimed.len();
            self.handle_all(&mut conn, claimed, handler, &mut round).await?;
            return Ok(round);
        }
        let fresh = self.read(&mut conn, ">", true).await?;
        self.handle_all(&mut conn, fresh, handler, &mut round).await?;
        Ok(round)
    }
}

#[async_trait]
impl EventConsumer for RedisConsumer {
    fn subscription(&self) -> &Subscription {
        &self.sub
    }

    #[tracing::instrument(name = "events.consume", skip_all, fields(engine = "redis", group = %self.sub.group))]
    async fn poll(&mut self, handler: &dyn EventHandler) -> Result<Round, BusError> {
        let result = self.round(handler).await;
        if let Err(BusError::Redis(e)) = &result
            && e.code() == Some("NOGROUP")
        {
            // The stream or the group vanished (Redis restarted without its data): create it
            // again from the start of what the stream holds; the relay re-sends what was
            // lost and `event_handled` drops what this group already saw.
            tracing::warn!(key = %self.key, group = %self.sub.group, "consumer group missing; recreating it");
            self.group_ready = false;
            self.sub.start = StartFrom::Beginning;
            self.claim_cursor = "0-0".to_owned();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_carry_the_sequence() {
        assert_eq!(seq_of("42-0"), Some(42));
        assert_eq!(seq_of("7"), Some(7));
        assert_eq!(seq_of("x-0"), None);
    }

    #[test]
    fn keys_are_namespaced_like_every_other_key() {
        let url = Url::parse("redis://127.0.0.1:1").unwrap();
        let redis = lessor_store::RedisConn::new(&url, "lessor").unwrap();
        assert_eq!(RedisStreamSink::new(&url, "lessor").unwrap().key("payments"), redis.key("payments"));
        assert_eq!(stream_key("lessor", "payments"), "lessor:payments");
    }
}
