//! AFL target: bytes as a request body, through every parser a request meets before the
//! database: JSON, the card-number refusal, payments, refunds, lease payment methods, leases;
//! and as a bare value, through currency, VIN and stored payment methods. Any panic is a crash.

use chrono::NaiveDate;
use lessor_leases::{Currency, LeaseInput, NewLease, Vin};
use lessor_payments::{NewPayment, NewRefund, PaymentMethod, find_card_numbers, parse_lease_payment_method};

fn main() {
    let today = NaiveDate::from_ymd_opt(2026, 12, 4).expect("a date");
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        let _ = Currency::parse(&text);
        let _ = Vin::parse(&text);
        let _ = PaymentMethod::from_wire(&text);
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) else { return };
        let cards = find_card_numbers(&body);
        if let Err(e) = NewPayment::parse(&body, today) {
            // A card number found anywhere is the only thing reported.
            assert!(cards.is_empty() || e.errors().iter().all(|f| cards.contains(&f.field)), "{e}");
        }
        let _ = NewRefund::parse(&body);
        let _ = parse_lease_payment_method(&body, today);
        if let Ok(input) = serde_json::from_value::<LeaseInput>(body) {
            let _ = NewLease::parse(input, today);
        }
    });
}
