//! Card numbers are refused wherever they stand in a request, whatever separates their digits
//! (issue 11 item 13): `POST /api/v1/payments` and `PUT /api/v1/leases/{id}/payment-method`
//! answer 422 naming the field, never echo the number, and nothing reaches the provider.
//! Look-alikes (tokens, IBANs, dates, phone numbers) are accepted.

use serde_json::{Value, json};

use crate::helpers::{Backend, assert_problem};
use crate::payments::{Env, env};

/// Luhn-valid test cards, written as people paste them.
const SEPARATED: &[&str] = &[
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111.1111.1111.1111",
    "4111_1111_1111_1111",
    "4111/1111/1111/1111",
    "5555 5555 5555 4444",
    "3782 822463 10005",
    "please charge 4000.0566.5566.5556 today",
];

fn payment_body(env: &Env, method: Value) -> Value {
    json!({
        "lease_id": env.lease_id,
        "installment_id": env.installments[1],
        "amount": 129900,
        "currency": "EUR",
        "provider": "stripe",
        "payment_method": method,
    })
}

async fn put_method(env: &Env, body: &Value) -> reqwest::Response {
    env.app
        .client
        .put(env.app.url(&format!("/api/v1/leases/{}/payment-method", env.lease_id)))
        .bearer_auth(&env.customer)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The 422 names exactly `field` and does not contain the card's digits.
async fn assert_card_refused(response: reqwest::Response, field: &str, card: &str) {
    let problem = assert_problem(response, 422, "validation").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, [field], "{card}: {problem:#}");
    let digits: String = card.chars().filter(char::is_ascii_digit).collect();
    let text = problem.to_string();
    assert!(!text.contains(&digits[4..12]) && !text.contains(&card[..9]), "the number is echoed: {text}");
}

async fn separated_card_numbers_are_refused_everywhere(backend: Backend) {
    let env = env(backend).await;
    for (n, card) in SEPARATED.iter().enumerate() {
        // As the payment method.
        let response = env.pay(&format!("sep-{n}"), &payment_body(&env, json!(card))).await;
        assert_card_refused(response, "payment_method", card).await;
        // Deep inside a mandate object (a field that would be refused anyway: only the card is named).
        let mandate = json!({"iban": "DE89370400440532013000", "mandate_reference": "M-1",
            "mandate_signed_on": "2025-01-31", "debtor_name": "Jane Roe", "bic": {"notes": [{"x": card}]}});
        let response = env.pay(&format!("deep-{n}"), &payment_body(&env, mandate.clone())).await;
        assert_card_refused(response, "payment_method.bic.notes[0].x", card).await;
        // As an object key (metadata the client invented).
        let mut keyed = payment_body(&env, json!("pm_card_visa"));
        keyed["extra"] = json!({ card.to_string(): true });
        assert_card_refused(env.pay(&format!("key-{n}"), &keyed).await, "extra.<key>", card).await;
        // On the lease's payment-method route.
        let response = put_method(&env, &json!({"provider": "stripe", "payment_method": card})).await;
        assert_card_refused(response, "payment_method", card).await;
        let response = put_method(&env, &json!({"provider": "bank", "payment_method": mandate})).await;
        assert_card_refused(response, "payment_method.bic.notes[0].x", card).await;
    }
    // The Idempotency-Key header is stored: refused there too.
    let response = env.pay("key 4111-1111-1111-1111", &payment_body(&env, json!("pm_card_visa"))).await;
    let problem = assert_problem(response, 422, "validation").await;
    assert_eq!(problem["errors"][0]["field"].as_str().map(str::to_ascii_lowercase).as_deref(), Some("idempotency-key"));
    assert!(!problem.to_string().contains("1111"), "{problem:#}");
    // A refund reason too.
    let paid: Value =
        env.pay("paid-for-refund", &payment_body(&env, json!("pm_card_visa"))).await.json().await.unwrap();
    let response = env
        .app
        .client
        .post(env.app.url(&format!("/api/v1/payments/{}/refunds", paid["id"].as_str().unwrap())))
        .bearer_auth(&env.operator)
        .header("idempotency-key", "refund-card")
        .json(&json!({"amount": 100, "reason": "card 4111_1111_1111_1111 was charged twice"}))
        .send()
        .await
        .unwrap();
    assert_card_refused(response, "reason", "4111_1111_1111_1111").await;

    // Nothing card-like reached Stripe.
    for request in env.stripe.requests() {
        let text = String::from_utf8_lossy(&request.body).replace(['+', '-', '.', '_', '/', ' '], "");
        assert!(!text.contains("4111111111111111") && !text.contains("5555555555554444"), "{text}");
    }
    assert_eq!(env.stripe.charges_created(), 1, "only the token payment was charged");
}

