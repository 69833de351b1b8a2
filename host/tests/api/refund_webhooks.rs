//! Stripe refund webhooks against a running host (issue 11 item 14): the real Stripe plugin in
//! wasmtime, the Stripe peer emitting `charge.refunded` / `refund.*` events signed with
//! `Stripe-Signature` as Stripe does. Refunds are applied once whichever way and order they
//! arrive, events about objects Lessor never created are acknowledged (`ignored`), and 409
//! ("deliver again later") is kept only within the retry window.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Backend, assert_problem};
use crate::payments::{Env, STRIPE_WHSEC, env, env_with};
use crate::peers::stripe::{self as stripe_peer, Delivery};
use crate::peers::{Fault, unix_now};

impl Env {
    fn endpoint(&self) -> String {
        self.app.url("/webhooks/stripe")
    }

    async fn paid(&self, key: &str, installment: usize) -> (String, String) {
        let body = json!({"lease_id": self.lease_id, "installment_id": self.installments[installment],
            "amount": 129900, "currency": "EUR", "provider": "stripe", "payment_method": "pm_card_visa"});
        let payment: Value = self.pay(key, &body).await.json().await.unwrap();
        assert_eq!(payment["status"], "succeeded", "{payment:#}");
        (payment["id"].as_str().unwrap().to_owned(), payment["provider_tx_id"].as_str().unwrap().to_owned())
    }

    async fn api_refund(&self, payment_id: &str, key: &str, amount: i64) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url(&format!("/api/v1/payments/{payment_id}/refunds")))
            .bearer_auth(&self.operator)
            .header("idempotency-key", key)
            .json(&json!({"amount": amount}))
            .send()
            .await
            .unwrap()
    }

    async fn refunds(&self, payment_id: &str) -> Vec<Value> {
        let listed: Value = self
            .app
            .get_authed(&format!("/api/v1/payments/{payment_id}/refunds"), &self.operator)
            .await
            .json()
            .await
            .unwrap();
        listed["items"].as_array().unwrap().clone()
    }

    async fn deliver(&self) -> Vec<Delivery> {
        self.stripe.deliver_new(&self.endpoint(), STRIPE_WHSEC).await
    }

    async fn redeliver(&self, event_id: &str) -> Delivery {
        self.stripe.redeliver(&self.endpoint(), STRIPE_WHSEC, event_id).await
    }
}

