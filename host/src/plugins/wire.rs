//! How many bytes a value occupies across the component boundary: what the input and output caps
//! are measured in (string and list payloads plus a small fixed cost per field). Requests are the
//! payments crate's gateway types, measured as every WIT version lowers them (ids as UUID text).

use lessor_payments::{Currency, PaymentRequest, RefundRequest, WebhookRequest};
use uuid::Uuid;

use super::error::ProviderError;

/// Approximate bytes a value occupies across the component boundary.
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

/// A UUID crosses as its hyphenated text (36 bytes).
impl WireSize for Uuid {
    fn wire_size(&self) -> usize {
        uuid::fmt::Hyphenated::LENGTH + FIELD
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

/// `money`: the amount and the currency's code.
fn money(currency: Currency) -> usize {
    FIELD + currency.code().wire_size()
}

impl WireSize for PaymentRequest {
    fn wire_size(&self) -> usize {
        self.payment_id.wire_size()
            + self.lease_id.wire_size()
            + self.installment_id.wire_size()
            + money(self.currency)
            + FIELD
            + self.payment_method.wire_size()
            + self.idempotency_key.wire_size()
            + self.metadata.wire_size()
    }
}

impl WireSize for RefundRequest {
    fn wire_size(&self) -> usize {
        self.refund_id.wire_size()
            + self.payment_id.wire_size()
            + self.provider_tx_id.wire_size()
            + money(self.currency)
            + self.reason.wire_size()
            + self.idempotency_key.wire_size()
    }
}

impl WireSize for WebhookRequest {
    fn wire_size(&self) -> usize {
        self.headers.wire_size() + self.body.len() + 2 * FIELD
    }
}

impl WireSize for ProviderError {
    fn wire_size(&self) -> usize {
        FIELD
            + match self {
                Self::Declined(s)
                | Self::ProviderUnavailable(s)
                | Self::Internal(s)
                | Self::EgressDenied(s)
                | Self::Misconfigured(s) => s.wire_size(),
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
        let request = WebhookRequest { headers: vec![], body: vec![b'x'; 1000], received_at: 0 };
        assert!(request.wire_size() >= 1000);
        assert!(request.wire_size() < 1100);
        assert_eq!(Uuid::nil().wire_size(), 36 + FIELD);
    }
}
