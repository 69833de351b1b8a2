//! Stripe's webhook signature scheme.
//!
//! `Stripe-Signature: t=<unix seconds>,v1=<hex>,v1=<hex>,v0=<hex>`: each `v1` is
//! HMAC-SHA256(endpoint secret, "<t>.<raw body>") in hex. Several `v1` appear while a secret is
//! being rolled; any one matching is enough. `v0` (and anything else) is ignored. The timestamp
//! must lie within the tolerance of the time the host received the webhook, which bounds replays.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Checks `header` against `payload`. `now_secs` is when the host received the webhook.
pub fn verify(header: &str, payload: &[u8], secret: &[u8], now_secs: u64, tolerance_secs: u64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = Some(t),
            Some(("v1", signature)) => signatures.push(signature),
            _ => {}
        }
    }
    let Some(t) = timestamp.filter(|t| !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit())) else {
        return false;
    };
    let Ok(t_secs) = t.parse::<u64>() else { return false };
    if now_secs.abs_diff(t_secs) > tolerance_secs {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return false };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(payload);
    signatures.iter().filter_map(|s| hex::decode(s).ok()).any(|given| mac.clone().verify_slice(&given).is_ok())
}
