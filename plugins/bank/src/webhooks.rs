//! The bank's webhooks: `X-Bank-Timestamp` + `X-Bank-Signature` over the raw body, one event per
//! delivery (README.md, "Webhooks").

use lessor_plugin_sdk::{EventKind, Money, ProviderError, WebhookBatch, WebhookEvent, WebhookRequest, log};

use crate::wire::Event;
use crate::{sepa, signature};

const WEBHOOK_TOLERANCE_SECS: u64 = 300;

/// Verifies and normalises one delivery; the bank wants any 2xx, so the reply is the SDK's
/// default (`200 {"received":true}`), and an event of no interest is an empty batch.
pub fn parse(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
    let secret = lessor_plugin_sdk::require_secret("webhook_secret")?;
    let header =
        |name: &str| request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let (Some(timestamp), Some(signature)) = (header("x-bank-timestamp"), header("x-bank-signature")) else {
        return Err(ProviderError::SignatureInvalid);
    };
    let now_secs = request.received_at / 1000;
    let secret = secret.expose().as_bytes();
    if !signature::verify(signature, timestamp.trim(), &request.body, secret, now_secs, WEBHOOK_TOLERANCE_SECS) {
        return Err(ProviderError::SignatureInvalid);
    }

    // Authentic from here on: a body we cannot read is the bank's bug or ours, not an attack.
    let event: Event = serde_json::from_slice(&request.body)
        .map_err(|e| ProviderError::invalid_request("body", format!("not a bank event: {e}")))?;
    Ok(match normalise(event)? {
        Some(event) => WebhookBatch::one(event),
        None => WebhookBatch::empty(),
    })
}

fn normalise(event: Event) -> Result<Option<WebhookEvent>, ProviderError> {
    let (kind, needs_reason) = match event.kind.as_str() {
        "collection.settled" => (EventKind::PaymentSettled, false),
        "collection.failed" => (EventKind::PaymentFailed, true),
        "collection.returned" => (EventKind::PaymentReturned, true),
        "refund.succeeded" => (EventKind::RefundSucceeded, false),
        "refund.failed" => (EventKind::RefundFailed, false),
        other => {
            log::debug!(event = event.event_id, kind = other; "ignoring a bank event of another type");
            return Ok(None);
        }
    };
    let reason_code = match event.reason_code {
        Some(code) if sepa::is_reason_code(&code) => Some(code),
        Some(code) => {
            return Err(ProviderError::invalid_request(
                "body.reason_code",
                format!("`{code}` is not a SEPA reason code (4 letters or digits, e.g. AC04)"),
            ));
        }
        None if needs_reason => {
            return Err(ProviderError::invalid_request("body.reason_code", format!("{} needs one", event.kind)));
        }
        None => None,
    };
    // A refund event is about one refund: the bank's id of it, as `refund` answered it.
    let refund_id = match (&kind, event.refund) {
        (EventKind::RefundSucceeded | EventKind::RefundFailed, Some(refund)) if !refund.id.is_empty() => {
            Some(refund.id)
        }
        (EventKind::RefundSucceeded | EventKind::RefundFailed, _) => {
            return Err(ProviderError::invalid_request("body.refund", format!("{} needs the refund's id", event.kind)));
        }
        _ => None,
    };
    let occurred_at = match event.occurred_at.as_deref() {
        Some(at) => Some(sepa::parse_rfc3339(at).ok_or_else(|| {
            ProviderError::invalid_request("body.occurred_at", format!("`{at}` is not an RFC 3339 timestamp"))
        })?),
        None => None,
    };
    let amount = match (event.amount, event.currency.as_deref()) {
        (Some(amount), Some(currency)) => Some(Money::new(amount, &currency.to_ascii_uppercase())),
        _ => None,
    };
    Ok(Some(WebhookEvent {
        event_id: event.event_id,
        kind,
        provider_transaction_id: event.collection_id,
        provider_refund_id: refund_id,
        amount,
        reason_code,
        occurred_at,
    }))
}
