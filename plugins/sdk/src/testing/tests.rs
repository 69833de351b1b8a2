//! The harness itself: routing, recording, the clock, config, secrets and logs.

use super::{DEFAULT_NOW_MS, Harness, json, payment_lookup, payment_request, refund_lookup, status, webhook_request};
use crate::http::{Error, Method, Request};
use crate::log::Level;
use crate::{
    EventKind, MethodKind, Money, PaymentLookup, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo,
    WebhookBatch, WebhookEvent, WebhookReply, WebhookRequest,
};

fn send(request: Request) -> Result<u16, Error> {
    request.send().map(|response| response.status)
}

#[test]
fn routes_match_by_method_and_exact_url_or_prefix_and_the_first_match_wins() {
    let harness = Harness::new()
        .respond(Method::Get, "https://api.test/v1/things/1", status(200))
        .respond(Method::Get, "https://api.test/v1/*", status(404))
        .respond(Method::Get, "https://api.test/v1/things/2", status(500))
        .respond(Method::Post, "https://api.test/v1/things", json(201, "{}"));

    harness.run(|| {
        assert_eq!(send(Request::get("https://api.test/v1/things/1")), Ok(200));
        assert_eq!(send(Request::get("https://api.test/v1/things/2")), Ok(404), "the prefix was added first");
        assert_eq!(send(Request::post("https://api.test/v1/things")), Ok(201));
        assert_eq!(send(Request::post("https://api.test/v1/things")), Ok(201), "a route answers every time");
    });
    let urls: Vec<String> = harness.requests().iter().map(|r| r.line()).collect();
    assert_eq!(
        urls,
        [
            "GET https://api.test/v1/things/1",
            "GET https://api.test/v1/things/2",
            "POST https://api.test/v1/things",
            "POST https://api.test/v1/things"
        ]
    );
}

#[test]
fn requests_are_recorded_with_headers_and_a_decodable_form_body() {
    let harness = Harness::new().respond(Method::Post, "https://api.test/pay", status(200));
    harness
        .run(|| {
            send(Request::post("https://api.test/pay").bearer_auth("sk_1").idempotency_key("key-1").form(&[
                ("amount", "1200"),
                ("metadata[note]", "a b&c=d/é"),
                ("empty", ""),
            ]))
        })
        .unwrap();

    let sent = harness.only_request();
    assert_eq!(sent.method, Method::Post);
    assert_eq!(sent.header("Authorization"), Some("Bearer sk_1"));
    assert_eq!(sent.header("idempotency-key"), Some("key-1"));
    assert_eq!(sent.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        sent.form(),
        [("amount", "1200"), ("metadata[note]", "a b&c=d/é"), ("empty", "")].map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    assert_eq!(sent.form_field("metadata[note]").as_deref(), Some("a b&c=d/é"));
}

#[test]
fn query_pairs_are_appended_percent_encoded() {
    let harness = Harness::new().respond(Method::Get, "https://api.test/search?q=a%27b+c&limit=10", status(200));
    let sent = harness.run(|| send(Request::get("https://api.test/search").query(&[("q", "a'b c"), ("limit", "10")])));
    assert_eq!(sent, Ok(200));
}

#[test]
fn a_failing_route_answers_with_its_error() {
    let harness = Harness::new().fail(Method::Post, "https://api.test/*", Error::Timeout);
    assert_eq!(harness.run(|| send(Request::post("https://api.test/pay"))), Err(Error::Timeout));
    assert_eq!(harness.requests().len(), 1);
}

#[test]
#[should_panic(expected = "no canned response for DELETE https://api.test/things/1")]
fn an_unmatched_request_fails_the_test_naming_it() {
    let harness = Harness::new().respond(Method::Get, "https://api.test/things/1", status(200));
    let _ = harness.run(|| send(Request::delete("https://api.test/things/1")));
}

#[test]
fn an_unmatched_request_gets_the_configured_error_and_is_recorded() {
    let denied = Error::Denied("https://elsewhere.test".to_owned());
    let harness = Harness::new().unmatched(denied.clone());
    assert_eq!(harness.run(|| send(Request::get("https://elsewhere.test/x"))), Err(denied));
    assert_eq!(harness.only_request().url, "https://elsewhere.test/x");
}

#[test]
fn config_secrets_and_the_clock_come_from_the_harness() {
    let harness = Harness::new().config("region", "eu").secret("api_key", "sk_1");
    harness.run(|| {
        assert_eq!(crate::now(), DEFAULT_NOW_MS);
        assert_eq!(crate::config("region").as_deref(), Some("eu"));
        assert_eq!(crate::config("missing"), None);
        assert_eq!(crate::require_secret("api_key").map(|s| s.expose().to_owned()), Ok("sk_1".to_owned()));
        assert_eq!(crate::require_config("missing"), Err(ProviderError::Misconfigured("missing".to_owned())));
    });
    let blank = Harness::new().config("region", " ").secret("api_key", "");
    blank.run(|| {
        assert_eq!(crate::require_config("region"), Err(ProviderError::Misconfigured("region".to_owned())));
        let secret = crate::require_secret("api_key").map(|s| s.expose().to_owned());
        assert_eq!(secret, Err(ProviderError::Misconfigured("api_key".to_owned())));
    });
    harness.set_now(1_000);
    assert_eq!(harness.run(crate::now), 1_000);
    assert_eq!(Harness::new().now(42).run(crate::now), 42);
}

#[test]
fn log_lines_are_captured_with_their_fields() {
    let harness = Harness::new();
    harness.run(|| crate::log::warn!(code = "card_declined", attempt = 2; "declined {}", "pay-1"));
    let logs = harness.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].level, Level::Warn);
    assert_eq!(logs[0].message, "declined pay-1");
    assert_eq!(logs[0].field("code"), Some("card_declined"));
    assert_eq!(logs[0].field("attempt"), Some("2"));
    harness.clear_records();
    assert!(harness.logs().is_empty());
}

