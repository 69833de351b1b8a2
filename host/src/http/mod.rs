//! The HTTP API: one `router()` per resource, merged here with the cross-cutting layers.

pub mod auth;
pub mod client;
pub mod edge;
pub mod error;
pub mod extract;
pub mod leases;
pub mod observe;
mod openapi;
pub mod ops;
pub mod payments;
mod plugins;
mod schema;
mod search;
pub mod users;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lessor_auth::AuthService;
use lessor_leases::LeaseService;
use lessor_search::SearchIndex;
use lessor_store::{Db, RedisConn};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::events::EventPipes;
use crate::metrics::Metrics;
use crate::plugins::LiveProviders;
use error::ApiError;
use lessor_payments::{IdempotencyStore, PaymentService};

/// What every handler can reach. External systems enter as shared handles or trait objects.
#[derive(Clone)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub leases: Arc<LeaseService>,
    pub search: Arc<dyn SearchIndex>,
    pub db: Db,
    pub redis: Option<RedisConn>,
    pub metrics: Arc<Metrics>,
    /// The payment providers this process serves, kept in step with the plugin registry.
    pub providers: Arc<LiveProviders>,
    pub payments: Arc<PaymentService>,
    pub idempotency: Arc<IdempotencyStore>,
    /// The event relay's wake-up and the bus consumers read from.
    pub events: EventPipes,
    /// Where payments stand on chain (`chain_status`, `blockchain_tx_hash`).
    pub chain: ChainView,
    /// Peers whose `X-Forwarded-For` names the client (see [`client::ClientAddr`]).
    pub trusted_proxies: Arc<client::TrustedProxies>,
    /// Rate limits, the readiness cache and who may read `/metrics`.
    pub edge: Arc<edge::Edge>,
}

/// The chain records as the payment API shows them.
#[derive(Clone)]
pub struct ChainView {
    /// The chain worker runs (`ton_api_url` is set); otherwise payments say `not_configured`.
    pub enabled: bool,
    pub store: lessor_chain::ChainStore,
}

/// The documented routes, before state is attached: also the source of the OpenAPI document.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(auth::router())
        .merge(users::router())
        .merge(leases::router())
        .merge(ops::router())
        .merge(plugins::router())
        .merge(payments::router())
        .merge(webhooks::router())
}

/// The OpenAPI document generated from the route annotations.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let mut doc = api().split_for_parts().1;
    openapi::add_shared_responses(&mut doc);
    doc
}

pub fn router(state: AppState, config: &crate::Config) -> Router {
    let (routes, mut spec) = api().split_for_parts();
    openapi::add_shared_responses(&mut spec);
    let spec = Bytes::from(spec.to_pretty_json().unwrap_or_default());
    routes
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let spec = spec.clone();
                async move { ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], spec) }
            }),
        )
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| -> Response {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(axum::middleware::from_fn_with_state(state.clone(), edge::rate_limits))
        .layer(axum::middleware::from_fn_with_state(
            edge::Deadlines { request: config.http.request_timeout, body: config.http.body_read_timeout },
            edge::deadlines,
        ))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), observe::observe))
        .layer(cors(&config.http.cors_origins))
        .layer(axum::middleware::from_fn(edge::conventions))
        .with_state(state)
}

/// CORS for the configured exact origins; with none, no CORS headers at all (browsers then
/// refuse cross-origin reads). Other origins get no `Access-Control-Allow-*` header.
fn cors(origins: &[HeaderValue]) -> tower::util::Either<CorsLayer, tower::layer::util::Identity> {
    use axum::http::{HeaderName, Method};
    if origins.is_empty() {
        return tower::util::Either::Right(tower::layer::util::Identity::new());
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            observe::REQUEST_ID.clone(),
        ])
        .expose_headers([observe::REQUEST_ID.clone(), header::RETRY_AFTER, header::LOCATION])
        .max_age(std::time::Duration::from_secs(600));
    tower::util::Either::Left(layer)
}
