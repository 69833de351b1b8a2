//! The provider contract in host terms, independent of any WIT version.
//!
//! Each `versions::vX_Y_Z` module converts between these types and its generated bindings, so the
//! rest of the host never sees a versioned type and an older plugin keeps working when a newer WIT
//! package is added. Money is integer minor units plus an ISO 4217 code.

use std::collections::BTreeSet;

/// An amount in minor units (cents) of `currency` (ISO 4217, e.g. "EUR").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    pub amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub payment_id: String,
    pub lease_id: String,
    pub installment_id: Option<String>,
    pub amount: Money,
    /// The provider's token for the payer's payment method.
    pub payment_method: String,
    pub idempotency_key: String,
    pub metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    Succeeded,
    Processing,
    RequiresAction,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOutcome {
    pub status: PaymentStatus,
    pub provider_transaction_id: String,
    pub decline_code: Option<String>,
    pub next_action_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub refund_id: String,
    pub payment_id: String,
    pub provider_transaction_id: String,
    pub amount: Money,
    pub reason: Option<String>,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStatus {
    Succeeded,
    Pending,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundOutcome {
    pub status: RefundStatus,
    pub provider_refund_id: String,
    pub failure_reason: Option<String>,
}

/// A webhook as received: the plugin verifies its signature over the raw body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Unix milliseconds.
    pub received_at: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    PaymentSucceeded,
    PaymentFailed,
    PaymentProcessing,
    PaymentRequiresAction,
    PaymentSettled,
    PaymentReturned,
    RefundSucceeded,
    RefundFailed,
    DisputeOpened,
}

/// A verified, normalised provider event; the host applies it once per `event_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEvent {
    pub event_id: String,
    pub kind: EventKind,
    pub provider_transaction_id: String,
    pub amount: Option<Money>,
    pub reason_code: Option<String>,
    pub occurred_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    Refunds,
    PartialRefunds,
    Webhooks,
    PayerActions,
    Recurring,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    pub id: String,
    pub version: String,
    pub currencies: Vec<String>,
    pub capabilities: BTreeSet<Capability>,
}

/// Cap on a provider error's text as the host keeps it.
const MAX_ERROR_TEXT: usize = 1024;

/// A provider's own answer that a call did not produce an outcome (the WIT `provider-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("declined: {0}")]
    Declined(String),
    #[error("invalid request: {field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    #[error("provider unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("webhook signature invalid")]
    SignatureInvalid,
    #[error("not supported by this provider")]
    NotSupported,
    #[error("provider internal error: {0}")]
    Internal(String),
}

impl ProviderError {
    /// The error with its plugin-chosen text escaped and capped (`text::escape`): what the host
    /// passes on, logs and stores.
    pub fn sanitized(self) -> Self {
        let clean = |s: String| super::text::escape(&s, MAX_ERROR_TEXT).into_owned();
        match self {
            Self::Declined(reason) => Self::Declined(clean(reason)),
            Self::InvalidRequest { field, reason } => {
                Self::InvalidRequest { field: super::text::escape(&field, 128).into_owned(), reason: clean(reason) }
            }
            Self::ProviderUnavailable(message) => Self::ProviderUnavailable(clean(message)),
            Self::Internal(message) => Self::Internal(clean(message)),
            other @ (Self::SignatureInvalid | Self::NotSupported) => other,
        }
    }

    /// A stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Declined(_) => "declined",
            Self::InvalidRequest { .. } => "invalid_request",
            Self::ProviderUnavailable(_) => "provider_unavailable",
            Self::SignatureInvalid => "signature_invalid",
            Self::NotSupported => "not_supported",
            Self::Internal(_) => "internal",
        }
    }
}

/// Approximate bytes a value occupies across the component boundary: what the input and output
/// caps are measured in (string and list payloads plus a small fixed cost per field).
pub trait WireSize {
    fn wire_size(&self) -> usize;
}

