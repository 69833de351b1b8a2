//! SEPA direct debit through the bank's collections API: how a lessor collects monthly
//! installments. README.md documents the bank API contract this plugin speaks.
//!
//! - `validate`: the mandate in `payment-method` (IBAN, BIC, reference, signature date), EUR only.
//! - `process`: `POST /v1/collections`, signed with HMAC-SHA256; the answer is `processing`,
//!   settlement comes days later through a webhook.
//! - `refund`: `POST /v1/refunds`.
//! - `retrieve_payment` / `retrieve_refund` (`retrieve`): signed GETs by end-to-end id / refund id.
//! - `parse_webhook` (`webhooks`): verifies `X-Bank-Signature` and normalises `collection.settled`,
//!   `collection.failed`, `collection.returned` (with the R-transaction reason code) and
//!   `refund.succeeded` / `refund.failed`.

mod retrieve;
mod sepa;
mod signature;
mod webhooks;
mod wire;

use lessor_plugin_sdk::http::{Request, Response};
use lessor_plugin_sdk::{
    MethodKind, Money, PaymentLookup, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo,
    RefundLookup, RefundOutcome, RefundRequest, RefundStatus, WebhookBatch, WebhookRequest, log,
};

use wire::{Collection, ErrorBody, MandateInput, NewCollection, NewRefund, Refund};

const DEFAULT_API_BASE: &str = "https://api.bank.example";
const CURRENCY: &str = "EUR";
/// SEPA's ceiling for one direct debit: 999 999 999.99 EUR.
const MAX_AMOUNT: i64 = 99_999_999_999;
const MS_PER_DAY: u64 = 86_400_000;

struct Bank;

/// A mandate that passed validation, in the forms the bank expects.
struct Mandate {
    iban: String,
    bic: Option<String>,
    reference: String,
    signed_on: String,
    debtor_name: String,
}

impl Provider for Bank {
    fn info() -> ProviderInfo {
        ProviderInfo::new("bank", env!("CARGO_PKG_VERSION"))
            .currencies(&[CURRENCY])
            .method_kinds(&[MethodKind::SepaMandate])
            .partial_refunds()
            .asynchronous_settlement()
            .webhooks()
    }

    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        check_money(&request.amount)?;
        if request.method_kind != MethodKind::SepaMandate {
            return Err(ProviderError::invalid_request("method-kind", "the bank collects by SEPA mandate only"));
        }
        if request.idempotency_key.is_empty() || request.idempotency_key.len() > 255 {
            return Err(ProviderError::invalid_request("idempotency-key", "must be 1 to 255 characters"));
        }
        end_to_end_id(&request.payment_id)?;
        mandate(&request.payment_method)?;
        Ok(())
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Self::validate(&request)?;
        let mandate = mandate(&request.payment_method)?;
        let end_to_end_id = end_to_end_id(&request.payment_id)?;
        let api = Api::from_config()?;
        let remittance = match &request.installment_id {
            Some(installment) => format!("Lease {} installment {installment}", request.lease_id),
            None => format!("Lease {}", request.lease_id),
        };
        let remittance = sepa::sepa_text(&remittance, 140);
        let body = NewCollection {
            end_to_end_id: &end_to_end_id,
            amount: request.amount.amount,
            currency: CURRENCY,
            creditor_id: &api.creditor_id,
            mandate: wire::MandateRef { reference: &mandate.reference, signed_on: &mandate.signed_on },
            debtor: wire::Debtor { name: &mandate.debtor_name, iban: &mandate.iban, bic: mandate.bic.as_deref() },
            remittance_information: &remittance,
        };

        log::info!(payment = request.payment_id, amount = request.amount.amount; "submitting SEPA collection");
        let response = api.post("/v1/collections", &request.idempotency_key, &to_json(&body))?;
        // 409: this end-to-end id was submitted before (a retry); the body is that collection.
        if !(response.is_success() || response.status == 409) {
            return Err(api_failure(&response, "collection"));
        }
        let outcome = collection_outcome(parse(&response)?)?;
        log::info!(payment = request.payment_id, collection = outcome.provider_transaction_id; "collection submitted");
        Ok(outcome)
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        check_money(&request.amount)?;
        if request.provider_transaction_id.is_empty() {
            return Err(ProviderError::invalid_request("provider-transaction-id", "the collection id is missing"));
        }
        let api = Api::from_config()?;
        let reason = request.reason.as_deref().map(|r| sepa::sepa_text(r, 140));
        let body = NewRefund {
            refund_id: &request.refund_id,
            collection_id: &request.provider_transaction_id,
            amount: request.amount.amount,
            currency: CURRENCY,
            reason: reason.as_deref(),
        };
        log::info!(refund = request.refund_id, collection = request.provider_transaction_id; "requesting refund");
        let response = api.post("/v1/refunds", &request.idempotency_key, &to_json(&body))?;
        // 409: a refund with this refund_id exists; the body is that refund.
        if !(response.is_success() || response.status == 409) {
            return Err(api_failure(&response, "refund"));
        }
        refund_outcome(parse(&response)?)
    }

    fn retrieve_payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
        retrieve::payment(lookup)
    }

    fn retrieve_refund(lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
        retrieve::refund(lookup)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        webhooks::parse(request)
    }
}

