//! Canned responses and sample requests, so a provider's tests say only what matters to them.

use crate::http::Response;
use crate::{MethodKind, Money, PaymentLookup, PaymentRequest, RefundLookup, RefundRequest, WebhookRequest};

/// A response with `status`, the given headers and body.
pub fn response(status: u16, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Response {
    Response {
        status,
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.into(),
    }
}

/// A JSON response: `content-type: application/json` and `body`.
pub fn json(status: u16, body: &str) -> Response {
    response(status, &[("content-type", "application/json")], body)
}

/// A response with `status` and nothing else.
pub fn status(status: u16) -> Response {
    response(status, &[], Vec::new())
}

/// The payment id of every sample request and lookup.
const PAYMENT_ID: &str = "9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d";

/// A payment request by token (`MethodKind::Token`) with fixed ids: payment
/// `9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d`, lease `lease-1`, installment `installment-1`,
/// idempotency key `idem-9b2f6c1e`, no metadata.
pub fn payment_request(amount: i64, currency: &str, payment_method: &str) -> PaymentRequest {
    PaymentRequest {
        payment_id: PAYMENT_ID.to_owned(),
        lease_id: "lease-1".to_owned(),
        installment_id: Some("installment-1".to_owned()),
        amount: Money::new(amount, currency),
        method_kind: MethodKind::Token,
        payment_method: payment_method.to_owned(),
        idempotency_key: "idem-9b2f6c1e".to_owned(),
        metadata: Vec::new(),
    }
}

/// Like [`payment_request`], by SEPA direct-debit mandate (`MethodKind::SepaMandate`, the
/// mandate as JSON in `payment_method`).
pub fn sepa_payment_request(amount: i64, currency: &str, mandate_json: &str) -> PaymentRequest {
    PaymentRequest { method_kind: MethodKind::SepaMandate, ..payment_request(amount, currency, mandate_json) }
}

/// The lookup `retrieve_payment` gets for [`payment_request`]'s payment: same payment id,
/// idempotency key and amount, and the transaction id if the host knows one.
pub fn payment_lookup(provider_transaction_id: Option<&str>, amount: i64, currency: &str) -> PaymentLookup {
    PaymentLookup {
        payment_id: PAYMENT_ID.to_owned(),
        idempotency_key: "idem-9b2f6c1e".to_owned(),
        provider_transaction_id: provider_transaction_id.map(str::to_owned),
        amount: Money::new(amount, currency),
    }
}

/// A refund of `provider_transaction_id` with fixed ids: refund `refund-1` of payment
/// `9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d`, idempotency key `idem-refund-1`, no reason.
pub fn refund_request(provider_transaction_id: &str, amount: i64, currency: &str) -> RefundRequest {
    RefundRequest {
        refund_id: "refund-1".to_owned(),
        payment_id: PAYMENT_ID.to_owned(),
        provider_transaction_id: provider_transaction_id.to_owned(),
        amount: Money::new(amount, currency),
        reason: None,
        idempotency_key: "idem-refund-1".to_owned(),
    }
}

/// The lookup `retrieve_refund` gets for [`refund_request`]'s refund: same ids, amount and key,
/// and the provider's refund id if the host knows one.
pub fn refund_lookup(
    provider_transaction_id: &str,
    provider_refund_id: Option<&str>,
    amount: i64,
    currency: &str,
) -> RefundLookup {
    RefundLookup {
        refund_id: "refund-1".to_owned(),
        payment_id: PAYMENT_ID.to_owned(),
        provider_transaction_id: provider_transaction_id.to_owned(),
        provider_refund_id: provider_refund_id.map(str::to_owned),
        amount: Money::new(amount, currency),
        idempotency_key: "idem-refund-1".to_owned(),
    }
}

/// A webhook as the host hands it over: headers, raw body, and when it arrived (Unix ms).
pub fn webhook_request(headers: &[(&str, &str)], body: &[u8], received_at: u64) -> WebhookRequest {
    WebhookRequest {
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: body.to_vec(),
        received_at,
    }
}
