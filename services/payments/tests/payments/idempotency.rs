//! Idempotency keys: one winner under concurrency, replay, mismatch, in-flight, takeover, expiry.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lessor_payments::{
    Begin, CREATE_PAYMENT, Conflict, Fingerprint, IdempotencyConfig, IdempotencyError, IdempotencyKey,
    IdempotencyStore, NewPayment, PaymentError, PaymentStatus, Released, Scope,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Engine, ScriptedGateway, TestDb, today};
use crate::on_each_engine;

fn store(t: &TestDb) -> IdempotencyStore {
    IdempotencyStore::new(t.db.clone(), IdempotencyConfig::new(Duration::ZERO, Duration::from_secs(60)))
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::parse(s).unwrap()
}

fn claim_of(begin: Begin) -> lessor_payments::Claim {
    match begin {
        Begin::New(claim) => claim,
        other => panic!("expected New, got {other:?}"),
    }
}

async fn fifty_concurrent_begins_with_one_key_give_one_new(engine: Engine) {
    let t = TestDb::new(engine).await;
    let keys = Arc::new(store(&t));
    let scope = Scope::user(Uuid::new_v4(), CREATE_PAYMENT);
    let fingerprint = Fingerprint::of_json(&json!({"amount": 100}));

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (keys, scope, fingerprint) = (keys.clone(), scope.clone(), fingerprint.clone());
            tokio::spawn(async move { keys.begin(&scope, &key("order-42"), &fingerprint).await.unwrap() })
        })
        .collect();
    let mut new = 0;
    let mut in_flight = 0;
    for task in tasks {
        match task.await.unwrap() {
            Begin::New(_) => new += 1,
            Begin::InFlight => in_flight += 1,
            other => panic!("{other:?}"),
        }
    }

    assert_eq!((new, in_flight), (1, 49));
    assert_eq!(t.count("idempotency_keys").await, 1);
}

