//! The parts of Stripe's JSON this plugin reads. Unknown fields are ignored, so newer API versions
//! that add fields keep parsing; a missing required field is an unparseable answer.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A PaymentIntent (`POST /v1/payment_intents`, `GET /v1/payment_intents/{id}`, the search, and
/// `data.object` of `payment_intent.*` events).
#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub amount_received: i64,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    #[serde(default)]
    pub last_payment_error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
pub struct NextAction {
    #[serde(default)]
    pub redirect_to_url: Option<RedirectToUrl>,
}

#[derive(Debug, Deserialize)]
pub struct RedirectToUrl {
    #[serde(default)]
    pub url: Option<String>,
}

/// A Charge (`data.object` of `charge.*` events).
#[derive(Debug, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub currency: String,
}

/// A Refund (`POST /v1/refunds`, `GET /v1/refunds[/{id}]`, and `data.object` of `refund.*` events).
#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub status: String,
    /// The PaymentIntent refunded (absent for refunds of charges made without one).
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default)]
    pub amount: i64,
    #[serde(default)]
    pub currency: String,
}

/// A page of a list or search answer: `{"object": "list" | "search_result", "data", "has_more"}`.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// `{"error": {...}}`, the body of every non-2xx answer.
#[derive(Debug, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

#[derive(Debug, Deserialize)]
pub struct ApiError {
    /// `card_error`, `invalid_request_error`, `idempotency_error`, `api_error`, …
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    /// Card errors on a confirm carry the PaymentIntent they happened on.
    #[serde(default)]
    pub payment_intent: Option<ObjectRef>,
    #[serde(default)]
    pub charge: Option<String>,
}

impl ApiError {
    /// Stripe's most specific reason: the issuer's decline code, else the error code.
    pub fn reason_code(&self) -> Option<&str> {
        self.decline_code.as_deref().or(self.code.as_deref())
    }
}

/// Any object of which only the id matters.
#[derive(Debug, Deserialize)]
pub struct ObjectRef {
    pub id: String,
}

/// A webhook event: `data.object` is parsed according to `type`.
#[derive(Debug, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub created: Option<i64>,
    pub data: EventData,
}

#[derive(Debug, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}
