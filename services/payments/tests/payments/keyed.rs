//! `create_keyed`: the two-write path of a payment under an idempotency key, and every way
//! out of it into the general path (same answers, nothing written twice).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use lessor_events::EventData;
use lessor_payments::{
    CREATE_PAYMENT, Conflict, Fingerprint, GatewayError, IdempotencyConfig, IdempotencyKey, IdempotencyStore,
    KeyedAnswer, KeyedRequest, NewPayment, Payment, PaymentError, PaymentOutcome, PaymentRequest, PaymentService,
    PaymentStatus, ProviderGateway, ReconcilePolicy, RefundOutcome, RefundRequest, Scope,
};
use lessor_store::{Db, on_db};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Engine, ScriptedGateway, Step, TestDb, today};
use crate::on_each_engine;

fn body(lease_id: Uuid, installment_id: Option<Uuid>, amount: i64) -> Value {
    let mut body = json!({
        "lease_id": lease_id, "amount": amount, "currency": "EUR",
        "provider": "stripe", "payment_method": "pm_card_visa",
    });
    if let Some(id) = installment_id {
        body["installment_id"] = json!(id);
    }
    body
}

fn render(payment: &Payment) -> Result<String, PaymentError> {
    Ok(json!({"id": payment.id, "status": payment.status.to_string(), "amount": payment.amount,
              "provider_tx_id": payment.provider_tx_id, "updated_at": payment.updated_at})
    .to_string())
}

struct Keyed {
    keys: IdempotencyStore,
    scope: Scope,
}

impl Keyed {
    fn new(t: &TestDb, user: Uuid) -> Self {
        Self {
            keys: IdempotencyStore::new(t.db.clone(), IdempotencyConfig::default()),
            scope: Scope::user(user, CREATE_PAYMENT),
        }
    }

    async fn create(
        &self,
        service: &PaymentService,
        viewer: lessor_payments::Viewer,
        key: &str,
        body: &Value,
    ) -> Result<KeyedAnswer, PaymentError> {
        let new = NewPayment::parse(body, today()).unwrap();
        let key = IdempotencyKey::parse(key).unwrap();
        let fingerprint = Fingerprint::of_json(body);
        let request = KeyedRequest { keys: &self.keys, scope: &self.scope, key: &key, fingerprint: &fingerprint };
        service.create_keyed(viewer, &new, request, render).await
    }
}

fn ran(answer: KeyedAnswer) -> (Payment, String) {
    match answer {
        KeyedAnswer::Ran { payment, status, body } => {
            assert_eq!(status, 201);
            (*payment, body)
        }
        other => panic!("expected Ran, got {other:?}"),
    }
}

/// A customer with an active lease (45,000 a month, first installment due), a provider that
/// succeeds unless scripted otherwise, and the service over them.
struct Setup {
    t: TestDb,
    gateway: Arc<ScriptedGateway>,
    service: PaymentService,
    customer: lessor_payments::Viewer,
    lease_id: Uuid,
    installments: Vec<lessor_leases::Installment>,
    keyed: Keyed,
}

async fn setup(engine: Engine) -> Setup {
    let t = TestDb::new(engine).await;
    let gateway = ScriptedGateway::new();
    let service = t.service(&gateway);
    let customer = t.user(false).await;
    let (lease_id, installments) = t.active_lease(customer, 1, 45_000).await;
    let keyed = Keyed::new(&t, customer.user_id);
    Setup { t, gateway, service, customer, lease_id, installments, keyed }
}

async fn key_row(db: &Db) -> Vec<(String, Option<Uuid>, Option<i32>, Option<String>)> {
    let sql = "SELECT state, resource_id, response_status, response_body FROM idempotency_keys";
    on_db!(db, pool => sqlx::query_as(sql).fetch_all(pool).await).unwrap()
}

