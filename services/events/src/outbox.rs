//! The transactional outbox: an event is written in the same transaction as the change it
//! reports, so it exists exactly when the change does. The relay publishes it later.
//!
//! A repository writes its SQL through `on_db!` and holds a `Transaction` of one engine or
//! the other; [`enqueue`] takes either (anything implementing [`EventConn`], which
//! `PgConnection` and `SqliteConnection` do), so the same line works in both arms:
//!
//! ```text
//! on_db!(&self.db, pool => {
//!     let mut tx = pool.begin().await?;
//!     /* … update the payment … */
//!     lessor_events::enqueue(&mut *tx, lessor_events::PAYMENTS, &event).await?;
//!     tx.commit().await?;
//! })
//! ```
//!
//! After the commit, wake the relay (`relay_wake.notify_one()`); it also polls, so a missed
//! wake-up only delays publication.

use async_trait::async_trait;
use lessor_store::{Db, on_db};
use sqlx::{PgConnection, SqliteConnection};
use uuid::Uuid;

use crate::{Event, now_ms};

/// The stream payment events go to.
pub const PAYMENTS: &str = "payments";

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("event {0} is already in the outbox")]
    Duplicate(Uuid),
    #[error("invalid stream name `{0}` (1-64 characters of a-z, 0-9, `.`, `_`, `-`)")]
    InvalidStream(String),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

