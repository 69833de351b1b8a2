//! Which events a consumer group has handled: the `event_handled (group_name, event_id)`
//! table that turns at-least-once delivery into exactly-once effects.
//!
//! Both buses check it before a handler runs (an event already marked is acknowledged
//! without running the handler again) and mark the event after the handler succeeded. A
//! crash between the handler's success and that mark would run the handler once more, so a
//! handler whose effects live in the same database marks the event itself, in the
//! transaction that writes those effects:
//!
//! ```text
//! on_db!(&db, pool => {
//!     let mut tx = pool.begin().await?;
//!     if !lessor_events::mark_handled(&mut *tx, "chain-worker", event.id).await? {
//!         return Ok(()); // handled before: nothing to do
//!     }
//!     /* … write the effects … */
//!     tx.commit().await?;
//! })
//! ```
//!
//! Handlers with effects elsewhere make those effects idempotent by the event id (e.g. an
//! idempotency key at the provider).

use lessor_store::{Db, on_db};
use uuid::Uuid;

use crate::now_ms;
use crate::outbox::{EventConn, MARK_HANDLED};

/// Marks `event_id` handled by `group` on `conn` (inside the caller's transaction). Returns
/// `true` the first time, `false` when it was marked before.
pub async fn mark_handled<C: EventConn + ?Sized>(
    conn: &mut C,
    group: &str,
    event_id: Uuid,
) -> Result<bool, sqlx::Error> {
    conn.mark_handled(group, event_id).await
}

pub(crate) async fn is_handled(db: &Db, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
    let sql = "SELECT COUNT(*) FROM event_handled WHERE group_name = $1 AND event_id = $2";
    let n: i64 = on_db!(db, pool => sqlx::query_scalar(sql).bind(group).bind(event_id).fetch_one(pool).await)?;
    Ok(n > 0)
}

pub(crate) async fn record(db: &Db, group: &str, event_id: Uuid) -> Result<bool, sqlx::Error> {
    let n = on_db!(db, pool => sqlx::query(MARK_HANDLED)
        .bind(group)
        .bind(event_id)
        .bind(now_ms())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Forgets marks older than `before` (Unix ms). Keep them longer than any redelivery can
/// take: the stream's retention, or the oldest unacknowledged entry.
pub async fn prune_handled(db: &Db, before: i64) -> Result<u64, sqlx::Error> {
    let sql = "DELETE FROM event_handled WHERE handled_at < $1";
    on_db!(db, pool => sqlx::query(sql).bind(before).execute(pool).await.map(|r| r.rows_affected()))
}
