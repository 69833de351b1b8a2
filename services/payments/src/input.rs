//! Requests as sent (raw JSON) parsed into validated values, every invalid field reported at
//! once by its JSON path, as `lessor_leases` does for leases.
//!
//! Card numbers are checked first, over the whole raw body: when one is found the request is
//! refused with only that error (no other reason could then echo a part of it).

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use lessor_leases::{Currency, FieldError, MAX_LEASE_AMOUNT, json_integer};

use crate::card::find_card_numbers;
use crate::method::{PaymentMethod, ProviderName};

/// The largest payment or refund accepted, in minor units (the largest lease amount, 10^12).
pub const MAX_PAYMENT_AMOUNT: i64 = MAX_LEASE_AMOUNT;

/// The reason given for a value that looks like a card number.
pub const CARD_NUMBER_REFUSED: &str =
    "looks like a card number; card data is not accepted: send the provider's token for the card instead";

/// Every field of a request that was refused, in input order; never empty. Serialises as
/// `{"errors": [{"field": "amount", "reason": "…"}]}`, like `lessor_leases::ValidationError`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ValidationError {
    errors: Vec<FieldError>,
}

impl ValidationError {
    /// `errors` must not be empty.
    pub fn new(errors: Vec<FieldError>) -> Self {
        debug_assert!(!errors.is_empty());
        Self { errors }
    }

    pub fn single(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { errors: vec![FieldError::new(field, reason)] }
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// The reason given for `field`, if it was refused.
    pub fn reason_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.reason.as_str())
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid input: ")?;
        for (index, error) in self.errors.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Refuses `body` when any value in it looks like a card number (see [`crate::card`]).
pub fn refuse_card_numbers(body: &Value) -> Result<(), ValidationError> {
    refuse_card_numbers_but_declared_tokens(body, &no_declared_tokens)
}

/// Whether a provider declares a token format that a token has: `(provider, token)`.
pub type DeclaredTokens<'a> = dyn Fn(&str, &str) -> bool + Sync + 'a;

/// No provider declares a token format.
pub fn no_declared_tokens(_provider: &str, _token: &str) -> bool {
    false
}

/// Like [`refuse_card_numbers`], except that a string `payment_method` the body's `provider`
/// declares as one of its token formats is accepted; every other value is checked as ever.
fn refuse_card_numbers_but_declared_tokens(body: &Value, declared: &DeclaredTokens<'_>) -> Result<(), ValidationError> {
    let declared_token = || match (body.get("provider").and_then(Value::as_str), body.get("payment_method")) {
        (Some(provider), Some(Value::String(token))) => declared(provider, token),
        _ => false,
    };
    let mut paths = find_card_numbers(body);
    if paths.iter().any(|p| p == "payment_method") && declared_token() {
        paths.retain(|p| p != "payment_method");
    }
    if paths.is_empty() {
        return Ok(());
    }
    Err(ValidationError { errors: paths.into_iter().map(|path| FieldError::new(path, CARD_NUMBER_REFUSED)).collect() })
}

/// A payment request that passed every rule that needs no database: the lease, its status and
/// the installment are checked by `PaymentService::create`.
///
/// ```json
/// {"lease_id": "…", "installment_id": "…", "amount": 129900, "currency": "EUR",
///  "provider": "stripe", "payment_method": "pm_card_visa"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub lease_id: Uuid,
    pub installment_id: Option<Uuid>,
    /// Minor units of `currency`, > 0.
    pub amount: i64,
    pub currency: Currency,
    pub provider: ProviderName,
    pub payment_method: PaymentMethod,
}

const PAYMENT_FIELDS: [&str; 6] = ["lease_id", "installment_id", "amount", "currency", "provider", "payment_method"];

impl NewPayment {
    /// Parses a request body, reporting every invalid field rather than the first. Unknown
    /// fields are refused. `today` bounds a mandate's signature date.
    pub fn parse(body: &Value, today: NaiveDate) -> Result<Self, ValidationError> {
        Self::parse_with_tokens(body, today, &no_declared_tokens)
    }