/// Where and as whom to call the bank.
struct Api {
    base: String,
    client_id: String,
    creditor_id: String,
    client_secret: lessor_plugin_sdk::Secret,
}

impl Api {
    fn from_config() -> Result<Self, ProviderError> {
        let base = lessor_plugin_sdk::config("api_base").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let client_id = lessor_plugin_sdk::require_config("client_id")?;
        let creditor_id = lessor_plugin_sdk::require_config("creditor_id")?;
        if !sepa::check_creditor_id(&creditor_id) {
            log::warn!("configuration key `creditor_id` is not a SEPA creditor identifier");
            return Err(ProviderError::misconfigured("creditor_id"));
        }
        let client_secret = lessor_plugin_sdk::require_secret("client_secret")?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), client_id, creditor_id, client_secret })
    }

    /// A signed JSON POST. Timeouts and refused connections are `provider-unavailable`: a retry
    /// carries the same idempotency key and end-to-end id, which the bank deduplicates.
    fn post(&self, path: &str, idempotency_key: &str, body: &str) -> Result<Response, ProviderError> {
        Ok(self
            .signed(Request::post(format!("{}{path}", self.base)), body)
            .idempotency_key(idempotency_key)
            .json(body)
            .send()?)
    }

    /// A signed GET (`retrieve-*`), its signature over the empty body: `"<X-Timestamp>."`.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Response, ProviderError> {
        Ok(self.signed(Request::get(format!("{}{path}", self.base)).query(query), "").send()?)
    }

    /// `X-Client-Id`, `X-Timestamp` and `X-Signature` over `body`.
    fn signed(&self, request: Request, body: &str) -> Request {
        let timestamp = (lessor_plugin_sdk::now() / 1000).to_string();
        let signature = signature::sign(self.client_secret.expose().as_bytes(), &timestamp, body.as_bytes());
        request.header("x-client-id", &self.client_id).header("x-timestamp", timestamp).header("x-signature", signature)
    }
}

/// The debtor's mandate from `payment-method`, checked field by field.
fn mandate(payment_method: &str) -> Result<Mandate, ProviderError> {
    let input: MandateInput = serde_json::from_str(payment_method).map_err(|e| {
        ProviderError::invalid_request(
            "payment-method",
            format!(
                "expected a JSON SEPA mandate {{iban, bic?, mandate_reference, mandate_signed_on, debtor_name}}: {e}"
            ),
        )
    })?;
    let missing = |field: &str| ProviderError::invalid_request(format!("payment-method.{field}"), "is required");
    let invalid = |field: &'static str| {
        move |reason: String| ProviderError::invalid_request(format!("payment-method.{field}"), reason)
    };

    let iban = sepa::normalize_iban(input.iban.as_deref().ok_or_else(|| missing("iban"))?).map_err(invalid("iban"))?;
    let bic = match input.bic.as_deref() {
        None | Some("") => None,
        Some(bic) => Some(sepa::normalize_bic(bic).map_err(invalid("bic"))?),
    };
    let reference = input.mandate_reference.ok_or_else(|| missing("mandate-reference"))?;
    sepa::check_mandate_reference(&reference).map_err(invalid("mandate-reference"))?;
    let signed_on = input.mandate_signed_on.ok_or_else(|| missing("mandate-signed-on"))?;
    let Some(signed_day) = sepa::parse_date(&signed_on) else {
        return Err(invalid("mandate-signed-on")("must be a date YYYY-MM-DD".into()));
    };
    let today = i64::try_from(lessor_plugin_sdk::now() / MS_PER_DAY).unwrap_or(i64::MAX);
    if signed_day > today {
        return Err(invalid("mandate-signed-on")("must not be in the future".into()));
    }
    let debtor_name = input.debtor_name.map(|n| n.trim().to_owned()).ok_or_else(|| missing("debtor-name"))?;
    if debtor_name.is_empty() || debtor_name.chars().count() > 70 {
        return Err(invalid("debtor-name")("must be 1 to 70 characters".into()));
    }
    Ok(Mandate { iban, bic, reference, signed_on, debtor_name })
}

/// Where a collection stands, as an outcome.
fn collection_outcome(collection: Collection) -> Result<PaymentOutcome, ProviderError> {
    let id = collection.collection_id;
    Ok(match collection.status.as_str() {
        "accepted" => PaymentOutcome::processing(id),
        "settled" => PaymentOutcome::succeeded(id),
        "rejected" | "failed" | "returned" => {
            let code = collection.reason_code.unwrap_or_else(|| collection.status.clone());
            PaymentOutcome::failed(id, code)
        }
        other => return Err(ProviderError::Internal(format!("collection {id} has an unknown status `{other}`"))),
    })
}

