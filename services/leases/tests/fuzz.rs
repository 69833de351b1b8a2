//! Fuzz targets (issue 11 item 16): property tests over arbitrary input for the lease parsers
//! (money and currencies, VINs, a whole lease request). Only stable Rust is available, so no
//! libFuzzer; `scripts/fuzz.sh` runs these with a large `PROPTEST_CASES` under a time bound,
//! plain `cargo test` with a few cases. A failing input found becomes a regression test below.

use chrono::NaiveDate;
use lessor_leases::{Currency, LeaseInput, Money, NewLease, Vin, installment_schedule};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fuzz_currency_and_money(code in "\\PC{0,8}", amount in any::<i64>(), bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(currency) = Currency::parse(&code) {
            prop_assert_eq!(currency.code(), code.as_str());
            if let Ok(money) = Money::new(amount, currency) {
                prop_assert_eq!(money.amount(), amount);
            }
        }
        if let Ok(money) = serde_json::from_slice::<Money>(&bytes) {
            prop_assert!(money.amount() >= 0);
        }
        let json = format!(r#"{{"amount": {amount}, "currency": {}}}"#, serde_json::Value::String(code.clone()));
        let _ = serde_json::from_str::<Money>(&json);
    }

    #[test]
    fn fuzz_vin(text in "\\PC{0,40}", vinish in "[A-HJ-NPR-Z0-9 ]{15,19}") {
        for input in [&text, &vinish] {
            if let Ok(vin) = Vin::parse(input) {
                // A parsed VIN parses again to itself.
                prop_assert_eq!(Vin::parse(vin.as_str()).ok(), Some(vin.clone()));
            }
        }
    }

    #[test]
    fn fuzz_lease_request_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(input) = serde_json::from_slice::<LeaseInput>(&bytes) {
            let _ = NewLease::parse(input, today());
        }
    }

    #[test]
    fn fuzz_lease_request_fields(
        vin in "\\PC{0,20}", start in "\\PC{0,12}|20[0-9]{2}-[0-9]{2}-[0-9]{2}", term in any::<i64>(),
        monthly in any::<i64>(), deposit in any::<i64>(), currency in "[A-Z]{3}|\\PC{0,4}", year in any::<i64>(),
    ) {
        let body = serde_json::json!({
            "vehicle": {"vin": vin, "make": "M", "model": "S", "year": year, "category": "luxury"},
            "start_date": start, "term_months": term, "monthly_amount": monthly, "deposit": deposit,
            "currency": currency,
        });
        if let Ok(input) = serde_json::from_value::<LeaseInput>(body) {
            let _ = NewLease::parse(input, today());
        }
    }

    #[test]
    fn fuzz_schedule(day in 0u32..400, term in 1u16..=120, amount in 1i64..=1_000_000_000_000) {
        let start = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(i64::from(day));
        let money = Money::new(amount, Currency::parse("EUR").unwrap()).unwrap();
        let lines = installment_schedule(start, term, money);
        prop_assert_eq!(lines.len(), usize::from(term));
    }
}
