//! Provider webhook events: applied once, never backwards, returns, refunds, unknown payments.

use lessor_events::EventData;
use lessor_payments::{
    EventAmount, IgnoredReason, NewPayment, NewRefund, NormalizedEvent, PAYMENT_RETURNED, Payment, PaymentService,
    PaymentStatus, ProviderEventKind, ProviderPaymentStatus, ProviderRefundStatus, RefundStatus, Viewer,
    WebhookOutcome,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Engine, RefundStep, ScriptedGateway, Step, TestDb, today};
use crate::on_each_engine;

/// A payment of an installment answered with `status` by the provider; the payment, its owner.
async fn with_status(
    t: &TestDb,
    service: &PaymentService,
    gateway: &ScriptedGateway,
    status: ProviderPaymentStatus,
) -> (Payment, Viewer) {
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let body = json!({
        "lease_id": lease_id, "installment_id": installments[0].id, "amount": 45_000, "currency": "EUR",
        "provider": "bank", "payment_method": "mandate-1",
    });
    gateway.on_process(Step::Answer(status));
    let payment = service.create(customer, &NewPayment::parse(&body, today()).unwrap(), None).await.unwrap();
    (payment, customer)
}

fn event(id: &str, kind: ProviderEventKind, tx: &str) -> NormalizedEvent {
    NormalizedEvent {
        event_id: id.into(),
        kind,
        provider_tx_id: tx.into(),
        provider_refund_id: None,
        amount: None,
        reason_code: None,
        occurred_at: None,
    }
}

async fn the_same_event_twice_is_applied_once(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, owner) = with_status(&t, &service, &gateway, ProviderPaymentStatus::Processing).await;
    let tx = payment.provider_tx_id.clone().unwrap();
    let settled = event("evt_1", ProviderEventKind::PaymentSettled, &tx);

    let first = service.apply_provider_event("bank", &settled).await.unwrap();
    let second = service.apply_provider_event("bank", &settled).await.unwrap();

    assert_eq!(first, WebhookOutcome::Applied { payment_id: payment.id, status: PaymentStatus::Succeeded });
    assert_eq!(second, WebhookOutcome::Duplicate);
    assert!(first.acknowledge() && second.acknowledge());
    assert_eq!(service.get(owner, payment.id).await.unwrap().status, PaymentStatus::Succeeded);
    assert_eq!(t.installment_status(payment.installment_id.unwrap()).await, "paid");
    let events = t.events().await;
    assert_eq!(events.len(), 1);
    assert!(
        matches!(&events[0].data, EventData::PaymentCompleted(c) if c.payment_id == payment.id && c.provider_tx_id == tx)
    );
    assert_eq!(t.count("webhook_events").await, 1);
    // The same event id from another provider is another event (about nothing of ours there).
    assert_eq!(service.apply_provider_event("stripe", &settled).await.unwrap(), WebhookOutcome::Unmatched);
}

async fn stale_events_never_move_a_payment_backwards(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, owner) = with_status(&t, &service, &gateway, ProviderPaymentStatus::Processing).await;
    let tx = payment.provider_tx_id.clone().unwrap();

    let succeeded = service.apply_provider_event("bank", &event("e1", ProviderEventKind::PaymentSucceeded, &tx)).await;
    let processing =
        service.apply_provider_event("bank", &event("e2", ProviderEventKind::PaymentProcessing, &tx)).await;
    let failed = service.apply_provider_event("bank", &event("e3", ProviderEventKind::PaymentFailed, &tx)).await;
    let settled = service.apply_provider_event("bank", &event("e4", ProviderEventKind::PaymentSettled, &tx)).await;

    assert!(matches!(succeeded.unwrap(), WebhookOutcome::Applied { status: PaymentStatus::Succeeded, .. }));
    assert_eq!(processing.unwrap(), WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::Stale });
    assert_eq!(failed.unwrap(), WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::Stale });
    assert_eq!(
        settled.unwrap(),
        WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::AlreadyThere }
    );
    assert_eq!(service.get(owner, payment.id).await.unwrap().status, PaymentStatus::Succeeded);
    assert_eq!(t.events().await.len(), 1, "one payment.completed, nothing else");
    assert_eq!(t.count("webhook_events").await, 4, "stale events are recorded, so they are not re-judged");
}

