//! `retrieve_payment` and `retrieve_refund`: GETs only, by Stripe's id or by the host's ids in
//! the metadata `process` and `refund` set.

use lessor_plugin_sdk::http::{Error, Method};
use lessor_plugin_sdk::testing::{self, Harness};
use lessor_plugin_sdk::{PaymentOutcome, ProviderError, RefundOutcome, RefundStatus};

use super::{API_BASE, SECRET_KEY, error_body};
use crate::Stripe;

const PAYMENT_ID: &str = "9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d";
/// `metadata['payment_id']:'<payment id>'`, form-encoded as the query's `query` parameter.
const SEARCH: &str = "/v1/payment_intents/search?query=metadata%5B%27payment_id%27%5D%3A%279b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d%27&limit=10";

fn intent(id: &str, status: &str, amount: i64, payment_id: &str) -> String {
    format!(
        r#"{{"id": "{id}", "object": "payment_intent", "amount": {amount}, "amount_received": 0,
        "currency": "eur", "metadata": {{"payment_id": "{payment_id}", "lease_id": "lease-1"}},
        "status": "{status}", "next_action": null, "last_payment_error": null}}"#
    )
}

fn refund(id: &str, status: &str, refund_id: &str) -> String {
    format!(
        r#"{{"id": "{id}", "object": "refund", "amount": 4000, "currency": "eur", "status": "{status}",
        "payment_intent": "pi_3MtwBw", "metadata": {{"refund_id": "{refund_id}", "payment_id": "{PAYMENT_ID}"}},
        "failure_reason": null}}"#
    )
}

fn stripe() -> Harness {
    Harness::new().config("api_base", API_BASE).secret("secret_key", SECRET_KEY)
}

fn get(harness: Harness, path_and_query: &str, status: u16, body: &str) -> Harness {
    harness.respond(Method::Get, &format!("{API_BASE}{path_and_query}"), testing::json(status, body))
}

#[test]
fn a_known_payment_intent_is_read_by_id_without_an_idempotency_key() {
    let harness =
        get(stripe(), "/v1/payment_intents/pi_3MtwBw", 200, &intent("pi_3MtwBw", "succeeded", 45000, PAYMENT_ID));

    let outcome = harness.retrieve_payment::<Stripe>(testing::payment_lookup(Some("pi_3MtwBw"), 45000, "EUR"));

    assert_eq!(outcome, Ok(Some(PaymentOutcome::succeeded("pi_3MtwBw"))));
    let sent = harness.only_request();
    assert_eq!(sent.line(), format!("GET {API_BASE}/v1/payment_intents/pi_3MtwBw"));
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {SECRET_KEY}").as_str()));
    assert_eq!(sent.header("stripe-version"), Some("2024-06-20"));
    assert_eq!(sent.header("idempotency-key"), None);
    assert!(sent.body.is_empty());
}

#[test]
fn an_unknown_transaction_is_searched_by_the_payment_id_in_the_metadata() {
    let page = format!(
        r#"{{"object": "search_result", "url": "/v1/payment_intents/search", "has_more": false, "next_page": null,
        "data": [{}, {}]}}"#,
        intent("pi_other", "succeeded", 100, PAYMENT_ID),
        intent("pi_3MtwProc", "processing", 45000, PAYMENT_ID)
    );
    let harness = get(stripe(), SEARCH, 200, &page);

    let outcome = harness.retrieve_payment::<Stripe>(testing::payment_lookup(None, 45000, "EUR"));

    assert_eq!(outcome, Ok(Some(PaymentOutcome::processing("pi_3MtwProc"))), "the one of our amount");
    assert_eq!(harness.only_request().line(), format!("GET {API_BASE}{SEARCH}"));
}

#[test]
fn a_payment_stripe_never_saw_is_none_and_a_declined_one_is_failed() {
    let empty = r#"{"object": "search_result", "data": [], "has_more": false}"#;
    let harness = get(stripe(), SEARCH, 200, empty);
    assert_eq!(harness.retrieve_payment::<Stripe>(testing::payment_lookup(None, 45000, "EUR")), Ok(None));

    let missing = error_body("invalid_request_error", "resource_missing", Some("intent"), "No such payment_intent");
    let harness = get(stripe(), "/v1/payment_intents/pi_gone", 404, &missing);
    assert_eq!(harness.retrieve_payment::<Stripe>(testing::payment_lookup(Some("pi_gone"), 45000, "EUR")), Ok(None));

    let declined = intent("pi_3MtwDecl", "requires_payment_method", 45000, PAYMENT_ID).replace(
        r#""last_payment_error": null"#,
        r#""last_payment_error": {"type": "card_error", "decline_code": "insufficient_funds"}"#,
    );
    let harness = get(stripe(), "/v1/payment_intents/pi_3MtwDecl", 200, &declined);
    assert_eq!(
        harness.retrieve_payment::<Stripe>(testing::payment_lookup(Some("pi_3MtwDecl"), 45000, "EUR")),
        Ok(Some(PaymentOutcome::failed("pi_3MtwDecl", "insufficient_funds")))
    );
}

