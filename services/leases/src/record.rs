//! Leases and installments as stored: what the repository reads back.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Category, Currency, InstallmentStatus, LeaseStatus};

/// A stored lease. Its fields passed [`crate::NewLease::parse`] when it was created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub status: LeaseStatus,
    pub vehicle: VehicleRecord,
    pub start_date: NaiveDate,
    pub term_months: u16,
    /// Minor units of `currency`.
    pub monthly_amount: i64,
    /// Minor units of `currency`.
    pub deposit: i64,
    pub currency: Currency,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VehicleRecord {
    pub vin: String,
    pub make: String,
    pub model: String,
    pub year: u16,
    pub category: Category,
}

/// One month's installment of a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Installment {
    pub id: Uuid,
    pub lease_id: Uuid,
    pub number: u16,
    pub due_date: NaiveDate,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub status: InstallmentStatus,
}

/// The current time at the precision both engines store (microseconds), so a value read
/// back equals the value written and keyset cursors compare exactly.
pub fn now_micros() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
