//! Provider webhook events, verified and normalised by the provider's plugin
//! (`parse-webhook`), applied to payments and refunds once.
//!
//! Each event is recorded in `webhook_events` under `(provider, event_id)` in the transaction
//! of the change it makes, so a redelivered event changes nothing ([`WebhookOutcome::Duplicate`]).
//! The change itself goes through the state machine, compare-and-set on the status read under
//! lock: an event that is stale or out of order (`processing` after `succeeded`) never moves a
//! payment backwards; it is recorded and ignored.
//!
//! | kind | effect |
//! |---|---|
//! | `payment-succeeded`, `payment-settled` | → `succeeded`, `payment.completed`, installment `paid` (unless already succeeded or later) |
//! | `payment-failed` | → `failed` (code `declined`, message = reason code), `payment.failed` |
//! | `payment-processing` | → `processing` |
//! | `payment-requires-action` | → `requires_action` |
//! | `payment-returned` | → `returned` with the reason code, event `payment.returned` (an `EventData::Other`, see [`crate::PAYMENT_RETURNED`]), installment back to `due` so collection retries it |
//! | `refund-succeeded`, `refund-failed` | the pending refund → `succeeded` (`payment.refunded`, payment → `partially_refunded`/`refunded`) or `failed` (amount released) |
//! | `dispute-opened` | recorded; the payment is flagged `needs_attention` for an operator |
//!
//! ## Refund events
//!
//! An event with `provider-refund-id` (WIT 0.2.0) names one refund: the refund with that
//! provider id, else the payment's pending refund of the event's amount that has no provider id
//! yet (the event overtook our own call's answer); with no refund of ours in flight it is one
//! made at the provider (recorded by the cumulative event) and ignored; else "deliver again"
//! within the window.
//! Without it, `provider-transaction-id` is either the provider's id of one refund
//! (Stripe's `re_…`/`pyr_…`, the bank's `rf_…`), and `amount` that refund's amount; or the
//! payment's transaction id, and `amount` the payment's **cumulative** refunded amount at the
//! provider (Stripe's `charge.refunded` `amount_refunded`). The host matches the refund id
//! first (provider refund ids and transaction ids never collide), then the payment:
//! - by refund id: that refund is resolved (an already succeeded refund is `Ignored`);
//! - by payment, cumulative: nothing beyond what is already refunded is `Ignored`; otherwise the
//!   difference is the pending refunds it accounts for (one of exactly that amount, or the
//!   oldest ones adding up to it), else — no refund of ours in flight — a refund made at the
//!   provider (its dashboard), recorded once as a `succeeded` refund (compare-and-set on the
//!   payment's refunded amount, so the same money is never added twice). An event that names
//!   one refund's amount by the payment (older plugins) still resolves the pending refund of
//!   that amount.
//!
//! ## Deliver again later, for a bounded time
//!
//! Results that are **not** recorded are answered with a non-2xx status (409) so that the
//! provider delivers the event again ([`WebhookOutcome::acknowledge`] is `false`), but only
//! within the retry window ([`crate::WEBHOOK_RETRY_WINDOW`], one hour by default) after the
//! payment (refund) concerned was created:
//! - [`WebhookOutcome::UnknownPayment`]: nothing matches, but a payment of this provider whose
//!   transaction id is not stored yet (or a refund whose provider id is not) was created within
//!   the window: the event may have overtaken the commit of our own call's result;
//! - [`WebhookOutcome::Early`]: the event is ahead of the payment (a return before the
//!   settlement), or a cumulative refund amount not yet explained by our refunds in flight.
//!
//! Past the window, or when nothing of ours could be concerned, the event is
//! [`WebhookOutcome::Unmatched`] (answered 200 `ignored`, logged at warn and counted): events
//! about objects Lessor never created (another integration on the same account) must not be
//! retried by the provider for days. An `Early` event past the window is recorded, the payment
//! flagged for an operator, and [`IgnoredReason::PastWindow`] returned.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::gateway::{GatewayError, WebhookBatch, WebhookRequest};
use crate::input::ValidationError;
use crate::record::{Payment, Refund};
use crate::repo::{Applied, ProviderRefund, RefundApplied, RefundResolution, Transition, WebhookMark};
use crate::service::{PaymentError, PaymentService};
use crate::status::{PaymentStatus, RefundStatus};