async fn a_completed_key_replays_and_another_body_is_a_mismatch(engine: Engine) {
    let t = TestDb::new(engine).await;
    let keys = store(&t);
    let user = Uuid::new_v4();
    let scope = Scope::user(user, CREATE_PAYMENT);
    let body = json!({"amount": 100, "currency": "EUR"});
    let same_body_reordered = json!({"currency": "EUR", "amount": 100});
    let other_body = json!({"amount": 200, "currency": "EUR"});

    let claim = claim_of(keys.begin(&scope, &key("k1"), &Fingerprint::of_json(&body)).await.unwrap());
    // In flight: the same request waits, another request under the key is refused.
    assert_eq!(keys.begin(&scope, &key("k1"), &Fingerprint::of_json(&body)).await.unwrap(), Begin::InFlight);
    assert_eq!(keys.begin(&scope, &key("k1"), &Fingerprint::of_json(&other_body)).await.unwrap(), Begin::Mismatch);

    keys.complete(&claim, 201, r#"{"id":"p1"}"#).await.unwrap();

    let replay = keys.begin(&scope, &key("k1"), &Fingerprint::of_json(&same_body_reordered)).await.unwrap();
    assert_eq!(replay, Begin::Replay { status: 201, body: r#"{"id":"p1"}"#.into() });
    assert_eq!(keys.begin(&scope, &key("k1"), &Fingerprint::of_json(&other_body)).await.unwrap(), Begin::Mismatch);
    // Other users and other operations have keys of their own.
    let other_user = Scope::user(Uuid::new_v4(), CREATE_PAYMENT);
    assert!(matches!(keys.begin(&other_user, &key("k1"), &Fingerprint::of_json(&body)).await.unwrap(), Begin::New(_)));
    // Completing twice is refused: the claim is spent.
    assert!(matches!(keys.complete(&claim, 500, "{}").await, Err(IdempotencyError::LostClaim)));
}

async fn a_crashed_in_flight_key_is_taken_over_after_its_lock(engine: Engine) {
    let t = TestDb::new(engine).await;
    let keys = store(&t);
    let scope = Scope::system("test");
    let fp = Fingerprint::of_bytes(b"request");
    let t0 = Utc::now();

    let first = claim_of(keys.begin_at(&scope, &key("k"), &fp, t0).await.unwrap());
    let soon = t0 + chrono::Duration::seconds(59);
    assert_eq!(keys.begin_at(&scope, &key("k"), &fp, soon).await.unwrap(), Begin::InFlight);

    let later = t0 + chrono::Duration::seconds(61);
    let second = claim_of(keys.begin_at(&scope, &key("k"), &fp, later).await.unwrap());
    assert_eq!(second.recovered(), None, "the first request had created nothing");
    // The first request wakes up: its claim is gone.
    assert!(matches!(keys.complete(&first, 201, "{}").await, Err(IdempotencyError::LostClaim)));
    assert_eq!(keys.release(&first).await.unwrap(), Released::NotHeld);
    keys.complete_at(&second, 201, "second", later).await.unwrap();
    assert_eq!(
        keys.begin_at(&scope, &key("k"), &fp, later).await.unwrap(),
        Begin::Replay { status: 201, body: "second".into() }
    );
}

async fn a_taken_over_key_recovers_the_payment_instead_of_charging_again(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let keys = store(&t);
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let body = json!({
        "lease_id": lease_id, "amount": 45_000, "currency": "EUR",
        "provider": "stripe", "payment_method": "pm_card_visa",
    });
    let new = NewPayment::parse(&body, today()).unwrap();
    let scope = Scope::user(customer.user_id, CREATE_PAYMENT);
    let fp = Fingerprint::of_json(&body);

    // The first request creates the payment, then its process dies before `complete`.
    let first = claim_of(keys.begin(&scope, &key("pay-1"), &fp).await.unwrap());
    let created = service.create(customer, &new, Some(&first)).await.unwrap();

    // A retry after the lock expired takes the key over and gets that payment back.
    let later = Utc::now() + chrono::Duration::seconds(120);
    let retry = claim_of(keys.begin_at(&scope, &key("pay-1"), &fp, later).await.unwrap());
    assert_eq!(retry.recovered(), Some(created.id));
    let recovered = service.create(customer, &new, Some(&retry)).await.unwrap();
    assert_eq!((recovered.id, recovered.status), (created.id, PaymentStatus::Succeeded));
    assert_eq!(gateway.charges(), 1);
    assert_eq!(gateway.process_calls().len(), 1);
    assert_eq!(t.count("payments").await, 1);

    // The stale claim cannot create another payment.
    let stale = service.create(customer, &new, Some(&first)).await;
    assert!(matches!(stale, Err(PaymentError::Conflict(Conflict::KeyTakenOver))), "{stale:?}");
    assert_eq!(t.count("payments").await, 1);
}

async fn release_forgets_a_key_that_created_nothing(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let keys = store(&t);
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let scope = Scope::user(customer.user_id, CREATE_PAYMENT);
    let fp = Fingerprint::of_bytes(b"x");

    let claim = claim_of(keys.begin(&scope, &key("a"), &fp).await.unwrap());
    assert_eq!(keys.release(&claim).await.unwrap(), Released::Forgotten);
    let again = claim_of(keys.begin(&scope, &key("a"), &Fingerprint::of_bytes(b"corrected")).await.unwrap());
    assert_eq!(again.recovered(), None);

    // A claim linked to a payment is only unlocked: the next request recovers the payment.
    let new = NewPayment::parse(
        &json!({"lease_id": lease_id, "amount": 100, "currency": "EUR", "provider": "stripe", "payment_method": "tok"}),
        today(),
    )
    .unwrap();
    let payment = service.create(customer, &new, Some(&again)).await.unwrap();
    assert_eq!(keys.release(&again).await.unwrap(), Released::Unlocked);
    let next = claim_of(keys.begin(&scope, &key("a"), &Fingerprint::of_bytes(b"corrected")).await.unwrap());
    assert_eq!(next.recovered(), Some(payment.id));
}

async fn expired_keys_start_afresh_and_are_pruned(engine: Engine) {
    let t = TestDb::new(engine).await;
    let keys = store(&t);
    let scope = Scope::system("test");
    let t0 = Utc::now();
    let day = chrono::Duration::hours(24);

    let claim = claim_of(keys.begin_at(&scope, &key("old"), &Fingerprint::of_bytes(b"1"), t0).await.unwrap());
    keys.complete_at(&claim, 200, "done", t0).await.unwrap();
    let other = claim_of(keys.begin_at(&scope, &key("other"), &Fingerprint::of_bytes(b"1"), t0).await.unwrap());
    keys.complete_at(&other, 200, "done", t0).await.unwrap();

    // Kept for 24 hours…
    let almost = t0 + day - chrono::Duration::seconds(1);
    assert!(matches!(
        keys.begin_at(&scope, &key("old"), &Fingerprint::of_bytes(b"2"), almost).await.unwrap(),
        Begin::Mismatch
    ));
    assert_eq!(keys.prune(almost).await.unwrap(), 0);
    // …then a new request under the key starts afresh, even with another body.
    let after = t0 + day + chrono::Duration::seconds(1);
    assert!(matches!(
        keys.begin_at(&scope, &key("old"), &Fingerprint::of_bytes(b"2"), after).await.unwrap(),
        Begin::New(_)
    ));
    assert_eq!(keys.prune(after).await.unwrap(), 1, "only the untouched expired key");
    assert_eq!(t.count("idempotency_keys").await, 1);
}

on_each_engine!(
    fifty_concurrent_begins_with_one_key_give_one_new,
    a_completed_key_replays_and_another_body_is_a_mismatch,
    a_crashed_in_flight_key_is_taken_over_after_its_lock,
    a_taken_over_key_recovers_the_payment_instead_of_charging_again,
    release_forgets_a_key_that_created_nothing,
    expired_keys_start_afresh_and_are_pruned,
);
