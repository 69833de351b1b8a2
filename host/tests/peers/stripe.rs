//! A local stand-in for Stripe's API, for tests: not Stripe, only the subset the `stripe` plugin
//! speaks (plugins/stripe/README.md), as Stripe documents it.
//!
//! - `POST /v1/payment_intents` and `POST /v1/refunds`: form-encoded, `Authorization: Bearer
//!   <secret key>` (else `401`), unknown parameters refused (`400`, like Stripe).
//! - Idempotency as Stripe does it: the first answer that executed (`200` or `402`) is saved per
//!   `Idempotency-Key`; the same key with the same parameters replays it (header
//!   `Idempotent-Replayed: true`, no second charge); the same key with other parameters or on
//!   another endpoint is `400 idempotency_error`. Validation errors (`400`) are not saved.
//! - A confirm's outcome is chosen by the payment method, after Stripe's test tokens:
//!
//! | `payment_method`                          | answer                                                      |
//! |-------------------------------------------|-------------------------------------------------------------|
//! | `pm_card_visa`, `pm_card_mastercard`, `tok_visa` | `200`, `succeeded`                                   |
//! | `pm_card_chargeDeclined`                  | `402 card_error`, `card_declined` / `generic_decline`       |
//! | `pm_card_chargeDeclinedInsufficientFunds` | `402 card_error`, `card_declined` / `insufficient_funds`    |
//! | `pm_card_threeDSecure2Required`           | `200`, `requires_action`, `next_action.redirect_to_url.url` |
//! | `pm_processing`                           | `200`, `processing`                                         |
//! | `pm_requires_payment_method`              | `200`, `requires_payment_method`, `do_not_honor`            |
//! | anything else                             | `400 resource_missing`, `param: payment_method`             |
//!
//! - Retrieval (the 0.2.0 plugin's `retrieve-payment`/`retrieve-refund`, plugins/stripe/README.md):
//!   `GET /v1/payment_intents/{id}`, `GET /v1/payment_intents/search?query=metadata['payment_id']:'…'`,
//!   `GET /v1/refunds/{id}` and `GET /v1/refunds?payment_intent=…` (one page), bearer-authenticated,
//!   `404 resource_missing` for an unknown id; never affected by [`StripePeer::set_lose_answers`].
//! - Refunds never exceed what was captured and not yet refunded (`400 amount_too_large`, or
//!   `charge_already_refunded` when nothing is left); only `succeeded` intents are refundable.
//! - [`sign_webhook`] makes a real `Stripe-Signature`; [`event_payload`] with
//!   [`StripePeer::payment_intent_object`] / [`StripePeer::charge_object`] makes the event body.
//! - Events as Stripe emits them for refunds (API version 2024-06-20): each refund, made
//!   through the API or at the "dashboard" ([`StripePeer::dashboard_refund`]), emits
//!   `charge.refunded` (the charge, cumulative `amount_refunded`, no `refunds` list) and
//!   `refund.created` (the refund object); [`StripePeer::update_refund`] emits `refund.updated`
//!   (and `refund.failed` when it fails). [`StripePeer::deliver_new`] POSTs the events not
//!   delivered yet to an endpoint, signed with `Stripe-Signature` as Stripe does, and
//!   [`StripePeer::redeliver`] sends one again (a retry).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Fault, RecordedRequest, Server, hex, hmac_sha256};

/// A PaymentIntent the peer created.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentIntent {
    pub id: String,
    pub amount: i64,
    /// Lower case, as sent.
    pub currency: String,
    pub status: String,
    pub payment_method: String,
    pub metadata: BTreeMap<String, String>,
    /// The Charge its confirmation created.
    pub charge: String,
    pub amount_received: i64,
    pub amount_refunded: i64,
    pub idempotency_key: Option<String>,
}

