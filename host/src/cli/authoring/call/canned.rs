//! `--respond 'METHOD URL=FILE'`: canned answers to the plugin's HTTP, and the transport that
//! gives them and records every exchange.
//!
//! Matching means what the SDK's harness means (`plugins/sdk/src/testing/fetch.rs`): the method
//! and the exact URL, or a URL prefix when the URL ends in `*`; the first route that matches
//! wins. A request no route matches is refused as a connection failure, which is what the plugin
//! sees, and is recorded like the others. Nothing ever leaves the machine.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use lessor_plugin_registry::{Origin, OriginPattern};
use url::Url;

use crate::plugins::http::{HttpFailure, HttpResponse, HttpTransport, Method, OutboundRequest};

/// One `--respond` as written: checked by clap, its file read when the command runs.
#[derive(Debug, Clone)]
pub struct RespondSpec {
    pub method: Method,
    /// As written, with its `*` if any.
    pub url: String,
    pub file: PathBuf,
}

impl RespondSpec {
    /// `METHOD URL=FILE`; the last `=` separates the file, so a URL may carry a query string.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let usage = "expected 'METHOD URL=FILE', e.g. 'POST https://api.acme.test/charges=charge.http'";
        let (method, rest) = spec.trim().split_once(char::is_whitespace).ok_or(usage)?;
        let (url, file) = rest.trim().rsplit_once('=').ok_or(usage)?;
        let method = parse_method(method)?;
        if file.is_empty() {
            return Err(format!("no FILE after `=`: {usage}"));
        }
        Ok(Self { method, url: url.trim().to_owned(), file: PathBuf::from(file) })
    }
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::Get),
        "POST" => Ok(Method::Post),
        "PUT" => Ok(Method::Put),
        "PATCH" => Ok(Method::Patch),
        "DELETE" => Ok(Method::Delete),
        _ => Err(format!("unknown method `{s}`: one of GET, POST, PUT, PATCH, DELETE")),
    }
}

pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

enum UrlMatch {
    Exact(String),
    Prefix(String),
}

/// A route ready to answer: its URL normalised as the host normalises the plugin's URLs.
pub struct Route {
    method: Method,
    url: UrlMatch,
    origin: Origin,
    response: HttpResponse,
}

impl Route {
    pub fn load(spec: &RespondSpec) -> anyhow::Result<Self> {
        let (written, prefix) = match spec.url.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (spec.url.as_str(), false),
        };
        let what = || format!("--respond '{} {}'", method_name(spec.method), spec.url);
        let parsed = Url::parse(written).with_context(|| format!("{}: not an absolute URL", what()))?;
        let origin = Origin::of_url(&parsed).with_context(what)?;
        let normalised = parsed.as_str().to_owned();
        let url = if prefix { UrlMatch::Prefix(normalised) } else { UrlMatch::Exact(normalised) };
        let bytes =
            std::fs::read(&spec.file).with_context(|| format!("{}: reading {}", what(), spec.file.display()))?;
        let response = parse_response(&bytes).with_context(|| format!("{}: {}", what(), describe_file(&spec.file)))?;
        Ok(Self { method: spec.method, url, origin, response })
    }

    /// The origin the plugin must be granted for this route to be reachable.
    pub fn grant(&self) -> OriginPattern {
        self.origin.clone().into()
    }

    fn matches(&self, method: Method, url: &str) -> bool {
        self.method == method
            && match &self.url {
                UrlMatch::Exact(exact) => url == exact,
                UrlMatch::Prefix(prefix) => url.starts_with(prefix.as_str()),
            }
    }
}

fn describe_file(path: &Path) -> String {
    format!(
        "{} is not a response (first line a status such as `201`, then `Name: value` header lines, a blank line, the body)",
        path.display()
    )
}

