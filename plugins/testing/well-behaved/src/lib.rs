//! A provider that plays by the rules: configuration, a secret, logging and host HTTP to the
//! granted endpoint. It speaks a toy wire protocol to the test peer:
//!
//! - `POST {endpoint}/charges` (form body, bearer key) answers `200 <transaction id>`,
//!   `402 <decline reason>` or 5xx;
//! - `POST {endpoint}/refunds` answers `200 <refund id>`;
//! - webhooks carry `x-signature: <webhook_secret>` and the body `<event id>;<kind>;<transaction id>`.
//!
//! Test hook: metadata `("probe-config" | "probe-secret", key)` makes `process` report whether the
//! key is visible to this plugin instead of charging.

use lessor_plugin_sdk::http::Request;
use lessor_plugin_sdk::{
    EventKind, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo, RefundOutcome, RefundRequest,
    RefundStatus, WebhookBatch, WebhookEvent, WebhookRequest, log,
};

struct WellBehaved;

const CURRENCIES: &[&str] = &["EUR", "GBP", "SEK"];

impl Provider for WellBehaved {
    fn info() -> ProviderInfo {
        ProviderInfo::new("well-behaved", env!("CARGO_PKG_VERSION")).currencies(CURRENCIES).partial_refunds().webhooks()
    }

    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        if request.amount.amount <= 0 {
            return Err(ProviderError::invalid_request("amount.amount", "must be positive"));
        }
        if !CURRENCIES.contains(&request.amount.currency.as_str()) {
            return Err(ProviderError::invalid_request("amount.currency", "not supported"));
        }
        if !request.payment_method.starts_with("tok_") {
            return Err(ProviderError::invalid_request("payment-method", "expected a tok_ token"));
        }
        Ok(())
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        if let Some(outcome) = probe(&request) {
            return Ok(outcome);
        }
        Self::validate(&request)?;
        let endpoint = lessor_plugin_sdk::require_config("endpoint")?;
        let key = lessor_plugin_sdk::require_secret("api_key")?;
        let amount = request.amount.amount.to_string();
        log::info!(payment = request.payment_id, amount = amount; "charging {}", request.amount.currency);
        let response = Request::post(format!("{endpoint}/charges"))
            .bearer_auth(key.expose())
            .idempotency_key(&request.idempotency_key)
            .form(&[
                ("payment_id", &request.payment_id),
                ("amount", &amount),
                ("currency", &request.amount.currency),
                ("source", &request.payment_method),
            ])
            .send()?;
        if response.status == 402 {
            return Err(ProviderError::Declined(response.text()?.to_owned()));
        }
        let response = response.error_for_status()?;
        Ok(PaymentOutcome::succeeded(response.text()?.trim()))
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let endpoint = lessor_plugin_sdk::require_config("endpoint")?;
        let key = lessor_plugin_sdk::require_secret("api_key")?;
        let amount = request.amount.amount.to_string();
        let response = Request::post(format!("{endpoint}/refunds"))
            .bearer_auth(key.expose())
            .idempotency_key(&request.idempotency_key)
            .form(&[("charge", &request.provider_transaction_id), ("amount", &amount)])
            .send()?
            .error_for_status()?;
        Ok(RefundOutcome::new(RefundStatus::Succeeded, response.text()?.trim()))
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        let expected = lessor_plugin_sdk::require_secret("webhook_secret")?;
        let signature = request.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("x-signature")).map(|(_, v)| v);
        match signature {
            Some(given) if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) => {}
            _ => return Err(ProviderError::SignatureInvalid),
        }
        let body =
            std::str::from_utf8(&request.body).map_err(|_| ProviderError::invalid_request("body", "not UTF-8"))?;
        let mut parts = body.splitn(3, ';');
        let (Some(id), Some(kind), Some(tx)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(ProviderError::invalid_request("body", "expected <event id>;<kind>;<transaction id>"));
        };
        let kind = match kind {
            "charge.succeeded" => EventKind::PaymentSucceeded,
            "charge.failed" => EventKind::PaymentFailed,
            "refund.succeeded" => EventKind::RefundSucceeded,
            _ => return Ok(WebhookBatch::empty()),
        };
        Ok(WebhookBatch::one(WebhookEvent::new(id, kind, tx).occurred_at(request.received_at)))
    }
}

fn probe(request: &PaymentRequest) -> Option<PaymentOutcome> {
    let (what, key) = request.metadata.iter().find(|(k, _)| k.starts_with("probe-"))?;
    let visible = match what.as_str() {
        "probe-config" => lessor_plugin_sdk::config(key).is_some(),
        "probe-secret" => lessor_plugin_sdk::secret(key).is_some(),
        _ => return None,
    };
    Some(PaymentOutcome::succeeded(format!("{what} {key}: {}", if visible { "visible" } else { "absent" })))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

lessor_plugin_sdk::export_provider!(WellBehaved);