/// A Refund the peer created.
#[derive(Debug, Clone, PartialEq)]
pub struct Refund {
    pub id: String,
    pub payment_intent: String,
    pub amount: i64,
    pub reason: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub status: String,
}

pub struct StripePeer {
    server: Server,
    shared: Arc<Shared>,
}

struct Shared {
    secret_key: String,
    /// Executes requests but answers 500, as when Stripe's answer is lost on the way back.
    lose_answers: std::sync::atomic::AtomicBool,
    /// Known once the server is bound (for `next_action` URLs).
    origin: OnceLock<String>,
    state: Mutex<StripeState>,
}

/// An event the peer emitted.
#[derive(Debug, Clone)]
pub struct EmittedEvent {
    pub id: String,
    pub kind: String,
    /// The full body, as delivered.
    pub payload: String,
}

/// One delivery of an event to the endpoint, and what the endpoint answered.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event_id: String,
    pub kind: String,
    pub status: u16,
    pub body: Value,
    /// What the host made of it (`lessor-webhook-outcome`: `applied`, `ignored`, `duplicate`);
    /// empty when not answered 2xx.
    pub outcome: String,
}

#[derive(Default)]
struct StripeState {
    intents: Vec<PaymentIntent>,
    refunds: Vec<Refund>,
    events: Vec<EmittedEvent>,
    delivered: usize,
    saved: HashMap<String, Saved>,
    next_id: u64,
}

/// A saved answer for an idempotency key.
struct Saved {
    path: &'static str,
    params: Vec<(String, String)>,
    status: StatusCode,
    body: Value,
}

