//! What every request passes before a handler: the response headers every answer carries,
//! the request and body deadlines, and the rate limits per token and per client address.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::config::RateLimits;
use crate::rate_limit::{RateLimiter, Verdict};

/// The shared guards of the HTTP edge, one per application.
pub struct Edge {
    pub limiter: RateLimiter,
    pub limits: RateLimits,
    pub ready: super::ops::ReadyProbe,
    pub metrics_access: super::ops::MetricsAccess,
    pub webhook_log: LogGate,
    /// `max_body_bytes`: no webhook body is read past it, whatever its plugin declares.
    pub max_webhook_body: usize,
}

/// The key a client is counted under: its address (as [`super::client::ClientAddr`] finds it,
/// behind trusted proxies too), IPv6 by /64, the same key login throttling uses.
pub fn client_key(ip: IpAddr) -> String {
    lessor_auth::address_key(ip)
}

/// `nosniff` and `no-referrer` on every response; `no-store` on everything under `/auth/` and
/// `/api/` (personal and payment data must not sit in shared or browser caches).
pub async fn conventions(req: Request, next: Next) -> Response {
    let private = req.uri().path().starts_with("/api/") || req.uri().path().starts_with("/auth/");
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if private {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The request deadline (the whole handler) and the body deadline (counted from the head).
#[derive(Clone, Copy)]
pub struct Deadlines {
    pub request: Duration,
    pub body: Duration,
}

pub async fn deadlines(State(d): State<Deadlines>, req: Request, next: Next) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let timed = expired.clone();
    let req = req.map(move |inner| {
        Body::new(TimedBody { inner, deadline: Box::pin(tokio::time::sleep(d.body)), expired: timed })
    });
    match tokio::time::timeout(d.request, next.run(req)).await {
        Ok(_) if expired.load(Ordering::Acquire) => {
            let mut response = ApiError::specific(
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                format!("the request body did not arrive within {} s", d.body.as_secs()),
            )
            .into_response();
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
        Ok(response) => response,
        Err(_) => ApiError::ServerError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            slug: "request-timeout",
            detail: "the request took too long to answer; retry later",
            cause: format!("handler exceeded the request timeout of {} s", d.request.as_secs()),
            retry_after: Some(Duration::from_secs(1)),
        }
        .into_response(),
    }
}

/// A request body that fails once its deadline passes.
struct TimedBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new("request body timed out"))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|t| !t.is_empty())
}

/// Counts the token by a digest: Redis never holds a usable credential.
fn token_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Limits `/api/` and `/auth/` per client address and per bearer token (webhooks count per
/// provider and address in their handler; probes and metrics are not limited).
pub async fn rate_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if !(path.starts_with("/api/") || path.starts_with("/auth/")) {
        return next.run(req).await;
    }
    let edge = &state.edge;
    // The address first, then the token, counted in one round trip; a request the address
    // limit refuses is not counted against the token.
    let address = super::client::client_ip(req.extensions(), req.headers(), &state.trusted_proxies).map(client_key);
    let token = bearer(&req).map(token_key);
    let mut hits = Vec::with_capacity(2);
    if let Some(address) = &address {
        hits.push(("address", address.as_str(), edge.limits.per_address));
    }
    if let Some(token) = &token {
        hits.push(("token", token.as_str(), edge.limits.per_token));
    }
    if let Some((index, Verdict::Limited { retry_after })) = edge.limiter.hit_each(&hits).await {
        state.metrics.rate_limited(hits[index].0);
        return ApiError::TooManyRequests { retry_after }.into_response();
    }
    next.run(req).await
}

/// Lets one log line per key through every `every`; the rest are counted (metrics carry the
/// volume) and the next line says how many were left out.
pub struct LogGate {
    every: Duration,
    last: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

impl LogGate {
    pub fn new(every: Duration) -> Self {
        Self { every, last: Default::default() }
    }

    /// `Some(suppressed since the last line)` when a line may be written now.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if last.len() > 10_000 {
            last.clear();
        }
        match last.get_mut(key) {
            Some((at, suppressed)) if now.duration_since(*at) < self.every => {
                *suppressed += 1;
                None
            }
            Some((at, suppressed)) => {
                *at = now;
                Some(std::mem::take(suppressed))
            }
            None => {
                last.insert(key.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}
