//! `--request FILE`: the call's input as JSON, read into the host's wire types
//! (`plugins::types`). Unknown fields are refused, and every error names the field's JSON path.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::plugins::types::{Money, PaymentRequest, RefundRequest, WebhookRequest};

/// What `--help` and the README show.
pub const SHAPES: &str = "\
The --request FILE is JSON (amounts in integer minor units):
  validate, process: {\"payment_id\": \"pay_1\", \"lease_id\": \"lease_1\", \"installment_id\": null,
                      \"amount\": {\"amount\": 1999, \"currency\": \"EUR\"}, \"payment_method\": \"pm_card_visa\",
                      \"idempotency_key\": \"key-1\", \"metadata\": {\"k\": \"v\"}}
                     (installment_id and metadata may be left out)
  refund:            {\"refund_id\": \"ref_1\", \"payment_id\": \"pay_1\", \"provider_transaction_id\": \"pi_1\",
                      \"amount\": {\"amount\": 500, \"currency\": \"EUR\"}, \"reason\": null, \"idempotency_key\": \"key-2\"}
                     (reason may be left out)
  webhook:           {\"headers\": {\"stripe-signature\": \"t=…,v1=…\"}, \"body\": \"{…the raw body…}\",
                      \"received_at\": 1767225600000}
                     (body is the exact text the provider signed; received_at in Unix ms, default now)
A --respond FILE is the canned answer: a status line (201, or HTTP/1.1 201 Created), then
`Name: value` header lines, a blank line, and the body byte for byte.";

/// One call's input.
pub enum CallInput {
    Payment(PaymentRequest),
    Refund(RefundRequest),
    Webhook(WebhookRequest),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoneyJson {
    amount: i64,
    currency: String,
}

impl From<MoneyJson> for Money {
    fn from(m: MoneyJson) -> Self {
        Money { amount: m.amount, currency: m.currency }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentJson {
    payment_id: String,
    lease_id: String,
    #[serde(default)]
    installment_id: Option<String>,
    amount: MoneyJson,
    payment_method: String,
    idempotency_key: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefundJson {
    refund_id: String,
    payment_id: String,
    provider_transaction_id: String,
    amount: MoneyJson,
    #[serde(default)]
    reason: Option<String>,
    idempotency_key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookJson {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: String,
    #[serde(default)]
    received_at: Option<u64>,
}

pub fn payment(file: &Path) -> anyhow::Result<CallInput> {
    let p: PaymentJson = read(file)?;
    Ok(CallInput::Payment(PaymentRequest {
        payment_id: p.payment_id,
        lease_id: p.lease_id,
        installment_id: p.installment_id,
        amount: p.amount.into(),
        payment_method: p.payment_method,
        idempotency_key: p.idempotency_key,
        metadata: p.metadata.into_iter().collect(),
    }))
}

pub fn refund(file: &Path) -> anyhow::Result<CallInput> {
    let r: RefundJson = read(file)?;
    Ok(CallInput::Refund(RefundRequest {
        refund_id: r.refund_id,
        payment_id: r.payment_id,
        provider_transaction_id: r.provider_transaction_id,
        amount: r.amount.into(),
        reason: r.reason,
        idempotency_key: r.idempotency_key,
    }))
}

/// Header names lower-cased, as `host serve` hands a received webhook's headers to the plugin.
pub fn webhook(file: &Path) -> anyhow::Result<CallInput> {
    let w: WebhookJson = read(file)?;
    let now = || SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    Ok(CallInput::Webhook(WebhookRequest {
        headers: w.headers.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
        body: w.body.into_bytes(),
        received_at: w.received_at.unwrap_or_else(now),
    }))
}

fn read<T: DeserializeOwned>(file: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(file).with_context(|| format!("reading --request {}", file.display()))?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!("{path}: ") };
        anyhow::anyhow!(
            "invalid --request {}: {at}{} (the shapes are in `host plugin call --help`)",
            file.display(),
            e.into_inner()
        )
    })
}

/// `KEY=VALUE` of `--config` and `--secret`.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}
