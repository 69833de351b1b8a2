//! The payments service's [`ProviderGateway`] over this host's plugins: the provider id
//! resolves to the plugin version serving it now (Factory, [`LiveProviders`]); the call runs in
//! that plugin's sandbox (Strategy). The error mapping is the table in `lessor_payments::gateway`.

use std::sync::Arc;

use async_trait::async_trait;
use lessor_payments::{
    EventAmount, GatewayError, NormalizedEvent, PaymentOutcome, PaymentRequest, ProviderEventKind, ProviderGateway,
    ProviderPaymentStatus, ProviderRefundStatus, RefundOutcome, RefundRequest,
};

use crate::plugins::types::{self, EventKind, Money, ProviderError, WebhookEvent};
use crate::plugins::{LiveProviders, LoadedPlugin, PluginCallError, ProviderUnavailable};

pub struct PluginGateway {
    providers: Arc<LiveProviders>,
}

impl PluginGateway {
    pub fn new(providers: Arc<LiveProviders>) -> Self {
        Self { providers }
    }

    fn plugin(&self, provider: &str) -> Result<LoadedPlugin, GatewayError> {
        self.providers.get(provider).map_err(|e| match e {
            ProviderUnavailable::Unknown(p) => GatewayError::UnknownProvider(p),
            ProviderUnavailable::Disabled(p) => GatewayError::Disabled(p),
            // Not loaded here although active: nothing was sent, the call can be made later.
            ProviderUnavailable::Broken { provider, reason } => {
                GatewayError::Unavailable(format!("{provider} cannot be loaded on this host: {reason}"))
            }
        })
    }
}

fn wire_request(r: &PaymentRequest) -> types::PaymentRequest {
    types::PaymentRequest {
        payment_id: r.payment_id.to_string(),
        lease_id: r.lease_id.to_string(),
        installment_id: r.installment_id.map(|i| i.to_string()),
        amount: Money { amount: r.amount, currency: r.currency.code().to_owned() },
        payment_method: r.payment_method.clone(),
        idempotency_key: r.idempotency_key.clone(),
        metadata: r.metadata.clone(),
    }
}

fn gateway_error(e: PluginCallError) -> GatewayError {
    match e {
        PluginCallError::Provider(p) => match p {
            ProviderError::Declined(reason) => GatewayError::Declined(reason),
            ProviderError::InvalidRequest { field, reason } => GatewayError::InvalidRequest { field, reason },
            ProviderError::NotSupported => GatewayError::InvalidRequest {
                field: "provider".into(),
                reason: "this provider does not offer the operation".into(),
            },
            ProviderError::ProviderUnavailable(msg) => GatewayError::Unavailable(msg),
            ProviderError::SignatureInvalid => GatewayError::OutcomeUnknown("unexpected signature error".into()),
            ProviderError::Internal(msg) => GatewayError::OutcomeUnknown(msg),
        },
        PluginCallError::InputTooLarge { what, size, limit } => GatewayError::InvalidRequest {
            field: "payment_method".into(),
            reason: format!("{what} is {size} bytes, over the {limit}-byte cap"),
        },
        sandbox @ PluginCallError::Sandbox { .. } => GatewayError::OutcomeUnknown(sandbox.to_string()),
        // Nothing left the host for the refused request: the plugin's grants do not let it reach
        // its provider, which no retry changes.
        PluginCallError::EgressDenied { plugin, denied, .. } => {
            tracing::warn!(plugin, denied, "provider call failed on refused egress; failing it without retry");
            GatewayError::EgressDenied(denied)
        }
    }
}

#[async_trait]
impl ProviderGateway for PluginGateway {
    fn declares_token(&self, provider: &str, token: &str) -> bool {
        self.providers.get(provider).is_ok_and(|plugin| plugin.token_formats().kind_of(token).is_some())
    }

    async fn validate(&self, provider: &str, request: &PaymentRequest) -> Result<(), GatewayError> {
        self.plugin(provider)?.validate(wire_request(request)).await.map_err(gateway_error)
    }

    async fn process(&self, provider: &str, request: &PaymentRequest) -> Result<PaymentOutcome, GatewayError> {
        let outcome = self.plugin(provider)?.process(wire_request(request)).await.map_err(gateway_error)?;
        Ok(PaymentOutcome {
            status: match outcome.status {
                types::PaymentStatus::Succeeded => ProviderPaymentStatus::Succeeded,
                types::PaymentStatus::Processing => ProviderPaymentStatus::Processing,
                types::PaymentStatus::RequiresAction => ProviderPaymentStatus::RequiresAction,
                types::PaymentStatus::Failed => ProviderPaymentStatus::Failed,
            },
            provider_tx_id: outcome.provider_transaction_id,
            decline_code: outcome.decline_code,
            next_action_url: outcome.next_action_url,
        })
    }

    async fn refund(&self, provider: &str, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        let wire = types::RefundRequest {
            refund_id: request.refund_id.to_string(),
            payment_id: request.payment_id.to_string(),
            provider_transaction_id: request.provider_tx_id.clone(),
            amount: Money { amount: request.amount, currency: request.currency.code().to_owned() },
            reason: request.reason.clone(),
            idempotency_key: request.idempotency_key.clone(),
        };
        let outcome = self.plugin(provider)?.refund(wire).await.map_err(gateway_error)?;
        Ok(RefundOutcome {
            status: match outcome.status {
                types::RefundStatus::Succeeded => ProviderRefundStatus::Succeeded,
                types::RefundStatus::Pending => ProviderRefundStatus::Pending,
                types::RefundStatus::Failed => ProviderRefundStatus::Failed,
            },
            provider_refund_id: outcome.provider_refund_id,
            failure_reason: outcome.failure_reason,
        })
    }
}

/// A plugin's verified webhook event in the payments service's terms.
pub fn normalized(event: WebhookEvent) -> NormalizedEvent {
    NormalizedEvent {
        event_id: event.event_id,
        kind: match event.kind {
            EventKind::PaymentSucceeded => ProviderEventKind::PaymentSucceeded,
            EventKind::PaymentFailed => ProviderEventKind::PaymentFailed,
            EventKind::PaymentProcessing => ProviderEventKind::PaymentProcessing,
            EventKind::PaymentRequiresAction => ProviderEventKind::PaymentRequiresAction,
            EventKind::PaymentSettled => ProviderEventKind::PaymentSettled,
            EventKind::PaymentReturned => ProviderEventKind::PaymentReturned,
            EventKind::RefundSucceeded => ProviderEventKind::RefundSucceeded,
            EventKind::RefundFailed => ProviderEventKind::RefundFailed,
            EventKind::DisputeOpened => ProviderEventKind::DisputeOpened,
        },
        provider_tx_id: event.provider_transaction_id,
        amount: event.amount.map(|m| EventAmount { amount: m.amount, currency: m.currency }),
        reason_code: event.reason_code,
    }
}
