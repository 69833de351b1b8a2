//! The create flow: validate, row first, process, outcome + event + installment in one transaction.

use chrono::Utc;
use lessor_events::EventData;
use lessor_payments::{
    Conflict, GatewayError, NewPayment, PaymentCursor, PaymentError, PaymentStatus, ProviderPaymentStatus,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Engine, ScriptedGateway, Step, TestDb, today};
use crate::on_each_engine;

fn payment(lease_id: Uuid, installment_id: Option<Uuid>, amount: i64) -> NewPayment {
    let mut body = json!({
        "lease_id": lease_id, "amount": amount, "currency": "EUR",
        "provider": "stripe", "payment_method": "pm_card_visa",
    });
    if let Some(id) = installment_id {
        body["installment_id"] = json!(id);
    }
    NewPayment::parse(&body, today()).unwrap()
}

async fn a_succeeded_payment_pays_the_installment_with_its_event(engine: Engine) {
    // Arrange
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let installment = &installments[0];

    // Act
    let paid = service.create(customer, &payment(lease_id, Some(installment.id), 45_000), None).await.unwrap();

    // Assert: the payment, the installment and the outbox row agree.
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!((paid.process_attempts, paid.reconcile_after, paid.needs_attention), (1, None, false));
    assert_eq!(paid.owner_id, customer.user_id);
    let tx_id = paid.provider_tx_id.clone().expect("a provider transaction id");
    assert_eq!(t.installment_status(installment.id).await, "paid");
    assert_eq!(t.installment_status(installments[1].id).await, "due");
    let events = t.events().await;
    assert_eq!(events.len(), 1);
    let EventData::PaymentCompleted(completed) = &events[0].data else { panic!("{:?}", events[0]) };
    assert_eq!(completed.payment_id, paid.id);
    assert_eq!(completed.lease_id, lease_id);
    assert_eq!(completed.installment_id, Some(installment.id));
    assert_eq!((completed.amount, completed.currency.as_str()), (45_000, "EUR"));
    assert_eq!((completed.provider.as_str(), completed.provider_tx_id.as_str()), ("stripe", tx_id.as_str()));

    let calls = gateway.process_calls();
    assert_eq!((gateway.validate_calls(), calls.len()), (1, 1));
    assert_eq!(calls[0].payment_id, paid.id);
    assert_eq!(calls[0].idempotency_key, format!("lessor-pay-{}", paid.id));
    assert_eq!(calls[0].payment_method, "pm_card_visa");
    assert!(!format!("{:?}", calls[0]).contains("pm_card_visa"), "payment methods are not printed");
    assert_eq!(service.get(customer, paid.id).await.unwrap(), paid);
}

async fn a_declined_payment_fails_with_its_event(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let installment = installments[0].id;

    // Declined as an outcome, then as an error: both end `failed` with a `payment.failed` event.
    gateway.on_process(Step::Answer(ProviderPaymentStatus::Failed));
    gateway.on_process(Step::Refuse(GatewayError::Declined("card declined".into())));
    let first = service.create(customer, &payment(lease_id, Some(installment), 45_000), None).await.unwrap();
    let second = service.create(customer, &payment(lease_id, Some(installment), 45_000), None).await.unwrap();

    assert_eq!(first.status, PaymentStatus::Failed);
    assert_eq!(first.failure_code.as_deref(), Some("declined"));
    assert_eq!(first.failure_message.as_deref(), Some("insufficient_funds"));
    assert_eq!(second.status, PaymentStatus::Failed);
    assert_eq!(second.failure_message.as_deref(), Some("card declined"));
    assert_eq!(t.installment_status(installment).await, "due");
    let events = t.events().await;
    assert_eq!(events.len(), 2);
    for (event, payment) in events.iter().zip([&first, &second]) {
        let EventData::PaymentFailed(failed) = &event.data else { panic!("{event:?}") };
        assert_eq!((failed.payment_id, failed.code.as_str()), (payment.id, "declined"));
        assert_eq!(failed.installment_id, Some(installment));
    }
    // A failed payment does not block the installment: the third try succeeds.
    let third = service.create(customer, &payment(lease_id, Some(installment), 45_000), None).await.unwrap();
    assert_eq!(third.status, PaymentStatus::Succeeded);
    assert_eq!(t.installment_status(installment).await, "paid");
}

