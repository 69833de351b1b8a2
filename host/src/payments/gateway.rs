//! The payments service's [`ProviderGateway`] over this host's plugins: the provider id
//! resolves to the plugin version serving it now (Factory, [`LiveProviders`]); the call runs in
//! that plugin's sandbox (Strategy). Requests and answers are the gateway's own types, which each
//! WIT version module converts to directly; the error mapping is the table in
//! `lessor_payments::gateway`.

use std::sync::Arc;

use async_trait::async_trait;
use lessor_payments::{
    GatewayError, PaymentLookup, PaymentOutcome, PaymentRequest, ProviderCapabilities, ProviderGateway,
    ProviderPaymentStatus, RefundLookup, RefundOutcome, RefundRequest, WebhookBatch, WebhookRequest,
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
            ProviderError::EgressDenied(what) => GatewayError::EgressDenied(what),
            ProviderError::Misconfigured(key) => GatewayError::Misconfigured(key),
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

/// The same table for `retrieve_*`: not-supported means "ask `process` (`refund`) again".
fn retrieve_error(e: PluginCallError) -> GatewayError {
    match e {
        PluginCallError::Provider(ProviderError::NotSupported) => GatewayError::NotSupported,
        other => gateway_error(other),
    }
}

/// The most events one webhook request may carry, and the largest reply body.
pub const MAX_WEBHOOK_EVENTS: usize = 100;
pub const MAX_WEBHOOK_REPLY_BYTES: usize = 64 << 10;

/// A plugin's webhook answer the host will not pass on (its reply or its number of events).
fn webhook_fault(batch: &WebhookBatch) -> Option<String> {
    if batch.events.len() > MAX_WEBHOOK_EVENTS {
        return Some(format!("{} events, over the {MAX_WEBHOOK_EVENTS} a request may carry", batch.events.len()));
    }
    let reply = batch.reply.as_ref()?;
    if !(200..=299).contains(&reply.status) {
        return Some(format!("reply status {} is not 2xx", reply.status));
    }
    let sane = |c: char| c.is_ascii_graphic() || c == ' ';
    if reply.content_type.is_empty() || reply.content_type.len() > 255 || !reply.content_type.chars().all(sane) {
        return Some("reply content type is not a header value of 1-255 visible characters".into());
    }
    if reply.body.len() > MAX_WEBHOOK_REPLY_BYTES {
        return Some(format!("reply body is {} bytes, over {MAX_WEBHOOK_REPLY_BYTES}", reply.body.len()));
    }
    None
}

impl PluginGateway {
    /// `processing` is an answer only from a provider that settles asynchronously; from any
    /// other it says nothing final, and the payment is reconciled as an unknown outcome.
    fn settled(&self, plugin: &LoadedPlugin, outcome: PaymentOutcome) -> Result<PaymentOutcome, GatewayError> {
        if outcome.status == ProviderPaymentStatus::Processing
            && !plugin.provider_info().capabilities.asynchronous_settlement
        {
            return Err(GatewayError::OutcomeUnknown(format!(
                "{} answered `processing` without declaring asynchronous settlement",
                plugin.name()
            )));
        }
        Ok(outcome)
    }
}

#[async_trait]
impl ProviderGateway for PluginGateway {
    fn capabilities(&self, provider: &str) -> Option<ProviderCapabilities> {
        self.providers.get(provider).ok().map(|plugin| plugin.provider_info().capabilities.clone())
    }

    fn declares_token(&self, provider: &str, token: &str) -> bool {
        self.providers.get(provider).is_ok_and(|plugin| plugin.token_formats().kind_of(token).is_some())
    }

    async fn validate(&self, provider: &str, request: &PaymentRequest) -> Result<(), GatewayError> {
        self.plugin(provider)?.validate(request.clone()).await.map_err(gateway_error)
    }

    async fn process(&self, provider: &str, request: &PaymentRequest) -> Result<PaymentOutcome, GatewayError> {
        let plugin = self.plugin(provider)?;
        let outcome = plugin.process(request.clone()).await.map_err(gateway_error)?;
        self.settled(&plugin, outcome)
    }

    async fn retrieve_payment(
        &self,
        provider: &str,
        lookup: &PaymentLookup,
    ) -> Result<Option<PaymentOutcome>, GatewayError> {
        let plugin = self.plugin(provider)?;
        match plugin.retrieve_payment(lookup.clone()).await.map_err(retrieve_error)? {
            Some(outcome) => self.settled(&plugin, outcome).map(Some),
            None => Ok(None),
        }
    }

    async fn retrieve_refund(
        &self,
        provider: &str,
        lookup: &RefundLookup,
    ) -> Result<Option<RefundOutcome>, GatewayError> {
        self.plugin(provider)?.retrieve_refund(lookup.clone()).await.map_err(retrieve_error)
    }

    async fn refund(&self, provider: &str, request: &RefundRequest) -> Result<RefundOutcome, GatewayError> {
        self.plugin(provider)?.refund(request.clone()).await.map_err(gateway_error)
    }

    async fn parse_webhook(&self, provider: &str, request: &WebhookRequest) -> Result<WebhookBatch, GatewayError> {
        let plugin = self.plugin(provider)?;
        let batch = plugin.parse_webhook(request.clone()).await.map_err(webhook_error)?;
        if let Some(fault) = webhook_fault(&batch) {
            tracing::warn!(plugin = %plugin.name(), version = %plugin.version(), fault, "webhook answer refused");
            return Err(GatewayError::Unavailable(format!("the plugin's webhook answer is refused: {fault}")));
        }
        Ok(batch)
    }
}
