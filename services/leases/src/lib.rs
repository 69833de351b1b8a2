//! The lease domain of Lessor: pure types and rules, with no database, HTTP or async.
//!
//! Everything here follows "parse, don't validate": raw input goes in through fallible
//! constructors with typed errors, and a value that exists is valid.
//!
//! - [`Currency`] and [`Money`]: ISO 4217 codes and non-negative integer minor units.
//! - [`Vin`]: a 17-character VIN, check digit enforced for North American VINs.
//! - [`Vehicle`] with [`VehicleName`], [`ModelYear`] and [`Category`].
//! - [`LeaseStatus`] (with its life cycle) and [`InstallmentStatus`].
//! - [`installment_due_dates`] and [`installment_schedule`]: monthly due dates that clamp
//!   to the end of short months without drifting.
//! - [`LeaseInput`] (the request as sent) parsed by [`NewLease::parse`], which reports
//!   every invalid field at once in a [`ValidationError`].
//!
//! Functions that depend on the date take `today` as an argument instead of reading a clock.

mod category;
mod id;
pub mod indexer;
mod lease;
mod money;
mod record;
pub mod repo;
mod schedule;
mod service;
mod status;
mod term;
mod validation;
mod vehicle;
mod vin;

pub use category::{Category, UnknownCategory};
pub use id::LeaseId;
pub use lease::{AmountError, LeaseInput, MAX_LEASE_AMOUNT, NewLease, StartDateError, VehicleInput};
pub use money::{Currency, CurrencyError, Money, MoneyError};
pub use record::{Installment, Lease, VehicleRecord, now_micros};
pub use schedule::{ScheduleLine, installment_due_dates, installment_schedule};
pub use service::{LeaseError, LeaseService, MAX_PAGE, Page, Viewer};
pub use status::{IllegalTransition, InstallmentStatus, LeaseStatus, UnknownStatus};
pub use term::{TermMonths, TermMonthsError};
pub use validation::{FieldError, ValidationError, json_integer};
pub use vehicle::{MIN_MODEL_YEAR, ModelYear, ModelYearError, Vehicle, VehicleName, VehicleNameError};
pub use vin::{Vin, VinError};
