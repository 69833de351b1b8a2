//! Stripe card payments through the PaymentIntents API (see README.md for the exact subset).
//!
//! - `process`: `POST /v1/payment_intents` (form-encoded, `confirm=true`) with the request's
//!   idempotency key, so a retried call never charges twice.
//! - `refund`: `POST /v1/refunds` against the PaymentIntent.
//! - `parse_webhook`: verifies `Stripe-Signature` and normalises `payment_intent.succeeded`,
//!   `payment_intent.payment_failed`, `charge.refunded` (the PaymentIntent id, cumulative
//!   `amount_refunded`) and `refund.created`/`refund.updated`/`refund.failed` (the refund's own
//!   id `re_…`/`pyr_…` as `provider-transaction-id`, its amount).
//!
//! Stripe's wire types live in `wire`, the signature scheme in `signature`; this file maps them to
//! the SDK's domain types.

mod signature;
mod wire;

use lessor_plugin_sdk::http::{Request, Response};
use lessor_plugin_sdk::{
    Capabilities, EventKind, Money, PaymentOutcome, PaymentRequest, PaymentStatus, Provider, ProviderError,
    ProviderInfo, RefundOutcome, RefundRequest, RefundStatus, WebhookEvent, WebhookRequest, log,
};

use wire::{ApiError, Charge, ErrorBody, Event, PaymentIntent, Refund};

const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// Pinned so an account's default API version can change without changing what we parse.
const API_VERSION: &str = "2024-06-20";
/// Currencies Stripe settles with two decimals that a European lessor bills in.
const CURRENCIES: &[&str] = &["EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK"];
/// How far a webhook's signed timestamp may be from the time the host received it.
const WEBHOOK_TOLERANCE_SECS: u64 = 300;
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
        ProviderInfo::new(
            "stripe",
            env!("CARGO_PKG_VERSION"),
            CURRENCIES,
            Capabilities::REFUNDS
                | Capabilities::PARTIAL_REFUNDS
                | Capabilities::WEBHOOKS
                | Capabilities::PAYER_ACTIONS,
        )
    }

    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        check_money(&request.amount)?;
        check_idempotency_key(&request.idempotency_key)?;
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
        let refund: Refund = parse(&response)?;
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

    fn parse_webhook(request: WebhookRequest) -> Result<Option<WebhookEvent>, ProviderError> {
        let secret = lessor_plugin_sdk::require_secret("webhook_secret")?;
        if secret.expose().is_empty() {
            return Err(ProviderError::Internal("secret `webhook_secret` is empty".to_owned()));
        }
        let header = request
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("stripe-signature"))
            .map(|(_, value)| value.as_str())
            .ok_or(ProviderError::SignatureInvalid)?;
        let now_secs = request.received_at / 1000;
        if !signature::verify(header, &request.body, secret.expose().as_bytes(), now_secs, WEBHOOK_TOLERANCE_SECS) {
            return Err(ProviderError::SignatureInvalid);
        }

        // Authentic from here on: a body we cannot read is Stripe's or our bug, not an attack.
        let event: Event = serde_json::from_slice(&request.body)
            .map_err(|e| ProviderError::invalid_request("body", format!("not a Stripe event: {e}")))?;
        let occurred_at = event.created.and_then(|s| u64::try_from(s).ok()).map(|s| s * 1000);
        let event = match event.kind.as_str() {
            "payment_intent.succeeded" => {
                let intent: PaymentIntent = object(&event)?;
                let received = if intent.amount_received > 0 { intent.amount_received } else { intent.amount };
                WebhookEvent {
                    amount: money(received, &intent.currency),
                    ..WebhookEvent::new(&event.id, EventKind::PaymentSucceeded, intent.id)
                }
            }
            "payment_intent.payment_failed" => {
                let intent: PaymentIntent = object(&event)?;
                WebhookEvent {
                    amount: money(intent.amount, &intent.currency),
                    reason_code: intent.last_payment_error.as_ref().and_then(ApiError::reason_code).map(str::to_owned),
                    ..WebhookEvent::new(&event.id, EventKind::PaymentFailed, intent.id)
                }
            }
            "charge.refunded" => {
                let charge: Charge = object(&event)?;
                let Some(intent) = charge.payment_intent else {
                    // A charge made without a PaymentIntent was not made by this plugin.
                    log::info!(event = event.id, charge = charge.id; "ignoring a refund of a charge without PaymentIntent");
                    return Ok(None);
                };
                WebhookEvent {
                    amount: money(charge.amount_refunded, &charge.currency),
                    ..WebhookEvent::new(&event.id, EventKind::RefundSucceeded, intent)
                }
            }
            // A refund object: the host matches it by its id (`re_…`, `pyr_…`), never a `pi_…`.
            "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
                let refund: Refund = object(&event)?;
                let kind = match (event.kind.as_str(), refund.status.as_str()) {
                    ("refund.failed", _) | (_, "failed" | "canceled") => EventKind::RefundFailed,
                    (_, "succeeded") => EventKind::RefundSucceeded,
                    (_, status) => {
                        log::debug!(event = event.id, refund = refund.id, status = status; "refund not final yet");
                        return Ok(None);
                    }
                };
                let reason_code = match kind {
                    EventKind::RefundFailed => {
                        Some(refund.failure_reason.clone().unwrap_or_else(|| refund.status.clone()))
                    }
                    _ => None,
                };
                WebhookEvent {
                    amount: money(refund.amount, &refund.currency),
                    reason_code,
                    ..WebhookEvent::new(&event.id, kind, refund.id)
                }
            }
            other => {
                log::debug!(event = event.id, kind = other; "ignoring a Stripe event of another type");
                return Ok(None);
            }
        };
        Ok(Some(WebhookEvent { occurred_at, ..event }))
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
        if secret_key.expose().is_empty() {
            return Err(ProviderError::Internal("secret `secret_key` is empty".to_owned()));
        }
        Ok(Self { base: base.trim_end_matches('/').to_owned(), secret_key })
    }

    /// A form POST. Transport failures: timeouts and refused connections are
    /// `provider-unavailable` (retry with the same key), a host refusal is `internal`.
    fn post(&self, path: &str, idempotency_key: &str, form: &[(String, String)]) -> Result<Response, ProviderError> {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Ok(Request::post(format!("{}{path}", self.base))
            .bearer_auth(self.secret_key.expose())
            .idempotency_key(idempotency_key)
            .header("stripe-version", API_VERSION)
            .form(&pairs)
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
    let intent: PaymentIntent = parse(response)?;
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
        // The operator's key is wrong or lacks permission: no request of ours can fix that.
        (401 | 403, _) => ProviderError::Internal(format!("Stripe refused the secret key (HTTP {status}): {message}")),
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
