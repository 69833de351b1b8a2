//! Conveniences on the generated domain types: constructors, `Display`, a redacting `Secret`.

use std::fmt;

use crate::{
    Capabilities, EventKind, FieldError, Money, PaymentOutcome, PaymentStatus, ProviderError, ProviderInfo,
    RefundOutcome, RefundStatus, WebhookEvent,
};

impl ProviderInfo {
    pub fn new(id: &str, version: &str, currencies: &[&str], capabilities: Capabilities) -> Self {
        Self {
            id: id.to_owned(),
            version: version.to_owned(),
            currencies: currencies.iter().map(|c| (*c).to_owned()).collect(),
            capabilities,
        }
    }

    pub fn supports(&self, currency: &str) -> bool {
        self.currencies.iter().any(|c| c == currency)
    }
}

impl Money {
    pub fn new(amount: i64, currency: &str) -> Self {
        Self { amount, currency: currency.to_owned() }
    }
}

impl PaymentOutcome {
    pub fn succeeded(provider_transaction_id: impl Into<String>) -> Self {
        Self::with_status(PaymentStatus::Succeeded, provider_transaction_id)
    }

    pub fn processing(provider_transaction_id: impl Into<String>) -> Self {
        Self::with_status(PaymentStatus::Processing, provider_transaction_id)
    }

    pub fn requires_action(provider_transaction_id: impl Into<String>, next_action_url: impl Into<String>) -> Self {
        Self {
            next_action_url: Some(next_action_url.into()),
            ..Self::with_status(PaymentStatus::RequiresAction, provider_transaction_id)
        }
    }

    pub fn failed(provider_transaction_id: impl Into<String>, decline_code: impl Into<String>) -> Self {
        Self {
            decline_code: Some(decline_code.into()),
            ..Self::with_status(PaymentStatus::Failed, provider_transaction_id)
        }
    }

    fn with_status(status: PaymentStatus, provider_transaction_id: impl Into<String>) -> Self {
        Self {
            status,
            provider_transaction_id: provider_transaction_id.into(),
            decline_code: None,
            next_action_url: None,
        }
    }
}

impl RefundOutcome {
    pub fn new(status: RefundStatus, provider_refund_id: impl Into<String>) -> Self {
        Self { status, provider_refund_id: provider_refund_id.into(), failure_reason: None }
    }
}

impl WebhookEvent {
    pub fn new(event_id: impl Into<String>, kind: EventKind, provider_transaction_id: impl Into<String>) -> Self {
        Self {
            event_id: event_id.into(),
            kind,
            provider_transaction_id: provider_transaction_id.into(),
            amount: None,
            reason_code: None,
            occurred_at: None,
        }
    }
}

impl ProviderError {
    pub fn invalid_request(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest(FieldError { field: field.into(), reason: reason.into() })
    }
}

/// A secret from the host. `Debug` and `Display` never show it; [`Secret::expose`] does.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