async fn a_keyed_payment_is_stored_with_its_event_and_answer_and_replays(engine: Engine) {
    // Arrange
    let Setup { t, gateway, service, customer, lease_id, installments, keyed } = setup(engine).await;
    let request = body(lease_id, Some(installments[0].id), 45_000);

    // Act
    let (paid, answer) = ran(keyed.create(&service, customer, "order-1", &request).await.unwrap());

    // Assert: what the answer says is what is stored, with the event, the installment and the key.
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!(service.get(customer, paid.id).await.unwrap(), paid, "the returned payment is the stored one");
    assert_eq!((paid.process_attempts, paid.reconcile_after, paid.needs_attention), (1, None, false));
    assert_eq!(paid.owner_id, customer.user_id);
    assert_eq!(t.installment_status(installments[0].id).await, "paid");
    let events = t.events().await;
    assert_eq!(events.len(), 1);
    let EventData::PaymentCompleted(completed) = &events[0].data else { panic!("{:?}", events[0]) };
    assert_eq!((completed.payment_id, completed.installment_id), (paid.id, Some(installments[0].id)));
    assert_eq!(Some(completed.provider_tx_id.clone()), paid.provider_tx_id);
    assert_eq!(key_row(&t.db).await, vec![("completed".into(), Some(paid.id), Some(201), Some(answer.clone()))]);
    assert_eq!((gateway.process_calls().len(), gateway.charges()), (1, 1));
    assert_eq!(gateway.validate_calls(), 1, "two writes, no detour through the general path");
    let expires: i64 = on_db!(&t.db, pool => sqlx::query_scalar("SELECT expires_at FROM idempotency_keys")
        .fetch_one(pool).await)
    .unwrap();
    let day_after_answer = (Utc::now() + chrono::Duration::hours(24)).timestamp_millis();
    assert!(expires >= day_after_answer, "the key is kept at least 24 h after its answer");

    // A retry replays the stored answer; the same key with another body is refused.
    match keyed.create(&service, customer, "order-1", &request).await.unwrap() {
        KeyedAnswer::Replay { status, body } => assert_eq!((status, body), (201, answer)),
        other => panic!("{other:?}"),
    }
    let other = body(lease_id, None, 100);
    assert!(matches!(keyed.create(&service, customer, "order-1", &other).await.unwrap(), KeyedAnswer::Mismatch));
    assert_eq!((gateway.process_calls().len(), t.count("payments").await, t.events().await.len()), (1, 1, 1));
}

async fn the_keyed_and_general_paths_store_the_same_payment(engine: Engine) {
    let Setup { t, gateway, service, customer, lease_id, keyed, .. } = setup(engine).await;

    for (i, step) in [
        Step::Answer(lessor_payments::ProviderPaymentStatus::Succeeded),
        Step::Answer(lessor_payments::ProviderPaymentStatus::Processing),
        Step::Answer(lessor_payments::ProviderPaymentStatus::RequiresAction),
        Step::Answer(lessor_payments::ProviderPaymentStatus::Failed),
        Step::Refuse(GatewayError::Declined("card declined".into())),
    ]
    .into_iter()
    .enumerate()
    {
        let request = body(lease_id, None, 1_000 + i as i64);
        gateway.on_process(step.clone());
        let (express, _) = ran(keyed.create(&service, customer, &format!("k-{i}"), &request).await.unwrap());
        gateway.on_process(step);
        let general = service.create(customer, &NewPayment::parse(&request, today()).unwrap(), None).await.unwrap();
        let same = |p: &Payment| {
            (p.status, p.failure_code.clone(), p.failure_message.clone(), p.next_action_url.clone(), p.process_attempts)
        };
        assert_eq!(same(&express), same(&general), "step {i}");
        assert_eq!(express.provider_tx_id.is_some(), general.provider_tx_id.is_some(), "step {i}");
        assert_eq!(service.get(customer, express.id).await.unwrap(), express, "step {i}");
    }
    // Succeeded and failed twice each (once per path) wrote an event each; the others none.
    let types: Vec<String> = t.events().await.iter().map(|e| e.event_type().to_owned()).collect();
    assert_eq!(types.iter().filter(|t| *t == "payment.completed").count(), 2, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "payment.failed").count(), 4, "{types:?}");
}

async fn refusals_take_the_general_path_and_leave_nothing(engine: Engine) {
    let Setup { t, gateway, service, customer, lease_id, installments, keyed } = setup(engine).await;
    let stranger = t.user(false).await;

    // The provider refuses at validation: a field error.
    gateway.on_validate(Err(GatewayError::InvalidRequest { field: "payment-method".into(), reason: "bad".into() }));
    gateway.on_validate(Err(GatewayError::InvalidRequest { field: "payment-method".into(), reason: "bad".into() }));
    let refused = keyed.create(&service, customer, "a", &body(lease_id, None, 100)).await.unwrap_err();
    assert!(matches!(refused, PaymentError::Invalid(e) if e.reason_for("payment_method") == Some("bad")));
    // Another customer's lease is not there for them.
    let hidden = Keyed::new(&t, stranger.user_id).create(&service, stranger, "b", &body(lease_id, None, 100)).await;
    assert!(matches!(hidden, Err(PaymentError::Invalid(e)) if e.reason_for("lease_id").is_some()));
    // The amount is not the installment's.
    let wrong = keyed.create(&service, customer, "c", &body(lease_id, Some(installments[0].id), 100)).await;
    assert!(matches!(wrong, Err(PaymentError::Invalid(e)) if e.reason_for("amount").is_some()));
    // A paid installment.
    t.set_installment_status(installments[1].id, "paid").await;
    let paid = keyed.create(&service, customer, "d", &body(lease_id, Some(installments[1].id), 45_000)).await;
    assert!(matches!(paid, Err(PaymentError::Conflict(Conflict::InstallmentPaid))), "{paid:?}");
    // A lease that is not active.
    t.set_lease_status(lease_id, "terminated").await;
    let ended = keyed.create(&service, customer, "e", &body(lease_id, None, 100)).await;
    assert!(matches!(ended, Err(PaymentError::Invalid(e)) if e.reason_for("lease_id").is_some()));

    // Nothing stored, no key kept: a corrected request can go on under the same key.
    assert_eq!((t.count("payments").await, t.count("idempotency_keys").await), (0, 0));
    assert!(gateway.process_calls().is_empty());
}

