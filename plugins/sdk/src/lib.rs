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
//! use lessor_plugin_sdk::{Capabilities, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};
//!
//! struct Acme;
//!
//! impl Provider for Acme {
//!     fn info() -> ProviderInfo {
//!         ProviderInfo::new("acme", "0.1.0", &["EUR"], Capabilities::empty())
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
//! # use lessor_plugin_sdk::{Capabilities, PaymentOutcome, PaymentRequest, Provider, ProviderError, ProviderInfo};
//! # struct Acme;
//! # impl Provider for Acme {
//! #     fn info() -> ProviderInfo { ProviderInfo::new("acme", "0.1.0", &["EUR"], Capabilities::empty()) }
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

use __private::bindings;
use bindings::exports::lessor::payments::provider::Guest;

pub use bindings::lessor::payments::types::{
    Capabilities, EventKind, FieldError, Money, PaymentOutcome, PaymentRequest, PaymentStatus, ProviderError,
    ProviderInfo, RefundOutcome, RefundRequest, RefundStatus, WebhookEvent, WebhookRequest,
};
pub use domain::Secret;

/// The WIT package this SDK builds against; a plugin's `plugin.toml` names it as `wit`.
pub const WIT_PACKAGE: &str = "lessor:payments@0.1.0";

/// A payment provider. Only [`Provider::info`] and [`Provider::process`] are required; the others
/// default to accepting every request (`validate`) or to [`ProviderError::NotSupported`].
pub trait Provider {
    /// Who this provider is: id and version must match the plugin's manifest.
    fn info() -> ProviderInfo;

    /// Checks a payment request without side effects.
    fn validate(request: &PaymentRequest) -> Result<(), ProviderError> {
        let _ = request;
        Ok(())
    }

    /// Takes a payment.
    fn process(request: PaymentRequest) -> Result<PaymentOutcome, ProviderError>;

    /// Refunds all or part of a payment.
    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        let _ = request;
        Err(ProviderError::NotSupported)
    }

    /// Verifies a webhook's signature and normalises it. `Ok(None)`: authentic but irrelevant.
    ///
    /// Refund events (`refund-succeeded`, `refund-failed`): when the event is about one refund,
    /// put the provider's refund id (what [`Provider::refund`] answered as `provider-refund-id`) in
    /// `provider-transaction-id` and that refund's amount in `amount`; when it is about the payment,
    /// put the payment's transaction id and the payment's cumulative refunded amount. The host
    /// matches a refund id first, then the payment, and applies only what it has not recorded yet,
    /// so refund ids must never equal a transaction id (see `wit/README.md`, clarifications of 0.1.0).
    fn parse_webhook(request: WebhookRequest) -> Result<Option<WebhookEvent>, ProviderError> {
        let _ = request;
        Err(ProviderError::NotSupported)
    }
}

/// A configuration value the operator set for this plugin (only keys declared in `plugin.toml`).
pub fn config(key: &str) -> Option<String> {
    host::config(key)
}

/// Like [`config`], but a missing key is an [`ProviderError::Internal`] naming it.
pub fn require_config(key: &str) -> Result<String, ProviderError> {
    config(key).ok_or_else(|| ProviderError::Internal(format!("configuration key `{key}` is not set")))
}

/// A secret the operator set for this plugin (only keys declared in `plugin.toml`).
pub fn secret(key: &str) -> Option<Secret> {
    host::secret(key).map(Secret::new)
}

/// Like [`secret`], but a missing key is an [`ProviderError::Internal`] naming it.
pub fn require_secret(key: &str) -> Result<Secret, ProviderError> {
    secret(key).ok_or_else(|| ProviderError::Internal(format!("secret `{key}` is not set")))
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
            path: "wit/lessor-payments@0.1.0",
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

    fn refund(request: RefundRequest) -> Result<RefundOutcome, ProviderError> {
        log::install_panic_hook();
        P::refund(request)
    }

    fn parse_webhook(request: WebhookRequest) -> Result<Option<WebhookEvent>, ProviderError> {
        log::install_panic_hook();
        P::parse_webhook(request)
    }
}
