//! How a payment is paid: a provider name and a payment method (a provider token, or a SEPA
//! direct-debit mandate turned into the canonical JSON text the bank plugin receives).
//!
//! Payment methods are never logged: [`PaymentMethod`]'s `Debug` prints only its kind.

use std::fmt;

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::{Map, Value};

use lessor_leases::FieldError;

/// The provider id payments are routed by (`stripe`, `bank`): 1–64 of `a-z`, `0-9`, `-`, the
/// same rule as the plugin registry's `ProviderId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProviderName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not a provider name: use 1-64 of a-z, 0-9 and -")]
pub struct ProviderNameError;

impl ProviderName {
    pub fn parse(s: &str) -> Result<Self, ProviderNameError> {
        let valid =
            (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid { Ok(Self(s.to_owned())) } else { Err(ProviderNameError) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A payment method as the provider plugin receives it (`payment-request.payment-method`).
#[derive(Clone, PartialEq, Eq)]
pub enum PaymentMethod {
    /// The provider's token for a card, wallet or stored method (`pm_…`, `tok_…`).
    Token(String),
    /// A SEPA direct-debit mandate.
    SepaMandate(SepaMandate),
}

/// A SEPA direct-debit mandate, validated and normalised.
#[derive(Clone, PartialEq, Eq)]
pub struct SepaMandate {
    /// Upper case, no spaces; the ISO 13616 check digits verified.
    pub iban: String,
    /// Upper case, 8 or 11 characters.
    pub bic: Option<String>,
    pub mandate_reference: String,
    pub mandate_signed_on: NaiveDate,
    pub debtor_name: String,
}

/// Fields a mandate object may carry.
const MANDATE_FIELDS: [&str; 5] = ["iban", "bic", "mandate_reference", "mandate_signed_on", "debtor_name"];

impl PaymentMethod {
    /// Parses `payment_method` as sent: a string token, or a mandate object
    /// `{"iban", "bic"?, "mandate_reference", "mandate_signed_on", "debtor_name"}`.
    /// Errors are pushed to `errors` with paths under `path` (e.g. `payment_method.iban`);
    /// reasons never repeat the value. `today` bounds the mandate's signature date.
    pub fn parse(value: &Value, path: &str, today: NaiveDate, errors: &mut Vec<FieldError>) -> Option<Self> {
        match value {
            Value::String(token) => match check_token(token) {
                Ok(()) => Some(Self::Token(token.clone())),
                Err(reason) => {
                    errors.push(FieldError::new(path, reason));
                    None
                }
            },
            Value::Object(map) => SepaMandate::parse(map, path, today, errors).map(Self::SepaMandate),
            _ => {
                errors.push(FieldError::new(path, "must be a token (string) or a SEPA mandate (object)"));
                None
            }
        }
    }

    /// Reads back a method stored by [`PaymentMethod::wire`].
    pub fn from_wire(text: &str) -> Self {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => {
                let mut errors = Vec::new();
                let far_future = NaiveDate::MAX;
                match SepaMandate::parse(&map, "payment_method", far_future, &mut errors) {
                    Some(mandate) => Self::SepaMandate(mandate),
                    None => Self::Token(text.to_owned()),
                }
            }
            _ => Self::Token(text.to_owned()),
        }
    }

    /// The string the provider plugin receives: the token itself, or the mandate's canonical
    /// JSON (keys sorted, no whitespace, `bic` left out when absent), e.g.
    /// `{"bic":"COBADEFFXXX","debtor_name":"Jane Roe","iban":"DE89370400440532013000","mandate_reference":"M-1","mandate_signed_on":"2025-01-31"}`.
    pub fn wire(&self) -> String {
        match self {
            Self::Token(token) => token.clone(),
            Self::SepaMandate(mandate) => mandate.canonical_json(),
        }
    }

    /// `"token"` or `"sepa_mandate"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Token(_) => "token",
            Self::SepaMandate(_) => "sepa_mandate",
        }
    }

    /// Safe to show the payer: the token's first characters, or the IBAN's country and last four.
    pub fn masked(&self) -> String {
        match self {
            Self::Token(token) => {
                let head: String = token.chars().take(4).collect();
                format!("{head}…")
            }
            Self::SepaMandate(mandate) => {
                let iban = &mandate.iban;
                format!("{}…{}", &iban[..2], &iban[iban.len() - 4..])
            }
        }
    }
}

impl fmt::Debug for PaymentMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PaymentMethod::{}(<redacted>)", self.kind())
    }
}

impl fmt::Debug for SepaMandate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SepaMandate(<redacted>)")
    }
}

