//! Stripe's webhooks: `Stripe-Signature` verified over the raw body, one event per request,
//! normalised to the SDK's events (README.md, "Webhooks", has the table).

use lessor_plugin_sdk::{EventKind, ProviderError, WebhookBatch, WebhookEvent, WebhookRequest, log};

use crate::signature;
use crate::wire::{ApiError, Charge, Event, PaymentIntent, Refund};
use crate::{money, object};

/// How far a webhook's signed timestamp may be from the time the host received it.
const WEBHOOK_TOLERANCE_SECS: u64 = 300;

/// Verifies and normalises one delivery. Stripe wants any 2xx: the reply is the SDK's default
/// (`200 {"received":true}`), and an event of no interest is an empty batch.
pub fn parse(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
    let secret = lessor_plugin_sdk::require_secret("webhook_secret")?;
    let header = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
        .map(|(_, value)| value.as_str())
        .ok_or(ProviderError::SignatureInvalid)?;
    let now_secs = request.received_at / 1000;
    if !signature::verify(header, &request.body, secret.expose().as_bytes(), now_secs, WEBHOOK_TOLERANCE_SECS) {
        return Err(ProviderError::SignatureInvalid);
    }

    // Authentic from here on: a body we cannot read is Stripe's or our bug, not an attack.
    let event: Event = serde_json::from_slice(&request.body)
        .map_err(|e| ProviderError::invalid_request("body", format!("not a Stripe event: {e}")))?;
    let occurred_at = event.created.and_then(|s| u64::try_from(s).ok()).map(|s| s * 1000);
    Ok(match normalise(&event)? {
        Some(normalised) => WebhookBatch::one(WebhookEvent { occurred_at, ..normalised }),
        None => WebhookBatch::empty(),
    })
}

/// The event this Stripe event is, if it is one the host acts on.
fn normalise(event: &Event) -> Result<Option<WebhookEvent>, ProviderError> {
    Ok(Some(match event.kind.as_str() {
        "payment_intent.succeeded" => {
            let intent: PaymentIntent = object(event)?;
            let received = if intent.amount_received > 0 { intent.amount_received } else { intent.amount };
            with_amount(
                WebhookEvent::new(&event.id, EventKind::PaymentSucceeded, intent.id),
                received,
                &intent.currency,
            )
        }
        "payment_intent.payment_failed" => {
            let intent: PaymentIntent = object(event)?;
            let code = intent.last_payment_error.as_ref().and_then(ApiError::reason_code).map(str::to_owned);
            let failed = with_amount(
                WebhookEvent::new(&event.id, EventKind::PaymentFailed, intent.id),
                intent.amount,
                &intent.currency,
            );
            WebhookEvent { reason_code: code, ..failed }
        }
        // About the charge, not one refund: the cumulative refunded amount, no refund id.
        "charge.refunded" => {
            let charge: Charge = object(event)?;
            let Some(intent) = charge.payment_intent else {
                // A charge made without a PaymentIntent was not made by this plugin.
                log::info!(event = event.id, charge = charge.id; "ignoring a refund of a charge without PaymentIntent");
                return Ok(None);
            };
            let refunded = WebhookEvent::new(&event.id, EventKind::RefundSucceeded, intent);
            with_amount(refunded, charge.amount_refunded, &charge.currency)
        }
        // About one refund object: its id (`re_…`, `pyr_…`) and its own amount.
        "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
            let refund: Refund = object(event)?;
            let kind = match (event.kind.as_str(), refund.status.as_str()) {
                ("refund.failed", _) | (_, "failed" | "canceled") => EventKind::RefundFailed,
                (_, "succeeded") => EventKind::RefundSucceeded,
                (_, status) => {
                    log::debug!(event = event.id, refund = refund.id, status = status; "refund not final yet");
                    return Ok(None);
                }
            };
            let Some(intent) = refund.payment_intent.clone() else {
                log::info!(event = event.id, refund = refund.id; "ignoring a refund of a charge without PaymentIntent");
                return Ok(None);
            };
            let reason_code = match kind {
                EventKind::RefundFailed => Some(refund.failure_reason.clone().unwrap_or_else(|| refund.status.clone())),
                _ => None,
            };
            let event = WebhookEvent::new(&event.id, kind, intent).refund(refund.id);
            WebhookEvent { reason_code, ..with_amount(event, refund.amount, &refund.currency) }
        }
        other => {
            log::debug!(event = event.id, kind = other; "ignoring a Stripe event of another type");
            return Ok(None);
        }
    }))
}

fn with_amount(event: WebhookEvent, amount: i64, currency: &str) -> WebhookEvent {
    WebhookEvent { amount: money(amount, currency), ..event }
}
