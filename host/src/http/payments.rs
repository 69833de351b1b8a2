//! `/api/v1/payments` and a lease's payment method. Creating a payment or a refund needs an
//! `Idempotency-Key` header: the same key with the same body answers the first response again
//! (status and body), with another body 422, while the first is still running 409. Keys are
//! scoped per user and kept at least 24 h. Card numbers are refused before anything is stored.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use lessor_auth::Principal;
use lessor_payments::{
    Begin, CREATE_PAYMENT, Claim, Conflict, Fingerprint, IdempotencyError, IdempotencyKey, KeyedAnswer, KeyedRequest,
    LeasePaymentMethod, NewRefund, Payment, PaymentCursor, PaymentError, REFUND_PAYMENT, Refund, Scope,
    ValidationError,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, FieldProblem, Problem};
use super::extract::{ApiJson, CurrentUser, uuid_param};
use super::leases::viewer;
use super::schema;
use super::{AppState, ChainView};
use lessor_chain::{ChainRecordView, ChainStatus};
use lessor_payments::PaymentStatus;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(get_payment))
        .routes(routes!(create_refund, list_refunds))
        .routes(routes!(put_payment_method, get_payment_method, delete_payment_method))
}

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The body of `POST /api/v1/payments` (the document's shape; `lessor_payments::NewPayment`
/// parses it, reporting every invalid field).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PaymentRequest {
    lease_id: Uuid,
    /// The installment this pays, if any.
    installment_id: Option<Uuid>,
    #[schema(schema_with = schema::amount)]
    amount: i64,
    #[schema(schema_with = schema::currency)]
    currency: String,
    #[schema(schema_with = schema::provider)]
    provider: String,
    #[schema(schema_with = schema::payment_method)]
    payment_method: Value,
}

/// A SEPA direct-debit mandate as `payment_method` for the `bank` provider.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SepaMandateRequest {
    #[schema(schema_with = schema::iban)]
    iban: String,
    #[schema(schema_with = schema::optional_bic, required = false)]
    bic: Option<String>,
    #[schema(schema_with = schema::mandate_reference)]
    mandate_reference: String,
    #[schema(schema_with = schema::mandate_signed_on)]
    mandate_signed_on: String,
    #[schema(schema_with = schema::debtor_name)]
    debtor_name: String,
}

/// The body of `POST /api/v1/payments/{id}/refunds`: without `amount`, what is left.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RefundRequest {
    #[schema(schema_with = schema::optional_amount, required = false)]
    amount: Option<i64>,
    #[schema(schema_with = schema::optional_refund_reason, required = false)]
    reason: Option<String>,
}

/// The body of `PUT /api/v1/leases/{id}/payment-method`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct PaymentMethodRequest {
    #[schema(schema_with = schema::provider)]
    provider: String,
    #[schema(schema_with = schema::payment_method)]
    payment_method: Value,
}

