//! Payments end to end: HTTP → payments service → provider plugin in the sandbox → local
//! stand-ins for Stripe and the bank (host/tests/peers) → outbox → relay → Redis Stream (or the
//! in-process bus) read by a consumer group. Idempotency under concurrency, webhook signatures,
//! provider faults with reconciliation, card-number refusal and collection of due installments.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use host::plugins::{Origin, RuntimeChecker};
use lessor_auth::Role;
use lessor_events::{Event, EventData, EventHandler, HandlerError, PAYMENTS, Subscription};
use lessor_plugin_registry::{OriginPattern, Package};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Backend, TestApp, assert_problem};
use crate::peers::bank::{self, BankPeer};
use crate::peers::stripe::{self as stripe_peer, StripePeer};
use crate::peers::{Fault, unix_now};
use crate::plugin_build::packages_dir;

const STRIPE_KEY: &str = "sk_test_lessor_e2e";
pub const STRIPE_WHSEC: &str = "whsec_lessor_e2e";
const BANK_CLIENT: &str = "lessor-e2e";
const BANK_SECRET: &str = "bank-e2e-client-secret";
const BANK_WHSEC: &str = "bank-e2e-webhook-secret";
const CREDITOR_ID: &str = "DE98ZZZ09999999999";

pub struct Env {
    pub app: TestApp,
    pub stripe: StripePeer,
    pub bank: BankPeer,
    pub customer: String,
    pub operator: String,
    pub lease_id: String,
    pub installments: Vec<String>,
}

async fn install(app: &TestApp, name: &str, grant: &str) {
    let package = Package::load(&packages_dir().join(name)).unwrap();
    let checker = RuntimeChecker::new(app.state.providers.runtime().clone());
    let grant = OriginPattern::from(grant.parse::<Origin>().unwrap());
    app.state.providers.registry().install(&package, &[grant], &checker).await.unwrap();
}

/// An application with the Stripe and bank plugins installed against local peers, a customer
/// with an active lease, and an operator.
pub async fn env(backend: Backend) -> Env {
    env_with(backend, |_| {}).await
}

