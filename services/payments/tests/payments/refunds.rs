//! Refunds: partial and full, never more than captured (also concurrently), idempotent.

use std::sync::Arc;

use chrono::Utc;
use lessor_events::EventData;
use lessor_payments::{
    Begin, Conflict, Fingerprint, GatewayError, IdempotencyConfig, IdempotencyKey, IdempotencyStore, NewPayment,
    NewRefund, Payment, PaymentError, PaymentService, PaymentStatus, REFUND_PAYMENT, RefundStatus, Scope, Viewer,
};
use serde_json::json;

use crate::helpers::{Engine, RefundStep, ScriptedGateway, TestDb, today};
use crate::on_each_engine;

/// A succeeded payment of `amount` by a new customer; the payment and a staff viewer.
async fn paid(t: &TestDb, service: &PaymentService, amount: i64) -> (Payment, Viewer) {
    let customer = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let body = json!({"lease_id": lease_id, "amount": amount, "currency": "EUR", "provider": "stripe", "payment_method": "tok"});
    let payment = service.create(customer, &NewPayment::parse(&body, today()).unwrap(), None).await.unwrap();
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    (payment, staff)
}

fn refund_of(amount: Option<i64>) -> NewRefund {
    NewRefund { amount, reason: Some("goodwill".into()) }
}

async fn partial_then_full_refunds(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, staff) = paid(&t, &service, 10_000).await;

    let partial = service.refund(staff, payment.id, &refund_of(Some(3_000)), None).await.unwrap();
    assert_eq!((partial.status, partial.amount), (RefundStatus::Succeeded, 3_000));
    let after_partial = service.get(staff, payment.id).await.unwrap();
    assert_eq!(after_partial.status, PaymentStatus::PartiallyRefunded);
    assert_eq!((after_partial.refunded_amount, after_partial.refund_pending_amount), (3_000, 0));

    let rest = service.refund(staff, payment.id, &refund_of(None), None).await.unwrap();
    assert_eq!((rest.status, rest.amount), (RefundStatus::Succeeded, 7_000));
    let refunded = service.get(staff, payment.id).await.unwrap();
    assert_eq!((refunded.status, refunded.refunded_amount), (PaymentStatus::Refunded, 10_000));

    let more = service.refund(staff, payment.id, &refund_of(Some(1)), None).await;
    assert!(matches!(more, Err(PaymentError::Conflict(Conflict::NotRefundable(PaymentStatus::Refunded)))), "{more:?}");

    let events: Vec<_> = t.events().await.into_iter().skip(1).collect();
    let amounts: Vec<i64> = events
        .iter()
        .map(|e| match &e.data {
            EventData::PaymentRefunded(r) => {
                assert_eq!(r.payment_id, payment.id);
                assert!(r.provider_refund_id.starts_with("re_"));
                r.amount
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(amounts, [3_000, 7_000]);
    assert_eq!(service.refunds(staff, payment.id).await.unwrap().len(), 2);
}

async fn concurrent_refunds_never_exceed_the_captured_amount(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = Arc::new(t.service(&gateway));
    let (payment, staff) = paid(&t, &service, 10_000).await;

    // Eight refunds of 3 000 at once: only three fit in 10 000.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.refund(staff, payment.id, &refund_of(Some(3_000)), None).await })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(refund) => {
                assert_eq!(refund.status, RefundStatus::Succeeded);
                ok += 1;
            }
            Err(PaymentError::Invalid(e)) => {
                assert!(e.reason_for("amount").is_some(), "{e}");
                refused += 1;
            }
            Err(other) => panic!("{other:?}"),
        }
    }

    assert_eq!((ok, refused), (3, 5));
    let after = service.get(staff, payment.id).await.unwrap();
    assert_eq!((after.refunded_amount, after.refund_pending_amount), (9_000, 0));
    assert_eq!(after.status, PaymentStatus::PartiallyRefunded);
    assert_eq!(gateway.refunds_made(), 3, "the provider was asked only for the refunds that fit");
    assert_eq!(gateway.refund_calls().len(), 3);
}

async fn refunds_are_idempotent_by_their_own_key(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let keys = IdempotencyStore::new(t.db.clone(), IdempotencyConfig::default());
    let (payment, staff) = paid(&t, &service, 10_000).await;
    let scope = Scope::user(staff.user_id, REFUND_PAYMENT);
    let key = IdempotencyKey::parse("refund-1").unwrap();
    let body = json!({"payment_id": payment.id, "body": {"amount": 2_500}});
    let fp = Fingerprint::of_json(&body);

    let Begin::New(claim) = keys.begin(&scope, &key, &fp).await.unwrap() else { panic!("new") };
    let refund = service.refund(staff, payment.id, &refund_of(Some(2_500)), Some(&claim)).await.unwrap();
    keys.complete(&claim, 201, &refund.id.to_string()).await.unwrap();

    assert_eq!(
        keys.begin(&scope, &key, &fp).await.unwrap(),
        Begin::Replay { status: 201, body: refund.id.to_string() }
    );
    // A retry whose first attempt died before answering gets the same refund back.
    let Begin::New(other) = keys.begin(&scope, &IdempotencyKey::parse("refund-2").unwrap(), &fp).await.unwrap() else {
        panic!("new")
    };
    let second = service.refund(staff, payment.id, &refund_of(Some(2_500)), Some(&other)).await.unwrap();
    let later = Utc::now() + chrono::Duration::minutes(5);
    let Begin::New(retry) =
        keys.begin_at(&scope, &IdempotencyKey::parse("refund-2").unwrap(), &fp, later).await.unwrap()
    else {
        panic!("taken over")
    };
    let recovered = service.refund(staff, payment.id, &refund_of(Some(2_500)), Some(&retry)).await.unwrap();
    assert_eq!(recovered.id, second.id);
    assert_eq!(service.get(staff, payment.id).await.unwrap().refunded_amount, 5_000);
    assert_eq!(gateway.refunds_made(), 2);
}

