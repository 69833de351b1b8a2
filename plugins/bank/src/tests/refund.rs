//! `refund`: a signed `POST /v1/refunds` of a collection.

use lessor_plugin_sdk::testing;
use lessor_plugin_sdk::{ProviderError, RefundOutcome, RefundStatus};
use serde_json::json;

use super::{API_BASE, assert_signed, bank_answering, json_of};
use crate::Bank;

#[test]
fn a_refund_is_requested_signed_and_pending() {
    let answer = r#"{"id": "rf_51c2", "refund_id": "refund-1", "status": "pending"}"#;
    let harness = bank_answering("/v1/refunds", 201, answer);
    let mut request = testing::refund_request("col_8f3a", 4000, "EUR");
    request.reason = Some("Überzahlung Rate 3".to_owned());

    let outcome = harness.refund::<Bank>(request);

    assert_eq!(outcome, Ok(RefundOutcome::new(RefundStatus::Pending, "rf_51c2")));
    let sent = harness.only_request();
    assert_eq!(sent.line(), format!("POST {API_BASE}/v1/refunds"));
    assert_signed(&sent, "idem-refund-1");
    assert_eq!(
        json_of(&sent),
        json!({"refund_id": "refund-1", "collection_id": "col_8f3a", "amount": 4000, "currency": "EUR",
               "reason": " berzahlung Rate 3"})
    );
}

#[test]
fn without_a_reason_none_is_sent_and_a_409_replays_the_existing_refund() {
    let answer =
        r#"{"id": "rf_51c2", "refund_id": "refund-1", "status": "failed", "failure_reason": "account closed"}"#;
    let harness = bank_answering("/v1/refunds", 409, answer);

    let outcome = harness.refund::<Bank>(testing::refund_request("col_8f3a", 4000, "EUR")).unwrap();

    assert_eq!(outcome.status, RefundStatus::Failed);
    assert_eq!(outcome.failure_reason.as_deref(), Some("account closed"));
    assert_eq!(json_of(&harness.only_request()).get("reason"), None);
}

#[test]
fn an_unknown_collection_or_too_large_amount_names_our_field() {
    let unknown = r#"{"error": {"code": "not_found", "message": "no collection col_x"}}"#;
    let too_much = r#"{"error": {"code": "amount_exceeds", "message": "only 1000 left", "field": "amount"}}"#;
    for (status, body, field) in [(404, unknown, "provider-transaction-id"), (422, too_much, "amount.amount")] {
        let harness = bank_answering("/v1/refunds", status, body);
        match harness.refund::<Bank>(testing::refund_request("col_x", 4000, "EUR")) {
            Err(ProviderError::InvalidRequest(f)) => assert_eq!(f.field, field),
            other => panic!("HTTP {status}: expected invalid-request, got {other:?}"),
        }
    }
}