impl StripePeer {
    /// Starts a peer that accepts `secret_key` as the bearer token.
    pub async fn start(secret_key: &str) -> Self {
        let shared = Arc::new(Shared {
            secret_key: secret_key.to_owned(),
            lose_answers: Default::default(),
            origin: OnceLock::new(),
            state: Mutex::new(StripeState::default()),
        });
        let app = Router::new()
            .route("/v1/payment_intents", post(create_payment_intent))
            .route("/v1/payment_intents/search", get(search_payment_intents))
            .route("/v1/payment_intents/{id}", get(get_payment_intent))
            .route("/v1/refunds", post(create_refund).get(list_refunds))
            .route("/v1/refunds/{id}", get(get_refund))
            .with_state(shared.clone());
        let status_500 = r#"{"error":{"type":"api_error","message":"An unknown error occurred"}}"#;
        let server = Server::start(app, status_500).await;
        shared.origin.set(server.origin()).expect("origin set once");
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

    pub fn payment_intents(&self) -> Vec<PaymentIntent> {
        self.shared.state.lock().expect("peer lock").intents.clone()
    }

    pub fn payment_intent(&self, id: &str) -> Option<PaymentIntent> {
        self.payment_intents().into_iter().find(|pi| pi.id == id)
    }

    /// Charges created: one per confirmed PaymentIntent, declined ones included. A replayed
    /// idempotent request creates none.
    pub fn charges_created(&self) -> usize {
        self.shared.state.lock().expect("peer lock").intents.len()
    }

    pub fn refunds(&self) -> Vec<Refund> {
        self.shared.state.lock().expect("peer lock").refunds.clone()
    }

    /// Events emitted so far, in order.
    pub fn events(&self) -> Vec<EmittedEvent> {
        self.shared.state.lock().expect("peer lock").events.clone()
    }

    /// A refund made in Stripe's dashboard (not through the API): no idempotency key, no
    /// metadata of ours. Emits the same events as an API refund. Returns the refund's id.
    pub fn dashboard_refund(&self, intent_id: &str, amount: i64) -> String {
        let mut state = self.shared.state.lock().expect("peer lock");
        let index = state.intents.iter().position(|pi| pi.id == intent_id).expect("a PaymentIntent of the peer");
        assert!(state.intents[index].amount_received - state.intents[index].amount_refunded >= amount);
        make_refund(&mut state, index, amount, None, BTreeMap::new()).id
    }

    /// Changes a refund's status (`succeeded`, `failed`, …): emits `refund.updated`, and
    /// `refund.failed` when it failed (the money goes back to the charge then).
    pub fn update_refund(&self, refund_id: &str, status: &str) {
        let mut state = self.shared.state.lock().expect("peer lock");
        let index = state.refunds.iter().position(|r| r.id == refund_id).expect("a refund of the peer");
        state.refunds[index].status = status.to_owned();
        let refund = state.refunds[index].clone();
        let intent = state.intents.iter().position(|pi| pi.id == refund.payment_intent).expect("its intent");
        if status == "failed" {
            state.intents[intent].amount_refunded -= refund.amount;
        }
        let object = refund_json(&refund, &state.intents[intent]);
        emit(&mut state, "refund.updated", object.clone());
        if status == "failed" {
            emit(&mut state, "refund.failed", object);
        }
    }

    /// POSTs every event not delivered yet to `endpoint`, signed with `webhook_secret` at the
    /// current time, in order; returns what the endpoint answered to each.
    pub async fn deliver_new(&self, endpoint: &str, webhook_secret: &str) -> Vec<Delivery> {
        let events = {
            let mut state = self.shared.state.lock().expect("peer lock");
            let new = state.events[state.delivered..].to_vec();
            state.delivered = state.events.len();
            new
        };
        let mut deliveries = Vec::new();
        for event in events {
            deliveries.push(deliver(endpoint, webhook_secret, &event).await);
        }
        deliveries
    }

    /// From now on, execute requests (and save them under their idempotency key) but answer
    /// `500`, as when the answer is lost: the caller cannot know what happened.
    pub fn set_lose_answers(&self, lose: bool) {
        self.shared.lose_answers.store(lose, std::sync::atomic::Ordering::SeqCst);
    }

    /// Marks every event emitted so far as delivered without sending it (a test then sends
    /// them in an order of its choosing with [`Self::redeliver`]).
    pub fn skip_undelivered(&self) {
        let mut state = self.shared.state.lock().expect("peer lock");
        state.delivered = state.events.len();
    }

    /// Delivers event `event_id` again, as Stripe's retries do.
    pub async fn redeliver(&self, endpoint: &str, webhook_secret: &str, event_id: &str) -> Delivery {
        let event = self.events().into_iter().find(|e| e.id == event_id).expect("an emitted event");
        deliver(endpoint, webhook_secret, &event).await
    }

    /// Switches the peer's behaviour; `Down` returns once connections are refused.
    pub async fn set_fault(&self, fault: Fault) {
        self.server.set_fault(fault).await;
    }

    /// The PaymentIntent `id` as Stripe would put it in an event's `data.object`.
    pub fn payment_intent_object(&self, id: &str) -> Option<Value> {
        self.payment_intent(id).map(|pi| intent_json(&pi))
    }

    /// The Charge of PaymentIntent `intent_id` as in a `charge.*` event's `data.object`.
    pub fn charge_object(&self, intent_id: &str) -> Option<Value> {
        self.payment_intent(intent_id).map(|pi| charge_json(&pi))
    }
}

/// An event body as Stripe delivers it: `{"id", "object": "event", "type", "created", "data": {"object"}}`.
pub fn event_payload(event_id: &str, event_type: &str, object: Value, created: i64) -> String {
    json!({
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "livemode": false,
        "pending_webhooks": 1,
        "type": event_type,
        "data": { "object": object },
    })
    .to_string()
}

/// A `Stripe-Signature` header for `payload` signed with `secret` at `unix_ts`:
/// `t=<unix_ts>,v1=<hex HMAC-SHA256(secret, "<unix_ts>.<payload>")>`.
pub fn sign_webhook(secret: &str, payload: &str, unix_ts: i64) -> String {
    let signed = format!("{unix_ts}.{payload}");
    format!("t={unix_ts},v1={}", hex(&hmac_sha256(secret.as_bytes(), signed.as_bytes())))
}

/// What an endpoint did with a request.
enum Answer {
    /// Executed: saved under the idempotency key.
    Executed(StatusCode, Value),
    /// Refused before executing: not saved.
    Refused(StatusCode, Value),
}

/// Stripe's error body: `{"error": {"type", "message", "code"?, "param"?}}`.
fn error_body(kind: &str, code: Option<&str>, param: Option<&str>, message: &str) -> Value {
    let mut error = json!({ "type": kind, "message": message });
    if let Some(code) = code {
        error["code"] = json!(code);
    }
    if let Some(param) = param {
        error["param"] = json!(param);
    }
    json!({ "error": error })
}

/// A `400 invalid_request_error`, not saved under the idempotency key.
fn invalid(code: &str, param: Option<&str>, message: &str) -> Answer {
    Answer::Refused(StatusCode::BAD_REQUEST, error_body("invalid_request_error", Some(code), param, message))
}

fn respond(status: StatusCode, body: &Value, replayed: bool) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response();
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

async fn create_payment_intent(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    call(&shared, "/v1/payment_intents", &headers, &body, confirm_payment_intent)
}

async fn create_refund(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    call(&shared, "/v1/refunds", &headers, &body, refund)
}

/// The bearer key of a GET; `None` when it is right.
fn refused_key(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok());
    (bearer != Some(&format!("Bearer {}", shared.secret_key))).then(|| {
        respond(
            StatusCode::UNAUTHORIZED,
            &error_body("invalid_request_error", None, None, "Invalid API Key provided"),
            false,
        )
    })
}