/// The fixed cost of one field or value, beside its payload.
pub(crate) const FIELD: usize = 8;

impl WireSize for str {
    fn wire_size(&self) -> usize {
        self.len() + FIELD
    }
}

impl WireSize for String {
    fn wire_size(&self) -> usize {
        self.as_str().wire_size()
    }
}

impl<T: WireSize> WireSize for Option<T> {
    fn wire_size(&self) -> usize {
        self.as_ref().map_or(FIELD, WireSize::wire_size)
    }
}

impl WireSize for (String, String) {
    fn wire_size(&self) -> usize {
        self.0.wire_size() + self.1.wire_size()
    }
}

impl<T: WireSize> WireSize for [T] {
    fn wire_size(&self) -> usize {
        FIELD + self.iter().map(WireSize::wire_size).sum::<usize>()
    }
}

impl<T: WireSize> WireSize for Vec<T> {
    fn wire_size(&self) -> usize {
        self.as_slice().wire_size()
    }
}

impl WireSize for () {
    fn wire_size(&self) -> usize {
        0
    }
}

impl<T: WireSize, E: WireSize> WireSize for Result<T, E> {
    fn wire_size(&self) -> usize {
        match self {
            Ok(v) => v.wire_size(),
            Err(e) => e.wire_size(),
        }
    }
}

impl WireSize for Money {
    fn wire_size(&self) -> usize {
        FIELD + self.currency.wire_size()
    }
}

impl WireSize for PaymentRequest {
    fn wire_size(&self) -> usize {
        self.payment_id.wire_size()
            + self.lease_id.wire_size()
            + self.installment_id.wire_size()
            + self.amount.wire_size()
            + self.payment_method.wire_size()
            + self.idempotency_key.wire_size()
            + self.metadata.wire_size()
    }
}

impl WireSize for PaymentOutcome {
    fn wire_size(&self) -> usize {
        FIELD
            + self.provider_transaction_id.wire_size()
            + self.decline_code.wire_size()
            + self.next_action_url.wire_size()
    }
}

impl WireSize for RefundRequest {
    fn wire_size(&self) -> usize {
        self.refund_id.wire_size()
            + self.payment_id.wire_size()
            + self.provider_transaction_id.wire_size()
            + self.amount.wire_size()
            + self.reason.wire_size()
            + self.idempotency_key.wire_size()
    }
}

impl WireSize for RefundOutcome {
    fn wire_size(&self) -> usize {
        FIELD + self.provider_refund_id.wire_size() + self.failure_reason.wire_size()
    }
}

impl WireSize for WebhookRequest {
    fn wire_size(&self) -> usize {
        self.headers.wire_size() + self.body.len() + 2 * FIELD
    }
}

impl WireSize for WebhookEvent {
    fn wire_size(&self) -> usize {
        self.event_id.wire_size()
            + FIELD
            + self.provider_transaction_id.wire_size()
            + self.amount.wire_size()
            + self.reason_code.wire_size()
            + 2 * FIELD
    }
}

impl WireSize for ProviderInfo {
    fn wire_size(&self) -> usize {
        self.id.wire_size() + self.version.wire_size() + self.currencies.wire_size() + FIELD
    }
}

impl WireSize for ProviderError {
    fn wire_size(&self) -> usize {
        FIELD
            + match self {
                Self::Declined(s) | Self::ProviderUnavailable(s) | Self::Internal(s) => s.wire_size(),
                Self::InvalidRequest { field, reason } => field.wire_size() + reason.wire_size(),
                Self::SignatureInvalid | Self::NotSupported => 0,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_size_counts_payloads() {
        let outcome = PaymentOutcome {
            status: PaymentStatus::Succeeded,
            provider_transaction_id: "x".repeat(1000),
            decline_code: None,
            next_action_url: None,
        };
        assert!(outcome.wire_size() >= 1000);
        assert!(outcome.wire_size() < 1100);
    }
}
