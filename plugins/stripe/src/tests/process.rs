//! `process`: one confirming `POST /v1/payment_intents`.

use lessor_plugin_sdk::http::{Error, Method};
use lessor_plugin_sdk::testing::{self, Harness};
use lessor_plugin_sdk::{PaymentOutcome, PaymentStatus, ProviderError};

use super::{API_BASE, SECRET_KEY, error_body, stripe_answering};
use crate::Stripe;

/// Stripe's documented PaymentIntent object (API 2024-06-20), confirmed and succeeded.
const SUCCEEDED: &str = r#"{
  "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent", "amount": 45000,
  "amount_capturable": 0, "amount_received": 45000, "capture_method": "automatic",
  "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
  "confirmation_method": "automatic", "created": 1680800504, "currency": "eur",
  "last_payment_error": null, "latest_charge": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "livemode": false,
  "metadata": {"payment_id": "9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d"}, "next_action": null,
  "payment_method": "pm_1MtwBwLkdIwHu7ixbVLk3wsD", "payment_method_types": ["card"], "status": "succeeded"
}"#;

fn card_payment() -> lessor_plugin_sdk::PaymentRequest {
    testing::payment_request(45000, "EUR", "pm_1MtwBwLkdIwHu7ixbVLk3wsD")
}

#[test]
fn a_confirmed_payment_intent_is_created_with_the_key_the_version_and_the_idempotency_key() {
    let harness = stripe_answering("/v1/payment_intents", 200, SUCCEEDED);

    let outcome = harness.process::<Stripe>(card_payment());

    assert_eq!(outcome, Ok(PaymentOutcome::succeeded("pi_3MtwBwLkdIwHu7ix28a3tqPa")));
    let sent = harness.only_request();
    assert_eq!(sent.line(), format!("POST {API_BASE}/v1/payment_intents"));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(sent.header("idempotency-key"), Some("idem-9b2f6c1e"));
    assert_eq!(sent.header("stripe-version"), Some("2024-06-20"));
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    let form: Vec<(String, String)> = sent.form();
    let expected = [
        ("amount", "45000"),
        ("currency", "eur"),
        ("payment_method", "pm_1MtwBwLkdIwHu7ixbVLk3wsD"),
        ("payment_method_types[]", "card"),
        ("confirm", "true"),
        ("metadata[payment_id]", "9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d"),
        ("metadata[lease_id]", "lease-1"),
        ("metadata[installment_id]", "installment-1"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(form, expected);
    assert!(
        harness.logs().iter().all(|line| !format!("{line:?}").contains(SECRET_KEY)),
        "the secret key is never logged"
    );
}

#[test]
fn without_api_base_the_request_goes_to_stripe_and_own_metadata_is_added_within_limits() {
    let harness = lessor_plugin_sdk::testing::Harness::new().secret("secret_key", SECRET_KEY).respond(
        Method::Post,
        "https://api.stripe.com/v1/payment_intents",
        testing::json(200, SUCCEEDED),
    );
    let mut request = card_payment();
    request.metadata = vec![
        ("contract".to_owned(), "C-17".to_owned()),
        ("payment_id".to_owned(), "forged".to_owned()),
        ("bad[key]".to_owned(), "x".to_owned()),
    ];

    assert!(harness.process::<Stripe>(request).is_ok());

    let sent = harness.only_request();
    assert_eq!(sent.form_field("metadata[contract]").as_deref(), Some("C-17"));
    assert_eq!(sent.form_field("metadata[payment_id]").as_deref(), Some("9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d"));
    assert_eq!(sent.form().iter().filter(|(k, _)| k == "metadata[payment_id]").count(), 1);
    assert_eq!(sent.form_field("metadata[bad[key]]"), None);
}

#[test]
fn requires_action_carries_the_redirect_url() {
    let body = r#"{"id": "pi_3Mtw3DS", "object": "payment_intent", "amount": 45000, "currency": "eur",
        "status": "requires_action", "next_action": {"type": "redirect_to_url",
        "redirect_to_url": {"return_url": "https://lessor.test/return", "url": "https://hooks.stripe.com/3d_secure_2/hosted?x=1"}}}"#;
    let harness = stripe_answering("/v1/payment_intents", 200, body);

    let outcome = harness.process::<Stripe>(card_payment()).unwrap();

    assert_eq!(outcome.status, PaymentStatus::RequiresAction);
    assert_eq!(outcome.provider_transaction_id, "pi_3Mtw3DS");
    assert_eq!(outcome.next_action_url.as_deref(), Some("https://hooks.stripe.com/3d_secure_2/hosted?x=1"));
}

#[test]
fn a_declined_card_fails_the_payment_with_the_issuers_decline_code() {
    let body = r#"{"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.", "charge": "ch_3MtwDecl",
        "payment_intent": {"id": "pi_3MtwDecl", "object": "payment_intent", "status": "requires_payment_method"}}}"#;
    let harness = stripe_answering("/v1/payment_intents", 402, body);

    let outcome = harness.process::<Stripe>(card_payment());

    assert_eq!(outcome, Ok(PaymentOutcome::failed("pi_3MtwDecl", "insufficient_funds")));
}

