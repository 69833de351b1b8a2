//! `retrieve-payment` and `retrieve-refund`: signed GETs by the ids the bank deduplicates by (the
//! end-to-end id of a collection, our refund id of a refund), so a lookup finds what an earlier
//! `process` or `refund` submitted even when its answer never came (README.md, "Retrieving").

use lessor_plugin_sdk::{PaymentLookup, PaymentOutcome, ProviderError, RefundLookup, RefundOutcome, log};

use crate::wire::{Collection, ErrorBody, Refund};
use crate::{Api, api_failure, collection_outcome, end_to_end_id, parse, refund_outcome};

/// `GET /v1/collections?end_to_end_id=…`: the collection, or `None` when the bank has none.
pub fn payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
    let end_to_end_id = end_to_end_id(&lookup.payment_id)?;
    let api = Api::from_config()?;
    let response = api.get("/v1/collections", &[("end_to_end_id", &end_to_end_id)])?;
    if not_found(&response) {
        log::info!(payment = lookup.payment_id; "the bank has no collection for this payment");
        return Ok(None);
    }
    if !response.is_success() {
        return Err(api_failure(&response, "collection"));
    }
    let collection: Collection = parse(&response)?;
    if let Some(known) = lookup.provider_transaction_id.as_deref().filter(|id| !id.is_empty())
        && known != collection.collection_id
    {
        return Err(ProviderError::Internal(format!(
            "the bank answered collection {} for end-to-end id {end_to_end_id}, not {known}",
            collection.collection_id
        )));
    }
    collection_outcome(collection).map(Some)
}

/// `GET /v1/refunds?refund_id=…`: the refund, or `None` when the bank has none.
pub fn refund(lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
    let api = Api::from_config()?;
    let response = api.get("/v1/refunds", &[("refund_id", &lookup.refund_id)])?;
    if not_found(&response) {
        return Ok(None);
    }
    if !response.is_success() {
        return Err(api_failure(&response, "refund lookup"));
    }
    refund_outcome(parse::<Refund>(&response)?).map(Some)
}

/// `404 {"error": {"code": "not_found"}}`: the bank has no such object. A 404 without that body
/// (a bank without the lookup) stays an error.
fn not_found(response: &lessor_plugin_sdk::http::Response) -> bool {
    response.status == 404
        && serde_json::from_slice::<ErrorBody>(&response.body)
            .is_ok_and(|body| body.error.code.as_deref() == Some("not_found"))
}
