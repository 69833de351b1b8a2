//! Payments, refunds and lease payment methods as stored: what the service returns.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use lessor_leases::Currency;

use crate::method::PaymentMethod;
use crate::status::{PaymentStatus, RefundStatus};

/// A stored payment. The payment method it was made with is kept in the database for
/// reconciliation but never leaves this crate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: Uuid,
    pub lease_id: Uuid,
    pub installment_id: Option<Uuid>,
    /// The lease's owner: who may see this payment besides staff.
    pub owner_id: Uuid,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub provider: String,
    pub status: PaymentStatus,
    pub provider_tx_id: Option<String>,
    /// Where the payer completes a `requires_action` payment.
    pub next_action_url: Option<String>,
    /// Why the payment failed: `declined`, `invalid-request`, `unknown-provider`,
    /// `provider-disabled` (see `GatewayError::code`).
    pub failure_code: Option<String>,
    /// Safe to show the payer or an operator.
    pub failure_message: Option<String>,
    /// The bank's reason code when the payment was `returned`.
    pub return_reason: Option<String>,
    /// Refunds that succeeded, minor units.
    pub refunded_amount: i64,
    /// Refunds asked for whose outcome is not known yet, minor units.
    pub refund_pending_amount: i64,
    /// How often `process` has been called for this payment.
    pub process_attempts: u32,
    /// While `pending` with an unknown outcome: when reconciliation asks the provider again.
    pub reconcile_after: Option<DateTime<Utc>>,
    /// Reconciliation gave up: an operator must look at this payment.
    pub needs_attention: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Payment {
    /// What may still be refunded: the amount less refunds done and in flight.
    pub fn refundable(&self) -> i64 {
        if self.status.is_refundable() { self.amount - self.refunded_amount - self.refund_pending_amount } else { 0 }
    }
}

/// A stored refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub provider_refund_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub attempts: u32,
    pub reconcile_after: Option<DateTime<Utc>>,
    pub needs_attention: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// How a lease's installments are collected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasePaymentMethod {
    pub lease_id: Uuid,
    pub provider: String,
    /// Redacted in `Debug`; show [`PaymentMethod::masked`].
    pub method: PaymentMethod,
    pub updated_at: DateTime<Utc>,
}

/// One page of a lease's payments, newest first.
#[derive(Debug, Clone)]
pub struct PaymentPage {
    pub items: Vec<Payment>,
    pub next: Option<PaymentCursor>,
}

/// Where the next page starts: after (`created_at`, `id`) in newest-first order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentCursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor this API issued")]
pub struct CursorError;

impl PaymentCursor {
    /// An opaque token for a `?after=` parameter.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id.simple())
    }

    pub fn decode(s: &str) -> Result<Self, CursorError> {
        let (micros, id) = s.split_once('.').ok_or(CursorError)?;
        if s.len() > 64 {
            return Err(CursorError);
        }
        let micros: i64 = micros.parse().map_err(|_| CursorError)?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or(CursorError)?;
        let id = Uuid::try_parse(id).map_err(|_| CursorError)?;
        Ok(Self { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_strings() {
        let cursor = PaymentCursor { created_at: lessor_leases::now_micros(), id: Uuid::new_v4() };
        assert_eq!(PaymentCursor::decode(&cursor.encode()), Ok(cursor));
        for bad in ["", "1", "x.y", "1.not-a-uuid", &"9".repeat(80)] {
            assert_eq!(PaymentCursor::decode(bad), Err(CursorError), "{bad}");
        }
    }
}
