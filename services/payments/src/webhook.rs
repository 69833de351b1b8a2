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
//! Two results are **not** recorded and should be answered with a non-2xx status (e.g. 409)
//! so that the provider delivers the event again later ([`WebhookOutcome::acknowledge`] is
//! `false`): [`WebhookOutcome::UnknownPayment`] (no payment has this provider transaction id —
//! yet: a webhook can overtake the commit of our own `process` result, and dropping it would
//! lose it; providers stop retrying after their retry window, which bounds the noise of
//! events that are truly foreign) and [`WebhookOutcome::Early`] (the event is ahead of the
//! payment, e.g. a return before the settlement). Everything else is answered 200.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::input::ValidationError;
use crate::repo::{Applied, RefundApplied, RefundResolution, Transition, WebhookMark};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventAmount {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217 code as the provider sent it.
    pub currency: String,
}

/// A verified, normalised provider event (the WIT `webhook-event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedEvent {
    /// The provider's event id; events are applied once per `(provider, event_id)`.
    pub event_id: String,
    pub kind: ProviderEventKind,
    /// The payment's provider transaction id; for refund events, the provider's refund id
    /// (or the payment's transaction id, when the provider names the payment).
    pub provider_tx_id: String,
    pub amount: Option<EventAmount>,
    pub reason_code: Option<String>,
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
    /// No payment (refund) matches; not recorded, so a redelivery is applied once it does.
    UnknownPayment,
    /// Ahead of the payment's status; not recorded, so a redelivery is applied later.
    Early { payment_id: Uuid, status: PaymentStatus },
}

impl WebhookOutcome {
    /// Whether the host answers 2xx (the provider stops delivering this event).
    pub fn acknowledge(&self) -> bool {
        !matches!(self, Self::UnknownPayment | Self::Early { .. })
    }
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
                    tracing::warn!("webhook for an unknown payment; not acknowledged so it is delivered again");
                    return Ok(WebhookOutcome::UnknownPayment);
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
                    Applied::Early(p) => WebhookOutcome::Early { payment_id: p.id, status: p.status },
                    Applied::Duplicate => WebhookOutcome::Duplicate,
                    Applied::Missing => WebhookOutcome::UnknownPayment,
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
        let amount = event.amount.as_ref().map(|a| a.amount);
        let Some((refund, by_refund_id)) = self.repo.refund_for_event(provider, &event.provider_tx_id, amount).await?
        else {
            tracing::warn!("webhook for an unknown refund; not acknowledged so it is delivered again");
            return Ok(WebhookOutcome::UnknownPayment);
        };
        // The event's id is the refund's only when it matched as such (and then already stored).
        let provider_refund_id = by_refund_id.then(|| event.provider_tx_id.clone());
        let resolution = if event.kind == ProviderEventKind::RefundSucceeded {
            RefundResolution::Succeeded { provider_refund_id }
        } else {
            RefundResolution::Failed {
                code: "declined".to_owned(),
                message: event.reason_code.clone(),
                provider_refund_id,
            }
        };
        Ok(match self.repo.resolve_refund(refund.id, &resolution, Some(mark)).await? {
            RefundApplied::Moved { refund, payment } => {
                self.wake_relay();
                WebhookOutcome::RefundApplied { payment_id: payment.id, refund_id: refund.id, status: refund.status }
            }
            RefundApplied::Unchanged { payment, .. } => {
                WebhookOutcome::Ignored { payment_id: payment.id, reason: IgnoredReason::AlreadyThere }
            }
            RefundApplied::Duplicate => WebhookOutcome::Duplicate,
            RefundApplied::Missing => WebhookOutcome::UnknownPayment,
        })
    }
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