pub async fn env_with(backend: Backend, tweak: impl FnOnce(&mut host::Config)) -> Env {
    let stripe = StripePeer::start(STRIPE_KEY).await;
    let bank = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let (stripe_origin, bank_origin) = (stripe.origin(), bank.origin());
    let app = TestApp::spawn_with(backend, |c| {
        c.plugins.reload_interval = Duration::from_millis(100);
        c.plugins.cache_dir = Some(crate::plugins::shared_cache());
        c.plugins.call_timeout = Duration::from_secs(2);
        let s = &mut c.plugins.settings;
        s.set("stripe", "api_base", &stripe_origin);
        s.set("stripe", "secret_key", STRIPE_KEY);
        s.set("stripe", "webhook_secret", STRIPE_WHSEC);
        s.set("bank", "api_base", &bank_origin);
        s.set("bank", "client_id", BANK_CLIENT);
        s.set("bank", "creditor_id", CREDITOR_ID);
        s.set("bank", "client_secret", BANK_SECRET);
        s.set("bank", "webhook_secret", BANK_WHSEC);
        // Tests drive reconciliation and collection themselves.
        c.reconcile_interval = Duration::from_secs(3600);
        c.collection_interval = None;
        tweak(c);
    })
    .await;
    install(&app, "stripe", &stripe.origin()).await;
    install(&app, "bank", &bank.origin()).await;
    app.state.providers.refresh().await.unwrap();
    let customer = app.token_for(Role::Customer).await;
    let operator = app.token_for(Role::Operator).await;
    let lease_id = active_lease(&app, &customer, &operator).await;
    let schedule: Value =
        app.get_authed(&format!("/api/v1/leases/{lease_id}/schedule"), &customer).await.json().await.unwrap();
    let installments =
        schedule["installments"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    Env { app, stripe, bank, customer, operator, lease_id, installments }
}

pub async fn active_lease(app: &TestApp, customer: &str, operator: &str) -> String {
    let body = json!({
        "vehicle": {"vin": "WDD2220821A123456", "make": "Mercedes-Benz", "model": "S 580", "year": 2025, "category": "luxury"},
        "start_date": "2026-12-31",
        "term_months": 12,
        "monthly_amount": 129900,
        "deposit": 0,
        "currency": "EUR"
    });
    let response = app.client.post(app.url("/api/v1/leases")).bearer_auth(customer).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let response = app
        .client
        .patch(app.url(&format!("/api/v1/leases/{id}")))
        .bearer_auth(operator)
        .json(&json!({"status": "active"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    id
}

impl Env {
    pub async fn pay(&self, key: &str, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/api/v1/payments"))
            .bearer_auth(&self.customer)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    fn card_payment(&self, installment: usize, method: &str) -> Value {
        json!({
            "lease_id": self.lease_id,
            "installment_id": self.installments[installment],
            "amount": 129900,
            "currency": "EUR",
            "provider": "stripe",
            "payment_method": method,
        })
    }

    pub async fn payment(&self, id: &str) -> Value {
        let response = self.app.get_authed(&format!("/api/v1/payments/{id}"), &self.customer).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn installment_status(&self, index: usize) -> String {
        let schedule: Value = self
            .app
            .get_authed(&format!("/api/v1/leases/{}/schedule", self.lease_id), &self.customer)
            .await
            .json()
            .await
            .unwrap();
        schedule["installments"][index]["status"].as_str().unwrap().to_owned()
    }

    async fn webhook(&self, provider: &str, headers: &[(String, String)], body: &str) -> reqwest::Response {
        let mut request = self.app.client.post(self.app.url(&format!("/webhooks/{provider}"))).body(body.to_owned());
        for (k, v) in headers {
            request = request.header(k, v);
        }
        request.send().await.unwrap()
    }

    async fn stripe_webhook(&self, body: &str, secret: &str, ts: i64) -> reqwest::Response {
        let headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("stripe-signature".to_owned(), stripe_peer::sign_webhook(secret, body, ts)),
        ];
        self.webhook("stripe", &headers, body).await
    }
}

/// What the host made of a webhook request (`lessor-webhook-outcome`), beside the plugin's reply.
pub fn outcome(response: &reqwest::Response) -> String {
    response.headers().get("lessor-webhook-outcome").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Collects the events one consumer group receives.
#[derive(Default)]
pub struct Collector {
    pub events: Mutex<Vec<Event>>,
}

#[async_trait]
impl EventHandler for Collector {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        self.events.lock().await.push(event.clone());
        Ok(())
    }
}

/// Reads the `payments` stream as consumer group `group` until `done` holds (or 15 s pass).
pub async fn consume_until(
    app: &TestApp,
    group: &str,
    collector: &Collector,
    done: impl Fn(&[Event]) -> bool,
) -> Vec<Event> {
    let mut consumer = app
        .state
        .events
        .bus
        .subscribe(Subscription { block: Duration::from_millis(200), ..Subscription::new(PAYMENTS, group) });
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        consumer.poll(collector).await.expect("poll");
        let events = collector.events.lock().await.clone();
        if done(&events) {
            consumer.close().await;
            return events;
        }
        assert!(Instant::now() < deadline, "timed out; events so far: {events:#?}");
    }
}

fn completed_for(events: &[Event], payment_id: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(&e.data, EventData::PaymentCompleted(c) if c.payment_id.to_string() == payment_id))
        .count()
}

async fn card_payment_end_to_end(backend: Backend) {
    let env = env(backend).await;
    let response = env.pay("order-1", &env.card_payment(0, "pm_card_visa")).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let payment: Value = response.json().await.unwrap();
    assert_eq!(payment["status"], "succeeded", "{payment:#}");
    assert_eq!(payment["chain_status"], "not_configured", "no chain worker here");
    assert_eq!(payment["provider"], "stripe");
    assert_eq!((payment["amount"].as_i64(), payment["currency"].as_str()), (Some(129900), Some("EUR")));
    let id = payment["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/payments/{id}"));
    let tx = payment["provider_tx_id"].as_str().unwrap();
    assert!(tx.starts_with("pi_"), "{tx}");

    // The peer saw one PaymentIntent with our ids and the idempotency key derived from the payment.
    let intents = env.stripe.payment_intents();
    assert_eq!(intents.len(), 1);
    assert_eq!(intents[0].id, tx);
    assert_eq!(env.stripe.charges_created(), 1);
    let request = env.stripe.requests().into_iter().find(|r| r.path == "/v1/payment_intents").unwrap();
    let form = String::from_utf8_lossy(&request.body).into_owned();
    assert!(form.contains(&format!("metadata%5Bpayment_id%5D={id}")), "{form}");
    assert!(form.contains("confirm=true") && form.contains("amount=129900"), "{form}");

    assert_eq!(env.payment(&id).await["status"], "succeeded");
    assert_eq!(env.installment_status(0).await, "paid");
    let listed: Value = env
        .app
        .get_authed(&format!("/api/v1/payments?lease_id={}", env.lease_id), &env.customer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    // Another customer sees nothing of it.
    let stranger = env.app.token_for(Role::Customer).await;
    assert_problem(env.app.get_authed(&format!("/api/v1/payments/{id}"), &stranger).await, 404, "not-found").await;

    // payment.completed reached the stream: Redis when configured, the in-process bus otherwise.
    let engine = env.app.state.events.bus.engine();
    assert_eq!(engine == "redis", backend == Backend::PostgresRedis, "bus engine {engine}");
    let collector = Collector::default();
    let events = consume_until(&env.app, "e2e-readers", &collector, |e| completed_for(e, &id) == 1).await;
    let EventData::PaymentCompleted(c) =
        &events.iter().find(|e| completed_for(std::slice::from_ref(e), &id) == 1).unwrap().data
    else {
        unreachable!()
    };
    assert_eq!(
        (c.amount, c.currency.as_str(), c.provider.as_str(), c.provider_tx_id.as_str()),
        (129900, "EUR", "stripe", tx)
    );
    assert_eq!(c.lease_id.to_string(), env.lease_id);
    if backend == Backend::PostgresRedis {
        let client = lessor_store::redis::Client::open(crate::helpers::redis_url()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let key = env.app.state.redis.as_ref().unwrap().key("payments");
        let len: usize = lessor_store::redis::cmd("XLEN").arg(&key).query_async(&mut conn).await.unwrap();
        assert_eq!(len, 1, "one entry in {key}");
    }
    // A second group gets it too; the first does not get it again.
    let again = Collector::default();
    consume_until(&env.app, "e2e-other-group", &again, |e| completed_for(e, &id) == 1).await;
    let mut first =
        env.app.state.events.bus.subscribe(Subscription {
            block: Duration::from_millis(200),
            ..Subscription::new(PAYMENTS, "e2e-readers")
        });
    let quiet = Collector::default();
    first.poll(&quiet).await.unwrap();
    assert!(quiet.events.lock().await.is_empty(), "nothing redelivered to a group that acknowledged");
}

async fn one_key_one_payment_under_concurrency(backend: Backend) {
    let env = Arc::new(env(backend).await);
    let body = env.card_payment(1, "pm_card_visa");
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (env, body) = (env.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let response = env.pay("same-key", &body).await;
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut in_flight = 0;
    for task in tasks {
        let (status, text) = task.await.unwrap();
        match status {
            201 => {
                ids.insert(serde_json::from_str::<Value>(&text).unwrap()["id"].as_str().unwrap().to_owned());
            }
            409 => {
                assert!(text.contains("idempotency-key-in-flight"), "{text}");
                in_flight += 1;
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert_eq!(ids.len(), 1, "every success names the same payment");
    assert_eq!(env.stripe.charges_created(), 1, "exactly one provider charge");
    let posts = env.stripe.requests().iter().filter(|r| r.path == "/v1/payment_intents").count();
    assert_eq!(posts, 1, "exactly one provider call");
    eprintln!("{in_flight} of 50 concurrent requests were told the key is in flight");

    // After it finished: the same key and body replays the first answer.
    let replay = env.pay("same-key", &body).await;
    assert_eq!(replay.status(), 201);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(replayed["id"].as_str().unwrap(), ids.first().unwrap());
    // The same key with another body is refused and changes nothing.
    let mut changed = body.clone();
    changed["amount"] = json!(100);
    assert_problem(env.pay("same-key", &changed).await, 422, "idempotency-key-reused").await;
    let listed: Value = env
        .app
        .get_authed(&format!("/api/v1/payments?lease_id={}", env.lease_id), &env.customer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(env.stripe.charges_created(), 1);

    // No key, or a bad one: 400.
    let response = env.app.client.post(env.app.url("/api/v1/payments")).bearer_auth(&env.customer).json(&body).send();
    assert_problem(response.await.unwrap(), 400, "idempotency-key-missing").await;
    assert_problem(env.pay(&"k".repeat(256), &body).await, 400, "idempotency-key-invalid").await;
}

async fn card_numbers_and_bad_input_are_refused(backend: Backend) {
    let env = env(backend).await;
    for card in ["4242 4242 4242 4242", "4000-0566-5566-5556", "5555555555554444"] {
        let body = env.card_payment(2, card);
        let problem = assert_problem(env.pay(&format!("card-{card}"), &body).await, 422, "validation").await;
        assert_eq!(problem["errors"][0]["field"], "payment_method", "{problem:#}");
        assert!(!problem.to_string().contains(&card.replace([' ', '-'], "")[4..12]), "the number is not echoed");
    }
    let mut body = env.card_payment(2, "pm_card_visa");
    body["amount"] = json!(-5);
    body["currency"] = json!("EURO");
    let problem = assert_problem(env.pay("bad-fields", &body).await, 422, "validation").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"amount") && fields.contains(&"currency"), "{fields:?}");
    let mut unknown = env.card_payment(2, "pm_card_visa");
    unknown["provider"] = json!("paypal");
    let response = env.pay("unknown-provider", &unknown).await;
    assert!(matches!(response.status().as_u16(), 422 | 404), "{}", response.status());
    // A declined card is a failed payment, not an error; nothing card-like was ever sent.
    let declined: Value =
        env.pay("declined", &env.card_payment(2, "pm_card_chargeDeclined")).await.json().await.unwrap();
    assert_eq!(declined["status"], "failed");
    assert_eq!(declined["failure_code"], "declined");
    assert!(env.stripe.requests().iter().all(|r| !String::from_utf8_lossy(&r.body).contains("4242424242424242")));
    assert_eq!(env.installment_status(2).await, "due");
}

async fn stripe_webhooks_are_verified_and_applied_once(backend: Backend) {
    let env = env(backend).await;
    let payment: Value = env.pay("async-1", &env.card_payment(3, "pm_processing")).await.json().await.unwrap();
    assert_eq!(payment["status"], "processing", "{payment:#}");
    let id = payment["id"].as_str().unwrap().to_owned();
    let tx = payment["provider_tx_id"].as_str().unwrap().to_owned();
    let mut object = env.stripe.payment_intent_object(&tx).unwrap();
    object["status"] = json!("succeeded");
    let now = unix_now();
    let body = stripe_peer::event_payload("evt_e2e_1", "payment_intent.succeeded", object, now);

    // Signed over the original, sent with a tampered body.
    let tampered = body.replace("129900", "1");
    assert_ne!(tampered, body);
    let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, now);
    let headers = vec![("stripe-signature".to_owned(), sig)];
    assert_problem(env.webhook("stripe", &headers, &tampered).await, 400, "webhook-signature-invalid").await;
    assert_problem(env.stripe_webhook(&body, "whsec_wrong", now).await, 400, "webhook-signature-invalid").await;
    assert_problem(env.stripe_webhook(&body, STRIPE_WHSEC, now - 301).await, 400, "webhook-signature-invalid").await;
    assert_problem(env.webhook("stripe", &[], &body).await, 400, "webhook-signature-invalid").await;
    assert_eq!(env.payment(&id).await["status"], "processing", "nothing changed");

    let ok = env.stripe_webhook(&body, STRIPE_WHSEC, now).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(crate::payments::outcome(&ok), "applied");
    assert_eq!(env.payment(&id).await["status"], "succeeded");
    assert_eq!(env.installment_status(3).await, "paid");
    let replay = env.stripe_webhook(&body, STRIPE_WHSEC, now).await;
    assert_eq!(crate::payments::outcome(&replay), "duplicate");

    let collector = Collector::default();
    let events = consume_until(&env.app, "webhook-readers", &collector, |e| completed_for(e, &id) >= 1).await;
    assert_eq!(completed_for(&events, &id), 1, "one payment.completed for one payment");

    // Unknown provider: 404; an authentic event about a payment Lessor never created (and no
    // payment of ours waiting for its transaction id): 200 ignored, so Stripe stops retrying.
    assert_problem(env.webhook("paypal", &[], "{}").await, 404, "unknown-provider").await;
    let mut stray = env.stripe.payment_intent_object(&tx).unwrap();
    stray["id"] = json!("pi_not_ours");
    let stray = stripe_peer::event_payload("evt_e2e_2", "payment_intent.succeeded", stray, now);
    let ignored = env.stripe_webhook(&stray, STRIPE_WHSEC, now).await;
    assert_eq!(ignored.status(), 200);
    assert_eq!(crate::payments::outcome(&ignored), "ignored");
}

async fn bank_direct_debit_settles_and_returns(backend: Backend) {
    let env = env(backend).await;
    let mandate = json!({
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "mandate_reference": "LESSOR-0001",
        "mandate_signed_on": "2024-01-15",
        "debtor_name": "Erika Mustermann"
    });
    let method = env
        .app
        .client
        .put(env.app.url(&format!("/api/v1/leases/{}/payment-method", env.lease_id)))
        .bearer_auth(&env.customer)
        .json(&json!({"provider": "bank", "payment_method": mandate}))
        .send()
        .await
        .unwrap();
    assert_eq!(method.status(), 200);
    let method: Value = method.json().await.unwrap();
    assert_eq!(method["kind"], "sepa_mandate");
    assert!(!method.to_string().contains("0532013000"), "the IBAN is masked: {method}");

    let body = json!({
        "lease_id": env.lease_id, "installment_id": env.installments[4], "amount": 129900,
        "currency": "EUR", "provider": "bank", "payment_method": mandate,
    });
    let payment: Value = env.pay("sepa-1", &body).await.json().await.unwrap();
    assert_eq!(payment["status"], "processing", "{payment:#}");
    let id = payment["id"].as_str().unwrap().to_owned();
    let collection_id = payment["provider_tx_id"].as_str().unwrap().to_owned();
    let collection = env.bank.collection(&collection_id).unwrap();
    assert_eq!((collection.amount, collection.debtor_iban.as_str()), (129900, "DE89370400440532013000"));
    assert_eq!(env.installment_status(4).await, "due", "not paid before settlement");

    let now = unix_now();
    let settled = env.bank.event_for("bank-evt-1", "collection.settled", &collection_id, None, "2026-11-25T10:00:00Z");
    let delivery = bank::signed_webhook(BANK_WHSEC, &settled.unwrap(), now);
    let bad = bank::signed_webhook("not-the-secret", &delivery.body, now);
    assert_problem(env.webhook("bank", &bad.headers, &bad.body).await, 400, "webhook-signature-invalid").await;
    let response = env.webhook("bank", &delivery.headers, &delivery.body).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    assert_eq!(env.payment(&id).await["status"], "succeeded");
    assert_eq!(env.installment_status(4).await, "paid");

    let collector = Collector::default();
    consume_until(&env.app, "bank-readers", &collector, |e| completed_for(e, &id) == 1).await;

    // The debtor's bank sends the money back weeks later (R-transaction AM04).
    let returned =
        env.bank.event_for("bank-evt-2", "collection.returned", &collection_id, Some("AM04"), "2026-12-20T10:00:00Z");
    let delivery = bank::signed_webhook(BANK_WHSEC, &returned.unwrap(), now);
    let response = env.webhook("bank", &delivery.headers, &delivery.body).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let after = env.payment(&id).await;
    assert_eq!(after["status"], "returned", "{after:#}");
    assert_eq!(after["return_reason"], "AM04");
}

/// Outage, slowness past the deadline, 500 and garbage: the payment is left `pending`, never
/// failed and never charged twice; reconciliation asks again with the same key and resolves it.
async fn provider_faults_are_reconciled_without_double_charges(backend: Backend) {
    let env = env(backend).await;
    let faults = [Fault::Down, Fault::Status500, Fault::Garbage, Fault::Slow(Duration::from_millis(2500))];
    let mut pending = Vec::new();
    for (n, fault) in faults.into_iter().enumerate() {
        env.stripe.set_fault(fault).await;
        let response = env.pay(&format!("fault-{n}"), &env.card_payment(5 + n, "pm_card_visa")).await;
        let status = response.status().as_u16();
        let payment: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{fault:?}: {payment:#}");
        assert_eq!(payment["status"], "pending", "{fault:?} leaves the outcome open: {payment:#}");
        pending.push(payment["id"].as_str().unwrap().to_owned());
        env.stripe.set_fault(Fault::Normal).await;
    }
    // The slow call's charge went through at the peer after the host gave up.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let charged_before = env.stripe.charges_created();
    assert!(charged_before <= 1, "only the slow one may have charged: {charged_before}");

    let report =
        env.app.state.payments.reconcile_due(chrono::Utc::now() + chrono::Duration::hours(3), 100).await.unwrap();
    assert_eq!(report.payments_resolved, 4, "{report:?}");
    for id in &pending {
        assert_eq!(env.payment(id).await["status"], "succeeded", "{id}");
    }
    assert_eq!(env.stripe.charges_created(), 4, "one charge per payment, the slow one not twice");
    let again =
        env.app.state.payments.reconcile_due(chrono::Utc::now() + chrono::Duration::hours(6), 100).await.unwrap();
    assert_eq!(again.payments_checked, 0);
}

async fn due_installments_are_collected_once(backend: Backend) {
    let env = env(backend).await;
    let response = env
        .app
        .client
        .put(env.app.url(&format!("/api/v1/leases/{}/payment-method", env.lease_id)))
        .bearer_auth(&env.customer)
        .json(&json!({"provider": "stripe", "payment_method": "pm_card_visa"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let policy = host::startup::collection_policy(&host::Config::defaults());
    let job = Arc::new(lessor_payments::CollectionJob::new(env.app.state.payments.clone(), policy));
    // The first two installments are due by 2027-02-01; two runs at once charge each once.
    let day = chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap();
    let (a, b) = tokio::join!(job.run_once(day), job.run_once(day));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.succeeded + b.succeeded, 2, "{a:?} {b:?}");
    assert_eq!(env.stripe.charges_created(), 2);
    assert_eq!(env.installment_status(0).await, "paid");
    assert_eq!(env.installment_status(1).await, "paid");
    assert_eq!(env.installment_status(2).await, "due");
    let rerun = job.run_once(day).await.unwrap();
    assert_eq!(rerun.attempted, 0, "{rerun:?}");
    assert_eq!(env.stripe.charges_created(), 2);
}

async fn refunds_are_partial_idempotent_and_capped(backend: Backend) {
    let env = env(backend).await;
    let payment: Value = env.pay("refund-me", &env.card_payment(6, "pm_card_visa")).await.json().await.unwrap();
    let id = payment["id"].as_str().unwrap().to_owned();
    let refund = |token: String, key: &'static str, body: Value| {
        let request = env
            .app
            .client
            .post(env.app.url(&format!("/api/v1/payments/{id}/refunds")))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    assert_problem(refund(env.customer.clone(), "r0", json!({"amount": 100})).await, 403, "forbidden").await;

    let first = refund(env.operator.clone(), "r1", json!({"amount": 50000, "reason": "requested_by_customer"})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!((first["status"].as_str(), first["amount"].as_i64()), (Some("succeeded"), Some(50000)), "{first:#}");
    let replay: Value = refund(env.operator.clone(), "r1", json!({"amount": 50000, "reason": "requested_by_customer"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(env.payment(&id).await["status"], "partially_refunded");

    // More than is left (79,900) is refused and changes nothing.
    let over = refund(env.operator.clone(), "r2", json!({"amount": 80000})).await;
    assert!(matches!(over.status().as_u16(), 409 | 422), "{}", over.status());
    assert_eq!(env.stripe.refunds().len(), 1);

    let rest: Value = refund(env.operator.clone(), "r3", json!({})).await.json().await.unwrap();
    assert_eq!((rest["status"].as_str(), rest["amount"].as_i64()), (Some("succeeded"), Some(79900)), "{rest:#}");
    let after = env.payment(&id).await;
    assert_eq!((after["status"].as_str(), after["refunded_amount"].as_i64()), (Some("refunded"), Some(129900)));
    let total: i64 = env.stripe.refunds().iter().map(|r| r.amount).sum();
    assert_eq!(total, 129900, "the provider refunded exactly what was captured");
    let more = refund(env.operator.clone(), "r4", json!({"amount": 1})).await;
    assert!(matches!(more.status().as_u16(), 409 | 422), "{}", more.status());
    let listed: Value =
        env.app.get_authed(&format!("/api/v1/payments/{id}/refunds"), &env.operator).await.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);
}

crate::on_each_backend!(
    card_payment_end_to_end,
    refunds_are_partial_idempotent_and_capped,
    one_key_one_payment_under_concurrency,
    card_numbers_and_bad_input_are_refused,
    stripe_webhooks_are_verified_and_applied_once,
    bank_direct_debit_settles_and_returns,
    provider_faults_are_reconciled_without_double_charges,
    due_installments_are_collected_once,
);

/// A redis-server of this test's own, on its own port, stopped and started at will.
struct OwnRedis {
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnRedis {
    fn start(port: u16) -> Self {
        let mut me = Self { port, child: None };
        me.restart();
        me
    }

    fn restart(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Redis stops while payments complete, then comes back: every payment.completed reaches the
/// stream, and each consumer group gets each one exactly once.
#[tokio::test]
async fn events_survive_a_redis_outage() {
    let mut redis = OwnRedis::start(free_port());
    let url = redis.url();
    let env = env_with(Backend::Postgres, |c| {
        c.redis = Some(host::config::RedisTarget(url::Url::parse(&url).unwrap()));
    })
    .await;
    let viewer = lessor_payments::Viewer { user_id: uuid::Uuid::nil(), is_staff: true };
    let env = &env;
    let pay = async |n: usize| {
        let body = env.card_payment(n, "pm_card_visa");
        let new = lessor_payments::NewPayment::parse(&body, chrono::Utc::now().date_naive()).unwrap();
        let p = env.app.state.payments.create(viewer, &new, None).await.unwrap();
        assert_eq!(p.status.to_string(), "succeeded");
        p.id.to_string()
    };
    let mut ids = vec![pay(0).await, pay(1).await];
    redis.stop();
    for n in 2..8 {
        ids.push(pay(n).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    for n in 8..10 {
        ids.push(pay(n).await);
    }
    for group in ["outage-a", "outage-b"] {
        let collector = Collector::default();
        let events =
            consume_until(&env.app, group, &collector, |e| ids.iter().all(|id| completed_for(e, id) >= 1)).await;
        for id in &ids {
            assert_eq!(completed_for(&events, id), 1, "{group}: payment {id} delivered once");
        }
        assert_eq!(events.len(), ids.len(), "{group}: nothing else, nothing twice");
    }
}

/// `host collect-due` runs a collection pass from the command line.
#[tokio::test]
async fn collect_due_runs_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .env_clear()
        .env("LESSOR_DATA_DIR", dir.path().join("data"))
        .env("LESSOR_PLUGIN_CACHE_DIR", crate::plugins::shared_cache())
        .args(["collect-due", "--date", "2027-01-01"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("collection for 2027-01-01: 0 attempted"), "{stdout}");
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_host"))
        .env_clear()
        .env("LESSOR_DATA_DIR", dir.path().join("data"))
        .args(["collect-due", "--date", "yesterday"])
        .output()
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "clap refuses a bad date");
}
