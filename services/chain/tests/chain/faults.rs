//! The API failing for a while, messages expiring before inclusion, and the wallet contract
//! refusing what it must refuse.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lessor_chain::api::AccountState;
use lessor_chain::wallet::Transfer;
use lessor_chain::{ApiError, ChainStatus, Recipient, TonApi, WalletVersion};
use secrecy::SecretString;
use tonlib_core::cell::{BagOfCells, Cell};
use tonlib_core::tlb_types::block::message::Message;
use tonlib_core::tlb_types::tlb::TLB;

use crate::helpers::{
    Engine, RECIPIENT, Stop, TonPeer, World, api_settings, client, eventually, operator_wallet, payment_completed,
};
use crate::on_each_engine;

async fn the_api_answers_429_and_500_for_a_while_and_the_worker_backs_off(engine: Engine) {
    // Arrange
    let w = World::new(engine, WalletVersion::V4R2).await;
    let (event, payment) = payment_completed(7_700);
    w.peer.fail_next(429, 8).await;

    // Act: rate limited first, then server errors.
    let stop = Stop::new();
    w.spawn_worker("worker", &stop);
    w.publish(&[event]).await;
    eventually(Duration::from_secs(20), "eight 429s served", || async {
        w.peer.stats().await["faulted"].as_u64() == Some(8)
    })
    .await;
    w.peer.fail_next(500, 8).await;
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    stop.stop();

    // Assert: every fault was answered, retried with growing waits, and the transfer made once.
    let stats = w.peer.stats().await;
    assert_eq!(stats["faulted"].as_u64(), Some(16));
    let times: Vec<u64> = stats["fault_times"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap()).collect();
    // A request and its 4 retries wait 20 + 40 + 80 + 160 ms at least.
    assert!(times[4] - times[0] >= 300, "{times:?}");
    assert!(w.metrics.api_errors.get() >= 1, "a pass gave up and backed off");
    assert_eq!(w.transfers_by_payment().await.len(), 1);
}

async fn a_message_that_expires_before_inclusion_is_resent_with_a_fresh_seqno(engine: Engine) {
    // Arrange: messages valid for 4 s; a first payment deploys the wallet; then the chain holds
    // what it is sent without including it.
    let mut w = World::new(engine, WalletVersion::V4R2).await;
    w.settings.timing.message_ttl = Duration::from_secs(4);
    w.settings.timing.resend_interval = Duration::from_secs(1);
    let stop = Stop::new();
    w.spawn_worker("worker", &stop);
    let (first, paid) = payment_completed(100);
    w.publish(&[first]).await;
    w.wait_confirmed(&[paid.payment_id], Duration::from_secs(30)).await;
    w.peer.hold(true).await;
    let (event, payment) = payment_completed(200);

    // Act: the message expires unincluded (4 s + 1 s margin) and a new one is signed; then
    // the chain includes what it held, in order.
    w.publish(&[event]).await;
    let store = w.store();
    eventually(Duration::from_secs(20), "a second message signed", || async {
        store.record(payment.payment_id).await.unwrap().is_some_and(|r| r.attempts == 2 && r.status != "expired")
    })
    .await;
    w.peer.hold(false).await;
    let released = w.peer.release().await;
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(20)).await;
    stop.stop();

    // Assert: two messages with the wallet's seqno at the time; the first was refused when
    // the chain got to it (expired), the second executed: one transfer.
    let messages = store.messages_of(payment.payment_id).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].outcome.as_deref(), messages[1].outcome.as_deref()), (Some("expired"), Some("included")));
    assert_eq!((messages[0].seqno, messages[1].seqno), (1, 1), "the wallet's seqno, unused by the expired one");
    assert!(messages[1].valid_until > messages[0].valid_until);
    assert!(released.iter().any(|(hash, executed)| hash == &messages[0].message_hash && !executed), "{released:?}");
    let executed: Vec<_> = w.peer.transfers(w.wallet()).await;
    assert_eq!(executed.len(), 2);
    assert_eq!(executed[1].hash, messages[1].message_hash);
    assert_eq!((executed[1].seqno_before, executed[1].seqno_after), (Some(1), Some(2)));
    let view = store.status_of(payment.payment_id).await.unwrap().unwrap();
    assert_eq!((view.status, view.attempts), (ChainStatus::Confirmed, 2));
    assert_eq!(view.message_hash.as_deref(), Some(messages[1].message_hash.as_str()));
    assert_eq!(w.metrics.expired.get(), 1);
    assert_eq!(w.transfers_by_payment().await.iter().filter(|(id, _)| *id == payment.payment_id).count(), 1);
}

