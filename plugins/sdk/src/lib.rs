//! Write a Lessor payment provider as a WebAssembly component, and test it without a host.
//!
//! Implement [`Provider`] on a type and register it with [`export_provider!`]; that is the whole
//! contract. The generated WIT bindings stay private: plugin code sees the domain types re-exported
//! here, the typed host capabilities ([`http`], [`config`], [`secret`], [`log`](mod@log), [`now`])
//! and nothing else. Build the crate as a `cdylib` for `wasm32-wasip2` to get the component.
//!
//! A minimal provider that charges through an HTTP API:
//!
//! ```
//! use lessor_plugin_sdk::http::Request;
//! use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};
//!
//! struct Acme;
//!
//! impl Provider for Acme {
//!     fn info() -> ProviderInfo {
//!         ProviderInfo::new("acme", "0.1.0").currencies(&["EUR"])
//!     }
//!
//!     fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
//!         let key = lessor_plugin_sdk::require_secret("api_key")?;
//!         let response = Request::post("https://api.acme.test/charges")
//!             .bearer_auth(key.expose())
//!             .idempotency_key(&request.idempotency_key) // a retried call must never charge twice
//!             .form(&[("amount", &request.amount.amount.to_string())])
//!             .send()? // network trouble: provider-unavailable
//!             .error_for_status()?;
//!         Ok(PaymentOutcome::succeeded(response.text()?))
//!     }
//! }
//!
//! lessor_plugin_sdk::export_provider!(Acme);
//! # fn main() {
//! # use lessor_plugin_sdk::http::Method;
//! # use lessor_plugin_sdk::testing::{self, Harness};
//! # let harness = Harness::new()
//! #     .secret("api_key", "sk_test_1")
//! #     .respond(Method::Post, "https://api.acme.test/charges", testing::response(201, &[], "ch_1"));
//! # let outcome = harness.process::<Acme>(testing::payment_request(1200, "EUR", "tok_visa"));
//! # assert_eq!(outcome, Ok(PaymentOutcome::succeeded("ch_1")));
//! # }
//! ```
//!
//! Its test, a plain `#[test]` run by `cargo test` on the machine's own target, where
//! `testing::Harness` (not compiled for `wasm32`) answers `fetch`, `config`, `secret`, `now` and
//! `log` in place of the host.
//!
//! ```
//! # use lessor_plugin_sdk::http::Request;
//! # use lessor_plugin_sdk::{PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};
//! # struct Acme;
//! # impl Provider for Acme {
//! #     fn info() -> ProviderInfo { ProviderInfo::new("acme", "0.1.0").currencies(&["EUR"]) }
//! #     fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
//! #         let key = lessor_plugin_sdk::require_secret("api_key")?;
//! #         let response = Request::post("https://api.acme.test/charges").bearer_auth(key.expose())
//! #             .idempotency_key(&request.idempotency_key).form(&[("amount", &request.amount.amount.to_string())])
//! #             .send()?.error_for_status()?;
//! #         Ok(PaymentOutcome::succeeded(response.text()?))
//! #     }
//! # }
//! use lessor_plugin_sdk::http::Method;
//! use lessor_plugin_sdk::testing::{self, Harness};
//!
//! # fn main() {
//! // #[test]
//! // fn a_charge_is_sent_once_with_the_key_and_succeeds() {
//! let harness = Harness::new()
//!     .secret("api_key", "sk_test_1")
//!     .respond(Method::Post, "https://api.acme.test/charges", testing::response(201, &[], "ch_1"));
//!
//! let outcome = harness.process::<Acme>(testing::payment_request(1200, "EUR", "tok_visa"));
//!
//! assert_eq!(outcome, Ok(PaymentOutcome::succeeded("ch_1")));
//! let sent = harness.only_request();
//! assert_eq!(sent.header("authorization"), Some("Bearer sk_test_1"));
//! assert_eq!(sent.header("idempotency-key"), Some("idem-9b2f6c1e"));
//! assert_eq!(sent.form_field("amount").as_deref(), Some("1200"));
//! // }
//! # }
//! ```
//!
//! Every call runs in a fresh sandbox: nothing survives from one call to the next, there is no
//! filesystem, no environment and no network except [`http::Request::send`] to the hosts the
//! manifest declares and the operator granted.

