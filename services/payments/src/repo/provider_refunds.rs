//! Refunds the provider reports that Lessor did not ask for (made at the provider's dashboard),
//! and the question "could an unmatched event still be about something of ours?".

use chrono::{DateTime, Utc};
use lessor_events::{PAYMENTS, enqueue};
use lessor_leases::now_micros;
use lessor_store::on_db;
use uuid::Uuid;

use super::rows::{PAYMENT_COLUMNS, PaymentRow, REFUND_COLUMNS, RefundRow};
use super::transitions::{INSERT_WEBHOOK, WEBHOOK_OUTCOME, WebhookMark, refunded_event};
use super::{Repo, RepoError, WritePool};
use crate::record::{Payment, Refund};

/// What [`Repo::record_provider_refund`] did.
#[derive(Debug)]
pub(crate) enum ProviderRefund {
    /// A `succeeded` refund of the difference was inserted and the payment moved.
    Recorded { refund: Refund, payment: Payment },
    /// The payment's refunded amounts changed since they were read: read again and retry.
    Changed,
    /// More than the payment has left to refund: nothing written.
    Exceeds,
    /// The webhook event was recorded before.
    Duplicate,
}

impl Repo {
    /// Records a refund of `amount` that the provider made on its own (no refund row of ours
    /// matches), `succeeded`, provided the payment still has `refunded` refunded and nothing in
    /// flight (compare-and-set: concurrent events never add the same money twice).
    pub async fn record_provider_refund(
        &self,
        payment_id: Uuid,
        refunded: i64,
        amount: i64,
        mark: &WebhookMark<'_>,
    ) -> Result<ProviderRefund, RepoError> {
        let lock = self.for_update();
        let read = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{lock}");
        let settle = format!(
            "UPDATE payments SET refunded_amount = refunded_amount + $2, status = $3, updated_at = $4 \
             WHERE id = $1 AND refunded_amount = $5 AND refund_pending_amount = 0 AND status = $6 \
             RETURNING {PAYMENT_COLUMNS}"
        );
        let insert = format!(
            "INSERT INTO refunds (id, payment_id, amount, currency, status, reason, idempotency_key, attempts, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, 'succeeded', $5, $6, 0, $7, $7) \
             RETURNING {REFUND_COLUMNS}"
        );
        on_db!(self.db(), pool => {
            let mut tx = pool.begin_write().await?;
            let recorded = sqlx::query(INSERT_WEBHOOK)
                .bind(mark.provider).bind(mark.event_id).bind(mark.kind).bind(mark.provider_tx_id)
                .bind(mark.received_at)
                .execute(&mut *tx).await?.rows_affected();
            if recorded == 0 {
                return Ok(ProviderRefund::Duplicate);
            }
            let row: Option<PaymentRow> = sqlx::query_as(&read).bind(payment_id).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(ProviderRefund::Changed) };
            let payment = row.into_payment()?;
            if payment.refunded_amount != refunded || payment.refund_pending_amount != 0 {
                return Ok(ProviderRefund::Changed);
            }
            if amount <= 0 || refunded + amount > payment.amount {
                return Ok(ProviderRefund::Exceeds);
            }
            let status = payment.status.after_refund(refunded + amount, payment.amount).unwrap_or(payment.status);
            let now = now_micros();
            let row: Option<PaymentRow> = sqlx::query_as(&settle)
                .bind(payment_id).bind(amount).bind(status.as_str()).bind(now).bind(refunded)
                .bind(payment.status.as_str())
                .fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(ProviderRefund::Changed) };
            let payment = row.into_payment()?;
            let id = Uuid::new_v4();
            let row: RefundRow = sqlx::query_as(&insert)
                .bind(id).bind(payment_id).bind(amount).bind(payment.currency.code())
                .bind("refunded at the provider").bind(super::refund_key(id)).bind(now)
                .fetch_one(&mut *tx).await?;
            let refund = row.into_refund()?;
            enqueue(&mut *tx, PAYMENTS, &refunded_event(&refund, &payment)).await?;
            sqlx::query(WEBHOOK_OUTCOME)
                .bind(mark.provider).bind(mark.event_id).bind("applied").bind(payment_id).bind(refund.id)
                .execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, RepoError>(ProviderRefund::Recorded { refund, payment })
        })
    }

    /// The refund whose provider refund id is `provider_refund_id`, among `provider`'s payments.
    pub async fn refund_by_provider_id(
        &self,
        provider: &str,
        provider_refund_id: &str,
    ) -> Result<Option<Refund>, RepoError> {
        let sql = format!(
            "SELECT {} FROM refunds r JOIN payments p ON p.id = r.payment_id \
             WHERE p.provider = $1 AND r.provider_refund_id = $2",
            super::qualified(REFUND_COLUMNS, "r")
        );
        let row: Option<RefundRow> = on_db!(self.db(), pool => sqlx::query_as(&sql)
            .bind(provider).bind(provider_refund_id).fetch_optional(pool).await)?;
        row.map(RefundRow::into_refund).transpose()
    }

    /// Whether `provider` has, created at or after `since`, a payment whose transaction id is
    /// not known yet or a pending refund whose provider refund id is not known yet: an event
    /// that matches nothing may be about one of them.
    pub async fn unresolved_since(&self, provider: &str, since: DateTime<Utc>) -> Result<bool, RepoError> {
        let payments = "SELECT id FROM payments WHERE provider = $1 AND provider_tx_id IS NULL \
                        AND status IN ('pending', 'processing', 'requires_action') AND created_at >= $2 LIMIT 1";
        let refunds = "SELECT r.id FROM refunds r JOIN payments p ON p.id = r.payment_id \
                       WHERE p.provider = $1 AND r.status = 'pending' AND r.provider_refund_id IS NULL \
                       AND r.created_at >= $2 LIMIT 1";
        for sql in [payments, refunds] {
            let found: Option<Uuid> = on_db!(self.db(), pool => sqlx::query_scalar(sql)
                .bind(provider).bind(since).fetch_optional(pool).await)?;
            if found.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Stores the provider's id of a refund that is already resolved (its answer came after a
    /// webhook had resolved it), so later events about it match by id.
    pub async fn note_provider_refund_id(&self, id: Uuid, provider_refund_id: &str) -> Result<(), RepoError> {
        let sql = "UPDATE refunds SET provider_refund_id = $2, updated_at = $3 \
                   WHERE id = $1 AND provider_refund_id IS NULL";
        on_db!(self.db(), pool => sqlx::query(sql)
            .bind(id).bind(provider_refund_id).bind(now_micros()).execute(pool).await.map(drop))?;
        Ok(())
    }
}