/// A payment as clients see it. Amounts are integer minor units of `currency`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    /// `pending`, `processing`, `requires_action`, `succeeded`, `failed`, `partially_refunded`,
    /// `refunded`, `returned`.
    pub status: String,
    pub provider: String,
    pub provider_tx_id: Option<String>,
    pub lease_id: Uuid,
    pub installment_id: Option<Uuid>,
    pub amount: i64,
    pub currency: String,
    pub refunded_amount: i64,
    pub next_action_url: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub return_reason: Option<String>,
    /// Reconciliation gave up; an operator looks at it.
    pub needs_attention: bool,
    /// The payment's record on TON: `not_configured` (no chain worker), `pending`, `signed`,
    /// `submitted`, `confirmed`, `expired`, `failed`; absent for payments that did not complete.
    pub chain_status: Option<String>,
    /// The TON transaction that recorded the payment, once confirmed.
    pub blockchain_tx_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentView {
    /// The payment with its chain record, if any.
    pub fn new(p: Payment, chain: &ChainView, record: Option<&ChainRecordView>) -> Self {
        let completed =
            matches!(p.status, PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded | PaymentStatus::Refunded);
        let chain_status = match ChainStatus::of_payment(chain.enabled, record) {
            Some(status) => Some(status.as_str().to_owned()),
            // The worker records completed payments; until it has, the record is pending.
            None if completed => Some(ChainStatus::Pending.as_str().to_owned()),
            None => None,
        };
        let blockchain_tx_hash = record.and_then(|r| r.blockchain_tx_hash().map(str::to_owned));
        Self {
            chain_status,
            blockchain_tx_hash,
            id: p.id,
            status: p.status.to_string(),
            provider: p.provider,
            provider_tx_id: p.provider_tx_id,
            lease_id: p.lease_id,
            installment_id: p.installment_id,
            amount: p.amount,
            currency: p.currency.code().to_owned(),
            refunded_amount: p.refunded_amount,
            next_action_url: p.next_action_url,
            failure_code: p.failure_code,
            failure_message: p.failure_message,
            return_reason: p.return_reason,
            needs_attention: p.needs_attention,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }

    async fn one(state: &AppState, p: Payment) -> Result<Self, ApiError> {
        let record = if state.chain.enabled { chain_lookup(state.chain.store.status_of(p.id).await)? } else { None };
        Ok(Self::new(p, &state.chain, record.as_ref()))
    }
}

fn chain_lookup<T>(result: Result<T, lessor_store::sqlx::Error>) -> Result<T, ApiError> {
    result.map_err(|e| ApiError::Unavailable(format!("reading chain records: {e}")))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `succeeded`, `failed`.
    pub status: String,
    pub reason: Option<String>,
    pub provider_refund_id: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Refund> for RefundView {
    fn from(r: Refund) -> Self {
        Self {
            id: r.id,
            payment_id: r.payment_id,
            amount: r.amount,
            currency: r.currency.code().to_owned(),
            status: r.status.to_string(),
            reason: r.reason,
            provider_refund_id: r.provider_refund_id,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PaymentList {
    pub items: Vec<PaymentView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct RefundList {
    pub items: Vec<RefundView>,
}

/// How a lease's installments are collected. The method itself is shown masked.
#[derive(Serialize, ToSchema)]
pub struct PaymentMethodView {
    pub lease_id: Uuid,
    pub provider: String,
    /// `token` or `sepa_mandate`.
    pub kind: String,
    /// e.g. `pm_1…` or `DE…3000`.
    pub masked: String,
    pub updated_at: DateTime<Utc>,
}

impl From<LeasePaymentMethod> for PaymentMethodView {
    fn from(m: LeasePaymentMethod) -> Self {
        Self {
            lease_id: m.lease_id,
            provider: m.provider,
            kind: m.method.kind().to_owned(),
            masked: m.method.masked(),
            updated_at: m.updated_at,
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Invalid(v) => validation(v),
            PaymentError::NotFound => ApiError::NotFound("no such payment or lease".into()),
            PaymentError::Forbidden => ApiError::Forbidden,
            PaymentError::Conflict(c) => ApiError::specific(StatusCode::CONFLICT, conflict_slug(c), c.to_string()),
            PaymentError::ProviderUnavailable(why) => ApiError::ServerError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                slug: "provider-unavailable",
                detail: "the payment provider could not be asked; nothing was charged",
                cause: why,
                retry_after: Some(std::time::Duration::from_secs(30)),
            },
            PaymentError::Store(cause) => ApiError::Unavailable(cause),
        }
    }
}

fn conflict_slug(c: Conflict) -> &'static str {
    match c {
        Conflict::InstallmentPaid => "installment-paid",
        Conflict::InstallmentBusy => "installment-busy",
        Conflict::NotRefundable(_) => "not-refundable",
        Conflict::KeyTakenOver => "idempotency-key-taken-over",
    }
}

fn validation(v: ValidationError) -> ApiError {
    ApiError::Validation(v.into_errors().into_iter().map(|f| FieldProblem::new(f.field, f.reason)).collect())
}

impl From<IdempotencyError> for ApiError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::LostClaim => {
                ApiError::specific(StatusCode::CONFLICT, "idempotency-key-taken-over", e.to_string())
            }
            other => ApiError::Unavailable(other.to_string()),
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or_else(|| {
        ApiError::specific(
            StatusCode::BAD_REQUEST,
            "idempotency-key-missing",
            "send an Idempotency-Key header (1-255 visible ASCII characters), the same on every retry",
        )
    })?;
    let text = value.to_str().unwrap_or("");
    // The key is stored: a card number is refused there as in the body (PCI DSS 3.3).
    if lessor_payments::card::contains_card_number(text) {
        return Err(ApiError::Validation(vec![FieldProblem::new(
            "Idempotency-Key",
            lessor_payments::CARD_NUMBER_REFUSED,
        )]));
    }
    IdempotencyKey::parse(text).map_err(|_| {
        ApiError::specific(
            StatusCode::BAD_REQUEST,
            "idempotency-key-invalid",
            "the Idempotency-Key must be 1-255 visible ASCII characters",
        )
    })
}

/// A JSON answer under an idempotency key: the first one (with its `Location`) or a replay.
fn keyed_response(status: StatusCode, body: String, location: Option<String>, replayed: bool) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if replayed {
        h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        h.insert(header::LOCATION, location);
    }
    response
}

fn in_flight() -> ApiError {
    ApiError::Specific {
        status: StatusCode::CONFLICT,
        slug: "idempotency-key-in-flight",
        detail: "a request with this Idempotency-Key is still being processed; retry shortly".into(),
        retry_after: Some(std::time::Duration::from_secs(1)),
    }
}

fn key_reused() -> ApiError {
    ApiError::specific(
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
        "this Idempotency-Key was used with a different request body",
    )
}

/// Runs `work` once per (user, operation, key): replays a stored answer, refuses a reuse with
/// another body (422) or a concurrent duplicate (409), stores the answer of a success.
async fn idempotently<F, Fut>(
    state: &AppState,
    principal: &Principal,
    operation: &str,
    headers: &HeaderMap,
    body: &Value,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Claim) -> Fut,
    Fut: Future<Output = Result<(StatusCode, Option<String>, String), PaymentError>>,
{
    let key = idempotency_key(headers)?;
    let scope = Scope::user(principal.user_id, operation);
    match state.idempotency.begin(&scope, &key, &Fingerprint::of_json(body)).await? {
        Begin::Replay { status, body } => {
            Ok(keyed_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body, None, true))
        }
        Begin::InFlight => Err(in_flight()),
        Begin::Mismatch => Err(key_reused()),
        Begin::New(claim) => match work(claim.clone()).await {
            Ok((status, location, body)) => {
                state.idempotency.complete(&claim, status.as_u16(), &body).await?;
                Ok(keyed_response(status, body, location, false))
            }
            Err(e) => {
                if let Err(release) = state.idempotency.release(&claim).await {
                    tracing::warn!(error = %release, "could not release an idempotency key");
                }
                Err(e.into())
            }
        },
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, PaymentError> {
    serde_json::to_string(value).map_err(|e| PaymentError::Store(format!("encoding the response: {e}")))
}

/// Take a payment through a provider plugin.
#[utoipa::path(
    post, path = "/api/v1/payments", tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "the same on every retry of this request: 1-255 visible ASCII characters", pattern = r"^[!-~]{1,255}$")),
    request_body = PaymentRequest,
    responses(
        (status = 201, body = PaymentView),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_payment(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    // Refused before the key is touched: nothing of an invalid (or card-bearing) body is kept.
    let new = state.payments.parse_payment(&body, Utc::now().date_naive()).map_err(validation)?;
    let key = idempotency_key(&headers)?;
    let scope = Scope::user(p.user_id, CREATE_PAYMENT);
    let fingerprint = Fingerprint::of_json(&body);
    let request = KeyedRequest { keys: &state.idempotency, scope: &scope, key: &key, fingerprint: &fingerprint };
    let chain = &state.chain;
    // Just created: the chain worker cannot have a record of it yet.
    let render = |payment: &Payment| to_json(&PaymentView::new(payment.clone(), chain, None));
    match state.payments.create_keyed(viewer(&p), &new, request, render).await? {
        KeyedAnswer::Ran { payment, status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED);
            Ok(keyed_response(status, body, Some(format!("/api/v1/payments/{}", payment.id)), false))
        }
        KeyedAnswer::Replay { status, body } => {
            Ok(keyed_response(StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body, None, true))
        }
        KeyedAnswer::InFlight => Err(in_flight()),
        KeyedAnswer::Mismatch => Err(key_reused()),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct ListParams {
    /// The lease whose payments to list.
    #[param(value_type = Uuid, required = true)]
    pub lease_id: Option<String>,
    /// From the previous page's `next` (opaque).
    #[param(max_length = 64, pattern = r"^[+-]?[0-9]{1,19}\.[0-9a-fA-F-]{32,36}$")]
    pub after: Option<String>,
    /// 1 to 100; default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// A lease's payments, newest first.
#[utoipa::path(
    get, path = "/api/v1/payments", tag = "payments", params(ListParams),
    security(("bearer" = [])),
    responses((status = 200, body = PaymentList), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn list_payments(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Query(params): Query<ListParams>,
) -> Result<Json<PaymentList>, ApiError> {
    let mut errors = Vec::new();
    let lease_id = match params.lease_id.as_deref() {
        None => {
            errors.push(FieldProblem::new("lease_id", "is required"));
            None
        }
        Some(s) => uuid_param(s, "lease_id").map_err(|e| errors.extend(e.into_field_problems())).ok(),
    };
    let after = match params.after.as_deref() {
        None => None,
        Some(s) => PaymentCursor::decode(s).map_err(|e| errors.push(FieldProblem::new("after", e.to_string()))).ok(),
    };
    let limit = match params.limit.as_deref() {
        None => 20,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=lessor_payments::MAX_PAGE).contains(&n) => n,
            _ => {
                errors.push(FieldProblem::new("limit", "must be an integer from 1 to 100"));
                20
            }
        },
    };
    let Some(lease_id) = lease_id.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let page = state.payments.list_by_lease(viewer(&p), lease_id, after.as_ref(), limit).await?;
    let records = if state.chain.enabled {
        let ids: Vec<Uuid> = page.items.iter().map(|p| p.id).collect();
        chain_lookup(state.chain.store.statuses_of(&ids).await)?
    } else {
        Default::default()
    };
    Ok(Json(PaymentList {
        items: page
            .items
            .into_iter()
            .map(|p| {
                let record = records.get(&p.id);
                PaymentView::new(p, &state.chain, record)
            })
            .collect(),
        next: page.next.map(|c| c.encode()),
    }))
}

fn parse_id(raw: &str, what: &str) -> Result<Uuid, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("no such {what}")))
}