/// Every delivery answered 200; the `status` of each, by event type.
fn acknowledged(deliveries: &[Delivery]) -> Vec<(String, String)> {
    deliveries
        .iter()
        .map(|d| {
            assert_eq!(d.status, 200, "{d:?}");
            (d.kind.clone(), d.outcome.clone())
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

async fn api_refund_then_its_webhooks_are_200_and_applied_once(backend: Backend) {
    let env = env(backend).await;
    let (id, _) = env.paid("pay-1", 1).await;
    let refund = env.api_refund(&id, "refund-1", 50_000).await;
    assert_eq!(refund.status(), 201);
    let refund: Value = refund.json().await.unwrap();
    assert_eq!(refund["status"], "succeeded");
    let re = env.stripe.refunds()[0].id.clone();
    env.stripe.update_refund(&re, "succeeded");

    // Before: charge.refunded for a refund the API already recorded was a 409, for days.
    let answers = acknowledged(&env.deliver().await);
    assert_eq!(
        answers,
        pairs(&[("charge.refunded", "ignored"), ("refund.created", "ignored"), ("refund.updated", "ignored")])
    );
    let charge_refunded = env.stripe.events().into_iter().find(|e| e.kind == "charge.refunded").unwrap();
    assert_eq!(env.redeliver(&charge_refunded.id).await.outcome, "duplicate");
    let payment = env.payment(&id).await;
    assert_eq!(
        (payment["status"].as_str(), payment["refunded_amount"].as_i64()),
        (Some("partially_refunded"), Some(50_000))
    );
    assert_eq!(env.refunds(&id).await.len(), 1, "no second refund row");
}

async fn partial_refunds_with_cumulative_amounts_are_applied_once(backend: Backend) {
    let env = env(backend).await;
    let (id, _) = env.paid("pay-2", 2).await;
    assert_eq!(env.api_refund(&id, "r-a", 30_000).await.status(), 201);
    assert_eq!(env.api_refund(&id, "r-b", 20_000).await.status(), 201);
    // Delivered newest first (Stripe does not promise order): cumulative 50,000 then 30,000.
    let mut events = env.stripe.events();
    events.reverse();
    env.stripe.skip_undelivered();
    for event in events.iter().filter(|e| e.kind == "charge.refunded") {
        let delivery = env.redeliver(&event.id).await;
        assert_eq!((delivery.status, Some(delivery.outcome.as_str())), (200, Some("ignored")), "{delivery:?}");
    }
    assert_eq!(env.payment(&id).await["refunded_amount"], 50_000);

    // A third refund whose API answer is lost: Stripe executed it, the host keeps it pending.
    env.stripe.set_lose_answers(true);
    let pending: Value = env.api_refund(&id, "r-c", 30_000).await.json().await.unwrap();
    env.stripe.set_lose_answers(false);
    assert_eq!(pending["status"], "pending", "{pending:#}");
    assert_eq!(env.stripe.refunds().len(), 3, "Stripe executed it");
    let new: Vec<_> = env.stripe.events().into_iter().skip(events.len()).collect();
    env.stripe.skip_undelivered();
    // Its refund object first: it names the refund (WIT 0.2.0 `provider-refund-id`), whose id the
    // host does not have yet; our pending refund of that amount is it: applied once.
    let created = new.iter().find(|e| e.kind == "refund.created").unwrap();
    let applied = env.redeliver(&created.id).await;
    assert_eq!((applied.status, applied.outcome.as_str()), (200, "applied"), "{applied:?}");
    // The cumulative charge.refunded (80,000) adds nothing now.
    let charge = new.iter().find(|e| e.kind == "charge.refunded").unwrap();
    let ignored = env.redeliver(&charge.id).await;
    assert_eq!((ignored.status, ignored.outcome.as_str()), (200, "ignored"), "{ignored:?}");
    let retried = env.redeliver(&created.id).await;
    assert_eq!((retried.status, retried.outcome.as_str()), (200, "duplicate"), "{retried:?}");
    let payment = env.payment(&id).await;
    assert_eq!(payment["refunded_amount"], 80_000, "{payment:#}");
    let refunds = env.refunds(&id).await;
    assert_eq!(refunds.len(), 3);
    assert!(refunds.iter().all(|r| r["status"] == "succeeded"), "{refunds:#?}");

    // Every event again: nothing changes.
    for event in env.stripe.events() {
        let delivery = env.redeliver(&event.id).await;
        assert_eq!(delivery.status, 200, "{delivery:?}");
    }
    assert_eq!(env.payment(&id).await["refunded_amount"], 80_000);
    assert_eq!(env.refunds(&id).await.len(), 3);
}

async fn a_dashboard_refund_is_recorded_once(backend: Backend) {
    let env = env(backend).await;
    let (id, tx) = env.paid("pay-3", 3).await;
    // The refund object's event first: Lessor has no refund of that id, and nothing in flight.
    let re = env.stripe.dashboard_refund(&tx, 10_000);
    let mut events = env.stripe.events();
    events.reverse();
    env.stripe.skip_undelivered();
    let answers: Vec<_> = {
        let mut out = Vec::new();
        for event in &events {
            out.push(env.redeliver(&event.id).await);
        }
        acknowledged(&out)
    };
    assert_eq!(answers, pairs(&[("refund.created", "ignored"), ("charge.refunded", "applied")]));
    let charge_refunded = &events[1];
    assert_eq!(env.redeliver(&charge_refunded.id).await.outcome, "duplicate");
    let refunds = env.refunds(&id).await;
    assert_eq!(refunds.len(), 1, "{refunds:#?}");
    assert_eq!((refunds[0]["amount"].as_i64(), refunds[0]["status"].as_str()), (Some(10_000), Some("succeeded")));
    assert!(!re.is_empty());
    // A second one: only the new money (cumulative 15,000 − 10,000) is added.
    env.stripe.dashboard_refund(&tx, 5_000);
    let answers = acknowledged(&env.deliver().await);
    assert_eq!(answers, pairs(&[("charge.refunded", "applied"), ("refund.created", "ignored")]));
    let payment = env.payment(&id).await;
    assert_eq!((payment["refunded_amount"].as_i64(), env.refunds(&id).await.len()), (Some(15_000), 2));
}

async fn events_about_payments_lessor_never_created_are_ignored(backend: Backend) {
    let env = env(backend).await;
    env.paid("pay-4", 4).await;
    let now = unix_now();
    let foreign = [
        (
            "payment_intent.succeeded",
            json!({"id": "pi_elsewhere", "object": "payment_intent", "status": "succeeded",
            "amount": 500, "amount_received": 500, "currency": "eur"}),
        ),
        (
            "charge.refunded",
            json!({"id": "ch_elsewhere", "object": "charge", "payment_intent": "pi_elsewhere",
            "amount": 500, "amount_refunded": 500, "currency": "eur"}),
        ),
        (
            "refund.updated",
            json!({"id": "re_elsewhere", "object": "refund", "status": "succeeded", "amount": 500,
            "currency": "eur", "payment_intent": "pi_elsewhere"}),
        ),
    ];
    for (n, (kind, object)) in foreign.into_iter().enumerate() {
        let body = stripe_peer::event_payload(&format!("evt_foreign_{n}"), kind, object, now);
        let response = env.stripe_webhook_signed(&body, now).await;
        assert_eq!(response.status(), 200, "{kind}");
        assert_eq!(crate::payments::outcome(&response), "ignored", "{kind}");
    }
    let metrics = env.app.client.get(env.app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("lessor_webhook_events_ignored_total{provider=\"stripe\",reason=\"unmatched\"} 3"),
        "{metrics}"
    );
}

async fn a_just_created_payment_gets_409_only_within_the_window(backend: Backend) {
    let env = env_with(backend, |c| c.webhook_retry_window = Duration::from_secs(2)).await;
    // Stripe is unreachable: the payment exists, its PaymentIntent id is not known yet.
    env.stripe.set_fault(Fault::Down).await;
    let body = json!({"lease_id": env.lease_id, "installment_id": env.installments[5], "amount": 129900,
        "currency": "EUR", "provider": "stripe", "payment_method": "pm_card_visa"});
    let payment: Value = env.pay("pay-unknown", &body).await.json().await.unwrap();
    assert_eq!(payment["status"], "pending", "{payment:#}");
    env.stripe.set_fault(Fault::Normal).await;

    let now = unix_now();
    let object = json!({"id": "pi_not_stored_yet", "object": "payment_intent", "status": "succeeded",
        "amount": 129900, "amount_received": 129900, "currency": "eur"});
    let body = stripe_peer::event_payload("evt_early", "payment_intent.succeeded", object, now);
    let response = env.stripe_webhook_signed(&body, now).await;
    assert_eq!(response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()), Some("60".into()));
    assert_problem(response, 409, "event-not-applicable-yet").await;

    // Past the window the same event is acknowledged, not retried for days.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let now = unix_now();
    let response = env.stripe_webhook_signed(&body, now).await;
    assert_eq!(response.status(), 200);
    assert_eq!(crate::payments::outcome(&response), "ignored");
}

impl Env {
    async fn stripe_webhook_signed(&self, body: &str, ts: i64) -> reqwest::Response {
        self.app
            .client
            .post(self.endpoint())
            .header("content-type", "application/json")
            .header("stripe-signature", stripe_peer::sign_webhook(STRIPE_WHSEC, body, ts))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }
}

crate::on_each_backend!(
    api_refund_then_its_webhooks_are_200_and_applied_once,
    partial_refunds_with_cumulative_amounts_are_applied_once,
    a_dashboard_refund_is_recorded_once,
    events_about_payments_lessor_never_created_are_ignored,
    a_just_created_payment_gets_409_only_within_the_window,
);