async fn a_webhook_resolves_requires_action_and_failures(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, owner) = with_status(&t, &service, &gateway, ProviderPaymentStatus::RequiresAction).await;
    let tx = payment.provider_tx_id.clone().unwrap();

    service.apply_provider_event("bank", &event("a1", ProviderEventKind::PaymentProcessing, &tx)).await.unwrap();
    let mut failed = event("a2", ProviderEventKind::PaymentFailed, &tx);
    failed.reason_code = Some("AM04".into());
    service.apply_provider_event("bank", &failed).await.unwrap();

    let after = service.get(owner, payment.id).await.unwrap();
    assert_eq!((after.status, after.failure_code.as_deref()), (PaymentStatus::Failed, Some("declined")));
    assert_eq!(after.failure_message.as_deref(), Some("AM04"));
    let events = t.events().await;
    assert!(matches!(&events[..], [e] if matches!(&e.data, EventData::PaymentFailed(f) if f.payment_id == payment.id)));
    assert_eq!(t.installment_status(payment.installment_id.unwrap()).await, "due");
}

async fn a_settled_payment_can_be_returned(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, owner) = with_status(&t, &service, &gateway, ProviderPaymentStatus::Processing).await;
    let tx = payment.provider_tx_id.clone().unwrap();
    let mut returned = event("r1", ProviderEventKind::PaymentReturned, &tx);
    returned.reason_code = Some("MD06".into());

    // A return that overtakes the settlement is early: not recorded, to be delivered again.
    let early = service.apply_provider_event("bank", &returned).await.unwrap();
    assert_eq!(early, WebhookOutcome::Early { payment_id: payment.id, status: PaymentStatus::Processing });
    assert!(!early.acknowledge());
    assert_eq!(t.count("webhook_events").await, 0);

    service.apply_provider_event("bank", &event("s1", ProviderEventKind::PaymentSettled, &tx)).await.unwrap();
    assert_eq!(t.installment_status(payment.installment_id.unwrap()).await, "paid");
    let applied = service.apply_provider_event("bank", &returned).await.unwrap();

    assert_eq!(applied, WebhookOutcome::Applied { payment_id: payment.id, status: PaymentStatus::Returned });
    let after = service.get(owner, payment.id).await.unwrap();
    assert_eq!((after.status, after.return_reason.as_deref()), (PaymentStatus::Returned, Some("MD06")));
    assert_eq!(t.installment_status(payment.installment_id.unwrap()).await, "due", "the installment is open again");
    let events = t.events().await;
    assert_eq!(events.len(), 2);
    match &events[1].data {
        EventData::Other { event_type, data } => {
            assert_eq!(event_type, PAYMENT_RETURNED);
            assert_eq!(data["payment_id"], json!(payment.id));
            assert_eq!(data["reason_code"], "MD06");
            assert_eq!(data["amount"], 45_000);
        }
        other => panic!("{other:?}"),
    }
    // Nothing moves a returned payment.
    let late =
        service.apply_provider_event("bank", &event("s2", ProviderEventKind::PaymentSucceeded, &tx)).await.unwrap();
    assert_eq!(late, WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::Stale });
}

async fn unknown_payments_and_odd_events(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, owner) = with_status(&t, &service, &gateway, ProviderPaymentStatus::Processing).await;
    let tx = payment.provider_tx_id.clone().unwrap();

    let unknown = service
        .apply_provider_event("bank", &event("u1", ProviderEventKind::PaymentSucceeded, "tx_nope"))
        .await
        .unwrap();
    // No payment of this provider is waiting for its transaction id: not ours, acknowledged.
    assert_eq!(unknown, WebhookOutcome::Unmatched);
    assert!(unknown.acknowledge());

    let mut wrong_amount = event("m1", ProviderEventKind::PaymentSucceeded, &tx);
    wrong_amount.amount = Some(EventAmount { amount: 1, currency: "EUR".into() });
    let mismatch = service.apply_provider_event("bank", &wrong_amount).await.unwrap();
    assert_eq!(mismatch, WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::AmountMismatch });
    let flagged = service.get(owner, payment.id).await.unwrap();
    assert_eq!((flagged.status, flagged.needs_attention), (PaymentStatus::Processing, true));

    let dispute =
        service.apply_provider_event("bank", &event("d1", ProviderEventKind::DisputeOpened, &tx)).await.unwrap();
    assert_eq!(dispute, WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::ForOperator });
    assert!(service.apply_provider_event("bank", &event("", ProviderEventKind::PaymentSucceeded, &tx)).await.is_err());
    let staff = t.user(true).await;
    assert_eq!(service.needing_attention(staff, 10).await.unwrap().len(), 1);
    assert!(service.clear_attention(staff, payment.id).await.unwrap());
    assert!(!service.get(owner, payment.id).await.unwrap().needs_attention);
    assert_eq!(t.count("webhook_events").await, 2);
    assert!(t.events().await.is_empty());
}

