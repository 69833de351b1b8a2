//! Status changes: each in one transaction with its outbox event, the installment update and,
//! for a webhook, the `webhook_events` row that makes it apply once.

use chrono::{DateTime, Utc};
use lessor_events::{Event, EventData, PAYMENTS, PaymentCompleted, PaymentFailed, PaymentRefunded, enqueue};
use lessor_leases::now_micros;
use lessor_store::on_db;
use serde_json::json;
use uuid::Uuid;

use super::rows::{PAYMENT_COLUMNS, PaymentRow, REFUND_COLUMNS, RefundRow};
use super::{Repo, RepoError, WritePool, corrupt, is_unique_violation};
use crate::record::{Payment, Refund};
use crate::status::{PaymentStatus, RefundStatus};

/// The `type` of the event written when a settled payment comes back. Carried as
/// `EventData::Other` (the events crate has no typed payload for it yet); its `data` has the
/// fields of `payment.completed` plus `reason_code` when the provider gave one.
pub const PAYMENT_RETURNED: &str = "payment.returned";

/// A provider webhook event being applied: recorded in `webhook_events` in the transaction of
/// the change, which is what makes a redelivery a no-op.
pub(crate) struct WebhookMark<'a> {
    pub provider: &'a str,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub provider_tx_id: &'a str,
    pub received_at: i64,
}

/// Where a payment should go, and what the provider told along the way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Transition {
    pub target: Option<PaymentStatus>,
    pub provider_tx_id: Option<String>,
    pub next_action_url: Option<String>,
    /// `(code, message)` when the target is `failed`.
    pub failure: Option<(String, Option<String>)>,
    pub return_reason: Option<String>,
}

/// What [`Repo::apply`] did.
#[derive(Debug)]
pub(crate) enum Applied {
    /// The payment moved from `from`.
    Moved { from: PaymentStatus, payment: Payment },
    /// Already in the target status: nothing to do.
    Unchanged(Payment),
    /// The target lies behind the payment or off its path (a stale or out-of-order event):
    /// nothing changed.
    Stale(Payment),
    /// The target lies ahead but is not the next step (a return before the settlement):
    /// nothing changed and, for a webhook, nothing recorded, so a redelivery applies it later.
    Early(Payment),
    /// The webhook event was recorded before.
    Duplicate,
    /// No such payment.
    Missing,
    /// The provider's transaction id is already another payment's of the same provider (the
    /// unique index refused it): nothing written.
    TransactionTaken(Payment),
}

/// A provider's answer about a refund.
#[derive(Debug, Clone)]
pub(crate) enum RefundResolution {
    Succeeded {
        provider_refund_id: Option<String>,
    },
    Failed {
        code: String,
        message: Option<String>,
        provider_refund_id: Option<String>,
    },
    /// Accepted; the result comes by webhook.
    Accepted {
        provider_refund_id: String,
    },
}

#[derive(Debug)]
pub(crate) enum RefundApplied {
    Moved { refund: Refund, payment: Payment },
    Unchanged { refund: Refund, payment: Payment },
    Duplicate,
    Missing,
}

pub(super) const INSERT_WEBHOOK: &str = "INSERT INTO webhook_events (provider, event_id, kind, provider_tx_id, outcome, \
     received_at) VALUES ($1, $2, $3, $4, 'applying', $5) ON CONFLICT (provider, event_id) DO NOTHING";
pub(super) const WEBHOOK_OUTCOME: &str =
    "UPDATE webhook_events SET outcome = $3, payment_id = $4, refund_id = $5 WHERE provider = $1 AND event_id = $2";
pub(crate) const INSTALLMENT_PAID: &str =
    "UPDATE installments SET status = 'paid' WHERE id = $1 AND status IN ('due', 'overdue')";
const INSTALLMENT_REOPENED: &str = "UPDATE installments SET status = 'due' WHERE id = $1 AND status = 'paid'";

