//! The bank API's JSON (README.md is the contract). Unknown response fields are ignored.

use serde::{Deserialize, Serialize};

/// What the host passes as `payment-method`: the debtor's SEPA mandate, as compact JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MandateInput {
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub mandate_reference: Option<String>,
    pub mandate_signed_on: Option<String>,
    pub debtor_name: Option<String>,
}

/// `POST /v1/collections`.
#[derive(Debug, Serialize)]
pub struct NewCollection<'a> {
    pub end_to_end_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub creditor_id: &'a str,
    pub mandate: MandateRef<'a>,
    pub debtor: Debtor<'a>,
    pub remittance_information: &'a str,
}

#[derive(Debug, Serialize)]
pub struct MandateRef<'a> {
    pub reference: &'a str,
    pub signed_on: &'a str,
}

#[derive(Debug, Serialize)]
pub struct Debtor<'a> {
    pub name: &'a str,
    pub iban: &'a str,
    pub bic: Option<&'a str>,
}

/// A collection as the bank reports it (201 on creation, 409 with the existing one on a duplicate
/// `end_to_end_id`, 200 to `GET /v1/collections?end_to_end_id=…`).
#[derive(Debug, Deserialize)]
pub struct Collection {
    pub collection_id: String,
    /// `accepted`, `rejected`, `settled`, `failed` or `returned`.
    pub status: String,
    #[serde(default)]
    pub reason_code: Option<String>,
}

/// `POST /v1/refunds`.
#[derive(Debug, Serialize)]
pub struct NewRefund<'a> {
    pub refund_id: &'a str,
    pub collection_id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

#[derive(Debug, Deserialize)]
pub struct Refund {
    /// The bank's id of the refund.
    pub id: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    #[serde(default)]
    pub failure_reason: Option<String>,
}

/// `{"error": {"code", "message", "field"?}}` on 4xx.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub field: Option<String>,
}

/// A webhook delivery's body.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub collection_id: String,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub reason_code: Option<String>,
    #[serde(default)]
    pub occurred_at: Option<String>,
    /// `refund.*` events: the refund, as `POST /v1/refunds` answered it.
    #[serde(default)]
    pub refund: Option<EventRefund>,
}

#[derive(Debug, Deserialize)]
pub struct EventRefund {
    /// The bank's id of the refund (`rf_…`): our `provider-refund-id`.
    pub id: String,
}
