//! A local stand-in for the bank's SEPA direct-debit API, for tests: not a bank, only the contract
//! the `bank` plugin speaks (plugins/bank/README.md).
//!
//! - Every request must carry `X-Client-Id` (the configured client), `X-Timestamp` (Unix seconds,
//!   within 300 s of the peer's clock) and `X-Signature: v1=<hex HMAC-SHA256(client_secret,
//!   "<timestamp>.<body>")>`; anything else is `401 invalid_signature` and counted in
//!   [`BankPeer::rejected_signatures`].
//! - `POST /v1/collections` records a collection (`201 {"collection_id", "status": "accepted"}`);
//!   a second submission of the same `end_to_end_id` is `409` with the existing collection. A
//!   mandate reference `REJECT-<code>` makes the bank reject it at once (`status: "rejected"`,
//!   `reason_code: <code>`). Missing or malformed fields are `422` naming the field.
//! - `POST /v1/refunds` refunds at most what was collected and not yet refunded (`422
//!   amount_exceeds_collection`); an unknown collection is `404`; a repeated `refund_id` is `409`
//!   with the existing refund. Refunds answer `pending`, as a bank does.
//! - `GET /v1/collections?end_to_end_id=…` and `GET /v1/refunds?refund_id=…` (signed over an empty
//!   body) find what was submitted, else `404 not_found` (the 0.2.0 plugin's retrieve calls).
//! - [`signed_webhook`] with [`collection_event`] (or [`BankPeer::event_for`]) builds a webhook
//!   delivery signed the way the bank signs them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Fault, RecordedRequest, Server, constant_time_eq, hex, hmac_sha256, unix_now};

/// How far a request's `X-Timestamp` may be from the peer's clock.
const TOLERANCE_SECS: i64 = 300;

/// A collection the peer accepted (or rejected at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub collection_id: String,
    pub end_to_end_id: String,
    pub amount: i64,
    pub currency: String,
    pub creditor_id: String,
    pub mandate_reference: String,
    pub mandate_signed_on: String,
    pub debtor_name: String,
    pub debtor_iban: String,
    pub debtor_bic: Option<String>,
    pub remittance_information: String,
    /// `accepted` or `rejected`; tests may move it on with [`BankPeer::set_status`].
    pub status: String,
    pub reason_code: Option<String>,
    pub refunded: i64,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Refund {
    pub id: String,
    pub refund_id: String,
    pub collection_id: String,
    pub amount: i64,
    pub reason: Option<String>,
    pub status: String,
}

/// A webhook delivery as the bank sends it: headers and raw body.
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

pub struct BankPeer {
    server: Server,
    shared: Arc<Shared>,
}

struct Shared {
    client_id: String,
    client_secret: String,
    state: Mutex<BankState>,
}

#[derive(Default)]
struct BankState {
    collections: Vec<Collection>,
    refunds: Vec<Refund>,
    rejected_signatures: usize,
    next_id: u64,
}

impl BankPeer {
    /// Starts a peer that knows one client: `client_id` signing with `client_secret`.
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let shared = Arc::new(Shared {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            state: Mutex::new(BankState::default()),
        });
        let app = Router::new()
            .route("/v1/collections", post(create_collection).get(find_collection))
            .route("/v1/refunds", post(create_refund).get(find_refund))
            .with_state(shared.clone());
        let status_500 = r#"{"error":{"code":"internal_error","message":"temporarily unavailable"}}"#;
        let server = Server::start(app, status_500).await;
        Self { server, shared }
    }

    /// `http://127.0.0.1:<port>`: the plugin's `api_base` and the origin to grant.
    pub fn origin(&self) -> String {
        self.server.origin()
    }

    /// Every request received, in order, including refused and faulted ones.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    pub fn collections(&self) -> Vec<Collection> {
        self.shared.state.lock().expect("peer lock").collections.clone()
    }

    pub fn collection(&self, collection_id: &str) -> Option<Collection> {
        self.collections().into_iter().find(|c| c.collection_id == collection_id)
    }

    pub fn refunds(&self) -> Vec<Refund> {
        self.shared.state.lock().expect("peer lock").refunds.clone()
    }

    /// Requests refused for a wrong client id, a stale timestamp or a bad signature.
    pub fn rejected_signatures(&self) -> usize {
        self.shared.state.lock().expect("peer lock").rejected_signatures
    }

    /// Moves a collection on (`settled`, `failed`, `returned`), as later answers (409 replays)
    /// will report it.
    pub fn set_status(&self, collection_id: &str, status: &str, reason_code: Option<&str>) {
        let mut state = self.shared.state.lock().expect("peer lock");
        if let Some(c) = state.collections.iter_mut().find(|c| c.collection_id == collection_id) {
            c.status = status.to_owned();
            c.reason_code = reason_code.map(str::to_owned);
        }
    }

    /// Switches the peer's behaviour; `Down` returns once connections are refused.
    pub async fn set_fault(&self, fault: Fault) {
        self.server.set_fault(fault).await;
    }

    /// The body of a `collection.*` event about a collection the peer holds.
    pub fn event_for(
        &self,
        event_id: &str,
        event_type: &str,
        collection_id: &str,
        reason_code: Option<&str>,
        occurred_at: &str,
    ) -> Option<String> {
        let c = self.collection(collection_id)?;
        Some(collection_event(
            event_id,
            event_type,
            &c.collection_id,
            &c.end_to_end_id,
            c.amount,
            reason_code,
            occurred_at,
        ))
    }
}

