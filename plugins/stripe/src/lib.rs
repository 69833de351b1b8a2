//! Stripe card payments through the PaymentIntents API (see README.md for the exact subset).
//!
//! - `process`: `POST /v1/payment_intents` (form-encoded, `confirm=true`) with the request's
//!   idempotency key, so a retried call never charges twice.
//! - `refund`: `POST /v1/refunds` against the PaymentIntent.
//! - `retrieve_payment` / `retrieve_refund` (`retrieve`): GET the PaymentIntent or Refund by id,
//!   or find it by the host's ids in its metadata.
//! - `parse_webhook` (`webhooks`): verifies `Stripe-Signature` and normalises
//!   `payment_intent.succeeded`, `payment_intent.payment_failed`, `charge.refunded` (the
//!   PaymentIntent id, cumulative `amount_refunded`) and `refund.created`/`refund.updated`/
//!   `refund.failed` (the refund's id `re_…`/`pyr_…` as `provider-refund-id`, its amount).
//!
//! Stripe's wire types live in `wire`, the signature scheme in `signature`; this file maps them to
//! the SDK's domain types.

mod retrieve;
mod signature;
mod webhooks;
mod wire;

use lessor_plugin_sdk::http::{Request, Response};
use lessor_plugin_sdk::{
    MethodKind, Money, PaymentLookup, PaymentOutcome, PaymentRequest, PaymentStatus, Provider, ProviderError,
    ProviderInfo, RefundLookup, RefundOutcome, RefundRequest, RefundStatus, WebhookBatch, WebhookRequest, log,
};

use wire::{ApiError, ErrorBody, Event, PaymentIntent, Refund};

const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// Pinned so an account's default API version can change without changing what we parse.
const API_VERSION: &str = "2024-06-20";
/// Currencies Stripe settles with two decimals that a European lessor bills in.
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK"];
/// Stripe's limit on an idempotency key.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Stripe's limits on metadata: 50 keys, keys up to 40 characters, values up to 500.
const MAX_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY: usize = 40;
const MAX_METADATA_VALUE: usize = 500;
/// Refund reasons Stripe accepts in `reason`; any other reason goes to `metadata[reason]`.
const REFUND_REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

struct Stripe;

impl Provider for Stripe {
    fn info() -> ProviderInfo {
        ProviderInfo::new("stripe", env!("CARGO_PKG_VERSION"))
            .currencies(CURRENCIES)
            .method_kinds(&[MethodKind::Token])
            .partial_refunds()
            .asynchronous_settlement()
            .payer_actions()
            .webhooks()
    }

    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        check_money(&request.amount)?;
        check_idempotency_key(&request.idempotency_key)?;
        if request.method_kind != MethodKind::Token {
            return Err(ProviderError::invalid_request("method-kind", "Stripe takes tokens (pm_…, tok_…) only"));
        }
        if !is_payment_method_token(&request.payment_method) {
            return Err(ProviderError::invalid_request(
                "payment-method",
                "expected a Stripe PaymentMethod id (pm_…) or card token (tok_…)",
            ));
        }
        Ok(())
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        Self::validate(&request)?;
        let api = Api::from_config()?;
        let mut form = vec![
            ("amount".to_owned(), request.amount.amount.to_string()),
            ("currency".to_owned(), request.amount.currency.to_ascii_lowercase()),
            ("payment_method".to_owned(), request.payment_method.clone()),
            ("payment_method_types[]".to_owned(), "card".to_owned()),
            ("confirm".to_owned(), "true".to_owned()),
            ("metadata[payment_id]".to_owned(), request.payment_id.clone()),
            ("metadata[lease_id]".to_owned(), request.lease_id.clone()),
        ];
        if let Some(installment) = &request.installment_id {
            form.push(("metadata[installment_id]".to_owned(), installment.clone()));
        }
        let ours = form.iter().filter(|(k, _)| k.starts_with("metadata[")).count();
        form.extend(extra_metadata(&request.metadata, ours));

        log::info!(payment = request.payment_id, amount = request.amount.amount; "creating PaymentIntent");
        let response = api.post("/v1/payment_intents", &request.idempotency_key, &form)?;
        let outcome = payment_outcome(&response)?;
        log::info!(
            payment = request.payment_id, intent = outcome.provider_transaction_id, status = status_name(outcome.status);
            "PaymentIntent confirmed"
        );
        Ok(outcome)
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        check_money(&request.amount)?;
        check_idempotency_key(&request.idempotency_key)?;
        if !request.provider_transaction_id.starts_with("pi_") {
            return Err(ProviderError::invalid_request(
                "provider-transaction-id",
                "expected the PaymentIntent id (pi_…) the payment was taken with",
            ));
        }
        let api = Api::from_config()?;
        let mut form = vec![
            ("payment_intent".to_owned(), request.provider_transaction_id.clone()),
            ("amount".to_owned(), request.amount.amount.to_string()),
            ("metadata[refund_id]".to_owned(), request.refund_id.clone()),
            ("metadata[payment_id]".to_owned(), request.payment_id.clone()),
        ];
        match request.reason.as_deref() {
            Some(reason) if REFUND_REASONS.contains(&reason) => form.push(("reason".to_owned(), reason.to_owned())),
            Some(reason) => form.push(("metadata[reason]".to_owned(), truncate(reason, MAX_METADATA_VALUE))),
            None => {}
        }

