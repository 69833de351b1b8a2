//! Test plugin `batch-webhooks`: a provider whose webhook requests carry several events and must
//! be answered with a body of its choosing, as Adyen's do. No HTTP.
//!
//! - `process` answers at once with the transaction id `batch-<payment id>`: `succeeded`, or
//!   `processing` when the request's metadata has `("status", "processing")`.
//! - `refund` answers `pending` with the refund id `batch-refund-<refund id>`.
//! - `retrieve-payment` / `retrieve-refund`: `none` (nothing is kept between calls), so the host
//!   falls back to calling `process` / `refund` again.
//! - `parse-webhook`: the header `x-batch-signature` must equal the secret `webhook_secret`
//!   (else `signature-invalid`). The body is UTF-8 text, one event per non-empty line, fields
//!   separated by `;`:
//!
//!   ```text
//!   <event id>;<kind>;<transaction id>[;<amount in minor units>;<currency>[;<provider refund id>]]
//!   ```
//!
//!   `kind` is an `event-kind` as spelled in the WIT (`payment-succeeded`, `payment-failed`,
//!   `payment-processing`, `payment-requires-action`, `payment-settled`, `payment-returned`,
//!   `refund-succeeded`, `refund-failed`, `dispute-opened`); an empty amount field means none.
//!   Example of a three-event batch:
//!
//!   ```text
//!   ev-1;payment-succeeded;batch-<payment id 1>;1200;EUR
//!   ev-2;payment-succeeded;batch-<payment id 2>
//!   ev-3;refund-succeeded;batch-<payment id 1>;400;EUR;batch-refund-<refund id>
//!   ```
//!
//!   Every event gets `occurred-at` = the time the host received the request. A line that does
//!   not parse is `invalid-request` naming `body` and the line number; more than 100 events too.
//!   The reply is always `200`, `text/plain`, `[accepted]`.

use lessor_plugin_sdk::{
    EventKind, Money, PaymentLookup, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo,
    RefundLookup, RefundOutcome, RefundRequest, RefundStatus, WebhookBatch, WebhookEvent, WebhookReply, WebhookRequest,
};

struct BatchWebhooks;

const MAX_EVENTS: usize = 100;

impl Provider for BatchWebhooks {
    fn info() -> ProviderInfo {
        ProviderInfo::new("batch-webhooks", env!("CARGO_PKG_VERSION"))
            .currencies(&["EUR", "USD"])
            .partial_refunds()
            .asynchronous_settlement()
            .webhooks()
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let id = format!("batch-{}", request.payment_id);
        let processing = request.metadata.iter().any(|(k, v)| k == "status" && v == "processing");
        Ok(if processing { PaymentOutcome::processing(id) } else { PaymentOutcome::succeeded(id) })
    }

    fn retrieve_payment(_lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
        Ok(None)
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        Ok(RefundOutcome::new(RefundStatus::Pending, format!("batch-refund-{}", request.refund_id)))
    }

    fn retrieve_refund(_lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
        Ok(None)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        let secret = lessor_plugin_sdk::require_secret("webhook_secret")?;
        let given = request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-batch-signature")).map(|(_, v)| v);
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), secret.expose().as_bytes())) {
            return Err(ProviderError::SignatureInvalid);
        }
        let body =
            std::str::from_utf8(&request.body).map_err(|_| ProviderError::invalid_request("body", "not UTF-8"))?;
        let mut events = Vec::new();
        for (number, line) in body.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
            let event = parse_line(line.trim())
                .ok_or_else(|| ProviderError::invalid_request("body", format!("line {} does not parse", number + 1)))?;
            events.push(event.occurred_at(request.received_at));
        }
        if events.len() > MAX_EVENTS {
            return Err(ProviderError::invalid_request("body", format!("more than {MAX_EVENTS} events")));
        }
        Ok(WebhookBatch::new(events).reply(WebhookReply::text("[accepted]")))
    }
}

fn parse_line(line: &str) -> Option<WebhookEvent> {
    let fields: Vec<&str> = line.split(';').collect();
    let (id, kind, tx) = match fields.as_slice() {
        [id, kind, tx, ..] if !id.is_empty() && !tx.is_empty() => (*id, kind_of(kind)?, *tx),
        _ => return None,
    };
    let mut event = WebhookEvent::new(id, kind, tx);
    match fields.get(3..5) {
        Some(["", ""]) | None => {}
        Some([amount, currency]) => event = event.amount(Money::new(amount.parse().ok()?, currency)),
        Some(_) => return None,
    }
    match fields.get(5..) {
        Some([refund]) if !refund.is_empty() => event = event.refund(*refund),
        Some([]) | None => {}
        Some(_) => return None,
    }
    Some(event)
}

fn kind_of(kind: &str) -> Option<EventKind> {
    Some(match kind {
        "payment-succeeded" => EventKind::PaymentSucceeded,
        "payment-failed" => EventKind::PaymentFailed,
        "payment-processing" => EventKind::PaymentProcessing,
        "payment-requires-action" => EventKind::PaymentRequiresAction,
        "payment-settled" => EventKind::PaymentSettled,
        "payment-returned" => EventKind::PaymentReturned,
        "refund-succeeded" => EventKind::RefundSucceeded,
        "refund-failed" => EventKind::RefundFailed,
        "dispute-opened" => EventKind::DisputeOpened,
        _ => return None,
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

lessor_plugin_sdk::export_provider!(BatchWebhooks);

#[cfg(test)]
mod tests {
    use lessor_plugin_sdk::testing::{self, Harness};
    use lessor_plugin_sdk::{EventKind, Money, ProviderError, WebhookReply};

    use super::BatchWebhooks;

    const BODY: &str = "ev-1;payment-succeeded;batch-p1;1200;EUR\nev-2;payment-succeeded;batch-p2\n\
                        ev-3;refund-succeeded;batch-p1;400;EUR;batch-refund-r1\n";

    #[test]
    fn three_events_are_one_batch_answered_accepted() {
        let harness = Harness::new().secret("webhook_secret", "s3cret");
        let request = testing::webhook_request(&[("X-Batch-Signature", "s3cret")], BODY.as_bytes(), 7);

        let batch = harness.parse_webhook::<BatchWebhooks>(request).unwrap();

        assert_eq!(batch.reply, WebhookReply::text("[accepted]"));
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.events[0].amount, Some(Money::new(1200, "EUR")));
        assert_eq!(batch.events[1].amount, None);
        assert_eq!(batch.events[2].kind, EventKind::RefundSucceeded);
        assert_eq!(batch.events[2].provider_refund_id.as_deref(), Some("batch-refund-r1"));
        assert!(batch.events.iter().all(|e| e.occurred_at == Some(7)));
    }

    #[test]
    fn a_wrong_signature_or_a_bad_line_is_refused() {
        let harness = Harness::new().secret("webhook_secret", "s3cret");
        let forged = testing::webhook_request(&[("x-batch-signature", "guess")], BODY.as_bytes(), 7);
        assert_eq!(harness.parse_webhook::<BatchWebhooks>(forged), Err(ProviderError::SignatureInvalid));
        let bad = testing::webhook_request(&[("x-batch-signature", "s3cret")], b"ev-1;payment-paid;tx", 7);
        assert!(matches!(harness.parse_webhook::<BatchWebhooks>(bad), Err(ProviderError::InvalidRequest(_))));
    }
}