/// `current` as a move to `target` leaves it (a legal move; see [`Repo::apply`]): the
/// provider's transaction id is kept once known, the next-action URL is the provider's for
/// `requires_action`, failure fields are set for `failed`, the return reason for `returned`;
/// reconciliation and the operator flag end.
pub(crate) fn moved(current: &Payment, target: PaymentStatus, change: &Transition, now: DateTime<Utc>) -> Payment {
    let mut next = current.clone();
    next.status = target;
    next.provider_tx_id = current.provider_tx_id.clone().or_else(|| change.provider_tx_id.clone());
    if target == PaymentStatus::RequiresAction {
        next.next_action_url = change.next_action_url.clone().or_else(|| current.next_action_url.clone());
    }
    if target == PaymentStatus::Failed {
        let (code, message) = change.failure.clone().unwrap_or_else(|| ("declined".to_owned(), None));
        next.failure_code = Some(code);
        next.failure_message = message;
    }
    if target == PaymentStatus::Returned {
        next.return_reason = change.return_reason.clone();
    }
    next.reconcile_after = None;
    next.needs_attention = false;
    next.updated_at = now;
    next
}

/// The outbox event a move to `payment.status` writes, if any.
pub(crate) fn event_for(payment: &Payment) -> Option<Event> {
    let data = match payment.status {
        PaymentStatus::Succeeded => EventData::PaymentCompleted(PaymentCompleted {
            payment_id: payment.id,
            lease_id: payment.lease_id,
            installment_id: payment.installment_id,
            amount: payment.amount,
            currency: payment.currency.code().to_owned(),
            provider: payment.provider.clone(),
            provider_tx_id: payment.provider_tx_id.clone().unwrap_or_default(),
        }),
        PaymentStatus::Failed => EventData::PaymentFailed(PaymentFailed {
            payment_id: payment.id,
            lease_id: payment.lease_id,
            installment_id: payment.installment_id,
            amount: payment.amount,
            currency: payment.currency.code().to_owned(),
            provider: payment.provider.clone(),
            code: payment.failure_code.clone().unwrap_or_else(|| "declined".to_owned()),
            message: payment.failure_message.clone(),
        }),
        PaymentStatus::Returned => {
            let mut data = json!({
                "payment_id": payment.id,
                "lease_id": payment.lease_id,
                "amount": payment.amount,
                "currency": payment.currency.code(),
                "provider": payment.provider,
                "provider_tx_id": payment.provider_tx_id.clone().unwrap_or_default(),
            });
            if let Some(installment) = payment.installment_id {
                data["installment_id"] = json!(installment);
            }
            if let Some(reason) = &payment.return_reason {
                data["reason_code"] = json!(reason);
            }
            EventData::Other { event_type: PAYMENT_RETURNED.to_owned(), data }
        }
        _ => return None,
    };
    Some(Event::new(data))
}

pub(super) fn refunded_event(refund: &Refund, payment: &Payment) -> Event {
    Event::new(EventData::PaymentRefunded(PaymentRefunded {
        payment_id: payment.id,
        refund_id: refund.id,
        lease_id: payment.lease_id,
        amount: refund.amount,
        currency: refund.currency.code().to_owned(),
        provider: payment.provider.clone(),
        provider_refund_id: refund.provider_refund_id.clone().unwrap_or_default(),
    }))
}

fn outcome_label(applied: &Applied) -> &'static str {
    match applied {
        Applied::Moved { .. } => "applied",
        Applied::Unchanged(_) => "unchanged",
        Applied::Stale(_) => "stale",
        Applied::Early(_) => "early",
        Applied::Duplicate => "duplicate",
        Applied::Missing => "missing",
        Applied::TransactionTaken(_) => "transaction_taken",
    }
}

