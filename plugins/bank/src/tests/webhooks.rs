//! `parse_webhook`: `X-Bank-Timestamp` + `X-Bank-Signature` verified over the raw body.

use lessor_plugin_sdk::testing::{self, Harness};
use lessor_plugin_sdk::{EventKind, Money, ProviderError, WebhookEvent, WebhookReply};

use super::bank_signature;
use crate::Bank;

const WEBHOOK_SECRET: &str = "whs_bank_3c5e7a9b1d";
const RECEIVED_AT: u64 = 1_709_640_000_000;
const SIGNED_AT: &str = "1709639998";

/// The event of a delivery (the bank sends one per request), checking the reply is the plain 200.
fn deliver(timestamp: &str, signature: &str, body: &str) -> Result<Option<WebhookEvent>, ProviderError> {
    let headers = [("X-Bank-Timestamp", timestamp), ("X-Bank-Signature", signature)];
    let harness = Harness::new().secret("webhook_secret", WEBHOOK_SECRET);
    let batch = harness.parse_webhook::<Bank>(testing::webhook_request(&headers, body.as_bytes(), RECEIVED_AT))?;
    assert_eq!(batch.reply, WebhookReply::ok());
    assert!(batch.events.len() <= 1, "one event per delivery: {:?}", batch.events);
    Ok(batch.events.into_iter().next())
}

fn signed(body: &str) -> Result<Option<WebhookEvent>, ProviderError> {
    deliver(SIGNED_AT, &bank_signature(WEBHOOK_SECRET, SIGNED_AT, body.as_bytes()), body)
}

const RETURNED: &str = r#"{"event_id": "ev_2b7d", "type": "collection.returned", "collection_id": "col_8f3a",
  "end_to_end_id": "9b2f6c1e3d4a4f5b8c7d0e1f2a3b4c5d", "amount": 45000, "currency": "EUR",
  "reason_code": "MD06", "occurred_at": "2024-03-05T06:00:00Z"}"#;

#[test]
fn a_signed_return_becomes_payment_returned_with_its_reason_amount_and_time() {
    let expected = WebhookEvent {
        amount: Some(Money::new(45000, "EUR")),
        reason_code: Some("MD06".to_owned()),
        occurred_at: Some(1_709_618_400_000),
        ..WebhookEvent::new("ev_2b7d", EventKind::PaymentReturned, "col_8f3a")
    };
    assert_eq!(signed(RETURNED), Ok(Some(expected)));
}

#[test]
fn each_event_type_maps_to_its_kind() {
    let event = |kind: &str, extra: &str| {
        format!(r#"{{"event_id": "ev_1", "type": "{kind}", "collection_id": "col_1"{extra}}}"#)
    };
    let kind_of = |body: String| signed(&body).map(|e| e.map(|e| e.kind));
    assert_eq!(kind_of(event("collection.settled", "")), Ok(Some(EventKind::PaymentSettled)));
    assert_eq!(kind_of(event("collection.failed", r#","reason_code":"AM04""#)), Ok(Some(EventKind::PaymentFailed)));
    let refund = r#","refund":{"id":"rf_000003","refund_id":"refund-1","status":"succeeded"}"#;
    assert_eq!(kind_of(event("refund.succeeded", refund)), Ok(Some(EventKind::RefundSucceeded)));
    assert_eq!(kind_of(event("refund.failed", refund)), Ok(Some(EventKind::RefundFailed)));
    assert_eq!(kind_of(event("mandate.cancelled", "")), Ok(None));
}

#[test]
fn a_refund_event_names_the_banks_refund_and_its_amount() {
    let body = r#"{"event_id": "ev_9", "type": "refund.succeeded", "collection_id": "col_8f3a", "amount": 4000,
        "currency": "EUR", "refund": {"id": "rf_000003", "refund_id": "refund-1", "status": "succeeded"}}"#;
    let expected = WebhookEvent::new("ev_9", EventKind::RefundSucceeded, "col_8f3a")
        .refund("rf_000003")
        .amount(Money::new(4000, "EUR"));
    assert_eq!(signed(body), Ok(Some(expected)));

    let without = r#"{"event_id": "ev_9", "type": "refund.failed", "collection_id": "col_8f3a", "amount": 4000}"#;
    match signed(without) {
        Err(ProviderError::InvalidRequest(f)) => assert_eq!(f.field, "body.refund"),
        other => panic!("expected invalid-request, got {other:?}"),
    }
}

#[test]
fn bad_signatures_are_refused() {
    let good = bank_signature(WEBHOOK_SECRET, SIGNED_AT, RETURNED.as_bytes());
    let stale = (RECEIVED_AT / 1000 - 301).to_string();
    let cases = [
        (
            "another secret",
            SIGNED_AT.to_owned(),
            bank_signature("other", SIGNED_AT, RETURNED.as_bytes()),
            RETURNED.to_owned(),
        ),
        ("a tampered body", SIGNED_AT.to_owned(), good.clone(), RETURNED.replace("45000", "4500")),
        ("another timestamp than signed", "1709639999".to_owned(), good.clone(), RETURNED.to_owned()),
        (
            "signed 301 s before receipt",
            stale.clone(),
            bank_signature(WEBHOOK_SECRET, &stale, RETURNED.as_bytes()),
            RETURNED.to_owned(),
        ),
        ("no v1 prefix", SIGNED_AT.to_owned(), good.trim_start_matches("v1=").to_owned(), RETURNED.to_owned()),
        ("a timestamp that is not a number", "soon".to_owned(), good.clone(), RETURNED.to_owned()),
    ];
    for (what, timestamp, signature, body) in cases {
        assert_eq!(deliver(&timestamp, &signature, &body), Err(ProviderError::SignatureInvalid), "{what}");
    }
    let harness = Harness::new().secret("webhook_secret", WEBHOOK_SECRET);
    let unsigned = testing::webhook_request(&[("X-Bank-Timestamp", SIGNED_AT)], RETURNED.as_bytes(), RECEIVED_AT);
    assert_eq!(harness.parse_webhook::<Bank>(unsigned), Err(ProviderError::SignatureInvalid));
}

#[test]
fn while_the_secret_is_rolled_any_matching_v1_verifies() {
    let old = bank_signature("whs_old", SIGNED_AT, RETURNED.as_bytes());
    let new = bank_signature(WEBHOOK_SECRET, SIGNED_AT, RETURNED.as_bytes());
    assert!(matches!(deliver(SIGNED_AT, &format!("{old}, {new}"), RETURNED), Ok(Some(_))));
}

#[test]
fn an_authentic_body_breaking_the_rules_names_the_field() {
    let no_reason = RETURNED.replace(r#""reason_code": "MD06","#, "");
    let bad_reason = RETURNED.replace("MD06", "md-6");
    let bad_time = RETURNED.replace("2024-03-05T06:00:00Z", "5 March");
    for (body, field) in [
        (no_reason, "body.reason_code"),
        (bad_reason, "body.reason_code"),
        (bad_time, "body.occurred_at"),
        ("[]".to_owned(), "body"),
    ] {
        match signed(&body) {
            Err(ProviderError::InvalidRequest(f)) => assert_eq!(f.field, field, "{body}"),
            other => panic!("{field}: expected invalid-request, got {other:?}"),
        }
    }
}