#[test]
fn stripe_errors_map_to_retryable_field_or_internal_errors() {
    let cases = [
        (500, r#"{"error":{"type":"api_error","message":"boom"}}"#.to_owned(), "provider-unavailable"),
        (409, error_body("idempotency_error", "", None, "in flight"), "provider-unavailable"),
        (
            400,
            error_body(
                "idempotency_error",
                "",
                None,
                "Keys for idempotent requests can only be used with the same parameters",
            ),
            "idempotency-key",
        ),
        (401, error_body("invalid_request_error", "", None, "Invalid API Key provided"), "misconfigured secret_key"),
        (403, error_body("invalid_request_error", "", None, "restricted key"), "misconfigured secret_key"),
        (
            400,
            error_body("invalid_request_error", "parameter_invalid_integer", Some("amount"), "Invalid integer"),
            "amount.amount",
        ),
        (200, "<html>not json</html>".to_owned(), "provider-unavailable"),
    ];
    for (status, body, expected) in cases {
        let harness = stripe_answering("/v1/payment_intents", status, &body);
        let got = match harness.process::<Stripe>(card_payment()) {
            Err(ProviderError::ProviderUnavailable(_)) => "provider-unavailable".to_owned(),
            Err(ProviderError::Internal(_)) => "internal".to_owned(),
            Err(ProviderError::Misconfigured(key)) => format!("misconfigured {key}"),
            Err(ProviderError::InvalidRequest(field)) => field.field,
            other => panic!("HTTP {status}: unexpected {other:?}"),
        };
        assert_eq!(got, expected, "HTTP {status} {body}");
    }
}

#[test]
fn a_timeout_is_retryable_and_a_denied_origin_is_egress_denied() {
    let harness =
        Harness::new().secret("secret_key", SECRET_KEY).fail(Method::Post, "https://api.stripe.com/*", Error::Timeout);
    assert!(matches!(harness.process::<Stripe>(card_payment()), Err(ProviderError::ProviderUnavailable(_))));

    let denied = Error::Denied("https://api.stripe.com".to_owned());
    let harness = Harness::new().secret("secret_key", SECRET_KEY).unmatched(denied);
    let outcome = harness.process::<Stripe>(card_payment());
    assert_eq!(outcome, Err(ProviderError::EgressDenied("https://api.stripe.com".to_owned())));
}

#[test]
fn a_bad_token_amount_or_missing_key_is_refused_before_any_request() {
    let harness = Harness::new().secret("secret_key", SECRET_KEY);
    let bad_token = testing::payment_request(45000, "EUR", "4242424242424242");
    assert_eq!(harness.process::<Stripe>(bad_token).map_err(|e| field_of(&e)), Err("payment-method".to_owned()));
    let zero = testing::payment_request(0, "EUR", "pm_1");
    assert_eq!(harness.process::<Stripe>(zero).map_err(|e| field_of(&e)), Err("amount.amount".to_owned()));
    let yen = testing::payment_request(100, "JPY", "pm_1");
    assert_eq!(harness.process::<Stripe>(yen).map_err(|e| field_of(&e)), Err("amount.currency".to_owned()));
    let sepa = testing::sepa_payment_request(45000, "EUR", "pm_1");
    assert_eq!(harness.process::<Stripe>(sepa).map_err(|e| field_of(&e)), Err("method-kind".to_owned()));
    assert!(harness.requests().is_empty());

    for no_key in [Harness::new(), Harness::new().secret("secret_key", " ")] {
        let error = no_key.process::<Stripe>(card_payment()).unwrap_err();
        assert_eq!(error, ProviderError::Misconfigured("secret_key".to_owned()));
        assert!(no_key.requests().is_empty());
    }
}

fn field_of(error: &ProviderError) -> String {
    match error {
        ProviderError::InvalidRequest(field) => field.field.clone(),
        other => format!("{other:?}"),
    }
}
