//! The real provider plugins (`plugins/stripe`, `plugins/bank`) as the host runs them: built by
//! `cargo xtask plugins`, loaded into `PluginRuntime`, talking to local peers that speak Stripe's
//! API and the bank's (tests/peers). Each test starts its own peer, so tests run side by side.

#[path = "plugins/build.rs"]
#[allow(dead_code)]
mod build;
#[path = "peers/mod.rs"]
mod peers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use build::{map, package};
use host::plugins::{
    Grants, Limits, LoadedPlugin, Origin, PluginCallError, PluginRuntime, ProviderError, RuntimeConfig, SandboxFailure,
};
use lessor_payments::{
    Currency, EventAmount, MethodKind, NormalizedEvent, PaymentOutcome, PaymentRequest, ProviderEventKind,
    ProviderPaymentStatus, ProviderRefundStatus, RefundRequest, WebhookBatch, WebhookRequest,
};
use peers::bank::{self, BankPeer};
use peers::stripe::{self as stripe_peer, StripePeer};
use peers::{Fault, hex, hmac_sha256, unix_now};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

const STRIPE_KEY: &str = "sk_test_peer_51Hx";
const STRIPE_WHSEC: &str = "whsec_test_peer";
const BANK_CLIENT: &str = "lessor-test-client";
const BANK_SECRET: &str = "bank-client-secret";
const BANK_WHSEC: &str = "bank-webhook-secret";
/// The Bundesbank's example SEPA creditor identifier (valid check digits).
const CREDITOR_ID: &str = "DE98ZZZ09999999999";
/// Host HTTP gives up after this; `Fault::Slow` beyond it must never look like a success.
const HTTP_TIMEOUT: Duration = Duration::from_millis(1500);

fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let config = RuntimeConfig {
            limits: Limits { timeout: Duration::from_secs(5), http_timeout: HTTP_TIMEOUT, ..Limits::default() },
            cache_dir: Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("provider-plugin-cache")),
            max_concurrent_calls: 16,
            ..RuntimeConfig::default()
        };
        PluginRuntime::new(config).expect("plugin runtime")
    })
}

