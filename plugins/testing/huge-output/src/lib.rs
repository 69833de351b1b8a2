//! Hostile: returns results as large as it is asked to, far over the host's output cap by default.
//!
//! - `process`: an outcome whose transaction id is `bytes` long (metadata `bytes`, default 4 MiB);
//!   with metadata `keep`, the string is built just the same but a short outcome is returned
//!   (`built-<bytes>`), so a test can tell the guest's own memory from what the host copies;
//! - `validate`: with metadata `decline-bytes`, a `declined` error of that many bytes; with
//!   `log-bytes`, first a log line of that many bytes (the host call's argument, not a result);
//! - `refund`: a refund id as long as the request's `reason` says (a number);
//! - `parse-webhook`: an event id as long as the body says (a number).

use lessor_plugin_sdk::log::Level;
use lessor_plugin_sdk::{
    EventKind, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo, RefundOutcome, RefundRequest,
    RefundStatus, WebhookBatch, WebhookEvent, WebhookRequest,
};

struct HugeOutput;

const DEFAULT_BYTES: usize = 4 << 20;

fn metadata(request: &PaymentRequest, key: &str) -> Option<usize> {
    request.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.parse().unwrap_or(DEFAULT_BYTES))
}

fn number(text: &str) -> Result<usize, ProviderError> {
    text.trim().parse().map_err(|_| ProviderError::invalid_request("size", "not a number"))
}

impl Provider for HugeOutput {
    fn info() -> ProviderInfo {
        ProviderInfo::new("huge-output", env!("CARGO_PKG_VERSION"))
            .currencies(&["EUR", "USD"])
            .partial_refunds()
            .webhooks()
    }

    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        if let Some(bytes) = metadata(request, "log-bytes") {
            lessor_plugin_sdk::log::write(Level::Info, &"l".repeat(bytes), &[]);
        }
        match metadata(request, "decline-bytes") {
            Some(bytes) => Err(ProviderError::Declined("d".repeat(bytes))),
            None => Ok(()),
        }
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let id = "x".repeat(metadata(&request, "bytes").unwrap_or(DEFAULT_BYTES));
        if metadata(&request, "keep").is_some() {
            let id = std::hint::black_box(id);
            return Ok(PaymentOutcome::succeeded(format!("built-{}", id.len())));
        }
        Ok(PaymentOutcome::succeeded(id))
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let bytes = number(request.reason.as_deref().unwrap_or_default())?;
        Ok(RefundOutcome::new(RefundStatus::Succeeded, "r".repeat(bytes)))
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        let bytes = number(&String::from_utf8_lossy(&request.body))?;
        Ok(WebhookBatch::one(WebhookEvent::new("e".repeat(bytes), EventKind::PaymentSucceeded, "tx")))
    }
}

lessor_plugin_sdk::export_provider!(HugeOutput);
