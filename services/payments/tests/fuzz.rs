//! Fuzz targets (issue 11 item 16): property tests over arbitrary input for the payment request
//! parsers — card-number refusal, payments, refunds, lease payment methods (IBAN, BIC, SEPA
//! mandate), stored methods. Run by `scripts/fuzz.sh` with a large `PROPTEST_CASES`; plain
//! `cargo test` runs a few cases. Whatever the input: a typed result, never a panic, and a
//! refused card number is never echoed.

use chrono::NaiveDate;
use lessor_payments::{NewPayment, NewRefund, PaymentMethod, find_card_numbers, parse_lease_payment_method};
use proptest::prelude::*;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

/// Arbitrary JSON, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "\\PC{0,40}".prop_map(Value::String),
        "[0-9 ._/-]{10,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}|\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check_all(body: &Value) {
    let cards = find_card_numbers(body);
    for result in [
        NewPayment::parse(body, today()).err(),
        NewRefund::parse(body).err(),
        parse_lease_payment_method(body, today()).err(),
    ]
    .into_iter()
    .flatten()
    {
        if !cards.is_empty() {
            // Only the card errors, so nothing else can echo the number.
            assert!(result.errors().iter().all(|e| cards.contains(&e.field)), "{result}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_request_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(body) = serde_json::from_slice::<Value>(&bytes) {
            check_all(&body);
        }
    }

    #[test]
    fn fuzz_request_json(body in json_value()) {
        check_all(&body);
    }

    #[test]
    fn fuzz_payment_fields(
        lease in "\\PC{0,40}", amount in json_value(), currency in "[A-Z]{3}|\\PC{0,5}",
        provider in "[a-z][a-z0-9-]{0,20}|\\PC{0,10}", method in json_value(),
    ) {
        let body = json!({"lease_id": lease, "amount": amount, "currency": currency, "provider": provider,
            "payment_method": method});
        check_all(&body);
    }

    #[test]
    fn fuzz_sepa_mandate(
        iban in "[A-Z]{2}[0-9]{2}[A-Z0-9 ]{8,34}|\\PC{0,40}", bic in "[A-Z0-9]{6,12}|\\PC{0,12}",
        reference in "\\PC{0,40}", signed in "20[0-9]{2}-[0-9]{2}-[0-9]{2}|\\PC{0,12}", name in "\\PC{0,80}",
    ) {
        let mandate = json!({"iban": iban, "bic": bic, "mandate_reference": reference,
            "mandate_signed_on": signed, "debtor_name": name});
        let mut errors = Vec::new();
        if let Some(method) = PaymentMethod::parse(&mandate, "payment_method", today(), &mut errors) {
            // What is stored parses back to the same method.
            prop_assert_eq!(PaymentMethod::from_wire(&method.wire()), method.clone());
            let _ = method.masked();
        }
        check_all(&json!({"provider": "bank", "payment_method": mandate}));
    }

    #[test]
    fn fuzz_stored_method(text in "\\PC{0,200}") {
        let method = PaymentMethod::from_wire(&text);
        let _ = (method.masked(), method.kind(), method.wire());
    }
}
