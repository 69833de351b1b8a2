//! `refund`: `POST /v1/refunds` against the PaymentIntent.

use lessor_plugin_sdk::testing::{self, Harness};
use lessor_plugin_sdk::{ProviderError, RefundOutcome, RefundStatus};

use super::{API_BASE, SECRET_KEY, error_body, stripe_answering};
use crate::Stripe;

/// Stripe's documented Refund object.
fn refund_object(status: &str, failure_reason: Option<&str>) -> String {
    let failure_reason = failure_reason.map(|r| format!(r#""{r}""#)).unwrap_or_else(|| "null".to_owned());
    format!(
        r#"{{"id": "re_3MtwCJLkdIwHu7ix1Y1V8Zm9", "object": "refund", "amount": 4000,
        "balance_transaction": "txn_3MtwCJ", "charge": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "created": 1680800531,
        "currency": "eur", "metadata": {{}}, "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "reason": null,
        "receipt_number": null, "source_transfer_reversal": null, "status": "{status}",
        "failure_reason": {failure_reason}, "transfer_reversal": null}}"#
    )
}

fn refund_of_intent() -> lessor_plugin_sdk::RefundRequest {
    testing::refund_request("pi_3MtwBwLkdIwHu7ix28a3tqPa", 4000, "EUR")
}

#[test]
fn a_partial_refund_is_requested_with_the_intent_amount_ids_and_idempotency_key() {
    let harness = stripe_answering("/v1/refunds", 200, &refund_object("succeeded", None));
    let mut request = refund_of_intent();
    request.reason = Some("requested_by_customer".to_owned());

    let outcome = harness.refund::<Stripe>(request);

    assert_eq!(outcome, Ok(RefundOutcome::new(RefundStatus::Succeeded, "re_3MtwCJLkdIwHu7ix1Y1V8Zm9")));
    let sent = harness.only_request();
    assert_eq!(sent.line(), format!("POST {API_BASE}/v1/refunds"));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(sent.header("idempotency-key"), Some("idem-refund-1"));
    assert_eq!(sent.header("stripe-version"), Some("2024-06-20"));
    let expected = [
        ("payment_intent", "pi_3MtwBwLkdIwHu7ix28a3tqPa"),
        ("amount", "4000"),
        ("metadata[refund_id]", "refund-1"),
        ("metadata[payment_id]", "9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d"),
        ("reason", "requested_by_customer"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    assert_eq!(sent.form(), expected);
}

#[test]
fn a_reason_stripe_does_not_know_goes_to_metadata() {
    let harness = stripe_answering("/v1/refunds", 200, &refund_object("pending", None));
    let mut request = refund_of_intent();
    request.reason = Some("vehicle returned early".to_owned());

    let outcome = harness.refund::<Stripe>(request).unwrap();

    assert_eq!(outcome.status, RefundStatus::Pending);
    let sent = harness.only_request();
    assert_eq!(sent.form_field("reason"), None);
    assert_eq!(sent.form_field("metadata[reason]").as_deref(), Some("vehicle returned early"));
}

#[test]
fn a_failed_refund_carries_stripes_failure_reason() {
    let harness = stripe_answering("/v1/refunds", 200, &refund_object("failed", Some("expired_or_canceled_card")));

    let outcome = harness.refund::<Stripe>(refund_of_intent()).unwrap();

    assert_eq!(outcome.status, RefundStatus::Failed);
    assert_eq!(outcome.failure_reason.as_deref(), Some("expired_or_canceled_card"));
}

#[test]
fn refunding_more_than_is_left_names_the_amount() {
    let body = error_body(
        "invalid_request_error",
        "amount_too_large",
        Some("amount"),
        "Refund amount (EUR 500.00) is greater than unrefunded amount on charge (EUR 450.00)",
    );
    let harness = stripe_answering("/v1/refunds", 400, &body);

    match harness.refund::<Stripe>(refund_of_intent()) {
        Err(ProviderError::InvalidRequest(field)) => {
            assert_eq!(field.field, "amount.amount");
            assert!(field.reason.contains("greater than unrefunded amount"), "{}", field.reason);
        }
        other => panic!("expected invalid-request, got {other:?}"),
    }
}

#[test]
fn a_transaction_id_that_is_not_a_payment_intent_is_refused_without_a_request() {
    let harness = Harness::new().secret("secret_key", SECRET_KEY);

    let outcome = harness.refund::<Stripe>(testing::refund_request("ch_3MtwBw", 4000, "EUR"));

    assert!(matches!(outcome, Err(ProviderError::InvalidRequest(ref f)) if f.field == "provider-transaction-id"));
    assert!(harness.requests().is_empty());
}