    /// [`NewPayment::parse`], accepting a `payment_method` that `declared` says is a token of
    /// the request's provider (see [`DeclaredTokens`]) even when it looks like a card number.
    pub fn parse_with_tokens(
        body: &Value,
        today: NaiveDate,
        declared: &DeclaredTokens<'_>,
    ) -> Result<Self, ValidationError> {
        refuse_card_numbers_but_declared_tokens(body, declared)?;
        let Value::Object(map) = body else {
            return Err(ValidationError::single("$", "must be a JSON object"));
        };
        let mut errors = Vec::new();
        refuse_unknown(map, &PAYMENT_FIELDS, &mut errors);
        let lease_id = required(map, "lease_id", &mut errors).and_then(|v| uuid_field(v, "lease_id", &mut errors));
        let installment_id = optional(map, "installment_id").and_then(|v| uuid_field(v, "installment_id", &mut errors));
        let amount = required(map, "amount", &mut errors).and_then(|v| amount_field(v, "amount", &mut errors));
        let currency = required(map, "currency", &mut errors).and_then(|v| currency_field(v, &mut errors));
        let provider = required(map, "provider", &mut errors).and_then(|v| provider_field(v, &mut errors));
        let payment_method = required(map, "payment_method", &mut errors)
            .and_then(|v| PaymentMethod::parse(v, "payment_method", today, &mut errors));
        if !errors.is_empty() {
            return Err(ValidationError { errors });
        }
        match (lease_id, amount, currency, provider, payment_method) {
            (Some(lease_id), Some(amount), Some(currency), Some(provider), Some(payment_method)) => {
                Ok(NewPayment { lease_id, installment_id, amount, currency, provider, payment_method })
            }
            _ => Err(ValidationError::single("$", "is incomplete")),
        }
    }
}

/// A refund request: `{"amount"?: 5000, "reason"?: "…"}`. Without `amount`, what is left of
/// the payment is refunded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewRefund {
    /// Minor units of the payment's currency, > 0; `None`: everything not refunded yet.
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

impl NewRefund {
    pub fn parse(body: &Value) -> Result<Self, ValidationError> {
        refuse_card_numbers(body)?;
        let Value::Object(map) = body else {
            return Err(ValidationError::single("$", "must be a JSON object"));
        };
        let mut errors = Vec::new();
        refuse_unknown(map, &["amount", "reason"], &mut errors);
        let amount = optional(map, "amount").and_then(|v| amount_field(v, "amount", &mut errors));
        let reason = optional(map, "reason").and_then(|v| match v {
            Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 500 => Some(s.trim().to_owned()),
            _ => {
                errors.push(FieldError::new("reason", "must be a text of 1-500 characters"));
                None
            }
        });
        if !errors.is_empty() {
            return Err(ValidationError { errors });
        }
        Ok(NewRefund { amount, reason })
    }
}

/// Parses a lease's payment method: `{"provider": "bank", "payment_method": {…} | "tok_…"}`.
pub fn parse_lease_payment_method(
    body: &Value,
    today: NaiveDate,
) -> Result<(ProviderName, PaymentMethod), ValidationError> {
    parse_lease_payment_method_with_tokens(body, today, &no_declared_tokens)
}

/// [`parse_lease_payment_method`], accepting a provider's declared token format as
/// [`NewPayment::parse_with_tokens`] does.
pub fn parse_lease_payment_method_with_tokens(
    body: &Value,
    today: NaiveDate,
    declared: &DeclaredTokens<'_>,
) -> Result<(ProviderName, PaymentMethod), ValidationError> {
    refuse_card_numbers_but_declared_tokens(body, declared)?;
    let Value::Object(map) = body else {
        return Err(ValidationError::single("$", "must be a JSON object"));
    };
    let mut errors = Vec::new();
    refuse_unknown(map, &["provider", "payment_method"], &mut errors);
    let provider = required(map, "provider", &mut errors).and_then(|v| provider_field(v, &mut errors));
    let method = required(map, "payment_method", &mut errors)
        .and_then(|v| PaymentMethod::parse(v, "payment_method", today, &mut errors));
    match (provider, method) {
        (Some(provider), Some(method)) if errors.is_empty() => Ok((provider, method)),
        _ => Err(ValidationError { errors }),
    }
}

fn refuse_unknown(map: &Map<String, Value>, known: &[&str], errors: &mut Vec<FieldError>) {
    for key in map.keys() {
        if !known.contains(&key.as_str()) {
            errors.push(FieldError::new(key.as_str(), "is not a known field"));
        }
    }
}

fn required<'a>(map: &'a Map<String, Value>, field: &str, errors: &mut Vec<FieldError>) -> Option<&'a Value> {
    let value = optional(map, field);
    if value.is_none() {
        errors.push(FieldError::new(field, "is required"));
    }
    value
}

fn optional<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    map.get(field).filter(|v| !v.is_null())
}