fn missing(what: &str, id: &str) -> Response {
    let body =
        error_body("invalid_request_error", Some("resource_missing"), Some("id"), &format!("No such {what}: '{id}'"));
    respond(StatusCode::NOT_FOUND, &body, false)
}

async fn get_payment_intent(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = refused_key(&shared, &headers) {
        return refused;
    }
    let state = shared.state.lock().expect("peer lock");
    match state.intents.iter().find(|pi| pi.id == id) {
        Some(pi) => respond(StatusCode::OK, &intent_json(pi), false),
        None => missing("payment_intent", &id),
    }
}

/// Only the query the plugin sends: `metadata['payment_id']:'<id>'` (`'` and `\` escaped).
async fn search_payment_intents(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refused_key(&shared, &headers) {
        return refused;
    }
    let query = params.get("query").map(String::as_str).unwrap_or_default();
    let Some(quoted) = query.strip_prefix("metadata['payment_id']:'").and_then(|q| q.strip_suffix('\'')) else {
        return respond(
            StatusCode::BAD_REQUEST,
            &error_body("invalid_request_error", None, Some("query"), "unsupported query"),
            false,
        );
    };
    let wanted = quoted.replace("\\'", "'").replace("\\\\", "\\");
    let state = shared.state.lock().expect("peer lock");
    let data: Vec<Value> =
        state.intents.iter().filter(|pi| pi.metadata.get("payment_id") == Some(&wanted)).map(intent_json).collect();
    respond(StatusCode::OK, &json!({ "object": "search_result", "data": data, "has_more": false }), false)
}

async fn get_refund(State(shared): State<Arc<Shared>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(refused) = refused_key(&shared, &headers) {
        return refused;
    }
    let state = shared.state.lock().expect("peer lock");
    let Some(refund) = state.refunds.iter().find(|r| r.id == id) else { return missing("refund", &id) };
    let pi = state.intents.iter().find(|pi| pi.id == refund.payment_intent).expect("its intent");
    respond(StatusCode::OK, &refund_json(refund, pi), false)
}

