//! A new lease request: the raw JSON shape and its parsing into a validated [`NewLease`].

use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::validation::Collector;
use crate::{
    Category, Currency, ModelYear, Money, ScheduleLine, TermMonths, ValidationError, Vehicle, VehicleName, Vin,
    installment_schedule,
};

/// The largest monthly amount or deposit accepted, in minor units (10^12).
pub const MAX_LEASE_AMOUNT: i64 = 1_000_000_000_000;
/// How far from today a lease may start, in either direction.
const START_WINDOW: Months = Months::new(120);

/// The vehicle part of a lease request, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct VehicleInput {
    pub vin: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    pub year: Option<i64>,
    pub category: Option<String>,
}

/// A lease request as sent: every field optional and loosely typed, so that parsing can
/// report every problem at once rather than stopping at the first.
///
/// ```json
/// {"vehicle": {"vin": "1M8GDM9AXKP042788", "make": "Ford", "model": "Transit",
///              "year": 2026, "category": "van"},
///  "start_date": "2026-12-31", "term_months": 36,
///  "monthly_amount": 129900, "deposit": 500000, "currency": "EUR"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct LeaseInput {
    pub vehicle: Option<VehicleInput>,
    pub start_date: Option<String>,
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    pub term_months: Option<i64>,
    /// Minor units of `currency`.
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    pub monthly_amount: Option<i64>,
    /// Minor units of `currency`.
    #[serde(default, deserialize_with = "crate::validation::optional_integer")]
    pub deposit: Option<i64>,
    pub currency: Option<String>,
}

/// A start date that is not `YYYY-MM-DD`, or too far from today.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StartDateError {
    #[error("`{0}` is not a date in the form YYYY-MM-DD")]
    NotIsoDate(String),
    #[error("must be between {earliest} and {latest} (10 years from today), got {date}")]
    OutOfWindow { date: NaiveDate, earliest: NaiveDate, latest: NaiveDate },
}

/// A monthly amount or deposit outside its range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between {min} and {max} minor units, got {got}")]
pub struct AmountError {
    pub min: i64,
    pub max: i64,
    pub got: i64,
}

/// A lease request that passed every rule; nothing about it needs checking again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewLease {
    vehicle: Vehicle,
    start_date: NaiveDate,
    term_months: TermMonths,
    monthly_amount: Money,
    deposit: Money,
}

impl NewLease {
    /// Parses a request, reporting every invalid field (by JSON path) rather than the first.
    /// `today` bounds the start date and the vehicle's model year.
    pub fn parse(input: LeaseInput, today: NaiveDate) -> Result<Self, ValidationError> {
        let mut errors = Collector::default();
        let vehicle =
            errors.required("vehicle", input.vehicle).and_then(|vehicle| parse_vehicle(&mut errors, vehicle, today));
        let start_date = errors
            .required("start_date", input.start_date)
            .and_then(|date| errors.check("start_date", parse_start_date(&date, today)));
        let term_months = errors
            .required("term_months", input.term_months)
            .and_then(|months| errors.check("term_months", TermMonths::new(months)));
        let monthly_amount = errors
            .required("monthly_amount", input.monthly_amount)
            .and_then(|amount| errors.check("monthly_amount", check_amount(amount, 1)));
        let deposit = errors
            .required("deposit", input.deposit)
            .and_then(|amount| errors.check("deposit", check_amount(amount, 0)));
        let currency = errors
            .required("currency", input.currency)
            .and_then(|code| errors.check("currency", Currency::parse(&code)));

        let amounts = monthly_amount.zip(deposit).zip(currency);
        let lease = assemble(vehicle, start_date, term_months, amounts);
        errors.finish(lease)
    }

    pub fn vehicle(&self) -> &Vehicle {
        &self.vehicle
    }

    /// The day the first installment is due.
    pub fn start_date(&self) -> NaiveDate {
        self.start_date
    }

    pub fn term_months(&self) -> TermMonths {
        self.term_months
    }

    pub fn monthly_amount(&self) -> Money {
        self.monthly_amount
    }

    pub fn deposit(&self) -> Money {
        self.deposit
    }

    /// The currency of both the monthly amount and the deposit.
    pub fn currency(&self) -> Currency {
        self.monthly_amount.currency()
    }

    /// One line per month of the term; the deposit is not among them.
    pub fn schedule(&self) -> Vec<ScheduleLine> {
        installment_schedule(self.start_date, self.term_months.get(), self.monthly_amount)
    }
}

/// The lease, once every part has parsed.
fn assemble(
    vehicle: Option<Vehicle>,
    start_date: Option<NaiveDate>,
    term_months: Option<TermMonths>,
    amounts: Option<((i64, i64), Currency)>,
) -> Option<NewLease> {
    let ((monthly_amount, deposit), currency) = amounts?;
    Some(NewLease {
        vehicle: vehicle?,
        start_date: start_date?,
        term_months: term_months?,
        monthly_amount: Money::new(monthly_amount, currency).ok()?,
        deposit: Money::new(deposit, currency).ok()?,
    })
}

