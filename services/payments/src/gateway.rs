//! The provider boundary: what this crate asks of a payment provider, implemented by the host
//! over its plugin registry (Factory: resolve `provider` to its active plugin version) and the
//! plugin runtime (Strategy: `validate`, `process`, `refund`, `parse_webhook` of that plugin).
//!
//! These types are the one provider contract: each WIT version module of the host
//! (`host/src/plugins/versions/vX_Y_Z.rs`) converts its generated bindings straight to and
//! from them, with typed ids (UUIDs as strings on the wire) and a typed currency. The requests
//! also read JSON (`host plugin call --request`), in the field names below, `amount` in minor
//! units beside `currency`, and the payment's transaction id as `provider_transaction_id`.
//!
//! How the host maps its plugin results to [`GatewayError`]:
//!
//! | plugin result | `GatewayError` |
//! |---|---|
//! | no plugin installed for the provider | `UnknownProvider` |
//! | provider disabled by the operator | `Disabled` |
//! | `provider-error::declined(reason)` | `Declined(reason)` |
//! | `provider-error::invalid-request(field-error)` | `InvalidRequest { field, reason }` (kebab-case field as sent) |
//! | `provider-error::not-supported` | `InvalidRequest { field: "provider", reason }`; from `parse_webhook`: `Unavailable` |
//! | `provider-error::provider-unavailable(msg)` | `Unavailable(msg)` |
//! | `provider-error::internal(msg)`, any sandbox failure (trap, fuel, deadline, memory, output cap), host HTTP timeout | `OutcomeUnknown(msg)` |
//! | input over the size cap (the plugin was not called) | `InvalidRequest { field: "payment_method", … }`; from `parse_webhook`: `InputTooLarge` |
//! | `provider-error::signature-invalid` from `parse_webhook` (elsewhere: `OutcomeUnknown`) | `SignatureInvalid` |
//! | a failed call after the host refused one of its requests for its destination (origin not granted, granted name resolving to a private address), or `provider-error::egress-denied` (0.2.0) | `EgressDenied(origin and reason)` |
//! | `provider-error::misconfigured(key)` (0.2.0) | `Misconfigured(key)` |
//! | `provider-error::not-supported` from `retrieve-payment`/`retrieve-refund` | `NotSupported` (ask `process`/`refund` again) |
//! | `processing` from a provider without `asynchronous-settlement` | `OutcomeUnknown` |
//!
//! `EgressDenied` and `Misconfigured` are configuration errors: nothing left the host for the
//! refused request, so the payment (refund) fails at once with `provider_egress_denied`
//! (`provider_misconfigured`) and is not reconciled.
//!
//! `Unavailable` and `OutcomeUnknown` from `process` or `refund` leave the payment (refund)
//! `pending` for reconciliation, which asks `retrieve_payment` (`retrieve_refund`) first and
//! calls `process` (`refund`) again, with the same id and idempotency key, only when the provider
//! has no such payment (`None`) or cannot say (`NotSupported`): the provider may have acted
//! before it failed to answer. From `validate` (which has no side
//! effects) both just mean "could not check now".

use std::fmt;

use async_trait::async_trait;
use lessor_leases::Currency;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod delivery;
mod provider;

pub use delivery::{WebhookBatch, WebhookReply, WebhookRequest};
pub use provider::{MethodKind, ProviderCapabilities, ProviderInfo};

/// One payment to take. `idempotency_key` is the same on every call for this payment
/// (first call and every reconciliation): forward it to the provider (Stripe's
/// `Idempotency-Key`, the bank's `end_to_end_id`) so a repeated call never charges twice.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub payment_id: Uuid,
    pub lease_id: Uuid,
    #[serde(default)]
    pub installment_id: Option<Uuid>,
    /// Minor units of `currency`, > 0.
    pub amount: i64,
    pub currency: Currency,
    /// What `payment_method` is (as JSON, default `token`).
    #[serde(default)]
    pub method_kind: MethodKind,
    /// The token, or the canonical SEPA mandate JSON ([`crate::PaymentMethod::wire`]).
    pub payment_method: String,
    pub idempotency_key: String,
    /// As JSON, an object of keys to values.
    #[serde(default, deserialize_with = "pairs")]
    pub metadata: Vec<(String, String)>,
}

