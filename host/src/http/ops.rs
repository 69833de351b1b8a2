//! Liveness, readiness and metrics.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    /// `up` or `down`.
    pub database: &'static str,
    /// `up` or `down`; absent when Redis is not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<&'static str>,
}

/// The process is alive.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

fn up_or_down<E: std::fmt::Display>(
    what: &str,
    result: Result<Result<(), E>, tokio::time::error::Elapsed>,
) -> &'static str {
    match result {
        Ok(Ok(())) => "up",
        Ok(Err(e)) => {
            tracing::warn!(check = what, error = %e, "readiness check failed");
            "down"
        }
        Err(_) => {
            tracing::warn!(check = what, "readiness check timed out");
            "down"
        }
    }
}

/// The database (and Redis, when configured) answer; 503 names the one that does not.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let db = tokio::time::timeout(CHECK_TIMEOUT, state.db.ping());
    let redis = async {
        match &state.redis {
            Some(r) => Some(up_or_down("redis", tokio::time::timeout(CHECK_TIMEOUT, r.ping()).await)),
            None => None,
        }
    };
    let (db, redis) = tokio::join!(db, redis);
    let checks = Checks { database: up_or_down("database", db), redis };
    let all_up = checks.database == "up" && checks.redis.is_none_or(|r| r == "up");
    let (status, word) =
        if all_up { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "unavailable") };
    (status, Json(Readiness { status: word, checks }))
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render();
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], body)
}
