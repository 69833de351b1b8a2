//! The HTTP server's limits, CORS and the `/metrics` exposure, checked from the raw keys.

use std::net::SocketAddr;
use std::time::Duration;

use axum::http::HeaderValue;
use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, RawConfig, invalid};

/// How the server treats connections and requests.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// A request head (or the next one on a kept-alive connection) must arrive within this.
    pub header_read_timeout: Duration,
    /// A handler answers within this, or the client gets 503 `request-timeout`.
    pub request_timeout: Duration,
    /// A request body must arrive within this (counted from the head), or 408.
    pub body_read_timeout: Duration,
    /// Open connections at most; when full, the connection idle longest waiting for a request
    /// head is closed to make room, and without one the newcomer gets 503 and is closed.
    pub max_connections: usize,
    /// Exact origins allowed to call the API from a browser; empty: no CORS headers at all.
    pub cors_origins: Vec<HeaderValue>,
    /// `Authorization: Bearer <token>` required on `/metrics`.
    pub metrics_token: Option<SecretString>,
    /// `/metrics` only on this listener (and no longer on the API's).
    pub metrics_addr: Option<SocketAddr>,
}

/// Requests per minute; 0 turns that limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per bearer token, on `/api/` and `/auth/`.
    pub per_token: u32,
    /// Per client address (IPv6 per /64), on `/api/` and `/auth/`.
    pub per_address: u32,
    /// Per provider and client address, on `/webhooks/{provider}`.
    pub webhook: u32,
}

fn secs(key: &str, value: u64, max: u64) -> Result<Duration, ConfigError> {
    if !(1..=max).contains(&value) {
        return Err(invalid(key, format!("must be between 1 and {max}")));
    }
    Ok(Duration::from_secs(value))
}

/// `https://app.example.com[:port]`: a scheme, a host, an optional port, nothing else.
fn origin(text: &str) -> Result<HeaderValue, String> {
    let url = url::Url::parse(text).map_err(|e| format!("`{text}` is not an origin: {e}"))?;
    let exact = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https") || exact != text {
        return Err(format!("`{text}` is not an exact origin such as https://app.example.com"));
    }
    HeaderValue::from_str(text).map_err(|e| format!("`{text}`: {e}"))
}

pub(super) fn settings(raw: &RawConfig) -> Result<HttpSettings, ConfigError> {
    let cors_origins = raw
        .cors_origins
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(origin)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("cors_origins", e))?;
    let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(a.parse().map_err(|e| invalid("metrics_addr", format!("`{a}`: {e}")))?),
    };
    let metrics_token = raw.metrics_token.clone().filter(|t| !t.expose_secret().is_empty());
    if metrics_token.as_ref().is_some_and(|t| t.expose_secret().len() < 16) {
        return Err(invalid("metrics_token", "must be at least 16 characters"));
    }
    if !(1..=1_000_000).contains(&raw.max_connections) {
        return Err(invalid("max_connections", "must be between 1 and 1000000"));
    }
    Ok(HttpSettings {
        header_read_timeout: secs("header_read_timeout_secs", raw.header_read_timeout_secs, 3600)?,
        request_timeout: secs("request_timeout_secs", raw.request_timeout_secs, 3600)?,
        body_read_timeout: secs("body_read_timeout_secs", raw.body_read_timeout_secs, 3600)?,
        max_connections: raw.max_connections,
        cors_origins,
        metrics_token,
        metrics_addr,
    })
}

#[cfg(test)]
mod tests {
    use super::origin;

    #[test]
    fn only_exact_origins_are_accepted() {
        assert!(origin("https://app.example.com").is_ok());
        assert!(origin("http://127.0.0.1:3000").is_ok());
        assert!(origin("https://app.example.com/").is_err());
        assert!(origin("https://app.example.com/path").is_err());
        assert!(origin("*").is_err());
        assert!(origin("ftp://x.example").is_err());
    }
}