async fn processing_and_requires_action_wait_for_the_provider(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 2, 45_000).await;

    gateway.on_process(Step::Answer(ProviderPaymentStatus::Processing));
    gateway.on_process(Step::Answer(ProviderPaymentStatus::RequiresAction));
    let processing =
        service.create(customer, &payment(lease_id, Some(installments[0].id), 45_000), None).await.unwrap();
    let action = service.create(customer, &payment(lease_id, Some(installments[1].id), 45_000), None).await.unwrap();

    assert_eq!(processing.status, PaymentStatus::Processing);
    assert!(processing.provider_tx_id.is_some());
    assert_eq!(processing.reconcile_after, None, "the webhook finishes it, not reconciliation");
    assert_eq!(action.status, PaymentStatus::RequiresAction);
    assert_eq!(action.next_action_url.as_deref(), Some("https://psp.test/3ds"));
    assert!(t.events().await.is_empty());
    assert_eq!(t.installment_status(installments[0].id).await, "due");

    // An installment with an open payment is not charged again.
    let again = service.create(customer, &payment(lease_id, Some(installments[0].id), 45_000), None).await;
    assert!(matches!(again, Err(PaymentError::Conflict(Conflict::InstallmentBusy))), "{again:?}");
    assert_eq!(gateway.process_calls().len(), 2);
}

async fn an_unknown_outcome_leaves_the_payment_pending(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 2, 45_000).await;
    let before = Utc::now();

    gateway.on_process(Step::Refuse(GatewayError::Unavailable("503 from the provider".into())));
    gateway.on_process(Step::ChargeThenLose(GatewayError::OutcomeUnknown("deadline exceeded".into())));
    let unavailable =
        service.create(customer, &payment(lease_id, Some(installments[0].id), 45_000), None).await.unwrap();
    let unknown = service.create(customer, &payment(lease_id, Some(installments[1].id), 45_000), None).await.unwrap();

    for pending in [&unavailable, &unknown] {
        assert_eq!(pending.status, PaymentStatus::Pending, "never silently failed");
        assert_eq!(pending.process_attempts, 1);
        assert!(!pending.needs_attention);
        let after = pending.reconcile_after.expect("queued for reconciliation");
        assert!(after > before + chrono::Duration::seconds(30), "{after} vs {before}");
    }
    assert!(t.events().await.is_empty());
    assert_eq!(t.installment_status(installments[1].id).await, "due");
    // The open payment still guards its installment.
    let again = service.create(customer, &payment(lease_id, Some(installments[1].id), 45_000), None).await;
    assert!(matches!(again, Err(PaymentError::Conflict(Conflict::InstallmentBusy))), "{again:?}");
}

async fn refusals_before_charging_store_nothing(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let new = payment(lease_id, Some(installments[0].id), 45_000);

    gateway.on_validate(Err(GatewayError::InvalidRequest {
        field: "payment-method".into(),
        reason: "unknown token".into(),
    }));
    gateway.on_validate(Err(GatewayError::UnknownProvider("stripe".into())));
    gateway.on_validate(Err(GatewayError::Disabled("stripe".into())));
    gateway.on_validate(Err(GatewayError::OutcomeUnknown("trap".into())));

    let invalid = service.create(customer, &new, None).await.unwrap_err();
    assert!(matches!(&invalid, PaymentError::Invalid(e) if e.reason_for("payment_method") == Some("unknown token")));
    let unknown = service.create(customer, &new, None).await.unwrap_err();
    assert!(matches!(&unknown, PaymentError::Invalid(e) if e.reason_for("provider").is_some()), "{unknown:?}");
    let disabled = service.create(customer, &new, None).await.unwrap_err();
    assert!(matches!(&disabled, PaymentError::Invalid(e) if e.reason_for("provider").is_some()), "{disabled:?}");
    let unavailable = service.create(customer, &new, None).await.unwrap_err();
    assert!(matches!(unavailable, PaymentError::ProviderUnavailable(_)));

    assert_eq!(t.count("payments").await, 0);
    assert!(gateway.process_calls().is_empty());
    assert!(t.events().await.is_empty());

    // A refusal at `process` (the provider disabled after `validate`) happens after the row
    // was written: the payment ends failed with a code.
    gateway.on_process(Step::Refuse(GatewayError::Disabled("stripe".into())));
    let failed = service.create(customer, &new, None).await.unwrap();
    assert_eq!((failed.status, failed.failure_code.as_deref()), (PaymentStatus::Failed, Some("provider-disabled")));
}