async fn look_alikes_are_accepted(backend: Backend) {
    let env = env(backend).await;
    // Stripe tokens pass and are charged.
    for (n, token) in ["pm_card_visa", "tok_visa"].iter().enumerate() {
        let mut body = payment_body(&env, json!(token));
        body["installment_id"] = json!(env.installments[n + 2]);
        let response = env.pay(&format!("token-{n}"), &body).await;
        assert_eq!(response.status(), 201, "{token}: {:?}", response.text().await);
    }
    // A SEPA mandate whose fields hold an IBAN in groups, a date, a reference with slashes and a
    // phone number in the debtor's name: not card numbers.
    let mandate = json!({
        "iban": "DE89 3704 0044 0532 0130 00",
        "bic": "COBADEFFXXX",
        "mandate_reference": "M-2025/01/31-0001",
        "mandate_signed_on": "2025-01-31",
        "debtor_name": "Jane Roe, +49 170 1234 5678 901",
    });
    let response = put_method(&env, &json!({"provider": "bank", "payment_method": mandate})).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    let token = json!({"provider": "stripe", "payment_method": "pm_1N3T2kLkdIwHu7ixkdXUhWtd"});
    assert_eq!(put_method(&env, &token).await.status(), 200);
    // A refund reason with dates, an invoice number and a phone number.
    let paid: Value =
        env.pay("paid-look-alike", &payment_body(&env, json!("pm_card_visa"))).await.json().await.unwrap();
    let response = env
        .app
        .client
        .post(env.app.url(&format!("/api/v1/payments/{}/refunds", paid["id"].as_str().unwrap())))
        .bearer_auth(&env.operator)
        .header("idempotency-key", "refund-look-alike")
        .json(&json!({"amount": 100, "reason": "invoice 2025/01/31-0042, call 0049 170 1234 5678 9, GB29 NWBK 6016 1331 9268 19"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}

/// A provider whose tokens are 16 digits (like Adyen's `storedPaymentMethodId`) declares it in
/// its manifest (`[token-formats]`); such a token is accepted for that provider even when it
/// passes Luhn, and refused in any other field and for any other provider.
async fn a_declared_token_format_is_accepted_for_its_provider_only(backend: Backend) {
    let env = env(backend).await;
    // The echo plugin, packaged with a token format.
    let dir = tempfile::tempdir().unwrap();
    let source = crate::plugin_build::packages_dir().join("echo-v1");
    for entry in std::fs::read_dir(&source).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    let manifest = std::fs::read_to_string(dir.path().join("plugin.toml")).unwrap();
    std::fs::write(dir.path().join("plugin.toml"), format!("{manifest}\n[token-formats]\ncard = \"[0-9]{{16}}\"\n"))
        .unwrap();
    let package = lessor_plugin_registry::Package::load(dir.path()).unwrap();
    let checker = host::plugins::RuntimeChecker::new(env.app.state.providers.runtime().clone());
    env.app.state.providers.registry().install(&package, &[], &checker).await.unwrap();
    env.app.state.providers.refresh().await.unwrap();
    let token = "4111111111111111"; // 16 digits, passes Luhn
    let body = |provider: &str, method: &str| json!({"lease_id": env.lease_id, "amount": 1000, "currency": "EUR", "provider": provider, "payment_method": method});

    let response = env.pay("declared", &body("echo", token)).await;
    let status = response.status();
    let payment: Value = response.json().await.unwrap();
    assert_eq!((status.as_u16(), payment["status"].as_str()), (201, Some("succeeded")), "{payment:#}");
    // Another provider declares no such format.
    assert_card_refused(env.pay("other-provider", &body("stripe", token)).await, "payment_method", token).await;
    // Not the declared format (grouped digits): refused as a card number.
    let grouped = "4111 1111 1111 1111";
    assert_card_refused(env.pay("grouped", &body("echo", grouped)).await, "payment_method", grouped).await;
    // The token is fine for echo, the same digits anywhere else in the request are not.
    let mut elsewhere = body("echo", token);
    elsewhere["note"] = json!(token);
    assert_card_refused(env.pay("elsewhere", &elsewhere).await, "note", token).await;
    let response = env
        .app
        .client
        .post(env.app.url("/api/v1/payments"))
        .bearer_auth(&env.customer)
        .header("idempotency-key", token)
        .json(&body("echo", token))
        .send()
        .await
        .unwrap();
    assert_card_refused(response, "Idempotency-Key", token).await;

    // The lease's payment method: the same rule.
    let ok = put_method(&env, &json!({"provider": "echo", "payment_method": token})).await;
    assert_eq!(ok.status(), 200, "{:?}", ok.text().await);
    let refused = put_method(&env, &json!({"provider": "bank", "payment_method": token})).await;
    assert_card_refused(refused, "payment_method", token).await;
}

crate::on_each_backend!(
    separated_card_numbers_are_refused_everywhere,
    look_alikes_are_accepted,
    a_declared_token_format_is_accepted_for_its_provider_only
);
