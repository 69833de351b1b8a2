//! A worker killed between steps, then another started: still exactly one transfer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use lessor_chain::{ChainHandler, ChainPipeline, ChainStatus, WalletVersion};
use lessor_events::{Event, EventBus, EventHandler, HandlerError, PAYMENTS, Subscription, run_consumer};
use lessor_store::{Db, on_db};
use tokio::sync::Notify;

use crate::helpers::{Engine, Stop, World, eventually, payment_completed};
use crate::on_each_engine;

fn subscription(consumer: &str) -> Subscription {
    let mut sub = Subscription::new(PAYMENTS, lessor_chain::CONSUMER_GROUP);
    sub.consumer = consumer.into();
    sub.block = Duration::from_millis(100);
    sub.claim_idle = Duration::from_millis(1_500);
    sub
}

/// The group's last acknowledged sequence on the in-process bus (0 before any).
async fn acknowledged(db: &Db) -> i64 {
    let sql = "SELECT last_seq FROM event_consumer_offsets WHERE group_name = $1 AND stream = $2";
    let seq: Option<i64> = on_db!(db, pool => sqlx::query_scalar(sql)
        .bind(lessor_chain::CONSUMER_GROUP)
        .bind(PAYMENTS)
        .fetch_optional(pool)
        .await)
    .unwrap();
    seq.unwrap_or(0)
}

/// Runs "process 1" up to where it dies: the consumer handles the event (stores the record,
/// acknowledges it) and the pipeline signs and stores the message, which is never sent.
async fn killed_after_storing_the_signed_message_before_sending(engine: Engine) {
    // Arrange
    let w = World::new(engine, WalletVersion::V4R2).await;
    let (event, payment) = payment_completed(9_900);
    w.publish(&[event]).await;

    // Act 1: process 1 stores the record and the signed message, then dies.
    let first = w.pipeline("process-1");
    let mut consumer = w.bus.subscribe(subscription("process-1"));
    let handler = ChainHandler::new(first.clone(), Arc::new(Notify::new()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.status(payment.payment_id).await.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "process 1 never got the event");
        consumer.poll(&handler).await.unwrap();
    }
    let signed = first.sign_next().await.unwrap().expect("a message is signed");
    assert_eq!(signed.status(), ChainStatus::Signed);
    drop((consumer, handler, first));
    assert!(w.peer.transfers(w.wallet()).await.is_empty(), "nothing was sent");

    // Act 2: process 2 starts (after process 1's wallet lease ran out).
    let stop = Stop::new();
    w.spawn_worker("process-2", &stop);
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    stop.stop();

    // Assert: the stored message itself was sent and executed, once.
    let executed = w.peer.transfers(w.wallet()).await;
    assert_eq!(executed.len(), 1);
    assert_eq!(Some(executed[0].hash.as_str()), signed.message_hash.as_deref());
    let view = w.store().status_of(payment.payment_id).await.unwrap().unwrap();
    assert_eq!((view.attempts, view.message_hash), (1, signed.message_hash));
    assert_eq!(w.transfers_by_payment().await.len(), 1);
}

/// Handles the event like the worker, then signs and sends its message, then hangs: the
/// process is killed before the event is acknowledged.
struct SendThenHang {
    inner: ChainHandler,
    pipeline: Arc<ChainPipeline>,
    sent: Arc<AtomicBool>,
}

#[async_trait]
impl EventHandler for SendThenHang {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.inner.handle(event).await?;
        self.pipeline.sign_next().await.map_err(HandlerError::new)?;
        self.pipeline.send_in_flight().await.map_err(HandlerError::new)?;
        self.sent.store(true, Ordering::SeqCst);
        std::future::pending::<()>().await;
        Ok(())
    }
}

async fn killed_after_sending_before_acknowledging_the_event(engine: Engine) {
    // Arrange
    let w = World::new(engine, WalletVersion::V5R1).await;
    let (event, payment) = payment_completed(31_000);
    w.publish(&[event]).await;

    // Act 1: process 1 stores, signs and sends, and is killed before acknowledging.
    let first = w.pipeline("process-1");
    let sent = Arc::new(AtomicBool::new(false));
    let handler: Arc<dyn EventHandler> = Arc::new(SendThenHang {
        inner: ChainHandler::new(first.clone(), Arc::new(Notify::new())),
        pipeline: first.clone(),
        sent: sent.clone(),
    });
    let process =
        tokio::spawn(run_consumer(w.bus.subscribe(subscription("process-1")), handler, |_| {}, std::future::pending()));
    eventually(Duration::from_secs(20), "process 1 sent the message", || async { sent.load(Ordering::SeqCst) }).await;
    process.abort();
    let _ = process.await;
    drop(first);
    assert_eq!(w.peer.transfers(w.wallet()).await.len(), 1, "the transfer happened");
    assert_eq!(acknowledged(w.db()).await, 0, "the event was not acknowledged");

    // Act 2: process 2 gets the event again and resumes the pipeline.
    let stop = Stop::new();
    w.spawn_worker("process-2", &stop);
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    eventually(Duration::from_secs(10), "the event acknowledged", || async { acknowledged(w.db()).await == 1 }).await;
    stop.stop();

    // Assert
    let transfers = w.transfers_by_payment().await;
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0].0, payment.payment_id);
    assert_eq!(w.store().status_of(payment.payment_id).await.unwrap().unwrap().attempts, 1);
}

async fn killed_after_the_node_took_the_message_before_recording_it(engine: Engine) {
    // Arrange: process 1 stored the signed message, sent it, and died before writing that down.
    let w = World::new(engine, WalletVersion::V4R2).await;
    let (event, payment) = payment_completed(5_000);
    let first = w.pipeline("process-1");
    assert_eq!(
        first
            .accept(
                event.id,
                match &event.data {
                    lessor_events::EventData::PaymentCompleted(p) => p,
                    _ => unreachable!(),
                }
            )
            .await
            .unwrap(),
        lessor_chain::Accepted::New
    );
    let signed = first.sign_next().await.unwrap().unwrap();
    let boc = base64::engine::general_purpose::STANDARD.decode(signed.boc.as_deref().unwrap()).unwrap();
    w.api().send_boc(&boc).await.unwrap();
    drop(first);

    // Act: process 2 sends the stored message again (refused: its seqno is used) and finds it.
    let stop = Stop::new();
    w.spawn_worker("process-2", &stop);
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    stop.stop();

    // Assert
    assert_eq!(w.transfers_by_payment().await.len(), 1);
    let record = w.store().record(payment.payment_id).await.unwrap().unwrap();
    assert_eq!(record.attempts, 1);
    assert!(record.sends >= 1, "process 2 sent it again");
    assert!(w.peer.stats().await["rejected"].as_u64().unwrap() >= 1, "and the wallet refused the copy");
}

on_each_engine!(
    killed_after_storing_the_signed_message_before_sending,
    killed_after_sending_before_acknowledging_the_event,
    killed_after_the_node_took_the_message_before_recording_it,
);
