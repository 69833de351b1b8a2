//! Conveniences on the generated domain types: constructors, `Display`, a redacting `Secret`.

use std::fmt;

use crate::{
    FieldError, MethodKind, Money, PaymentOutcome, PaymentStatus, ProviderCapabilities, ProviderError, ProviderInfo,
    RefundOutcome, RefundStatus,
};

/// What a provider offers, built from [`ProviderInfo::new`]:
///
/// ```
/// use lessor_plugin_sdk::{MethodKind, ProviderInfo};
///
/// let info = ProviderInfo::new("acme", "1.2.0")
///     .currencies(&["EUR", "USD"])      // ISO 4217; the host refuses any other
///     .method_kinds(&[MethodKind::Token]) // the default; SEPA mandates: MethodKind::SepaMandate
///     .partial_refunds()                // implies refunds()
///     .payer_actions()                  // payments may end `requires-action`
///     .webhooks();
/// assert!(info.capabilities.refunds && info.capabilities.webhooks);
/// assert!(!info.capabilities.asynchronous_settlement);
/// assert!(info.supports_currency("USD"));
/// ```
impl ProviderInfo {
    /// A provider that accepts tokens ([`MethodKind::Token`]) in no currency yet, and offers
    /// nothing else: add what it does with the methods below. `version` is usually
    /// `env!("CARGO_PKG_VERSION")`.
    pub fn new(id: &str, version: &str) -> Self {
        Self {
            id: id.to_owned(),
            version: version.to_owned(),
            capabilities: ProviderCapabilities {
                currencies: Vec::new(),
                method_kinds: vec![MethodKind::Token],
                refunds: false,
                partial_refunds: false,
                asynchronous_settlement: false,
                payer_actions: false,
                webhooks: false,
            },
        }
    }

    /// The ISO 4217 codes (upper case) the provider accepts, replacing any set before.
    pub fn currencies(mut self, currencies: &[&str]) -> Self {
        self.capabilities.currencies = currencies.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    /// The payment method kinds the provider accepts, replacing the default `[Token]`.
    pub fn method_kinds(mut self, kinds: &[MethodKind]) -> Self {
        self.capabilities.method_kinds = kinds.to_vec();
        self
    }

    /// Refunds of the whole payment.
    pub fn refunds(mut self) -> Self {
        self.capabilities.refunds = true;
        self
    }

    /// Refunds of less than the payment, and several refunds of one payment (implies refunds).
    pub fn partial_refunds(mut self) -> Self {
        self.capabilities.partial_refunds = true;
        self.refunds()
    }

    /// Payments may end `processing` and settle later, by webhook or `retrieve_payment`.
    pub fn asynchronous_settlement(mut self) -> Self {
        self.capabilities.asynchronous_settlement = true;
        self
    }

    /// Payments may end `requires-action` (3-D Secure, a bank redirect).
    pub fn payer_actions(mut self) -> Self {
        self.capabilities.payer_actions = true;
        self
    }

    /// The provider sends webhooks (`[webhooks]` in `plugin.toml` configures them).
    pub fn webhooks(mut self) -> Self {
        self.capabilities.webhooks = true;
        self
    }

    pub fn supports_currency(&self, currency: &str) -> bool {
        self.capabilities.currencies.iter().any(|c| c == currency)
    }

    pub fn supports_method_kind(&self, kind: MethodKind) -> bool {
        self.capabilities.method_kinds.contains(&kind)
    }
}

impl Money {
    pub fn new(amount: i64, currency: &str) -> Self {
        Self { amount, currency: currency.to_owned() }
    }
}

impl PaymentOutcome {
    pub fn succeeded(provider_transaction_id: impl Into<String>) -> Self {
        Self::with_status(PaymentStatus::Succeeded, provider_transaction_id)
    }

    pub fn processing(provider_transaction_id: impl Into<String>) -> Self {
        Self::with_status(PaymentStatus::Processing, provider_transaction_id)
    }

    pub fn requires_action(provider_transaction_id: impl Into<String>, next_action_url: impl Into<String>) -> Self {
        Self {
            next_action_url: Some(next_action_url.into()),
            ..Self::with_status(PaymentStatus::RequiresAction, provider_transaction_id)
        }
    }

    pub fn failed(provider_transaction_id: impl Into<String>, decline_code: impl Into<String>) -> Self {
        Self {
            decline_code: Some(decline_code.into()),
            ..Self::with_status(PaymentStatus::Failed, provider_transaction_id)
        }
    }

    fn with_status(status: PaymentStatus, provider_transaction_id: impl Into<String>) -> Self {
        Self {
            status,
            provider_transaction_id: provider_transaction_id.into(),
            decline_code: None,
            next_action_url: None,
        }
    }
}

impl RefundOutcome {
    pub fn new(status: RefundStatus, provider_refund_id: impl Into<String>) -> Self {
        Self { status, provider_refund_id: provider_refund_id.into(), failure_reason: None }
    }
}

impl ProviderError {
    pub fn invalid_request(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest(FieldError { field: field.into(), reason: reason.into() })
    }

    /// The config or secret `key` is unset or invalid: nothing was sent, the operator must fix it.
    /// Name the key, never its value.
    pub fn misconfigured(key: impl Into<String>) -> Self {
        Self::Misconfigured(key.into())
    }
}

/// A secret from the host. `Debug` and `Display` never show it; [`Secret::expose`] does.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