/// One payment.
#[utoipa::path(
    get, path = "/api/v1/payments/{id}", tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the payment")),
    responses((status = 200, body = PaymentView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_payment(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let payment = state.payments.get(viewer(&p), parse_id(&id, "payment")?).await?;
    Ok(Json(PaymentView::one(&state, payment).await?))
}

/// Refund a payment, wholly or in part (staff). Never more than was captured.
#[utoipa::path(
    post, path = "/api/v1/payments/{id}/refunds", tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the payment"), ("Idempotency-Key" = String, Header, description = "the same on every retry of this request: 1-255 visible ASCII characters", pattern = r"^[!-~]{1,255}$")),
    request_body = RefundRequest,
    responses(
        (status = 201, body = RefundView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_refund(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let payment_id = parse_id(&id, "payment")?;
    let new = NewRefund::parse(&body).map_err(validation)?;
    let viewer = viewer(&p);
    if !viewer.is_staff {
        return Err(ApiError::Forbidden);
    }
    let payments = state.payments.clone();
    // The key is scoped to the payment too: one key per refund of that payment.
    let operation = format!("{REFUND_PAYMENT}:{payment_id}");
    idempotently(&state, &p, &operation, &headers, &body, |claim| async move {
        let refund = payments.refund(viewer, payment_id, &new, Some(&claim)).await?;
        let location = format!("/api/v1/payments/{payment_id}/refunds");
        Ok((StatusCode::CREATED, Some(location), to_json(&RefundView::from(refund))?))
    })
    .await
}

/// A payment's refunds.
#[utoipa::path(
    get, path = "/api/v1/payments/{id}/refunds", tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the payment")),
    responses((status = 200, body = RefundList), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn list_refunds(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<RefundList>, ApiError> {
    let refunds = state.payments.refunds(viewer(&p), parse_id(&id, "payment")?).await?;
    Ok(Json(RefundList { items: refunds.into_iter().map(Into::into).collect() }))
}

/// Set how the lease's installments are collected: `{"provider", "payment_method"}` where the
/// method is a provider token or a SEPA mandate object.
#[utoipa::path(
    put, path = "/api/v1/leases/{id}/payment-method", tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the lease")),
    request_body = PaymentMethodRequest,
    responses((status = 200, body = PaymentMethodView), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
async fn put_payment_method(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<PaymentMethodView>, ApiError> {
    let lease_id = parse_id(&id, "lease")?;
    let method = state.payments.set_payment_method(viewer(&p), lease_id, &body, Utc::now().date_naive()).await?;
    Ok(Json(method.into()))
}

/// The lease's payment method (masked).
#[utoipa::path(
    get, path = "/api/v1/leases/{id}/payment-method", tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the lease")),
    responses((status = 200, body = PaymentMethodView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_payment_method(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<PaymentMethodView>, ApiError> {
    let lease_id = parse_id(&id, "lease")?;
    match state.payments.payment_method(viewer(&p), lease_id).await? {
        Some(method) => Ok(Json(method.into())),
        None => Err(ApiError::NotFound("this lease has no payment method".into())),
    }
}

/// Remove the lease's payment method (collection stops).
#[utoipa::path(
    delete, path = "/api/v1/leases/{id}/payment-method", tag = "payments",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "the lease")),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn delete_payment_method(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let lease_id = parse_id(&id, "lease")?;
    if state.payments.remove_payment_method(viewer(&p), lease_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("this lease has no payment method".into()))
    }
}
