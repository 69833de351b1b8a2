//! A provider's webhook request as the host hands it to the provider's plugin, and what the
//! plugin makes of it.

use serde::Deserialize;

use crate::webhook::NormalizedEvent;

/// A webhook exactly as received: the plugin verifies its signature over the raw body (or
/// inside it). As JSON (`host plugin call … webhook`): `headers` an object of names to values
/// (names lower-cased, as `host serve` hands them over), `body` the exact text, `received_at`
/// Unix milliseconds (default: now).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    #[serde(default, deserialize_with = "json::headers")]
    pub headers: Vec<(String, String)>,
    #[serde(deserialize_with = "json::text")]
    pub body: Vec<u8>,
    /// Unix milliseconds.
    #[serde(default = "json::now_ms")]
    pub received_at: u64,
}

/// The HTTP answer a provider expects for a webhook request (the WIT `webhook-reply`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// What one webhook request carries: its verified events (none, one or several) and, when the
/// plugin chose one, the answer the provider expects once every event is recorded (`None`: the
/// host's own answer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebhookBatch {
    pub events: Vec<NormalizedEvent>,
    pub reply: Option<WebhookReply>,
}

mod json {
    use std::collections::BTreeMap;
    use std::time::{SystemTime, UNIX_EPOCH};

    use serde::{Deserialize, Deserializer};

    pub fn headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(d)?;
        Ok(map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect())
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        String::deserialize(d).map(String::into_bytes)
    }

    pub fn now_ms() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }
}