async fn twenty_concurrent_requests_with_one_key_charge_once(engine: Engine) {
    let Setup { t, gateway, service, customer, lease_id, keyed, .. } = setup(engine).await;
    let service = Arc::new(service);
    let keyed = Arc::new(keyed);
    let request = body(lease_id, None, 4_200);

    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (service, keyed, request) = (service.clone(), keyed.clone(), request.clone());
            tokio::spawn(async move { keyed.create(&service, customer, "same", &request).await.unwrap() })
        })
        .collect();
    let (mut ran_count, mut others) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            KeyedAnswer::Ran { .. } => ran_count += 1,
            KeyedAnswer::InFlight | KeyedAnswer::Replay { .. } => others += 1,
            KeyedAnswer::Mismatch => panic!("same body"),
        }
    }

    assert_eq!((ran_count, others), (1, 19));
    assert_eq!((gateway.process_calls().len(), gateway.charges()), (1, 1));
    assert_eq!((t.count("payments").await, t.count("idempotency_keys").await, t.events().await.len()), (1, 1, 1));
}

/// A provider (or a buggy plugin) answering one transaction id to several payments at once:
/// checked before writing, all would pass; the unique index decides, and the others fail as
/// reused, flagged, each answered 201 with that failure (no store error, no 5xx).
async fn payments_answered_one_transaction_id_at_once_keep_it_for_one(engine: Engine) {
    let Setup { t, gateway, service, customer, lease_id, keyed, .. } = setup(engine).await;
    let service = Arc::new(service);
    let keyed = Arc::new(keyed);
    const N: usize = 6;
    for _ in 0..N {
        gateway.on_process(Step::AnswerTx("tx_shared".into()));
    }

    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (service, keyed) = (service.clone(), keyed.clone());
            let request = body(lease_id, None, 1_000 + i as i64);
            tokio::spawn(async move { keyed.create(&service, customer, &format!("k{i}"), &request).await })
        })
        .collect();
    let mut answered = Vec::new();
    for task in tasks {
        let answer = task.await.unwrap().expect("a payment answer, not an error");
        answered.push(ran(answer).0);
    }

    let (kept, reused): (Vec<_>, Vec<_>) = answered.iter().partition(|p| p.status == PaymentStatus::Succeeded);
    assert_eq!(kept.len(), 1, "{answered:#?}");
    assert_eq!(kept[0].provider_tx_id.as_deref(), Some("tx_shared"));
    for p in &reused {
        let stored = service.get(customer, p.id).await.unwrap();
        assert_eq!(stored.status, PaymentStatus::Failed);
        assert_eq!(stored.failure_code.as_deref(), Some(lessor_payments::PROVIDER_TRANSACTION_REUSED));
        assert!(stored.failure_message.as_deref().is_some_and(|m| m.contains(&kept[0].id.to_string())), "{stored:?}");
        assert_eq!(stored.provider_tx_id, None);
        assert!(stored.needs_attention);
    }
    assert_eq!(t.count("payments").await, N as i64);
}

async fn an_unknown_outcome_is_answered_pending_and_reconciled_once(engine: Engine) {
    let Setup { t, gateway, service, customer, lease_id, keyed, .. } = setup(engine).await;

    gateway.on_process(Step::ChargeThenLose(GatewayError::OutcomeUnknown("deadline".into())));
    let (pending, answer) = ran(keyed.create(&service, customer, "k", &body(lease_id, None, 900)).await.unwrap());

    assert_eq!((pending.status, pending.process_attempts), (PaymentStatus::Pending, 1));
    assert!(pending.reconcile_after.is_some());
    assert_eq!(key_row(&t.db).await[0].3.as_deref(), Some(answer.as_str()), "the pending answer is kept");
    assert!(t.events().await.is_empty());
    let report = service.reconcile_due(Utc::now() + chrono::Duration::minutes(2), 10).await.unwrap();
    assert_eq!(report.payments_resolved, 1);
    assert_eq!(service.get(customer, pending.id).await.unwrap().status, PaymentStatus::Succeeded);
    assert_eq!((gateway.charges(), t.events().await.len()), (1, 1));
}