fn parse_vehicle(errors: &mut Collector, input: VehicleInput, today: NaiveDate) -> Option<Vehicle> {
    let vin = errors.required("vehicle.vin", input.vin).and_then(|vin| errors.check("vehicle.vin", Vin::parse(&vin)));
    let make = errors
        .required("vehicle.make", input.make)
        .and_then(|make| errors.check("vehicle.make", VehicleName::parse(&make)));
    let model = errors
        .required("vehicle.model", input.model)
        .and_then(|model| errors.check("vehicle.model", VehicleName::parse(&model)));
    let year = errors
        .required("vehicle.year", input.year)
        .and_then(|year| errors.check("vehicle.year", ModelYear::new(year, today)));
    let category = errors
        .required("vehicle.category", input.category)
        .and_then(|category| errors.check("vehicle.category", category.parse::<Category>()));
    Some(Vehicle::new(vin?, make?, model?, year?, category?))
}

/// Strictly `YYYY-MM-DD`, at most 10 years before or after `today`.
fn parse_start_date(text: &str, today: NaiveDate) -> Result<NaiveDate, StartDateError> {
    let shape_ok = text.len() == 10
        && text.bytes().enumerate().all(|(index, byte)| match index {
            4 | 7 => byte == b'-',
            _ => byte.is_ascii_digit(),
        });
    let date = shape_ok
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| StartDateError::NotIsoDate(text.to_owned()))?;
    let earliest = today.checked_sub_months(START_WINDOW).unwrap_or(NaiveDate::MIN);
    let latest = today.checked_add_months(START_WINDOW).unwrap_or(NaiveDate::MAX);
    if date < earliest || date > latest {
        return Err(StartDateError::OutOfWindow { date, earliest, latest });
    }
    Ok(date)
}