/// The refunds of `payment_intent`, all on one page.
async fn list_refunds(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refused_key(&shared, &headers) {
        return refused;
    }
    let intent = params.get("payment_intent").cloned().unwrap_or_default();
    let state = shared.state.lock().expect("peer lock");
    let Some(pi) = state.intents.iter().find(|pi| pi.id == intent) else { return missing("payment_intent", &intent) };
    let data: Vec<Value> =
        state.refunds.iter().filter(|r| r.payment_intent == intent).map(|r| refund_json(r, pi)).collect();
    respond(StatusCode::OK, &json!({ "object": "list", "data": data, "has_more": false }), false)
}

/// Authentication, form decoding and idempotency around one endpoint.
fn call(
    shared: &Shared,
    path: &'static str,
    headers: &HeaderMap,
    body: &[u8],
    endpoint: fn(&Shared, &mut StripeState, &Form, Option<&str>) -> Answer,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if header("authorization") != Some(&format!("Bearer {}", shared.secret_key)) {
        let body = error_body("invalid_request_error", None, None, "Invalid API Key provided");
        return respond(StatusCode::UNAUTHORIZED, &body, false);
    }
    if header("content-type") != Some("application/x-www-form-urlencoded") {
        let body = error_body("invalid_request_error", None, None, "Expected a form-encoded body");
        return respond(StatusCode::BAD_REQUEST, &body, false);
    }
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let mut sorted = params.clone();
    sorted.sort();
    let key = header("idempotency-key").map(str::to_owned);

    let mut state = shared.state.lock().expect("peer lock");
    if let Some(saved) = key.as_ref().and_then(|k| state.saved.get(k)) {
        if saved.path == path && saved.params == sorted {
            return respond(saved.status, &saved.body, true);
        }
        let message =
            "Keys for idempotent requests can only be used with the same parameters they were first used with.";
        return respond(StatusCode::BAD_REQUEST, &error_body("idempotency_error", None, None, message), false);
    }
    match endpoint(shared, &mut state, &Form(params), key.as_deref()) {
        Answer::Executed(status, body) => {
            if let Some(key) = key {
                state.saved.insert(key, Saved { path, params: sorted, status, body: body.clone() });
            }
            if shared.lose_answers.load(std::sync::atomic::Ordering::SeqCst) {
                let lost = error_body("api_error", None, None, "An unknown error occurred");
                return respond(StatusCode::INTERNAL_SERVER_ERROR, &lost, false);
            }
            respond(status, &body, false)
        }
        Answer::Refused(status, body) => respond(status, &body, false),
    }
}

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn metadata(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("metadata[")?.strip_suffix(']')?.to_owned(), v.clone())))
            .collect()
    }

    /// The first parameter Stripe would not know, if any.
    fn unknown(&self, known: &[&str]) -> Option<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).find(|k| !known.contains(k) && !k.starts_with("metadata["))
    }
}

fn intent_json(pi: &PaymentIntent) -> Value {
    json!({
        "id": pi.id,
        "object": "payment_intent",
        "amount": pi.amount,
        "amount_received": pi.amount_received,
        "currency": pi.currency,
        "status": pi.status,
        "payment_method": pi.payment_method,
        "latest_charge": pi.charge,
        "metadata": pi.metadata,
        "livemode": false,
        "next_action": null,
        "last_payment_error": null,
    })
}