async fn an_unfunded_wallet_holds_payments_back_until_it_is_funded(engine: Engine) {
    // Arrange
    let w = World::unfunded(engine, WalletVersion::V5R1).await;
    let stop = Stop::new();
    w.spawn_worker("worker", &stop);
    let (event, payment) = payment_completed(4_200);

    // Act 1: the payment waits; the record says why.
    w.publish(&[event]).await;
    let store = w.store();
    eventually(Duration::from_secs(20), "the record explains the wait", || async {
        store
            .status_of(payment.payment_id)
            .await
            .unwrap()
            .is_some_and(|v| v.last_error.as_deref().is_some_and(|e| e.contains("holds 0 nanotons")))
    })
    .await;
    let waiting = store.status_of(payment.payment_id).await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.attempts), (ChainStatus::Pending, 0), "no message spent");

    // Act 2: the operator funds the wallet.
    w.peer.fund(w.wallet(), 1_000_000_000).await;
    w.wait_confirmed(&[payment.payment_id], Duration::from_secs(30)).await;
    stop.stop();

    // Assert
    let view = store.status_of(payment.payment_id).await.unwrap().unwrap();
    assert_eq!((view.attempts, view.last_error), (1, None));
    assert_eq!(w.transfers_by_payment().await.len(), 1);
}

on_each_engine!(
    an_unfunded_wallet_holds_payments_back_until_it_is_funded,
    the_api_answers_429_and_500_for_a_while_and_the_worker_backs_off,
    a_message_that_expires_before_inclusion_is_resent_with_a_fresh_seqno,
);

fn unix_now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as u32
}

/// Flips the first bit of the message body (the signature's, for v4).
fn forged(boc: &[u8]) -> Vec<u8> {
    let root = BagOfCells::parse(boc).unwrap().single_root().unwrap();
    let mut message = Message::from_cell(&root).unwrap();
    let body = message.body.value.clone();
    let mut data = body.data().to_vec();
    data[0] ^= 0x80;
    message.body.value = Cell::new(data, body.bit_len(), body.references().to_vec(), false).unwrap().to_arc();
    message.to_boc(false).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wallet_refuses_stale_expired_and_forged_messages() {
    // Arrange: a funded v4r2 wallet, deployed by its first message.
    let peer = TonPeer::start().await;
    let api = client(&peer);
    let wallet = operator_wallet(WalletVersion::V4R2);
    peer.fund(wallet.address(), 5_000_000_000).await;
    let recipient = Recipient::parse(RECIPIENT).unwrap().0;
    let transfer = |seqno: u32, valid_until: u32| Transfer {
        seqno,
        valid_until,
        deploy: true,
        recipient: &recipient,
        amount_nanoton: 1_000,
        comment: "test",
    };
    let first = wallet.sign_transfer(&transfer(0, unix_now() + 60)).unwrap();
    let sent = api.send_boc(&first.boc).await.unwrap();
    assert_eq!(sent.hash, Some(first.hash));
    assert_eq!(sent.hash_norm, Some(first.hash_norm), "both sides normalise the same way");
    let info = api.wallet_info(wallet.address()).await.unwrap();
    assert_eq!((info.state, info.seqno), (AccountState::Active, Some(1)));

    // Act + Assert: every one of these is refused and changes nothing.
    let refused = |result: Result<lessor_chain::api::SentMessage, ApiError>, what: &str| {
        assert!(matches!(result, Err(ApiError::Rejected(_))), "{what}: {result:?}");
    };
    refused(api.send_boc(&first.boc).await, "the same message again");
    refused(api.send_boc(&wallet.sign_transfer(&transfer(0, unix_now() + 60)).unwrap().boc).await, "a stale seqno");
    refused(api.send_boc(&wallet.sign_transfer(&transfer(5, unix_now() + 60)).unwrap().boc).await, "a future seqno");
    refused(api.send_boc(&wallet.sign_transfer(&transfer(1, unix_now() - 1)).unwrap().boc).await, "an expired one");
    let good = wallet.sign_transfer(&transfer(1, unix_now() + 60)).unwrap();
    refused(api.send_boc(&forged(&good.boc)).await, "a forged signature");
    peer.advance_time(120).await;
    refused(api.send_boc(&good.boc).await, "valid_until passed on the chain's clock");
    assert_eq!(api.wallet_info(wallet.address()).await.unwrap().seqno, Some(1));

    // The wallet still takes a proper message.
    let next = wallet.sign_transfer(&transfer(1, unix_now() + 600)).unwrap();
    api.send_boc(&next.boc).await.unwrap();
    assert_eq!(api.wallet_info(wallet.address()).await.unwrap().seqno, Some(2));
    assert_eq!(peer.transfers(wallet.address()).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_is_sent_when_configured() {
    let peer = TonPeer::start_with(&[("TON_PEER_API_KEY", "s3cret")]).await;
    let wallet = operator_wallet(WalletVersion::V4R2);
    let without = lessor_chain::ToncenterClient::new(&api_settings(peer.api_url())).unwrap();
    let err = without.wallet_info(wallet.address()).await.unwrap_err();
    assert!(matches!(err, ApiError::Failed { status: 401, .. }), "{err}");
    let mut settings = api_settings(peer.api_url());
    settings.api_key = Some(SecretString::from("s3cret".to_owned()));
    let with = lessor_chain::ToncenterClient::new(&settings).unwrap();
    assert_eq!(with.wallet_info(wallet.address()).await.unwrap().state, AccountState::Uninitialized);
    assert!(!format!("{with:?}").contains("s3cret"));
}
