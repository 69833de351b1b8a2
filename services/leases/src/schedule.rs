//! Monthly installment schedules.
//!
//! Installment 1 is due on the start date; installment k+1 is due k months later on the
//! start's day of month, or on that month's last day when the month is shorter. Each date
//! is computed from the start date, never from the previous due date, so a lease starting
//! on 31 December is due on the 31st again after February, not on the 28th forever.
//! The deposit is not an installment.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use crate::Money;

/// One installment of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ScheduleLine {
    /// 1-based position in the schedule.
    pub number: u16,
    pub due_date: NaiveDate,
    pub amount: Money,
}

/// The due dates of `term_months` monthly installments, the first on `start`.
///
/// Dates beyond chrono's range (past the year 262 000) cannot exist and are left out;
/// no lease term reaches them.
pub fn installment_due_dates(start: NaiveDate, term_months: u16) -> Vec<NaiveDate> {
    (0..u32::from(term_months)).map_while(|offset| start.checked_add_months(Months::new(offset))).collect()
}

/// `term_months` installments of `monthly_amount`, numbered from 1, due as
/// [`installment_due_dates`] says.
pub fn installment_schedule(start: NaiveDate, term_months: u16, monthly_amount: Money) -> Vec<ScheduleLine> {
    installment_due_dates(start, term_months)
        .into_iter()
        .zip(1..=term_months)
        .map(|(due_date, number)| ScheduleLine { number, due_date, amount: monthly_amount })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Currency;
    use chrono::Datelike;
    use proptest::prelude::*;

    fn date(year: i32, month: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, month, day).unwrap()
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::parse("EUR").unwrap()).unwrap()
    }

    /// Written out independently of chrono, so the property checks the implementation.
    fn days_in_month(year: i32, month: u32) -> u32 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    #[test]
    fn start_on_31_december_2026_clamps_to_month_ends_without_drifting() {
        let dates = installment_due_dates(date(2026, 12, 31), 6);
        assert_eq!(
            dates,
            [
                date(2026, 12, 31),
                date(2027, 1, 31),
                date(2027, 2, 28),
                date(2027, 3, 31),
                date(2027, 4, 30),
                date(2027, 5, 31),
            ]
        );
    }

    #[test]
    fn february_of_leap_year_2028_gets_the_29th() {
        let dates = installment_due_dates(date(2027, 12, 31), 4);
        assert_eq!(dates, [date(2027, 12, 31), date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31),]);
    }

    #[test]
    fn start_on_30_january_clamps_february_only() {
        let dates = installment_due_dates(date(2027, 1, 30), 4);
        assert_eq!(dates, [date(2027, 1, 30), date(2027, 2, 28), date(2027, 3, 30), date(2027, 4, 30),]);
        assert_eq!(installment_due_dates(date(2028, 1, 30), 2)[1], date(2028, 2, 29));
    }

    #[test]
    fn zero_months_is_an_empty_schedule() {
        assert!(installment_due_dates(date(2026, 1, 1), 0).is_empty());
        assert!(installment_schedule(date(2026, 1, 1), 0, eur(100)).is_empty());
    }

    #[test]
    fn schedule_lines_are_numbered_from_one_and_carry_the_monthly_amount() {
        let lines = installment_schedule(date(2026, 12, 31), 36, eur(129_900));
        assert_eq!(lines.len(), 36);
        assert_eq!(lines[0], ScheduleLine { number: 1, due_date: date(2026, 12, 31), amount: eur(129_900) });
        assert_eq!(lines[35].number, 36);
        assert_eq!(lines[35].due_date, date(2029, 11, 30));
        assert!(lines.iter().all(|line| line.amount == eur(129_900)));
    }

    #[test]
    fn dates_past_the_end_of_the_calendar_are_left_out() {
        let last_month = NaiveDate::MAX.with_day(1).unwrap();
        assert_eq!(installment_due_dates(last_month, 3), [last_month]);
    }

    fn any_start() -> impl Strategy<Value = NaiveDate> {
        (1990..=2100_i32, 1..=12_u32, 1..=31_u32)
            .prop_filter_map("no such day", |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        #[test]
        fn schedules_have_one_installment_per_consecutive_month(
            start in any_start(),
            term in 1..=120_u16,
        ) {
            let lines = installment_schedule(start, term, eur(1));
            prop_assert_eq!(lines.len(), usize::from(term));
            prop_assert_eq!(lines[0].due_date, start);
            let start_month = start.year() * 12 + start.month0() as i32;
            for (index, line) in lines.iter().enumerate() {
                prop_assert_eq!(usize::from(line.number), index + 1);
                let due = line.due_date;
                // Installment k falls in calendar month start + k - 1: one per month, no gaps.
                prop_assert_eq!(due.year() * 12 + due.month0() as i32, start_month + index as i32);
                let expected_day = start.day().min(days_in_month(due.year(), due.month()));
                prop_assert_eq!(due.day(), expected_day);
            }
            let dates = installment_due_dates(start, term);
            prop_assert!(dates.iter().eq(lines.iter().map(|line| &line.due_date)));
        }
    }
}