        log::info!(refund = request.refund_id, intent = request.provider_transaction_id; "creating Refund");
        let response = api.post("/v1/refunds", &request.idempotency_key, &form)?;
        if !response.is_success() {
            return Err(api_failure(&response));
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

/// Where and as whom to call Stripe.
struct Api {
    base: String,
    secret_key: lessor_plugin_sdk::Secret,
}

impl Api {
    fn from_config() -> Result<Self, ProviderError> {
        let base = lessor_plugin_sdk::config("api_base").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
        let secret_key = lessor_plugin_sdk::require_secret("secret_key")?;
        Ok(Self { base: base.trim_end_matches('/').to_owned(), secret_key })
    }

    /// A form POST. Transport failures: timeouts and refused connections are
    /// `provider-unavailable` (retry with the same key), a host refusal is `egress-denied`.
    fn post(&self, path: &str, idempotency_key: &str, form: &[(String, String)]) -> Result<Response, ProviderError> {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(Request::post(format!("{}{path}", self.base))
            .bearer_auth(self.secret_key.expose())
            .idempotency_key(idempotency_key)
            .header("stripe-version", API_VERSION)
            .form(&pairs)
            .send()?)
    }

    /// A GET with query parameters (`retrieve-*`): no side effects, so no idempotency key.
    fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Response, ProviderError> {
        Ok(Request::get(format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(self.secret_key.expose())
            .header("stripe-version", API_VERSION)
            .send()?)
    }
}

/// A PaymentIntent answer (or a card error) as an outcome.
fn payment_outcome(response: &Response) -> Result<PaymentOutcome, ProviderError> {
    if response.status == 402
        && let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(&response.body)
        && error.kind == "card_error"
    {
        let intent = error.payment_intent.as_ref().map(|pi| pi.id.clone()).or_else(|| error.charge.clone());
        let code = error.reason_code().unwrap_or("card_declined");
        return Ok(PaymentOutcome::failed(intent.unwrap_or_default(), code));
    }
    if !response.is_success() {
        return Err(api_failure(response));
    }
    intent_outcome(parse(response)?)
}

/// Where a PaymentIntent stands, as an outcome.
fn intent_outcome(intent: PaymentIntent) -> Result<PaymentOutcome, ProviderError> {
    Ok(match intent.status.as_str() {
        "succeeded" => PaymentOutcome::succeeded(intent.id),
        "processing" => PaymentOutcome::processing(intent.id),
        "requires_action" => PaymentOutcome {
            status: PaymentStatus::RequiresAction,
            provider_transaction_id: intent.id,
            decline_code: None,
            next_action_url: intent.next_action.and_then(|a| a.redirect_to_url).and_then(|r| r.url),
        },
        "requires_payment_method" | "canceled" => {
            let code = intent.last_payment_error.as_ref().and_then(ApiError::reason_code).unwrap_or(&intent.status);
            let code = code.to_owned();
            PaymentOutcome::failed(intent.id, code)
        }
        other => {
            return Err(ProviderError::Internal(format!(
                "PaymentIntent {} is in status `{other}` after confirmation",
                intent.id
            )));
        }
    })
}

/// Where a Refund stands, as an outcome.
fn refund_outcome(refund: Refund) -> Result<RefundOutcome, ProviderError> {
    let status = match refund.status.as_str() {
        "succeeded" => RefundStatus::Succeeded,
        "pending" | "requires_action" => RefundStatus::Pending,
        "failed" | "canceled" => RefundStatus::Failed,
        other => {
            return Err(ProviderError::Internal(format!("Refund {} has an unknown status `{other}`", refund.id)));
        }
    };
    let failure_reason = match status {
        RefundStatus::Failed => Some(refund.failure_reason.unwrap_or_else(|| refund.status.clone())),
        _ => None,
    };
    Ok(RefundOutcome { status, provider_refund_id: refund.id, failure_reason })
}

/// A non-2xx answer as an error. Retrying is safe whenever this says `provider-unavailable`:
/// the retry carries the same idempotency key.
fn api_failure(response: &Response) -> ProviderError {
    let status = response.status;
    let error = serde_json::from_slice::<ErrorBody>(&response.body).ok().map(|b| b.error);
    let message = error.as_ref().and_then(|e| e.message.clone()).unwrap_or_else(|| format!("HTTP {status}"));
    match (status, error) {
        // 409: a request with the same key is still in flight at Stripe.
        (409 | 429 | 500..=599, _) => {
            ProviderError::ProviderUnavailable(format!("Stripe answered HTTP {status}: {message}"))
        }
        // The operator's key is wrong or lacks permission: nothing was charged, the operator must fix it.
        (401 | 403, _) => {
            log::warn!(status = status; "Stripe refused the secret key");
            ProviderError::misconfigured("secret_key")
        }
        (400..=499, Some(error)) if error.kind == "idempotency_error" => {
            ProviderError::invalid_request("idempotency-key", message)
        }
        (400..=499, Some(error)) => ProviderError::invalid_request(field_of(error.param.as_deref()), message),
        (400..=499, None) => {
            ProviderError::ProviderUnavailable(format!("Stripe answered HTTP {status} with an unreadable body"))
        }
        _ => ProviderError::Internal(format!("Stripe answered an unexpected HTTP {status}")),
    }
}

/// Stripe's `param` in terms of our request's fields.
fn field_of(param: Option<&str>) -> String {
    match param {
        None | Some("") => "request".to_owned(),
        Some("amount") => "amount.amount".to_owned(),
        Some("currency") => "amount.currency".to_owned(),
        Some("payment_method") => "payment-method".to_owned(),
        Some("payment_intent") => "provider-transaction-id".to_owned(),
        Some(param) if param.starts_with("metadata") => "metadata".to_owned(),
        Some(other) => other.to_owned(),
    }
}

/// A 2xx body; one we cannot read means we do not know what happened, so the caller should retry
/// (with the same idempotency key, which replays Stripe's first answer).
fn parse<T: serde::de::DeserializeOwned>(response: &Response) -> Result<T, ProviderError> {
    serde_json::from_slice(&response.body).map_err(|e| {
        ProviderError::ProviderUnavailable(format!(
            "Stripe answered HTTP {} with an unreadable body: {e}",
            response.status
        ))
    })
}

fn object<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, ProviderError> {
    T::deserialize(&event.data.object).map_err(|e| {
        ProviderError::invalid_request(
            "body",
            format!("{} event {} has an unexpected object: {e}", event.kind, event.id),
        )
    })
}

fn money(amount: i64, currency: &str) -> Option<Money> {
    (!currency.is_empty()).then(|| Money::new(amount, &currency.to_ascii_uppercase()))
}

fn check_money(amount: &Money) -> Result<(), ProviderError> {
    if amount.amount <= 0 {
        return Err(ProviderError::invalid_request("amount.amount", "must be positive"));
    }
    // Stripe's ceiling is eight digits of minor units.
    if amount.amount > 99_999_999 {
        return Err(ProviderError::invalid_request("amount.amount", "over Stripe's maximum of 99999999 minor units"));
    }
    if !CURRENCIES.contains(&amount.currency.as_str()) {
        return Err(ProviderError::invalid_request("amount.currency", format!("not supported; one of {CURRENCIES:?}")));
    }
    Ok(())
}

fn check_idempotency_key(key: &str) -> Result<(), ProviderError> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ProviderError::invalid_request("idempotency-key", "must be 1 to 255 characters"));
    }
    Ok(())
}