/// What a provider event says happened (the WIT `event-kind`), serialised in kebab-case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderEventKind {
    PaymentSucceeded,
    PaymentFailed,
    PaymentProcessing,
    PaymentRequiresAction,
    /// Funds arrived on the operator's account.
    PaymentSettled,
    /// A settled payment came back (direct-debit return, chargeback).
    PaymentReturned,
    RefundSucceeded,
    RefundFailed,
    DisputeOpened,
}

impl ProviderEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PaymentSucceeded => "payment-succeeded",
            Self::PaymentFailed => "payment-failed",
            Self::PaymentProcessing => "payment-processing",
            Self::PaymentRequiresAction => "payment-requires-action",
            Self::PaymentSettled => "payment-settled",
            Self::PaymentReturned => "payment-returned",
            Self::RefundSucceeded => "refund-succeeded",
            Self::RefundFailed => "refund-failed",
            Self::DisputeOpened => "dispute-opened",
        }
    }
}

/// An amount a provider event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventAmount {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code as the provider sent it.
    pub currency: String,
}

/// A verified, normalised provider event (the WIT `webhook-event`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NormalizedEvent {
    /// The provider's event id; events are applied once per `(provider, event_id)`.
    pub event_id: String,
    pub kind: ProviderEventKind,
    /// The payment's provider transaction id; for refund events, the provider's refund id
    /// (or the payment's transaction id, when the provider names the payment).
    #[serde(rename = "provider_transaction_id")]
    pub provider_tx_id: String,
    /// For refund events: the provider's id of the one refund it is about (0.2.0 and later);
    /// matched before `provider_tx_id`, and `amount` is then that refund's amount.
    pub provider_refund_id: Option<String>,
    pub amount: Option<EventAmount>,
    pub reason_code: Option<String>,
    /// Unix milliseconds, when the provider says it happened (informative only).
    pub occurred_at: Option<u64>,
}

/// Why an event was recorded without changing anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredReason {
    /// The payment (refund) is already in that status.
    AlreadyThere,
    /// The event lies behind the payment's status or off its path.
    Stale,
    /// The event's amount or currency differs from the payment's; the payment is flagged.
    AmountMismatch,
    /// Nothing to apply (a dispute): the payment is flagged for an operator.
    ForOperator,
    /// Could not be applied within the retry window: recorded, the payment flagged.
    PastWindow,
}

/// What [`PaymentService::apply_provider_event`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// The payment moved to `status`.
    Applied { payment_id: Uuid, status: PaymentStatus },
    /// The refund moved to `status`.
    RefundApplied { payment_id: Uuid, refund_id: Uuid, status: RefundStatus },
    /// Recorded; nothing changed.
    Ignored { payment_id: Uuid, reason: IgnoredReason },
    /// This event was applied (or ignored) before.
    Duplicate,
    /// No payment (refund) matches yet, within the retry window; not recorded, so a redelivery
    /// is applied once it does.
    UnknownPayment,
    /// Nothing of ours matches, and nothing that could is younger than the retry window: an
    /// event about an object Lessor never created (or long gone). Not recorded; acknowledged.
    Unmatched,
    /// Ahead of the payment's status; not recorded, so a redelivery is applied later.
    Early { payment_id: Uuid, status: PaymentStatus },
}

impl WebhookOutcome {
    /// Whether the host answers 2xx (the provider stops delivering this event).
    pub fn acknowledge(&self) -> bool {
        !matches!(self, Self::UnknownPayment | Self::Early { .. })
    }
}

/// A provider-chosen id as the host quotes it in a message: at most 64 characters.
pub(crate) fn short(id: &str) -> String {
    id.chars().take(64).collect()
}

