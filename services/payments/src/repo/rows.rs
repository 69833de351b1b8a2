//! Database rows and their conversion into records.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{RepoError, corrupt};
use crate::gateway::{PaymentRequest, RefundRequest};
use crate::record::{Payment, Refund};

pub const PAYMENT_COLUMNS: &str = "id, lease_id, installment_id, owner_id, amount, currency, provider, status, \
     provider_tx_id, next_action_url, failure_code, failure_message, return_reason, refunded_amount, \
     refund_pending_amount, process_attempts, reconcile_after, needs_attention, created_at, updated_at";

/// [`PAYMENT_COLUMNS`] and what a provider call needs besides.
pub const WORK_COLUMNS: &str = "id, lease_id, installment_id, owner_id, amount, currency, provider, status, \
     provider_tx_id, next_action_url, failure_code, failure_message, return_reason, refunded_amount, \
     refund_pending_amount, process_attempts, reconcile_after, needs_attention, created_at, updated_at, \
     payment_method, idempotency_key";

pub const REFUND_COLUMNS: &str = "id, payment_id, amount, currency, status, reason, provider_refund_id, \
     failure_code, failure_message, attempts, reconcile_after, needs_attention, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct PaymentRow {
    pub id: Uuid,
    pub lease_id: Uuid,
    pub installment_id: Option<Uuid>,
    pub owner_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub provider: String,
    pub status: String,
    pub provider_tx_id: Option<String>,
    pub next_action_url: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub return_reason: Option<String>,
    pub refunded_amount: i64,
    pub refund_pending_amount: i64,
    pub process_attempts: i32,
    pub reconcile_after: Option<i64>,
    pub needs_attention: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn from_millis(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

impl PaymentRow {
    pub fn into_payment(self) -> Result<Payment, RepoError> {
        let r = self;
        Ok(Payment {
            id: r.id,
            lease_id: r.lease_id,
            installment_id: r.installment_id,
            owner_id: r.owner_id,
            amount: r.amount,
            currency: r.currency.parse().map_err(|e| corrupt("currency", e))?,
            provider: r.provider,
            status: r.status.parse().map_err(|e| corrupt("status", e))?,
            provider_tx_id: r.provider_tx_id,
            next_action_url: r.next_action_url,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            return_reason: r.return_reason,
            refunded_amount: r.refunded_amount,
            refund_pending_amount: r.refund_pending_amount,
            process_attempts: u32::try_from(r.process_attempts).map_err(|e| corrupt("process_attempts", e))?,
            reconcile_after: from_millis(r.reconcile_after),
            needs_attention: r.needs_attention,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct WorkRow {
    #[sqlx(flatten)]
    pub payment: PaymentRow,
    pub payment_method: String,
    pub idempotency_key: String,
}

/// A payment with what a provider call for it needs. Never leaves the crate.
pub(crate) struct PaymentWork {
    pub payment: Payment,
    pub payment_method: String,
    pub idempotency_key: String,
}

impl TryFrom<WorkRow> for PaymentWork {
    type Error = RepoError;
    fn try_from(r: WorkRow) -> Result<Self, RepoError> {
        Ok(PaymentWork {
            payment: r.payment.into_payment()?,
            payment_method: r.payment_method,
            idempotency_key: r.idempotency_key,
        })
    }
}

impl PaymentWork {
    /// The request `process` receives: the same on every call for this payment.
    pub fn request(&self) -> PaymentRequest {
        let p = &self.payment;
        PaymentRequest {
            payment_id: p.id,
            lease_id: p.lease_id,
            installment_id: p.installment_id,
            amount: p.amount,
            currency: p.currency,
            method_kind: crate::gateway::MethodKind::of_wire(&self.payment_method),
            payment_method: self.payment_method.clone(),
            idempotency_key: self.idempotency_key.clone(),
            metadata: request_metadata(p.lease_id, p.installment_id),
        }
    }
}

/// What a provider sees besides the payment itself: ids only, the same on every call.
pub(crate) fn request_metadata(lease_id: Uuid, installment_id: Option<Uuid>) -> Vec<(String, String)> {
    let mut metadata = vec![("lease_id".to_owned(), lease_id.to_string())];
    if let Some(installment) = installment_id {
        metadata.push(("installment_id".to_owned(), installment.to_string()));
    }
    metadata
}

#[derive(sqlx::FromRow)]
pub struct RefundRow {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub provider_refund_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub attempts: i32,
    pub reconcile_after: Option<i64>,
    pub needs_attention: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RefundRow {
    pub fn into_refund(self) -> Result<Refund, RepoError> {
        let r = self;
        Ok(Refund {
            id: r.id,
            payment_id: r.payment_id,
            amount: r.amount,
            currency: r.currency.parse().map_err(|e| corrupt("currency", e))?,
            status: r.status.parse().map_err(|e| corrupt("status", e))?,
            reason: r.reason,
            provider_refund_id: r.provider_refund_id,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            attempts: u32::try_from(r.attempts).map_err(|e| corrupt("attempts", e))?,
            reconcile_after: from_millis(r.reconcile_after),
            needs_attention: r.needs_attention,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A refund with its payment, for a provider call.
pub(crate) struct RefundWork {
    pub refund: Refund,
    pub payment: PaymentWork,
}

impl RefundWork {
    /// The request `refund` receives: the same on every call for this refund.
    pub fn request(&self) -> RefundRequest {
        RefundRequest {
            refund_id: self.refund.id,
            payment_id: self.refund.payment_id,
            provider_tx_id: self.payment.payment.provider_tx_id.clone().unwrap_or_default(),
            amount: self.refund.amount,
            currency: self.refund.currency,
            reason: self.refund.reason.clone(),
            idempotency_key: refund_key(self.refund.id),
        }
    }
}

/// The provider idempotency key of a refund.
pub(crate) fn refund_key(refund_id: Uuid) -> String {
    format!("lessor-refund-{refund_id}")
}