/// The response file: a status line (`201`, `201 Created` or `HTTP/1.1 201 Created`), then
/// `Name: value` header lines, then a blank line and the body, byte for byte. Without a blank
/// line the body is empty. Header names are lower-cased, as the host hands them to a plugin.
pub fn parse_response(bytes: &[u8]) -> anyhow::Result<HttpResponse> {
    let (status_line, mut rest) = split_line(bytes);
    let status_line = std::str::from_utf8(status_line).context("the status line is not UTF-8")?;
    let mut words = status_line.split_whitespace();
    let code = match words.next() {
        Some(w) if w.starts_with("HTTP/") => words.next(),
        other => other,
    };
    let status = code
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .with_context(|| format!("the first line `{status_line}` has no status code from 100 to 599"))?;
    let mut headers = Vec::new();
    while !rest.is_empty() {
        let (line, after) = split_line(rest);
        rest = after;
        if line.is_empty() {
            return Ok(HttpResponse { status, headers, body: rest.to_vec() });
        }
        let line = std::str::from_utf8(line).context("a header line is not UTF-8")?;
        let (name, value) = line.split_once(':').with_context(|| format!("`{line}` is not a `Name: value` header"))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            bail!("`{name}` is not a header name");
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    Ok(HttpResponse { status, headers, body: Vec::new() })
}

/// A line without its `\n` (or `\r\n`), and what follows it.
fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &bytes[bytes.len()..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// One request the plugin sent past its grants, and what it got.
pub struct Exchange {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub reply: Result<HttpResponse, String>,
}

/// The runtime's HTTP transport for one call: canned answers, every exchange recorded.
pub struct CannedTransport {
    routes: Vec<Route>,
    exchanges: Mutex<Vec<Exchange>>,
}

impl CannedTransport {
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes, exchanges: Mutex::new(Vec::new()) }
    }

    pub fn take_exchanges(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl HttpTransport for CannedTransport {
    fn send(
        &self,
        request: OutboundRequest,
        _timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<HttpResponse, HttpFailure> {
        let url = request.url.as_str();
        let (reply, failure) = match self.routes.iter().find(|r| r.matches(request.method, url)) {
            Some(route) if route.response.body.len() > max_response_bytes => (
                Err(format!("canned response over the {max_response_bytes}-byte response cap: refused as too large")),
                Some(HttpFailure::TooLarge),
            ),
            Some(route) => (Ok(route.response.clone()), None),
            None => (
                Err("no canned response: refused".to_owned()),
                Some(HttpFailure::Connection(format!("no canned response for {} {url}", method_name(request.method)))),
            ),
        };
        let exchange = Exchange {
            method: request.method,
            url: url.to_owned(),
            headers: request.headers,
            body: request.body,
            reply: reply.clone(),
        };
        self.exchanges.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(exchange);
        match failure {
            Some(failure) => Err(failure),
            None => reply.map_err(HttpFailure::Connection),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_file_has_a_status_headers_and_a_body() {
        let r = parse_response(b"HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\n")
            .unwrap();
        assert_eq!(r.status, 402);
        assert_eq!(r.headers, vec![("content-type".to_owned(), "application/json".to_owned())]);
        assert_eq!(r.body, b"{\"a\":1}\n");
        let bare = parse_response(b"204").unwrap();
        assert_eq!((bare.status, bare.headers.len(), bare.body.len()), (204, 0, 0));
        assert!(parse_response(b"OK\n\nbody").is_err());
        assert!(parse_response(b"200\nno colon here\n\n").is_err());
        assert!(parse_response(b"700\n\n").is_err());
    }

    #[test]
    fn a_spec_splits_at_the_last_equals_sign() {
        let s = RespondSpec::parse("get https://api.acme.test/x?a=b=resp.http").unwrap();
        assert_eq!(
            (s.method, s.url.as_str(), s.file.to_str()),
            (Method::Get, "https://api.acme.test/x?a=b", Some("resp.http"))
        );
        assert!(RespondSpec::parse("POST https://api.acme.test/x").is_err());
        assert!(RespondSpec::parse("FETCH https://api.acme.test/x=f").is_err());
    }
}
