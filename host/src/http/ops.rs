//! Liveness, readiness and metrics.
//!
//! `/ready` answers from a probe run at most once per [`READY_TTL`] (single flight: concurrent
//! callers wait for the one probe in progress), so hammering it cannot load the database.
//! `/metrics` is for operators: behind `LESSOR_METRICS_TOKEN` when set, only on
//! `LESSOR_METRICS_ADDR` when that is set, and otherwise only to loopback clients whose request
//! did not come through a proxy.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use crate::metrics::Metrics;
use crate::supervisor::{TaskBoard, TaskState};

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a readiness answer is reused.
pub const READY_TTL: Duration = Duration::from_secs(1);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(ready)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    pub checks: Checks,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct Checks {
    /// `up` or `down`.
    pub database: &'static str,
    /// `up` or `down`; absent when Redis is not configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<&'static str>,
    /// Each supervised background task by name: `up`, `restarting` (failed, waiting out its
    /// backoff) or `down` (failed too often, no longer restarted: the answer is then 503).
    #[schema(value_type = BTreeMap<String, String>)]
    pub tasks: BTreeMap<String, &'static str>,
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

/// The last readiness answer and when it was probed, and the supervised tasks' states.
#[derive(Default)]
pub struct ReadyProbe {
    last: tokio::sync::Mutex<Option<(Instant, StatusCode, Readiness)>>,
    tasks: TaskBoard,
}

impl ReadyProbe {
    pub fn new(tasks: TaskBoard) -> Self {
        Self { last: Default::default(), tasks }
    }

    async fn answer(&self, state: &AppState) -> (StatusCode, Readiness) {
        let mut last = self.last.lock().await;
        if let Some((at, status, readiness)) = &*last
            && at.elapsed() < READY_TTL
        {
            return (*status, readiness.clone());
        }
        state.metrics.ready_probed();
        let (status, readiness) = probe(state, &self.tasks).await;
        *last = Some((Instant::now(), status, readiness.clone()));
        (status, readiness)
    }
}

async fn probe(state: &AppState, tasks: &TaskBoard) -> (StatusCode, Readiness) {
    let db = tokio::time::timeout(CHECK_TIMEOUT, state.db.ping());
    let redis = async {
        match &state.redis {
            Some(r) => Some(up_or_down("redis", tokio::time::timeout(CHECK_TIMEOUT, r.ping()).await)),
            None => None,
        }
    };
    let (db, redis) = tokio::join!(db, redis);
    let tasks = tasks.snapshot();
    let tasks_up = tasks.values().all(|t| *t != TaskState::Down);
    let tasks = tasks.into_iter().map(|(name, t)| (name, t.as_str())).collect();
    let checks = Checks { database: up_or_down("database", db), redis, tasks };
    let all_up = checks.database == "up" && checks.redis.is_none_or(|r| r == "up") && tasks_up;
    let (status, word) =
        if all_up { (StatusCode::OK, "ready") } else { (StatusCode::SERVICE_UNAVAILABLE, "unavailable") };
    (status, Readiness { status: word, checks })
}

/// The database (and Redis, when configured) answer and no background task is down for good;
/// 503 names the one that is not.
/// Answered from a probe at most one second old.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness))
)]
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let (status, readiness) = state.edge.ready.answer(&state).await;
    (status, Json(readiness))
}

/// Who may read `/metrics` on the API's listener.
#[derive(Clone)]
pub enum MetricsAccess {
    /// `Authorization: Bearer <token>`.
    Token(SecretString),
    /// Served on its own listener only.
    OwnListener,
    /// Neither configured: loopback peers whose request names no proxy hop.
    LoopbackOnly,
}

fn token_matches(headers: &HeaderMap, token: &SecretString) -> bool {
    let Some(sent) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(sent) = sent.strip_prefix("Bearer ").or_else(|| sent.strip_prefix("bearer ")) else { return false };
    let (a, b) = (sent.trim().as_bytes(), token.expose_secret().as_bytes());
    // Constant time in the token's content.
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn render(metrics: &Metrics) -> Response {
    let content_type = HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], metrics.render()).into_response()
}

fn unauthenticated() -> ApiError {
    ApiError::Unauthorized { kind: "unauthenticated", detail: "send the operator's metrics token as a bearer token" }
}

/// Prometheus metrics (OpenMetrics text), for operators: see the module's access rules.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses(
        (status = 200, content_type = "application/openmetrics-text", body = String),
        (status = 401, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
async fn metrics(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match &state.edge.metrics_access {
        MetricsAccess::Token(token) if token_matches(&headers, token) => render(&state.metrics),
        MetricsAccess::Token(_) => unauthenticated().into_response(),
        MetricsAccess::OwnListener => ApiError::NotFound("no such route".into()).into_response(),
        MetricsAccess::LoopbackOnly => {
            let proxied = headers.contains_key("x-forwarded-for") || headers.contains_key(header::FORWARDED);
            if peer.ip().is_loopback() && !proxied {
                render(&state.metrics)
            } else {
                ApiError::specific(
                    StatusCode::FORBIDDEN,
                    "metrics-forbidden",
                    "metrics are served to local clients only unless a metrics token or listener is configured",
                )
                .into_response()
            }
        }
    }
}

/// The router of the separate metrics listener (`LESSOR_METRICS_ADDR`): `/metrics` only, behind
/// the token too when one is set.
pub fn metrics_listener_router(metrics: Arc<Metrics>, token: Option<SecretString>) -> axum::Router {
    let serve = move |headers: HeaderMap| {
        let (metrics, token) = (metrics.clone(), token.clone());
        async move {
            match &token {
                Some(t) if !token_matches(&headers, t) => unauthenticated().into_response(),
                _ => render(&metrics),
            }
        }
    };
    axum::Router::new()
        .route("/metrics", axum::routing::get(serve))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
}
