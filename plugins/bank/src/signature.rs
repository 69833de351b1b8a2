//! The bank's HMAC-SHA256 scheme, the same for our requests and its webhooks: the signature is
//! `v1=<hex HMAC-SHA256(secret, "<unix seconds>.<raw body>")>`, the timestamp travels in its own
//! header and must lie within 300 s of the receiver's clock.

use hmac::{Hmac, Mac};
use sha2::Sha256;

fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Signature` value for a request we send.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    format!("v1={}", hex::encode(mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Checks a webhook: `header` may list several comma-separated `v1=` signatures (the bank signs
/// with old and new secret while one is rolled); any one matching, compared in constant time, is
/// enough.
pub fn verify(header: &str, timestamp: &str, body: &[u8], secret: &[u8], now_secs: u64, tolerance: u64) -> bool {
    if timestamp.is_empty() || timestamp.len() > 12 || !timestamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let Ok(t) = timestamp.parse::<u64>() else { return false };
    if now_secs.abs_diff(t) > tolerance {
        return false;
    }
    let expected = mac(secret, timestamp, body);
    header
        .split(',')
        .filter_map(|item| item.trim().strip_prefix("v1="))
        .filter_map(|h| hex::decode(h).ok())
        .any(|given| expected.clone().verify_slice(&given).is_ok())
}
