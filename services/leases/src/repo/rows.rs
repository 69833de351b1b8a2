//! Database rows and their conversion into domain records.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::RepoError;
use crate::{Installment, Lease, VehicleRecord};

pub const LEASE_COLUMNS: &str = "id, owner_id, status, vin, make, model, model_year, category, start_date, \
     term_months, monthly_amount, deposit, currency, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct LeaseRow {
    id: Uuid,
    owner_id: Uuid,
    status: String,
    vin: String,
    make: String,
    model: String,
    model_year: i32,
    category: String,
    start_date: NaiveDate,
    term_months: i32,
    monthly_amount: i64,
    deposit: i64,
    currency: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{what}: {e}"))
}

impl TryFrom<LeaseRow> for Lease {
    type Error = RepoError;
    fn try_from(r: LeaseRow) -> Result<Self, RepoError> {
        Ok(Lease {
            id: r.id,
            owner_id: r.owner_id,
            status: r.status.parse().map_err(|e| corrupt("status", e))?,
            vehicle: VehicleRecord {
                vin: r.vin,
                make: r.make,
                model: r.model,
                year: u16::try_from(r.model_year).map_err(|e| corrupt("model_year", e))?,
                category: r.category.parse().map_err(|e| corrupt("category", e))?,
            },
            start_date: r.start_date,
            term_months: u16::try_from(r.term_months).map_err(|e| corrupt("term_months", e))?,
            monthly_amount: r.monthly_amount,
            deposit: r.deposit,
            currency: r.currency.parse().map_err(|e| corrupt("currency", e))?,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct InstallmentRow {
    id: Uuid,
    lease_id: Uuid,
    number: i32,
    due_date: NaiveDate,
    amount: i64,
    currency: String,
    status: String,
}

impl TryFrom<InstallmentRow> for Installment {
    type Error = RepoError;
    fn try_from(r: InstallmentRow) -> Result<Self, RepoError> {
        Ok(Installment {
            id: r.id,
            lease_id: r.lease_id,
            number: u16::try_from(r.number).map_err(|e| corrupt("number", e))?,
            due_date: r.due_date,
            amount: r.amount,
            currency: r.currency.parse().map_err(|e| corrupt("currency", e))?,
            status: r.status.parse().map_err(|e| corrupt("status", e))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub lease_id: Uuid,
    pub enqueued_at: i64,
    pub attempts: i32,
}
