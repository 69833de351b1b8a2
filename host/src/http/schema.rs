//! Schemas of request values, as strict as the rules that check them: each is built from the
//! domain crate's own constants (currency list, limits, name rules), so the OpenAPI document
//! cannot drift from the validation. Used with `#[schema(schema_with = …)]` on request types.
//!
//! What JSON Schema cannot say is stated in the description and left to the server: check
//! digits (North American VINs, IBAN mod 97), dates relative to today, and the refusal of
//! anything that looks like a card number.

use chrono::{Datelike, Utc};
use lessor_leases::{Category, Currency, LeaseStatus, MAX_LEASE_AMOUNT, MIN_MODEL_YEAR, TermMonths};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{Object, OneOfBuilder, RefOr, Schema};

fn string(pattern: &str, description: &str) -> Object {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).build()
}

fn integer(min: i64, max: i64, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min as f64))
        .maximum(Some(max as f64))
        .description(Some(description))
        .build()
}

fn one_of_strings(values: impl IntoIterator<Item = &'static str>, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values.into_iter().collect::<Vec<_>>()))
        .description(Some(description))
        .build()
}

/// No C0/C1 control characters (what `char::is_control` refuses).
const PRINTABLE: &str = r"[^\x00-\x1f\x7f-\x9f]";

pub fn currency() -> Object {
    one_of_strings(Currency::codes(), "an active ISO 4217 code, upper case")
}

pub fn amount() -> Object {
    integer(1, MAX_LEASE_AMOUNT, "integer minor units of the currency (cents for EUR)")
}

pub fn deposit() -> Object {
    integer(0, MAX_LEASE_AMOUNT, "integer minor units of the currency, collected at signing")
}

pub fn term_months() -> Object {
    integer(i64::from(TermMonths::MIN), i64::from(TermMonths::MAX), "months")
}

pub fn model_year() -> Object {
    let latest = i64::from(Utc::now().year()) + 2;
    integer(i64::from(MIN_MODEL_YEAR), latest, "from 1950 to two years after the current one")
}

pub fn category() -> Object {
    one_of_strings(Category::ALL.map(Category::as_str), "the vehicle category")
}

pub fn lease_status() -> Object {
    one_of_strings(LeaseStatus::ALL.map(LeaseStatus::as_str), "a lease status")
}

pub fn vin() -> Object {
    string(
        r"^\s*[A-HJ-NPR-Za-hj-npr-z0-9]{17}\s*$",
        "17 characters of the VIN alphabet (no I, O, Q); for North American VINs (first character 1-5) \
         position 9 must be the ISO 3779 check digit",
    )
}

/// A make or model: 1-100 characters once trimmed, no control characters.
pub fn vehicle_name() -> Object {
    let inner = format!(r"[^\s\x00-\x1f\x7f-\x9f](?:{PRINTABLE}{{0,98}}[^\s\x00-\x1f\x7f-\x9f])?");
    string(&format!(r"^\s*{inner}\s*$"), "1-100 characters, no control characters")
}

pub fn start_date() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(r"^\d{4}-\d{2}-\d{2}$"))
        .description(Some("YYYY-MM-DD, at most 10 years before or after today"))
        .build()
}

/// ASCII addresses only in the document (the server also takes international ones).
pub fn email() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(254))
        .pattern(Some(r"^[!-?A-~]{1,64}@[!-\-/-?A-~]+(?:\.[!-\-/-?A-~]+)+$"))
        .description(Some("an e-mail address, compared case-insensitively"))
        .build()
}

pub fn password() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .min_length(Some(lessor_auth::MIN_PASSWORD_CHARS))
        .max_length(Some(lessor_auth::MAX_PASSWORD_CHARS))
        .build()
}

pub fn provider() -> Object {
    string(r"^[a-z0-9-]{1,64}$", "a provider id, e.g. `stripe`")
}

/// A provider token (`pm_…`, `tok_…`): 1-255 visible ASCII characters.
pub fn token() -> Object {
    string(r"^[!-~]{1,255}$", "the provider's token; anything shaped like a card number is refused")
}

/// `payment_method`: a token or a SEPA mandate.
pub fn payment_method() -> RefOr<Schema> {
    let one_of = OneOfBuilder::new()
        .item(token())
        .item(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("SepaMandateRequest")))
        .description(Some("a provider token, or a SEPA direct-debit mandate for the `bank` provider"))
        .build();
    RefOr::T(Schema::OneOf(one_of))
}

pub fn iban() -> Object {
    string(
        r"^[ ]*[A-Za-z][ ]*[A-Za-z][ ]*[0-9][ ]*[0-9](?:[ ]*[A-Za-z0-9]){11,30}[ ]*$",
        "an IBAN, spaces allowed; the ISO 7064 mod 97-10 check digits must match",
    )
}

pub fn bic() -> Object {
    string(r"^\s*[A-Za-z]{6}[A-Za-z0-9]{2}(?:[A-Za-z0-9]{3})?\s*$", "8 or 11 letters and digits")
}

pub fn mandate_reference() -> Object {
    string(
        r"^[A-Za-z0-9/?:().,'+-](?:[A-Za-z0-9/?:().,'+ -]{0,33}[A-Za-z0-9/?:().,'+-])?$",
        "the SEPA mandate reference",
    )
}

pub fn mandate_signed_on() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some("YYYY-MM-DD, not in the future"))
        .build()
}

pub fn debtor_name() -> Object {
    let inner = format!(r"[^\s\x00-\x1f\x7f-\x9f](?:{PRINTABLE}{{0,68}}[^\s\x00-\x1f\x7f-\x9f])?");
    string(&format!(r"^\s*{inner}\s*$"), "1-70 characters once trimmed, no control characters")
}

/// 1-500 characters, not only spaces.
pub fn refund_reason() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(500))
        .pattern(Some(r"\S"))
        .description(Some("why; 1-500 characters, not only spaces"))
        .build()
}

/// `schema` or `null` (an optional field the server treats null as absent).
pub fn or_null(mut schema: Object) -> Object {
    if let utoipa::openapi::schema::SchemaType::Type(t) = schema.schema_type {
        schema.schema_type = utoipa::openapi::schema::SchemaType::Array(vec![t, Type::Null]);
    }
    schema
}

pub fn optional_amount() -> Object {
    or_null(amount())
}

pub fn optional_refund_reason() -> Object {
    or_null(refund_reason())
}

pub fn optional_bic() -> Object {
    or_null(bic())
}

/// A query filter: one of `values`, or empty for none.
fn filter(values: impl IntoIterator<Item = &'static str>, description: &str) -> Object {
    one_of_strings([""].into_iter().chain(values), description)
}

pub fn optional_lease_status() -> Object {
    filter(LeaseStatus::ALL.map(LeaseStatus::as_str), "a lease status")
}

pub fn optional_category() -> Object {
    filter(Category::ALL.map(Category::as_str), "a vehicle category")
}

/// A UUID, or empty for none.
pub fn optional_uuid() -> Object {
    string(
        "^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
        "a UUID, or empty for none",
    )
}

pub fn role() -> Object {
    one_of_strings(["customer", "operator", "admin"], "the account's role")
}
