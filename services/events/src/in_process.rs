//! The embedded bus (no Redis): consumers read the outbox table itself, in sequence order,
//! each group from its own durable cursor in `event_consumer_offsets`.
//!
//! The relay still runs: it gives rows their sequences (in commit order, so a cursor never
//! skips a row that committed late) and marks them published; [`InProcessSink`] then wakes
//! the consumers. One consumer of a group reads at a time, holding the group's lease in its
//! cursor row; advancing the cursor acknowledges an event and renews the lease. A consumer
//! that dies leaves the cursor where it was, and once the lease expires (`claim_idle`)
//! another consumer of the group goes on from there.
//!
//! A group's events are handled strictly in order: a failing handler holds the group back
//! and is retried with backoff.

use std::sync::Arc;

use async_trait::async_trait;
use lessor_store::{Db, on_db};
use tokio::sync::Notify;

use crate::bus::{BusError, EventBus, EventConsumer, EventHandler, Round, StartFrom, Subscription, deliver};
use crate::now_ms;
use crate::outbox::OutboxEntry;
use crate::relay::{EventSink, Published, SinkError};

/// The in-process bus over the outbox table.
#[derive(Clone, Debug)]
pub struct InProcessBus {
    db: Db,
    published: Arc<Notify>,
}

impl InProcessBus {
    pub fn new(db: Db) -> Self {
        Self { db, published: Arc::new(Notify::new()) }
    }

    /// The relay's sink for this bus: publishing is the relay marking rows published, after
    /// which the sink wakes this bus's consumers.
    pub fn sink(&self) -> InProcessSink {
        InProcessSink { published: self.published.clone() }
    }
}

/// See [`InProcessBus::sink`].
#[derive(Clone, Debug)]
pub struct InProcessSink {
    published: Arc<Notify>,
}

#[async_trait]
impl EventSink for InProcessSink {
    fn engine(&self) -> &'static str {
        "in-process"
    }

    async fn top_seq(&self, _stream: &str) -> Result<Option<i64>, SinkError> {
        Ok(None)
    }

    fn keeps_copies(&self) -> bool {
        false
    }

    async fn publish(&self, _stream: &str, entries: &[OutboxEntry]) -> Published {
        // The rows are the stream: there is nothing to copy.
        Published { appended: entries.len(), ..Published::default() }
    }

    fn published(&self, _stream: &str) {
        self.published.notify_waiters();
    }
}

impl EventBus for InProcessBus {
    fn engine(&self) -> &'static str {
        "in-process"
    }

    fn subscribe(&self, subscription: Subscription) -> Box<dyn EventConsumer> {
        Box::new(InProcessConsumer {
            db: self.db.clone(),
            published: self.published.clone(),
            sub: subscription,
            group_ready: false,
        })
    }
}

struct InProcessConsumer {
    db: Db,
    published: Arc<Notify>,
    sub: Subscription,
    group_ready: bool,
}

impl InProcessConsumer {
    /// Creates the group's cursor if it does not exist yet.
    async fn ensure_group(&mut self) -> Result<(), sqlx::Error> {
        let latest = i64::from(self.sub.start == StartFrom::Latest);
        let sql = "INSERT INTO event_consumer_offsets (group_name, stream, last_seq, updated_at) \
                   VALUES ($1, $2, CASE WHEN $3 = 1 THEN COALESCE((SELECT MAX(seq) FROM event_outbox \
                   WHERE stream = $2 AND published_at IS NOT NULL), 0) ELSE 0 END, $4) \
                   ON CONFLICT (group_name, stream) DO NOTHING";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(&self.sub.group)
            .bind(&self.sub.stream)
            .bind(latest)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        self.group_ready = true;
        Ok(())
    }

    /// Takes or renews the group's lease; the cursor when this consumer holds it.
    async fn lease(&self) -> Result<Option<i64>, sqlx::Error> {
        let now = now_ms();
        let sql = "UPDATE event_consumer_offsets SET holder = $3, lease_expires_at = $4 \
                   WHERE group_name = $1 AND stream = $2 \
                   AND (holder IS NULL OR holder = $3 OR lease_expires_at <= $5) RETURNING last_seq";
        on_db!(&self.db, pool => sqlx::query_scalar(sql)
            .bind(&self.sub.group)
            .bind(&self.sub.stream)
            .bind(&self.sub.consumer)
            .bind(now + self.sub.claim_idle.as_millis() as i64)
            .bind(now)
            .fetch_optional(pool)
            .await)
    }

    /// Acknowledges everything up to `seq` and renews the lease; `false` if the lease was lost.
    async fn advance(&self, seq: i64) -> Result<bool, sqlx::Error> {
        let now = now_ms();
        let sql = "UPDATE event_consumer_offsets SET last_seq = $4, lease_expires_at = $5, updated_at = $6 \
                   WHERE group_name = $1 AND stream = $2 AND holder = $3 AND last_seq < $4";
        let n = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(&self.sub.group)
            .bind(&self.sub.stream)
            .bind(&self.sub.consumer)
            .bind(seq)
            .bind(now + self.sub.claim_idle.as_millis() as i64)
            .bind(now)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    async fn next_batch(&self, after: i64) -> Result<Vec<(i64, String)>, sqlx::Error> {
        let sql = "SELECT seq, payload FROM event_outbox \
                   WHERE stream = $1 AND seq > $2 AND published_at IS NOT NULL ORDER BY seq LIMIT $3";
        on_db!(&self.db, pool => sqlx::query_as(sql)
            .bind(&self.sub.stream)
            .bind(after)
            .bind(self.sub.batch as i64)
            .fetch_all(pool)
            .await)
    }
}

#[async_trait]
impl EventConsumer for InProcessConsumer {
    fn subscription(&self) -> &Subscription {
        &self.sub
    }

    #[tracing::instrument(name = "events.consume", skip_all, fields(engine = "in-process", group = %self.sub.group))]
    async fn poll(&mut self, handler: &dyn EventHandler) -> Result<Round, BusError> {
        // Registered before reading, so a publication during the read still wakes us.
        let published = self.published.clone();
        let wake = published.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();

        if !self.group_ready {
            self.ensure_group().await?;
        }
        let mut round = Round::default();
        let Some(cursor) = self.lease().await? else {
            // Another consumer of the group is reading.
            let _ = tokio::time::timeout(self.sub.block, wake).await;
            return Ok(round);
        };
        let batch = self.next_batch(cursor).await?;
        if batch.is_empty() {
            let _ = tokio::time::timeout(self.sub.block, wake).await;
            return Ok(round);
        }
        for (seq, payload) in batch {
            let outcome = deliver(&self.db, &self.sub.group, &seq.to_string(), Some(&payload), handler).await?;
            outcome.count(&mut round);
            if !outcome.settled() {
                break;
            }
            if !self.advance(seq).await? {
                tracing::warn!(group = %self.sub.group, seq, "lost the consumer group's lease mid-batch");
                break;
            }
        }
        Ok(round)
    }

    async fn close(&mut self) {
        let sql = "UPDATE event_consumer_offsets SET holder = NULL, lease_expires_at = 0 \
                   WHERE group_name = $1 AND stream = $2 AND holder = $3";
        let released = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(&self.sub.group)
            .bind(&self.sub.stream)
            .bind(&self.sub.consumer)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        if let Err(e) = released {
            tracing::warn!(group = %self.sub.group, error = %e, "releasing the consumer group's lease failed");
        }
    }
}
