//! Many payments at once, and several workers on one wallet.

use std::collections::HashSet;
use std::time::Duration;

use lessor_chain::WalletVersion;
use uuid::Uuid;

use crate::helpers::{Engine, Executed, Stop, World, payment_completed};
use crate::on_each_engine;

/// Every executed message made one transfer, with seqnos 0, 1, 2, … in execution order.
fn assert_seqnos_strictly_increasing(executed: &[Executed]) {
    for (i, e) in executed.iter().enumerate() {
        let before = e.seqno_before.unwrap_or(0);
        assert_eq!(before, i as i64, "message {i}: {e:?}");
        assert_eq!(e.seqno_after, Some(before + 1), "message {i}: {e:?}");
        assert_eq!(e.messages.len(), 1, "message {i} made one transfer: {e:?}");
    }
}

async fn a_hundred_payments_make_a_hundred_transfers_in_seqno_order(engine: Engine) {
    // Arrange
    let w = World::new(engine, WalletVersion::V5R1).await;
    let events: Vec<_> = (0..100).map(|i| payment_completed(1_000 + i)).collect();
    let ids: Vec<Uuid> = events.iter().map(|(_, p)| p.payment_id).collect();

    // Act: all at once.
    let stop = Stop::new();
    w.spawn_worker("worker", &stop);
    w.publish(&events.iter().map(|(e, _)| e.clone()).collect::<Vec<_>>()).await;
    w.wait_confirmed(&ids, Duration::from_secs(180)).await;
    stop.stop();

    // Assert
    let executed = w.peer.transfers(w.wallet()).await;
    assert_eq!(executed.len(), 100);
    assert_seqnos_strictly_increasing(&executed);
    let paid: HashSet<Uuid> = w.transfers_by_payment().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(paid, ids.iter().copied().collect::<HashSet<_>>(), "none lost, none twice");
    let records = w.store().statuses_of(&ids).await.unwrap();
    let seqnos: HashSet<i64> = records.values().map(|v| v.seqno.unwrap()).collect();
    assert_eq!(seqnos, (0..100).collect::<HashSet<_>>());
    assert!(records.values().all(|v| v.attempts == 1));
}

async fn several_workers_share_one_wallet_without_reusing_a_seqno(engine: Engine) {
    // Arrange: three workers (replicas) on the same database and wallet.
    let w = World::new(engine, WalletVersion::V4R2).await;
    let events: Vec<_> = (0..30).map(|i| payment_completed(2_000 + i)).collect();
    let ids: Vec<Uuid> = events.iter().map(|(_, p)| p.payment_id).collect();
    let stops: Vec<Stop> = (0..3).map(|_| Stop::new()).collect();
    for (i, stop) in stops.iter().enumerate() {
        w.spawn_worker(&format!("replica-{i}"), stop);
    }

    // Act: payments arrive; the replica holding the wallet stops a third of the way.
    w.publish(&events[..15].iter().map(|(e, _)| e.clone()).collect::<Vec<_>>()).await;
    w.wait_confirmed(&ids[..5], Duration::from_secs(60)).await;
    let holder: String =
        lessor_store::on_db!(w.db(), pool => sqlx::query_scalar("SELECT holder FROM blockchain_wallets")
        .fetch_one(pool)
        .await)
        .unwrap();
    let index: usize = holder.trim_start_matches("replica-").parse().unwrap();
    stops[index].stop();
    w.publish(&events[15..].iter().map(|(e, _)| e.clone()).collect::<Vec<_>>()).await;
    w.wait_confirmed(&ids, Duration::from_secs(120)).await;
    for stop in &stops {
        stop.stop();
    }

    // Assert
    let executed = w.peer.transfers(w.wallet()).await;
    assert_eq!(executed.len(), 30);
    assert_seqnos_strictly_increasing(&executed);
    let paid: HashSet<Uuid> = w.transfers_by_payment().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(paid.len(), 30);
}

on_each_engine!(
    a_hundred_payments_make_a_hundred_transfers_in_seqno_order,
    several_workers_share_one_wallet_without_reusing_a_seqno,
);