mod domain;
mod host;
pub mod http;
pub mod log;
#[cfg(target_os = "wasi")]
mod sandbox;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
mod webhook;

use __private::bindings;
use bindings::exports::lessor::payments::provider::Guest;

pub use bindings::lessor::payments::types::{
    EventKind, FieldError, MethodKind, Money, PaymentLookup, PaymentOutcome, PaymentRequest, PaymentStatus,
    ProviderCapabilities, ProviderError, ProviderInfo, RefundLookup, RefundOutcome, RefundRequest, RefundStatus,
    WebhookBatch, WebhookEvent, WebhookReply, WebhookRequest,
};
pub use domain::Secret;

/// The WIT package this SDK builds against; a plugin's `plugin.toml` names it as `wit`.
pub const WIT_PACKAGE: &str = "lessor:payments@0.2.0";

/// A payment provider. Only [`Provider::info`] and [`Provider::process`] are required; the others
/// default to accepting every request (`validate`) or to [`ProviderError::NotSupported`].
///
/// Errors say what the host does next: `declined`, `invalid-request`, `egress-denied`,
/// `misconfigured` and `not-supported` fail the payment (refund) at once, because nothing was
/// charged; `provider-unavailable` and `internal` leave the outcome unknown, and the host
/// reconciles it with [`Provider::retrieve_payment`] ([`Provider::retrieve_refund`]).
pub trait Provider {
    /// Who this provider is and what it offers: id and version must match the plugin's manifest;
    /// the host enforces the capabilities before it calls the plugin (see [`ProviderInfo::new`]).
    fn info() -> ProviderInfo;

    /// Checks a payment request without side effects.
    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        let _ = request;
        Ok(())
    }

    /// Takes a payment. Forward `request.idempotency_key` to the provider: the host may call
    /// `process` again with the same key (see [`Provider::retrieve_payment`]).
    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError>;

    /// Where a payment stands at the provider, for reconciliation after an unknown outcome (a
    /// timeout, a trap, a 5xx) or a `processing` payment whose webhook never came. `Ok(None)`:
    /// the provider has no such payment (the request never reached it). Must have no side effects.
    ///
    /// The default answers [`ProviderError::NotSupported`]; the host then falls back to calling
    /// [`Provider::process`] again with the same idempotency key, as it does for every
    /// `lessor:payments@0.1.0` plugin. That is safe only when the provider honours the key.
    fn retrieve_payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
        let _ = lookup;
        Err(ProviderError::NotSupported)
    }

    /// Refunds all or part of a payment (partial refunds only if [`ProviderInfo::partial_refunds`]
    /// declares them). Forward `request.idempotency_key`.
    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let _ = request;
        Err(ProviderError::NotSupported)
    }

    /// Where a refund stands at the provider; `Ok(None)`: the provider has no such refund.
    ///
    /// The default answers [`ProviderError::NotSupported`]; the host then falls back to calling
    /// [`Provider::refund`] again with the same idempotency key.
    fn retrieve_refund(lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
        let _ = lookup;
        Err(ProviderError::NotSupported)
    }

    /// Verifies one webhook request (its signature in a header or inside the body) and
    /// normalises it into a [`WebhookBatch`]: every event it carries (none is fine: authentic but
    /// nothing to act on) and the [`WebhookReply`] the provider expects once they are recorded.
    /// [`ProviderError::SignatureInvalid`] is answered 401, [`ProviderError::InvalidRequest`] 400.
    ///
    /// How the host matches events (as `types.wit` says of `webhook-event`):
    /// - payment kinds: the payment whose transaction id is `provider_transaction_id`;
    /// - `refund-*` kinds with `provider_refund_id` (set it with [`WebhookEvent::refund`]): that
    ///   refund, the id [`Provider::refund`] or [`Provider::retrieve_refund`] answered as
    ///   `provider_refund_id`; `amount` is that refund's amount;
    /// - `refund-*` kinds without `provider_refund_id`: the payment whose transaction id is
    ///   `provider_transaction_id`, and `amount` is the payment's **cumulative** refunded amount
    ///   at the provider (Stripe's `charge.refunded`). The host resolves its pending refunds that
    ///   account for the difference (one of exactly that amount, or the oldest adding up to it);
    ///   money refunded at the provider with no refund of the host's in flight is recorded once
    ///   as a refund made there.
    ///
    /// Events are deduplicated by `event_id` per provider. An event about something the host
    /// cannot find yet is answered "deliver again later" for a bounded time, then ignored.
    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        let _ = request;
        Err(ProviderError::NotSupported)
    }
}

