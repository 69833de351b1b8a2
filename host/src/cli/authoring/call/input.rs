//! `--request FILE`: the call's input as JSON, read straight into the payments crate's gateway
//! types (their JSON form is documented on them). Unknown fields are refused, and every error
//! names the field's JSON path.

use std::path::Path;

use anyhow::Context;
use lessor_payments::{PaymentLookup, PaymentRequest, RefundLookup, RefundRequest, WebhookRequest};
use serde::de::DeserializeOwned;

/// What `--help` and the README show.
pub const SHAPES: &str = "\
The --request FILE is JSON (ids are UUIDs; amounts in integer minor units of an ISO 4217 currency):
  validate, process: {\"payment_id\": \"7d0c…\", \"lease_id\": \"2f1a…\", \"installment_id\": null,
                      \"amount\": 1999, \"currency\": \"EUR\", \"payment_method\": \"pm_card_visa\",
                      \"idempotency_key\": \"key-1\", \"metadata\": {\"k\": \"v\"}}
                     (installment_id and metadata may be left out)
  refund:            {\"refund_id\": \"5e9b…\", \"payment_id\": \"7d0c…\", \"provider_transaction_id\": \"pi_1\",
                      \"amount\": 500, \"currency\": \"EUR\", \"reason\": null, \"idempotency_key\": \"key-2\"}
                     (reason may be left out)
  webhook:           {\"headers\": {\"stripe-signature\": \"t=…,v1=…\"}, \"body\": \"{…the raw body…}\",
                      \"received_at\": 1767225600000}
                     (body is the exact text the provider signed; received_at in Unix ms, default now)
  retrieve:          a payment: {\"payment_id\": \"7d0c…\", \"idempotency_key\": \"key-1\",
                      \"provider_transaction_id\": null, \"amount\": 1999, \"currency\": \"EUR\"}
                     a refund:  {\"refund_id\": \"5e9b…\", \"payment_id\": \"7d0c…\", \"provider_transaction_id\": \"pi_1\",
                      \"provider_refund_id\": null, \"amount\": 500, \"currency\": \"EUR\", \"idempotency_key\": \"key-2\"}
                     (payment_method in a payment request: method_kind \"token\" (default) or \"sepa_mandate\")
A --respond FILE is the canned answer: a status line (201, or HTTP/1.1 201 Created), then
`Name: value` header lines, a blank line, and the body byte for byte.";

/// One call's input.
pub enum CallInput {
    Payment(PaymentRequest),
    Refund(RefundRequest),
    Webhook(WebhookRequest),
    PaymentLookup(PaymentLookup),
    RefundLookup(RefundLookup),
}

pub fn payment(file: &Path) -> anyhow::Result<CallInput> {
    read(file).map(CallInput::Payment)
}

pub fn refund(file: &Path) -> anyhow::Result<CallInput> {
    read(file).map(CallInput::Refund)
}

/// Header names lower-cased, as `host serve` hands a received webhook's headers to the plugin.
pub fn webhook(file: &Path) -> anyhow::Result<CallInput> {
    read(file).map(CallInput::Webhook)
}

/// A refund lookup when the JSON has a `refund_id`, else a payment lookup.
pub fn lookup(file: &Path) -> anyhow::Result<CallInput> {
    let value: serde_json::Value = read(file)?;
    if value.get("refund_id").is_some() {
        read(file).map(CallInput::RefundLookup)
    } else {
        read(file).map(CallInput::PaymentLookup)
    }
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
