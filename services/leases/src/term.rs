//! The length of a lease in months.

use std::fmt;

use serde::Serialize;

/// The term lies outside 1 ..= 120 months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be between {min} and {max} months, got {0}", min = TermMonths::MIN, max = TermMonths::MAX)]
pub struct TermMonthsError(pub i64);

/// A lease term of 1 to 120 months: one installment per month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TermMonths(u16);

impl TermMonths {
    pub const MIN: u16 = 1;
    pub const MAX: u16 = 120;

    pub fn new(months: i64) -> Result<Self, TermMonthsError> {
        u16::try_from(months)
            .ok()
            .filter(|months| (Self::MIN..=Self::MAX).contains(months))
            .map(TermMonths)
            .ok_or(TermMonthsError(months))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for TermMonths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_one_to_one_hundred_twenty_months() {
        assert_eq!(TermMonths::new(1).unwrap().get(), 1);
        assert_eq!(TermMonths::new(36).unwrap().get(), 36);
        assert_eq!(TermMonths::new(120).unwrap().get(), 120);
    }

    #[test]
    fn refuses_everything_else() {
        for months in [0, -1, 121, 65_536, i64::MIN, i64::MAX] {
            assert_eq!(TermMonths::new(months), Err(TermMonthsError(months)));
        }
        assert_eq!(TermMonthsError(0).to_string(), "must be between 1 and 120 months, got 0");
    }
}
