//! `retrieve-payment` and `retrieve-refund`: where a PaymentIntent or a Refund stands at Stripe,
//! read with GET requests only (README.md, "Retrieving", lists them).

use lessor_plugin_sdk::{PaymentLookup, PaymentOutcome, ProviderError, RefundLookup, RefundOutcome, log};

use crate::wire::{Page, PaymentIntent, Refund};
use crate::{Api, api_failure, intent_outcome, parse, refund_outcome};

/// Pages of 100 refunds read at most when looking a refund up by our id (10 000 refunds of one
/// payment: far more than a lease ever has).
const MAX_REFUND_PAGES: usize = 100;

/// The PaymentIntent by id when the host knows it, else found with the search API by the
/// `metadata[payment_id]` that `process` set (and the amount and currency, so another system's
/// metadata on the same account cannot match).
pub fn payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
    let api = Api::from_config()?;
    let intent = match lookup.provider_transaction_id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => {
            if !is_object_id(id, "pi_") {
                return Err(ProviderError::invalid_request(
                    "provider-transaction-id",
                    "expected a PaymentIntent id (pi_…)",
                ));
            }
            let response = api.get(&format!("/v1/payment_intents/{id}"), &[])?;
            if response.status == 404 {
                return Ok(None);
            }
            if !response.is_success() {
                return Err(api_failure(&response));
            }
            parse::<PaymentIntent>(&response)?
        }
        None => {
            let query = format!("metadata['payment_id']:'{}'", escape(&lookup.payment_id));
            let response = api.get("/v1/payment_intents/search", &[("query", &query), ("limit", "10")])?;
            if !response.is_success() {
                return Err(api_failure(&response));
            }
            let page: Page<PaymentIntent> = parse(&response)?;
            let currency = lookup.amount.currency.to_ascii_lowercase();
            let found = page.data.into_iter().find(|pi| {
                pi.metadata.get("payment_id") == Some(&lookup.payment_id)
                    && pi.amount == lookup.amount.amount
                    && pi.currency == currency
            });
            match found {
                Some(intent) => intent,
                None => {
                    log::info!(payment = lookup.payment_id; "no PaymentIntent for this payment at Stripe");
                    return Ok(None);
                }
            }
        }
    };
    intent_outcome(intent).map(Some)
}

/// The Refund by id when the host knows it, else the refund of the PaymentIntent whose
/// `metadata[refund_id]` is ours (`GET /v1/refunds?payment_intent=…`, page by page).
pub fn refund(lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
    let api = Api::from_config()?;
    if let Some(id) = lookup.provider_refund_id.as_deref().filter(|id| !id.is_empty()) {
        if !(is_object_id(id, "re_") || is_object_id(id, "pyr_")) {
            return Err(ProviderError::invalid_request("provider-refund-id", "expected a Refund id (re_… or pyr_…)"));
        }
        let response = api.get(&format!("/v1/refunds/{id}"), &[])?;
        if response.status == 404 {
            return Ok(None);
        }
        if !response.is_success() {
            return Err(api_failure(&response));
        }
        return refund_outcome(parse::<Refund>(&response)?).map(Some);
    }
    if !is_object_id(&lookup.provider_transaction_id, "pi_") {
        return Err(ProviderError::invalid_request("provider-transaction-id", "expected a PaymentIntent id (pi_…)"));
    }
    let mut starting_after: Option<String> = None;
    for _ in 0..MAX_REFUND_PAGES {
        let mut query = vec![("payment_intent", lookup.provider_transaction_id.as_str()), ("limit", "100")];
        if let Some(last) = &starting_after {
            query.push(("starting_after", last.as_str()));
        }
        let response = api.get("/v1/refunds", &query)?;
        if !response.is_success() {
            return Err(api_failure(&response));
        }
        let page: Page<Refund> = parse(&response)?;
        let last = page.data.last().map(|r| r.id.clone());
        if let Some(refund) = page.data.into_iter().find(|r| r.metadata.get("refund_id") == Some(&lookup.refund_id)) {
            return refund_outcome(refund).map(Some);
        }
        match last {
            Some(last) if page.has_more => starting_after = Some(last),
            _ => return Ok(None),
        }
    }
    Err(ProviderError::Internal(format!("more than {MAX_REFUND_PAGES} pages of refunds of one PaymentIntent")))
}

/// `prefix` followed by 1-250 of `[A-Za-z0-9_]`: safe to put in a URL path.
fn is_object_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|r| (1..=250).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// A value inside a single-quoted search query term: `'` and `\` escaped with `\`.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "\\'")
}
