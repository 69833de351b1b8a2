//! The leased vehicle: VIN, make, model, model year and category.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::{Category, Vin};

const MAX_NAME_CHARS: usize = 100;
/// The oldest model year a lease may be written for.
pub const MIN_MODEL_YEAR: u16 = 1950;
/// Model years run ahead of the calendar: up to this many years after today's.
const MODEL_YEARS_AHEAD: i32 = 2;

/// Why a string is not a [`VehicleName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VehicleNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_NAME_CHARS} characters, got {0}")]
    TooLong(usize),
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// A make or model name such as `Volkswagen` or `ID.4`: trimmed, non-empty, at most
/// 100 characters, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct VehicleName(String);

impl VehicleName {
    pub fn parse(input: &str) -> Result<Self, VehicleNameError> {
        let name = input.trim();
        if name.is_empty() {
            return Err(VehicleNameError::Empty);
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(VehicleNameError::TooLong(chars));
        }
        if name.chars().any(char::is_control) {
            return Err(VehicleNameError::ControlCharacter);
        }
        Ok(VehicleName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VehicleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The model year lies outside 1950 ..= today's year + 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("model year must be between {min} and {max}, got {year}")]
pub struct ModelYearError {
    pub year: i64,
    pub min: u16,
    pub max: i32,
}

/// A model year between 1950 and two years after the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ModelYear(u16);

impl ModelYear {
    /// `today` is passed in, so that the check is pure: the latest year allowed is
    /// `today.year() + 2`.
    pub fn new(year: i64, today: NaiveDate) -> Result<Self, ModelYearError> {
        let max = today.year() + MODEL_YEARS_AHEAD;
        let error = ModelYearError { year, min: MIN_MODEL_YEAR, max };
        let year = u16::try_from(year).map_err(|_| error.clone())?;
        if year < MIN_MODEL_YEAR || i32::from(year) > max {
            return Err(error);
        }
        Ok(ModelYear(year))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for ModelYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A vehicle built from parts that are each already valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vehicle {
    vin: Vin,
    make: VehicleName,
    model: VehicleName,
    year: ModelYear,
    category: Category,
}

impl Vehicle {
    pub fn new(vin: Vin, make: VehicleName, model: VehicleName, year: ModelYear, category: Category) -> Self {
        Vehicle { vin, make, model, year, category }
    }

    pub fn vin(&self) -> &Vin {
        &self.vin
    }

    pub fn make(&self) -> &VehicleName {
        &self.make
    }

    pub fn model(&self) -> &VehicleName {
        &self.model
    }

    pub fn year(&self) -> ModelYear {
        self.year
    }

    pub fn category(&self) -> Category {
        self.category
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
    }

    #[test]
    fn names_are_trimmed() {
        assert_eq!(VehicleName::parse("  Volkswagen ").unwrap().as_str(), "Volkswagen");
        assert_eq!(VehicleName::parse("ID.4").unwrap().as_str(), "ID.4");
    }

    #[test]
    fn empty_or_blank_names_are_refused() {
        assert_eq!(VehicleName::parse(""), Err(VehicleNameError::Empty));
        assert_eq!(VehicleName::parse(" \t "), Err(VehicleNameError::Empty));
    }

    #[test]
    fn names_are_limited_to_100_characters_not_bytes() {
        assert!(VehicleName::parse(&"é".repeat(100)).is_ok());
        assert_eq!(VehicleName::parse(&"a".repeat(101)), Err(VehicleNameError::TooLong(101)));
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in ["Golf\nGTI", "Golf\u{0}", "Go\u{7f}lf", "Golf\u{9b}"] {
            assert_eq!(VehicleName::parse(bad), Err(VehicleNameError::ControlCharacter), "{bad:?}");
        }
    }

    #[test]
    fn model_years_run_from_1950_to_two_years_ahead() {
        assert_eq!(ModelYear::new(1950, today()).unwrap().get(), 1950);
        assert_eq!(ModelYear::new(2028, today()).unwrap().get(), 2028);
        for year in [1949, 2029, 0, -2026, 70_000, i64::MAX] {
            assert_eq!(ModelYear::new(year, today()), Err(ModelYearError { year, min: 1950, max: 2028 }));
        }
    }

    #[test]
    fn the_upper_bound_follows_today() {
        let later = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        assert!(ModelYear::new(2032, later).is_ok());
        assert!(ModelYear::new(2032, today()).is_err());
    }

    #[test]
    fn vehicle_serialises_with_plain_fields() {
        let vehicle = Vehicle::new(
            Vin::parse("1M8GDM9AXKP042788").unwrap(),
            VehicleName::parse("Tesla").unwrap(),
            VehicleName::parse("Model 3").unwrap(),
            ModelYear::new(2026, today()).unwrap(),
            Category::Electric,
        );
        assert_eq!(
            serde_json::to_value(&vehicle).unwrap(),
            serde_json::json!({
                "vin": "1M8GDM9AXKP042788",
                "make": "Tesla",
                "model": "Model 3",
                "year": 2026,
                "category": "electric"
            })
        );
    }
}