fn confirm_payment_intent(shared: &Shared, state: &mut StripeState, form: &Form, key: Option<&str>) -> Answer {
    const KNOWN: &[&str] = &[
        "amount",
        "currency",
        "payment_method",
        "payment_method_types[]",
        "confirm",
        "description",
        "customer",
        "off_session",
        "return_url",
        "capture_method",
    ];
    if let Some(unknown) = form.unknown(KNOWN) {
        let message = format!("Received unknown parameter: {unknown}");
        return invalid("parameter_unknown", Some(unknown), &message);
    }
    let Some(amount) = form.get("amount").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0) else {
        let message = "Missing or invalid amount";
        return invalid("parameter_missing", Some("amount"), message);
    };
    let currency = form.get("currency").unwrap_or_default();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        let message = "Invalid currency: must be a lower-case three-letter ISO code";
        return invalid("invalid_currency", Some("currency"), message);
    }
    let payment_method = form.get("payment_method").unwrap_or_default().to_owned();
    let outcome = match payment_method.as_str() {
        "pm_card_visa" | "pm_card_mastercard" | "tok_visa" => "succeeded",
        "pm_card_chargeDeclined" => "generic_decline",
        "pm_card_chargeDeclinedInsufficientFunds" => "insufficient_funds",
        "pm_card_threeDSecure2Required" => "requires_action",
        "pm_processing" => "processing",
        "pm_requires_payment_method" => "requires_payment_method",
        other => {
            let message = format!("No such PaymentMethod: '{other}'");
            return invalid("resource_missing", Some("payment_method"), &message);
        }
    };

    state.next_id += 1;
    let n = state.next_id;
    let mut pi = PaymentIntent {
        id: format!("pi_peer{n:06}"),
        amount,
        currency: currency.to_owned(),
        status: String::new(),
        payment_method,
        metadata: form.metadata(),
        charge: format!("ch_peer{n:06}"),
        amount_received: 0,
        amount_refunded: 0,
        idempotency_key: key.map(str::to_owned),
    };
    if form.get("confirm") != Some("true") {
        pi.status = "requires_confirmation".into();
        let body = intent_json(&pi);
        state.intents.push(pi);
        return Answer::Executed(StatusCode::OK, body);
    }
    let card_error = |decline_code: &str| {
        json!({
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": "Your card was declined.",
        })
    };
    let (status, body) = match outcome {
        "succeeded" | "processing" => {
            pi.status = outcome.into();
            if outcome == "succeeded" {
                pi.amount_received = amount;
            }
            (StatusCode::OK, intent_json(&pi))
        }
        "requires_action" => {
            pi.status = "requires_action".into();
            let mut body = intent_json(&pi);
            body["next_action"] = json!({
                "type": "redirect_to_url",
                "redirect_to_url": { "url": format!("{}/3ds/{}", shared.origin.get().map_or("", String::as_str), pi.id), "return_url": null },
            });
            (StatusCode::OK, body)
        }
        "requires_payment_method" => {
            pi.status = "requires_payment_method".into();
            let mut body = intent_json(&pi);
            body["last_payment_error"] = card_error("do_not_honor");
            (StatusCode::OK, body)
        }
        decline_code => {
            // A declined confirm is a 402 whose error carries the intent, as Stripe does.
            pi.status = "requires_payment_method".into();
            let mut intent = intent_json(&pi);
            intent["last_payment_error"] = card_error(decline_code);
            let mut error = card_error(decline_code);
            error["charge"] = json!(pi.charge);
            error["payment_intent"] = intent;
            (StatusCode::PAYMENT_REQUIRED, json!({ "error": error }))
        }
    };
    state.intents.push(pi);
    Answer::Executed(status, body)
}

