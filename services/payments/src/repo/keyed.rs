//! A payment created under an `Idempotency-Key` in two writes: one that opens it (the key
//! claimed, the payment `pending` with its first `process` call claimed) and one that
//! finishes it (the outcome, its outbox event, the installment and the key's stored answer).
//!
//! These are the common case of [`Repo::insert_payment`] + [`Repo::claim_process`] +
//! [`Repo::apply`] with the key's `begin`/`complete`, made cheap: on PostgreSQL each is one
//! statement (data-modifying CTEs, so one round trip and one commit); on SQLite, where a CTE
//! cannot write, one `BEGIN IMMEDIATE` transaction of a few statements in process. Anything
//! out of the ordinary (a key seen before, a lease or installment that does not fit, a
//! payment moved meanwhile by a webhook) writes nothing here and is left to the general path,
//! which explains it.

use lessor_events::{Event, PAYMENTS, enqueue};
use lessor_leases::Viewer;
use lessor_store::Db;
use uuid::Uuid;

use super::rows::{PaymentWork, WORK_COLUMNS, WorkRow};
use super::{NewPaymentRow, Repo, RepoError, WritePool, is_unique_violation};
use crate::idempotency::{ANSWER_FRESH_CLAIM, Claim, ClaimTimes};
use crate::record::Payment;
use crate::status::PaymentStatus;

/// The idempotency key to claim with the payment, and its row's times.
pub(crate) struct KeyClaim<'a> {
    pub claim: &'a Claim,
    pub fingerprint: &'a str,
    pub times: ClaimTimes,
}

/// The answer stored under the key for replays (its expiry was set when it was claimed).
pub(crate) struct KeyAnswer<'a> {
    pub claim: &'a Claim,
    pub status: u16,
    pub body: &'a str,
}

/// What [`Repo::finish_keyed`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// The payment moved, with its event, and the answer is stored under the key.
    Done,
    /// The payment moved, with its event, but the key was taken over meanwhile (its lock
    /// expired): the other request answers for it.
    ClaimLost,
    /// The payment was no longer pending with its first call (a webhook moved it, or it was
    /// flagged): nothing written.
    NotPending,
    /// The provider's transaction id is already another payment's (the unique index refused
    /// it): nothing written; the general path fails the payment as reused.
    TransactionTaken,
}

/// Lease and installment conditions of a payment, on `leases l` (shared by both engines):
/// visible to the viewer, active, in the payment's currency; the installment, if any, of this
/// lease, of this amount and currency, and not paid.
const LEASE_FITS: &str = "SELECT l.owner_id FROM leases l \
     WHERE l.id = $2 AND l.status = 'active' AND l.currency = $5 AND ($11 OR l.owner_id = $12) \
     AND ($3 IS NULL OR EXISTS (SELECT 1 FROM installments i WHERE i.id = $3 AND i.lease_id = l.id \
     AND i.amount = $4 AND i.currency = $5 AND i.status <> 'paid'))";

const KEY_COLUMNS: &str =
    "scope, idempotency_key, fingerprint, state, lock_token, locked_until, resource_id, created_at, expires_at";

const PAYMENT_INSERT_COLUMNS: &str = "id, lease_id, installment_id, owner_id, amount, currency, provider, \
     payment_method, idempotency_key, status, process_attempts, reconcile_after, created_at, updated_at";

const MOVE_PENDING: &str = "UPDATE payments SET status = $2, provider_tx_id = $3, next_action_url = $4, \
     failure_code = $5, failure_message = $6, reconcile_after = NULL, updated_at = $7 \
     WHERE id = $1 AND status = 'pending' AND process_attempts = 1 AND needs_attention = FALSE";

