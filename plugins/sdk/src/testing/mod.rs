//! Run a provider natively, in a plain `cargo test`: no wasmtime, no host, no database.
//!
//! Compiled for the machine's own target (anything but `wasm32`), the SDK's host functions —
//! [`http::Request::send`](crate::http::Request::send), [`config`](crate::config),
//! [`secret`](crate::secret), [`now`](crate::now) and [`log`](mod@crate::log) — are answered by
//! the [`Harness`] the test set up: canned HTTP responses matched by method and URL (every request
//! recorded), config and secret maps, a fixed clock, and captured log lines. In a component none
//! of this exists: this module is not compiled for `wasm32`.
//!
//! ```
//! use lessor_plugin_sdk::http::Method;
//! use lessor_plugin_sdk::testing::{self, Harness};
//!
//! let harness = Harness::new()
//!     .secret("api_key", "sk_test_1")
//!     .respond(Method::Post, "https://api.acme.test/charges", testing::json(201, r#"{"id":"ch_1"}"#))
//!     .respond(Method::Get, "https://api.acme.test/*", testing::status(404)); // a prefix
//! let status = harness.run(|| {
//!     lessor_plugin_sdk::http::Request::post("https://api.acme.test/charges").body("x").send().map(|r| r.status)
//! });
//! assert_eq!(status, Ok(201));
//! assert_eq!(harness.requests()[0].url, "https://api.acme.test/charges");
//! ```
//!
//! A request no canned response matches fails the test with a panic naming it, unless
//! [`Harness::unmatched`] says which [`http::Error`](crate::http::Error) it gets instead.

mod fetch;
pub(crate) mod host;
mod samples;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;

use crate::http::{Error, Method, Response};
use crate::log::Level;
use crate::{
    PaymentLookup, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo, RefundLookup, RefundOutcome,
    RefundRequest, WebhookBatch, WebhookRequest,
};

pub use fetch::SentRequest;
pub use samples::{
    json, payment_lookup, payment_request, refund_lookup, refund_request, response, sepa_payment_request, status,
    webhook_request,
};

/// 2024-01-01T00:00:00Z in Unix milliseconds: what [`now`](crate::now) answers unless
/// [`Harness::now`] says otherwise.
pub const DEFAULT_NOW_MS: u64 = 1_704_067_200_000;

/// A stand-in for the host, for one test. Build it, then call provider code inside
/// [`Harness::run`] (or [`Harness::process`] and friends) and assert on what it returns,
/// [`Harness::requests`] and [`Harness::logs`]. Not `Send`: a harness belongs to its test's thread.
#[derive(Clone, Default)]
pub struct Harness {
    state: Rc<State>,
}

/// One log line the provider wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

impl LogLine {
    /// The value of field `key`, if the line has it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

struct State {
    config: RefCell<BTreeMap<String, String>>,
    secrets: RefCell<BTreeMap<String, String>>,
    now: Cell<u64>,
    routes: RefCell<Vec<fetch::Route>>,
    unmatched: RefCell<Option<Error>>,
    sent: RefCell<Vec<SentRequest>>,
    logs: RefCell<Vec<LogLine>>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            config: RefCell::default(),
            secrets: RefCell::default(),
            now: Cell::new(DEFAULT_NOW_MS),
            routes: RefCell::default(),
            unmatched: RefCell::default(),
            sent: RefCell::default(),
            logs: RefCell::default(),
        }
    }
}

impl Harness {
    /// No config, no secrets, no canned responses, the clock at [`DEFAULT_NOW_MS`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A configuration value, as [`config`](crate::config) will answer it.
    pub fn config(self, key: &str, value: &str) -> Self {
        self.state.config.borrow_mut().insert(key.to_owned(), value.to_owned());
        self
    }

    /// A secret, as [`secret`](crate::secret) will answer it.
    pub fn secret(self, key: &str, value: &str) -> Self {
        self.state.secrets.borrow_mut().insert(key.to_owned(), value.to_owned());
        self
    }

    /// The clock, in Unix milliseconds; it stands still unless [`Harness::set_now`] moves it.
    pub fn now(self, unix_ms: u64) -> Self {
        self.set_now(unix_ms);
        self
    }

    /// Moves the clock, also between two calls of one test.
    pub fn set_now(&self, unix_ms: u64) {
        self.state.now.set(unix_ms);
    }

    /// Answers requests with `method` to `url` with `response`. `url` is matched exactly, or as a
    /// prefix when it ends with `*`. Routes are tried in the order they were added; the first
    /// match wins, and it answers every request it matches.
    pub fn respond(self, method: Method, url: &str, response: Response) -> Self {
        self.state.routes.borrow_mut().push(fetch::Route::new(method, url, Ok(response)));
        self
    }

    /// Like [`Harness::respond`], but the request fails as the host's `fetch` can fail
    /// (`Error::Timeout`, `Error::Connection(…)`, `Error::Denied(…)`, …).
    pub fn fail(self, method: Method, url: &str, error: Error) -> Self {
        self.state.routes.borrow_mut().push(fetch::Route::new(method, url, Err(error)));
        self
    }

    /// What a request matching no route gets. Without this, such a request panics, naming it,
    /// which fails the test.
    pub fn unmatched(self, error: Error) -> Self {
        *self.state.unmatched.borrow_mut() = Some(error);
        self
    }

    /// Runs `f` (provider code) with this harness as its host.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        let _entered = host::enter(Rc::clone(&self.state));
        f()
    }

    pub fn info<P: Provider>(&self) -> ProviderInfo {
        self.run(P::info)
    }

    pub fn validate<P: Provider>(&self, request: &PaymentRequest) -> Result<(), ProviderError> {
        self.run(|| P::validate(request))
    }

    pub fn process<P: Provider>(&self, request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        self.run(|| P::process(request))
    }

    pub fn retrieve_payment<P: Provider>(
        &self,
        lookup: PaymentLookup,
    ) -> Result<Option<PaymentOutcome>, ProviderError> {
        self.run(|| P::retrieve_payment(lookup))
    }

    pub fn refund<P: Provider>(&self, request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        self.run(|| P::refund(request))
    }

    pub fn retrieve_refund<P: Provider>(&self, lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
        self.run(|| P::retrieve_refund(lookup))
    }

    /// The whole batch: every event and the reply (see [`WebhookBatch`]).
    pub fn parse_webhook<P: Provider>(&self, request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        self.run(|| P::parse_webhook(request))
    }

    /// Every request the provider sent so far, in order, unmatched ones included.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.state.sent.borrow().clone()
    }

    /// The one request sent so far; panics, listing them, unless there was exactly one.
    pub fn only_request(&self) -> SentRequest {
        let sent = self.state.sent.borrow();
        match sent.as_slice() {
            [one] => one.clone(),
            many => panic!("expected exactly one request, {} were sent: {:?}", many.len(), fetch::lines(many)),
        }
    }

    /// Every log line written so far, in order.
    pub fn logs(&self) -> Vec<LogLine> {
        self.state.logs.borrow().clone()
    }

    /// Forgets the requests and log lines recorded so far (routes, config and clock stay).
    pub fn clear_records(&self) {
        self.state.sent.borrow_mut().clear();
        self.state.logs.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests;