#[test]
fn retrieve_failures_are_typed_and_bad_ids_never_reach_a_url() {
    let harness = get(stripe(), SEARCH, 503, r#"{"error":{"type":"api_error","message":"down"}}"#);
    let outcome = harness.retrieve_payment::<Stripe>(testing::payment_lookup(None, 45000, "EUR"));
    assert!(matches!(outcome, Err(ProviderError::ProviderUnavailable(_))), "{outcome:?}");

    let harness = stripe().unmatched(Error::Denied("https://stripe.test".to_owned()));
    let outcome = harness.retrieve_payment::<Stripe>(testing::payment_lookup(None, 45000, "EUR"));
    assert_eq!(outcome, Err(ProviderError::EgressDenied("https://stripe.test".to_owned())));

    let harness = stripe();
    let outcome = harness.retrieve_payment::<Stripe>(testing::payment_lookup(Some("pi_1/../../v1/charges"), 1, "EUR"));
    assert!(matches!(outcome, Err(ProviderError::InvalidRequest(ref f)) if f.field == "provider-transaction-id"));
    let outcome = harness.retrieve_refund::<Stripe>(testing::refund_lookup("pi_3MtwBw", Some("re_1?x=1"), 1, "EUR"));
    assert!(matches!(outcome, Err(ProviderError::InvalidRequest(ref f)) if f.field == "provider-refund-id"));
    assert!(harness.requests().is_empty());

    let no_key = Harness::new();
    let outcome = no_key.retrieve_refund::<Stripe>(testing::refund_lookup("pi_3MtwBw", None, 4000, "EUR"));
    assert_eq!(outcome, Err(ProviderError::Misconfigured("secret_key".to_owned())));
}

#[test]
fn a_known_refund_is_read_by_id() {
    let harness = get(stripe(), "/v1/refunds/re_3MtwCJ", 200, &refund("re_3MtwCJ", "succeeded", "refund-1"));

    let outcome =
        harness.retrieve_refund::<Stripe>(testing::refund_lookup("pi_3MtwBw", Some("re_3MtwCJ"), 4000, "EUR"));

    assert_eq!(outcome, Ok(Some(RefundOutcome::new(RefundStatus::Succeeded, "re_3MtwCJ"))));
    assert_eq!(harness.only_request().line(), format!("GET {API_BASE}/v1/refunds/re_3MtwCJ"));
}

#[test]
fn an_unknown_refund_is_found_among_the_intents_refunds_by_its_metadata_page_by_page() {
    let first = format!(
        r#"{{"object": "list", "url": "/v1/refunds", "has_more": true, "data": [{}]}}"#,
        refund("re_other", "succeeded", "refund-0")
    );
    let second = format!(
        r#"{{"object": "list", "url": "/v1/refunds", "has_more": false, "data": [{}]}}"#,
        refund("re_ours", "pending", "refund-1")
    );
    let harness = get(stripe(), "/v1/refunds?payment_intent=pi_3MtwBw&limit=100&starting_after=re_other", 200, &second);
    let harness = get(harness, "/v1/refunds?payment_intent=pi_3MtwBw&limit=100", 200, &first);

    let outcome = harness.retrieve_refund::<Stripe>(testing::refund_lookup("pi_3MtwBw", None, 4000, "EUR"));

    assert_eq!(outcome, Ok(Some(RefundOutcome::new(RefundStatus::Pending, "re_ours"))));
    assert_eq!(harness.requests().len(), 2);

    let none = r#"{"object": "list", "has_more": false, "data": []}"#;
    let harness = get(stripe(), "/v1/refunds?payment_intent=pi_3MtwBw&limit=100", 200, none);
    assert_eq!(harness.retrieve_refund::<Stripe>(testing::refund_lookup("pi_3MtwBw", None, 4000, "EUR")), Ok(None));
}
