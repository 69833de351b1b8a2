//! The whole flow: a `payment.completed` event becomes one transfer, executed by the real
//! wallet contract, confirmed, and visible through `status_of`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lessor_chain::{ChainStatus, Receipt, WalletVersion};
use lessor_events::{EventBus, EventHandler, PAYMENTS, RedisStreamBus, Subscription, run_consumer};
use lessor_store::redis;

use crate::helpers::{Engine, RECIPIENT, Stop, World, eventually, payment_completed};
use crate::on_each_engine;

async fn completed_payment_is_transferred_and_confirmed(engine: Engine, version: WalletVersion) {
    // Arrange: a worker on a funded, not yet deployed wallet.
    let w = World::new(engine, version).await;
    let stop = Stop::new();
    w.spawn_worker("worker-a", &stop);
    let (event, payment) = payment_completed(45_000);

    // Act
    w.publish(&[event]).await;
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    stop.stop();

    // Assert: the record shows the transaction; the recipient got the receipt from our wallet.
    let view = w.store().status_of(payment.payment_id).await.unwrap().unwrap();
    assert_eq!(view.status, ChainStatus::Confirmed);
    assert_eq!(view.lease_id, payment.lease_id);
    assert_eq!(view.attempts, 1);
    assert_eq!(view.seqno, Some(0), "the first message deploys the wallet with seqno 0");
    let tx_hash = view.blockchain_tx_hash().expect("a transaction hash").to_owned();
    assert_eq!(tx_hash.len(), 64);
    let executed = w.peer.transfers(w.wallet()).await;
    assert_eq!(executed.len(), 1);
    assert_eq!(Some(executed[0].hash.as_str()), view.message_hash.as_deref(), "matched by message hash");
    assert_eq!((executed[0].seqno_before, executed[0].seqno_after), (None, Some(1)));
    assert_eq!(executed[0].messages.len(), 1);
    assert_eq!((executed[0].messages[0].destination.as_str(), executed[0].messages[0].value), (RECIPIENT, 10_000_000));

    let incoming = w.recipient_transactions().await;
    assert_eq!(incoming.len(), 1);
    let message = incoming[0].in_msg.as_ref().unwrap();
    assert_eq!(message.source.as_ref(), Some(w.wallet()));
    assert_eq!(message.value, 10_000_000);
    let receipt = Receipt::parse(message.comment.as_deref().unwrap()).unwrap();
    assert_eq!(receipt, Receipt::of(&payment));

    let wallet = lessor_chain::TonApi::wallet_info(&*w.api(), w.wallet()).await.unwrap();
    assert_eq!(wallet.seqno, Some(1));
    assert_eq!(w.metrics.confirmed.get(), 1);
    assert_eq!(w.metrics.submitted.get(), 1);
    let mut registry = prometheus_client::registry::Registry::with_prefix("lessor");
    w.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("lessor_chain_confirmation_seconds_count 1"), "{text}");
}

async fn v4r2_payment_is_transferred_and_confirmed(engine: Engine) {
    completed_payment_is_transferred_and_confirmed(engine, WalletVersion::V4R2).await;
}

async fn v5r1_payment_is_transferred_and_confirmed(engine: Engine) {
    completed_payment_is_transferred_and_confirmed(engine, WalletVersion::V5R1).await;
}

async fn the_same_event_delivered_three_times_makes_one_transfer(engine: Engine) {
    // Arrange: the event reaches the group three times through Redis (the same entry added
    // thrice), the handler is also called three times directly, and a second event reports the
    // same payment (a producer retrying).
    let w = World::new(engine, WalletVersion::V4R2).await;
    let (event, payment) = payment_completed(12_300);
    let (mut again, _) = payment_completed(12_300);
    again.data = event.data.clone();
    let namespace = format!("chain-test-{}", uuid::Uuid::new_v4().simple());
    let redis_url =
        url::Url::parse(&std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())).unwrap();
    let bus = RedisStreamBus::new(&redis_url, &namespace, w.db().clone()).unwrap();
    let key = bus.key(PAYMENTS);
    let mut conn = redis::Client::open(redis_url.as_str()).unwrap().get_connection_manager().await.unwrap();
    for e in [&event, &event, &event, &again] {
        let _: String =
            redis::cmd("XADD").arg(&key).arg("*").arg("event").arg(e.to_json()).query_async(&mut conn).await.unwrap();
    }
    let worker = w.worker("redis-worker");
    let handler = worker.handler();
    for _ in 0..3 {
        handler.handle(&event).await.unwrap();
    }

    // Act: the pipeline runs; the Redis consumer reads all four entries.
    let stop = Stop::new();
    tokio::spawn(lessor_chain::run_pipeline(worker.pipeline(), Default::default(), w.metrics.clone(), stop.signal()));
    let rounds = Arc::new(std::sync::Mutex::new(lessor_events::Round::default()));
    let seen = rounds.clone();
    let mut sub = Subscription::new(PAYMENTS, lessor_chain::CONSUMER_GROUP);
    sub.block = Duration::from_millis(100);
    let consumer = bus.subscribe(sub);
    tokio::spawn(run_consumer(
        consumer,
        handler.clone() as Arc<dyn EventHandler>,
        move |r| {
            let mut total = seen.lock().unwrap();
            total.handled += r.handled;
            total.duplicates += r.duplicates;
        },
        stop.signal(),
    ));
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    eventually(Duration::from_secs(10), "four entries consumed", || async { rounds.lock().unwrap().delivered() == 4 })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.stop();

    // Assert: one transfer; the second event was handled (it is another event) but added nothing.
    let transfers = w.transfers_by_payment().await;
    assert_eq!(transfers.len(), 1, "{transfers:?}");
    assert_eq!(transfers[0].0, payment.payment_id);
    let total = rounds.lock().unwrap().clone();
    assert_eq!((total.handled, total.duplicates), (1, 3), "{total:?}");
    let ids: HashSet<_> = w.store().counts().await.unwrap().into_iter().collect();
    assert_eq!(ids, HashSet::from([(ChainStatus::Confirmed, 1)]));
    let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await.unwrap();
}

on_each_engine!(
    v4r2_payment_is_transferred_and_confirmed,
    v5r1_payment_is_transferred_and_confirmed,
    the_same_event_delivered_three_times_makes_one_transfer,
);
