//! WIT `lessor:payments@0.2.0` end to end (issue 13): a frozen 0.1.0 component and 0.2.0 ones
//! installed side by side, a batch webhook answered with the plugin's own reply, capabilities
//! refused before the plugin is called, and reconciliation of a lost answer through
//! `retrieve-payment` without a second charge.

use host::plugins::RuntimeChecker;
use lessor_plugin_registry::Package;
use serde_json::{Value, json};

use crate::helpers::Backend;
use crate::payments::{Env, env_with};
use crate::plugin_build::packages_dir;

const BATCH_SECRET: &str = "batch-s3cret";

async fn install(env: &Env, name: &str) {
    let package = Package::load(&packages_dir().join(name)).unwrap();
    let checker = RuntimeChecker::new(env.app.state.providers.runtime().clone());
    env.app.state.providers.registry().install(&package, &[], &checker).await.unwrap();
    env.app.state.providers.refresh().await.unwrap();
}

async fn with_plugins(backend: Backend, names: &[&str]) -> Env {
    let env = env_with(backend, |c| c.plugins.settings.set("batch-webhooks", "webhook_secret", BATCH_SECRET)).await;
    for name in names {
        install(&env, name).await;
    }
    env
}

async fn pay(env: &Env, provider: &str, key: &str, method: Value) -> (u16, Value) {
    let body = json!({"lease_id": env.lease_id, "amount": 1000, "currency": "EUR", "provider": provider,
                      "payment_method": method});
    let response = env.pay(key, &body).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn refund(env: &Env, payment_id: &str, key: &str, amount: Option<i64>) -> reqwest::Response {
    let body = match amount {
        Some(amount) => json!({ "amount": amount }),
        None => json!({}),
    };
    env.app
        .client
        .post(env.app.url(&format!("/api/v1/payments/{payment_id}/refunds")))
        .bearer_auth(&env.operator)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn a_0_1_0_and_a_0_2_0_component_pay_side_by_side(backend: Backend) {
    let env = with_plugins(backend, &["legacy-v0-1", "batch-webhooks"]).await;
    let wit = |name: &str| env.app.state.providers.get(name).unwrap().wit_version().package();
    assert_eq!((wit("legacy"), wit("batch-webhooks")), ("lessor:payments@0.1.0", "lessor:payments@0.2.0"));

    let (status, old) = pay(&env, "legacy", "side-old", json!("tok_1")).await;
    assert_eq!((status, old["status"].as_str()), (201, Some("succeeded")), "{old:#}");
    assert_eq!(old["provider_tx_id"], format!("legacy-{}", old["id"].as_str().unwrap()));
    let (status, new) = pay(&env, "batch-webhooks", "side-new", json!("tok_2")).await;
    assert_eq!((status, new["status"].as_str()), (201, Some("succeeded")), "{new:#}");
    assert_eq!(new["provider_tx_id"], format!("batch-{}", new["id"].as_str().unwrap()));
    // And the stock 0.2.0 Stripe plugin beside them.
    let (status, stripe) = pay(&env, "stripe", "side-stripe", json!("pm_card_visa")).await;
    assert_eq!((status, stripe["status"].as_str()), (201, Some("succeeded")), "{stripe:#}");
}

async fn a_batch_of_three_events_is_answered_with_the_plugins_reply(backend: Backend) {
    let env = with_plugins(backend, &["batch-webhooks"]).await;
    let (_, first) = pay(&env, "batch-webhooks", "batch-1", json!("tok_1")).await;
    let (_, second) = pay(&env, "batch-webhooks", "batch-2", json!("tok_2")).await;
    let response = refund(&env, first["id"].as_str().unwrap(), "batch-r1", Some(400)).await;
    assert_eq!(response.status(), 201);
    let pending: Value = response.json().await.unwrap();
    assert_eq!(pending["status"], "pending", "{pending:#}");
    let body = format!(
        "ev-1;payment-succeeded;{};1000;EUR\nev-2;payment-succeeded;{}\nev-3;refund-succeeded;{};400;EUR;batch-refund-{}\n",
        first["provider_tx_id"].as_str().unwrap(),
        second["provider_tx_id"].as_str().unwrap(),
        first["provider_tx_id"].as_str().unwrap(),
        pending["id"].as_str().unwrap(),
    );
    let deliver = || async {
        env.app
            .client
            .post(env.app.url("/webhooks/batch-webhooks"))
            .header("x-batch-signature", BATCH_SECRET)
            .body(body.clone())
            .send()
            .await
            .unwrap()
    };

    let response = deliver().await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.headers()["lessor-webhook-outcome"], "applied");
    assert_eq!(response.text().await.unwrap(), "[accepted]", "the plugin's body, verbatim");
    let refunds: Value = env
        .app
        .get_authed(&format!("/api/v1/payments/{}/refunds", first["id"].as_str().unwrap()), &env.operator)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refunds["items"][0]["status"], "succeeded", "{refunds:#}");
    assert_eq!(env.payment(first["id"].as_str().unwrap()).await["refunded_amount"], 400);

    // Delivered again: every event is a duplicate, the answer the same.
    let again = deliver().await;
    assert_eq!((again.status().as_u16(), crate::payments::outcome(&again).as_str()), (200, "duplicate"));
    assert_eq!(again.text().await.unwrap(), "[accepted]");

    // A forged one: 400, nothing applied.
    let forged = env
        .app
        .client
        .post(env.app.url("/webhooks/batch-webhooks"))
        .header("x-batch-signature", "guess")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
}