fn check_event(event: &NormalizedEvent) -> Result<(), ValidationError> {
    let mut errors = Vec::new();
    if event.event_id.is_empty() || event.event_id.len() > 255 {
        errors.push(lessor_leases::FieldError::new("event_id", "must be 1-255 characters"));
    }
    if event.provider_tx_id.is_empty() || event.provider_tx_id.len() > 255 {
        errors.push(lessor_leases::FieldError::new("provider_tx_id", "must be 1-255 characters"));
    }
    if errors.is_empty() { Ok(()) } else { Err(ValidationError::new(errors)) }
}

impl PaymentService {
    /// Has `provider`'s plugin verify a webhook request and normalise its events (no side
    /// effects); apply each with [`Self::apply_provider_event`].
    pub async fn parse_webhook(&self, provider: &str, request: &WebhookRequest) -> Result<WebhookBatch, GatewayError> {
        self.gateway.parse_webhook(provider, request).await
    }

    /// Applies a provider event once; see the module documentation.
    #[tracing::instrument(name = "payments.webhook", skip_all, fields(provider, kind = event.kind.as_str(), event_id = %event.event_id))]
    pub async fn apply_provider_event(
        &self,
        provider: &str,
        event: &NormalizedEvent,
    ) -> Result<WebhookOutcome, PaymentError> {
        check_event(event)?;
        // Before matching: a redelivered refund event may no longer match a pending refund.
        if self.repo.webhook_seen(provider, &event.event_id).await? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let mark = WebhookMark {
            provider,
            event_id: &event.event_id,
            kind: event.kind.as_str(),
            provider_tx_id: &event.provider_tx_id,
            received_at: Utc::now().timestamp_millis(),
        };
        use ProviderEventKind as K;
        let outcome = match event.kind {
            K::RefundSucceeded | K::RefundFailed => self.apply_refund_event(provider, event, &mark).await?,
            kind => {
                let Some(payment) = self.repo.payment_by_provider_tx(provider, &event.provider_tx_id).await? else {
                    return self.unmatched(provider).await;
                };
                let amount_differs = event
                    .amount
                    .as_ref()
                    .is_some_and(|a| a.amount != payment.amount || a.currency != payment.currency.code());
                if kind == K::DisputeOpened || amount_differs {
                    let (label, reason) = if kind == K::DisputeOpened {
                        ("dispute-opened", IgnoredReason::ForOperator)
                    } else {
                        ("amount-mismatch", IgnoredReason::AmountMismatch)
                    };
                    tracing::warn!(payment_id = %payment.id, label, "webhook needs an operator");
                    let recorded = self.repo.record_webhook(&mark, label, Some(payment.id), true).await?;
                    return Ok(if recorded {
                        WebhookOutcome::Ignored { payment_id: payment.id, reason }
                    } else {
                        WebhookOutcome::Duplicate
                    });
                }
                let Some(change) = payment_transition(kind, event) else {
                    return Ok(WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::ForOperator });
                };
                let applied = self.repo.apply(payment.id, &change, Some(&mark)).await?;
                match applied {
                    Applied::Moved { .. } => {
                        let payment = self.applied_payment(applied)?;
                        WebhookOutcome::Applied { payment_id: payment.id, status: payment.status }
                    }
                    Applied::Unchanged(p) => {
                        WebhookOutcome::Ignored { payment_id: p.id, reason: IgnoredReason::AlreadyThere }
                    }
                    Applied::Stale(p) => {
                        tracing::info!(payment_id = %p.id, status = %p.status, "stale webhook ignored");
                        WebhookOutcome::Ignored { payment_id: p.id, reason: IgnoredReason::Stale }
                    }
                    Applied::Early(p) => self.early(&p, p.created_at, &mark).await?,
                    Applied::Duplicate => WebhookOutcome::Duplicate,
                    Applied::Missing => self.unmatched(provider).await?,
                    // Matched by this very transaction id, so no other payment has it.
                    Applied::TransactionTaken(p) => {
                        WebhookOutcome::Ignored { payment_id: p.id, reason: IgnoredReason::ForOperator }
                    }
                }
            }
        };
        Ok(outcome)
    }

    async fn apply_refund_event(
        &self,
        provider: &str,
        event: &NormalizedEvent,
        mark: &WebhookMark<'_>,
    ) -> Result<WebhookOutcome, PaymentError> {
        if let Some(refund_id) = event.provider_refund_id.as_deref() {
            return self.apply_named_refund_event(provider, refund_id, event, mark).await;
        }
        if let Some(refund) = self.repo.refund_by_provider_id(provider, &event.provider_tx_id).await? {
            return self.resolve_refund_event(refund.id, event, Some(event.provider_tx_id.clone()), mark).await;
        }
        let Some(payment) = self.repo.payment_by_provider_tx(provider, &event.provider_tx_id).await? else {
            return self.unmatched(provider).await;
        };
        let amount = event.amount.as_ref().map(|a| a.amount);
        match (event.kind, amount) {
            (ProviderEventKind::RefundSucceeded, Some(cumulative)) => {
                if event.amount.as_ref().is_some_and(|a| a.currency != payment.currency.code()) {
                    return self.for_operator(&payment, mark, "amount-mismatch", IgnoredReason::AmountMismatch).await;
                }
                self.apply_cumulative_refund(payment, cumulative, event, mark).await
            }
            _ => {
                // One refund named by the payment: its only pending refund, or the one of that amount.
                let pending = self.pending_refunds(payment.id).await?;
                let found = match amount {
                    Some(amount) => pending.iter().find(|r| r.amount == amount),
                    None if pending.len() == 1 => pending.first(),
                    None => None,
                };
                match found {
                    Some(refund) => self.resolve_refund_event(refund.id, event, None, mark).await,
                    None => {
                        let newest = pending.iter().map(|r| r.created_at).max().unwrap_or(payment.created_at);
                        self.early(&payment, newest, mark).await
                    }
                }
            }
        }
    }

    /// An event naming the provider's refund id (`provider-refund-id`): that refund; if its id is
    /// not stored yet (the event overtook our own call's answer), the payment's pending refund of
    /// the event's amount (or its only one) that has no provider id yet.
    async fn apply_named_refund_event(
        &self,
        provider: &str,
        refund_id: &str,
        event: &NormalizedEvent,
        mark: &WebhookMark<'_>,
    ) -> Result<WebhookOutcome, PaymentError> {
        if let Some(refund) = self.repo.refund_by_provider_id(provider, refund_id).await? {
            return self.resolve_refund_event(refund.id, event, Some(refund_id.to_owned()), mark).await;
        }
        let Some(payment) = self.repo.payment_by_provider_tx(provider, &event.provider_tx_id).await? else {
            return self.unmatched(provider).await;
        };
        let pending: Vec<Refund> =
            self.pending_refunds(payment.id).await?.into_iter().filter(|r| r.provider_refund_id.is_none()).collect();
        if pending.is_empty() {
            // No refund of ours in flight: one made at the provider (its dashboard), which the
            // payment's cumulative event records once; nothing to do with this one.
            let recorded = self.repo.record_webhook(mark, "unchanged", Some(payment.id), false).await?;
            return Ok(if recorded {
                WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::AlreadyThere }
            } else {
                WebhookOutcome::Duplicate
            });
        }
        let found = match event.amount.as_ref().map(|a| a.amount) {
            Some(amount) => pending.iter().find(|r| r.amount == amount),
            None if pending.len() == 1 => pending.first(),
            None => None,
        };
        match found {
            Some(refund) => self.resolve_refund_event(refund.id, event, Some(refund_id.to_owned()), mark).await,
            None => {
                let newest = pending.iter().map(|r| r.created_at).max().unwrap_or(payment.created_at);
                self.early(&payment, newest, mark).await
            }
        }
    }

    async fn pending_refunds(&self, payment_id: Uuid) -> Result<Vec<Refund>, PaymentError> {
        Ok(self.repo.refunds_of(payment_id).await?.into_iter().filter(|r| r.status == RefundStatus::Pending).collect())
    }

    /// `cumulative`: what the provider has refunded of the payment in all (see the module docs).
    async fn apply_cumulative_refund(
        &self,
        mut payment: Payment,
        cumulative: i64,
        event: &NormalizedEvent,
        mark: &WebhookMark<'_>,
    ) -> Result<WebhookOutcome, PaymentError> {
        for _ in 0..4 {
            let new_money = cumulative - payment.refunded_amount;
            if new_money <= 0 {
                let recorded = self.repo.record_webhook(mark, "unchanged", Some(payment.id), false).await?;
                return Ok(if recorded {
                    WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::AlreadyThere }
                } else {
                    WebhookOutcome::Duplicate
                });
            }
            let pending = self.pending_refunds(payment.id).await?;
            if let Some(chosen) = accounted_for(&pending, new_money, cumulative) {
                let mut outcome = WebhookOutcome::Duplicate;
                for (index, refund) in chosen.iter().enumerate() {
                    let mark = (index == 0).then_some(mark);
                    let resolved = self.resolve_refund_with(refund.id, event, None, mark).await?;
                    if index == 0 || matches!(resolved, WebhookOutcome::RefundApplied { .. }) {
                        outcome = resolved;
                    }
                    if matches!(outcome, WebhookOutcome::Duplicate) {
                        break;
                    }
                }
                return Ok(outcome);
            }
            if !pending.is_empty() {
                let newest = pending.iter().map(|r| r.created_at).max().unwrap_or(payment.created_at);
                return self.early(&payment, newest, mark).await;
            }
            match self.repo.record_provider_refund(payment.id, payment.refunded_amount, new_money, mark).await? {
                ProviderRefund::Recorded { refund, payment } => {
                    tracing::info!(payment_id = %payment.id, refund_id = %refund.id, amount = refund.amount,
                        "a refund made at the provider recorded");
                    self.wake_relay();
                    return Ok(WebhookOutcome::RefundApplied {
                        payment_id: payment.id,
                        refund_id: refund.id,
                        status: refund.status,
                    });
                }
                ProviderRefund::Duplicate => return Ok(WebhookOutcome::Duplicate),
                ProviderRefund::Exceeds => {
                    return self.for_operator(&payment, mark, "amount-mismatch", IgnoredReason::AmountMismatch).await;
                }
                ProviderRefund::Changed => {
                    let Some(again) = self.repo.payment(payment.id).await? else {
                        return Ok(WebhookOutcome::UnknownPayment);
                    };
                    payment = again;
                }
            }
        }
        // Refunds kept moving under us: let the provider deliver it again.
        Ok(WebhookOutcome::Early { payment_id: payment.id, status: payment.status })
    }

    async fn resolve_refund_event(
        &self,
        refund_id: Uuid,
        event: &NormalizedEvent,
        provider_refund_id: Option<String>,
        mark: &WebhookMark<'_>,
    ) -> Result<WebhookOutcome, PaymentError> {
        self.resolve_refund_with(refund_id, event, provider_refund_id, Some(mark)).await
    }

    async fn resolve_refund_with(
        &self,
        refund_id: Uuid,
        event: &NormalizedEvent,
        provider_refund_id: Option<String>,
        mark: Option<&WebhookMark<'_>>,
    ) -> Result<WebhookOutcome, PaymentError> {
        let resolution = if event.kind == ProviderEventKind::RefundSucceeded {
            RefundResolution::Succeeded { provider_refund_id }
        } else {
            RefundResolution::Failed {
                code: "declined".to_owned(),
                message: event.reason_code.clone(),
                provider_refund_id,
            }
        };
        Ok(match self.repo.resolve_refund(refund_id, &resolution, mark).await? {
            RefundApplied::Moved { refund, payment } => {
                self.wake_relay();
                WebhookOutcome::RefundApplied { payment_id: payment.id, refund_id: refund.id, status: refund.status }
            }
            RefundApplied::Unchanged { refund, payment } => {
                if refund.status == RefundStatus::Succeeded && event.kind == ProviderEventKind::RefundFailed {
                    tracing::warn!(refund_id = %refund.id, "the provider reports a succeeded refund as failed");
                }
                WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::AlreadyThere }
            }
            RefundApplied::Duplicate => WebhookOutcome::Duplicate,
            RefundApplied::Missing => WebhookOutcome::UnknownPayment,
        })
    }

    /// An event about `payment` that cannot be applied yet: "deliver again" while `since` (the
    /// payment's or its newest refund's creation) is within the retry window; past it, recorded
    /// and the payment flagged for an operator.
    async fn early(
        &self,
        payment: &Payment,
        since: DateTime<Utc>,
        mark: &WebhookMark<'_>,
    ) -> Result<WebhookOutcome, PaymentError> {
        if Utc::now() < since + self.retry_window() {
            return Ok(WebhookOutcome::Early { payment_id: payment.id, status: payment.status });
        }
        tracing::warn!(payment_id = %payment.id, "webhook not applicable and past the retry window; flagged");
        self.for_operator(payment, mark, "past-window", IgnoredReason::PastWindow).await
    }

    async fn for_operator(
        &self,
        payment: &Payment,
        mark: &WebhookMark<'_>,
        label: &str,
        reason: IgnoredReason,
    ) -> Result<WebhookOutcome, PaymentError> {
        let recorded = self.repo.record_webhook(mark, label, Some(payment.id), true).await?;
        Ok(if recorded {
            WebhookOutcome::Ignored { payment_id: payment.id, reason }
        } else {
            WebhookOutcome::Duplicate
        })
    }

    /// Nothing matches the event: "deliver again" only while something of this provider that it
    /// could be about is younger than the retry window.
    async fn unmatched(&self, provider: &str) -> Result<WebhookOutcome, PaymentError> {
        if self.repo.unresolved_since(provider, Utc::now() - self.retry_window()).await? {
            tracing::info!("webhook matches nothing yet; a recent payment or refund may be it: deliver again");
            return Ok(WebhookOutcome::UnknownPayment);
        }
        Ok(WebhookOutcome::Unmatched)
    }

    fn retry_window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.webhook_retry_window).unwrap_or(chrono::Duration::MAX)
    }
}

