//! The payments service's [`ProviderGateway`] over this host's plugins: the provider id
//! resolves to the plugin version serving it now (Factory, [`LiveProviders`]); the call runs in
//! that plugin's sandbox (Strategy). Requests and answers are the gateway's own types, which each
//! WIT version module converts to directly; the error mapping is the table in
//! `lessor_payments::gateway`.

use std::sync::Arc;

use async_trait::async_trait;
use lessor_payments::{
    GatewayError, PaymentOutcome, PaymentRequest, ProviderGateway, RefundOutcome, RefundRequest, WebhookBatch,
    WebhookRequest,
};

use crate::plugins::{LiveProviders, LoadedPlugin, PluginCallError, ProviderError, ProviderUnavailable};

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

/// The table in `lessor_payments::gateway`, for `validate`, `process` and `refund`.
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

/// The same table for `parse_webhook`: a bad signature and an oversized body are the sender's.
fn webhook_error(e: PluginCallError) -> GatewayError {
    match e {
        PluginCallError::Provider(ProviderError::SignatureInvalid) => GatewayError::SignatureInvalid,
        // Answered 503 as a provider that cannot take the webhook now.
        PluginCallError::Provider(ProviderError::NotSupported) => {
            GatewayError::Unavailable("the plugin does not take webhooks".into())
        }
        too_large @ PluginCallError::InputTooLarge { .. } => GatewayError::InputTooLarge(too_large.to_string()),
        other => gateway_error(other),
    }
}

#[async_trait]
impl ProviderGateway for PluginGateway {
    fn declares_token(&self, provider: &str, token: &str) -> bool {
        self.providers.get(provider).is_ok_and(|plugin| plugin.token_formats().kind_of(token).is_some())
    }

    async fn validate(&self, provider: &str, request: &PaymentRequest) -> Result<(), GatewayError> {
        self.plugin(provider)?.validate(request.clone()).await.map_err(gateway_error)
    }

    async fn process(&self, provider: &str, request: &PaymentRequest) -> Result<PaymentOutcome, GatewayError> {
        self.plugin(provider)?.process(request.clone()).await.map_err(gateway_error)
    }

    async fn refund(&self, provider: &str, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        self.plugin(provider)?.refund(request.clone()).await.map_err(gateway_error)
    }

    async fn parse_webhook(&self, provider: &str, request: &WebhookRequest) -> Result<WebhookBatch, GatewayError> {
        self.plugin(provider)?.parse_webhook(request.clone()).await.map_err(webhook_error)
    }
}
