//! The measured shapes of 0.2.0's results (`output.rs`): each result type as WIT declares it, its
//! strings and lists lifted as lengths only (a list of records element by element, where the guest
//! wrote it). Field names and order are the WIT records' (checked at load), and each `wire_size`
//! is the size the lifted value has as `plugins::wire` measures it.

use wasmtime::component::{ComponentType, Lift};

use super::lessor::payments::types as w;
use crate::plugins::output::{BytesLen, ListLen, Output, StrLen, StrListLen};
use crate::plugins::wire::{FIELD, WireSize};

impl Output for w::ProviderInfo {
    type Shape = ProviderInfoShape;
}

impl Output for Result<(), w::ProviderError> {
    type Shape = Result<(), ProviderErrorShape>;
}

impl Output for Result<w::PaymentOutcome, w::ProviderError> {
    type Shape = Result<PaymentOutcomeShape, ProviderErrorShape>;
}

impl Output for Result<Option<w::PaymentOutcome>, w::ProviderError> {
    type Shape = Result<Option<PaymentOutcomeShape>, ProviderErrorShape>;
}

impl Output for Result<w::RefundOutcome, w::ProviderError> {
    type Shape = Result<RefundOutcomeShape, ProviderErrorShape>;
}

impl Output for Result<Option<w::RefundOutcome>, w::ProviderError> {
    type Shape = Result<Option<RefundOutcomeShape>, ProviderErrorShape>;
}

impl Output for Result<w::WebhookBatch, w::ProviderError> {
    type Shape = Result<WebhookBatchShape, ProviderErrorShape>;
}

impl WireSize for w::MethodKind {
    fn wire_size(&self) -> usize {
        FIELD
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct CapabilitiesShape {
    #[component(name = "currencies")]
    currencies: StrListLen,
    #[component(name = "method-kinds")]
    method_kinds: ListLen<w::MethodKind>,
    #[component(name = "refunds")]
    _refunds: bool,
    #[component(name = "partial-refunds")]
    _partial_refunds: bool,
    #[component(name = "asynchronous-settlement")]
    _asynchronous_settlement: bool,
    #[component(name = "payer-actions")]
    _payer_actions: bool,
    #[component(name = "webhooks")]
    _webhooks: bool,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct ProviderInfoShape {
    #[component(name = "id")]
    id: StrLen,
    #[component(name = "version")]
    version: StrLen,
    #[component(name = "capabilities")]
    capabilities: CapabilitiesShape,
}

impl WireSize for ProviderInfoShape {
    fn wire_size(&self) -> usize {
        self.id.wire_size()
            + self.version.wire_size()
            + self.capabilities.currencies.wire_size()
            + self.capabilities.method_kinds.wire_size()
            + 5 * FIELD
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct MoneyShape {
    #[component(name = "amount")]
    _amount: i64,
    #[component(name = "currency")]
    currency: StrLen,
}

impl WireSize for MoneyShape {
    fn wire_size(&self) -> usize {
        FIELD + self.currency.wire_size()
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct PaymentOutcomeShape {
    #[component(name = "status")]
    _status: w::PaymentStatus,
    #[component(name = "provider-transaction-id")]
    provider_transaction_id: StrLen,
    #[component(name = "decline-code")]
    decline_code: Option<StrLen>,
    #[component(name = "next-action-url")]
    next_action_url: Option<StrLen>,
}

impl WireSize for PaymentOutcomeShape {
    fn wire_size(&self) -> usize {
        FIELD
            + self.provider_transaction_id.wire_size()
            + self.decline_code.wire_size()
            + self.next_action_url.wire_size()
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct RefundOutcomeShape {
    #[component(name = "status")]
    _status: w::RefundStatus,
    #[component(name = "provider-refund-id")]
    provider_refund_id: StrLen,
    #[component(name = "failure-reason")]
    failure_reason: Option<StrLen>,
}

impl WireSize for RefundOutcomeShape {
    fn wire_size(&self) -> usize {
        FIELD + self.provider_refund_id.wire_size() + self.failure_reason.wire_size()
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct WebhookEventShape {
    #[component(name = "event-id")]
    event_id: StrLen,
    #[component(name = "kind")]
    _kind: w::EventKind,
    #[component(name = "provider-transaction-id")]
    provider_transaction_id: StrLen,
    #[component(name = "provider-refund-id")]
    provider_refund_id: Option<StrLen>,
    #[component(name = "amount")]
    amount: Option<MoneyShape>,
    #[component(name = "reason-code")]
    reason_code: Option<StrLen>,
    #[component(name = "occurred-at")]
    _occurred_at: Option<u64>,
}

impl WireSize for WebhookEventShape {
    fn wire_size(&self) -> usize {
        self.event_id.wire_size()
            + FIELD
            + self.provider_transaction_id.wire_size()
            + self.provider_refund_id.wire_size()
            + self.amount.wire_size()
            + self.reason_code.wire_size()
            + 2 * FIELD
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct WebhookReplyShape {
    #[component(name = "status")]
    _status: u16,
    #[component(name = "content-type")]
    content_type: StrLen,
    #[component(name = "body")]
    body: BytesLen,
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct WebhookBatchShape {
    #[component(name = "events")]
    events: ListLen<WebhookEventShape>,
    #[component(name = "reply")]
    reply: WebhookReplyShape,
}

impl WireSize for WebhookBatchShape {
    fn wire_size(&self) -> usize {
        self.events.wire_size() + FIELD + self.reply.content_type.wire_size() + self.reply.body.wire_size()
    }
}

#[derive(ComponentType, Lift)]
#[component(record)]
pub(crate) struct FieldErrorShape {
    #[component(name = "field")]
    field: StrLen,
    #[component(name = "reason")]
    reason: StrLen,
}

#[derive(ComponentType, Lift)]
#[component(variant)]
pub(crate) enum ProviderErrorShape {
    #[component(name = "declined")]
    Declined(StrLen),
    #[component(name = "invalid-request")]
    InvalidRequest(FieldErrorShape),
    #[component(name = "egress-denied")]
    EgressDenied(StrLen),
    #[component(name = "misconfigured")]
    Misconfigured(StrLen),
    #[component(name = "provider-unavailable")]
    ProviderUnavailable(StrLen),
    #[component(name = "signature-invalid")]
    SignatureInvalid,
    #[component(name = "not-supported")]
    NotSupported,
    #[component(name = "internal")]
    Internal(StrLen),
}

impl WireSize for ProviderErrorShape {
    fn wire_size(&self) -> usize {
        FIELD
            + match self {
                Self::Declined(s)
                | Self::EgressDenied(s)
                | Self::Misconfigured(s)
                | Self::ProviderUnavailable(s)
                | Self::Internal(s) => s.wire_size(),
                Self::InvalidRequest(FieldErrorShape { field, reason }) => field.wire_size() + reason.wire_size(),
                Self::SignatureInvalid | Self::NotSupported => 0,
            }
    }
}
