//! Per-request observability: a request id on every response and log line, an access log
//! line, and the request metrics.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::metrics::{HttpLabels, Metrics};

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request this task is serving, if any (error bodies carry it).
pub fn current_request_id() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The id of the request being served, also available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Keeps a caller's request id when it is short and plain; otherwise makes a new one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .filter(|v| v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Bounded label values: unknown methods and unmatched paths must not grow the metrics.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

pub async fn observe(State(metrics): State<Arc<Metrics>>, mut req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = method_label(req.method());
    req.extensions_mut().insert(RequestId(id.clone()));

    let span = tracing::info_span!("http.request", request_id = %id, method, route = %route);
    let started = Instant::now();
    let mut response = CURRENT.scope(id.clone(), next.run(req).instrument(span.clone())).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();

    metrics.observe_http(HttpLabels { method: method.into(), route, status }, elapsed);
    span.in_scope(|| tracing::info!(status, latency_ms = elapsed.as_secs_f64() * 1e3, "request"));
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    response
}