/// Stream names end up in Redis keys and log lines: keep them plain.
pub fn valid_stream(stream: &str) -> bool {
    (1..=64).contains(&stream.len())
        && stream.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// A connection or open transaction on either engine (`&mut *tx` of a
/// `Transaction<'_, Postgres>` or `Transaction<'_, Sqlite>`).
#[async_trait]
pub trait EventConn: Send {
    /// Adds `event` to `stream`'s outbox; see [`enqueue`].
    async fn insert_event(&mut self, stream: &str, event: &Event) -> Result<(), OutboxError>;
    /// Records that `group` handled `event_id`; see [`crate::mark_handled`].
    async fn mark_handled(&mut self, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error>;
}

/// The unpublished rows of stream `$1` (as a `FROM` item): the unsequenced ones and the
/// sequenced, unpublished ones, each read through its partial index. A plain
/// `published_at IS NULL` matches neither index's predicate and scans the whole table.
pub(crate) const UNPUBLISHED: &str = "(SELECT created_at FROM event_outbox WHERE stream = $1 AND seq IS NULL \
     UNION ALL SELECT created_at FROM event_outbox WHERE stream = $1 AND seq IS NOT NULL AND published_at IS NULL) \
     AS unpublished";

const INSERT_EVENT: &str =
    "INSERT INTO event_outbox (stream, event_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4, $5)";
pub(crate) const MARK_HANDLED: &str = "INSERT INTO event_handled (group_name, event_id, handled_at) VALUES ($1, $2, $3) \
     ON CONFLICT (group_name, event_id) DO NOTHING";

/// The same body for both engines' connection types.
macro_rules! event_conn_for {
    ($conn:ty) => {
        #[async_trait]
        impl EventConn for $conn {
            async fn insert_event(&mut self, stream: &str, event: &Event) -> Result<(), OutboxError> {
                if !valid_stream(stream) {
                    return Err(OutboxError::InvalidStream(stream.to_owned()));
                }
                sqlx::query(INSERT_EVENT)
                    .bind(stream)
                    .bind(event.id)
                    .bind(event.event_type())
                    .bind(event.to_json())
                    .bind(now_ms())
                    .execute(&mut *self)
                    .await
                    .map_err(|e| duplicate_or(e, event.id))?;
                Ok(())
            }

            async fn mark_handled(&mut self, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
                let done =
                    sqlx::query(MARK_HANDLED).bind(group).bind(event_id).bind(now_ms()).execute(&mut *self).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

event_conn_for!(PgConnection);
event_conn_for!(SqliteConnection);

fn duplicate_or(e: sqlx::Error, id: Uuid) -> OutboxError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => OutboxError::Duplicate(id),
        _ => OutboxError::Store(e),
    }
}

/// Writes `event` to `stream`'s outbox on `conn`, inside whatever transaction `conn` is in.
/// An event id already in the outbox is [`OutboxError::Duplicate`] (and, on PostgreSQL,
/// aborts the transaction like any failed statement).
pub async fn enqueue<C: EventConn + ?Sized>(conn: &mut C, stream: &str, event: &Event) -> Result<(), OutboxError> {
    conn.insert_event(stream, event).await
}

/// An outbox row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub stream: String,
    pub event_id: Uuid,
    pub event_type: String,
    /// The envelope JSON, exactly as published.
    pub payload: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Assigned by the relay; the Redis Stream entry id is `<seq>-0`.
    pub seq: Option<i64>,
    pub published_at: Option<i64>,
    pub attempts: i32,
}

pub(crate) const ENTRY_COLUMNS: &str =
    "id, stream, event_id, event_type, payload, created_at, seq, published_at, attempts";

/// The state of one stream's outbox, for metrics and readiness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Rows not yet published.
    pub unpublished: i64,
    /// `created_at` of the oldest of those (Unix ms).
    pub oldest_unpublished: Option<i64>,
    /// The highest sequence handed out so far.
    pub last_seq: i64,
}

/// The outbox over a pool, for writes outside a caller's transaction, reads and pruning.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Db,
}

impl Outbox {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Writes one event in a transaction of its own.
    pub async fn enqueue(&self, stream: &str, event: &Event) -> Result<(), OutboxError> {
        on_db!(&self.db, pool => {
            let mut conn = pool.acquire().await?;
            enqueue(&mut *conn, stream, event).await
        })
    }

    pub async fn get(&self, event_id: Uuid) -> Result<Option<OutboxEntry>, OutboxError> {
        let sql = format!("SELECT {ENTRY_COLUMNS} FROM event_outbox WHERE event_id = $1");
        Ok(on_db!(&self.db, pool => sqlx::query_as(&sql).bind(event_id).fetch_optional(pool).await)?)
    }

    /// Every row of `stream`, in sequence order (unsequenced rows last, in insertion order).
    pub async fn entries(&self, stream: &str) -> Result<Vec<OutboxEntry>, OutboxError> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM event_outbox WHERE stream = $1 \
             ORDER BY CASE WHEN seq IS NULL THEN 1 ELSE 0 END, seq, id"
        );
        Ok(on_db!(&self.db, pool => sqlx::query_as(&sql).bind(stream).fetch_all(pool).await)?)
    }

    pub async fn stats(&self, stream: &str) -> Result<OutboxStats, OutboxError> {
        let sql = format!(
            "SELECT COUNT(*), MIN(created_at), \
             (SELECT COALESCE(MAX(last_seq), 0) FROM event_streams WHERE stream = $1) FROM {UNPUBLISHED}"
        );
        let (unpublished, oldest_unpublished, last_seq): (i64, Option<i64>, i64) =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(stream).fetch_one(pool).await)?;
        Ok(OutboxStats { unpublished, oldest_unpublished, last_seq })
    }

    /// Deletes rows of `stream` published before `published_before` (Unix ms) that every
    /// in-process consumer group has passed. Sequences are never reused after pruning.
    pub async fn prune(&self, stream: &str, published_before: i64) -> Result<u64, OutboxError> {
        let sql = "DELETE FROM event_outbox WHERE stream = $1 AND published_at IS NOT NULL AND published_at < $2 \
                   AND seq <= COALESCE((SELECT MIN(last_seq) FROM event_consumer_offsets WHERE stream = $1), seq)";
        Ok(on_db!(&self.db, pool => sqlx::query(sql)
            .bind(stream)
            .bind(published_before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_are_plain() {
        assert!(valid_stream("payments"));
        assert!(valid_stream("chain.v2_x-1"));
        for bad in ["", "Payments", "a b", "a:b", "a*", &"x".repeat(65)] {
            assert!(!valid_stream(bad), "{bad:?}");
        }
    }
}