/// The one place these tests load a plugin: the package as `cargo xtask plugins` built it, its
/// `api_base` pointed at a local peer and that peer's origin granted.
///
/// The packages request only the real APIs' origins (`https://api.stripe.com`, the bank's
/// placeholder); the operator grants extra origins at install (`--grant-host`), which the
/// runtime accepts beyond the manifest's `hosts`. Were it ever to refuse an origin the manifest
/// does not request, this function would load a copy of the manifest with the peer's origin
/// added to `hosts` instead.
fn load(name: &str, api_base: &str, config: &[(&str, &str)], secrets: &[(&str, &str)]) -> LoadedPlugin {
    let p = package(name);
    let origin: Origin = api_base.parse().expect("the peer's origin");
    let mut config = map(config);
    config.insert("api_base".to_owned(), api_base.to_owned());
    let secrets: BTreeMap<String, SecretString> =
        secrets.iter().map(|(k, v)| ((*k).to_owned(), SecretString::from(*v))).collect();
    runtime()
        .load(&p.manifest, &p.component, Grants::new([origin]), config, secrets)
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn load_stripe(peer: &StripePeer) -> LoadedPlugin {
    load("stripe", &peer.origin(), &[], &[("secret_key", STRIPE_KEY), ("webhook_secret", STRIPE_WHSEC)])
}

fn load_bank(peer: &BankPeer, client_secret: &str) -> LoadedPlugin {
    load(
        "bank",
        &peer.origin(),
        &[("client_id", BANK_CLIENT), ("creditor_id", CREDITOR_ID)],
        &[("client_secret", client_secret), ("webhook_secret", BANK_WHSEC)],
    )
}

/// The UUID `name` is, or one named by it (the same on every call): which payment a test means.
fn pid(name: &str) -> Uuid {
    name.parse().unwrap_or_else(|_| {
        Uuid::from_u128(name.bytes().fold(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d_u128, |h, b| {
            (h ^ u128::from(b)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
        }))
    })
}

fn cur(code: &str) -> Currency {
    Currency::parse(code).expect("currency")
}

fn eur_amount(amount: i64) -> Option<EventAmount> {
    Some(EventAmount { amount, currency: "EUR".into() })
}

fn provider_error<T: std::fmt::Debug>(result: Result<T, PluginCallError>) -> ProviderError {
    match result {
        Err(PluginCallError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

fn invalid_field<T: std::fmt::Debug>(result: Result<T, PluginCallError>) -> (String, String) {
    match provider_error(result) {
        ProviderError::InvalidRequest { field, reason } => (field, reason),
        other => panic!("expected invalid-request, got {other:?}"),
    }
}

/// The call failed in a way that says "try again later": never an outcome.
fn assert_unavailable<T: std::fmt::Debug>(result: Result<T, PluginCallError>, what: &str) {
    match result {
        Err(PluginCallError::Provider(ProviderError::ProviderUnavailable(_))) => {}
        Err(PluginCallError::Sandbox { failure: SandboxFailure::Timeout, .. }) => {}
        other => panic!("{what}: expected provider-unavailable or a timeout, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Stripe
// ---------------------------------------------------------------------------------------------

fn card_payment(id: &str, amount: i64, payment_method: &str) -> PaymentRequest {
    PaymentRequest {
        payment_id: pid(id),
        lease_id: pid("lease-7"),
        installment_id: Some(pid("inst-3")),
        amount,
        currency: cur("EUR"),
        method_kind: MethodKind::of_wire(payment_method),
        payment_method: payment_method.into(),
        idempotency_key: format!("idem-{id}"),
        metadata: vec![("channel".into(), "portal".into())],
    }
}

fn stripe_refund(id: &str, intent: &str, amount: i64, reason: Option<&str>) -> RefundRequest {
    RefundRequest {
        refund_id: pid(id),
        payment_id: pid("pay-refunded"),
        provider_tx_id: intent.into(),
        amount,
        currency: cur("EUR"),
        reason: reason.map(str::to_owned),
        idempotency_key: format!("idem-{id}"),
    }
}

#[tokio::test]
async fn stripe_card_payment_succeeds_with_the_documented_request() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    assert_eq!(plugin.provider_info().id, "stripe");
    assert!(plugin.provider_info().capabilities.currencies.contains(&"EUR".to_owned()));

    let outcome = plugin.process(card_payment("pay-1", 1299, "pm_card_visa")).await.expect("charge");
    assert_eq!(outcome.status, ProviderPaymentStatus::Succeeded);
    let intent = &peer.payment_intents()[0];
    assert_eq!(outcome.provider_tx_id, intent.id);
    assert!(intent.id.starts_with("pi_"), "{}", intent.id);
    assert_eq!((outcome.decline_code, outcome.next_action_url), (None, None));

    let requests = peer.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/v1/payment_intents"));
    assert_eq!(request.header("authorization"), Some(format!("Bearer {STRIPE_KEY}").as_str()));
    assert_eq!(request.header("idempotency-key"), Some("idem-pay-1"));
    assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert!(request.header("stripe-version").is_some_and(|v| v.len() == 10), "a pinned API version");
    let mut form = request.form();
    form.sort();
    let (installment, lease, payment) =
        (pid("inst-3").to_string(), pid("lease-7").to_string(), pid("pay-1").to_string());
    let expected = [
        ("amount", "1299"),
        ("confirm", "true"),
        ("currency", "eur"),
        ("metadata[channel]", "portal"),
        ("metadata[installment_id]", installment.as_str()),
        ("metadata[lease_id]", lease.as_str()),
        ("metadata[payment_id]", payment.as_str()),
        ("payment_method", "pm_card_visa"),
        ("payment_method_types[]", "card"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
    assert_eq!(form, expected);
    // Brackets travel percent-encoded, as a form encoder must send them.
    assert!(request.text().contains(&format!("metadata%5Bpayment_id%5D={payment}")), "{}", request.text());
    assert_eq!(intent.metadata.get("lease_id"), Some(&lease));
    assert_eq!((intent.status.as_str(), intent.amount_received), ("succeeded", 1299));
}

#[tokio::test]
async fn stripe_without_an_installment_sends_no_installment_metadata() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let mut request = card_payment("pay-no-inst", 500, "tok_visa");
    request.installment_id = None;
    request.currency = cur("GBP");
    assert_eq!(plugin.process(request).await.expect("charge").status, ProviderPaymentStatus::Succeeded);
    let form = peer.requests()[0].form();
    assert!(!form.iter().any(|(k, _)| k == "metadata[installment_id]"), "{form:?}");
    assert!(form.contains(&("currency".into(), "gbp".into())), "{form:?}");
    assert!(form.contains(&("payment_method".into(), "tok_visa".into())), "{form:?}");
}

#[tokio::test]
async fn stripe_declined_cards_fail_with_the_decline_code() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);

    let outcome = plugin.process(card_payment("pay-declined", 1000, "pm_card_chargeDeclined")).await.expect("outcome");
    assert_eq!(outcome.status, ProviderPaymentStatus::Failed);
    assert_eq!(outcome.decline_code.as_deref(), Some("generic_decline"));
    let declined = peer.payment_intents().into_iter().find(|pi| pi.payment_method == "pm_card_chargeDeclined");
    assert_eq!(outcome.provider_tx_id, declined.expect("the declined intent").id);

    let outcome = plugin
        .process(card_payment("pay-poor", 1000, "pm_card_chargeDeclinedInsufficientFunds"))
        .await
        .expect("outcome");
    assert_eq!(outcome.status, ProviderPaymentStatus::Failed);
    assert_eq!(outcome.decline_code.as_deref(), Some("insufficient_funds"));
    assert!(outcome.provider_tx_id.starts_with("pi_"), "{outcome:?}");

    // A 200 whose intent fell back to requires_payment_method is a failure too.
    let outcome = plugin.process(card_payment("pay-dnh", 1000, "pm_requires_payment_method")).await.expect("outcome");
    assert_eq!(outcome.status, ProviderPaymentStatus::Failed);
    assert_eq!(outcome.decline_code.as_deref(), Some("do_not_honor"));
}

#[tokio::test]
async fn stripe_three_d_secure_requires_action_and_async_methods_are_processing() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);

    let outcome =
        plugin.process(card_payment("pay-3ds", 2500, "pm_card_threeDSecure2Required")).await.expect("outcome");
    assert_eq!(outcome.status, ProviderPaymentStatus::RequiresAction);
    let url = outcome.next_action_url.expect("a redirect URL");
    assert_eq!(url, format!("{}/3ds/{}", peer.origin(), outcome.provider_tx_id));

    let outcome = plugin.process(card_payment("pay-slow-method", 2500, "pm_processing")).await.expect("outcome");
    assert_eq!(outcome.status, ProviderPaymentStatus::Processing);
    assert_eq!(peer.payment_intent(&outcome.provider_tx_id).expect("intent").status, "processing");
}

#[tokio::test]
async fn stripe_validate_checks_token_amount_and_currency_without_calling_stripe() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);

    plugin.validate(card_payment("v-1", 100, "pm_card_visa")).await.expect("pm_ token");
    plugin.validate(card_payment("v-2", 100, "tok_visa")).await.expect("tok_ token");
    for bad in ["4242424242424242", "card_1", "pm_", "pm_bad token", "src_123", ""] {
        let (field, _) = invalid_field(plugin.validate(card_payment("v-3", 100, bad)).await);
        assert_eq!(field, "payment-method", "{bad:?}");
    }
    let mut yen = card_payment("v-4", 100, "pm_card_visa");
    yen.currency = cur("JPY");
    assert_eq!(invalid_field(plugin.validate(yen).await).0, "amount.currency");
    assert_eq!(invalid_field(plugin.validate(card_payment("v-5", 0, "pm_card_visa")).await).0, "amount.amount");
    assert_eq!(invalid_field(plugin.process(card_payment("v-6", 100, "iban:DE89")).await).0, "payment-method");
    assert!(peer.requests().is_empty(), "validation never reaches Stripe");
}

#[tokio::test]
async fn stripe_a_retry_with_the_same_key_charges_once() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let request = card_payment("pay-retry", 4200, "pm_card_visa");

    let first = plugin.process(request.clone()).await.expect("first");
    let second = plugin.process(request.clone()).await.expect("retry");
    assert_eq!(first, second);
    assert_eq!(peer.requests().len(), 2, "both calls reached Stripe");
    assert_eq!(peer.charges_created(), 1, "the retry replayed the first answer");

    // The same key with other parameters is refused, and charges nothing.
    let mut changed = request.clone();
    changed.amount = 4300;
    assert_eq!(invalid_field(plugin.process(changed).await).0, "idempotency-key");
    assert_eq!(peer.charges_created(), 1);

    // A declined answer replays too: the same key never charges the card a second time.
    let declined = card_payment("pay-retry-declined", 100, "pm_card_chargeDeclined");
    let a = plugin.process(declined.clone()).await.expect("declined");
    let b = plugin.process(declined).await.expect("declined again");
    assert_eq!((a.status, &a.decline_code), (ProviderPaymentStatus::Failed, &Some("generic_decline".to_owned())));
    assert_eq!(a, b);
    assert_eq!(peer.charges_created(), 2);
}

#[tokio::test]
async fn stripe_refunds_full_and_partial_but_never_more_than_captured() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let paid = plugin.process(card_payment("pay-r", 1200, "pm_card_visa")).await.expect("charge");
    let intent = paid.provider_tx_id;

    let first =
        plugin.refund(stripe_refund("ref-1", &intent, 500, Some("requested_by_customer"))).await.expect("refund");
    assert_eq!(first.status, ProviderRefundStatus::Succeeded);
    assert!(first.provider_refund_id.starts_with("re_"), "{first:?}");
    let request = peer.requests().into_iter().find(|r| r.path == "/v1/refunds").expect("refund request");
    assert_eq!(request.header("authorization"), Some(format!("Bearer {STRIPE_KEY}").as_str()));
    assert_eq!(request.header("idempotency-key"), Some("idem-ref-1"));
    let form = request.form();
    for pair in [("payment_intent", intent.as_str()), ("amount", "500"), ("reason", "requested_by_customer")] {
        assert!(form.contains(&(pair.0.into(), pair.1.into())), "{pair:?} in {form:?}");
    }
    assert!(form.contains(&("metadata[refund_id]".into(), pid("ref-1").to_string())), "{form:?}");

    // A reason Stripe has no enum value for travels as metadata.
    let second = plugin.refund(stripe_refund("ref-2", &intent, 700, Some("lease cancelled"))).await.expect("refund");
    assert_eq!(second.status, ProviderRefundStatus::Succeeded);
    let refunds = peer.refunds();
    assert_eq!(refunds[1].reason, None);
    assert_eq!(refunds[1].metadata.get("reason").map(String::as_str), Some("lease cancelled"));
    assert_eq!(peer.payment_intent(&intent).expect("intent").amount_refunded, 1200);

    // Nothing is left: even one cent more is refused.
    let refused = provider_error(plugin.refund(stripe_refund("ref-3", &intent, 1, None)).await);
    assert!(matches!(refused, ProviderError::InvalidRequest { .. }), "{refused:?}");
    assert_eq!(peer.refunds().len(), 2);

    // Over-refunding a fresh payment is refused naming the amount; a full refund then succeeds.
    let other = plugin.process(card_payment("pay-r2", 800, "pm_card_visa")).await.expect("charge");
    let over = invalid_field(plugin.refund(stripe_refund("ref-4", &other.provider_tx_id, 801, None)).await);
    assert_eq!(over.0, "amount.amount", "{over:?}");
    let full = plugin.refund(stripe_refund("ref-5", &other.provider_tx_id, 800, None)).await.expect("full");
    assert_eq!(full.status, ProviderRefundStatus::Succeeded);
    assert_eq!(peer.payment_intent(&other.provider_tx_id).expect("intent").amount_refunded, 800);

    // A refund of something that is not a PaymentIntent never reaches Stripe.
    let before = peer.requests().len();
    let field = invalid_field(plugin.refund(stripe_refund("ref-6", "ch_123", 100, None)).await).0;
    assert_eq!(field, "provider-transaction-id");
    assert_eq!(peer.requests().len(), before);
}

