//! `host plugin call`: the real binary, with no configuration and no database, runs one call of
//! a built package in the sandbox, its HTTP answered from canned files, and prints every
//! exchange (credentials masked) and the outcome or the typed error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::peers::stripe::{event_payload, sign_webhook};
use crate::plugin_build::packages_dir;

const HOST: &str = env!("CARGO_BIN_EXE_host");
const SECRET_KEY: &str = "sk_test_4eC39HqLyjWDarjtT1zdp7dc";
const PAYMENTS: &str = "https://api.stripe.com/v1/payment_intents";

/// A folder of request and response files; the binary runs in it with a clean environment.
struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn call(&self, package: &Path, args: &[&str]) -> Output {
        Command::new(HOST)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.0.path())
            .args(["plugin", "call"])
            .arg(package)
            .args(args)
            .output()
            .unwrap()
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn parsed(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("--json output: {e}\n{}", stdout(out)))
}

fn package(name: &str) -> PathBuf {
    packages_dir().join(name)
}

/// The payment's id (requests carry the host's UUIDs).
const PAYMENT_ID: &str = "7d0c4b8e-1f2a-4c3d-9e8f-0a1b2c3d4e5f";

fn payment_request(files: &Files, metadata: Value) -> PathBuf {
    let request = json!({
        "payment_id": PAYMENT_ID,
        "lease_id": "2f1a9c8b-7d6e-4f5a-8b9c-0d1e2f3a4b5c",
        "amount": 1999,
        "currency": "EUR",
        "payment_method": "pm_card_visa",
        "idempotency_key": "key-1",
        "metadata": metadata,
    });
    files.write("payment.json", &request.to_string())
}

#[test]
fn stripe_process_with_a_canned_payment_intent_prints_the_exchange_with_the_key_masked() {
    let files = Files::new();
    // The secret key also travels in the caller's metadata: masked there too.
    payment_request(&files, json!({ "note": SECRET_KEY }));
    files.write(
        "intent.http",
        "200\nContent-Type: application/json\nRequest-Id: req_1\n\n\
         {\"id\": \"pi_3Ab\", \"object\": \"payment_intent\", \"amount\": 1999, \"currency\": \"eur\", \"status\": \"succeeded\"}",
    );
    let secret = format!("secret_key={SECRET_KEY}");
    let respond = format!("POST {PAYMENTS}=intent.http");

    let out = files.call(
        &package("stripe"),
        &["process", "--request", "payment.json", "--secret", &secret, "--respond", &respond],
    );

    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}\n{err}");
    assert!(!text.contains(SECRET_KEY) && !err.contains(SECRET_KEY), "the key is never printed:\n{text}");
    assert!(text.contains(&format!("request 1: POST {PAYMENTS}")), "{text}");
    assert!(text.contains("authorization: Bearer ****"), "{text}");
    assert!(text.contains("idempotency-key: key-1"), "{text}");
    assert!(text.contains("body: amount=1999&currency=eur&payment_method=pm_card_visa"), "the form body:\n{text}");
    assert!(text.contains("metadata%5Bnote%5D=<secret secret_key>"), "{text}");
    assert!(text.contains("response: 200 (canned)") && text.contains("request-id: req_1"), "{text}");
    assert!(text.contains("\"status\": \"succeeded\"") && text.contains("\"provider_transaction_id\": \"pi_3Ab\""));
}