async fn refund_webhooks_finish_pending_refunds(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let (payment, _) = with_status(&t, &service, &gateway, ProviderPaymentStatus::Succeeded).await;
    let staff = t.user(true).await;

    gateway.on_refund(RefundStep::Answer(ProviderRefundStatus::Pending));
    gateway.on_refund(RefundStep::Answer(ProviderRefundStatus::Pending));
    let first = service.refund(staff, payment.id, &NewRefund { amount: Some(45_000), reason: None }, None).await;
    let first = first.unwrap();
    assert_eq!(first.status, RefundStatus::Pending);
    assert_eq!(first.reconcile_after, None, "accepted by the provider: the webhook finishes it");
    let refund_tx = first.provider_refund_id.clone().unwrap();

    let failed = service.apply_provider_event("bank", &event("rf1", ProviderEventKind::RefundFailed, &refund_tx)).await;
    assert!(matches!(failed.unwrap(), WebhookOutcome::RefundApplied { status: RefundStatus::Failed, .. }));
    assert_eq!(service.get(staff, payment.id).await.unwrap().refund_pending_amount, 0);

    let second = service.refund(staff, payment.id, &NewRefund { amount: None, reason: None }, None).await.unwrap();
    // The provider names the payment rather than the refund: the payment's only pending refund.
    let by_payment = event("rs1", ProviderEventKind::RefundSucceeded, payment.provider_tx_id.as_deref().unwrap());
    let applied = service.apply_provider_event("bank", &by_payment).await.unwrap();
    assert_eq!(
        applied,
        WebhookOutcome::RefundApplied { payment_id: payment.id, refund_id: second.id, status: RefundStatus::Succeeded }
    );
    assert_eq!(service.apply_provider_event("bank", &by_payment).await.unwrap(), WebhookOutcome::Duplicate);
    let after = service.get(staff, payment.id).await.unwrap();
    assert_eq!((after.status, after.refunded_amount), (PaymentStatus::Refunded, 45_000));
    let refunded: Vec<_> =
        t.events().await.into_iter().filter(|e| matches!(e.data, EventData::PaymentRefunded(_))).collect();
    assert_eq!(refunded.len(), 1);
    let unknown = event("rs2", ProviderEventKind::RefundSucceeded, &Uuid::new_v4().to_string());
    assert_eq!(service.apply_provider_event("bank", &unknown).await.unwrap(), WebhookOutcome::Unmatched);
}

async fn deliver_again_only_within_the_retry_window(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway).with_webhook_retry_window(std::time::Duration::from_millis(300));
    let (payment, owner) = with_status(&t, &service, &gateway, ProviderPaymentStatus::Processing).await;
    let tx = payment.provider_tx_id.clone().unwrap();
    let mut returned = event("w1", ProviderEventKind::PaymentReturned, &tx);
    returned.reason_code = Some("MD06".into());
    let early = service.apply_provider_event("bank", &returned).await.unwrap();
    assert!(matches!(early, WebhookOutcome::Early { .. }), "{early:?}");

    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    // Past the window: recorded, acknowledged, the payment flagged for an operator.
    let past = service.apply_provider_event("bank", &returned).await.unwrap();
    assert_eq!(past, WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::PastWindow });
    assert!(past.acknowledge());
    assert!(service.get(owner, payment.id).await.unwrap().needs_attention);
    assert_eq!(service.apply_provider_event("bank", &returned).await.unwrap(), WebhookOutcome::Duplicate);
    let stranger = event("w2", ProviderEventKind::PaymentSettled, "col_x");
    assert_eq!(service.apply_provider_event("bank", &stranger).await.unwrap(), WebhookOutcome::Unmatched);
}

on_each_engine!(
    deliver_again_only_within_the_retry_window,
    the_same_event_twice_is_applied_once,
    stale_events_never_move_a_payment_backwards,
    a_webhook_resolves_requires_action_and_failures,
    a_settled_payment_can_be_returned,
    unknown_payments_and_odd_events,
    refund_webhooks_finish_pending_refunds,
);
