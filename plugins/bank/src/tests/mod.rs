//! The plugin run natively against canned answers of the bank API (README.md is its contract),
//! with the SDK's test harness. `cargo test -p lessor-provider-bank` in `plugins/`.

mod process;
mod refund;
mod retrieve;
mod webhooks;

use hmac::{Hmac, Mac};
use lessor_plugin_sdk::http::Method;
use lessor_plugin_sdk::testing::{self, Harness, SentRequest};
use sha2::Sha256;

const API_BASE: &str = "https://bank.test";
const CLIENT_ID: &str = "lessor-client-7";
const CLIENT_SECRET: &str = "cs_test_0f1e2d3c4b5a";
const CREDITOR_ID: &str = "DE98ZZZ09999999999";
/// The harness clock: 2024-03-01T12:00:00Z.
const NOW_MS: u64 = 1_709_294_400_000;

/// A configured plugin whose bank answers `POST {API_BASE}{path}` with `status` and `body`.
fn bank_answering(path: &str, status: u16, body: &str) -> Harness {
    configured().respond(Method::Post, &format!("{API_BASE}{path}"), testing::json(status, body))
}

fn configured() -> Harness {
    Harness::new()
        .now(NOW_MS)
        .config("api_base", API_BASE)
        .config("client_id", CLIENT_ID)
        .config("creditor_id", CREDITOR_ID)
        .secret("client_secret", CLIENT_SECRET)
}

/// `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`, the bank's scheme.
fn bank_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks what every request to the bank carries: client id, the clock's timestamp, a signature
/// over exactly the body sent, the idempotency key and the JSON content type.
fn assert_signed(sent: &SentRequest, idempotency_key: &str) {
    let timestamp = (NOW_MS / 1000).to_string();
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("x-client-id"), Some(CLIENT_ID));
    assert_eq!(sent.header("x-timestamp"), Some(timestamp.as_str()));
    let expected = bank_signature(CLIENT_SECRET, &timestamp, &sent.body);
    assert_eq!(sent.header("x-signature"), Some(expected.as_str()));
    assert_eq!(sent.header("idempotency-key"), Some(idempotency_key));
}

fn json_of(sent: &SentRequest) -> serde_json::Value {
    serde_json::from_slice(&sent.body).unwrap_or_else(|e| panic!("{} sent a body that is not JSON: {e}", sent.line()))
}
