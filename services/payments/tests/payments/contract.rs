//! The provider contract of WIT 0.2.0 as the service uses it: reconciliation asks
//! `retrieve_payment` before `process`, typed configuration errors fail at once, declared
//! capabilities are enforced before the provider is called, and a transaction id another payment
//! already has fails the payment clearly instead of leaving it pending.

use chrono::Utc;
use lessor_payments::{
    GatewayError, MethodKind, NewPayment, NewRefund, PROVIDER_TRANSACTION_REUSED, PaymentError, PaymentStatus,
    ProviderCapabilities, RefundStatus,
};
use serde_json::json;

use crate::helpers::{Engine, ScriptedGateway, Step, TestDb, today};
use crate::on_each_engine;

fn capabilities() -> ProviderCapabilities {
    ProviderCapabilities {
        currencies: vec!["EUR".into()],
        method_kinds: vec![MethodKind::Token],
        refunds: true,
        partial_refunds: true,
        asynchronous_settlement: true,
        payer_actions: false,
        webhooks: false,
    }
}

fn payment_body(lease_id: uuid::Uuid, amount: i64) -> serde_json::Value {
    json!({"lease_id": lease_id, "amount": amount, "currency": "EUR", "provider": "stripe", "payment_method": "pm_card_visa"})
}

fn field_of(error: PaymentError) -> (String, String) {
    match error {
        PaymentError::Invalid(e) => {
            let first = e.errors().first().expect("a field error").clone();
            (first.field.clone(), first.reason.clone())
        }
        other => panic!("expected a 422, got {other:?}"),
    }
}

async fn reconciliation_retrieves_before_charging_again(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    gateway.with_retrieve();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    gateway.on_process(Step::ChargeThenLose(GatewayError::OutcomeUnknown("timeout".into())));
    let new = NewPayment::parse(&payment_body(lease_id, 45_000), today()).unwrap();
    let pending = service.create(customer, &new, None).await.unwrap();
    assert_eq!(pending.status, PaymentStatus::Pending);

    let due = pending.reconcile_after.unwrap() + chrono::Duration::seconds(1);
    let report = service.reconcile_due(due, 10).await.unwrap();

    assert_eq!((report.payments_checked, report.payments_resolved), (1, 1));
    let resolved = service.get(customer, pending.id).await.unwrap();
    assert_eq!(resolved.status, PaymentStatus::Succeeded);
    assert_eq!(gateway.retrieve_calls(), 1);
    assert_eq!(gateway.process_calls().len(), 1, "found by retrieve: process is not called again");
    assert_eq!(gateway.charges(), 1);
}

async fn a_payment_the_provider_never_got_is_processed_again_with_the_same_key(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    gateway.with_retrieve();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    // Nothing charged, no answer: retrieve says `None`.
    gateway.on_process(Step::Refuse(GatewayError::Unavailable("connection refused".into())));
    let new = NewPayment::parse(&payment_body(lease_id, 45_000), today()).unwrap();
    let pending = service.create(customer, &new, None).await.unwrap();

    let due = pending.reconcile_after.unwrap() + chrono::Duration::seconds(1);
    service.reconcile_due(due, 10).await.unwrap();

    assert_eq!(service.get(customer, pending.id).await.unwrap().status, PaymentStatus::Succeeded);
    assert_eq!(gateway.retrieve_calls(), 1);
    let calls = gateway.process_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key);
    assert_eq!(gateway.charges(), 1);
}

async fn misconfigured_and_egress_denied_fail_at_once(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    for (error, code) in [
        (GatewayError::Misconfigured("secret_key".into()), "provider_misconfigured"),
        (GatewayError::EgressDenied("https://api.stripe.com:443 was not granted".into()), "provider_egress_denied"),
    ] {
        gateway.on_process(Step::Refuse(error));
        let new = NewPayment::parse(&payment_body(lease_id, 100), today()).unwrap();
        let failed = service.create(customer, &new, None).await.unwrap();
        assert_eq!(failed.status, PaymentStatus::Failed, "{code}");
        assert_eq!(failed.failure_code.as_deref(), Some(code));
        assert_eq!(failed.reconcile_after, None, "{code}: not reconciled");
    }
    let far = Utc::now() + chrono::Duration::days(1);
    assert_eq!(service.reconcile_due(far, 10).await.unwrap().payments_checked, 0);
}

