//! Reconciliation of payments whose outcome is unknown: same id and key, backoff, operator flag.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lessor_events::EventData;
use lessor_payments::{GatewayError, NewPayment, PaymentService, PaymentStatus, ReconcilePolicy};
use serde_json::json;

use crate::helpers::{Engine, ScriptedGateway, Step, TestDb, today};
use crate::on_each_engine;

async fn an_unknown_outcome_is_resolved_with_exactly_one_charge(engine: Engine) {
    // Arrange: the provider charges, but the answer is lost.
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let body = json!({
        "lease_id": lease_id, "installment_id": installments[0].id, "amount": 45_000, "currency": "EUR",
        "provider": "stripe", "payment_method": "pm_card_visa",
    });
    gateway.on_process(Step::ChargeThenLose(GatewayError::OutcomeUnknown("sandbox trap".into())));
    let pending = service.create(customer, &NewPayment::parse(&body, today()).unwrap(), None).await.unwrap();
    assert_eq!(pending.status, PaymentStatus::Pending);

    // Act: not due yet, then due.
    let early = service.reconcile_due(Utc::now(), 10).await.unwrap();
    let due_at = pending.reconcile_after.unwrap() + chrono::Duration::seconds(1);
    let report = service.reconcile_due(due_at, 10).await.unwrap();

    // Assert
    assert_eq!(early.payments_checked, 0);
    assert_eq!((report.payments_checked, report.payments_resolved), (1, 1));
    let resolved = service.get(customer, pending.id).await.unwrap();
    assert_eq!((resolved.status, resolved.process_attempts), (PaymentStatus::Succeeded, 2));
    assert_eq!(resolved.reconcile_after, None);
    assert_eq!(gateway.charges(), 1, "charged exactly once");
    let calls = gateway.process_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0], calls[1], "the same payment id, idempotency key and request");
    assert_eq!(t.installment_status(installments[0].id).await, "paid");
    let completed: Vec<_> =
        t.events().await.into_iter().filter(|e| matches!(e.data, EventData::PaymentCompleted(_))).collect();
    assert_eq!(completed.len(), 1);
    // Nothing left to do.
    assert_eq!(service.reconcile_due(due_at + chrono::Duration::days(1), 10).await.unwrap().payments_checked, 0);
}

async fn reconciliation_backs_off_then_leaves_the_payment_to_an_operator(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let policy =
        ReconcilePolicy { first_delay: Duration::from_secs(60), max_delay: Duration::from_secs(600), max_attempts: 3 };
    let service = PaymentService::new(t.db.clone(), gateway.clone(), policy);
    let customer = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    for _ in 0..3 {
        gateway.on_process(Step::Refuse(GatewayError::Unavailable("502".into())));
    }
    let body =
        json!({"lease_id": lease_id, "amount": 900, "currency": "EUR", "provider": "stripe", "payment_method": "tok"});
    let payment = service.create(customer, &NewPayment::parse(&body, today()).unwrap(), None).await.unwrap();
    let t1 = payment.reconcile_after.unwrap();

    // Second call after 60 s; the third only 120 s after that.
    let second = service.reconcile_due(t1, 10).await.unwrap();
    assert_eq!((second.payments_checked, second.payments_resolved), (1, 0));
    let after_second = service.get(staff, payment.id).await.unwrap();
    let t2 = after_second.reconcile_after.unwrap();
    assert_eq!((t2 - t1).num_seconds(), 120);
    assert_eq!(service.reconcile_due(t2 - chrono::Duration::seconds(1), 10).await.unwrap().payments_checked, 0);
    let third = service.reconcile_due(t2, 10).await.unwrap();
    assert_eq!(third.payments_flagged, 1);

    let flagged = service.get(staff, payment.id).await.unwrap();
    assert_eq!(flagged.status, PaymentStatus::Pending, "never failed silently");
    assert!(flagged.needs_attention);
    assert_eq!((flagged.process_attempts, flagged.reconcile_after), (3, None));
    assert_eq!(service.reconcile_due(t2 + chrono::Duration::days(7), 10).await.unwrap().payments_checked, 0);
    let listed = service.needing_attention(staff, 10).await.unwrap();
    assert_eq!(listed.iter().map(|p| p.id).collect::<Vec<_>>(), [payment.id]);
    assert!(t.events().await.is_empty());

    // An operator puts it back; the provider answers this time.
    assert!(service.retry_reconciliation(staff, payment.id).await.unwrap());
    let report = service.reconcile_due(Utc::now() + chrono::Duration::seconds(1), 10).await.unwrap();
    assert_eq!(report.payments_resolved, 1);
    assert_eq!(service.get(staff, payment.id).await.unwrap().status, PaymentStatus::Succeeded);
    assert_eq!(gateway.process_calls().len(), 4);
}

async fn concurrent_reconcilers_ask_once(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = Arc::new(t.service(&gateway));
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    gateway.on_process(Step::Refuse(GatewayError::OutcomeUnknown("deadline".into())));
    let body =
        json!({"lease_id": lease_id, "amount": 900, "currency": "EUR", "provider": "stripe", "payment_method": "tok"});
    let payment = service.create(customer, &NewPayment::parse(&body, today()).unwrap(), None).await.unwrap();
    let due = payment.reconcile_after.unwrap();

    let runs: Vec<_> = (0..4)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { service.reconcile_due(due, 10).await.unwrap() })
        })
        .collect();
    let mut checked = 0;
    for run in runs {
        checked += run.await.unwrap().payments_checked;
    }

    assert_eq!(checked, 1);
    assert_eq!(gateway.process_calls().len(), 2);
    assert_eq!(service.get(customer, payment.id).await.unwrap().status, PaymentStatus::Succeeded);
}

on_each_engine!(
    an_unknown_outcome_is_resolved_with_exactly_one_charge,
    reconciliation_backs_off_then_leaves_the_payment_to_an_operator,
    concurrent_reconcilers_ask_once,
);
