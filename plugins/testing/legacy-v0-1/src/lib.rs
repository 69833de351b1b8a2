//! Test plugin `legacy` 1.0.0: a `lessor:payments@0.1.0` component written with raw `wit-bindgen`
//! against `wit/lessor-payments@0.1.0`, as plugins in the field were before WIT 0.2.0. The host's
//! side-by-side tests install it next to 0.2.0 plugins; keep it frozen.
//!
//! - `process` succeeds at once with the transaction id `legacy-<payment id>`;
//! - `refund` succeeds with the refund id `legacy-refund-<refund id>`;
//! - `parse-webhook` is `not-supported`.

wit_bindgen::generate!({
    path: "../../../wit/lessor-payments@0.1.0",
    world: "payment-provider",
});

use exports::lessor::payments::provider::Guest;
use lessor::payments::types::{
    Capabilities, FieldError, PaymentOutcome, PaymentRequest, PaymentStatus, ProviderError, ProviderInfo,
    RefundOutcome, RefundRequest, RefundStatus, WebhookEvent, WebhookRequest,
};

const CURRENCIES: &[&str] = &["EUR", "USD"];

struct Legacy;

impl Guest for Legacy {
    fn info() -> ProviderInfo {
        ProviderInfo {
            id: "legacy".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            currencies: CURRENCIES.iter().map(|c| (*c).to_owned()).collect(),
            capabilities: Capabilities::REFUNDS | Capabilities::PARTIAL_REFUNDS,
        }
    }

    fn validate(request: PaymentRequest) -> Result<(), ProviderError> {
        if request.amount.amount <= 0 {
            return Err(invalid("amount.amount", "must be positive"));
        }
        if !CURRENCIES.contains(&request.amount.currency.as_str()) {
            return Err(invalid("amount.currency", "legacy takes EUR and USD"));
        }
        Ok(())
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        let id = format!("legacy-{}", request.payment_id);
        Self::validate(request)?;
        Ok(PaymentOutcome {
            status: PaymentStatus::Succeeded,
            provider_transaction_id: id,
            decline_code: None,
            next_action_url: None,
        })
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        Ok(RefundOutcome {
            status: RefundStatus::Succeeded,
            provider_refund_id: format!("legacy-refund-{}", request.refund_id),
            failure_reason: None,
        })
    }

    fn parse_webhook(_request: WebhookRequest) -> Result<Option<WebhookEvent>, ProviderError> {
        Err(ProviderError::NotSupported)
    }
}

fn invalid(field: &str, reason: &str) -> ProviderError {
    ProviderError::InvalidRequest(FieldError { field: field.to_owned(), reason: reason.to_owned() })
}

export!(Legacy);