/// A webhook body: `{"event_id", "type", "collection_id", "end_to_end_id", "amount", "currency",
/// "reason_code"?, "occurred_at"}`. `event_type` is `collection.settled`, `collection.failed`,
/// `collection.returned` (or anything else, which the plugin ignores).
pub fn collection_event(
    event_id: &str,
    event_type: &str,
    collection_id: &str,
    end_to_end_id: &str,
    amount: i64,
    reason_code: Option<&str>,
    occurred_at: &str,
) -> String {
    let mut event = json!({
        "event_id": event_id,
        "type": event_type,
        "collection_id": collection_id,
        "end_to_end_id": end_to_end_id,
        "amount": amount,
        "currency": "EUR",
        "occurred_at": occurred_at,
    });
    if let Some(code) = reason_code {
        event["reason_code"] = json!(code);
    }
    event.to_string()
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the bank's signature, on requests
/// (`X-Signature`) and webhooks (`X-Bank-Signature`) alike.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    format!("v1={}", hex(&hmac_sha256(secret.as_bytes(), format!("{timestamp}.{body}").as_bytes())))
}

/// A webhook delivery of `body` signed with `secret` at `unix_ts`.
pub fn signed_webhook(secret: &str, body: &str, unix_ts: i64) -> WebhookDelivery {
    WebhookDelivery {
        headers: vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Bank-Timestamp".to_owned(), unix_ts.to_string()),
            ("X-Bank-Signature".to_owned(), signature(secret, unix_ts, body)),
        ],
        body: body.to_owned(),
    }
}

fn error(status: StatusCode, code: &str, field: Option<&str>, message: &str) -> Response {
    let mut error = json!({ "code": code, "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    json_response(status, &json!({ "error": error }))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Checks client id, timestamp and signature; counts a refusal.
fn authentic(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let timestamp = header("x-timestamp");
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| (unix_now() - t).abs() <= TOLERANCE_SECS);
    let expected = {
        let mut signed = format!("{timestamp}.").into_bytes();
        signed.extend_from_slice(body);
        format!("v1={}", hex(&hmac_sha256(shared.client_secret.as_bytes(), &signed)))
    };
    let signed = constant_time_eq(header("x-signature").as_bytes(), expected.as_bytes());
    if header("x-client-id") == shared.client_id && fresh && signed {
        return true;
    }
    shared.state.lock().expect("peer lock").rejected_signatures += 1;
    false
}

fn unauthorized() -> Response {
    error(StatusCode::UNAUTHORIZED, "invalid_signature", None, "client id, timestamp or signature is wrong")
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn collection_json(c: &Collection) -> Value {
    let mut body = json!({
        "collection_id": c.collection_id,
        "end_to_end_id": c.end_to_end_id,
        "status": c.status,
        "amount": c.amount,
        "currency": c.currency,
    });
    if let Some(code) = &c.reason_code {
        body["reason_code"] = json!(code);
    }
    body
}

async fn create_collection(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authentic(&shared, &headers, &body) {
        return unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", None, "the body is not JSON");
    };
    let mut fields = BTreeMap::new();
    for (field, pointer) in [
        ("end_to_end_id", "/end_to_end_id"),
        ("currency", "/currency"),
        ("creditor_id", "/creditor_id"),
        ("mandate.reference", "/mandate/reference"),
        ("mandate.signed_on", "/mandate/signed_on"),
        ("debtor.name", "/debtor/name"),
        ("debtor.iban", "/debtor/iban"),
        ("remittance_information", "/remittance_information"),
    ] {
        match str_at(&request, pointer).filter(|v| !v.is_empty()) {
            Some(value) => fields.insert(field, value.to_owned()),
            None => return error(StatusCode::UNPROCESSABLE_ENTITY, "missing_field", Some(field), "is required"),
        };
    }
    let Some(amount) = request["amount"].as_i64().filter(|a| *a > 0) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("amount"), "must be a positive integer");
    };
    if fields["currency"] != "EUR" {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("currency"), "must be EUR");
    }
    if fields["end_to_end_id"].len() > 35 {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            Some("end_to_end_id"),
            "at most 35 characters",
        );
    }
    let bic = match &request["debtor"]["bic"] {
        Value::Null => None,
        Value::String(bic) => Some(bic.clone()),
        _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("debtor.bic"), "must be a string"),
    };

    let mut state = shared.state.lock().expect("peer lock");
    if let Some(existing) = state.collections.iter().find(|c| c.end_to_end_id == fields["end_to_end_id"]) {
        return json_response(StatusCode::CONFLICT, &collection_json(existing));
    }
    state.next_id += 1;
    let reference = fields["mandate.reference"].clone();
    let rejected = reference.strip_prefix("REJECT-").map(str::to_owned);
    let collection = Collection {
        collection_id: format!("col_{:06}", state.next_id),
        end_to_end_id: fields["end_to_end_id"].clone(),
        amount,
        currency: fields["currency"].clone(),
        creditor_id: fields["creditor_id"].clone(),
        mandate_reference: reference,
        mandate_signed_on: fields["mandate.signed_on"].clone(),
        debtor_name: fields["debtor.name"].clone(),
        debtor_iban: fields["debtor.iban"].clone(),
        debtor_bic: bic,
        remittance_information: fields["remittance_information"].clone(),
        status: if rejected.is_some() { "rejected" } else { "accepted" }.to_owned(),
        reason_code: rejected,
        refunded: 0,
        idempotency_key: headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_owned),
    };
    let body = collection_json(&collection);
    state.collections.push(collection);
    json_response(StatusCode::CREATED, &body)
}

