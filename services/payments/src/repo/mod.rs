//! Payment storage on PostgreSQL and SQLite: one SQL text, compiled per engine by `on_db!`.
//!
//! Write transactions that read before they write start with [`WritePool::begin_write`]:
//! `BEGIN IMMEDIATE` on SQLite (the write lock is taken at the start, so a read cannot be
//! invalidated by another writer before this one writes), a plain `BEGIN` on PostgreSQL where
//! the rows read are locked with `FOR UPDATE` ([`Repo::for_update`]). Every status change is
//! also compare-and-set on the status read.

mod collection;
mod keyed;
mod provider_refunds;
mod rows;
mod transitions;

pub(crate) use collection::CandidateRow;
pub(crate) use keyed::{Finished, KeyAnswer, KeyClaim};
pub(crate) use provider_refunds::ProviderRefund;
pub(crate) use rows::{PaymentWork, RefundWork, refund_key, request_metadata};
pub use transitions::PAYMENT_RETURNED;
pub(crate) use transitions::{Applied, RefundApplied, RefundResolution, Transition, WebhookMark, event_for, moved};

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use lessor_leases::{InstallmentStatus, LeaseStatus, now_micros};
use lessor_store::{Db, on_db};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use crate::idempotency::{Claim, LINK_RESOURCE};
use crate::record::{LeasePaymentMethod, Payment, PaymentCursor, Refund};
use crate::status::PaymentStatus;
use rows::{PAYMENT_COLUMNS, PaymentRow, REFUND_COLUMNS, RefundRow, WORK_COLUMNS};

#[derive(Debug, thiserror::Error)]
pub(crate) enum RepoError {
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("outbox: {0}")]
    Outbox(#[from] lessor_events::OutboxError),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> RepoError {
    RepoError::Corrupt(format!("{what}: {e}"))
}

/// Begins a transaction that will write, taking SQLite's write lock up front.
pub(crate) trait WritePool {
    type Database: sqlx::Database;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl WritePool for PgPool {
    type Database = Postgres;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Postgres>, sqlx::Error>> + Send {
        self.begin()
    }
}

impl WritePool for SqlitePool {
    type Database = Sqlite;
    fn begin_write(&self) -> impl Future<Output = Result<Transaction<'static, Sqlite>, sqlx::Error>> + Send {
        self.begin_with("BEGIN IMMEDIATE")
    }
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// The lease facts a payment is checked against.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct LeaseFacts {
    pub owner_id: Uuid,
    pub status: String,
    pub currency: String,
}

impl LeaseFacts {
    pub fn status(&self) -> Result<LeaseStatus, RepoError> {
        self.status.parse().map_err(|e| corrupt("lease status", e))
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct InstallmentFacts {
    pub lease_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub status: String,
}

impl InstallmentFacts {
    pub fn status(&self) -> Result<InstallmentStatus, RepoError> {
        self.status.parse().map_err(|e| corrupt("installment status", e))
    }
}

/// A payment row to insert.
pub(crate) struct NewPaymentRow<'a> {
    pub id: Uuid,
    pub lease_id: Uuid,
    pub installment_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub amount: i64,
    pub currency: &'a str,
    pub provider: &'a str,
    pub payment_method: &'a str,
    pub idempotency_key: &'a str,
    /// When reconciliation should look at the payment if this process dies before `process`.
    pub reconcile_after: i64,
}

/// A collection attempt written with the payment it made.
pub(crate) struct AttemptMark {
    pub installment_id: Uuid,
    pub attempt: i32,
    pub attempted_on: NaiveDate,
}

/// Why a payment row was not inserted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InsertError {
    #[error("the installment is already paid")]
    InstallmentPaid,
    #[error("the installment already has a payment that is not failed")]
    InstallmentBusy,
    #[error("the idempotency key was taken over by another request")]
    ClaimLost,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for InsertError {
    fn from(e: sqlx::Error) -> Self {
        Self::Repo(e.into())
    }
}

/// Why a refund was not reserved.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReserveError {
    #[error("no such payment")]
    NotFound,
    #[error("a {0} payment cannot be refunded")]
    NotRefundable(PaymentStatus),
    #[error("only {available} can still be refunded")]
    Exceeds { available: i64 },
    #[error("the idempotency key was taken over by another request")]
    ClaimLost,
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<sqlx::Error> for ReserveError {
    fn from(e: sqlx::Error) -> Self {
        Self::Repo(e.into())
    }
}

/// A refund row to insert.
pub(crate) struct NewRefundRow<'a> {
    pub id: Uuid,
    pub payment_id: Uuid,
    /// `None`: everything still refundable.
    pub amount: Option<i64>,
    pub reason: Option<&'a str>,
    pub idempotency_key: &'a str,
    pub reconcile_after: i64,
}

