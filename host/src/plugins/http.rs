//! The HTTP a plugin may send, as the host sees it, and the transport that sends it.
//!
//! The allow-list check happens before a request reaches any transport (see `state.rs`); a
//! transport only moves bytes. `ReqwestTransport` is the real one; tests and benches may supply
//! their own (an external system behind a trait).

use std::sync::{Arc, mpsc};
use std::time::Duration;

use url::Url;

use super::address::{NonPublicAddress, PublicOnly};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    /// Already checked against the plugin's grants.
    pub url: Url,
    /// The grant that allowed `url` lets its name resolve to non-public addresses (`+private`).
    /// Otherwise a name must resolve to public ones (see `address.rs`); an IP literal in `url`
    /// was granted as written and is not resolved.
    pub allow_private: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a plugin's request produced no response (the WIT `http-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpFailure {
    #[error("denied: {0}")]
    Denied(String),
    #[error("timed out")]
    Timeout,
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("request or response too large")]
    TooLarge,
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl HttpFailure {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Denied(_) => "denied",
            Self::Timeout => "timeout",
            Self::Connection(_) => "connection",
            Self::TooLarge => "too_large",
            Self::InvalidRequest(_) => "invalid_request",
        }
    }
}

/// Sends one request and waits for the whole response. Called from the plugin's call thread,
/// so it blocks; it must give up after `timeout` and read at most `max_response_bytes`.
pub trait HttpTransport: Send + Sync + 'static {
    fn send(
        &self,
        request: OutboundRequest,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, HttpFailure>;
}

/// reqwest on a small tokio runtime of its own, so calls work from any thread (a plugin call
/// thread, a bench, a runtime worker) without nesting runtimes. Redirects are not followed (a
/// granted host must not bounce a plugin to one that is not) and proxies are ignored.
///
/// Two clients, so their connection pools never mix: `public` resolves names with
/// [`PublicOnly`] (one lookup, non-public addresses dropped, the connection made to an address
/// that was checked), `private` with the system resolver, for grants marked `+private`.
pub struct ReqwestTransport {
    public: reqwest::Client,
    private: reqwest::Client,
    runtime: Option<tokio::runtime::Runtime>,
}

impl ReqwestTransport {
    pub fn new() -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("plugin-http")
            .enable_all()
            .build()?;
        let builder = || {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .connect_timeout(Duration::from_secs(5))
                .user_agent(concat!("lessor-plugin-host/", env!("CARGO_PKG_VERSION")))
        };
        let public = builder().dns_resolver(Arc::new(PublicOnly)).build().map_err(std::io::Error::other)?;
        let private = builder().build().map_err(std::io::Error::other)?;
        Ok(Self { public, private, runtime: Some(runtime) })
    }
}

impl Drop for ReqwestTransport {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside another runtime: let it wind down alone.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl HttpTransport for ReqwestTransport {
    fn send(
        &self,
        request: OutboundRequest,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, HttpFailure> {
        let Some(runtime) = &self.runtime else { return Err(HttpFailure::Connection("transport shut down".into())) };
        let (tx, rx) = mpsc::sync_channel(1);
        let client = if request.allow_private { &self.private } else { &self.public }.clone();
        let task = runtime.spawn(async move {
            let result = tokio::time::timeout(timeout, exchange(&client, request, max_response_bytes))
                .await
                .unwrap_or(Err(HttpFailure::Timeout));
            let _ = tx.send(result);
        });
        match rx.recv_timeout(timeout + Duration::from_millis(50)) {
            Ok(result) => result,
            Err(_) => {
                task.abort();
                Err(HttpFailure::Timeout)
            }
        }
    }
}

async fn exchange(
    client: &reqwest::Client,
    request: OutboundRequest,
    max_response_bytes: usize,
) -> Result<HttpResponse, HttpFailure> {
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut builder = client.request(method, request.url).body(request.body);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    let mut response = builder.send().await.map_err(failure)?;
    if response.content_length().is_some_and(|len| len > max_response_bytes as u64) {
        return Err(HttpFailure::TooLarge);
    }
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failure)? {
        if body.len() + chunk.len() > max_response_bytes {
            return Err(HttpFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(HttpResponse { status, headers, body })
}

fn failure(e: reqwest::Error) -> HttpFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<NonPublicAddress>() {
            return HttpFailure::Denied(refused.to_string());
        }
        source = cause.source();
    }
    if e.is_timeout() {
        HttpFailure::Timeout
    } else if e.is_builder() {
        HttpFailure::InvalidRequest(e.without_url().to_string())
    } else {
        HttpFailure::Connection(e.without_url().to_string())
    }
}