#[test]
fn a_402_decline_is_a_failed_outcome_and_a_400_is_the_typed_error_naming_the_field() {
    let files = Files::new();
    payment_request(&files, json!({}));
    files.write(
        "decline.http",
        "HTTP/1.1 402 Payment Required\r\ncontent-type: application/json\r\n\r\n\
         {\"error\": {\"type\": \"card_error\", \"code\": \"card_declined\", \"decline_code\": \"insufficient_funds\", \
         \"message\": \"Your card has insufficient funds.\", \"payment_intent\": {\"id\": \"pi_declined\"}}}",
    );
    files.write(
        "invalid.http",
        "400\ncontent-type: application/json\n\n\
         {\"error\": {\"type\": \"invalid_request_error\", \"code\": \"resource_missing\", \"param\": \"payment_method\", \
         \"message\": \"No such PaymentMethod: 'pm_card_visa'\"}}",
    );
    let secret = format!("secret_key={SECRET_KEY}");
    let call = |file: &str| {
        let respond = format!("POST {PAYMENTS}={file}");
        files.call(
            &package("stripe"),
            &["process", "--request", "payment.json", "--secret", &secret, "--respond", &respond, "--json"],
        )
    };

    // Stripe's plugin maps a card_error to the payment's failed outcome with the issuer's code.
    let declined = call("decline.http");
    assert!(declined.status.success(), "{}", stderr(&declined));
    let v = parsed(&declined);
    assert_eq!(v["outcome"]["status"], "failed");
    assert_eq!(v["outcome"]["decline_code"], "insufficient_funds");
    assert_eq!(v["outcome"]["provider_transaction_id"], "pi_declined");
    assert_eq!(v["exchanges"][0]["response"]["status"], 402);

    // Any other 4xx is the provider's typed error, which names the request's field.
    let invalid = call("invalid.http");
    assert!(!invalid.status.success());
    let v = parsed(&invalid);
    assert_eq!(v["error"]["type"], "invalid_request", "{v}");
    assert_eq!(v["error"]["field"], "payment-method");
    assert!(v["error"]["reason"].as_str().unwrap().contains("No such PaymentMethod"));
    assert!(v.get("outcome").is_none());
    assert!(stderr(&invalid).contains("process returned an error (`invalid_request`)"), "{}", stderr(&invalid));
}

