//! Field-by-field validation errors, collected so that a client sees every problem at once.

use std::fmt;

use serde::Serialize;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// JSON path of the field, e.g. `"vehicle.vin"` or `"term_months"`.
    pub field: String,
    /// Why it was refused, fit to show to the client.
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { field: field.into(), reason: reason.into() }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Every field of an input that was refused, in input order; never empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ValidationError {
    errors: Vec<FieldError>,
}

impl ValidationError {
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// The reason given for `field`, if it was refused.
    pub fn reason_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|error| error.field == field).map(|error| error.reason.as_str())
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

/// Collects field errors while an input is parsed.
#[derive(Debug, Default)]
pub(crate) struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    /// The value of a required field, or `None` after noting that it is missing.
    pub(crate) fn required<T>(&mut self, field: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.errors.push(FieldError::new(field, "is required"));
        }
        value
    }

    /// The parsed value, or `None` after noting why `field` was refused.
    pub(crate) fn check<T, E: fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|error| self.errors.push(FieldError::new(field, error.to_string()))).ok()
    }

    /// `Ok(value)` when nothing was refused and every part was built.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, ValidationError> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => {
                debug_assert!(!self.errors.is_empty(), "a part is missing without an error");
                Err(ValidationError { errors: self.errors })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_in_order() {
        let mut collector = Collector::default();
        assert_eq!(collector.required::<u8>("a", None), None);
        assert_eq!(collector.check::<u8, _>("b.c", Err("is wrong")), None);
        assert_eq!(collector.check::<_, String>("d", Ok(4)), Some(4));
        let error = collector.finish(Some(())).unwrap_err();
        assert_eq!(error.errors(), [FieldError::new("a", "is required"), FieldError::new("b.c", "is wrong")]);
        assert_eq!(error.reason_for("b.c"), Some("is wrong"));
        assert_eq!(error.reason_for("d"), None);
        assert_eq!(error.to_string(), "invalid input: a: is required; b.c: is wrong");
    }

    #[test]
    fn finishes_with_the_value_when_nothing_was_refused() {
        let mut collector = Collector::default();
        let value = collector.required("a", Some(1));
        assert_eq!(collector.finish(value), Ok(1));
    }

    #[test]
    fn serialises_as_a_list_of_fields_and_reasons() {
        let mut collector = Collector::default();
        collector.required::<u8>("term_months", None);
        let error = collector.finish(None::<()>).unwrap_err();
        assert_eq!(
            serde_json::to_value(&error).unwrap(),
            serde_json::json!({"errors": [{"field": "term_months", "reason": "is required"}]})
        );
    }
}

/// The integer a JSON number stands for: `5` and `5.0` alike (JSON Schema's `integer`), but not
/// `5.5`, and nothing outside `i64`.
pub fn json_integer(value: &serde_json::Value) -> Option<i64> {
    if let Some(n) = value.as_i64() {
        return Some(n);
    }
    let f = value.as_f64()?;
    // 2^63 is exactly representable; every f64 below it with no fraction fits in i64.
    (f.fract() == 0.0 && f >= -9_223_372_036_854_775_808.0 && f < 9_223_372_036_854_775_808.0).then(|| f as i64)
}

/// `deserialize_with` for an optional integer field that takes `5.0` as `5` (see [`json_integer`]).
pub fn optional_integer<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<i64>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_json::Value>::deserialize(de)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => json_integer(&value)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid type: {value}, expected an integer"))),
    }
}

#[cfg(test)]
mod integer_tests {
    use super::json_integer;
    use serde_json::json;

    #[test]
    fn integral_numbers_are_integers_whatever_their_notation() {
        assert_eq!(json_integer(&json!(5)), Some(5));
        assert_eq!(json_integer(&json!(5.0)), Some(5));
        assert_eq!(json_integer(&json!(-12.0)), Some(-12));
        assert_eq!(json_integer(&json!(5.5)), None);
        assert_eq!(json_integer(&json!(1e300)), None);
        assert_eq!(json_integer(&json!("5")), None);
    }
}