fn stripe_webhook(signature: Option<String>, body: &str, received_at_secs: i64) -> WebhookRequest {
    let mut headers = vec![("Content-Type".to_owned(), "application/json; charset=utf-8".to_owned())];
    if let Some(signature) = signature {
        headers.push(("Stripe-Signature".to_owned(), signature));
    }
    WebhookRequest { headers, body: body.as_bytes().to_vec(), received_at: received_at_secs as u64 * 1000 + 250 }
}

fn event_of(result: Result<WebhookBatch, PluginCallError>) -> NormalizedEvent {
    let batch = result.expect("webhook accepted");
    assert_eq!(batch.events.len(), 1, "one event the host acts on: {batch:?}");
    batch.events.into_iter().next().unwrap()
}

/// Accepted, with no event the host acts on.
fn no_event(result: Result<WebhookBatch, PluginCallError>) -> bool {
    matches!(result, Ok(batch) if batch.events.is_empty())
}

#[tokio::test]
async fn stripe_webhooks_are_verified_and_normalised() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let paid = plugin.process(card_payment("pay-w", 1500, "pm_card_visa")).await.expect("charge");
    let intent = paid.provider_tx_id.clone();
    plugin.refund(stripe_refund("ref-w", &intent, 600, None)).await.expect("refund");
    let now = unix_now();
    let t = now - 20;

    let body = stripe_peer::event_payload(
        "evt_1",
        "payment_intent.succeeded",
        peer.payment_intent_object(&intent).unwrap(),
        t,
    );
    let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
    let event = event_of(plugin.parse_webhook(stripe_webhook(Some(sig), &body, now)).await);
    assert_eq!(event.event_id, "evt_1");
    assert_eq!(event.kind, ProviderEventKind::PaymentSucceeded);
    assert_eq!(event.provider_tx_id, intent);
    assert_eq!(event.amount, eur_amount(1500));
    assert_eq!(event.occurred_at, Some(t as u64 * 1000));

    let mut failed_intent = peer.payment_intent_object(&intent).unwrap();
    failed_intent["status"] = json!("requires_payment_method");
    failed_intent["last_payment_error"] =
        json!({"type": "card_error", "code": "card_declined", "decline_code": "expired_card"});
    let body = stripe_peer::event_payload("evt_2", "payment_intent.payment_failed", failed_intent, t);
    let event = event_of(
        plugin.parse_webhook(stripe_webhook(Some(stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t)), &body, now)).await,
    );
    assert_eq!((event.kind, event.reason_code.as_deref()), (ProviderEventKind::PaymentFailed, Some("expired_card")));
    assert_eq!(event.provider_tx_id, intent);

    let body = stripe_peer::event_payload("evt_3", "charge.refunded", peer.charge_object(&intent).unwrap(), t);
    let event = event_of(
        plugin.parse_webhook(stripe_webhook(Some(stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t)), &body, now)).await,
    );
    assert_eq!(event.kind, ProviderEventKind::RefundSucceeded);
    assert_eq!(event.provider_tx_id, intent, "a refund event names the PaymentIntent, not the charge");
    assert_eq!(event.amount, eur_amount(600));

    // Refund objects: the refund's own id as `provider-refund-id` beside its PaymentIntent, its own amount.
    let refund = peer.refunds()[0].clone();
    let refund_object = json!({"id": refund.id, "object": "refund", "amount": 600, "currency": "eur",
        "payment_intent": intent, "status": "succeeded"});
    for (n, kind) in ["refund.created", "refund.updated", "charge.refund.updated"].iter().enumerate() {
        let body = stripe_peer::event_payload(&format!("evt_r{n}"), kind, refund_object.clone(), t);
        let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
        let event = event_of(plugin.parse_webhook(stripe_webhook(Some(sig), &body, now)).await);
        assert_eq!((event.kind, event.provider_tx_id.as_str()), (ProviderEventKind::RefundSucceeded, intent.as_str()));
        assert_eq!(event.provider_refund_id.as_deref(), Some(refund.id.as_str()));
        assert_eq!(event.amount, eur_amount(600));
    }
    let mut failed = refund_object.clone();
    failed["status"] = json!("failed");
    failed["failure_reason"] = json!("expired_or_canceled_card");
    let body = stripe_peer::event_payload("evt_rf", "refund.failed", failed, t);
    let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
    let event = event_of(plugin.parse_webhook(stripe_webhook(Some(sig), &body, now)).await);
    assert_eq!(
        (event.kind, event.reason_code.as_deref()),
        (ProviderEventKind::RefundFailed, Some("expired_or_canceled_card"))
    );
    let mut pending = refund_object.clone();
    pending["status"] = json!("pending");
    let body = stripe_peer::event_payload("evt_rp", "refund.created", pending, t);
    let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
    assert!(no_event(plugin.parse_webhook(stripe_webhook(Some(sig), &body, now)).await), "not final yet");

    // Authentic, but nothing the host acts on.
    let body = stripe_peer::event_payload("evt_4", "customer.created", json!({"id": "cus_1", "object": "customer"}), t);
    let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
    assert!(no_event(plugin.parse_webhook(stripe_webhook(Some(sig), &body, now)).await));

    // Authentic but unreadable as its type says: the plugin says so, it does not guess.
    let body = stripe_peer::event_payload("evt_5", "payment_intent.succeeded", json!({"object": "payment_intent"}), t);
    let sig = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
    assert_eq!(invalid_field(plugin.parse_webhook(stripe_webhook(Some(sig), &body, now)).await).0, "body");
}

