//! The relay: publishes outbox rows, in order, to an [`EventSink`] (the Redis Stream, or the
//! in-process bus), losing none and publishing none twice, across crashes and replicas.
//!
//! One pass:
//! 1. **Lease.** The relay takes the stream's lease in `event_streams` (and renews it once a
//!    third of it has gone by). Only the holder works; a crashed holder's lease expires and
//!    another relay takes over.
//! 2. **Sequence.** Under the lock of the stream's `event_streams` row, unsequenced rows get
//!    the next numbers of the stream's counter, in insertion order, in one transaction. A
//!    sequence is committed before it is published and never reused.
//! 3. **Publish.** Sequenced, unpublished rows go to the sink in sequence order; the Redis
//!    entry id is `<seq>-0`. Redis refuses an explicit id that is not above the stream's
//!    last id — even after `MAXLEN` trimming, which keeps that id — so a row published just
//!    before a crash is refused when sent again, and is counted as published.
//! 4. **Record.** Rows up to the last one in the stream are marked published. For a sink
//!    that keeps no copy (the in-process bus reads the table), steps 2–4 are one update.
//!
//! Entries are only ever sent in sequence order, after every lower one was appended or
//! refused, so a refusal proves the entry is there: even two relays at once (a lease that
//! expired under a stalled holder) cannot skip or duplicate one.
//!
//! If the sink holds less than the database says was published (Redis restarted without its
//! data, or a failover lost writes), the missing tail (at most `replay_limit` rows) is marked
//! unpublished and sent again; consumers deduplicate by event id (see [`crate::handled`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lessor_store::{Db, on_db};
use tokio::sync::Notify;

use crate::outbox::{ENTRY_COLUMNS, OutboxEntry, UNPUBLISHED, valid_stream};
use crate::{backoff, now_ms};

/// Where the relay publishes.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// For logs and metrics: `redis` or `in-process`.
    fn engine(&self) -> &'static str;

    /// The highest sequence `stream` holds, `Some(0)` when it is empty or missing, `None`
    /// when the sink keeps no copy that could be lost.
    async fn top_seq(&self, stream: &str) -> Result<Option<i64>, SinkError>;

    /// Whether the sink keeps a copy of what it was given that it could lose (a Redis
    /// Stream). When not, the relay never compares it with the database.
    fn keeps_copies(&self) -> bool {
        true
    }

    /// Appends `entries` (sequenced, in order) to `stream`. Stops at the first failure.
    async fn publish(&self, stream: &str, entries: &[OutboxEntry]) -> Published;

    /// Called after the relay recorded a publication (the in-process bus wakes its consumers).
    fn published(&self, _stream: &str) {}

    /// Records `database_id` as the owner of `stream` in the sink, or fails with
    /// [`SinkError::OwnedByAnother`] when another database owns it. A sink that keeps no copy
    /// belongs to its database anyway. `true` when the sink already named this database as
    /// the owner (so entries beyond the database's sequences are its own: a restore).
    async fn claim(&self, _stream: &str, _database_id: &str) -> Result<bool, SinkError> {
        Ok(false)
    }

    /// Up to `count` entries of `stream` whose sequence is above `after`, oldest first, as
    /// (sequence, payload). Used after a restore to find the events the database lost.
    async fn tail(&self, _stream: &str, _after: i64, _count: u32) -> Result<Vec<(i64, String)>, SinkError> {
        Ok(Vec::new())
    }
}

/// What [`EventSink::publish`] did with a batch.
#[derive(Debug, Default)]
pub struct Published {
    /// Entries appended now.
    pub appended: usize,
    /// Entries the stream already held (sent before a crash, or by another relay).
    pub already_there: usize,
    /// Why the rest of the batch was not sent.
    pub error: Option<SinkError>,
}

