//! What the collection job reads and writes besides payments.

use chrono::NaiveDate;
use lessor_leases::now_micros;
use lessor_store::on_db;
use uuid::Uuid;

use super::{Repo, RepoError};

/// An installment that is due, of an active lease with a payment method, without a payment
/// that is still open or succeeded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct CandidateRow {
    pub id: Uuid,
    pub lease_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub owner_id: Uuid,
    pub provider: String,
    pub method: String,
}

/// An earlier attempt on an installment, with the status of the payment it made.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct AttemptRow {
    pub attempt: i32,
    pub attempted_on: NaiveDate,
    pub payment_id: Option<Uuid>,
    pub payment_status: Option<String>,
}

impl AttemptRow {
    /// The attempt did not collect: refused before a payment existed, or its payment failed
    /// or was returned.
    pub fn failed(&self) -> bool {
        self.payment_id.is_none() || matches!(self.payment_status.as_deref(), Some("failed" | "returned"))
    }
}

impl Repo {
    pub async fn collection_candidates(&self, today: NaiveDate, limit: u32) -> Result<Vec<CandidateRow>, RepoError> {
        let sql = "SELECT i.id, i.lease_id, i.amount, i.currency, l.owner_id, m.provider, m.method \
                   FROM installments i \
                   JOIN leases l ON l.id = i.lease_id \
                   JOIN lease_payment_methods m ON m.lease_id = i.lease_id \
                   WHERE l.status = 'active' AND i.status IN ('due', 'overdue') AND i.due_date <= $1 \
                   AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.installment_id = i.id \
                                   AND p.status NOT IN ('failed', 'returned')) \
                   ORDER BY i.due_date, i.id LIMIT $2";
        Ok(on_db!(self.db(), pool => sqlx::query_as(sql).bind(today).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    pub async fn collection_attempts(&self, installment_id: Uuid) -> Result<Vec<AttemptRow>, RepoError> {
        let sql = "SELECT a.attempt, a.attempted_on, a.payment_id, p.status AS payment_status \
                   FROM collection_attempts a LEFT JOIN payments p ON p.id = a.payment_id \
                   WHERE a.installment_id = $1 ORDER BY a.attempt";
        Ok(on_db!(self.db(), pool => sqlx::query_as(sql).bind(installment_id).fetch_all(pool).await)?)
    }

    /// Records an attempt refused before a payment existed. `false` when another run wrote
    /// this attempt first.
    pub async fn record_refused_attempt(
        &self,
        installment_id: Uuid,
        attempt: i32,
        attempted_on: NaiveDate,
        failure_code: &str,
    ) -> Result<bool, RepoError> {
        let sql = "INSERT INTO collection_attempts (installment_id, attempt, payment_id, attempted_on, failure_code, \
                   created_at) VALUES ($1, $2, NULL, $3, $4, $5) ON CONFLICT (installment_id, attempt) DO NOTHING";
        let n = on_db!(self.db(), pool => sqlx::query(sql)
            .bind(installment_id).bind(attempt).bind(attempted_on).bind(failure_code).bind(now_micros())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// `due` → `overdue`; `false` when it was not `due`.
    pub async fn mark_overdue(&self, installment_id: Uuid) -> Result<bool, RepoError> {
        let sql = "UPDATE installments SET status = 'overdue' WHERE id = $1 AND status = 'due'";
        let n = on_db!(self.db(), pool => sqlx::query(sql).bind(installment_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}
