//! Canned HTTP: routes matched by method and URL, and the record of every request sent.

use super::State;
use crate::bindings::lessor::payments::host::HttpRequest;
use crate::http::{Error, Method, Response};

pub(super) struct Route {
    method: Method,
    url: UrlMatch,
    reply: Result<Response, Error>,
}

enum UrlMatch {
    Exact(String),
    Prefix(String),
}

impl Route {
    pub(super) fn new(method: Method, url: &str, reply: Result<Response, Error>) -> Self {
        let url = match url.strip_suffix('*') {
            Some(prefix) => UrlMatch::Prefix(prefix.to_owned()),
            None => UrlMatch::Exact(url.to_owned()),
        };
        Self { method, url, reply }
    }

    fn matches(&self, method: Method, url: &str) -> bool {
        self.method == method
            && match &self.url {
                UrlMatch::Exact(exact) => url == exact,
                UrlMatch::Prefix(prefix) => url.starts_with(prefix.as_str()),
            }
    }

    fn describe(&self) -> String {
        match &self.url {
            UrlMatch::Exact(url) => format!("{} {url}", method_name(self.method)),
            UrlMatch::Prefix(prefix) => format!("{} {prefix}*", method_name(self.method)),
        }
    }
}

/// One request as the provider handed it to `fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl SentRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8; panics if it is not.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_else(|e| panic!("the body of {} is not UTF-8: {e}", self.line()))
    }

    /// An `application/x-www-form-urlencoded` body, decoded, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        self.text()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (url_decode(k), url_decode(v))
            })
            .collect()
    }

    /// The first form field named `name`, decoded.
    pub fn form_field(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    /// `POST https://…`, for messages.
    pub fn line(&self) -> String {
        format!("{} {}", method_name(self.method), self.url)
    }
}

impl State {
    pub(super) fn fetch(&self, request: &HttpRequest) -> Result<Response, Error> {
        let sent = SentRequest {
            method: request.method,
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
        };
        let line = sent.line();
        self.sent.borrow_mut().push(sent);
        let routes = self.routes.borrow();
        if let Some(route) = routes.iter().find(|r| r.matches(request.method, &request.url)) {
            return route.reply.clone();
        }
        if let Some(error) = self.unmatched.borrow().clone() {
            return Err(error);
        }
        let canned: Vec<String> = routes.iter().map(Route::describe).collect();
        panic!("no canned response for {line} (canned: {canned:?}); add one with Harness::respond");
    }
}

pub(super) fn lines(sent: &[SentRequest]) -> Vec<String> {
    sent.iter().map(SentRequest::line).collect()
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

/// Percent-decoding with `+` as a space; an invalid escape is kept as it is.
fn url_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%' && i + 2 < b.len()).then(|| Some(hex(b[i + 1])? * 16 + hex(b[i + 2])?)).flatten();
        match (b[i], escaped) {
            (_, Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (other, None) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