/// The pending refunds (oldest first) that `new_money` — the cumulative amount's excess over
/// what is refunded — accounts for: one of exactly that amount, else the oldest ones adding up
/// to it, else (an event naming one refund's amount by the payment) one of `event_amount`.
fn accounted_for(pending: &[Refund], new_money: i64, event_amount: i64) -> Option<Vec<Refund>> {
    if let Some(one) = pending.iter().find(|r| r.amount == new_money) {
        return Some(vec![one.clone()]);
    }
    let mut sum = 0;
    for (index, refund) in pending.iter().enumerate() {
        sum += refund.amount;
        if sum == new_money {
            return Some(pending[..=index].to_vec());
        }
        if sum > new_money {
            break;
        }
    }
    pending.iter().find(|r| r.amount == event_amount).map(|r| vec![r.clone()])
}

/// The change a payment event asks for; `None` for kinds that are not payment moves.
fn payment_transition(kind: ProviderEventKind, event: &NormalizedEvent) -> Option<Transition> {
    use ProviderEventKind as K;
    let target = match kind {
        K::PaymentSucceeded | K::PaymentSettled => PaymentStatus::Succeeded,
        K::PaymentFailed => PaymentStatus::Failed,
        K::PaymentProcessing => PaymentStatus::Processing,
        K::PaymentRequiresAction => PaymentStatus::RequiresAction,
        K::PaymentReturned => PaymentStatus::Returned,
        K::RefundSucceeded | K::RefundFailed | K::DisputeOpened => return None,
    };
    Some(Transition {
        target: Some(target),
        provider_tx_id: Some(event.provider_tx_id.clone()),
        next_action_url: None,
        failure: (target == PaymentStatus::Failed).then(|| ("declined".to_owned(), event.reason_code.clone())),
        return_reason: (target == PaymentStatus::Returned).then(|| event.reason_code.clone()).flatten(),
    })
}