#[tokio::test]
async fn stripe_webhook_signatures_are_checked_like_stripe_does() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let now = unix_now();
    let object =
        json!({"id": "pi_w", "object": "payment_intent", "status": "succeeded", "amount": 100, "currency": "eur"});
    let body = stripe_peer::event_payload("evt_sig", "payment_intent.succeeded", object, now);
    let good = stripe_peer::sign_webhook(STRIPE_WHSEC, &body, now);
    let accepted = |r: &Result<WebhookBatch, PluginCallError>| matches!(r, Ok(b) if b.events.first().is_some_and(|e| e.event_id == "evt_sig"));
    let refused = |r: Result<WebhookBatch, PluginCallError>, what: &str| {
        assert_eq!(provider_error(r), ProviderError::SignatureInvalid, "{what}");
    };

    assert!(accepted(&plugin.parse_webhook(stripe_webhook(Some(good.clone()), &body, now)).await));

    // While a secret is rolled Stripe sends several v1: one matching is enough.
    let v1 = good.split_once(",v1=").expect("v1").1.to_owned();
    let old = hex(&hmac_sha256(b"whsec_old", format!("{now}.{body}").as_bytes()));
    let several = format!("t={now},v1={old},v1={v1},v0={}", "ab".repeat(32));
    assert!(accepted(&plugin.parse_webhook(stripe_webhook(Some(several), &body, now)).await));
    let none_match = format!("t={now},v1={old},v1={}", "00".repeat(32));
    refused(plugin.parse_webhook(stripe_webhook(Some(none_match), &body, now)).await, "no v1 matches");
    let only_v0 = format!("t={now},v0={v1}");
    refused(plugin.parse_webhook(stripe_webhook(Some(only_v0), &body, now)).await, "v0 is not accepted");

    let tampered = body.replace("\"amount\":100", "\"amount\":1");
    assert_ne!(tampered, body);
    refused(plugin.parse_webhook(stripe_webhook(Some(good.clone()), &tampered, now)).await, "tampered body");
    let wrong_secret = stripe_peer::sign_webhook("whsec_someone_else", &body, now);
    refused(plugin.parse_webhook(stripe_webhook(Some(wrong_secret), &body, now)).await, "wrong secret");
    refused(plugin.parse_webhook(stripe_webhook(None, &body, now)).await, "missing header");
    refused(plugin.parse_webhook(stripe_webhook(Some("garbage".into()), &body, now)).await, "garbage header");
    let moved = good.replace(&format!("t={now}"), &format!("t={}", now - 1));
    refused(plugin.parse_webhook(stripe_webhook(Some(moved), &body, now)).await, "timestamp not the signed one");

    // 300 s tolerance around the time the host received it, both ways.
    let at = |t: i64| stripe_peer::sign_webhook(STRIPE_WHSEC, &body, t);
    assert!(accepted(&plugin.parse_webhook(stripe_webhook(Some(at(now - 299)), &body, now)).await));
    refused(plugin.parse_webhook(stripe_webhook(Some(at(now - 301)), &body, now)).await, "stale");
    refused(plugin.parse_webhook(stripe_webhook(Some(at(now + 301)), &body, now)).await, "from the future");
    refused(plugin.parse_webhook(stripe_webhook(Some(at(now - 3600)), &body, now)).await, "replayed an hour later");
}

#[tokio::test]
async fn stripe_outages_are_unavailable_never_success() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let request = card_payment("pay-outage", 900, "pm_card_visa");

    for fault in [Fault::Status500, Fault::Garbage, Fault::Down] {
        peer.set_fault(fault).await;
        assert_unavailable(plugin.process(request.clone()).await, &format!("{fault:?}"));
    }
    let refund = stripe_refund("ref-outage", "pi_peer000001", 100, None);
    assert_unavailable(plugin.refund(refund).await, "refund while down");
    assert_eq!(peer.charges_created(), 0);

    // Back up: the retry (same idempotency key) charges once.
    peer.set_fault(Fault::Normal).await;
    let outcome = plugin.process(request).await.expect("after the outage");
    assert_eq!(outcome.status, ProviderPaymentStatus::Succeeded);
    assert_eq!(peer.charges_created(), 1);
    let faulted: Vec<Fault> = peer.requests().iter().map(|r| r.fault).collect();
    assert_eq!(faulted, [Fault::Status500, Fault::Garbage, Fault::Normal], "Down: nothing arrived");
}

#[tokio::test]
async fn stripe_slow_past_the_timeout_is_unavailable_and_the_retry_charges_once() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let request = card_payment("pay-slow", 700, "pm_card_visa");
    let delay = HTTP_TIMEOUT + Duration::from_millis(1000);
    peer.set_fault(Fault::Slow(delay)).await;

    let started = Instant::now();
    assert_unavailable(plugin.process(request.clone()).await, "slow Stripe");
    assert!(started.elapsed() < delay, "gave up after {:?}", started.elapsed());

    // Stripe may still have charged after we gave up; the retry with the same key must not charge again.
    tokio::time::sleep(delay.saturating_sub(started.elapsed()) + Duration::from_millis(300)).await;
    peer.set_fault(Fault::Normal).await;
    let outcome = plugin.process(request).await.expect("retry");
    assert_eq!(outcome.status, ProviderPaymentStatus::Succeeded);
    assert_eq!(peer.charges_created(), 1);
}

#[tokio::test]
async fn stripe_a_wrong_secret_key_is_misconfigured() {
    let peer = StripePeer::start("sk_test_other").await;
    let plugin = load_stripe(&peer);
    // Stripe's 401: the key is the operator's to fix, nothing was charged (0.2.0 `misconfigured`).
    assert_eq!(
        provider_error(plugin.process(card_payment("pay-key", 100, "pm_card_visa")).await),
        ProviderError::Misconfigured("secret_key".into())
    );
    assert_eq!(peer.charges_created(), 0);
}

// ---------------------------------------------------------------------------------------------
// Bank (SEPA direct debit)
// ---------------------------------------------------------------------------------------------

fn mandate(iban: &str, bic: Option<&str>, reference: &str, signed_on: &str) -> String {
    let mut m = json!({
        "iban": iban,
        "mandate_reference": reference,
        "mandate_signed_on": signed_on,
        "debtor_name": "Max Mustermann",
    });
    if let Some(bic) = bic {
        m["bic"] = json!(bic);
    }
    m.to_string()
}

fn debit(payment_id: &str, amount: i64, payment_method: String) -> PaymentRequest {
    PaymentRequest {
        payment_id: pid(payment_id),
        lease_id: pid("lease-7"),
        installment_id: Some(pid("inst-3")),
        amount,
        currency: cur("EUR"),
        method_kind: MethodKind::SepaMandate,
        payment_method,
        idempotency_key: format!("idem-{payment_id}"),
        metadata: Vec::new(),
    }
}

fn good_mandate() -> String {
    mandate("DE89370400440532013000", Some("COBADEFFXXX"), "MANDATE-0001", "2024-01-15")
}

/// An IBAN with correct ISO 13616 check digits for any `country` and `bban`.
fn iban_with_check_digits(country: &str, bban: &str) -> String {
    let digits: String =
        format!("{bban}{country}00").chars().map(|c| c.to_digit(36).expect("alphanumeric").to_string()).collect();
    let rem = digits.bytes().fold(0u32, |r, d| (r * 10 + u32::from(d - b'0')) % 97);
    format!("{country}{:02}{bban}", 98 - rem)
}