/// Where a refund stands, as an outcome.
fn refund_outcome(refund: Refund) -> Result<RefundOutcome, ProviderError> {
    let (status, failure_reason) = match refund.status.as_str() {
        "pending" => (RefundStatus::Pending, None),
        "succeeded" => (RefundStatus::Succeeded, None),
        "failed" => (RefundStatus::Failed, Some(refund.failure_reason.unwrap_or_else(|| "failed".to_owned()))),
        other => {
            return Err(ProviderError::Internal(format!("refund {} has an unknown status `{other}`", refund.id)));
        }
    };
    Ok(RefundOutcome { status, provider_refund_id: refund.id, failure_reason })
}

/// SEPA caps the end-to-end id at 35 characters: the payment id as it is when it fits, a UUID
/// without its hyphens (32 hex digits) otherwise.
fn end_to_end_id(payment_id: &str) -> Result<String, ProviderError> {
    let fits =
        |id: &str| (1..=35).contains(&id.len()) && sepa::check_mandate_reference(id).is_ok() && !id.contains(' ');
    if fits(payment_id) {
        return Ok(payment_id.to_owned());
    }
    let compact: String = payment_id.chars().filter(|c| *c != '-').collect();
    if payment_id.len() == 36 && compact.len() == 32 && compact.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(compact);
    }
    Err(ProviderError::invalid_request("payment-id", "must fit a SEPA end-to-end id (35 characters) or be a UUID"))
}

fn check_money(amount: &Money) -> Result<(), ProviderError> {
    if amount.currency != CURRENCY {
        return Err(ProviderError::invalid_request("amount.currency", "SEPA direct debits are in EUR only"));
    }
    if amount.amount <= 0 || amount.amount > MAX_AMOUNT {
        return Err(ProviderError::invalid_request("amount.amount", "must be 1 to 99999999999 cents"));
    }
    Ok(())
}

/// A non-2xx answer (other than 409) as an error.
fn api_failure(response: &Response, what: &str) -> ProviderError {
    let status = response.status;
    let error = serde_json::from_slice::<ErrorBody>(&response.body).ok().map(|b| b.error);
    let message = error
        .as_ref()
        .map(|e| {
            let code = e.code.as_deref().unwrap_or("error");
            format!("{code}: {}", e.message.as_deref().unwrap_or("no message"))
        })
        .unwrap_or_else(|| format!("HTTP {status}"));
    match (status, error) {
        (429 | 500..=599, _) => {
            ProviderError::ProviderUnavailable(format!("the bank answered HTTP {status}: {message}"))
        }
        // Our client id or secret is wrong (or the clock): nothing was collected, the operator must fix it.
        (401 | 403, _) => {
            log::warn!(status = status; "the bank refused our client id or signature: {message}");
            ProviderError::misconfigured("client_secret")
        }
        (404, Some(_)) if what == "refund" => ProviderError::invalid_request("provider-transaction-id", message),
        (400..=499, Some(error)) => ProviderError::invalid_request(field_of(error.field.as_deref()), message),
        (400..=499, None) => {
            ProviderError::ProviderUnavailable(format!("the bank answered HTTP {status} with an unreadable body"))
        }
        _ => ProviderError::Internal(format!("the bank answered an unexpected HTTP {status} to a {what}")),
    }
}

/// The bank's JSON field names in terms of our request's fields.
fn field_of(field: Option<&str>) -> String {
    match field {
        None | Some("") => "request".to_owned(),
        Some("amount") => "amount.amount".to_owned(),
        Some("currency") => "amount.currency".to_owned(),
        Some("debtor.iban") => "payment-method.iban".to_owned(),
        Some("debtor.bic") => "payment-method.bic".to_owned(),
        Some("debtor.name") => "payment-method.debtor-name".to_owned(),
        Some("mandate.reference") => "payment-method.mandate-reference".to_owned(),
        Some("mandate.signed_on") => "payment-method.mandate-signed-on".to_owned(),
        Some("end_to_end_id") => "payment-id".to_owned(),
        Some("collection_id") => "provider-transaction-id".to_owned(),
        Some(other) => other.to_owned(),
    }
}

/// A 2xx (or 409) body; one we cannot read means we do not know what happened, so the caller
/// should retry, which the bank deduplicates.
fn parse<T: serde::de::DeserializeOwned>(response: &Response) -> Result<T, ProviderError> {
    serde_json::from_slice(&response.body).map_err(|e| {
        ProviderError::ProviderUnavailable(format!(
            "the bank answered HTTP {} with an unreadable body: {e}",
            response.status
        ))
    })
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain structs of strings and numbers serialise")
}

lessor_plugin_sdk::export_provider!(Bank);

#[cfg(test)]
mod tests;