/// A provider whose webhook moves the payment to `processing` while `process` is running:
/// the payment is no longer as the two-write path opened it.
struct WebhookDuringProcess {
    inner: Arc<ScriptedGateway>,
    db: Db,
}

#[async_trait]
impl ProviderGateway for WebhookDuringProcess {
    async fn validate(&self, provider: &str, request: &PaymentRequest) -> Result<(), GatewayError> {
        self.inner.validate(provider, request).await
    }

    async fn process(&self, provider: &str, request: &PaymentRequest) -> Result<PaymentOutcome, GatewayError> {
        let sql = "UPDATE payments SET status = 'processing', updated_at = $2 WHERE id = $1";
        on_db!(&self.db, pool => sqlx::query(sql).bind(request.payment_id).bind(Utc::now()).execute(pool).await.map(drop))
            .unwrap();
        self.inner.process(provider, request).await
    }

    async fn refund(&self, provider: &str, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        self.inner.refund(provider, request).await
    }
}

async fn a_payment_moved_during_process_is_finished_by_the_general_path(engine: Engine) {
    let t = TestDb::new(engine).await;
    let scripted = ScriptedGateway::new();
    let gateway = Arc::new(WebhookDuringProcess { inner: scripted.clone(), db: t.db.clone() });
    let service = PaymentService::new(t.db.clone(), gateway, ReconcilePolicy::default());
    let customer = t.user(false).await;
    let (lease_id, _) = t.active_lease(customer, 1, 45_000).await;
    let keyed = Keyed::new(&t, customer.user_id);

    let (paid, answer) = ran(keyed.create(&service, customer, "k", &body(lease_id, None, 700)).await.unwrap());

    // processing (by the "webhook") → succeeded (by the answer): one event, the key answered.
    assert_eq!(paid.status, PaymentStatus::Succeeded);
    assert_eq!(service.get(customer, paid.id).await.unwrap(), paid);
    assert_eq!(t.events().await.len(), 1);
    assert_eq!(key_row(&t.db).await, vec![("completed".into(), Some(paid.id), Some(201), Some(answer))]);
    assert_eq!(scripted.charges(), 1);
}

async fn a_lost_outcome_is_reconciled_with_one_charge(engine: Engine) {
    // Arrange: a payment made under a key, then what a database crash before its (asynchronous)
    // outcome write was flushed leaves: the payment and key as the first write left them, no event.
    let Setup { t, gateway, service, customer, lease_id, installments, keyed } = setup(engine).await;
    let request = body(lease_id, Some(installments[0].id), 45_000);
    let (paid, _) = ran(keyed.create(&service, customer, "k", &request).await.unwrap());
    let reset_payment =
        "UPDATE payments SET status = 'pending', provider_tx_id = NULL, reconcile_after = 1 WHERE id = $1";
    let reset_key = "UPDATE idempotency_keys SET state = 'in_flight', response_status = NULL, response_body = NULL, \
                     locked_until = 0";
    let reset_installment = "UPDATE installments SET status = 'due' WHERE id = $1";
    on_db!(&t.db, pool => async {
        sqlx::query(reset_payment).bind(paid.id).execute(pool).await?;
        sqlx::query(reset_key).execute(pool).await?;
        sqlx::query(reset_installment).bind(installments[0].id).execute(pool).await?;
        sqlx::query("DELETE FROM event_outbox").execute(pool).await.map(drop)
    }.await)
    .unwrap();

    // Act 1: the client retries after the key's lock expired: it gets that payment, not a new one.
    let (again, _) = ran(keyed.create(&service, customer, "k", &request).await.unwrap());
    assert_eq!((again.id, again.status), (paid.id, PaymentStatus::Pending));

    // Act 2: reconciliation asks the provider again with the same key.
    let report = service.reconcile_due(Utc::now() + chrono::Duration::minutes(2), 10).await.unwrap();

    // Assert: the outcome is back, with its event and the installment, and one charge.
    assert_eq!(report.payments_resolved, 1);
    assert_eq!(service.get(customer, paid.id).await.unwrap().status, PaymentStatus::Succeeded);
    assert_eq!(t.installment_status(installments[0].id).await, "paid");
    assert_eq!((gateway.charges(), t.events().await.len(), t.count("payments").await), (1, 1, 1));
    let calls = gateway.process_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].idempotency_key, calls[1].idempotency_key);
}

on_each_engine!(
    a_keyed_payment_is_stored_with_its_event_and_answer_and_replays,
    the_keyed_and_general_paths_store_the_same_payment,
    refusals_take_the_general_path_and_leave_nothing,
    twenty_concurrent_requests_with_one_key_charge_once,
    payments_answered_one_transaction_id_at_once_keep_it_for_one,
    an_unknown_outcome_is_answered_pending_and_reconciled_once,
    a_payment_moved_during_process_is_finished_by_the_general_path,
    a_lost_outcome_is_reconciled_with_one_charge,
);