/// An amount between `min` and [`MAX_LEASE_AMOUNT`] minor units.
fn check_amount(amount: i64, min: i64) -> Result<i64, AmountError> {
    if (min..=MAX_LEASE_AMOUNT).contains(&amount) {
        Ok(amount)
    } else {
        Err(AmountError { min, max: MAX_LEASE_AMOUNT, got: amount })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldError;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    const VALID: &str = r#"{
        "vehicle": {"vin": "1M8GDM9AXKP042788", "make": "Ford", "model": "Transit",
                    "year": 2026, "category": "van"},
        "start_date": "2026-12-31", "term_months": 36,
        "monthly_amount": 129900, "deposit": 500000, "currency": "EUR"
    }"#;

    fn input(json: &str) -> LeaseInput {
        serde_json::from_str(json).unwrap()
    }

    fn valid() -> LeaseInput {
        input(VALID)
    }

    fn errors_of(input: LeaseInput) -> Vec<FieldError> {
        NewLease::parse(input, today()).unwrap_err().into_errors()
    }

    fn fields_of(input: LeaseInput) -> Vec<String> {
        errors_of(input).into_iter().map(|error| error.field).collect()
    }

    #[test]
    fn parses_the_documented_request() {
        let lease = NewLease::parse(valid(), today()).unwrap();
        assert_eq!(lease.vehicle().vin().as_str(), "1M8GDM9AXKP042788");
        assert_eq!(lease.vehicle().make().as_str(), "Ford");
        assert_eq!(lease.vehicle().model().as_str(), "Transit");
        assert_eq!(lease.vehicle().year().get(), 2026);
        assert_eq!(lease.vehicle().category(), Category::Van);
        assert_eq!(lease.start_date(), date(2026, 12, 31));
        assert_eq!(lease.term_months().get(), 36);
        assert_eq!(lease.monthly_amount().amount(), 129_900);
        assert_eq!(lease.deposit().amount(), 500_000);
        assert_eq!(lease.currency().code(), "EUR");
        assert_eq!(lease.deposit().currency(), lease.currency());
    }

    #[test]
    fn schedule_has_one_line_per_month_and_leaves_the_deposit_out() {
        let lease = NewLease::parse(valid(), today()).unwrap();
        let schedule = lease.schedule();
        assert_eq!(schedule.len(), 36);
        assert_eq!(schedule[2].due_date, date(2027, 2, 28));
        assert!(schedule.iter().all(|line| line.amount == lease.monthly_amount()));
    }

    #[test]
    fn an_empty_request_reports_every_missing_field() {
        assert_eq!(
            fields_of(input("{}")),
            ["vehicle", "start_date", "term_months", "monthly_amount", "deposit", "currency"]
        );
        let error = NewLease::parse(input("{}"), today()).unwrap_err();
        assert_eq!(error.reason_for("currency"), Some("is required"));
    }

    #[test]
    fn missing_vehicle_fields_are_reported_by_path() {
        let mut request = valid();
        request.vehicle = Some(VehicleInput::default());
        assert_eq!(
            fields_of(request),
            ["vehicle.vin", "vehicle.make", "vehicle.model", "vehicle.year", "vehicle.category"]
        );
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let request = input(
            r#"{
            "vehicle": {"vin": "1M8GDM9AXKP042789", "make": " ", "model": "a\u0007b",
                        "year": 1949, "category": "limousine"},
            "start_date": "2026-02-30", "term_months": 0,
            "monthly_amount": 0, "deposit": -1, "currency": "eur"
        }"#,
        );
        assert_eq!(
            errors_of(request),
            [
                FieldError::new("vehicle.vin", "check digit (position 9) is `X` but the VIN requires `1`"),
                FieldError::new("vehicle.make", "must not be empty"),
                FieldError::new("vehicle.model", "must not contain control characters"),
                FieldError::new("vehicle.year", "model year must be between 1950 and 2028, got 1949"),
                FieldError::new(
                    "vehicle.category",
                    "`limousine` is not a vehicle category: expected one of economy, compact, \
                     midsize, luxury, suv, sports, van, electric, truck"
                ),
                FieldError::new("start_date", "`2026-02-30` is not a date in the form YYYY-MM-DD"),
                FieldError::new("term_months", "must be between 1 and 120 months, got 0"),
                FieldError::new("monthly_amount", "must be between 1 and 1000000000000 minor units, got 0"),
                FieldError::new("deposit", "must be between 0 and 1000000000000 minor units, got -1"),
                FieldError::new(
                    "currency",
                    "`eur` is not a currency code: expected three uppercase letters such as EUR"
                ),
            ]
        );
    }

    #[test]
    fn amounts_are_bounded_by_ten_to_the_twelfth() {
        let mut request = valid();
        request.monthly_amount = Some(MAX_LEASE_AMOUNT);
        request.deposit = Some(0);
        assert!(NewLease::parse(request.clone(), today()).is_ok());
        request.monthly_amount = Some(MAX_LEASE_AMOUNT + 1);
        request.deposit = Some(MAX_LEASE_AMOUNT + 1);
        assert_eq!(fields_of(request), ["monthly_amount", "deposit"]);
    }

    #[test]
    fn term_runs_from_1_to_120_months() {
        for (months, ok) in [(1, true), (120, true), (121, false), (-36, false)] {
            let mut request = valid();
            request.term_months = Some(months);
            assert_eq!(NewLease::parse(request, today()).is_ok(), ok, "{months}");
        }
    }

    #[test]
    fn an_unknown_currency_is_reported_and_the_amounts_still_checked() {
        let mut request = valid();
        request.currency = Some("XYZ".to_owned());
        request.monthly_amount = Some(-5);
        assert_eq!(fields_of(request), ["monthly_amount", "currency"]);
    }

    #[test]
    fn start_date_must_be_strict_iso() {
        for bad in ["2026-1-5", "31.12.2026", "2026-12-31T00:00:00", " 2026-12-31", "+02026-12-31", ""] {
            assert_eq!(parse_start_date(bad, today()), Err(StartDateError::NotIsoDate(bad.to_owned())), "{bad:?}");
        }
        assert_eq!(parse_start_date("2028-02-29", today()), Ok(date(2028, 2, 29)));
        assert!(parse_start_date("2027-02-29", today()).is_err());
    }

    #[test]
    fn start_date_lies_within_ten_years_of_today() {
        assert_eq!(parse_start_date("2036-11-24", today()), Ok(date(2036, 11, 24)));
        assert_eq!(parse_start_date("2016-11-24", today()), Ok(date(2016, 11, 24)));
        assert_eq!(
            parse_start_date("2036-11-25", today()),
            Err(StartDateError::OutOfWindow {
                date: date(2036, 11, 25),
                earliest: date(2016, 11, 24),
                latest: date(2036, 11, 24),
            })
        );
        assert!(parse_start_date("2016-11-23", today()).is_err());
    }

    #[test]
    fn make_and_model_are_trimmed_and_vin_normalised() {
        let mut request = valid();
        request.vehicle = Some(VehicleInput {
            vin: Some(" 1m8gdm9axkp042788 ".to_owned()),
            make: Some("  Ford ".to_owned()),
            ..request.vehicle.unwrap()
        });
        let lease = NewLease::parse(request, today()).unwrap();
        assert_eq!(lease.vehicle().vin().as_str(), "1M8GDM9AXKP042788");
        assert_eq!(lease.vehicle().make().as_str(), "Ford");
    }

    #[test]
    fn json_nulls_count_as_missing() {
        let request = input(
            r#"{"vehicle": null, "start_date": null, "term_months": 12,
            "monthly_amount": 100, "deposit": 0, "currency": "JPY"}"#,
        );
        assert_eq!(fields_of(request), ["vehicle", "start_date"]);
    }

    #[test]
    fn serialises_with_plain_fields() {
        let lease = NewLease::parse(valid(), today()).unwrap();
        let json = serde_json::to_value(&lease).unwrap();
        assert_eq!(json["start_date"], "2026-12-31");
        assert_eq!(json["term_months"], 36);
        assert_eq!(json["monthly_amount"], serde_json::json!({"amount": 129900, "currency": "EUR"}));
        assert_eq!(json["vehicle"]["category"], "van");
    }
}
