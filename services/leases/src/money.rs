//! Currencies (ISO 4217) and amounts of money in integer minor units.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Active ISO 4217 currencies with their minor-unit exponent (digits after the decimal point).
///
/// Only circulating currencies are listed: fund codes (BOV, CHE, CLF, USN, …), precious
/// metals, SDR and the test codes are left out, as are withdrawn codes (HRK, BGN, ANG, SLL,
/// ZWL, CUC, …). Kept sorted by code so that lookup is a binary search.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2),
    ("AWG", 2), ("AZN", 2), ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BHD", 3), ("BIF", 0),
    ("BMD", 2), ("BND", 2), ("BOB", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2),
    ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2), ("CHF", 2), ("CLP", 0), ("CNY", 2),
    ("COP", 2), ("CRC", 2), ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2),
    ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2), ("ETB", 2), ("EUR", 2), ("FJD", 2),
    ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2), ("GNF", 0),
    ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2),
    ("ILS", 2), ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3),
    ("JPY", 0), ("KES", 2), ("KGS", 2), ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0),
    ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2), ("LKR", 2), ("LRD", 2),
    ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2),
    ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2),
    ("MYR", 2), ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2),
    ("NZD", 2), ("OMR", 3), ("PAB", 2), ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2),
    ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2), ("RUB", 2), ("RWF", 0),
    ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2),
    ("SZL", 2), ("THB", 2), ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2),
    ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2), ("UGX", 0), ("USD", 2), ("UYU", 2),
    ("UZS", 2), ("VED", 2), ("VES", 2), ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0),
    ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2), ("ZAR", 2), ("ZMW", 2),
    ("ZWG", 2),
];

/// Why a string is not a [`Currency`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    /// Not three uppercase ASCII letters.
    #[error("`{0}` is not a currency code: expected three uppercase letters such as EUR")]
    Malformed(String),
    /// Well formed, but not an active ISO 4217 currency.
    #[error("`{0}` is not an active ISO 4217 currency")]
    Unknown(String),
}

/// An active ISO 4217 currency, e.g. `EUR`. Serialised as its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(into = "String")]
pub struct Currency {
    code: &'static str,
    minor_units: u8,
}

impl Currency {
    /// Parses an alphabetic ISO 4217 code. The code must already be uppercase: `eur` is refused.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::Malformed(code.to_owned()));
        }
        CURRENCIES
            .binary_search_by(|(known, _)| known.cmp(&code))
            .map(|index| {
                let (code, minor_units) = CURRENCIES[index];
                Currency { code, minor_units }
            })
            .map_err(|_| CurrencyError::Unknown(code.to_owned()))
    }

    /// Every code [`Currency::parse`] accepts, in order.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|(code, _)| *code)
    }

    /// The three-letter code, e.g. `"EUR"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for BHD.
    pub fn minor_units(&self) -> u8 {
        self.minor_units
    }
}

impl FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = CurrencyError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

// Written out: derived, serde would borrow the `&'static str` field and demand `'de: 'static`.
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Currency::parse(&code).map_err(serde::de::Error::custom)
    }
}

impl From<Currency> for String {
    fn from(currency: Currency) -> Self {
        currency.code.to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Why an amount is not a lease [`Money`] value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Lease amounts are never negative.
    #[error("amount must not be negative, got {0}")]
    Negative(i64),
}

/// A non-negative amount in the currency's minor units (cents for EUR, yen for JPY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "MoneyRepr")]
pub struct Money {
    amount: i64,
    currency: Currency,
}

/// The wire shape of [`Money`], checked on the way in.
#[derive(Deserialize)]
struct MoneyRepr {
    amount: i64,
    currency: Currency,
}

impl TryFrom<MoneyRepr> for Money {
    type Error = MoneyError;
    fn try_from(repr: MoneyRepr) -> Result<Self, Self::Error> {
        Money::new(repr.amount, repr.currency)
    }
}

impl Money {
    /// An amount in minor units; negative amounts are refused.
    pub fn new(amount: i64, currency: Currency) -> Result<Self, MoneyError> {
        if amount < 0 {
            return Err(MoneyError::Negative(amount));
        }
        Ok(Money { amount, currency })
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Money { amount: 0, currency }
    }

    /// The amount in minor units, never negative.
    pub fn amount(&self) -> i64 {
        self.amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }
}

/// `1299.00 EUR`, `500 JPY`, `1.250 BHD`: integer arithmetic only.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = u32::from(self.currency.minor_units);
        if digits == 0 {
            return write!(f, "{} {}", self.amount, self.currency);
        }
        let scale = 10_i64.pow(digits);
        let (major, minor) = (self.amount / scale, self.amount % scale);
        write!(f, "{major}.{minor:0width$} {}", self.currency, width = digits as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    #[test]
    fn table_is_sorted_and_unique_so_binary_search_works() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn known_codes_carry_their_exponent() {
        assert_eq!(eur().minor_units(), 2);
        assert_eq!(Currency::parse("JPY").unwrap().minor_units(), 0);
        assert_eq!(Currency::parse("BHD").unwrap().minor_units(), 3);
        assert_eq!(Currency::parse("USD").unwrap().code(), "USD");
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in ["", "EU", "EURO", "eur", "Eur", "E1R", " EUR", "ÉUR"] {
            assert_eq!(Currency::parse(bad), Err(CurrencyError::Malformed(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn unknown_and_withdrawn_codes_are_refused() {
        for code in ["ABC", "XXX", "XTS", "XAU", "DEM", "HRK"] {
            assert_eq!(Currency::parse(code), Err(CurrencyError::Unknown(code.to_owned())));
        }
    }

    #[test]
    fn currency_serialises_as_its_code() {
        assert_eq!(serde_json::to_string(&eur()).unwrap(), r#""EUR""#);
        let back: Currency = serde_json::from_str(r#""JPY""#).unwrap();
        assert_eq!(back.code(), "JPY");
        assert!(serde_json::from_str::<Currency>(r#""ZZZ""#).is_err());
    }

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Money::new(-1, eur()), Err(MoneyError::Negative(-1)));
        assert_eq!(Money::new(0, eur()), Ok(Money::zero(eur())));
        assert_eq!(Money::new(129_900, eur()).unwrap().amount(), 129_900);
    }

    #[test]
    fn money_round_trips_through_json_and_is_checked_on_the_way_in() {
        let money = Money::new(129_900, eur()).unwrap();
        let json = serde_json::to_string(&money).unwrap();
        assert_eq!(json, r#"{"amount":129900,"currency":"EUR"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        let negative = r#"{"amount":-5,"currency":"EUR"}"#;
        assert!(serde_json::from_str::<Money>(negative).is_err());
    }

    #[test]
    fn display_uses_the_minor_unit_exponent() {
        let show = |amount, code| Money::new(amount, Currency::parse(code).unwrap()).unwrap();
        assert_eq!(show(129_900, "EUR").to_string(), "1299.00 EUR");
        assert_eq!(show(5, "EUR").to_string(), "0.05 EUR");
        assert_eq!(show(500, "JPY").to_string(), "500 JPY");
        assert_eq!(show(1_250, "BHD").to_string(), "1.250 BHD");
    }
}