#[tokio::test]
async fn bank_validate_accepts_sepa_ibans_of_several_countries() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    for iban in [
        "DE89370400440532013000",
        "DE89 3704 0044 0532 0130 00",
        "de89370400440532013000",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "AT611904300234573201",
        "BE68539007547034",
        "ES9121000418450200051332",
        "IT60X0542811101000000123456",
        "CH9300762011623852957",
        "GB82WEST12345698765432",
    ] {
        let request = debit("v-iban", 100, mandate(iban, None, "MANDATE-0001", "2024-01-15"));
        plugin.validate(request).await.unwrap_or_else(|e| panic!("{iban}: {e}"));
    }
    // Our own check-digit helper agrees with the published examples.
    assert_eq!(iban_with_check_digits("DE", "370400440532013000"), "DE89370400440532013000");
    plugin
        .validate(debit("v-bic8", 100, mandate("DE89370400440532013000", Some("DEUTDEFF"), "M/2024-01", "2024-02-29")))
        .await
        .expect("8-character BIC, leap day");
    assert!(peer.requests().is_empty(), "validation never reaches the bank");
}

#[tokio::test]
async fn bank_validate_rejects_bad_ibans_bics_mandates_and_currencies() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let check = |iban: &str, bic: Option<&str>, reference: &str, signed_on: &str| {
        debit("v-bad", 100, mandate(iban, bic, reference, signed_on))
    };
    let field_of = async |request: PaymentRequest| invalid_field(plugin.validate(request).await);

    let (field, reason) = field_of(check("DE89370400440532013001", None, "M-1", "2024-01-15")).await;
    assert_eq!(field, "payment-method.iban");
    assert!(reason.contains("check digits"), "{reason}");

    // Right check digits, wrong length for Germany (21 characters).
    let short = iban_with_check_digits("DE", "37040044053201300");
    assert_eq!(short.len(), 21);
    let (field, reason) = field_of(check(&short, None, "M-1", "2024-01-15")).await;
    assert_eq!(field, "payment-method.iban");
    assert!(reason.contains("22"), "{reason}");
    let long = iban_with_check_digits("NL", "ABNA04171643001");
    assert_eq!(field_of(check(&long, None, "M-1", "2024-01-15")).await.0, "payment-method.iban");

    // Valid ISO 13616, but not a SEPA country.
    let (field, reason) = field_of(check("SA0380000000608010167519", None, "M-1", "2024-01-15")).await;
    assert_eq!(field, "payment-method.iban");
    assert!(reason.contains("SEPA"), "{reason}");
    assert_eq!(field_of(check("DE89-3704-0044", None, "M-1", "2024-01-15")).await.0, "payment-method.iban");

    for bic in ["COBADEF", "COBADEFFXX", "C0BADEFF", "COBAD1FF", "COBADEFF-XX", "COBADEFFXXXX"] {
        let (field, _) = field_of(check("DE89370400440532013000", Some(bic), "M-1", "2024-01-15")).await;
        assert_eq!(field, "payment-method.bic", "{bic}");
    }

    for reference in ["", "MANDATE#1", "Mandat-Ä", "/M-1", "M//1", &"M".repeat(36)] {
        let (field, _) = field_of(check("DE89370400440532013000", None, reference, "2024-01-15")).await;
        assert_eq!(field, "payment-method.mandate-reference", "{reference:?}");
    }

    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1)).format("%Y-%m-%d").to_string();
    let (field, reason) = field_of(check("DE89370400440532013000", None, "M-1", &tomorrow)).await;
    assert_eq!(field, "payment-method.mandate-signed-on");
    assert!(reason.contains("future"), "{reason}");
    for date in ["2024-02-30", "2023-02-29", "15.01.2024", "2024-1-15", ""] {
        let (field, _) = field_of(check("DE89370400440532013000", None, "M-1", date)).await;
        assert_eq!(field, "payment-method.mandate-signed-on", "{date:?}");
    }
    let today = chrono::Utc::now().date_naive().format("%Y-%m-%d").to_string();
    plugin.validate(check("DE89370400440532013000", None, "M-1", &today)).await.expect("signed today");

    let mut dollars = debit("v-usd", 100, good_mandate());
    dollars.currency = cur("USD");
    assert_eq!(field_of(dollars).await.0, "amount.currency");
    assert_eq!(field_of(debit("v-zero", 0, good_mandate())).await.0, "amount.amount");

    assert_eq!(field_of(debit("v-json", 100, "DE89370400440532013000".into())).await.0, "payment-method");
    let unknown_key = good_mandate().replace("debtor_name", "debtor");
    assert_eq!(field_of(debit("v-key", 100, unknown_key)).await.0, "payment-method");
    let no_name =
        json!({"iban": "DE89370400440532013000", "mandate_reference": "M-1", "mandate_signed_on": "2024-01-15"});
    assert_eq!(field_of(debit("v-name", 100, no_name.to_string())).await.0, "payment-method.debtor-name");
    assert!(peer.requests().is_empty(), "validation never reaches the bank");
}

#[tokio::test]
async fn bank_process_submits_a_signed_collection_and_is_processing() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let payment_id = "9b2f6c1e-3d4a-4f5b-8c7d-0e1f2a3b4c5d";
    let method = mandate("DE89 3704 0044 0532 0130 00", Some("cobadeffxxx"), "MANDATE-0001", "2024-01-15");

    let outcome = plugin.process(debit(payment_id, 45_000, method)).await.expect("collection");
    assert_eq!(outcome.status, ProviderPaymentStatus::Processing, "settlement is asynchronous");
    assert!(outcome.provider_tx_id.starts_with("col_"), "{outcome:?}");
    assert_eq!(peer.rejected_signatures(), 0);

    let collections = peer.collections();
    assert_eq!(collections.len(), 1);
    let c = &collections[0];
    assert_eq!(c.collection_id, outcome.provider_tx_id);
    // SEPA caps the end-to-end id at 35 characters: a UUID goes without its hyphens.
    assert_eq!(c.end_to_end_id, "9b2f6c1e3d4a4f5b8c7d0e1f2a3b4c5d");
    assert_eq!((c.amount, c.currency.as_str(), c.creditor_id.as_str()), (45_000, "EUR", CREDITOR_ID));
    assert_eq!((c.mandate_reference.as_str(), c.mandate_signed_on.as_str()), ("MANDATE-0001", "2024-01-15"));
    assert_eq!((c.debtor_name.as_str(), c.debtor_iban.as_str()), ("Max Mustermann", "DE89370400440532013000"));
    assert_eq!(c.debtor_bic.as_deref(), Some("COBADEFFXXX"));
    assert_eq!(c.remittance_information, format!("Lease {} installment {}", pid("lease-7"), pid("inst-3")));

    // The wire: JSON, client id, fresh timestamp, and a signature we can check independently.
    let requests = peer.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/v1/collections"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-client-id"), Some(BANK_CLIENT));
    assert_eq!(r.header("idempotency-key"), Some(format!("idem-{payment_id}").as_str()));
    let timestamp: i64 = r.header("x-timestamp").expect("timestamp").parse().expect("unix seconds");
    assert!((unix_now() - timestamp).abs() < 60, "{timestamp}");
    assert_eq!(r.header("x-signature"), Some(bank::signature(BANK_SECRET, timestamp, &r.text()).as_str()));
    assert_eq!(r.json()["mandate"], json!({"reference": "MANDATE-0001", "signed_on": "2024-01-15"}));
    assert_eq!(r.json()["debtor"]["iban"], json!("DE89370400440532013000"));
}

