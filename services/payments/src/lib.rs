//! Payments for Lessor: taking lease payments through provider plugins, refunds, provider
//! webhooks, reconciliation of payments whose outcome is unknown, and the collection of due
//! installments. Native: the host wires it to HTTP and to the plugin runtime.
//!
//! - [`status`]: the payment and refund state machines ([`PaymentStatus`], [`RefundStatus`]).
//! - [`NewPayment::parse`], [`NewRefund::parse`]: raw JSON in, every invalid field out at once;
//!   [`find_card_number`] refuses card data anywhere in a request (PCI DSS 3.3).
//! - [`PaymentMethod`]: a provider token, or a SEPA mandate as canonical JSON.
//! - [`ProviderGateway`]: what the host implements over its plugins (`validate`, `process`,
//!   `refund`, `parse_webhook`), in this crate's types: the one provider contract.
//! - [`PaymentService`]: `create`, `get`, `list_by_lease`, `refund`, `refunds`,
//!   `apply_provider_event`, `reconcile_due`, lease payment methods.
//! - [`IdempotencyStore`]: `Idempotency-Key` handling (`begin`, `complete`, `release`, `prune`).
//! - [`CollectionJob`]: charges due installments with the lease's payment method.
//!
//! Money is `i64` minor units with a [`Currency`] everywhere; payment methods and secrets are
//! never logged. Every change of a payment is one transaction with its outbox event
//! (`lessor_events`, stream `payments`). Tables: `migrations/*/0005_payments.sql`.
//!
//! Wiring, for a host:
//!
//! ```text
//! let payments = Arc::new(PaymentService::new(db.clone(), gateway, ReconcilePolicy::default())
//!     .with_relay_wake(relay_wake.clone()));
//! let keys = IdempotencyStore::new(db.clone(), IdempotencyConfig::default());
//!
//! // POST /api/v1/payments  (Idempotency-Key header required)
//! let new = NewPayment::parse(&body, today)?;                       // 422 with field paths
//! let scope = Scope::user(user.id, CREATE_PAYMENT);
//! match keys.begin(&scope, &key, &Fingerprint::of_json(&body)).await? {
//!     Begin::Replay { status, body } => /* answer with them */,
//!     Begin::InFlight => /* 409 */, Begin::Mismatch => /* 422 */,
//!     Begin::New(claim) => match payments.create(viewer, &new, Some(&claim)).await {
//!         Ok(payment) => { let (status, body) = respond(&payment); keys.complete(&claim, status, &body).await?; }
//!         Err(e) => { keys.release(&claim).await?; /* map e to its status */ }
//!     },
//! }
//!
//! // Workers (any number of replicas):
//! every minute:  payments.reconcile_due(Utc::now(), 100).await
//! every day:     CollectionJob::new(payments.clone(), CollectionPolicy::default()).run_once(today).await
//! every hour:    keys.prune(Utc::now()).await
//! ```

pub mod card;
mod collection;
mod gateway;
pub mod idempotency;
mod input;
mod method;
mod record;
mod repo;
mod service;
pub mod status;
mod webhook;

pub use card::{find_card_number, find_card_numbers};
pub use collection::{CollectionJob, CollectionPolicy, CollectionReport};
pub use gateway::{
    GatewayError, MethodKind, PaymentLookup, PaymentOutcome, PaymentRequest, ProviderCapabilities, ProviderGateway,
    ProviderInfo, ProviderPaymentStatus, ProviderRefundStatus, RefundLookup, RefundOutcome, RefundRequest,
    WebhookBatch, WebhookReply, WebhookRequest,
};
pub use idempotency::{
    Begin, CREATE_PAYMENT, Claim, Fingerprint, IdempotencyConfig, IdempotencyError, IdempotencyKey,
    IdempotencyKeyError, IdempotencyStore, REFUND_PAYMENT, Released, Scope,
};
pub use input::{
    CARD_NUMBER_REFUSED, DeclaredTokens, MAX_PAYMENT_AMOUNT, NewPayment, NewRefund, ValidationError,
    no_declared_tokens, parse_lease_payment_method, parse_lease_payment_method_with_tokens, refuse_card_numbers,
};
pub use lessor_leases::{Currency, FieldError, Viewer};
pub use method::{PaymentMethod, ProviderName, ProviderNameError, SepaMandate};
pub use record::{CursorError, LeasePaymentMethod, Payment, PaymentCursor, PaymentPage, Refund};
pub use repo::PAYMENT_RETURNED;
pub use service::{
    CREATED, Conflict, KeyedAnswer, KeyedRequest, MAX_PAGE, PROVIDER_TRANSACTION_REUSED, PaymentError, PaymentService,
    ReconcilePolicy, ReconcileReport, WEBHOOK_RETRY_WINDOW,
};
pub use status::{IllegalRefundTransition, IllegalTransition, PaymentStatus, RefundStatus, UnknownStatus};
pub use webhook::{EventAmount, IgnoredReason, NormalizedEvent, ProviderEventKind, WebhookOutcome};

/// How many cases a property test (fuzz target) runs: `PROPTEST_CASES` when set (scripts/fuzz.sh
/// raises it), else `default` (kept small so plain `cargo test` stays fast).
#[cfg(test)]
pub(crate) fn fuzz_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