/// 1–255 visible ASCII characters: what every provider token we know looks like.
fn check_token(token: &str) -> Result<(), &'static str> {
    if token.is_empty() || token.len() > 255 {
        return Err("must be a token of 1-255 characters");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be a token of visible ASCII characters without spaces");
    }
    Ok(())
}

impl SepaMandate {
    fn parse(map: &Map<String, Value>, path: &str, today: NaiveDate, errors: &mut Vec<FieldError>) -> Option<Self> {
        let before = errors.len();
        let at = |field: &str| format!("{path}.{field}");
        for key in map.keys() {
            if !MANDATE_FIELDS.contains(&key.as_str()) {
                errors.push(FieldError::new(at(key), "is not a field of a SEPA mandate"));
            }
        }
        let mut text = |field: &str, required: bool| -> Option<String> {
            match map.get(field) {
                None | Some(Value::Null) if required => {
                    errors.push(FieldError::new(at(field), "is required"));
                    None
                }
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => {
                    errors.push(FieldError::new(at(field), "must be a string"));
                    None
                }
            }
        };
        let iban = text("iban", true);
        let bic = text("bic", false);
        let reference = text("mandate_reference", true);
        let signed_on = text("mandate_signed_on", true);
        let debtor = text("debtor_name", true);

        let iban = iban.and_then(|raw| check(errors, at("iban"), normalise_iban(&raw)));
        let bic = bic.and_then(|raw| check(errors, at("bic"), normalise_bic(&raw)));
        let reference = reference.and_then(|raw| check(errors, at("mandate_reference"), check_reference(&raw)));
        let signed_on = signed_on.and_then(|raw| check(errors, at("mandate_signed_on"), check_signed_on(&raw, today)));
        let debtor = debtor.and_then(|raw| check(errors, at("debtor_name"), check_debtor(&raw)));
        if errors.len() > before {
            return None;
        }
        Some(SepaMandate {
            iban: iban?,
            bic,
            mandate_reference: reference?,
            mandate_signed_on: signed_on?,
            debtor_name: debtor?,
        })
    }

    /// Keys sorted, no whitespace; see [`PaymentMethod::wire`].
    pub fn canonical_json(&self) -> String {
        // A BTreeMap-backed object would sort too, but serde_json may be built with
        // `preserve_order`: write the keys in sorted order explicitly.
        let mut out = String::from("{");
        let mut field = |key: &str, value: &str| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push_str(&Value::String(key.to_owned()).to_string());
            out.push(':');
            out.push_str(&Value::String(value.to_owned()).to_string());
        };
        if let Some(bic) = &self.bic {
            field("bic", bic);
        }
        field("debtor_name", &self.debtor_name);
        field("iban", &self.iban);
        field("mandate_reference", &self.mandate_reference);
        field("mandate_signed_on", &self.mandate_signed_on.format("%Y-%m-%d").to_string());
        out.push('}');
        out
    }
}

fn check<T>(errors: &mut Vec<FieldError>, field: String, result: Result<T, &'static str>) -> Option<T> {
    result.map_err(|reason| errors.push(FieldError::new(field, reason))).ok()
}

/// Upper case without spaces, 15–34 characters, country letters, ISO 7064 mod 97-10 check.
pub(crate) fn normalise_iban(raw: &str) -> Result<String, &'static str> {
    let iban: String = raw.chars().filter(|c| *c != ' ').collect::<String>().to_ascii_uppercase();
    let bytes = iban.as_bytes();
    let shaped = (15..=34).contains(&bytes.len())
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..4].iter().all(u8::is_ascii_digit)
        && bytes.iter().all(u8::is_ascii_alphanumeric);
    if !shaped {
        return Err("is not an IBAN: expected a country code, check digits and up to 30 letters or digits");
    }
    let rearranged = bytes[4..].iter().chain(&bytes[..4]);
    let mut remainder: u32 = 0;
    for &b in rearranged {
        let value = if b.is_ascii_digit() { u32::from(b - b'0') } else { u32::from(b - b'A') + 10 };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    if remainder != 1 {
        return Err("is not a valid IBAN: the check digits do not match");
    }
    Ok(iban)
}

/// ISO 9362: 4 letters (bank), 2 letters (country), 2 letters or digits (location),
/// optionally 3 letters or digits (branch).
fn normalise_bic(raw: &str) -> Result<String, &'static str> {
    let bic = raw.trim().to_ascii_uppercase();
    let b = bic.as_bytes();
    let valid = (b.len() == 8 || b.len() == 11)
        && b[..6].iter().all(u8::is_ascii_uppercase)
        && b[6..].iter().all(u8::is_ascii_alphanumeric);
    if valid { Ok(bic) } else { Err("is not a BIC: expected 8 or 11 letters and digits such as COBADEFFXXX") }
}