pub(crate) struct Repo {
    db: Db,
}

const INSERT_PAYMENT: &str = "INSERT INTO payments (id, lease_id, installment_id, owner_id, amount, currency, provider, \
     payment_method, idempotency_key, status, reconcile_after, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, $11)";
const INSERT_ATTEMPT: &str = "INSERT INTO collection_attempts (installment_id, attempt, payment_id, attempted_on, \
     created_at) VALUES ($1, $2, $3, $4, $5)";

impl Repo {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write transactions hold the lock.
    pub fn for_update(&self) -> &'static str {
        match self.db {
            Db::Postgres(_) => " FOR UPDATE",
            Db::Sqlite(_) => "",
        }
    }

    pub async fn lease(&self, id: Uuid) -> Result<Option<LeaseFacts>, RepoError> {
        let sql = "SELECT owner_id, status, currency FROM leases WHERE id = $1";
        Ok(on_db!(&self.db, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    pub async fn installment(&self, id: Uuid) -> Result<Option<InstallmentFacts>, RepoError> {
        let sql = "SELECT lease_id, amount, currency, status FROM installments WHERE id = $1";
        Ok(on_db!(&self.db, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await)?)
    }

    /// Inserts a `pending` payment, linking it to the request's idempotency claim and, for
    /// the collection job, writing its attempt, all in one transaction.
    pub async fn insert_payment(
        &self,
        row: &NewPaymentRow<'_>,
        claim: Option<&Claim>,
        attempt: Option<&AttemptMark>,
    ) -> Result<Payment, InsertError> {
        let now = now_micros();
        let installment_sql = "SELECT status FROM installments WHERE id = $1";
        let select = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
        let stored: PaymentRow = on_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            if let Some(claim) = claim {
                let linked = sqlx::query(LINK_RESOURCE)
                    .bind(claim.scope.as_str()).bind(claim.key.as_str()).bind(claim.token).bind(row.id)
                    .execute(&mut *tx).await?.rows_affected();
                if linked != 1 {
                    return Err(InsertError::ClaimLost);
                }
            }
            if let Some(installment_id) = row.installment_id {
                let status: Option<String> =
                    sqlx::query_scalar(installment_sql).bind(installment_id).fetch_optional(&mut *tx).await?;
                if status.as_deref() == Some(InstallmentStatus::Paid.as_str()) {
                    return Err(InsertError::InstallmentPaid);
                }
            }
            let inserted = sqlx::query(INSERT_PAYMENT)
                .bind(row.id)
                .bind(row.lease_id)
                .bind(row.installment_id)
                .bind(row.owner_id)
                .bind(row.amount)
                .bind(row.currency)
                .bind(row.provider)
                .bind(row.payment_method)
                .bind(row.idempotency_key)
                .bind(row.reconcile_after)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match inserted {
                Err(e) if is_unique_violation(&e) => return Err(InsertError::InstallmentBusy),
                other => other?,
            };
            if let Some(mark) = attempt {
                let written = sqlx::query(INSERT_ATTEMPT)
                    .bind(mark.installment_id)
                    .bind(mark.attempt)
                    .bind(row.id)
                    .bind(mark.attempted_on)
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                match written {
                    Err(e) if is_unique_violation(&e) => return Err(InsertError::InstallmentBusy),
                    other => other?,
                };
            }
            let stored: PaymentRow = sqlx::query_as(&select).bind(row.id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, InsertError>(stored)
        })?;
        Ok(stored.into_payment()?)
    }

    pub async fn payment(&self, id: Uuid) -> Result<Option<Payment>, RepoError> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
        let row: Option<PaymentRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(PaymentRow::into_payment).transpose()
    }

    pub async fn payment_by_provider_tx(&self, provider: &str, tx_id: &str) -> Result<Option<Payment>, RepoError> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE provider = $1 AND provider_tx_id = $2");
        let row: Option<PaymentRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(provider).bind(tx_id).fetch_optional(pool).await)?;
        row.map(PaymentRow::into_payment).transpose()
    }

    /// Newest first, strictly after `after`; at most `limit`.
    pub async fn payments_of_lease(
        &self,
        lease_id: Uuid,
        after: Option<&PaymentCursor>,
        limit: u32,
    ) -> Result<Vec<Payment>, RepoError> {
        let rows: Vec<PaymentRow> = match after {
            None => {
                let sql = format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE lease_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                );
                on_db!(&self.db, pool => sqlx::query_as(&sql).bind(lease_id).bind(i64::from(limit)).fetch_all(pool).await)?
            }
            Some(cursor) => {
                let sql = format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE lease_id = $1 AND (created_at, id) < ($2, $3) \
                     ORDER BY created_at DESC, id DESC LIMIT $4"
                );
                on_db!(&self.db, pool => sqlx::query_as(&sql)
                    .bind(lease_id).bind(cursor.created_at).bind(cursor.id).bind(i64::from(limit))
                    .fetch_all(pool).await)?
            }
        };
        rows.into_iter().map(PaymentRow::into_payment).collect()
    }

    /// Payments flagged for an operator, oldest first.
    pub async fn needing_attention(&self, limit: u32) -> Result<Vec<Payment>, RepoError> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE needs_attention = TRUE ORDER BY created_at, id LIMIT $1"
        );
        let rows: Vec<PaymentRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(i64::from(limit)).fetch_all(pool).await)?;
        rows.into_iter().map(PaymentRow::into_payment).collect()
    }

    /// Puts a flagged pending payment back in the reconciliation queue at `at_ms`.
    pub async fn requeue_payment(&self, id: Uuid, at_ms: i64) -> Result<bool, RepoError> {
        let sql = "UPDATE payments SET needs_attention = FALSE, reconcile_after = $2, updated_at = $3 \
                   WHERE id = $1 AND status = 'pending' AND needs_attention = TRUE";
        let n = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(at_ms).bind(now_micros()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Flags a payment for an operator, noting why.
    pub async fn flag_payment(&self, id: Uuid, why: &str) -> Result<(), RepoError> {
        let sql = "UPDATE payments SET needs_attention = TRUE, last_error = $2, updated_at = $3 WHERE id = $1";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(why).bind(now_micros()).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Clears the flag of a payment that is not pending.
    pub async fn clear_flag(&self, id: Uuid) -> Result<bool, RepoError> {
        let sql = "UPDATE payments SET needs_attention = FALSE, updated_at = $2 \
                   WHERE id = $1 AND status <> 'pending' AND needs_attention = TRUE";
        let n = on_db!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(now_micros()).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    /// Claims a pending payment for one `process` call: counts the attempt and pushes its
    /// reconciliation time to `next_ms`, compare-and-set on the attempts counted so far, so no
    /// two workers call at the same time. With `due_at_ms`, only a payment due for
    /// reconciliation at that time is claimed.
    pub async fn claim_process(
        &self,
        id: Uuid,
        attempts_so_far: u32,
        next_ms: i64,
        due_at_ms: Option<i64>,
    ) -> Result<Option<PaymentWork>, RepoError> {
        let due = if due_at_ms.is_some() {
            " AND needs_attention = FALSE AND reconcile_after IS NOT NULL AND reconcile_after <= $5"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE payments SET process_attempts = process_attempts + 1, reconcile_after = $2, updated_at = $3 \
             WHERE id = $1 AND status = 'pending' AND process_attempts = $4{due} RETURNING {WORK_COLUMNS}"
        );
        let attempts = i32::try_from(attempts_so_far).map_err(|e| corrupt("attempts", e))?;
        let row: Option<rows::WorkRow> = on_db!(&self.db, pool => {
            let q = sqlx::query_as(&sql).bind(id).bind(next_ms).bind(now_micros()).bind(attempts);
            let q = match due_at_ms { Some(at) => q.bind(at), None => q };
            q.fetch_optional(pool).await
        })?;
        row.map(PaymentWork::try_from).transpose()
    }

    /// A `process` call ended without an outcome: keep the payment pending, note why, and
    /// flag it for an operator (no further automatic attempts) when `give_up`.
    pub async fn note_unknown_outcome(&self, id: Uuid, error: &str, give_up: bool) -> Result<(), RepoError> {
        let sql = "UPDATE payments SET last_error = $2, needs_attention = $3, \
                   reconcile_after = CASE WHEN $3 THEN NULL ELSE reconcile_after END, updated_at = $4 \
                   WHERE id = $1 AND status = 'pending'";
        let error: String = error.chars().take(500).collect();
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(error).bind(give_up).bind(now_micros()).execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Pending payments due for reconciliation at `now_ms`, most overdue first.
    pub async fn due_payments(&self, now_ms: i64, limit: u32) -> Result<Vec<(Uuid, i32)>, RepoError> {
        let sql = "SELECT id, process_attempts FROM payments WHERE status = 'pending' AND needs_attention = FALSE \
                   AND reconcile_after IS NOT NULL AND reconcile_after <= $1 ORDER BY reconcile_after, id LIMIT $2";
        Ok(on_db!(&self.db, pool => sqlx::query_as(sql).bind(now_ms).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    /// Reserves a refund of a payment (guarded so that refunds done and in flight never
    /// exceed the amount) and inserts it `pending`, in one transaction.
    pub async fn reserve_refund(
        &self,
        row: &NewRefundRow<'_>,
        claim: Option<&Claim>,
    ) -> Result<(Refund, PaymentWork), ReserveError> {
        let now = now_micros();
        let lock = self.for_update();
        let read = format!("SELECT {WORK_COLUMNS} FROM payments WHERE id = $1{lock}");
        let reserve = format!(
            "UPDATE payments SET refund_pending_amount = refund_pending_amount + $2, updated_at = $3 \
             WHERE id = $1 AND status IN ('succeeded', 'partially_refunded') \
             AND refunded_amount + refund_pending_amount + $2 <= amount RETURNING {WORK_COLUMNS}"
        );
        let insert = format!(
            "INSERT INTO refunds (id, payment_id, amount, currency, status, reason, idempotency_key, attempts, \
             reconcile_after, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6, 0, $7, $8, $8) \
             RETURNING {REFUND_COLUMNS}"
        );
        let (refund, work): (RefundRow, rows::WorkRow) = on_db!(&self.db, pool => {
            let mut tx = pool.begin_write().await?;
            if let Some(claim) = claim {
                let linked = sqlx::query(LINK_RESOURCE)
                    .bind(claim.scope.as_str()).bind(claim.key.as_str()).bind(claim.token).bind(row.id)
                    .execute(&mut *tx).await?.rows_affected();
                if linked != 1 {
                    return Err(ReserveError::ClaimLost);
                }
            }
            let current: Option<rows::WorkRow> = sqlx::query_as(&read).bind(row.payment_id).fetch_optional(&mut *tx).await?;
            let Some(current) = current else { return Err(ReserveError::NotFound) };
            let current = current.payment;
            let status: PaymentStatus = current.status.parse().map_err(|e| corrupt("payment status", e))?;
            if !status.is_refundable() {
                return Err(ReserveError::NotRefundable(status));
            }
            let available = current.amount - current.refunded_amount - current.refund_pending_amount;
            let amount = row.amount.unwrap_or(available);
            if amount <= 0 || amount > available {
                return Err(ReserveError::Exceeds { available });
            }
            let reserved: Option<rows::WorkRow> = sqlx::query_as(&reserve)
                .bind(row.payment_id).bind(amount).bind(now).fetch_optional(&mut *tx).await?;
            let Some(reserved) = reserved else { return Err(ReserveError::Exceeds { available }) };
            let refund: RefundRow = sqlx::query_as(&insert)
                .bind(row.id)
                .bind(row.payment_id)
                .bind(amount)
                .bind(&reserved.payment.currency)
                .bind(row.reason)
                .bind(row.idempotency_key)
                .bind(row.reconcile_after)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, ReserveError>((refund, reserved))
        })?;
        Ok((refund.into_refund()?, PaymentWork::try_from(work)?))
    }

    pub async fn refund(&self, id: Uuid) -> Result<Option<Refund>, RepoError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1");
        let row: Option<RefundRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
        row.map(RefundRow::into_refund).transpose()
    }

    pub async fn refunds_of(&self, payment_id: Uuid) -> Result<Vec<Refund>, RepoError> {
        let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = $1 ORDER BY created_at, id");
        let rows: Vec<RefundRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(payment_id).fetch_all(pool).await)?;
        rows.into_iter().map(RefundRow::into_refund).collect()
    }

    /// Claims a pending refund for one `refund` call, like [`Self::claim_process`].
    pub async fn claim_refund_call(
        &self,
        id: Uuid,
        attempts_so_far: u32,
        next_ms: i64,
        due_at_ms: Option<i64>,
    ) -> Result<Option<RefundWork>, RepoError> {
        let due = if due_at_ms.is_some() {
            " AND needs_attention = FALSE AND reconcile_after IS NOT NULL AND reconcile_after <= $5"
        } else {
            ""
        };
        let claim = format!(
            "UPDATE refunds SET attempts = attempts + 1, reconcile_after = $2, updated_at = $3 \
             WHERE id = $1 AND status = 'pending' AND attempts = $4{due} RETURNING id"
        );
        let attempts = i32::try_from(attempts_so_far).map_err(|e| corrupt("attempts", e))?;
        let claimed: Option<Uuid> = on_db!(&self.db, pool => {
            let q = sqlx::query_scalar(&claim).bind(id).bind(next_ms).bind(now_micros()).bind(attempts);
            let q = match due_at_ms { Some(at) => q.bind(at), None => q };
            q.fetch_optional(pool).await
        })?;
        if claimed.is_none() {
            return Ok(None);
        }
        let Some(refund) = self.refund(id).await? else { return Ok(None) };
        let sql = format!("SELECT {WORK_COLUMNS} FROM payments WHERE id = $1");
        let work: Option<rows::WorkRow> =
            on_db!(&self.db, pool => sqlx::query_as(&sql).bind(refund.payment_id).fetch_optional(pool).await)?;
        let Some(work) = work else { return Ok(None) };
        Ok(Some(RefundWork { refund, payment: PaymentWork::try_from(work)? }))
    }

    pub async fn note_refund_unknown(&self, id: Uuid, error: &str, give_up: bool) -> Result<(), RepoError> {
        let sql = "UPDATE refunds SET last_error = $2, needs_attention = $3, \
                   reconcile_after = CASE WHEN $3 THEN NULL ELSE reconcile_after END, updated_at = $4 \
                   WHERE id = $1 AND status = 'pending'";
        let error: String = error.chars().take(500).collect();
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(id).bind(error).bind(give_up).bind(now_micros()).execute(pool).await.map(drop))?;
        Ok(())
    }

    pub async fn due_refunds(&self, now_ms: i64, limit: u32) -> Result<Vec<(Uuid, i32)>, RepoError> {
        let sql = "SELECT id, attempts FROM refunds WHERE status = 'pending' AND needs_attention = FALSE \
                   AND reconcile_after IS NOT NULL AND reconcile_after <= $1 ORDER BY reconcile_after, id LIMIT $2";
        Ok(on_db!(&self.db, pool => sqlx::query_as(sql).bind(now_ms).bind(i64::from(limit)).fetch_all(pool).await)?)
    }

    pub async fn set_lease_method(
        &self,
        lease_id: Uuid,
        provider: &str,
        method: &str,
    ) -> Result<DateTime<Utc>, RepoError> {
        let now = now_micros();
        let sql = "INSERT INTO lease_payment_methods (lease_id, provider, method, updated_at) VALUES ($1, $2, $3, $4) \
                   ON CONFLICT (lease_id) DO UPDATE SET provider = excluded.provider, method = excluded.method, \
                   updated_at = excluded.updated_at";
        on_db!(&self.db, pool => sqlx::query(sql)
            .bind(lease_id).bind(provider).bind(method).bind(now).execute(pool).await.map(drop))?;
        Ok(now)
    }

    pub async fn lease_method(&self, lease_id: Uuid) -> Result<Option<LeasePaymentMethod>, RepoError> {
        let sql = "SELECT provider, method, updated_at FROM lease_payment_methods WHERE lease_id = $1";
        let row: Option<(String, String, DateTime<Utc>)> =
            on_db!(&self.db, pool => sqlx::query_as(sql).bind(lease_id).fetch_optional(pool).await)?;
        Ok(row.map(|(provider, method, updated_at)| LeasePaymentMethod {
            lease_id,
            provider,
            method: crate::PaymentMethod::from_wire(&method),
            updated_at,
        }))
    }

    pub async fn remove_lease_method(&self, lease_id: Uuid) -> Result<bool, RepoError> {
        let sql = "DELETE FROM lease_payment_methods WHERE lease_id = $1";
        let n =
            on_db!(&self.db, pool => sqlx::query(sql).bind(lease_id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }
}

/// `a, b` → `r.a, r.b`.
pub(super) fn qualified(columns: &str, alias: &str) -> String {
    columns.split(", ").map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}
