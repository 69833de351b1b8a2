//! The payment receipt a transfer's comment carries.
//!
//! One line of `key=value` pairs after a versioned tag, readable in any explorer and easy to
//! parse back:
//!
//! ```text
//! lessor:receipt/1 payment=0b8f4f9e-… lease=4c1d…-… amount=45000 currency=EUR
//! ```
//!
//! `amount` is the payment's integer amount in minor units of `currency` (45000 EUR = €450.00),
//! exactly as in the `payment.completed` event.

use std::fmt;

use lessor_events::PaymentCompleted;
use uuid::Uuid;

/// The tag every receipt comment starts with.
pub const RECEIPT_TAG: &str = "lessor:receipt/1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
}

impl Receipt {
    pub fn of(payment: &PaymentCompleted) -> Self {
        Self {
            payment_id: payment.payment_id,
            lease_id: payment.lease_id,
            amount: payment.amount,
            currency: payment.currency.clone(),
        }
    }

    /// The comment text.
    pub fn comment(&self) -> String {
        self.to_string()
    }

    /// Reads a receipt comment; `None` for any other text.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split_whitespace();
        if parts.next()? != RECEIPT_TAG {
            return None;
        }
        let (mut payment_id, mut lease_id, mut amount, mut currency) = (None, None, None, None);
        for part in parts {
            let (key, value) = part.split_once('=')?;
            match key {
                "payment" => payment_id = Some(value.parse().ok()?),
                "lease" => lease_id = Some(value.parse().ok()?),
                "amount" => amount = Some(value.parse().ok()?),
                "currency" => currency = Some(value.to_owned()),
                _ => {}
            }
        }
        Some(Self { payment_id: payment_id?, lease_id: lease_id?, amount: amount?, currency: currency? })
    }
}

impl fmt::Display for Receipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The currency comes from an event: keep the line one token per field whatever it holds.
        let currency: String = self.currency.chars().filter(|c| c.is_ascii_alphanumeric()).take(8).collect();
        write!(
            f,
            "{RECEIPT_TAG} payment={} lease={} amount={} currency={currency}",
            self.payment_id, self.lease_id, self.amount
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_reads_back_and_fits_two_cells() {
        let receipt =
            Receipt { payment_id: Uuid::new_v4(), lease_id: Uuid::new_v4(), amount: 45_000, currency: "EUR".into() };
        let text = receipt.comment();
        assert!(text.starts_with("lessor:receipt/1 payment="), "{text}");
        assert!(text.len() < 123 + 127, "{}", text.len());
        assert_eq!(Receipt::parse(&text), Some(receipt));
        assert_eq!(Receipt::parse("hello"), None);
        assert_eq!(Receipt::parse("lessor:receipt/1 payment=x"), None);
    }

    #[test]
    fn an_odd_currency_cannot_break_the_line() {
        let receipt =
            Receipt { payment_id: Uuid::nil(), lease_id: Uuid::nil(), amount: 1, currency: "E R\nX=1".into() };
        let back = Receipt::parse(&receipt.comment()).unwrap();
        assert_eq!(back.currency, "ERX1");
    }
}
