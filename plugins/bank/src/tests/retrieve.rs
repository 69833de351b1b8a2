//! `retrieve_payment` and `retrieve_refund`: signed GETs by end-to-end id and by our refund id.

use lessor_plugin_sdk::http::{Error, Method};
use lessor_plugin_sdk::testing::{self, Harness};
use lessor_plugin_sdk::{PaymentOutcome, ProviderError, RefundOutcome, RefundStatus};

use super::{API_BASE, CLIENT_ID, CLIENT_SECRET, NOW_MS, bank_signature, configured};
use crate::Bank;

const BY_END_TO_END_ID: &str = "/v1/collections?end_to_end_id=9b2f6c1e3d4a4f5b8c7d0e1f2a3b4c5d";
const BY_REFUND_ID: &str = "/v1/refunds?refund_id=refund-1";
const NOT_FOUND: &str = r#"{"error":{"code":"not_found","message":"no such collection"}}"#;

fn answering(path_and_query: &str, status: u16, body: &str) -> Harness {
    configured().respond(Method::Get, &format!("{API_BASE}{path_and_query}"), testing::json(status, body))
}

#[test]
fn a_collection_is_looked_up_by_its_end_to_end_id_with_a_signed_get() {
    let body = r#"{"collection_id": "col_8f3a", "end_to_end_id": "9b2f6c1e3d4a4f5b8c7d0e1f2a3b4c5d",
        "status": "settled", "amount": 45000, "currency": "EUR"}"#;
    let harness = answering(BY_END_TO_END_ID, 200, body);

    let outcome = harness.retrieve_payment::<Bank>(testing::payment_lookup(None, 45000, "EUR"));

    assert_eq!(outcome, Ok(Some(PaymentOutcome::succeeded("col_8f3a"))));
    let sent = harness.only_request();
    assert_eq!(sent.line(), format!("GET {API_BASE}{BY_END_TO_END_ID}"));
    let timestamp = (NOW_MS / 1000).to_string();
    assert_eq!(sent.header("x-client-id"), Some(CLIENT_ID));
    assert_eq!(sent.header("x-timestamp"), Some(timestamp.as_str()));
    assert_eq!(sent.header("x-signature"), Some(bank_signature(CLIENT_SECRET, &timestamp, b"").as_str()));
    assert_eq!(sent.header("idempotency-key"), None);
    assert!(sent.body.is_empty());
}

#[test]
fn statuses_map_as_for_process_and_an_unknown_collection_is_none() {
    let accepted = r#"{"collection_id": "col_1", "status": "accepted"}"#;
    let lookup = || testing::payment_lookup(Some("col_1"), 45000, "EUR");
    assert_eq!(
        answering(BY_END_TO_END_ID, 200, accepted).retrieve_payment::<Bank>(lookup()),
        Ok(Some(PaymentOutcome::processing("col_1")))
    );
    let returned = r#"{"collection_id": "col_1", "status": "returned", "reason_code": "MD06"}"#;
    assert_eq!(
        answering(BY_END_TO_END_ID, 200, returned).retrieve_payment::<Bank>(lookup()),
        Ok(Some(PaymentOutcome::failed("col_1", "MD06")))
    );
    assert_eq!(answering(BY_END_TO_END_ID, 404, NOT_FOUND).retrieve_payment::<Bank>(lookup()), Ok(None));

    let another = r#"{"collection_id": "col_2", "status": "accepted"}"#;
    let outcome = answering(BY_END_TO_END_ID, 200, another).retrieve_payment::<Bank>(lookup());
    assert!(matches!(outcome, Err(ProviderError::Internal(_))), "another collection than known: {outcome:?}");
}

#[test]
fn a_lookup_without_the_route_or_with_the_bank_down_is_an_error_not_none() {
    let lookup = || testing::payment_lookup(None, 45000, "EUR");
    let outcome = answering(BY_END_TO_END_ID, 404, "Not Found").retrieve_payment::<Bank>(lookup());
    assert!(matches!(outcome, Err(ProviderError::ProviderUnavailable(_))), "{outcome:?}");
    let outcome = answering(BY_END_TO_END_ID, 503, "{}").retrieve_payment::<Bank>(lookup());
    assert!(matches!(outcome, Err(ProviderError::ProviderUnavailable(_))), "{outcome:?}");
    let harness = configured().fail(Method::Get, &format!("{API_BASE}/*"), Error::Denied(API_BASE.to_owned()));
    assert_eq!(harness.retrieve_payment::<Bank>(lookup()), Err(ProviderError::EgressDenied(API_BASE.to_owned())));
}

#[test]
fn a_refund_is_looked_up_by_our_refund_id() {
    let body =
        r#"{"id": "rf_000003", "refund_id": "refund-1", "status": "failed", "failure_reason": "account closed"}"#;
    let harness = answering(BY_REFUND_ID, 200, body);

    let outcome = harness.retrieve_refund::<Bank>(testing::refund_lookup("col_8f3a", None, 4000, "EUR"));

    let expected = RefundOutcome {
        failure_reason: Some("account closed".to_owned()),
        ..RefundOutcome::new(RefundStatus::Failed, "rf_000003")
    };
    assert_eq!(outcome, Ok(Some(expected)));
    assert_eq!(harness.only_request().line(), format!("GET {API_BASE}{BY_REFUND_ID}"));

    let harness = answering(BY_REFUND_ID, 404, NOT_FOUND);
    assert_eq!(harness.retrieve_refund::<Bank>(testing::refund_lookup("col_8f3a", None, 4000, "EUR")), Ok(None));
}