impl Published {
    /// The number of leading entries of the batch that are in the stream now.
    pub fn count(&self) -> usize {
        self.appended + self.already_there
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("redis: {0}")]
    Redis(#[from] lessor_store::redis::RedisError),
    #[error("entry {seq} has no valid sequence")]
    BadEntry { seq: i64 },
    #[error("the stream holds another event under sequence {seq} than outbox event {event_id}")]
    Conflict { seq: i64, event_id: uuid::Uuid },
    #[error(
        "the Redis namespace {namespace:?} (LESSOR_REDIS_NAMESPACE; stream key {key}) belongs to database \
         {owner}, not to this database {ours}: give this database a namespace of its own, or see \
         services/events/README.md (\"Database identity and restores\")"
    )]
    OwnedByAnother { namespace: String, key: String, owner: String, ours: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    #[error("publishing failed: {0}")]
    Sink(#[from] SinkError),
}

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub stream: String,
    /// Identifies this relay in the lease; unique per process.
    pub holder: String,
    /// Rows sequenced and published per pass.
    pub batch: u32,
    /// How long the lease lasts unless renewed. A pass renews it once a third of it has gone
    /// by since the last renewal.
    pub lease: Duration,
    /// How often an idle relay looks for work without being woken.
    pub poll: Duration,
    /// The shortest time between the starts of two passes when the last one was not full:
    /// wake-ups meanwhile are gathered into one pass, so under load a pass carries many rows
    /// instead of one (a pass costs about ten statements whatever it carries). This is the
    /// most a wake-up waits.
    pub linger: Duration,
    /// Backoff after a failed pass: from `min_backoff`, doubling, at most `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// After the sink lost data, at most this many of the newest rows are sent again.
    pub replay_limit: u32,
}