/// `GET /v1/collections?end_to_end_id=…` (signed, empty body): the collection, or
/// `404 not_found` (the 0.2.0 plugin's `retrieve-payment`).
async fn find_collection(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authentic(&shared, &headers, b"") {
        return unauthorized();
    }
    let wanted = params.get("end_to_end_id").cloned().unwrap_or_default();
    let state = shared.state.lock().expect("peer lock");
    match state.collections.iter().find(|c| c.end_to_end_id == wanted) {
        Some(c) => json_response(StatusCode::OK, &collection_json(c)),
        None => error(StatusCode::NOT_FOUND, "not_found", Some("end_to_end_id"), "no such collection"),
    }
}

/// `GET /v1/refunds?refund_id=…` (signed, empty body): the refund, or `404 not_found` (the 0.2.0
/// plugin's `retrieve-refund`).
async fn find_refund(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !authentic(&shared, &headers, b"") {
        return unauthorized();
    }
    let wanted = params.get("refund_id").cloned().unwrap_or_default();
    let state = shared.state.lock().expect("peer lock");
    match state.refunds.iter().find(|r| r.refund_id == wanted) {
        Some(r) => json_response(StatusCode::OK, &json!({ "id": r.id, "refund_id": r.refund_id, "status": r.status })),
        None => error(StatusCode::NOT_FOUND, "not_found", Some("refund_id"), "no such refund"),
    }
}

async fn create_refund(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !authentic(&shared, &headers, &body) {
        return unauthorized();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid_json", None, "the body is not JSON");
    };
    let (Some(refund_id), Some(collection_id)) = (str_at(&request, "/refund_id"), str_at(&request, "/collection_id"))
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            Some("refund_id"),
            "refund_id and collection_id are required",
        );
    };
    let Some(amount) = request["amount"].as_i64().filter(|a| *a > 0) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("amount"), "must be a positive integer");
    };
    if str_at(&request, "/currency") != Some("EUR") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", Some("currency"), "must be EUR");
    }

    let mut state = shared.state.lock().expect("peer lock");
    if let Some(existing) = state.refunds.iter().find(|r| r.refund_id == refund_id) {
        let body = json!({ "id": existing.id, "refund_id": existing.refund_id, "status": existing.status });
        return json_response(StatusCode::CONFLICT, &body);
    }
    let Some(index) = state.collections.iter().position(|c| c.collection_id == collection_id) else {
        return error(StatusCode::NOT_FOUND, "not_found", Some("collection_id"), "no such collection");
    };
    let collection = &state.collections[index];
    if collection.status == "rejected" {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_refundable",
            Some("collection_id"),
            "the collection was rejected",
        );
    }
    let left = collection.amount - collection.refunded;
    if amount > left {
        let message = format!("{amount} is more than the {left} cents left to refund");
        return error(StatusCode::UNPROCESSABLE_ENTITY, "amount_exceeds_collection", Some("amount"), &message);
    }
    state.collections[index].refunded += amount;
    state.next_id += 1;
    let refund = Refund {
        id: format!("rf_{:06}", state.next_id),
        refund_id: refund_id.to_owned(),
        collection_id: collection_id.to_owned(),
        amount,
        reason: str_at(&request, "/reason").map(str::to_owned),
        status: "pending".to_owned(),
    };
    let body = json!({ "id": refund.id, "refund_id": refund.refund_id, "status": refund.status });
    state.refunds.push(refund);
    json_response(StatusCode::CREATED, &body)
}