fn refund(_shared: &Shared, state: &mut StripeState, form: &Form, _key: Option<&str>) -> Answer {
    const KNOWN: &[&str] = &["payment_intent", "charge", "amount", "reason"];
    if let Some(unknown) = form.unknown(KNOWN) {
        let message = format!("Received unknown parameter: {unknown}");
        return invalid("parameter_unknown", Some(unknown), &message);
    }
    let reason = form.get("reason").map(str::to_owned);
    if let Some(reason) = &reason
        && !["duplicate", "fraudulent", "requested_by_customer"].contains(&reason.as_str())
    {
        let message =
            format!("Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer ({reason})");
        return invalid("parameter_invalid_string", Some("reason"), &message);
    }
    let intent_id = form.get("payment_intent").unwrap_or_default();
    let Some(index) = state.intents.iter().position(|pi| pi.id == intent_id) else {
        let message = format!("No such payment_intent: '{intent_id}'");
        return invalid("resource_missing", Some("payment_intent"), &message);
    };
    let pi = &state.intents[index];
    if pi.status != "succeeded" {
        let message = format!("This PaymentIntent ({}) does not have a successful charge to refund.", pi.id);
        return invalid("charge_not_refundable", None, &message);
    }
    let left = pi.amount_received - pi.amount_refunded;
    if left == 0 {
        let message = format!("Charge {} has already been refunded.", pi.charge);
        return invalid("charge_already_refunded", None, &message);
    }
    let amount = match form.get("amount").map(str::parse::<i64>) {
        None => left,
        Some(Ok(amount)) if amount > 0 => amount,
        Some(_) => {
            return invalid("parameter_invalid_integer", Some("amount"), "Invalid integer");
        }
    };
    if amount > left {
        let message = format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({left})");
        return invalid("amount_too_large", Some("amount"), &message);
    }

    let refund = make_refund(state, index, amount, reason, form.metadata());
    let body = refund_json(&refund, &state.intents[index]);
    Answer::Executed(StatusCode::OK, body)
}

/// Creates a succeeded refund of intent `index` and emits its events.
fn make_refund(
    state: &mut StripeState,
    index: usize,
    amount: i64,
    reason: Option<String>,
    metadata: BTreeMap<String, String>,
) -> Refund {
    state.next_id += 1;
    let refund = Refund {
        id: format!("re_peer{:06}", state.next_id),
        payment_intent: state.intents[index].id.clone(),
        amount,
        reason,
        metadata,
        status: "succeeded".into(),
    };
    state.intents[index].amount_refunded += amount;
    state.refunds.push(refund.clone());
    let charge = charge_json(&state.intents[index]);
    emit(state, "charge.refunded", charge);
    let object = refund_json(&refund, &state.intents[index]);
    emit(state, "refund.created", object);
    refund
}

fn refund_json(refund: &Refund, pi: &PaymentIntent) -> Value {
    json!({
        "id": refund.id,
        "object": "refund",
        "amount": refund.amount,
        "charge": pi.charge,
        "currency": pi.currency,
        "payment_intent": pi.id,
        "reason": refund.reason,
        "metadata": refund.metadata,
        "status": refund.status,
        "failure_reason": if refund.status == "failed" { json!("lost_or_stolen_card") } else { Value::Null },
    })
}

fn charge_json(pi: &PaymentIntent) -> Value {
    json!({
        "id": pi.charge,
        "object": "charge",
        "amount": pi.amount,
        "amount_captured": pi.amount_received,
        "amount_refunded": pi.amount_refunded,
        "currency": pi.currency,
        "payment_intent": pi.id,
        "refunded": pi.amount_refunded > 0 && pi.amount_refunded == pi.amount_received,
        "status": if pi.status == "succeeded" { "succeeded" } else { "failed" },
    })
}

fn emit(state: &mut StripeState, kind: &str, object: Value) {
    state.next_id += 1;
    let id = format!("evt_peer{:06}", state.next_id);
    let payload = event_payload(&id, kind, object, super::unix_now());
    state.events.push(EmittedEvent { id, kind: kind.to_owned(), payload });
}

async fn deliver(endpoint: &str, webhook_secret: &str, event: &EmittedEvent) -> Delivery {
    let signature = sign_webhook(webhook_secret, &event.payload, super::unix_now());
    let response = reqwest::Client::new()
        .post(endpoint)
        .header("content-type", "application/json; charset=utf-8")
        .header("stripe-signature", signature)
        .header("user-agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .body(event.payload.clone())
        .send()
        .await
        .expect("deliver a webhook");
    let status = response.status().as_u16();
    let outcome =
        response.headers().get("lessor-webhook-outcome").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = response.json().await.unwrap_or(Value::Null);
    Delivery { event_id: event.id.clone(), kind: event.kind.clone(), status, body, outcome }
}