impl Repo {
    /// Opens a payment under a new idempotency key: the key `in_flight` linked to the payment,
    /// the payment `pending` with `process_attempts = 1` (its creator holds the first call)
    /// and `reconcile_after` set, written together. `None`, with nothing written, when the
    /// key exists, the lease or installment does not fit (see `LEASE_FITS`), or the
    /// installment has a payment already.
    pub async fn open_keyed(
        &self,
        row: &NewPaymentRow<'_>,
        viewer: Viewer,
        key: &KeyClaim<'_>,
    ) -> Result<Option<PaymentWork>, RepoError> {
        let now = lessor_leases::now_micros();
        let c = key.claim;
        let opened: Result<Option<WorkRow>, sqlx::Error> = match self.db() {
            Db::Postgres(pool) => {
                let sql = format!(
                    "WITH lease AS ({LEASE_FITS}), \
                     claim AS (INSERT INTO idempotency_keys ({KEY_COLUMNS}) \
                               SELECT $13, $14, $15, 'in_flight', $16, $17, $1, $18, $19 FROM lease \
                               ON CONFLICT (scope, idempotency_key) DO NOTHING RETURNING lock_token) \
                     INSERT INTO payments ({PAYMENT_INSERT_COLUMNS}) \
                     SELECT $1, $2, $3, lease.owner_id, $4, $5, $6, $7, $8, 'pending', 1, $9, $10, $10 \
                     FROM lease, claim RETURNING {WORK_COLUMNS}"
                );
                sqlx::query_as(&sql)
                    .bind(row.id)
                    .bind(row.lease_id)
                    .bind(row.installment_id)
                    .bind(row.amount)
                    .bind(row.currency)
                    .bind(row.provider)
                    .bind(row.payment_method)
                    .bind(row.idempotency_key)
                    .bind(row.reconcile_after)
                    .bind(now)
                    .bind(viewer.is_staff)
                    .bind(viewer.user_id)
                    .bind(c.scope.as_str())
                    .bind(c.key.as_str())
                    .bind(key.fingerprint)
                    .bind(c.token)
                    .bind(key.times.locked_until)
                    .bind(key.times.created_at)
                    .bind(key.times.expires_at)
                    .fetch_optional(pool)
                    .await
            }
            Db::Sqlite(pool) => {
                let insert_key = format!(
                    "INSERT INTO idempotency_keys ({KEY_COLUMNS}) VALUES ($1, $2, $3, 'in_flight', $4, $5, $6, $7, $8) \
                     ON CONFLICT (scope, idempotency_key) DO NOTHING"
                );
                let insert_payment = format!(
                    "INSERT INTO payments ({PAYMENT_INSERT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 1, $10, $11, $11) RETURNING {WORK_COLUMNS}"
                );
                async {
                    let mut tx = pool.begin_write().await?;
                    let owner: Option<Uuid> = sqlx::query_scalar(LEASE_FITS)
                        .bind(row.id)
                        .bind(row.lease_id)
                        .bind(row.installment_id)
                        .bind(row.amount)
                        .bind(row.currency)
                        .bind(None::<&str>)
                        .bind(None::<&str>)
                        .bind(None::<&str>)
                        .bind(None::<i64>)
                        .bind(None::<i64>)
                        .bind(viewer.is_staff)
                        .bind(viewer.user_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(owner) = owner else { return Ok(None) };
                    let claimed = sqlx::query(&insert_key)
                        .bind(c.scope.as_str())
                        .bind(c.key.as_str())
                        .bind(key.fingerprint)
                        .bind(c.token)
                        .bind(key.times.locked_until)
                        .bind(row.id)
                        .bind(key.times.created_at)
                        .bind(key.times.expires_at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if claimed != 1 {
                        return Ok(None);
                    }
                    let stored: WorkRow = sqlx::query_as(&insert_payment)
                        .bind(row.id)
                        .bind(row.lease_id)
                        .bind(row.installment_id)
                        .bind(owner)
                        .bind(row.amount)
                        .bind(row.currency)
                        .bind(row.provider)
                        .bind(row.payment_method)
                        .bind(row.idempotency_key)
                        .bind(row.reconcile_after)
                        .bind(now)
                        .fetch_one(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Some(stored))
                }
                .await
            }
        };
        match opened {
            Ok(row) => row.map(PaymentWork::try_from).transpose(),
            // The installment has a payment in progress: the general path says so.
            Err(e) if is_unique_violation(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a payment opened by [`Self::open_keyed`] to `next` (what [`super::moved`] made of
    /// it), provided it is still `pending` with its first call and not flagged; with `event`
    /// in the outbox, the installment `paid` when `next` succeeded, and the key's answer.
    pub async fn finish_keyed(
        &self,
        next: &Payment,
        event: Option<&Event>,
        answer: &KeyAnswer<'_>,
    ) -> Result<Finished, RepoError> {
        let c = answer.claim;
        let paid_installment = (next.status == PaymentStatus::Succeeded).then_some(next.installment_id).flatten();
        let status = i32::from(answer.status);
        let (moved, done) = match self.db() {
            Db::Postgres(pool) => {
                let sql = format!(
                    "WITH moved AS ({MOVE_PENDING} RETURNING id), \
                     paid AS (UPDATE installments SET status = 'paid' \
                              WHERE id = $8 AND status IN ('due', 'overdue') AND EXISTS (SELECT 1 FROM moved)), \
                     event AS (INSERT INTO event_outbox (stream, event_id, event_type, payload, created_at) \
                               SELECT $9, $10, $11, $12, $13 FROM moved WHERE $10 IS NOT NULL), \
                     done AS (UPDATE idempotency_keys SET state = 'completed', response_status = $14, \
                              response_body = $15 \
                              WHERE scope = $16 AND idempotency_key = $17 AND lock_token = $18 \
                              AND state = 'in_flight' AND EXISTS (SELECT 1 FROM moved) RETURNING 1) \
                     SELECT (SELECT COUNT(*) FROM moved), (SELECT COUNT(*) FROM done), \
                     set_config('synchronous_commit', 'off', true)"
                );
                let result: Result<(i64, i64, String), _> = sqlx::query_as(&sql)
                    .bind(next.id)
                    .bind(next.status.as_str())
                    .bind(&next.provider_tx_id)
                    .bind(&next.next_action_url)
                    .bind(&next.failure_code)
                    .bind(&next.failure_message)
                    .bind(next.updated_at)
                    .bind(paid_installment)
                    .bind(PAYMENTS)
                    .bind(event.map(|e| e.id))
                    .bind(event.map(|e| e.event_type().to_owned()))
                    .bind(event.map(Event::to_json))
                    .bind(chrono::Utc::now().timestamp_millis())
                    .bind(status)
                    .bind(answer.body)
                    .bind(c.scope.as_str())
                    .bind(c.key.as_str())
                    .bind(c.token)
                    .fetch_one(pool)
                    .await;
                match result {
                    Err(e) if is_unique_violation(&e) => return Ok(Finished::TransactionTaken),
                    result => {
                        let (moved, done, _) = result?;
                        (moved, done)
                    }
                }
            }
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                let moved = sqlx::query(MOVE_PENDING)
                    .bind(next.id)
                    .bind(next.status.as_str())
                    .bind(&next.provider_tx_id)
                    .bind(&next.next_action_url)
                    .bind(&next.failure_code)
                    .bind(&next.failure_message)
                    .bind(next.updated_at)
                    .execute(&mut *tx)
                    .await;
                let moved = match moved {
                    Err(e) if is_unique_violation(&e) => return Ok(Finished::TransactionTaken),
                    moved => moved?.rows_affected(),
                };
                if moved != 1 {
                    return Ok(Finished::NotPending);
                }
                if let Some(installment) = paid_installment {
                    sqlx::query(super::transitions::INSTALLMENT_PAID).bind(installment).execute(&mut *tx).await?;
                }
                if let Some(event) = event {
                    enqueue(&mut *tx, PAYMENTS, event).await?;
                }
                let done = sqlx::query(ANSWER_FRESH_CLAIM)
                    .bind(status)
                    .bind(answer.body)
                    .bind(c.scope.as_str())
                    .bind(c.key.as_str())
                    .bind(c.token)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                (1, i64::try_from(done).unwrap_or(0))
            }
        };
        Ok(match (moved, done) {
            (0, _) => Finished::NotPending,
            (_, 0) => Finished::ClaimLost,
            _ => Finished::Done,
        })
    }
}