fn uuid_field(value: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<Uuid> {
    match value.as_str().map(Uuid::parse_str) {
        Some(Ok(id)) => Some(id),
        _ => {
            errors.push(FieldError::new(field, "must be a UUID"));
            None
        }
    }
}

fn amount_field(value: &Value, field: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match json_integer(value) {
        Some(amount) if (1..=MAX_PAYMENT_AMOUNT).contains(&amount) => Some(amount),
        Some(_) => {
            errors.push(FieldError::new(
                field,
                format!("must be between 1 and {MAX_PAYMENT_AMOUNT} minor units of the currency"),
            ));
            None
        }
        None => {
            errors.push(FieldError::new(field, "must be an integer number of minor units (e.g. cents), not a decimal"));
            None
        }
    }
}

fn currency_field(value: &Value, errors: &mut Vec<FieldError>) -> Option<Currency> {
    match value.as_str() {
        Some(code) => match Currency::parse(code) {
            Ok(currency) => Some(currency),
            Err(_) => {
                errors.push(FieldError::new("currency", "must be an active ISO 4217 code in upper case, such as EUR"));
                None
            }
        },
        None => {
            errors.push(FieldError::new("currency", "must be a string"));
            None
        }
    }
}

fn provider_field(value: &Value, errors: &mut Vec<FieldError>) -> Option<ProviderName> {
    match value.as_str().map(ProviderName::parse) {
        Some(Ok(provider)) => Some(provider),
        Some(Err(e)) => {
            errors.push(FieldError::new("provider", e.to_string()));
            None
        }
        None => {
            errors.push(FieldError::new("provider", "must be a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    fn body() -> Value {
        json!({
            "lease_id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "installment_id": "0b8f4f9e-3c1d-4a8e-9a55-3f0e1f0c2a71",
            "amount": 129900, "currency": "EUR", "provider": "stripe", "payment_method": "pm_card_visa",
        })
    }

    #[test]
    fn a_valid_request_parses() {
        let new = NewPayment::parse(&body(), today()).unwrap();
        assert_eq!(new.amount, 129_900);
        assert_eq!(new.currency.code(), "EUR");
        assert_eq!(new.provider.as_str(), "stripe");
        assert_eq!(new.payment_method.wire(), "pm_card_visa");
        assert!(new.installment_id.is_some());
    }

    #[test]
    fn every_field_error_is_reported_at_once() {
        let error = NewPayment::parse(
            &json!({"lease_id": "nope", "amount": 12.5, "currency": "eur", "provider": "Stripe", "extra": true}),
            today(),
        )
        .unwrap_err();
        for field in ["extra", "lease_id", "amount", "currency", "provider", "payment_method"] {
            assert!(error.reason_for(field).is_some(), "{field}: {error}");
        }
        assert_eq!(error.reason_for("payment_method"), Some("is required"));
    }

    #[test]
    fn amounts_are_positive_integers() {
        for bad in [json!(0), json!(-5), json!(1.5), json!("100"), json!(MAX_PAYMENT_AMOUNT + 1), json!(1e300)] {
            let mut b = body();
            b["amount"] = bad.clone();
            let error = NewPayment::parse(&b, today()).unwrap_err();
            assert!(error.reason_for("amount").is_some(), "{bad}");
        }
    }

    #[test]
    fn a_card_number_anywhere_is_refused_and_not_echoed() {
        let mut b = body();
        b["payment_method"] = json!("4111 1111 1111 1111");
        let error = NewPayment::parse(&b, today()).unwrap_err();
        assert_eq!(error.errors(), [FieldError::new("payment_method", CARD_NUMBER_REFUSED)]);
        assert!(!error.to_string().contains("4111"));

        // Even in a field that would be refused anyway, only the card error is reported.
        let mut b = body();
        b["currency"] = json!("4111111111111111");
        let error = NewPayment::parse(&b, today()).unwrap_err();
        assert_eq!(error.errors(), [FieldError::new("currency", CARD_NUMBER_REFUSED)]);

        // Sixteen digits failing the Luhn check are not a card number, and digits make a valid token.
        let mut b = body();
        b["payment_method"] = json!("4111111111111112");
        assert!(NewPayment::parse(&b, today()).is_ok());
    }

    #[test]
    fn refunds_parse() {
        assert_eq!(NewRefund::parse(&json!({})).unwrap(), NewRefund::default());
        let refund = NewRefund::parse(&json!({"amount": 500, "reason": " goodwill "})).unwrap();
        assert_eq!((refund.amount, refund.reason.as_deref()), (Some(500), Some("goodwill")));
        let error = NewRefund::parse(&json!({"amount": 0, "reason": "", "x": 1})).unwrap_err();
        assert_eq!(error.errors().len(), 3);
        assert!(NewRefund::parse(&json!({"reason": "card 4111111111111111"})).is_err());
    }

    #[test]
    fn lease_payment_methods_parse() {
        let (provider, method) =
            parse_lease_payment_method(&json!({"provider": "bank", "payment_method": "mandate-token"}), today())
                .unwrap();
        assert_eq!((provider.as_str(), method.wire().as_str()), ("bank", "mandate-token"));
        assert!(parse_lease_payment_method(&json!({"provider": "bank"}), today()).is_err());
    }
}