#[test]
#[should_panic(expected = "outside a test harness")]
fn host_functions_outside_a_harness_say_so() {
    let _ = crate::now();
}

#[test]
fn a_harness_is_left_when_its_run_ends_even_by_a_panic() {
    let harness = Harness::new().now(7);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness.run(|| panic!("provider bug"))));
    assert!(panicked.is_err());
    assert!(std::panic::catch_unwind(crate::now).is_err(), "no harness is active any more");
    assert_eq!(harness.run(crate::now), 7);
}

/// A provider with only the required calls: the others keep the SDK's defaults.
struct Bare;

impl Provider for Bare {
    fn info() -> ProviderInfo {
        ProviderInfo::new("bare", "1.0.0").currencies(&["EUR"])
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Request::post("https://api.test/pay").send()?;
        Ok(PaymentOutcome::succeeded(request.payment_id))
    }
}

/// Looks payments up by idempotency key and answers webhooks of `<event id>,<transaction id>`
/// lines with `[accepted]`.
struct Batching;

impl Provider for Batching {
    fn info() -> ProviderInfo {
        ProviderInfo::new("batching", "1.0.0").currencies(&["EUR"]).partial_refunds().webhooks()
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Ok(PaymentOutcome::succeeded(request.payment_id))
    }

    fn retrieve_payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
        let response = Request::get(format!("https://api.test/pay?key={}", lookup.idempotency_key)).send()?;
        Ok((response.status == 200).then(|| PaymentOutcome::succeeded(String::from_utf8_lossy(&response.body))))
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        let body = String::from_utf8_lossy(&request.body).into_owned();
        let events = body
            .lines()
            .filter_map(|line| line.split_once(','))
            .map(|(id, tx)| WebhookEvent::new(id, EventKind::PaymentSucceeded, tx).occurred_at(request.received_at))
            .collect();
        Ok(WebhookBatch::new(events).reply(WebhookReply::text("[accepted]")))
    }
}

