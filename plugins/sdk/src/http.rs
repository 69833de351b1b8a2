//! Outbound HTTP through the host: the only network a plugin has.
//!
//! The host sends the request only when its scheme, host and port are among those the plugin's
//! manifest requests and the operator granted; anything else comes back as [`Error::Denied`].
//!
//! ```
//! # use lessor_plugin_sdk::testing::{self, Harness};
//! # let harness = Harness::new().secret("api_key", "sk_test_1").respond(
//! #     lessor_plugin_sdk::http::Method::Post, "https://api.acme.test/*", testing::json(200, "{}"));
//! # harness.run(|| -> Result<(), lessor_plugin_sdk::ProviderError> {
//! use lessor_plugin_sdk::http::Request;
//! let key = lessor_plugin_sdk::require_secret("api_key")?;
//! let response = Request::post("https://api.acme.test/v1/charges")
//!     .bearer_auth(key.expose())
//!     .form(&[("amount", "1200"), ("currency", "eur")])
//!     .send()?             // `?` turns an `http::Error` into a `ProviderError` (denied: egress-denied)
//!     .error_for_status()?; // 5xx and 429: provider-unavailable
//! let body = response.text()?;
//! # assert_eq!(body, "{}");
//! # Ok(())
//! # }).unwrap();
//! ```

use crate::ProviderError;
use crate::bindings::lessor::payments::host;

pub use host::{HttpError as Error, HttpMethod as Method, HttpResponse as Response};

/// A request under construction; [`Request::send`] hands it to the host.
#[derive(Debug, Clone)]
#[must_use = "a request does nothing until `send` is called"]
pub struct Request(host::HttpRequest);

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Self(host::HttpRequest { method, url: url.into(), headers: Vec::new(), body: Vec::new() })
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Appends `pairs` to the URL's query string, percent-encoded (`?a=1&b=x%27y`).
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        for (k, v) in pairs {
            self.0.url.push(if self.0.url.contains('?') { '&' } else { '?' });
            url_encode_into(&mut self.0.url, k);
            self.0.url.push('=');
            url_encode_into(&mut self.0.url, v);
        }
        self
    }

    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.headers.push((name.into(), value.into()));
        self
    }

    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sets an `Idempotency-Key` header, which most payment APIs honour.
    pub fn idempotency_key(self, key: &str) -> Self {
        self.header("idempotency-key", key)
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.0.body = body.into();
        self
    }

    /// A JSON body (already serialised) with its content type.
    pub fn json(self, json: impl Into<String>) -> Self {
        self.header("content-type", "application/json").body(json.into().into_bytes())
    }

    /// An `application/x-www-form-urlencoded` body.
    pub fn form(self, pairs: &[(&str, &str)]) -> Self {
        let mut body = String::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                body.push('&');
            }
            url_encode_into(&mut body, k);
            body.push('=');
            url_encode_into(&mut body, v);
        }
        self.header("content-type", "application/x-www-form-urlencoded").body(body.into_bytes())
    }

    pub fn send(self) -> Result<Response, Error> {
        crate::host::fetch(&self.0)
    }
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8.
    pub fn text(&self) -> Result<&str, ProviderError> {
        std::str::from_utf8(&self.body).map_err(|_| ProviderError::Internal("response body is not UTF-8".to_owned()))
    }

    /// `Ok(self)` for 2xx; 5xx and 429 as [`ProviderError::ProviderUnavailable`]; other statuses as
    /// [`ProviderError::Internal`]. Map 4xx yourself when the provider's body says more.
    pub fn error_for_status(self) -> Result<Self, ProviderError> {
        match self.status {
            200..=299 => Ok(self),
            429 | 500..=599 => Err(ProviderError::ProviderUnavailable(format!("HTTP {}", self.status))),
            status => Err(ProviderError::Internal(format!("unexpected HTTP {status}"))),
        }
    }
}

/// A sentence describing an [`Error`], for logs and error messages.
pub fn describe(error: &Error) -> String {
    match error {
        Error::Denied(what) => format!("the host denied outbound HTTP to {what}"),
        Error::Timeout => "HTTP request timed out".to_owned(),
        Error::Connection(why) => format!("HTTP connection failed: {why}"),
        Error::TooLarge => "HTTP request or response too large".to_owned(),
        Error::InvalidRequest(why) => format!("invalid HTTP request: {why}"),
    }
}

impl From<Error> for ProviderError {
    /// A refusal by the host is `egress-denied` (nothing was sent; the operator must grant the
    /// destination), network trouble `provider-unavailable` (the outcome is unknown, the host
    /// reconciles), and a request the host cannot send at all (too large, malformed) `internal`.
    fn from(error: Error) -> Self {
        let message = describe(&error);
        match error {
            Error::Denied(destination) => ProviderError::EgressDenied(destination),
            Error::Timeout | Error::Connection(_) => ProviderError::ProviderUnavailable(message),
            Error::TooLarge | Error::InvalidRequest(_) => ProviderError::Internal(message),
        }
    }
}

fn url_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}