/// The SEPA character set, 1–35 characters.
fn check_reference(raw: &str) -> Result<String, &'static str> {
    let valid = (1..=35).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-?:().,'+ ".contains(&b))
        && raw.trim() == raw;
    if valid {
        Ok(raw.to_owned())
    } else {
        Err(
            "must be 1-35 characters of A-Z, a-z, 0-9 and / - ? : ( ) . , ' + space, not starting or ending with a space",
        )
    }
}

fn check_signed_on(raw: &str, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| "is not a date in the form YYYY-MM-DD")?;
    if date > today {
        return Err("must not be in the future");
    }
    Ok(date)
}

fn check_debtor(raw: &str) -> Result<String, &'static str> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if !(1..=70).contains(&chars) || trimmed.chars().any(char::is_control) {
        return Err("must be 1-70 printable characters");
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()
    }

    fn parse(value: Value) -> Result<PaymentMethod, Vec<FieldError>> {
        let mut errors = Vec::new();
        match PaymentMethod::parse(&value, "payment_method", today(), &mut errors) {
            Some(method) if errors.is_empty() => Ok(method),
            _ => Err(errors),
        }
    }

    #[test]
    fn provider_names() {
        assert!(ProviderName::parse("stripe").is_ok());
        assert!(ProviderName::parse("bank-sepa2").is_ok());
        for bad in ["", "Stripe", "a b", "a_b", &"x".repeat(65)] {
            assert!(ProviderName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_token_is_passed_as_is() {
        let method = parse(json!("pm_card_visa")).unwrap();
        assert_eq!(method.wire(), "pm_card_visa");
        assert_eq!(method.kind(), "token");
        assert_eq!(format!("{method:?}"), "PaymentMethod::token(<redacted>)");
        assert!(parse(json!("")).is_err());
        assert!(parse(json!("has space")).is_err());
        assert!(parse(json!(42)).is_err());
    }

    #[test]
    fn a_mandate_becomes_canonical_json() {
        let method = parse(json!({
            "mandate_signed_on": "2025-01-31",
            "iban": "de89 3704 0044 0532 0130 00",
            "debtor_name": " Jane Roe ",
            "bic": "cobadeffxxx",
            "mandate_reference": "M-2025/001",
        }))
        .unwrap();
        assert_eq!(
            method.wire(),
            r#"{"bic":"COBADEFFXXX","debtor_name":"Jane Roe","iban":"DE89370400440532013000","mandate_reference":"M-2025/001","mandate_signed_on":"2025-01-31"}"#
        );
        assert_eq!(PaymentMethod::from_wire(&method.wire()), method);
        assert_eq!(method.masked(), "DE…3000");
        assert!(!format!("{method:?}").contains("DE89"));

        let without_bic = parse(json!({
            "iban": "DE89370400440532013000", "mandate_reference": "M1",
            "mandate_signed_on": "2025-01-31", "debtor_name": "Jane Roe",
        }))
        .unwrap();
        assert!(!without_bic.wire().contains("bic"));
        assert_eq!(PaymentMethod::from_wire(&without_bic.wire()), without_bic);
        assert_eq!(PaymentMethod::from_wire("tok_1"), PaymentMethod::Token("tok_1".into()));
    }

    #[test]
    fn every_bad_mandate_field_is_reported() {
        let errors = parse(json!({
            "iban": "DE89370400440532013001",
            "bic": "COBA",
            "mandate_reference": "",
            "mandate_signed_on": "2099-01-01",
            "extra": 1,
        }))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "payment_method.extra",
                "payment_method.debtor_name",
                "payment_method.iban",
                "payment_method.bic",
                "payment_method.mandate_reference",
                "payment_method.mandate_signed_on",
            ]
        );
        assert!(errors.iter().all(|e| !e.reason.contains("DE89")), "values are not echoed");
    }

    #[test]
    fn iban_check_digits() {
        for good in ["GB82WEST12345698765432", "NO9386011117947", "FR1420041010050500013M02606"] {
            assert!(normalise_iban(good).is_ok(), "{good}");
        }
        for bad in ["GB82WEST12345698765433", "DE8937040044", "1289370400440532013000", "DE89-3704"] {
            assert!(normalise_iban(bad).is_err(), "{bad}");
        }
    }
}
