//! The harness itself: routing, recording, the clock, config, secrets and logs.

use super::{DEFAULT_NOW_MS, Harness, json, status};
use crate::http::{Error, Method, Request};
use crate::log::Level;

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
        assert!(crate::require_config("missing").is_err());
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