/// A configuration value the operator set for this plugin (only keys declared in `plugin.toml`).
pub fn config(key: &str) -> Option<String> {
    host::config(key)
}

/// Like [`config`], but a key that is unset or blank is [`ProviderError::Misconfigured`] naming it.
pub fn require_config(key: &str) -> Result<String, ProviderError> {
    config(key).filter(|value| !value.trim().is_empty()).ok_or_else(|| ProviderError::misconfigured(key))
}

/// A secret the operator set for this plugin (only keys declared in `plugin.toml`).
pub fn secret(key: &str) -> Option<Secret> {
    host::secret(key).map(Secret::new)
}

/// Like [`secret`], but a key that is unset or blank is [`ProviderError::Misconfigured`] naming it
/// (never its value).
pub fn require_secret(key: &str) -> Result<Secret, ProviderError> {
    secret(key).filter(|value| !value.expose().trim().is_empty()).ok_or_else(|| ProviderError::misconfigured(key))
}

/// The host's clock, in Unix milliseconds. (WASI clocks inside the sandbox are not the host's.)
pub fn now() -> u64 {
    host::now()
}

/// Registers `$provider` (a type implementing [`Provider`]) as this component's export.
/// Use it once, in the plugin crate's `lib.rs`. Compiled natively (for tests) it exports nothing
/// and only checks that `$provider` implements [`Provider`]: run it with `testing::Harness`.
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            type __LessorPluginExport = $crate::__private::Export<$provider>;
            $crate::__export_payment_provider_impl!(
                __LessorPluginExport with_types_in $crate::__private::bindings
            );
        };
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::ProviderInfo = <$provider as $crate::Provider>::info;
    };
}

/// Used by [`export_provider!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// The generated WIT bindings: plugin code uses the re-exports at the crate root instead.
    pub mod bindings {
        wit_bindgen::generate!({
            path: "wit/lessor-payments@0.2.0",
            world: "payment-provider",
            pub_export_macro: true,
            // So tests can compare outcomes, errors and events with `assert_eq!`.
            additional_derives: [PartialEq, Eq],
            default_bindings_module: "lessor_plugin_sdk::__private::bindings",
        });
    }

    /// Adapts a [`Provider`](crate::Provider) to the generated export trait.
    pub struct Export<P>(core::marker::PhantomData<P>);
}

impl<P: Provider> Guest for __private::Export<P> {
    fn info() -> ProviderInfo {
        log::install_panic_hook();
        P::info()
    }

    fn validate(request: PaymentRequest) -> Result<(), ProviderError> {
        log::install_panic_hook();
        P::validate(&request)
    }

    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError> {
        log::install_panic_hook();
        P::process(request)
    }

    fn retrieve_payment(lookup: PaymentLookup) -> Result<Option<PaymentOutcome>, ProviderError> {
        log::install_panic_hook();
        P::retrieve_payment(lookup)
    }

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        log::install_panic_hook();
        P::refund(request)
    }

    fn retrieve_refund(lookup: RefundLookup) -> Result<Option<RefundOutcome>, ProviderError> {
        log::install_panic_hook();
        P::retrieve_refund(lookup)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<WebhookBatch, ProviderError> {
        log::install_panic_hook();
        P::parse_webhook(request)
    }
}