fn pairs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    Ok(std::collections::BTreeMap::<String, String>::deserialize(d)?.into_iter().collect())
}

impl fmt::Debug for PaymentRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PaymentRequest")
            .field("payment_id", &self.payment_id)
            .field("lease_id", &self.lease_id)
            .field("installment_id", &self.installment_id)
            .field("amount", &self.amount)
            .field("currency", &self.currency)
            .field("method_kind", &self.method_kind)
            .field("payment_method", &"<redacted>")
            .field("idempotency_key", &self.idempotency_key)
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// The provider's answer to `process`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderPaymentStatus {
    Succeeded,
    /// Accepted; the final result arrives by webhook.
    Processing,
    /// The payer must act (`next_action_url`).
    RequiresAction,
    /// Refused (`decline_code` says why).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentOutcome {
    pub status: ProviderPaymentStatus,
    #[serde(rename = "provider_transaction_id")]
    pub provider_tx_id: String,
    pub decline_code: Option<String>,
    pub next_action_url: Option<String>,
}

/// What the host knows of a payment it asks the provider about (`retrieve_payment`): the key
/// `process` sent, and the transaction id if an earlier answer gave one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentLookup {
    pub payment_id: Uuid,
    pub idempotency_key: String,
    #[serde(default, rename = "provider_transaction_id")]
    pub provider_tx_id: Option<String>,
    pub amount: i64,
    pub currency: Currency,
}

impl PaymentRequest {
    /// The lookup `retrieve_payment` gets for this request.
    pub fn lookup(&self, provider_tx_id: Option<String>) -> PaymentLookup {
        PaymentLookup {
            payment_id: self.payment_id,
            idempotency_key: self.idempotency_key.clone(),
            provider_tx_id,
            amount: self.amount,
            currency: self.currency,
        }
    }
}

/// What the host knows of a refund it asks the provider about (`retrieve_refund`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundLookup {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    /// The refunded payment's transaction id.
    #[serde(rename = "provider_transaction_id")]
    pub provider_tx_id: String,
    #[serde(default)]
    pub provider_refund_id: Option<String>,
    pub amount: i64,
    pub currency: Currency,
    pub idempotency_key: String,
}

impl RefundRequest {
    /// The lookup `retrieve_refund` gets for this request.
    pub fn lookup(&self, provider_refund_id: Option<String>) -> RefundLookup {
        RefundLookup {
            refund_id: self.refund_id,
            payment_id: self.payment_id,
            provider_tx_id: self.provider_tx_id.clone(),
            provider_refund_id,
            amount: self.amount,
            currency: self.currency,
            idempotency_key: self.idempotency_key.clone(),
        }
    }
}

/// One refund to make; `idempotency_key` is the same on every call for this refund.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    pub refund_id: Uuid,
    pub payment_id: Uuid,
    /// The `provider_tx_id` of the payment being refunded.
    #[serde(rename = "provider_transaction_id")]
    pub provider_tx_id: String,
    /// Minor units of `currency`, > 0; may be less than the payment.
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub reason: Option<String>,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderRefundStatus {
    Succeeded,
    /// Accepted; the result arrives by webhook.
    Pending,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundOutcome {
    pub status: ProviderRefundStatus,
    pub provider_refund_id: String,
    pub failure_reason: Option<String>,
}

/// Why a provider call produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// No plugin is installed for this provider.
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    /// The operator disabled this provider.
    #[error("provider `{0}` is disabled")]
    Disabled(String),
    /// The provider refused; the reason is safe to show the payer.
    #[error("declined: {0}")]
    Declined(String),
    /// The provider refused the request as malformed; `field` as the provider named it.
    #[error("invalid request: {field}: {reason}")]
    InvalidRequest { field: String, reason: String },
    /// The provider could not be reached or answered 5xx.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The call ended without an answer (timeout, sandbox trap, plugin internal error): the
    /// provider may or may not have acted.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The host refused the provider's request for its destination (an origin the operator did
    /// not grant, or a granted name resolving to a private address): nothing was sent there, and
    /// no retry helps until the operator changes the grants. Carries the origin and why.
    #[error("the host refused the provider's request: {0}")]
    EgressDenied(String),
    /// A config or secret key the call needs is unset or invalid (names the key): nothing was
    /// sent, so the payment (refund) fails at once with `provider_misconfigured`.
    #[error("the provider's configuration is incomplete: {0}")]
    Misconfigured(String),
    /// The provider does not offer the operation (`retrieve_*` only: the host then calls
    /// `process` or `refund` again with the same key).
    #[error("not supported by this provider")]
    NotSupported,
    /// A webhook's signature did not verify (`parse_webhook` only): nothing is applied.
    #[error("webhook signature invalid")]
    SignatureInvalid,
    /// A webhook over the plugin's input cap (`parse_webhook` only); the plugin was not called.
    #[error("input too large: {0}")]
    InputTooLarge(String),
}