async fn undeclared_capabilities_are_refused_before_the_plugin_is_called(backend: Backend) {
    let env = with_plugins(backend, &["minimal"]).await;
    let calls = |function: &str| {
        let metrics = env.app.state.providers.runtime().metrics();
        ["ok", "sandbox", "declined", "invalid_request"]
            .iter()
            .map(|o| metrics.calls("minimal", "0.1.0", function, o))
            .sum::<u64>()
    };
    // A SEPA mandate to a provider of tokens only: 422 naming the field, the plugin not called.
    let mandate = json!({"iban": "DE89370400440532013000", "mandate_reference": "M-1",
                         "mandate_signed_on": "2024-01-15", "debtor_name": "Max Mustermann"});
    let (status, problem) = pay(&env, "minimal", "caps-sepa", mandate).await;
    assert_eq!(status, 422, "{problem:#}");
    assert_eq!(problem["errors"][0]["field"], "payment_method", "{problem:#}");
    assert!(problem["errors"][0]["reason"].as_str().unwrap().contains("sepa_mandate"), "{problem:#}");
    assert_eq!(calls("validate") + calls("process"), 0);

    // A refund from a provider without refunds: 422, nothing reserved, the plugin not called.
    let (status, paid) = pay(&env, "minimal", "caps-pay", json!("tok_1")).await;
    assert_eq!((status, paid["status"].as_str()), (201, Some("succeeded")), "{paid:#}");
    let response = refund(&env, paid["id"].as_str().unwrap(), "caps-refund", None).await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(problem["errors"][0]["reason"].as_str().unwrap().contains("does not take refunds"), "{problem:#}");
    assert_eq!(calls("refund"), 0);
    assert_eq!(env.payment(paid["id"].as_str().unwrap()).await["refunded_amount"], 0);
}

async fn a_lost_answer_is_reconciled_by_retrieve_without_a_second_charge(backend: Backend) {
    let env = with_plugins(backend, &[]).await;
    // Stripe takes the charge, but its answer is lost on the way back.
    env.stripe.set_lose_answers(true);
    let (status, pending) = pay(&env, "stripe", "lost-answer", json!("pm_card_visa")).await;
    env.stripe.set_lose_answers(false);
    assert_eq!((status, pending["status"].as_str()), (201, Some("pending")), "{pending:#}");
    assert_eq!(env.stripe.charges_created(), 1);

    let later = chrono::Utc::now() + chrono::Duration::hours(1);
    let report = env.app.state.payments.reconcile_due(later, 100).await.unwrap();
    assert_eq!((report.payments_checked, report.payments_resolved), (1, 1), "{report:?}");

    let payment = env.payment(pending["id"].as_str().unwrap()).await;
    assert_eq!(payment["status"], "succeeded", "{payment:#}");
    assert_eq!(payment["provider_tx_id"], env.stripe.payment_intents()[0].id);
    assert_eq!(env.stripe.charges_created(), 1, "found by retrieve-payment: not charged twice");
    let requests = env.stripe.requests();
    let posts = requests.iter().filter(|r| r.method == "POST" && r.path == "/v1/payment_intents").count();
    assert_eq!(posts, 1, "process was not called again");
    assert!(requests.iter().any(|r| r.method == "GET" && r.path == "/v1/payment_intents/search"));
}

crate::on_each_backend!(
    a_0_1_0_and_a_0_2_0_component_pay_side_by_side,
    a_batch_of_three_events_is_answered_with_the_plugins_reply,
    undeclared_capabilities_are_refused_before_the_plugin_is_called,
    a_lost_answer_is_reconciled_by_retrieve_without_a_second_charge,
);