async fn undeclared_capabilities_are_refused_before_the_provider_is_called(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;

    // A currency it does not list (the lease is in EUR; the provider takes only USD).
    gateway.set_capabilities(ProviderCapabilities { currencies: vec!["USD".into()], ..capabilities() });
    let new = NewPayment::parse(&payment_body(lease_id, 100), today()).unwrap();
    let (field, reason) = field_of(service.create(customer, &new, None).await.unwrap_err());
    assert_eq!(field, "currency");
    assert!(reason.contains("does not take EUR"), "{reason}");

    // A SEPA mandate to a provider of tokens only.
    gateway.set_capabilities(capabilities());
    let mandate = json!({"iban": "DE89370400440532013000", "mandate_reference": "M-1",
        "mandate_signed_on": "2024-01-15", "debtor_name": "Max Mustermann"});
    let body =
        json!({"lease_id": lease_id, "amount": 100, "currency": "EUR", "provider": "bank", "payment_method": mandate});
    let new = NewPayment::parse(&body, today()).unwrap();
    let (field, reason) = field_of(service.create(customer, &new, None).await.unwrap_err());
    assert_eq!(field, "payment_method");
    assert!(reason.contains("sepa_mandate"), "{reason}");
    assert_eq!(gateway.validate_calls(), 0, "the provider was not asked");
    assert!(gateway.process_calls().is_empty());

    // Refunds: none at all, then only whole ones.
    let paid = service
        .create(customer, &NewPayment::parse(&payment_body(lease_id, 10_000), today()).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    gateway.set_capabilities(ProviderCapabilities { refunds: false, partial_refunds: false, ..capabilities() });
    let whole = NewRefund { amount: None, reason: None };
    let (field, reason) = field_of(service.refund(staff, paid.id, &whole, None).await.unwrap_err());
    assert_eq!(field, "amount");
    assert!(reason.contains("does not take refunds"), "{reason}");
    gateway.set_capabilities(ProviderCapabilities { partial_refunds: false, ..capabilities() });
    let part = NewRefund { amount: Some(4_000), reason: None };
    let (field, reason) = field_of(service.refund(staff, paid.id, &part, None).await.unwrap_err());
    assert_eq!(field, "amount");
    assert!(reason.contains("only one refund of the whole payment"), "{reason}");
    assert!(gateway.refund_calls().is_empty(), "the provider was not asked");
    // The whole payment is still refundable.
    let refund = service.refund(staff, paid.id, &whole, None).await.unwrap();
    assert_eq!(refund.status, RefundStatus::Succeeded);
}

async fn a_transaction_id_of_another_payment_fails_the_payment_for_an_operator(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let staff = t.user(true).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    gateway.on_process(Step::AnswerTx("tx_same".into()));
    gateway.on_process(Step::AnswerTx("tx_same".into()));
    let first = service
        .create(customer, &NewPayment::parse(&payment_body(lease_id, 100), today()).unwrap(), None)
        .await
        .unwrap();
    assert_eq!(first.status, PaymentStatus::Succeeded);

    let second = service
        .create(customer, &NewPayment::parse(&payment_body(lease_id, 200), today()).unwrap(), None)
        .await
        .expect("a clear failure, not a store error");

    assert_eq!(second.status, PaymentStatus::Failed);
    assert_eq!(second.failure_code.as_deref(), Some(PROVIDER_TRANSACTION_REUSED));
    assert!(second.failure_message.as_deref().is_some_and(|m| m.contains(&first.id.to_string())), "{second:?}");
    assert_eq!(second.provider_tx_id, None);
    assert!(second.needs_attention, "visible to the operator");
    let flagged = service.needing_attention(staff, 10).await.unwrap();
    assert!(flagged.iter().any(|p| p.id == second.id));
    assert_eq!(service.get(customer, first.id).await.unwrap().provider_tx_id.as_deref(), Some("tx_same"));
}

on_each_engine!(
    reconciliation_retrieves_before_charging_again,
    a_payment_the_provider_never_got_is_processed_again_with_the_same_key,
    misconfigured_and_egress_denied_fail_at_once,
    undeclared_capabilities_are_refused_before_the_provider_is_called,
    a_transaction_id_of_another_payment_fails_the_payment_for_an_operator,
);