impl Repo {
    /// Moves payment `id` towards `change.target` if the state machine allows it from the
    /// status it has now (read under lock), with the outbox event and installment update of
    /// the new status, all in one transaction. With `webhook`, the event is recorded in the
    /// same transaction (and a recorded one is [`Applied::Duplicate`]).
    pub async fn apply(
        &self,
        id: Uuid,
        change: &Transition,
        webhook: Option<&WebhookMark<'_>>,
    ) -> Result<Applied, RepoError> {
        let Some(target) = change.target else { return Err(corrupt("transition", "no target")) };
        let lock = self.for_update();
        let read = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{lock}");
        let update = format!(
            "UPDATE payments SET status = $2, provider_tx_id = $3, next_action_url = $4, failure_code = $5, \
             failure_message = $6, return_reason = $7, reconcile_after = $8, needs_attention = $9, updated_at = $10 \
             WHERE id = $1 AND status = $11 RETURNING {PAYMENT_COLUMNS}"
        );
        let (applied, event) = on_db!(self.db(), pool => async {
            let mut tx = pool.begin_write().await?;
            if let Some(mark) = webhook {
                let recorded = sqlx::query(INSERT_WEBHOOK)
                    .bind(mark.provider).bind(mark.event_id).bind(mark.kind).bind(mark.provider_tx_id)
                    .bind(mark.received_at)
                    .execute(&mut *tx).await?.rows_affected();
                if recorded == 0 {
                    return Ok((Applied::Duplicate, None));
                }
            }
            let row: Option<PaymentRow> = sqlx::query_as(&read).bind(id).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok((Applied::Missing, None)) };
            let current = row.into_payment()?;
            let from = current.status;
            let mut event = None;
            let applied = if from == target {
                Applied::Unchanged(current)
            } else if from.can_transition_to(target) {
                let next = moved(&current, target, change, now_micros());
                let row: Result<Option<PaymentRow>, _> = sqlx::query_as(&update)
                    .bind(id)
                    .bind(target.as_str())
                    .bind(&next.provider_tx_id)
                    .bind(&next.next_action_url)
                    .bind(&next.failure_code)
                    .bind(&next.failure_message)
                    .bind(&next.return_reason)
                    .bind(None::<i64>)
                    .bind(false)
                    .bind(next.updated_at)
                    .bind(from.as_str())
                    .fetch_optional(&mut *tx)
                    .await;
                // Written, not checked first: two payments answered the same id at once both
                // pass a check, and the index settles it. The transaction rolls back.
                let row = match row {
                    Err(e) if is_unique_violation(&e) => return Ok((Applied::TransactionTaken(current), None)),
                    row => row?,
                };
                // The row is locked (or the database is), so the compare-and-set holds.
                let Some(row) = row else { return Err(corrupt("payment", "changed under lock")) };
                let moved = row.into_payment()?;
                if let Some(installment) = moved.installment_id {
                    match target {
                        PaymentStatus::Succeeded => {
                            sqlx::query(INSTALLMENT_PAID).bind(installment).execute(&mut *tx).await?;
                        }
                        PaymentStatus::Returned => {
                            sqlx::query(INSTALLMENT_REOPENED).bind(installment).execute(&mut *tx).await?;
                        }
                        _ => {}
                    }
                }
                if let Some(e) = event_for(&moved) {
                    enqueue(&mut *tx, PAYMENTS, &e).await?;
                    event = Some(e);
                }
                Applied::Moved { from, payment: moved }
            } else if from.can_reach(target) {
                // Not recorded: a redelivery after the missing step applies it.
                return Ok((Applied::Early(current), None));
            } else {
                Applied::Stale(current)
            };
            if let Some(mark) = webhook {
                sqlx::query(WEBHOOK_OUTCOME)
                    .bind(mark.provider).bind(mark.event_id).bind(outcome_label(&applied)).bind(id).bind(None::<Uuid>)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, RepoError>((applied, event))
        }
        .await)?;
        if let Some(event) = event {
            tracing::debug!(event_id = %event.id, event_type = event.event_type(), "payment event written");
        }
        Ok(applied)
    }