#[tokio::test]
async fn bank_a_retried_collection_is_the_same_collection() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let request = debit("pay-twice", 30_000, good_mandate());
    let first = plugin.process(request.clone()).await.expect("first");
    let second = plugin.process(request.clone()).await.expect("retry: 409 with the existing collection");
    assert_eq!(first, second);
    assert_eq!(peer.collections().len(), 1);
    assert_eq!(peer.requests().len(), 2);

    // Once settled, a late retry reports the settlement.
    peer.set_status(&first.provider_tx_id, "settled", None);
    assert_eq!(plugin.process(request).await.expect("late retry").status, ProviderPaymentStatus::Succeeded);
}

#[tokio::test]
async fn bank_rejections_and_bad_credentials() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;

    // The bank rejects at once: failed, with its R-transaction code.
    let plugin = load_bank(&peer, BANK_SECRET);
    let method = mandate("DE89370400440532013000", None, "REJECT-AC06", "2024-01-15");
    let outcome: PaymentOutcome = plugin.process(debit("pay-blocked", 100, method)).await.expect("outcome");
    assert_eq!((outcome.status, outcome.decline_code.as_deref()), (ProviderPaymentStatus::Failed, Some("AC06")));
    assert!(peer.collection(&outcome.provider_tx_id).is_some());

    // A wrong client secret: the bank checks the signature and refuses; nothing is collected.
    let forger = load_bank(&peer, "not-the-secret");
    assert_eq!(
        provider_error(forger.process(debit("pay-forged", 100, good_mandate())).await),
        ProviderError::Misconfigured("client_secret".into())
    );
    assert_eq!(peer.rejected_signatures(), 1);
    assert_eq!(peer.collections().len(), 1);

    // A misconfigured creditor id never leaves the plugin.
    let bad_creditor = load(
        "bank",
        &peer.origin(),
        &[("client_id", BANK_CLIENT), ("creditor_id", "DE00ZZZ09999999999")],
        &[("client_secret", BANK_SECRET), ("webhook_secret", BANK_WHSEC)],
    );
    let error = provider_error(bad_creditor.process(debit("pay-cred", 100, good_mandate())).await);
    assert!(matches!(&error, ProviderError::Misconfigured(m) if m.contains("creditor_id")), "{error:?}");
    assert_eq!(peer.requests().len(), 2);
}

#[tokio::test]
async fn bank_refunds_partial_and_refuses_more_than_collected() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let collection = plugin.process(debit("pay-refund", 10_000, good_mandate())).await.expect("collection");
    let refund = |id: &str, amount: i64| RefundRequest {
        refund_id: pid(id),
        payment_id: pid("pay-refund"),
        provider_tx_id: collection.provider_tx_id.clone(),
        amount,
        currency: cur("EUR"),
        reason: Some("Lease ended early".into()),
        idempotency_key: format!("idem-{id}"),
    };

    let partial = plugin.refund(refund("rf-1", 4_000)).await.expect("partial refund");
    assert_eq!(partial.status, ProviderRefundStatus::Pending);
    assert!(partial.provider_refund_id.starts_with("rf_"), "{partial:?}");
    let retried = plugin.refund(refund("rf-1", 4_000)).await.expect("retried refund: 409 with the existing one");
    assert_eq!(retried, partial);
    let sent = peer.requests().into_iter().rfind(|r| r.path == "/v1/refunds").expect("refund request");
    assert_eq!(
        sent.json(),
        json!({"refund_id": pid("rf-1"), "collection_id": collection.provider_tx_id, "amount": 4000,
               "currency": "EUR", "reason": "Lease ended early"})
    );
    assert_eq!(
        sent.header("x-signature"),
        Some(bank::signature(BANK_SECRET, sent.header("x-timestamp").unwrap().parse().unwrap(), &sent.text()).as_str())
    );

    assert_eq!(invalid_field(plugin.refund(refund("rf-2", 6_001)).await).0, "amount.amount");
    plugin.refund(refund("rf-3", 6_000)).await.expect("the rest");
    assert_eq!(peer.refunds().iter().map(|r| r.amount).sum::<i64>(), 10_000);
    assert_eq!(peer.collection(&collection.provider_tx_id).unwrap().refunded, 10_000);
}

fn bank_webhook(delivery: bank::WebhookDelivery, received_at_secs: i64) -> WebhookRequest {
    WebhookRequest {
        headers: delivery.headers,
        body: delivery.body.into_bytes(),
        received_at: received_at_secs as u64 * 1000,
    }
}

fn rfc3339_ms(s: &str) -> u64 {
    chrono::DateTime::parse_from_rfc3339(s).expect("RFC 3339").timestamp_millis() as u64
}

#[tokio::test]
async fn bank_webhooks_report_settlement_failure_and_returns() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let collection = plugin.process(debit("pay-hook", 45_000, good_mandate())).await.expect("collection");
    let id = collection.provider_tx_id;
    let now = unix_now();
    let deliver = async |event_id: &str, kind: &str, reason: Option<&str>, at: &str| {
        let body = peer.event_for(event_id, kind, &id, reason, at).expect("known collection");
        plugin.parse_webhook(bank_webhook(bank::signed_webhook(BANK_WHSEC, &body, now - 5), now)).await
    };

    let settled = event_of(deliver("ev-1", "collection.settled", None, "2024-03-05T06:00:00Z").await);
    assert_eq!(settled.event_id, "ev-1");
    assert_eq!(settled.kind, ProviderEventKind::PaymentSettled);
    assert_eq!(settled.provider_tx_id, id);
    assert_eq!(settled.amount, eur_amount(45_000));
    assert_eq!(settled.reason_code, None);
    assert_eq!(settled.occurred_at, Some(rfc3339_ms("2024-03-05T06:00:00Z")));

    let at = "2024-03-06T09:30:15.250+01:00";
    let failed = event_of(deliver("ev-2", "collection.failed", Some("AM04"), at).await);
    assert_eq!((failed.kind, failed.reason_code.as_deref()), (ProviderEventKind::PaymentFailed, Some("AM04")));
    assert_eq!(failed.occurred_at, Some(rfc3339_ms(at)));

    for code in ["MD01", "MS02", "MD06", "AC04"] {
        let returned = event_of(deliver("ev-3", "collection.returned", Some(code), "2024-04-01T00:00:00Z").await);
        assert_eq!((returned.kind, returned.reason_code.as_deref()), (ProviderEventKind::PaymentReturned, Some(code)));
        assert_eq!(returned.provider_tx_id, id);
    }

    // Authentic, but nothing the host acts on.
    assert!(no_event(deliver("ev-4", "collection.accepted", None, "2024-03-01T00:00:00Z").await));
    // Authentic but malformed: a reason code of the wrong shape, a return without one, a bad time.
    assert_eq!(
        invalid_field(deliver("ev-5", "collection.returned", Some("A4"), "2024-03-01T00:00:00Z").await).0,
        "body.reason_code"
    );
    assert_eq!(
        invalid_field(deliver("ev-6", "collection.returned", Some("am04"), "2024-03-01T00:00:00Z").await).0,
        "body.reason_code"
    );
    assert_eq!(
        invalid_field(deliver("ev-7", "collection.returned", None, "2024-03-01T00:00:00Z").await).0,
        "body.reason_code"
    );
    assert_eq!(invalid_field(deliver("ev-8", "collection.settled", None, "5 March 2024").await).0, "body.occurred_at");
}