#[test]
fn an_unmatched_request_is_refused_and_printed_while_a_prefix_route_answers() {
    let files = Files::new();
    payment_request(&files, json!({}));
    files.write("refund.http", "200\n\n{\"id\": \"re_1\", \"object\": \"refund\", \"amount\": 500, \"currency\": \"eur\", \"status\": \"succeeded\"}");
    let secret = format!("secret_key={SECRET_KEY}");
    let respond = "POST https://api.stripe.com/v1/refunds*=refund.http";

    // Nothing answers POST /v1/payment_intents: the plugin sees a connection failure.
    let out = files.call(
        &package("stripe"),
        &["process", "--request", "payment.json", "--secret", &secret, "--respond", respond, "--json"],
    );
    assert!(!out.status.success());
    let v = parsed(&out);
    assert_eq!(v["exchanges"].as_array().unwrap().len(), 1);
    assert_eq!(v["exchanges"][0]["url"], PAYMENTS);
    assert_eq!(v["exchanges"][0]["refused"], "no canned response: refused");
    assert!(v["exchanges"][0].get("response").is_none());
    assert_eq!(v["error"]["type"], "provider_unavailable", "{v}");

    // The same route by prefix answers a refund.
    files.write(
        "refund.json",
        &json!({
            "refund_id": "5e9b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "payment_id": PAYMENT_ID, "provider_transaction_id": "pi_3Ab",
            "amount": 500, "currency": "EUR", "idempotency_key": "key-2",
        })
        .to_string(),
    );
    let out = files.call(
        &package("stripe"),
        &["refund", "--request", "refund.json", "--secret", &secret, "--respond", respond, "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = parsed(&out);
    assert_eq!(v["outcome"], json!({ "status": "succeeded", "provider_refund_id": "re_1", "failure_reason": null }));
    assert_eq!(v["exchanges"][0]["url"], "https://api.stripe.com/v1/refunds");
    assert!(v["exchanges"][0]["body"].as_str().unwrap().contains("payment_intent=pi_3Ab&amount=500"));
}

#[test]
fn a_webhook_signed_in_the_test_is_verified_and_normalised() {
    let files = Files::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let intent = json!({ "id": "pi_3Ab", "object": "payment_intent", "amount": 1999, "amount_received": 1999,
                         "currency": "eur", "status": "succeeded" });
    let body = event_payload("evt_1", "payment_intent.succeeded", intent, now);
    let webhook = |signature: &str| {
        json!({ "headers": { "Stripe-Signature": signature }, "body": body, "received_at": now * 1000 }).to_string()
    };
    files.write("good.json", &webhook(&sign_webhook("whsec_test", &body, now)));
    files.write("forged.json", &webhook(&sign_webhook("whsec_other", &body, now)));

    let out = files.call(
        &package("stripe"),
        &["webhook", "--request", "good.json", "--secret", "webhook_secret=whsec_test", "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let v = parsed(&out);
    assert_eq!(v["exchanges"], json!([]));
    assert_eq!(v["outcome"]["events"].as_array().map(Vec::len), Some(1), "{v}");
    let event = &v["outcome"]["events"][0];
    assert_eq!(event["event_id"], "evt_1");
    assert_eq!(event["kind"], "payment-succeeded");
    assert_eq!(event["provider_transaction_id"], "pi_3Ab");
    assert_eq!(event["amount"], json!({ "amount": 1999, "currency": "EUR" }));
    assert_eq!(event["occurred_at"], now * 1000);

    let out = files
        .call(&package("stripe"), &["webhook", "--request", "forged.json", "--secret", "webhook_secret=whsec_test"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("webhook signature invalid"), "{}", stderr(&out));
}

#[test]
fn a_panicking_plugin_is_stopped_by_the_sandbox_and_the_failure_printed() {
    let files = Files::new();
    payment_request(&files, json!({}));

    let out = files.call(&package("panic"), &["process", "--request", "payment.json"]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("no HTTP requests"), "{}", stdout(&out));
    let err = stderr(&out);
    let expected = format!("plugin panic@0.1.0 failed: panicked: card vault exploded for payment {PAYMENT_ID}");
    assert!(err.contains(&expected), "{err}");
    assert_eq!(err.lines().count(), 1, "the error once: {err}");

    let v = parsed(&files.call(&package("panic"), &["process", "--request", "payment.json", "--json"]));
    assert_eq!(v["error"]["type"], "sandbox");
    assert_eq!(v["error"]["failure"], "panic");
}

#[test]
fn a_bad_request_file_is_refused_naming_the_field() {
    let files = Files::new();
    let cases = [
        (
            r#"{"payment_id": "7d0c4b8e-1f2a-4c3d-9e8f-0a1b2c3d4e5f", "lease_id": "2f1a9c8b-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "amount": 5, "currency": "EUR", "idempotency_key": "k"}"#,
            "missing field `payment_method`",
        ),
        (
            r#"{"payment_id": "7d0c4b8e-1f2a-4c3d-9e8f-0a1b2c3d4e5f", "lease_id": "2f1a9c8b-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "amount": "5", "currency": "EUR", "payment_method": "pm_x", "idempotency_key": "k"}"#,
            "amount: invalid type: string \"5\"",
        ),
        (
            r#"{"payment_id": "7d0c4b8e-1f2a-4c3d-9e8f-0a1b2c3d4e5f", "lease_id": "2f1a9c8b-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "amount": 5, "currency": "EUR", "payment_method": "pm_x", "idempotency_key": "k", "amout": 1}"#,
            "unknown field `amout`",
        ),
        (
            r#"{"payment_id": "pay_1", "lease_id": "2f1a9c8b-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "amount": 5, "currency": "EUR", "payment_method": "pm_x", "idempotency_key": "k"}"#,
            "payment_id: ",
        ),
        (
            r#"{"payment_id": "7d0c4b8e-1f2a-4c3d-9e8f-0a1b2c3d4e5f", "lease_id": "2f1a9c8b-7d6e-4f5a-8b9c-0d1e2f3a4b5c", "amount": 5, "currency": "EURO", "payment_method": "pm_x", "idempotency_key": "k"}"#,
            "currency: ",
        ),
        ("not json", "invalid --request bad.json"),
    ];
    for (text, expected) in cases {
        files.write("bad.json", text);
        let out = files.call(&package("stripe"), &["process", "--request", "bad.json"]);
        assert!(!out.status.success(), "{text}");
        assert!(stdout(&out).is_empty());
        assert!(stderr(&out).contains(expected), "{text}: {}", stderr(&out));
    }
}

#[test]
fn an_archive_package_runs_and_retrieve_asks_the_provider() {
    let files = Files::new();
    payment_request(&files, json!({}));
    let archive = files.0.path().join("stripe.tar.gz");
    lessor_plugin_registry::Package::load(&package("stripe")).unwrap().write_archive(&archive).unwrap();

    let out = files.call(&archive, &["validate", "--request", "payment.json", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(parsed(&out), json!({ "outcome": { "valid": true }, "exchanges": [] }));

    // retrieve-payment by the known transaction id: one GET, answered from a file.
    let lookup = json!({ "payment_id": PAYMENT_ID, "idempotency_key": "key-1", "provider_transaction_id": "pi_3Ab",
                         "amount": 1999, "currency": "EUR" });
    files.write("lookup.json", &lookup.to_string());
    files.write(
        "intent.http",
        "200\n\n{\"id\": \"pi_3Ab\", \"object\": \"payment_intent\", \"amount\": 1999, \"currency\": \"eur\", \"status\": \"succeeded\"}",
    );
    let secret = format!("secret_key={SECRET_KEY}");
    let respond = "GET https://api.stripe.com/v1/payment_intents/pi_3Ab=intent.http";
    let out = files
        .call(&archive, &["retrieve", "--request", "lookup.json", "--secret", &secret, "--respond", respond, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = parsed(&out);
    assert_eq!(v["outcome"]["payment"]["status"], "succeeded", "{v}");
    assert_eq!(v["outcome"]["payment"]["provider_transaction_id"], "pi_3Ab");
    assert_eq!(v["exchanges"][0]["method"], "GET");

    // A frozen 0.1.0 component has no retrieve: said so, nothing called.
    let out = files.call(&package("legacy-v0-1"), &["retrieve", "--request", "lookup.json"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("retrieve needs a lessor:payments@0.2.0 component"), "{}", stderr(&out));
}

#[test]
fn config_is_handed_to_the_plugin_and_only_respond_origins_beyond_the_manifest_are_granted() {
    let files = Files::new();
    payment_request(&files, json!({}));
    files.write(
        "intent.http",
        "200\n\n{\"id\": \"pi_sb\", \"amount\": 1999, \"currency\": \"eur\", \"status\": \"processing\"}",
    );
    let secret = format!("secret_key={SECRET_KEY}");
    let call = |extra: &[&str]| {
        let mut args = vec!["process", "--request", "payment.json", "--secret", &secret, "--json"];
        args.extend_from_slice(extra);
        files.call(&package("stripe"), &args)
    };

    // api_base points at a sandbox origin; its --respond grants that origin for the call.
    let out = call(&[
        "--config",
        "api_base=https://stripe.sandbox.test/",
        "--respond",
        "POST https://stripe.sandbox.test/v1/payment_intents=intent.http",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = parsed(&out);
    assert_eq!(v["exchanges"][0]["url"], "https://stripe.sandbox.test/v1/payment_intents");
    assert_eq!(v["outcome"]["status"], "processing");

    // Without a route there, the origin is neither in the manifest nor granted: refused before
    // any transport, as host serve refuses it.
    let out = call(&["--config", "api_base=https://stripe.sandbox.test"]);
    assert!(!out.status.success());
    let v = parsed(&out);
    assert_eq!(v["error"]["type"], "egress_denied", "{v}");
    assert_eq!(v["error"]["denied"], "https://stripe.sandbox.test:443 was not granted");
    assert_eq!(v["exchanges"], json!([]));

    // A key the manifest does not declare is refused, naming it.
    let out = call(&["--config", "region=eu"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("config key `region` is not declared in its manifest"), "{}", stderr(&out));
}
