//! `parse_webhook`: `Stripe-Signature` verified over the raw body, events normalised.

use hmac::{Hmac, Mac};
use lessor_plugin_sdk::testing::{self, Harness};
use lessor_plugin_sdk::{EventKind, Money, ProviderError, WebhookEvent, WebhookReply};
use sha2::Sha256;

use crate::Stripe;

const WEBHOOK_SECRET: &str = "whsec_test_6a8c0e2f4b6d8f0a2c4e6b8d0f2a4c6e";
/// When the host received the webhook (Unix ms); signatures are made a few seconds before.
const RECEIVED_AT: u64 = 1_714_000_000_000;
const SIGNED_AT: u64 = RECEIVED_AT / 1000 - 5;

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, as Stripe computes it.
fn stripe_signature(secret: &str, t: u64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The event of a delivery (Stripe sends one per request), checking the reply is the plain 200.
fn deliver(harness: &Harness, signature: &str, body: &str) -> Result<Option<WebhookEvent>, ProviderError> {
    let request = testing::webhook_request(&[("Stripe-Signature", signature)], body.as_bytes(), RECEIVED_AT);
    let batch = harness.parse_webhook::<Stripe>(request)?;
    assert_eq!(batch.reply, WebhookReply::ok(), "Stripe needs any 2xx");
    assert!(batch.events.len() <= 1, "one event per delivery: {:?}", batch.events);
    Ok(batch.events.into_iter().next())
}

fn harness() -> Harness {
    Harness::new().secret("webhook_secret", WEBHOOK_SECRET)
}

fn event(kind: &str, object: &str) -> String {
    format!(
        r#"{{"id": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "object": "event", "api_version": "2024-06-20",
        "created": 1713999990, "livemode": false, "pending_webhooks": 1, "type": "{kind}",
        "data": {{"object": {object}}}}}"#
    )
}

const SUCCEEDED_INTENT: &str = r#"{"id": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "object": "payment_intent",
    "amount": 45000, "amount_received": 45000, "currency": "eur", "status": "succeeded"}"#;

#[test]
fn a_signed_payment_intent_succeeded_becomes_payment_succeeded() {
    let body = event("payment_intent.succeeded", SUCCEEDED_INTENT);

    let parsed = deliver(&harness(), &stripe_signature(WEBHOOK_SECRET, SIGNED_AT, &body), &body);

    let expected = WebhookEvent {
        amount: Some(Money::new(45000, "EUR")),
        occurred_at: Some(1_713_999_990_000),
        ..WebhookEvent::new("evt_1NG8Du2eZvKYlo2CUI79vXWy", EventKind::PaymentSucceeded, "pi_3MtwBwLkdIwHu7ix28a3tqPa")
    };
    assert_eq!(parsed, Ok(Some(expected)));
}

#[test]
fn a_signature_while_the_secret_is_rolled_verifies_if_any_v1_matches() {
    let body = event("payment_intent.succeeded", SUCCEEDED_INTENT);
    let old = stripe_signature("whsec_old", SIGNED_AT, &body);
    let new = stripe_signature(WEBHOOK_SECRET, SIGNED_AT, &body);
    let rolled = format!("{old},{},v0=deadbeef", new.split_once(',').unwrap().1);

    assert!(matches!(deliver(&harness(), &rolled, &body), Ok(Some(_))));
}

#[test]
fn bad_signatures_are_refused() {
    let body = event("payment_intent.succeeded", SUCCEEDED_INTENT);
    let tampered = body.replace("45000", "1");
    let cases = [
        ("another secret", stripe_signature("whsec_other", SIGNED_AT, &body), body.clone()),
        ("a tampered body", stripe_signature(WEBHOOK_SECRET, SIGNED_AT, &body), tampered),
        (
            "signed 301 s before receipt",
            stripe_signature(WEBHOOK_SECRET, RECEIVED_AT / 1000 - 301, &body),
            body.clone(),
        ),
        ("signed 301 s after receipt", stripe_signature(WEBHOOK_SECRET, RECEIVED_AT / 1000 + 301, &body), body.clone()),
        ("no v1", format!("t={SIGNED_AT}"), body.clone()),
        (
            "no timestamp",
            stripe_signature(WEBHOOK_SECRET, SIGNED_AT, &body).replace(&format!("t={SIGNED_AT},"), ""),
            body.clone(),
        ),
        ("not hex", format!("t={SIGNED_AT},v1=zz"), body.clone()),
    ];
    for (what, signature, body) in cases {
        assert_eq!(deliver(&harness(), &signature, &body), Err(ProviderError::SignatureInvalid), "{what}");
    }
    let unsigned = testing::webhook_request(&[], body.as_bytes(), RECEIVED_AT);
    assert_eq!(harness().parse_webhook::<Stripe>(unsigned), Err(ProviderError::SignatureInvalid));
}