/// `pm_…` (a PaymentMethod) or `tok_…` (a legacy card token): a prefix and 1–250 of [A-Za-z0-9_].
fn is_payment_method_token(token: &str) -> bool {
    let rest = token.strip_prefix("pm_").or_else(|| token.strip_prefix("tok_"));
    rest.is_some_and(|r| (1..=250).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
}

/// The caller's own metadata as `metadata[key]`, within Stripe's limits; our keys win on clashes.
fn extra_metadata(metadata: &[(String, String)], already: usize) -> Vec<(String, String)> {
    const OURS: &[&str] = &["payment_id", "lease_id", "installment_id"];
    metadata
        .iter()
        .filter(|(k, v)| {
            !k.is_empty()
                && k.len() <= MAX_METADATA_KEY
                && !k.contains(['[', ']'])
                && !OURS.contains(&k.as_str())
                && v.len() <= MAX_METADATA_VALUE
        })
        .take(MAX_METADATA_KEYS.saturating_sub(already))
        .map(|(k, v)| (format!("metadata[{k}]"), v.clone()))
        .collect()
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn status_name(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::Succeeded => "succeeded",
        PaymentStatus::Processing => "processing",
        PaymentStatus::RequiresAction => "requires_action",
        PaymentStatus::Failed => "failed",
    }
}

lessor_plugin_sdk::export_provider!(Stripe);

#[cfg(test)]
mod tests;
