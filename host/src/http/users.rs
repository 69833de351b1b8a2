//! `/api/v1/me` and user administration.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use lessor_auth::{Role, User};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use super::error::{ApiError, Problem};
use super::extract::{Admin, ApiJson, CurrentUser, Operator, uuid_param};
use super::schema;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me)).routes(routes!(create_user)).routes(routes!(get_user))
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    #[schema(value_type = String, example = "customer")]
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self { id: u.id, email: u.email.to_string(), role: u.role, created_at: u.created_at }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct CreateUserRequest {
    #[schema(schema_with = schema::email)]
    pub email: String,
    #[schema(schema_with = schema::password)]
    pub password: SecretString,
    #[schema(schema_with = schema::role)]
    pub role: Role,
}

/// The authenticated caller.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
async fn me(State(state): State<AppState>, CurrentUser(p): CurrentUser) -> Result<Json<UserView>, ApiError> {
    let user = state.auth.user(p.user_id).await?;
    // A token whose user was deleted is no better than a revoked one.
    let user = user.ok_or(ApiError::Unauthorized { kind: "token-revoked", detail: "the account no longer exists" })?;
    Ok(Json(user.into()))
}

/// Creates a user with any role (admins only).
#[utoipa::path(
    post, path = "/api/v1/users", tag = "users",
    security(("bearer" = [])),
    request_body = CreateUserRequest,
    responses(
        (status = 201, body = UserView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The e-mail is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Every password hashing slot stayed busy (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn create_user(
    State(state): State<AppState>,
    Admin(_): Admin,
    ApiJson(body): ApiJson<CreateUserRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let user = state.auth.create_user(&body.email, body.password, body.role).await?;
    let location = format!("/api/v1/users/{}", user.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(UserView::from(user))))
}

/// One user (operators and admins).
#[utoipa::path(
    get, path = "/api/v1/users/{id}", tag = "users",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = UserView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    )
)]
async fn get_user(
    State(state): State<AppState>,
    Operator(_): Operator,
    Path(id): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let id = uuid_param(&id, "id")?;
    let user = state.auth.user(id).await?.ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    Ok(Json(user.into()))
}
