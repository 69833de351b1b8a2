//! `process`: a signed `POST /v1/collections` with the debtor's mandate.

use lessor_plugin_sdk::testing;
use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, ProviderError};
use serde_json::json;

use super::{API_BASE, assert_signed, bank_answering, configured, json_of};
use crate::Bank;

const MANDATE: &str = r#"{"iban":"DE89 3704 0044 0532 0130 00","bic":"cobadeffxxx","mandate_reference":"MANDATE-0001","mandate_signed_on":"2024-01-15","debtor_name":"Max Mustermann"}"#;

fn installment() -> PaymentRequest {
    testing::sepa_payment_request(45000, "EUR", MANDATE)
}

#[test]
fn a_collection_is_submitted_signed_with_the_mandate_and_is_processing() {
    let harness = bank_answering("/v1/collections", 201, r#"{"collection_id": "col_8f3a", "status": "accepted"}"#);

    let outcome = harness.process::<Bank>(installment());

    assert_eq!(outcome, Ok(PaymentOutcome::processing("col_8f3a")));
    let sent = harness.only_request();
    assert_eq!(sent.line(), format!("POST {API_BASE}/v1/collections"));
    assert_signed(&sent, "idem-9b2f6c1e");
    assert_eq!(
        json_of(&sent),
        json!({
            "end_to_end_id": "9b2f6c1e3d4a4f5b8c7d0e1f2a3b4c5d",
            "amount": 45000,
            "currency": "EUR",
            "creditor_id": "DE98ZZZ09999999999",
            "mandate": {"reference": "MANDATE-0001", "signed_on": "2024-01-15"},
            "debtor": {"name": "Max Mustermann", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX"},
            "remittance_information": "Lease lease-1 installment installment-1"
        })
    );
}

#[test]
fn a_mandate_without_bic_sends_null_and_a_payment_without_installment_names_the_lease() {
    let harness = bank_answering("/v1/collections", 201, r#"{"collection_id": "col_1", "status": "accepted"}"#);
    let mandate = MANDATE.replace(r#""bic":"cobadeffxxx","#, "");
    let mut request = testing::sepa_payment_request(100, "EUR", &mandate);
    request.installment_id = None;

    assert!(harness.process::<Bank>(request).is_ok());

    let body = json_of(&harness.only_request());
    assert_eq!(body["debtor"]["bic"], serde_json::Value::Null);
    assert_eq!(body["remittance_information"], "Lease lease-1");
}

#[test]
fn a_retry_answered_409_takes_the_existing_collections_status() {
    let settled = bank_answering("/v1/collections", 409, r#"{"collection_id": "col_8f3a", "status": "settled"}"#);
    assert_eq!(settled.process::<Bank>(installment()), Ok(PaymentOutcome::succeeded("col_8f3a")));

    let rejected = r#"{"collection_id": "col_9", "status": "rejected", "reason_code": "AC04"}"#;
    let harness = bank_answering("/v1/collections", 201, rejected);
    assert_eq!(harness.process::<Bank>(installment()), Ok(PaymentOutcome::failed("col_9", "AC04")));
}

#[test]
fn bank_errors_map_to_our_fields_internal_or_retryable() {
    let cases = [
        (
            422,
            r#"{"error":{"code":"invalid_iban","message":"unknown account","field":"debtor.iban"}}"#,
            "payment-method.iban",
        ),
        (
            400,
            r#"{"error":{"code":"bad_reference","message":"no","field":"mandate.reference"}}"#,
            "payment-method.mandate-reference",
        ),
        (401, r#"{"error":{"code":"bad_signature","message":"signature mismatch"}}"#, "misconfigured client_secret"),
        (503, r#"{"error":{"code":"maintenance","message":"later"}}"#, "provider-unavailable"),
        (201, "accepted", "provider-unavailable"),
    ];
    for (status, body, expected) in cases {
        let got = match bank_answering("/v1/collections", status, body).process::<Bank>(installment()) {
            Err(ProviderError::InvalidRequest(field)) => field.field,
            Err(ProviderError::Internal(_)) => "internal".to_owned(),
            Err(ProviderError::Misconfigured(key)) => format!("misconfigured {key}"),
            Err(ProviderError::ProviderUnavailable(_)) => "provider-unavailable".to_owned(),
            other => panic!("HTTP {status}: unexpected {other:?}"),
        };
        assert_eq!(got, expected, "HTTP {status} {body}");
    }
}

#[test]
fn a_mandate_signed_after_today_by_the_hosts_clock_is_refused_until_that_day() {
    let harness = bank_answering("/v1/collections", 201, r#"{"collection_id": "col_2", "status": "accepted"}"#);
    let tomorrow = MANDATE.replace("2024-01-15", "2024-03-02");

    let refused = harness.process::<Bank>(testing::sepa_payment_request(100, "EUR", &tomorrow));
    assert!(
        matches!(refused, Err(ProviderError::InvalidRequest(ref f)) if f.field == "payment-method.mandate-signed-on")
    );
    assert!(harness.requests().is_empty());

    harness.set_now(super::NOW_MS + 86_400_000);
    assert!(harness.process::<Bank>(testing::sepa_payment_request(100, "EUR", &tomorrow)).is_ok());
}

#[test]
fn invalid_mandates_and_amounts_are_refused_by_field_before_any_request() {
    let harness = configured();
    let cases = [
        (MANDATE.replace("0532 0130 00", "0532 0130 01"), 100, "EUR", "payment-method.iban"),
        (MANDATE.replace("cobadeffxxx", "COBA"), 100, "EUR", "payment-method.bic"),
        (MANDATE.replace("MANDATE-0001", "MANDATE//1"), 100, "EUR", "payment-method.mandate-reference"),
        (MANDATE.replace("Max Mustermann", " "), 100, "EUR", "payment-method.debtor-name"),
        ("4242424242424242".to_owned(), 100, "EUR", "payment-method"),
        (MANDATE.to_owned(), 100, "USD", "amount.currency"),
        (MANDATE.to_owned(), 0, "EUR", "amount.amount"),
    ];
    for (mandate, amount, currency, field) in cases {
        match harness.process::<Bank>(testing::sepa_payment_request(amount, currency, &mandate)) {
            Err(ProviderError::InvalidRequest(f)) => assert_eq!(f.field, field, "{mandate}"),
            other => panic!("{field}: expected invalid-request, got {other:?}"),
        }
    }
    let token = testing::payment_request(100, "EUR", MANDATE);
    match harness.process::<Bank>(token) {
        Err(ProviderError::InvalidRequest(f)) => assert_eq!(f.field, "method-kind"),
        other => panic!("a token: expected invalid-request, got {other:?}"),
    }
    assert!(harness.requests().is_empty());
}

#[test]
fn a_creditor_id_with_wrong_check_digits_or_a_missing_secret_is_misconfigured() {
    let harness = configured().config("creditor_id", "DE99ZZZ09999999999");
    let error = harness.process::<Bank>(installment()).unwrap_err();
    assert_eq!(error, ProviderError::Misconfigured("creditor_id".to_owned()));
    assert!(harness.requests().is_empty());
    let harness = configured().secret("client_secret", "");
    let error = harness.process::<Bank>(installment()).unwrap_err();
    assert_eq!(error, ProviderError::Misconfigured("client_secret".to_owned()));
    assert!(harness.requests().is_empty());
}