impl GatewayError {
    /// The `code` of a `payment.failed` event or a stored failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownProvider(_) => "unknown-provider",
            Self::Disabled(_) => "provider-disabled",
            Self::Declined(_) => "declined",
            Self::InvalidRequest { .. } => "invalid-request",
            Self::Unavailable(_) => "provider-unavailable",
            Self::OutcomeUnknown(_) => "outcome-unknown",
            Self::EgressDenied(_) => "provider_egress_denied",
            Self::Misconfigured(_) => "provider_misconfigured",
            Self::NotSupported => "not-supported",
            Self::SignatureInvalid => "signature-invalid",
            Self::InputTooLarge(_) => "input-too-large",
        }
    }

    /// The provider may have acted although no answer came back.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::OutcomeUnknown(_))
    }
}

/// The host's access to payment providers (Factory + Strategy). `provider` is the provider id
/// payments are routed by (`stripe`, `bank`).
#[async_trait]
pub trait ProviderGateway: Send + Sync {
    /// Checks a request without side effects: nothing is charged.
    async fn validate(&self, provider: &str, request: &PaymentRequest) -> Result<(), GatewayError>;
    /// Takes the payment. Called again with the same request (same id and idempotency key)
    /// when an earlier call's outcome is unknown.
    async fn process(&self, provider: &str, request: &PaymentRequest) -> Result<PaymentOutcome, GatewayError>;
    /// Refunds (part of) a payment. Called again with the same request when an earlier call's
    /// outcome is unknown.
    async fn refund(&self, provider: &str, request: &RefundRequest) -> Result<RefundOutcome, GatewayError>;
    /// Where a payment stands at the provider, for reconciliation: `None` when the provider has
    /// no such payment (the request never reached it; `process` may be called again with the same
    /// key). `NotSupported` (the default) means "ask `process` again", as before retrieve existed.
    async fn retrieve_payment(
        &self,
        _provider: &str,
        _lookup: &PaymentLookup,
    ) -> Result<Option<PaymentOutcome>, GatewayError> {
        Err(GatewayError::NotSupported)
    }
    /// Where a refund stands at the provider; as [`Self::retrieve_payment`].
    async fn retrieve_refund(
        &self,
        _provider: &str,
        _lookup: &RefundLookup,
    ) -> Result<Option<RefundOutcome>, GatewayError> {
        Err(GatewayError::NotSupported)
    }
    /// What `provider` declares it offers, enforced before it is called (a currency, a method
    /// kind, a refund or a partial refund it does not list is refused with 422). `None`: nothing
    /// to enforce (an unknown provider is refused by the call itself).
    fn capabilities(&self, _provider: &str) -> Option<ProviderCapabilities> {
        None
    }
    /// Verifies a webhook request received for `provider` and normalises its events; no side
    /// effects. `SignatureInvalid` when it does not verify. A gateway without webhooks refuses.
    async fn parse_webhook(&self, provider: &str, _request: &WebhookRequest) -> Result<WebhookBatch, GatewayError> {
        Err(GatewayError::InvalidRequest { field: "provider".into(), reason: format!("{provider} takes no webhooks") })
    }
    /// Whether `token` has a format `provider` declares for its tokens (its manifest's
    /// `[token-formats]`): such a `payment_method` is accepted even when it looks like a card
    /// number. No provider declares any by default.
    fn declares_token(&self, _provider: &str, _token: &str) -> bool {
        false
    }
}
