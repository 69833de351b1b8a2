//! `/api/v1/leases`: create, read, list and search, status changes, installment schedules.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, Utc};
use lessor_auth::{Principal, Role};
use lessor_leases::repo::{Cursor, LeaseFilter};
use lessor_leases::{Installment, Lease, LeaseError, LeaseInput, LeaseStatus, NewLease, Viewer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, FieldProblem, Problem};
use super::extract::{ApiJson, CurrentUser, from_json_value, uuid_param};
use super::schema;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_lease, list_leases))
        .routes(routes!(get_lease, update_lease))
        .routes(routes!(lease_schedule))
}

pub fn viewer(p: &Principal) -> Viewer {
    Viewer { user_id: p.user_id, is_staff: p.role.grants(Role::Operator) }
}

impl From<LeaseError> for ApiError {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::NotFound => Self::NotFound("no such lease".into()),
            LeaseError::Forbidden => Self::Forbidden,
            LeaseError::UnknownOwner => Self::field("owner_id", "no such user"),
            LeaseError::IllegalTransition(t) => Self::Conflict(t.to_string()),
            LeaseError::Store(cause) => Self::Unavailable(cause),
        }
    }
}

/// A lease id from the path; anything else is a 422 naming `id`.
fn lease_id(raw: &str) -> Result<Uuid, ApiError> {
    uuid_param(raw, "id")
}

#[derive(Serialize, ToSchema)]
pub struct VehicleView {
    pub vin: String,
    pub make: String,
    pub model: String,
    pub year: u16,
    #[schema(example = "luxury")]
    pub category: String,
}