#[tokio::test]
async fn bank_webhook_signatures_and_timestamps_are_checked() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let now = unix_now();
    let body = bank::collection_event("ev-s", "collection.settled", "col_x", "e2e", 100, None, "2024-03-05T06:00:00Z");
    let refused = async |delivery: bank::WebhookDelivery, what: &str| {
        let result = plugin.parse_webhook(bank_webhook(delivery, now)).await;
        assert_eq!(provider_error(result), ProviderError::SignatureInvalid, "{what}");
    };

    let good = bank::signed_webhook(BANK_WHSEC, &body, now);
    assert_eq!(event_of(plugin.parse_webhook(bank_webhook(good.clone(), now)).await).event_id, "ev-s");

    let mut tampered = good.clone();
    tampered.body = tampered.body.replace("\"amount\":100", "\"amount\":100000");
    assert_ne!(tampered.body, good.body);
    refused(tampered, "tampered body").await;
    refused(bank::signed_webhook("another-secret", &body, now), "wrong secret").await;
    refused(bank::signed_webhook(BANK_WHSEC, &body, now - 301), "stale").await;
    refused(bank::signed_webhook(BANK_WHSEC, &body, now + 301), "from the future").await;
    assert!(plugin.parse_webhook(bank_webhook(bank::signed_webhook(BANK_WHSEC, &body, now - 299), now)).await.is_ok());

    let mut moved = good.clone();
    moved.headers.iter_mut().filter(|(k, _)| k == "X-Bank-Timestamp").for_each(|(_, v)| *v = (now - 1).to_string());
    refused(moved, "timestamp not the signed one").await;
    for missing in ["X-Bank-Signature", "X-Bank-Timestamp"] {
        let mut without = good.clone();
        without.headers.retain(|(k, _)| k != missing);
        refused(without, missing).await;
    }
    // Several signatures while the bank rolls its secret: one matching is enough.
    let mut rolled = good.clone();
    let current = rolled.headers.iter().find(|(k, _)| k == "X-Bank-Signature").unwrap().1.clone();
    let old = bank::signature("old-secret", now, &body);
    rolled.headers.retain(|(k, _)| k != "X-Bank-Signature");
    rolled.headers.push(("x-bank-signature".into(), format!("{old},{current}")));
    assert!(plugin.parse_webhook(bank_webhook(rolled, now)).await.is_ok());
}