async fn requests_are_checked_against_the_lease_and_installment(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let stranger = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let (other_lease, other_installments) = t.active_lease(stranger, 1, 45_000).await;
    let invalid_field = |result: Result<_, PaymentError>, field: &str| match result {
        Err(PaymentError::Invalid(e)) => assert!(e.reason_for(field).is_some(), "{field}: {e}"),
        other => panic!("{field}: {other:?}"),
    };

    invalid_field(service.create(customer, &payment(other_lease, None, 100), None).await, "lease_id");
    invalid_field(service.create(customer, &payment(lease_id, Some(installments[0].id), 44_999), None).await, "amount");
    invalid_field(
        service.create(customer, &payment(lease_id, Some(other_installments[0].id), 45_000), None).await,
        "installment_id",
    );
    let mut usd = payment(lease_id, None, 100);
    usd.currency = lessor_payments::Currency::parse("USD").unwrap();
    invalid_field(service.create(customer, &usd, None).await, "currency");

    t.set_installment_status(installments[1].id, "paid").await;
    let paid = service.create(customer, &payment(lease_id, Some(installments[1].id), 45_000), None).await;
    assert!(matches!(paid, Err(PaymentError::Conflict(Conflict::InstallmentPaid))), "{paid:?}");
    assert_eq!(t.count("payments").await, 0);

    // A draft lease takes no payments; staff may pay any active lease.
    t.set_lease_status(other_lease, "draft").await;
    invalid_field(service.create(staff, &payment(other_lease, None, 100), None).await, "lease_id");
    let by_staff = service.create(staff, &payment(lease_id, None, 100), None).await.unwrap();
    assert_eq!((by_staff.status, by_staff.owner_id), (PaymentStatus::Succeeded, customer.user_id));
}

async fn customers_see_their_own_payments_staff_see_all(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let stranger = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let mut ids = Vec::new();
    for amount in [100, 200, 300, 400, 500] {
        ids.push(service.create(customer, &payment(lease_id, None, amount), None).await.unwrap().id);
    }

    assert!(matches!(service.get(stranger, ids[0]).await, Err(PaymentError::NotFound)));
    assert!(service.get(staff, ids[0]).await.is_ok());
    assert!(matches!(service.list_by_lease(stranger, lease_id, None, 10).await, Err(PaymentError::NotFound)));

    // Newest first, two per page, the cursor round-tripping through its text form.
    let mut seen = Vec::new();
    let mut after: Option<PaymentCursor> = None;
    loop {
        let page = service.list_by_lease(customer, lease_id, after.as_ref(), 2).await.unwrap();
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(next) => after = Some(PaymentCursor::decode(&next.encode()).unwrap()),
            None => break,
        }
    }
    let staff_page = service.list_by_lease(staff, lease_id, None, 100).await.unwrap();
    assert_eq!(staff_page.items.iter().map(|p| p.id).collect::<Vec<_>>(), seen);
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected);
}

on_each_engine!(
    a_succeeded_payment_pays_the_installment_with_its_event,
    a_declined_payment_fails_with_its_event,
    processing_and_requires_action_wait_for_the_provider,
    an_unknown_outcome_leaves_the_payment_pending,
    refusals_before_charging_store_nothing,
    requests_are_checked_against_the_lease_and_installment,
    customers_see_their_own_payments_staff_see_all,
);