impl RelayConfig {
    pub fn new(stream: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            holder: format!("relay-{}", uuid::Uuid::new_v4().simple()),
            batch: 200,
            lease: Duration::from_secs(15),
            poll: Duration::from_secs(1),
            linger: Duration::from_millis(10),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
            replay_limit: 10_000,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayPass {
    /// Whether this relay held the lease (only the holder works).
    pub leader: bool,
    /// Rows marked unpublished again because the sink lost them.
    pub replayed: u64,
    /// Rows given a sequence.
    pub sequenced: u64,
    /// Rows now in the stream and marked published.
    pub published: usize,
    /// Of those, rows the stream already held.
    pub already_there: usize,
    /// Age of the oldest row still unpublished after this pass.
    pub lag: Option<Duration>,
}

pub struct Relay {
    db: Db,
    sink: Arc<dyn EventSink>,
    config: RelayConfig,
    /// When this relay last took or renewed the lease, while it holds it.
    renewed: std::sync::Mutex<Option<Instant>>,
    /// Whether the sink's stream was found to belong to this database.
    owner_checked: std::sync::atomic::AtomicBool,
    /// Whether the sink named this database as the owner before this relay claimed it: only
    /// then is a stream ahead of the database adopted (otherwise the entries may be foreign).
    owned_before: std::sync::atomic::AtomicBool,
}

impl Relay {
    /// # Panics
    /// If the stream name is not a valid one (a programming error).
    pub fn new(db: Db, sink: Arc<dyn EventSink>, config: RelayConfig) -> Self {
        assert!(valid_stream(&config.stream), "invalid stream name {:?}", config.stream);
        Self {
            db,
            sink,
            config,
            renewed: std::sync::Mutex::new(None),
            owner_checked: Default::default(),
            owned_before: Default::default(),
        }
    }

    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// One pass: lease, recover what the sink lost, sequence, publish one batch, record.
    #[tracing::instrument(name = "events.relay", skip(self), fields(stream = %self.config.stream, sink = self.sink.engine()))]
    pub async fn run_once(&self) -> Result<RelayPass, RelayError> {
        let mut pass = RelayPass::default();
        if !self.hold_lease().await? {
            return Ok(pass);
        }
        pass.leader = true;
        self.check_owner().await?;
        let (replayed, offset) = self.recover_lost().await?;
        pass.replayed = replayed;
        pass.sequenced = self.assign_sequences().await?;
        if !self.sink.keeps_copies() && pass.sequenced > 0 {
            // Sequenced and published in one update (see `assign_sequences`).
            pass.published = usize::try_from(pass.sequenced).unwrap_or(usize::MAX);
            self.sink.published(&self.config.stream);
        }
        let entries = self.unpublished(self.config.batch).await?;
        if !entries.is_empty() {
            // The stream's entry ids are the sequences shifted by the restore epoch's offset.
            let shifted: Vec<OutboxEntry> =
                entries.iter().cloned().map(|e| OutboxEntry { seq: e.seq.map(|s| s + offset), ..e }).collect();
            let result = self.sink.publish(&self.config.stream, &shifted).await;
            let done = result.count().min(entries.len());
            if let Some(last) = done.checked_sub(1).and_then(|i| entries[i].seq) {
                self.mark_published(last).await?;
                self.sink.published(&self.config.stream);
            }
            pass.published = done;
            pass.already_there = result.already_there;
            if let Some(error) = result.error {
                if let Some(stuck) = entries.get(done) {
                    self.record_failure(stuck.id, &error.to_string()).await?;
                }
                return Err(error.into());
            }
        }
        let oldest = self.oldest_unpublished().await?;
        pass.lag = oldest.map(|t| Duration::from_millis((now_ms() - t).max(0) as u64));
        Ok(pass)
    }

    /// Runs passes until `stop` resolves: straight on while batches are full, otherwise
    /// waiting for `wake` (writers call `notify_one` after committing) or `poll`; backing off
    /// while passes fail (the rows wait in the table meanwhile). Releases the lease at the end.
    pub async fn run(
        self,
        wake: Arc<Notify>,
        observe: impl Fn(&RelayPass) + Send,
        stop: impl Future<Output = ()> + Send,
    ) {
        tokio::pin!(stop);
        let mut failures = 0u32;
        loop {
            let started = tokio::time::Instant::now();
            let pause = match self.run_once().await {
                Ok(pass) => {
                    observe(&pass);
                    failures = 0;
                    let full =
                        pass.published >= self.config.batch as usize || pass.sequenced >= u64::from(self.config.batch);
                    if pass.leader && (full || pass.replayed > 0) {
                        tokio::task::yield_now().await;
                        continue;
                    }
                    self.config.poll
                }
                Err(e) => {
                    failures += 1;
                    let pause = backoff(failures, self.config.min_backoff, self.config.max_backoff);
                    tracing::warn!(stream = %self.config.stream, error = %e, failures, ?pause, "event relay pass failed");
                    pause
                }
            };
            let woken = tokio::select! {
                () = &mut stop => break,
                () = wake.notified(), if failures == 0 => true,
                () = tokio::time::sleep(pause) => false,
            };
            if woken {
                // Gather the wake-ups of the next few milliseconds into one pass.
                tokio::select! {
                    () = &mut stop => break,
                    () = tokio::time::sleep_until(started + self.config.linger) => {}
                }
            }
        }
        if let Err(e) = self.release().await {
            tracing::warn!(stream = %self.config.stream, error = %e, "releasing the relay lease failed");
        }
    }

    /// Whether this relay holds the lease, renewing it once a third of it has gone by.
    async fn hold_lease(&self) -> Result<bool, RelayError> {
        let fresh = self.config.lease / 3;
        let renewed = *self.renewed.lock().unwrap_or_else(|e| e.into_inner());
        if renewed.is_some_and(|at| at.elapsed() < fresh) {
            return Ok(true);
        }
        let asked = Instant::now();
        let held = self.acquire_lease().await?;
        *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = held.then_some(asked);
        Ok(held)
    }

    /// Records this database as the owner of the stream in the sink (once per relay), or
    /// fails naming both databases when the sink's namespace belongs to another one.
    pub async fn check_owner(&self) -> Result<(), RelayError> {
        use std::sync::atomic::Ordering;
        if self.owner_checked.load(Ordering::Relaxed) || !self.sink.keeps_copies() {
            return Ok(());
        }
        let id = crate::identity::database_id(&self.db).await?;
        let before = self.sink.claim(&self.config.stream, &id).await?;
        self.owned_before.store(before, Ordering::Relaxed);
        self.owner_checked.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Takes or renews the stream's relay lease. `true` when this relay holds it.
    pub async fn acquire_lease(&self) -> Result<bool, RelayError> {
        let now = now_ms();
        let sql = "INSERT INTO event_streams (stream, last_seq, relay_holder, relay_expires_at) VALUES ($1, 0, $2, $3) \
                   ON CONFLICT (stream) DO UPDATE \
                   SET relay_holder = excluded.relay_holder, relay_expires_at = excluded.relay_expires_at \
                   WHERE event_streams.relay_holder IS NULL OR event_streams.relay_holder = excluded.relay_holder \
                   OR event_streams.relay_expires_at <= $4 \
                   RETURNING relay_holder";
        let holder: Option<Option<String>> = on_db!(&self.db, pool => sqlx::query_scalar(sql)
            .bind(&self.config.stream)
            .bind(&self.config.holder)
            .bind(now + self.config.lease.as_millis() as i64)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        Ok(holder.flatten().as_deref() == Some(self.config.holder.as_str()))
    }

    /// Gives the lease up (on shutdown), so another relay need not wait for it to expire.
    pub async fn release(&self) -> Result<(), RelayError> {
        *self.renewed.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let sql = "UPDATE event_streams SET relay_holder = NULL, relay_expires_at = 0 \
                   WHERE stream = $1 AND relay_holder = $2";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(&self.config.stream)
            .bind(&self.config.holder)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Step 2: gives up to one batch of unsequenced rows the next sequences. Returns how many.
    /// For a sink that keeps no copy (the in-process bus, whose consumers read the table),
    /// publishing is marking the row, so the same update marks them published: one write of
    /// each row instead of two.
    pub async fn assign_sequences(&self) -> Result<u64, RelayError> {
        let stream = self.config.stream.as_str();
        let ensure = "INSERT INTO event_streams (stream) VALUES ($1) ON CONFLICT (stream) DO NOTHING";
        // A no-op update that locks the counter row (PostgreSQL) or takes the write lock
        // (SQLite) before anything is read: sequencing is serialised per stream.
        let lock = "UPDATE event_streams SET last_seq = last_seq WHERE stream = $1 RETURNING last_seq";
        let assign = "UPDATE event_outbox SET seq = $2 + numbered.rn, published_at = $4 \
                      FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM event_outbox \
                            WHERE stream = $1 AND seq IS NULL ORDER BY id LIMIT $3) AS numbered \
                      WHERE event_outbox.id = numbered.id";
        let advance = "UPDATE event_streams SET last_seq = last_seq + $2 WHERE stream = $1";
        let published_now = (!self.sink.keeps_copies()).then(now_ms);
        let n = on_db!(&self.db, pool => {
            sqlx::query(ensure).bind(stream).execute(pool).await?;
            let mut tx = pool.begin().await?;
            let last: i64 = sqlx::query_scalar(lock).bind(stream).fetch_one(&mut *tx).await?;
            let n = sqlx::query(assign)
                .bind(stream)
                .bind(last)
                .bind(i64::from(self.config.batch))
                .bind(published_now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                sqlx::query(advance).bind(stream).bind(n as i64).execute(&mut *tx).await?;
                tx.commit().await?;
            }
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(n)
    }

    /// Sequenced rows not yet published, in sequence order.
    pub async fn unpublished(&self, limit: u32) -> Result<Vec<OutboxEntry>, RelayError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM event_outbox \
             WHERE stream = $1 AND seq IS NOT NULL AND published_at IS NULL ORDER BY seq LIMIT $2"
        );
        Ok(on_db!(&self.db, pool => sqlx::query_as(&sql)
            .bind(&self.config.stream)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// Step 4: marks every sequenced row up to `seq` published.
    pub async fn mark_published(&self, seq: i64) -> Result<u64, RelayError> {
        let sql = "UPDATE event_outbox SET published_at = $3, last_error = NULL \
                   WHERE stream = $1 AND seq IS NOT NULL AND seq <= $2 AND published_at IS NULL";
        Ok(on_db!(&self.db, pool => sqlx::query(sql)
            .bind(&self.config.stream)
            .bind(seq)
            .bind(now_ms())
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }

    /// Compares what the sink holds with what the database says was published: a stream
    /// ahead of the database (a restore) is adopted, a stream behind it (lost entries) gets
    /// the missing tail marked unpublished again. Returns the rows to replay and the offset
    /// of the stream's entry ids.
    async fn recover_lost(&self) -> Result<(u64, i64), RelayError> {
        if !self.sink.keeps_copies() {
            return Ok((0, 0));
        }
        let stream = self.config.stream.as_str();
        let sql = "SELECT last_seq, id_offset FROM event_streams WHERE stream = $1";
        let row: Option<(i64, i64)> =
            on_db!(&self.db, pool => sqlx::query_as(sql).bind(stream).fetch_optional(pool).await)?;
        let (last_seq, mut offset) = row.unwrap_or((0, 0));
        let Some(raw_top) = self.sink.top_seq(stream).await? else { return Ok((0, offset)) };
        if raw_top > last_seq + offset && self.owned_before.load(std::sync::atomic::Ordering::Relaxed) {
            offset = self.adopt(raw_top, last_seq, offset).await?;
        }
        Ok((self.replay_lost(raw_top - offset).await?, offset))
    }

    /// The stream holds entries above every sequence this database handed out: it was
    /// restored from an older backup (the owner check proved it is the same database). The
    /// rows sequenced before the backup are in the stream (entries go in sequence order);
    /// the rows written but not sequenced then may be in the tail too (published after the
    /// backup) and get the next sequences, marked published; then the offset is raised so
    /// the next sequence's entry id follows the stream's top. Returns the new offset.
    async fn adopt(&self, raw_top: i64, last_seq: i64, offset: i64) -> Result<i64, RelayError> {
        let stream = self.config.stream.as_str();
        let tail = self.sink.tail(stream, last_seq + offset, self.config.replay_limit).await?;
        let tail_ids: Vec<uuid::Uuid> = tail
            .iter()
            .filter_map(|(_, payload)| serde_json::from_str::<serde_json::Value>(payload).ok())
            .filter_map(|event| event.get("id")?.as_str()?.parse().ok())
            .collect();
        let lock = "UPDATE event_streams SET last_seq = last_seq WHERE stream = $1 RETURNING last_seq";
        let sequenced = "UPDATE event_outbox SET published_at = $3, last_error = NULL \
                         WHERE stream = $1 AND seq IS NOT NULL AND seq <= $2 AND published_at IS NULL";
        let known = "UPDATE event_outbox SET seq = $3, published_at = $4 \
                     WHERE stream = $1 AND event_id = $2 AND seq IS NULL";
        let epoch = "UPDATE event_streams SET last_seq = $2, id_offset = $3 WHERE stream = $1";
        let now = now_ms();
        let (last, adopted) = on_db!(&self.db, pool => {
            let mut tx = pool.begin().await?;
            let mut last: i64 = sqlx::query_scalar(lock).bind(stream).fetch_one(&mut *tx).await?;
            sqlx::query(sequenced).bind(stream).bind(last).bind(now).execute(&mut *tx).await?;
            let mut adopted = 0u64;
            for id in &tail_ids {
                let n = sqlx::query(known).bind(stream).bind(*id).bind(last + 1).bind(now)
                    .execute(&mut *tx).await?.rows_affected();
                last += n as i64;
                adopted += n;
            }
            sqlx::query(epoch).bind(stream).bind(last).bind(raw_top - last).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>((last, adopted))
        })?;
        let new_offset = raw_top - last;
        tracing::warn!(
            stream,
            sink_top = raw_top,
            database_last_seq = last_seq,
            old_offset = offset,
            new_offset,
            lost_by_the_restore = tail.len() as u64 - adopted,
            adopted,
            "the event stream is ahead of the database (restored from a backup?); \
             continuing after the stream's top"
        );
        Ok(new_offset)
    }

    /// Marks the rows the sink lost (above `top`, in sequences) unpublished again.
    async fn replay_lost(&self, top: i64) -> Result<u64, RelayError> {
        let stream = self.config.stream.as_str();
        // The database first: anything marked published was appended before it was marked,
        // so a top read afterwards can only be lower if the sink lost it.
        let sql = "SELECT MAX(seq) FROM event_outbox WHERE stream = $1 AND published_at IS NOT NULL";
        let published: Option<i64> =
            on_db!(&self.db, pool => sqlx::query_scalar(sql).bind(stream).fetch_one(pool).await)?;
        let Some(published) = published else { return Ok(0) };
        if top >= published {
            return Ok(0);
        }
        let from = top.max(published - i64::from(self.config.replay_limit));
        let sql = "UPDATE event_outbox SET published_at = NULL \
                   WHERE stream = $1 AND seq > $2 AND published_at IS NOT NULL";
        let n = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(stream)
            .bind(from)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?;
        tracing::warn!(
            stream,
            sink = self.sink.engine(),
            sink_top = top,
            published,
            replaying = n,
            not_replayed = from - top,
            "the event stream lost entries the database had published; publishing them again"
        );
        Ok(n)
    }

    async fn record_failure(&self, id: i64, error: &str) -> Result<(), RelayError> {
        let sql = "UPDATE event_outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1";
        let error: String = error.chars().take(500).collect();
        on_db!(&self.db, pool => sqlx::query(sql).bind(id).bind(&error).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    async fn oldest_unpublished(&self) -> Result<Option<i64>, RelayError> {
        let sql = format!("SELECT MIN(created_at) FROM {UNPUBLISHED}");
        Ok(on_db!(&self.db, pool => sqlx::query_scalar(&sql).bind(&self.config.stream).fetch_one(pool).await)?)
    }
}