#[derive(Serialize, ToSchema)]
pub struct LeaseView {
    pub id: Uuid,
    pub owner_id: Uuid,
    /// `draft`, `active`, `completed` or `terminated`.
    pub status: String,
    pub vehicle: VehicleView,
    pub start_date: NaiveDate,
    pub term_months: u16,
    /// Minor units of `currency`.
    pub monthly_amount: i64,
    /// Minor units of `currency`; collected at signing, not an installment.
    pub deposit: i64,
    #[schema(example = "EUR")]
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Lease> for LeaseView {
    fn from(l: Lease) -> Self {
        Self {
            id: l.id,
            owner_id: l.owner_id,
            status: l.status.as_str().into(),
            vehicle: VehicleView {
                vin: l.vehicle.vin,
                make: l.vehicle.make,
                model: l.vehicle.model,
                year: l.vehicle.year,
                category: l.vehicle.category.as_str().into(),
            },
            start_date: l.start_date,
            term_months: l.term_months,
            monthly_amount: l.monthly_amount,
            deposit: l.deposit,
            currency: l.currency.code().into(),
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LeasePage {
    pub items: Vec<LeaseView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InstallmentView {
    pub id: Uuid,
    pub number: u16,
    pub due_date: NaiveDate,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// `due`, `paid` or `overdue`.
    pub status: String,
}

impl From<Installment> for InstallmentView {
    fn from(i: Installment) -> Self {
        Self {
            id: i.id,
            number: i.number,
            due_date: i.due_date,
            amount: i.amount,
            currency: i.currency.code().into(),
            status: i.status.as_str().into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Schedule {
    pub installments: Vec<InstallmentView>,
}

/// The request body of `POST /api/v1/leases` (documentation shape; `NewLease::parse` checks it
/// and reports every invalid field). Other fields are ignored.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateLease {
    vehicle: CreateVehicle,
    #[schema(schema_with = schema::start_date)]
    start_date: String,
    #[schema(schema_with = schema::term_months)]
    term_months: i64,
    #[schema(schema_with = schema::amount)]
    monthly_amount: i64,
    #[schema(schema_with = schema::deposit)]
    deposit: i64,
    #[schema(schema_with = schema::currency)]
    currency: String,
    /// Staff only: create the lease for this user instead of the caller.
    owner_id: Option<Uuid>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateVehicle {
    #[schema(schema_with = schema::vin)]
    vin: String,
    #[schema(schema_with = schema::vehicle_name)]
    make: String,
    #[schema(schema_with = schema::vehicle_name)]
    model: String,
    #[schema(schema_with = schema::model_year)]
    year: i64,
    #[schema(schema_with = schema::category)]
    category: String,
}

#[derive(Deserialize)]
struct OwnerPart {
    owner_id: Option<Uuid>,
}

/// Creates a draft lease and its installment schedule.
#[utoipa::path(
    post, path = "/api/v1/leases", tag = "leases",
    security(("bearer" = [])),
    request_body = CreateLease,
    responses(
        (status = 201, body = LeaseView, headers(("location" = String))),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every invalid field, by JSON path", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_lease(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    ApiJson(body): ApiJson<Value>,
) -> Result<impl IntoResponse, ApiError> {
    if !body.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    let owner: OwnerPart = from_json_value(body.clone())?;
    let input: LeaseInput = from_json_value(body)?;
    let new = NewLease::parse(input, Utc::now().date_naive()).map_err(|e| {
        ApiError::Validation(e.into_errors().into_iter().map(|f| FieldProblem::new(f.field, f.reason)).collect())
    })?;
    let lease = state.leases.create(viewer(&p), owner.owner_id, &new).await?;
    let location = format!("/api/v1/leases/{}", lease.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(LeaseView::from(lease))))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Full-text search over make, model, VIN and category (typo-tolerant, last word as prefix);
    /// at most 200 characters.
    #[param(max_length = 200)]
    q: Option<String>,
    /// A lease status (empty: any).
    #[param(schema_with = schema::optional_lease_status)]
    status: Option<String>,
    /// Staff only: the owner's user id (empty: any).
    #[param(schema_with = schema::optional_uuid)]
    owner: Option<String>,
    /// Vehicle category (search only; empty: any).
    #[param(schema_with = schema::optional_category)]
    category: Option<String>,
    /// From the previous page's `next_cursor` (opaque).
    #[param(max_length = 128, pattern = r"^[A-Za-z0-9_-]*$")]
    cursor: Option<String>,
    /// 1 to 100; default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// The longest search text, in characters.
const MAX_QUERY_CHARS: usize = 200;

struct ListRequest {
    q: Option<String>,
    filter: LeaseFilter,
    category: Option<String>,
    cursor: Option<Cursor>,
    limit: u32,
}

fn parse_list(p: ListParams) -> Result<ListRequest, ApiError> {
    let mut errors = Vec::new();
    let status = match p.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => s.parse::<LeaseStatus>().map_err(|e| errors.push(FieldProblem::new("status", e.to_string()))).ok(),
    };
    let owner_id = match p.owner.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => uuid_param(s, "owner").map_err(|e| errors.extend(e.into_field_problems())).ok(),
    };
    let category = match p.category.filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<lessor_leases::Category>() {
            Ok(c) => Some(c.as_str().to_owned()),
            Err(e) => {
                errors.push(FieldProblem::new("category", e.to_string()));
                None
            }
        },
    };
    let cursor = match p.cursor.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Cursor::decode(s).map_err(|e| errors.push(FieldProblem::new("cursor", e.to_string()))).ok(),
    };
    let limit = match p.limit.as_deref() {
        None => 20,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=lessor_leases::MAX_PAGE).contains(&n) => n,
            _ => {
                errors.push(FieldProblem::new("limit", "must be an integer from 1 to 100"));
                20
            }
        },
    };
    if p.q.as_ref().is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS) {
        errors.push(FieldProblem::new("q", format!("must be at most {MAX_QUERY_CHARS} characters")));
    }
    let q = p.q.map(|q| q.trim().to_owned()).filter(|q| !q.is_empty());
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(ListRequest { q, filter: LeaseFilter { owner_id, status }, category, cursor, limit })
}

/// Lists visible leases newest first, or searches them with `q`.
#[utoipa::path(
    get, path = "/api/v1/leases", tag = "leases",
    security(("bearer" = [])),
    params(ListParams),
    responses(
        (status = 200, body = LeasePage),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn list_leases(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<LeasePage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let request = parse_list(params)?;
    let viewer = viewer(&p);
    let page = if request.q.is_some() || request.category.is_some() {
        super::search::search_leases(
            &state,
            viewer,
            &request.q,
            request.filter,
            request.category,
            request.cursor,
            request.limit,
        )
        .await?
    } else {
        if matches!(request.cursor, Some(Cursor::Offset(_))) {
            return Err(ApiError::field("cursor", "this cursor belongs to a search"));
        }
        state.leases.list(viewer, request.filter, request.cursor.as_ref(), request.limit).await?
    };
    Ok(Json(LeasePage {
        items: page.items.into_iter().map(LeaseView::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
    }))
}

/// One lease. Another customer's lease is 404, as if it did not exist.
#[utoipa::path(
    get, path = "/api/v1/leases/{id}", tag = "leases",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = LeaseView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn get_lease(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<LeaseView>, ApiError> {
    Ok(Json(state.leases.get(viewer(&p), lease_id(&id)?).await?.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLease {
    /// The new status; the life cycle is draft → active → completed, and draft or active → terminated.
    #[schema(schema_with = schema::lease_status)]
    status: String,
}

/// Moves a lease through its life cycle (operators and admins). Illegal moves are 409.
#[utoipa::path(
    patch, path = "/api/v1/leases/{id}", tag = "leases",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    request_body = UpdateLease,
    responses(
        (status = 200, body = LeaseView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The life cycle does not allow this move", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn update_lease(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateLease>,
) -> Result<Json<LeaseView>, ApiError> {
    let id = lease_id(&id)?;
    let to: LeaseStatus =
        body.status.parse().map_err(|e: lessor_leases::UnknownStatus| ApiError::field("status", e.to_string()))?;
    Ok(Json(state.leases.transition(viewer(&p), id, to).await?.into()))
}

/// The installment schedule: one installment per month of the term.
#[utoipa::path(
    get, path = "/api/v1/leases/{id}/schedule", tag = "leases",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = Schedule), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
async fn lease_schedule(
    State(state): State<AppState>,
    CurrentUser(p): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, ApiError> {
    let installments = state.leases.schedule(viewer(&p), lease_id(&id)?).await?;
    Ok(Json(Schedule { installments: installments.into_iter().map(InstallmentView::from).collect() }))
}