#[tokio::test]
async fn bank_outages_are_unavailable_never_success() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let request = debit("pay-bank-outage", 5_000, good_mandate());

    for fault in [Fault::Status500, Fault::Garbage, Fault::Down] {
        peer.set_fault(fault).await;
        assert_unavailable(plugin.process(request.clone()).await, &format!("{fault:?}"));
    }
    assert!(peer.collections().is_empty());

    peer.set_fault(Fault::Slow(HTTP_TIMEOUT + Duration::from_millis(1000))).await;
    let started = Instant::now();
    assert_unavailable(plugin.process(request.clone()).await, "slow bank");
    assert!(started.elapsed() < HTTP_TIMEOUT + Duration::from_millis(1000), "{:?}", started.elapsed());

    // Back to normal: the retry lands once, however many attempts reached the bank.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    peer.set_fault(Fault::Normal).await;
    assert_eq!(plugin.process(request).await.expect("after the outage").status, ProviderPaymentStatus::Processing);
    assert_eq!(peer.collections().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// The peers themselves
// ---------------------------------------------------------------------------------------------

#[test]
fn the_peers_hmac_matches_rfc_4231() {
    // RFC 4231 test case 2.
    let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(hex(&mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    // Test case 6: a key longer than the block is hashed first.
    let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
    assert_eq!(hex(&mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    assert_eq!(
        stripe_peer::sign_webhook("Jefe", "what do ya want for nothing?", 0),
        format!("t=0,v1={}", hex(&hmac_sha256(b"Jefe", b"0.what do ya want for nothing?")))
    );
}

// ---------------------------------------------------------------------------------------------
// Fuzz targets (issue 11 item 16): arbitrary webhook headers and bodies into each plugin, built
// to .wasm and run in wasmtime through the host's runtime. Whatever arrives, the answer is an
// event, `none` or a typed provider error (or the host's size refusal): never a trap, a panic
// or a sandbox failure. Unsigned input mostly stops at the signature, so bodies are also sent
// correctly signed, to reach the parsers behind it. `scripts/fuzz.sh` raises `PROPTEST_CASES`.
// ---------------------------------------------------------------------------------------------

mod fuzz {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(24)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            "\\PC{0,30}".prop_map(Value::String),
            "(pi|re|pyr|ch|col|rf)_[a-zA-Z0-9]{0,12}".prop_map(Value::String),
            "(succeeded|failed|pending|canceled|requires_action|eur|EUR|AC04|2024-03-05T06:00:00Z)"
                .prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(
                    "(id|status|amount|amount_received|amount_refunded|currency|payment_intent|failure_reason|last_payment_error|decline_code|code|reason_code|collection_id|event_id|type|occurred_at|[a-z_]{1,10})",
                    inner,
                    0..8,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn stripe_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("payment_intent.succeeded".to_owned()),
            Just("payment_intent.payment_failed".to_owned()),
            Just("charge.refunded".to_owned()),
            Just("refund.created".to_owned()),
            Just("refund.updated".to_owned()),
            Just("refund.failed".to_owned()),
            Just("charge.refund.updated".to_owned()),
            "\\PC{0,20}",
        ]
    }

    fn bank_type() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("collection.settled".to_owned()),
            Just("collection.failed".to_owned()),
            Just("collection.returned".to_owned()),
            Just("refund.succeeded".to_owned()),
            Just("refund.failed".to_owned()),
            "\\PC{0,20}",
        ]
    }

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(
            (
                "(stripe-signature|Stripe-Signature|x-bank-signature|x-bank-timestamp|content-type|[a-z-]{1,20})",
                "\\PC{0,120}|t=[0-9]{0,12},v1=[0-9a-f]{0,64}(,v1=[0-9a-f]{0,64})?|[0-9]{0,12}",
            ),
            0..5,
        )
    }

    /// The outcome is typed: never a trap or a sandbox failure.
    fn typed(what: &str, result: Result<WebhookBatch, PluginCallError>) -> Result<(), TestCaseError> {
        match result {
            Ok(_) | Err(PluginCallError::Provider(_)) | Err(PluginCallError::InputTooLarge { .. }) => Ok(()),
            Err(other) => Err(TestCaseError::fail(format!("{what}: not a typed answer: {other:?}"))),
        }
    }

    fn tokio() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    const NOWHERE: &str = "http://127.0.0.1:9";

    #[test]
    fn fuzz_stripe_webhooks() {
        let rt = tokio();
        let plugin = rt.block_on(async {
            load("stripe", NOWHERE, &[], &[("secret_key", STRIPE_KEY), ("webhook_secret", STRIPE_WHSEC)])
        });
        let config = ProptestConfig::with_cases(cases());
        proptest!(config, |(
            headers in headers(),
            raw in proptest::collection::vec(any::<u8>(), 0..600),
            kind in stripe_type(),
            object in json_value(),
            id in "\\PC{0,20}",
            created in any::<i64>(),
            skew in -400i64..400,
        )| {
            let now = unix_now();
            // Arbitrary headers and bytes.
            let request = WebhookRequest { headers: headers.clone(), body: raw.clone(), received_at: now as u64 * 1000 };
            typed("raw", rt.block_on(plugin.parse_webhook(request)))?;
            // Arbitrary bytes and an event of any shape, correctly signed (so the parser runs).
            let event = json!({"id": id, "object": "event", "type": kind, "created": created, "data": {"object": object}});
            for body in [String::from_utf8_lossy(&raw).into_owned(), event.to_string()] {
                let mut signed = headers.clone();
                signed.push(("Stripe-Signature".to_owned(), stripe_peer::sign_webhook(STRIPE_WHSEC, &body, now + skew)));
                let request = WebhookRequest { headers: signed, body: body.into_bytes(), received_at: now as u64 * 1000 };
                typed("signed", rt.block_on(plugin.parse_webhook(request)))?;
            }
        });
    }

    #[test]
    fn fuzz_bank_webhooks() {
        let rt = tokio();
        let plugin = rt.block_on(async {
            load(
                "bank",
                NOWHERE,
                &[("client_id", BANK_CLIENT), ("creditor_id", CREDITOR_ID)],
                &[("client_secret", BANK_SECRET), ("webhook_secret", BANK_WHSEC)],
            )
        });
        let config = ProptestConfig::with_cases(cases());
        proptest!(config, |(
            headers in headers(),
            raw in proptest::collection::vec(any::<u8>(), 0..600),
            kind in bank_type(),
            fields in json_value(),
            skew in -400i64..400,
        )| {
            let now = unix_now();
            let request = WebhookRequest { headers: headers.clone(), body: raw.clone(), received_at: now as u64 * 1000 };
            typed("raw", rt.block_on(plugin.parse_webhook(request)))?;
            let mut event = json!({"event_id": "ev_fuzz", "type": kind, "collection_id": "col_1"});
            if let Value::Object(extra) = fields {
                event.as_object_mut().unwrap().extend(extra);
            }
            for body in [String::from_utf8_lossy(&raw).into_owned(), event.to_string()] {
                let delivery = bank::signed_webhook(BANK_WHSEC, &body, now + skew);
                let mut signed = headers.clone();
                signed.extend(delivery.headers);
                let request = WebhookRequest { headers: signed, body: delivery.body.into_bytes(), received_at: now as u64 * 1000 };
                typed("signed", rt.block_on(plugin.parse_webhook(request)))?;
            }
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Retrieval (WIT 0.2.0): what reconciliation asks before charging again
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stripe_retrieves_a_payment_by_id_or_by_search_and_a_refund() {
    let peer = StripePeer::start(STRIPE_KEY).await;
    let plugin = load_stripe(&peer);
    let request = card_payment("pay-lost", 2500, "pm_card_visa");
    let paid = plugin.process(request.clone()).await.expect("charge");

    // Known transaction id: GET /v1/payment_intents/{id}.
    let by_id = plugin.retrieve_payment(request.lookup(Some(paid.provider_tx_id.clone()))).await.expect("by id");
    assert_eq!(
        by_id.as_ref().map(|o| (o.status, o.provider_tx_id.as_str())),
        Some((ProviderPaymentStatus::Succeeded, paid.provider_tx_id.as_str()))
    );
    // The answer was lost: found by the payment id in its metadata.
    let by_search = plugin.retrieve_payment(request.lookup(None)).await.expect("by search");
    assert_eq!(by_search, by_id);
    let gets: Vec<String> = peer.requests().iter().filter(|r| r.method == "GET").map(|r| r.path.clone()).collect();
    assert_eq!(
        gets,
        vec![format!("/v1/payment_intents/{}", paid.provider_tx_id), "/v1/payment_intents/search".to_owned()]
    );
    // Never sent: `None`, so the host may process again with the same key.
    let never = card_payment("pay-never-sent", 2500, "pm_card_visa");
    assert_eq!(plugin.retrieve_payment(never.lookup(None)).await.expect("search"), None);
    assert_eq!(peer.charges_created(), 1, "retrieval charges nothing");

    let refund = stripe_refund("ref-lost", &paid.provider_tx_id, 1000, None);
    let made = plugin.refund(refund.clone()).await.expect("refund");
    let found = plugin.retrieve_refund(refund.lookup(None)).await.expect("by listing").expect("found");
    assert_eq!(
        (found.status, found.provider_refund_id.as_str()),
        (ProviderRefundStatus::Succeeded, made.provider_refund_id.as_str())
    );
    let by_id = plugin.retrieve_refund(refund.lookup(Some(made.provider_refund_id.clone()))).await.expect("by id");
    assert_eq!(by_id, Some(found));
    let other = stripe_refund("ref-never", &paid.provider_tx_id, 1000, None);
    assert_eq!(plugin.retrieve_refund(other.lookup(None)).await.expect("listing"), None);
}

#[tokio::test]
async fn bank_retrieves_a_collection_and_a_refund_by_the_ids_it_deduplicates_by() {
    let peer = BankPeer::start(BANK_CLIENT, BANK_SECRET).await;
    let plugin = load_bank(&peer, BANK_SECRET);
    let request = debit("5c1d7e2a-9b3f-4a6c-8d0e-1f2a3b4c5d6e", 12_000, good_mandate());
    let collection = plugin.process(request.clone()).await.expect("collection");

    let found = plugin.retrieve_payment(request.lookup(None)).await.expect("lookup").expect("found");
    assert_eq!(
        (found.status, found.provider_tx_id.as_str()),
        (ProviderPaymentStatus::Processing, collection.provider_tx_id.as_str())
    );
    peer.set_status(&collection.provider_tx_id, "settled", None);
    let settled =
        plugin.retrieve_payment(request.lookup(Some(collection.provider_tx_id.clone()))).await.expect("lookup");
    assert_eq!(settled.map(|o| o.status), Some(ProviderPaymentStatus::Succeeded));
    let never = debit("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", 12_000, good_mandate());
    assert_eq!(plugin.retrieve_payment(never.lookup(None)).await.expect("lookup"), None);
    assert_eq!(peer.rejected_signatures(), 0, "the GETs are signed as the bank wants");

    let refund = RefundRequest {
        refund_id: pid("rf-lookup"),
        payment_id: request.payment_id,
        provider_tx_id: collection.provider_tx_id.clone(),
        amount: 2_000,
        currency: cur("EUR"),
        reason: None,
        idempotency_key: "idem-rf-lookup".into(),
    };
    assert_eq!(plugin.retrieve_refund(refund.lookup(None)).await.expect("lookup"), None);
    let made = plugin.refund(refund.clone()).await.expect("refund");
    let found = plugin.retrieve_refund(refund.lookup(None)).await.expect("lookup");
    assert_eq!(found, Some(made));
}