#[test]
fn unimplemented_calls_are_not_supported_so_the_host_falls_back() {
    let harness = Harness::new();
    assert_eq!(harness.retrieve_payment::<Bare>(payment_lookup(None, 100, "EUR")), Err(ProviderError::NotSupported));
    assert_eq!(
        harness.retrieve_refund::<Bare>(refund_lookup("tx-1", None, 100, "EUR")),
        Err(ProviderError::NotSupported)
    );
    assert_eq!(
        harness.parse_webhook::<Bare>(webhook_request(&[], b"x", DEFAULT_NOW_MS)),
        Err(ProviderError::NotSupported)
    );
    assert!(harness.requests().is_empty());
}

#[test]
fn a_denied_request_is_egress_denied_through_the_question_mark() {
    let harness = Harness::new().unmatched(Error::Denied("https://api.test".to_owned()));
    let outcome = harness.process::<Bare>(payment_request(100, "EUR", "tok_1"));
    assert_eq!(outcome, Err(ProviderError::EgressDenied("https://api.test".to_owned())));
    let timeout = Harness::new().fail(Method::Post, "https://api.test/pay", Error::Timeout);
    assert!(matches!(
        timeout.process::<Bare>(payment_request(100, "EUR", "tok_1")),
        Err(ProviderError::ProviderUnavailable(_))
    ));
}

#[test]
fn retrieve_and_batch_webhooks_run_on_the_harness() {
    let harness = Harness::new()
        .respond(Method::Get, "https://api.test/pay?key=idem-9b2f6c1e", json(200, "tx-9"))
        .respond(Method::Get, "https://api.test/pay?*", status(404));
    assert_eq!(
        harness.retrieve_payment::<Batching>(payment_lookup(None, 100, "EUR")),
        Ok(Some(PaymentOutcome::succeeded("tx-9")))
    );
    let other = PaymentLookup { idempotency_key: "idem-other".to_owned(), ..payment_lookup(None, 100, "EUR") };
    assert_eq!(harness.retrieve_payment::<Batching>(other), Ok(None));

    let batch = harness.parse_webhook::<Batching>(webhook_request(&[], b"ev-1,tx-1\nev-2,tx-2\nev-3,tx-3", 5)).unwrap();
    let ids: Vec<(&str, &str)> =
        batch.events.iter().map(|e| (e.event_id.as_str(), e.provider_transaction_id.as_str())).collect();
    assert_eq!(ids, [("ev-1", "tx-1"), ("ev-2", "tx-2"), ("ev-3", "tx-3")]);
    assert_eq!(batch.events[0].occurred_at, Some(5));
    assert_eq!(
        batch.reply,
        WebhookReply { status: 200, content_type: "text/plain".to_owned(), body: b"[accepted]".to_vec() }
    );
}

#[test]
fn provider_info_builds_capabilities() {
    let info = Harness::new().info::<Batching>();
    let caps = &info.capabilities;
    assert_eq!(caps.currencies, ["EUR"]);
    assert_eq!(caps.method_kinds, [MethodKind::Token]);
    assert!(caps.refunds && caps.partial_refunds && caps.webhooks);
    assert!(!caps.asynchronous_settlement && !caps.payer_actions);
    let sepa = ProviderInfo::new("bank", "1.0.0").method_kinds(&[MethodKind::SepaMandate]).asynchronous_settlement();
    assert!(sepa.supports_method_kind(MethodKind::SepaMandate) && !sepa.supports_method_kind(MethodKind::Token));
    assert!(!sepa.supports_currency("EUR") && !sepa.capabilities.refunds);
    let event = WebhookEvent::new("ev", EventKind::RefundSucceeded, "tx").refund("rf").amount(Money::new(5, "EUR"));
    assert_eq!(event.provider_refund_id.as_deref(), Some("rf"));
}
