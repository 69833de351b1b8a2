//! Writing events inside a caller's transaction, on either engine.

use lessor_events::{Event, OutboxError, PAYMENTS, enqueue};
use lessor_store::on_db;

use crate::helpers::{Engine, TestDb, payment_completed};
use crate::on_each_engine;

async fn written_with_the_callers_transaction(engine: Engine) {
    let t = TestDb::new(engine).await;
    let kept = payment_completed(100);
    let dropped = payment_completed(200);

    // Act: one transaction commits, one rolls back; the same code for both engines.
    on_db!(&t.db, pool => {
        let mut tx = pool.begin().await.unwrap();
        enqueue(&mut *tx, PAYMENTS, &kept).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = pool.begin().await.unwrap();
        enqueue(&mut *tx, PAYMENTS, &dropped).await.unwrap();
        tx.rollback().await.unwrap();
    });

    // Assert
    let entries = t.outbox().entries(PAYMENTS).await.unwrap();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!(entry.event_id, kept.id);
    assert_eq!(entry.event_type, "payment.completed");
    assert_eq!((entry.seq, entry.published_at), (None, None));
    assert_eq!(Event::from_json(&entry.payload).unwrap(), kept);
    assert!(t.outbox().get(dropped.id).await.unwrap().is_none());
    let stats = t.outbox().stats(PAYMENTS).await.unwrap();
    assert_eq!((stats.unpublished, stats.last_seq), (1, 0));
}

async fn an_event_id_is_written_once(engine: Engine) {
    let t = TestDb::new(engine).await;
    let event = payment_completed(100);
    t.outbox().enqueue(PAYMENTS, &event).await.unwrap();

    let again = t.outbox().enqueue(PAYMENTS, &event).await;
    assert!(matches!(again, Err(OutboxError::Duplicate(id)) if id == event.id), "{again:?}");
    let bad = t.outbox().enqueue("Payments:*", &payment_completed(1)).await;
    assert!(matches!(bad, Err(OutboxError::InvalidStream(_))), "{bad:?}");
}

on_each_engine!(written_with_the_callers_transaction, an_event_id_is_written_once);
