//! What a provider says about itself (its `info`), in every WIT version's terms.

use serde::{Deserialize, Serialize};

/// What a payer's `payment_method` is (the WIT `method-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodKind {
    /// The provider's token for a card, wallet or stored method.
    #[default]
    Token,
    /// A SEPA direct-debit mandate as canonical JSON ([`crate::PaymentMethod::wire`]).
    SepaMandate,
}

impl MethodKind {
    /// The kind of a stored method in its wire form: a mandate is canonical JSON (an object),
    /// a token never is.
    pub fn of_wire(wire: &str) -> Self {
        if wire.starts_with('{') { Self::SepaMandate } else { Self::Token }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::SepaMandate => "sepa_mandate",
        }
    }
}

/// What a provider offers (the WIT `provider-capabilities`). A WIT version without a field
/// says what its plugins could always do (0.1.0: both method kinds, asynchronous settlement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderCapabilities {
    /// ISO 4217 codes, as the plugin wrote them.
    pub currencies: Vec<String>,
    pub method_kinds: Vec<MethodKind>,
    pub refunds: bool,
    /// Refunds of less than the payment, and several refunds of one payment.
    pub partial_refunds: bool,
    /// Payments may end `processing` and settle later.
    pub asynchronous_settlement: bool,
    /// Payments may end `requires_action`.
    pub payer_actions: bool,
    pub webhooks: bool,
}

/// A provider's `info`: checked against its manifest when the plugin is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderInfo {
    /// The provider id payments are routed by.
    pub id: String,
    /// The plugin's own version.
    pub version: String,
    pub capabilities: ProviderCapabilities,
}