async fn only_staff_refund_and_refusals_release_the_amount(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, staff) = paid(&t, &service, 10_000).await;
    let owner = Viewer { user_id: payment.owner_id, is_staff: false };

    assert!(matches!(service.refund(owner, payment.id, &refund_of(None), None).await, Err(PaymentError::Forbidden)));
    let too_much = service.refund(staff, payment.id, &refund_of(Some(10_001)), None).await;
    assert!(matches!(too_much, Err(PaymentError::Invalid(_))), "{too_much:?}");
    assert_eq!(t.count("refunds").await, 0);

    gateway.on_refund(RefundStep::Refuse(GatewayError::Declined("balance too low".into())));
    let declined = service.refund(staff, payment.id, &refund_of(Some(4_000)), None).await.unwrap();
    assert_eq!((declined.status, declined.failure_code.as_deref()), (RefundStatus::Failed, Some("declined")));
    let after = service.get(staff, payment.id).await.unwrap();
    assert_eq!((after.status, after.refunded_amount, after.refund_pending_amount), (PaymentStatus::Succeeded, 0, 0));
    // The whole amount is refundable again.
    let full = service.refund(staff, payment.id, &refund_of(None), None).await.unwrap();
    assert_eq!(full.amount, 10_000);
}

async fn a_refund_with_an_unknown_outcome_is_reconciled(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, staff) = paid(&t, &service, 10_000).await;

    gateway.on_refund(RefundStep::RefundThenLose(GatewayError::OutcomeUnknown("timeout".into())));
    let pending = service.refund(staff, payment.id, &refund_of(Some(6_000)), None).await.unwrap();
    assert_eq!(pending.status, RefundStatus::Pending);
    assert!(pending.reconcile_after.is_some());
    let reserved = service.get(staff, payment.id).await.unwrap();
    assert_eq!((reserved.refunded_amount, reserved.refund_pending_amount), (0, 6_000));
    // The reservation holds while the outcome is unknown.
    let over = service.refund(staff, payment.id, &refund_of(Some(5_000)), None).await;
    assert!(matches!(over, Err(PaymentError::Invalid(_))), "{over:?}");

    let report = service.reconcile_due(Utc::now() + chrono::Duration::minutes(2), 10).await.unwrap();
    assert_eq!((report.refunds_checked, report.refunds_resolved), (1, 1));
    let refunds = service.refunds(staff, payment.id).await.unwrap();
    assert_eq!(refunds.iter().filter(|r| r.status == RefundStatus::Succeeded).count(), 1);
    let after = service.get(staff, payment.id).await.unwrap();
    assert_eq!(
        (after.status, after.refunded_amount, after.refund_pending_amount),
        (PaymentStatus::PartiallyRefunded, 6_000, 0)
    );
    assert_eq!(gateway.refunds_made(), 1, "asked twice, refunded once");
    let calls = gateway.refund_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].refund_id, &calls[0].idempotency_key), (calls[1].refund_id, &calls[1].idempotency_key));
}

/// The host refused the provider's request for its destination: the refund fails at once with
/// `provider_egress_denied`, releases its amount and is not reconciled.
async fn a_refund_refused_egress_fails_at_once(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, staff) = paid(&t, &service, 10_000).await;

    let denied = "https://refunds.example:443 was not granted";
    gateway.on_refund(RefundStep::Refuse(GatewayError::EgressDenied(denied.into())));
    let refund = service.refund(staff, payment.id, &refund_of(Some(4_000)), None).await.unwrap();
    assert_eq!((refund.status, refund.failure_code.as_deref()), (RefundStatus::Failed, Some("provider_egress_denied")));
    assert!(refund.failure_message.as_deref().is_some_and(|m| m.contains("https://refunds.example:443")), "{refund:?}");
    let after = service.get(staff, payment.id).await.unwrap();
    assert_eq!((after.refunded_amount, after.refund_pending_amount), (0, 0));
    let report = service.reconcile_due(Utc::now() + chrono::Duration::hours(3), 10).await.unwrap();
    assert_eq!(report.refunds_checked, 0, "{report:?}");
    assert_eq!(gateway.refund_calls().len(), 1, "the provider is not asked again");
}

on_each_engine!(
    a_refund_refused_egress_fails_at_once,
    partial_then_full_refunds,
    concurrent_refunds_never_exceed_the_captured_amount,
    refunds_are_idempotent_by_their_own_key,
    only_staff_refund_and_refusals_release_the_amount,
    a_refund_with_an_unknown_outcome_is_reconciled,
);