    /// Whether `(provider, event_id)` was recorded before. A cheap early answer for
    /// redeliveries; the insert in the applying transaction is what guarantees once.
    pub async fn webhook_seen(&self, provider: &str, event_id: &str) -> Result<bool, RepoError> {
        let sql = "SELECT COUNT(*) FROM webhook_events WHERE provider = $1 AND event_id = $2";
        let n: i64 =
            on_db!(self.db(), pool => sqlx::query_scalar(sql).bind(provider).bind(event_id).fetch_one(pool).await)?;
        Ok(n > 0)
    }

    /// Records a webhook event that changes no status (`outcome` says why), flagging the
    /// payment for an operator when `flag`. `false` when it was recorded before.
    pub async fn record_webhook(
        &self,
        mark: &WebhookMark<'_>,
        outcome: &str,
        payment_id: Option<Uuid>,
        flag: bool,
    ) -> Result<bool, RepoError> {
        let flag_sql = "UPDATE payments SET needs_attention = TRUE, updated_at = $2 WHERE id = $1";
        on_db!(self.db(), pool => {
            let mut tx = pool.begin_write().await?;
            let recorded = sqlx::query(INSERT_WEBHOOK)
                .bind(mark.provider).bind(mark.event_id).bind(mark.kind).bind(mark.provider_tx_id)
                .bind(mark.received_at)
                .execute(&mut *tx).await?.rows_affected();
            if recorded == 0 {
                return Ok(false);
            }
            sqlx::query(WEBHOOK_OUTCOME)
                .bind(mark.provider).bind(mark.event_id).bind(outcome).bind(payment_id).bind(None::<Uuid>)
                .execute(&mut *tx).await?;
            if let (Some(id), true) = (payment_id, flag) {
                sqlx::query(flag_sql).bind(id).bind(now_micros()).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, RepoError>(true)
        })
    }

    /// Applies a provider's answer about refund `id`: its status, the payment's refunded
    /// amounts and status, and the `payment.refunded` event, in one transaction.
    pub async fn resolve_refund(
        &self,
        id: Uuid,
        resolution: &RefundResolution,
        webhook: Option<&WebhookMark<'_>>,
    ) -> Result<RefundApplied, RepoError> {
        let lock = self.for_update();
        let read_refund = format!("SELECT {REFUND_COLUMNS} FROM refunds WHERE id = $1{lock}");
        let read_payment = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1{lock}");
        let accept = format!(
            "UPDATE refunds SET provider_refund_id = COALESCE(provider_refund_id, $2), reconcile_after = NULL, \
             needs_attention = FALSE, updated_at = $3 WHERE id = $1 AND status = 'pending' RETURNING {REFUND_COLUMNS}"
        );
        let finish = format!(
            "UPDATE refunds SET status = $2, provider_refund_id = COALESCE(provider_refund_id, $3), failure_code = $4, \
             failure_message = $5, reconcile_after = NULL, needs_attention = FALSE, updated_at = $6 \
             WHERE id = $1 AND status = 'pending' RETURNING {REFUND_COLUMNS}"
        );
        let settle = format!(
            "UPDATE payments SET refunded_amount = refunded_amount + $2, refund_pending_amount = refund_pending_amount - $2, \
             status = $3, updated_at = $4 WHERE id = $1 AND status = $5 RETURNING {PAYMENT_COLUMNS}"
        );
        let release = format!(
            "UPDATE payments SET refund_pending_amount = refund_pending_amount - $2, updated_at = $3 \
             WHERE id = $1 RETURNING {PAYMENT_COLUMNS}"
        );
        on_db!(self.db(), pool => {
            let mut tx = pool.begin_write().await?;
            if let Some(mark) = webhook {
                let recorded = sqlx::query(INSERT_WEBHOOK)
                    .bind(mark.provider).bind(mark.event_id).bind(mark.kind).bind(mark.provider_tx_id)
                    .bind(mark.received_at)
                    .execute(&mut *tx).await?.rows_affected();
                if recorded == 0 {
                    return Ok(RefundApplied::Duplicate);
                }
            }
            let row: Option<RefundRow> = sqlx::query_as(&read_refund).bind(id).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(RefundApplied::Missing) };
            let refund = row.into_refund()?;
            let row: PaymentRow = sqlx::query_as(&read_payment).bind(refund.payment_id).fetch_one(&mut *tx).await?;
            let payment = row.into_payment()?;
            let now = now_micros();
            let target = match resolution {
                RefundResolution::Succeeded { .. } => RefundStatus::Succeeded,
                RefundResolution::Failed { .. } => RefundStatus::Failed,
                RefundResolution::Accepted { .. } => RefundStatus::Pending,
            };
            let applied = match resolution {
                _ if refund.status.transition(target).is_err() && target != RefundStatus::Pending => {
                    RefundApplied::Unchanged { refund, payment }
                }
                RefundResolution::Accepted { provider_refund_id } => {
                    let row: Option<RefundRow> = sqlx::query_as(&accept)
                        .bind(id).bind(provider_refund_id).bind(now).fetch_optional(&mut *tx).await?;
                    let refund = match row { Some(row) => row.into_refund()?, None => refund };
                    RefundApplied::Unchanged { refund, payment }
                }
                RefundResolution::Succeeded { provider_refund_id } => {
                    let row: RefundRow = sqlx::query_as(&finish)
                        .bind(id).bind(RefundStatus::Succeeded.as_str()).bind(provider_refund_id.as_deref())
                        .bind(None::<String>).bind(None::<String>).bind(now)
                        .fetch_one(&mut *tx).await?;
                    let refund = row.into_refund()?;
                    let refunded = payment.refunded_amount + refund.amount;
                    // A payment returned meanwhile stays returned; the money columns still move.
                    let status = payment.status.after_refund(refunded, payment.amount).unwrap_or(payment.status);
                    let row: Option<PaymentRow> = sqlx::query_as(&settle)
                        .bind(payment.id).bind(refund.amount).bind(status.as_str()).bind(now)
                        .bind(payment.status.as_str())
                        .fetch_optional(&mut *tx).await?;
                    let Some(row) = row else { return Err(corrupt("payment", "changed under lock")) };
                    let payment = row.into_payment()?;
                    enqueue(&mut *tx, PAYMENTS, &refunded_event(&refund, &payment)).await?;
                    RefundApplied::Moved { refund, payment }
                }
                RefundResolution::Failed { code, message, provider_refund_id } => {
                    let row: RefundRow = sqlx::query_as(&finish)
                        .bind(id).bind(RefundStatus::Failed.as_str()).bind(provider_refund_id.as_deref())
                        .bind(code).bind(message.as_deref()).bind(now)
                        .fetch_one(&mut *tx).await?;
                    let refund = row.into_refund()?;
                    let row: PaymentRow = sqlx::query_as(&release)
                        .bind(payment.id).bind(refund.amount).bind(now).fetch_one(&mut *tx).await?;
                    RefundApplied::Moved { refund, payment: row.into_payment()? }
                }
            };
            if let Some(mark) = webhook {
                let (outcome, payment_id) = match &applied {
                    RefundApplied::Moved { payment, .. } => ("applied", payment.id),
                    RefundApplied::Unchanged { payment, .. } => ("unchanged", payment.id),
                    RefundApplied::Duplicate | RefundApplied::Missing => ("missing", Uuid::nil()),
                };
                sqlx::query(WEBHOOK_OUTCOME)
                    .bind(mark.provider).bind(mark.event_id).bind(outcome).bind(payment_id).bind(id)
                    .execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, RepoError>(applied)
        })
    }
}