#[test]
fn charge_refunded_reports_the_cumulative_refunded_amount_of_the_intent() {
    let charge = r#"{"id": "ch_3MtwBwLkdIwHu7ix28a3tqPa", "object": "charge", "amount": 45000,
        "amount_refunded": 9000, "currency": "eur", "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa", "refunded": false}"#;
    let body = event("charge.refunded", charge);

    let parsed = deliver(&harness(), &stripe_signature(WEBHOOK_SECRET, SIGNED_AT, &body), &body).unwrap().unwrap();

    assert_eq!(parsed.kind, EventKind::RefundSucceeded);
    assert_eq!(parsed.provider_transaction_id, "pi_3MtwBwLkdIwHu7ix28a3tqPa");
    assert_eq!(parsed.provider_refund_id, None, "about the charge, not one refund");
    assert_eq!(parsed.amount, Some(Money::new(9000, "EUR")));
}

#[test]
fn refund_events_carry_the_refund_id_and_only_final_states_count() {
    let refund = |status: &str| {
        format!(
            r#"{{"id": "re_3MtwCJ", "object": "refund", "amount": 4000, "currency": "eur",
            "payment_intent": "pi_3MtwBw", "status": "{status}", "failure_reason": "lost_or_stolen_card"}}"#
        )
    };
    let sign = |body: &str| stripe_signature(WEBHOOK_SECRET, SIGNED_AT, body);

    let body = event("refund.updated", &refund("succeeded"));
    let parsed = deliver(&harness(), &sign(&body), &body).unwrap().unwrap();
    assert_eq!(parsed.kind, EventKind::RefundSucceeded);
    assert_eq!(parsed.provider_refund_id.as_deref(), Some("re_3MtwCJ"));
    assert_eq!(parsed.provider_transaction_id, "pi_3MtwBw");
    assert_eq!(parsed.amount, Some(Money::new(4000, "EUR")));
    assert_eq!(parsed.occurred_at, Some(1_713_999_990_000));

    let body = event("refund.failed", &refund("failed"));
    let parsed = deliver(&harness(), &sign(&body), &body).unwrap().unwrap();
    assert_eq!(parsed.kind, EventKind::RefundFailed);
    assert_eq!(parsed.reason_code.as_deref(), Some("lost_or_stolen_card"));

    let body = event("refund.created", &refund("pending"));
    assert_eq!(deliver(&harness(), &sign(&body), &body), Ok(None));

    let without_intent = refund("succeeded").replace(r#""payment_intent": "pi_3MtwBw","#, "");
    let body = event("refund.updated", &without_intent);
    assert_eq!(deliver(&harness(), &sign(&body), &body), Ok(None), "not a refund this plugin made");
}

#[test]
fn other_events_are_authentic_but_ignored_and_an_unreadable_body_names_the_body() {
    let body = event("customer.created", r#"{"id": "cus_1", "object": "customer"}"#);
    assert_eq!(deliver(&harness(), &stripe_signature(WEBHOOK_SECRET, SIGNED_AT, &body), &body), Ok(None));

    let body = "not an event";
    let parsed = deliver(&harness(), &stripe_signature(WEBHOOK_SECRET, SIGNED_AT, body), body);
    assert!(matches!(parsed, Err(ProviderError::InvalidRequest(ref f)) if f.field == "body"), "{parsed:?}");
}

#[test]
fn without_a_webhook_secret_nothing_is_verified() {
    let body = event("payment_intent.succeeded", SUCCEEDED_INTENT);
    let parsed = deliver(&Harness::new(), &stripe_signature("", SIGNED_AT, &body), &body);
    assert_eq!(parsed, Err(ProviderError::Misconfigured("webhook_secret".to_owned())));
}
