//! The collection job: each due installment charged once, retries on schedule, overdue last.

use std::sync::Arc;

use chrono::Days;
use lessor_payments::{
    CollectionJob, CollectionPolicy, GatewayError, NewPayment, PaymentMethod, PaymentStatus, ProviderName,
    ProviderPaymentStatus, Viewer,
};
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{Engine, ScriptedGateway, Step, TestDb, today};
use crate::on_each_engine;

/// Collect `lease_id` from the bank with a mandate token.
async fn with_method(service: &lessor_payments::PaymentService, owner: Viewer, lease_id: Uuid) {
    let method = PaymentMethod::Token("mandate-token".into());
    service.set_payment_method_parsed(owner, lease_id, &ProviderName::parse("bank").unwrap(), &method).await.unwrap();
}

async fn due_installments_are_charged_once_even_by_concurrent_runs(engine: Engine) {
    // Arrange: three installments due (two months ago, one month ago, today), one not yet.
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = Arc::new(t.service(&gateway));
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 2, 45_000).await;
    with_method(&service, customer, lease_id).await;
    let job = Arc::new(CollectionJob::new(service.clone(), CollectionPolicy::default()));

    // Act: two runs at once, then another.
    let (a, b) = tokio::join!(job.run_once(today()), job.run_once(today()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let third = job.run_once(today()).await.unwrap();

    // Assert
    assert_eq!(a.succeeded + b.succeeded, 3, "{a:?} {b:?}");
    assert_eq!(third.attempted, 0);
    assert_eq!(gateway.charges(), 3);
    let charged: Vec<Option<Uuid>> = gateway.process_calls().iter().map(|c| c.installment_id).collect();
    assert_eq!(charged.len(), 3, "no installment was processed twice");
    for installment in &installments[..3] {
        assert!(charged.contains(&Some(installment.id)));
        assert_eq!(t.installment_status(installment.id).await, "paid");
    }
    assert_eq!(t.installment_status(installments[3].id).await, "due");
    assert_eq!(t.count("collection_attempts").await, 3);
    let keys: Vec<String> = gateway.process_calls().iter().map(|c| c.idempotency_key.clone()).collect();
    assert!(keys.contains(&format!("lessor-collect-{}-1", installments[0].id)), "{keys:?}");
    let page = service.list_by_lease(customer, lease_id, None, 10).await.unwrap();
    assert!(page.items.iter().all(|p| p.status == PaymentStatus::Succeeded && p.provider == "bank"));
}

async fn failed_collections_are_retried_on_schedule_then_overdue(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = Arc::new(t.service(&gateway));
    let customer = t.user(false).await;
    // One installment due today, the next in a month.
    let (lease_id, installments) = t.active_lease(customer, 0, 45_000).await;
    let installment = installments[0].id;
    with_method(&service, customer, lease_id).await;
    let policy = CollectionPolicy { retry_after_days: vec![1, 3], batch_size: 10 };
    let job = CollectionJob::new(service.clone(), policy);
    gateway.on_process(Step::Answer(ProviderPaymentStatus::Failed));
    gateway.on_process(Step::Refuse(GatewayError::Declined("insufficient funds".into())));
    let day = |n: u64| today().checked_add_days(Days::new(n)).unwrap();

    let first = job.run_once(day(0)).await.unwrap();
    let same_day = job.run_once(day(0)).await.unwrap();
    let second = job.run_once(day(1)).await.unwrap();
    let too_early = job.run_once(day(3)).await.unwrap();
    // The third attempt's mandate is refused at validation: it counts as failed too.
    gateway.on_validate(Err(GatewayError::InvalidRequest { field: "payment-method".into(), reason: "revoked".into() }));
    let third = job.run_once(day(4)).await.unwrap();
    let afterwards = job.run_once(day(20)).await.unwrap();

    assert_eq!((first.attempted, first.failed), (1, 1));
    assert_eq!((same_day.attempted, same_day.skipped), (0, 1));
    assert_eq!((second.attempted, second.failed), (1, 1));
    assert_eq!((too_early.attempted, too_early.skipped), (0, 1));
    assert_eq!((third.attempted, third.failed, third.marked_overdue), (1, 1, 1));
    assert_eq!((afterwards.attempted, afterwards.marked_overdue), (0, 0));
    assert_eq!(t.installment_status(installment).await, "overdue");
    assert_eq!(t.count("collection_attempts").await, 3);
    assert_eq!(gateway.process_calls().len(), 2);
    assert_eq!(gateway.charges(), 0);
}

async fn open_payments_inactive_leases_and_leases_without_a_method_are_left_alone(engine: Engine) {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = Arc::new(t.service(&gateway));
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 0, 45_000).await;
    let (_without_method, _) = t.active_lease(customer, 0, 45_000).await;
    let (terminated, _) = t.active_lease(customer, 0, 45_000).await;
    with_method(&service, customer, lease_id).await;
    with_method(&service, customer, terminated).await;
    t.set_lease_status(terminated, "terminated").await;

    // The customer already paid by hand; the provider is still processing it.
    gateway.on_process(Step::Answer(ProviderPaymentStatus::Processing));
    let body = json!({
        "lease_id": lease_id, "installment_id": installments[0].id, "amount": 45_000, "currency": "EUR",
        "provider": "stripe", "payment_method": "pm_card_visa",
    });
    let manual = service.create(customer, &NewPayment::parse(&body, today()).unwrap(), None).await.unwrap();
    assert_eq!(manual.status, PaymentStatus::Processing);

    let report = CollectionJob::new(service.clone(), CollectionPolicy::default()).run_once(today()).await.unwrap();

    assert_eq!(report.attempted, 0, "{report:?}");
    assert_eq!(gateway.process_calls().len(), 1);
}

on_each_engine!(
    due_installments_are_charged_once_even_by_concurrent_runs,
    failed_collections_are_retried_on_schedule_then_overdue,
    open_payments_inactive_leases_and_leases_without_a_method_are_left_alone,
);
