//! `lessor:payments@0.1.0` (released: frozen). Bindings, the host interface, and conversions
//! between the generated types and the payments crate's gateway types (`lessor_payments`).
//!
//! What 0.1.0 cannot say, the conversion supplies: its capability flags and currencies become
//! the gateway's `ProviderCapabilities` with both method kinds and asynchronous settlement (what a
//! 0.1.0 plugin could always do); its webhook answer (at most one event) becomes a batch with the
//! host's own reply; it has no retrieve, so `retrieve_*` answer not-supported and reconciliation
//! calls `process` (`refund`) again with the same idempotency key.

use wasmtime::component::{ComponentType, HasSelf, InstancePre, Linker, Lower};
use wasmtime::{Engine, Store};

use lessor_payments as g;

use super::checked::{self, Checked, Signature, signature};
use super::{CallFailure, ProviderBindings, add_wasi};
use crate::plugins::error::ProviderError;
use crate::plugins::http::{self as host_http, HttpFailure};
use crate::plugins::output::Bounded;
use crate::plugins::state::{CallState, HostState, LogLevel as HostLogLevel};

wasmtime::component::bindgen!({
    path: "../wit/lessor-payments@0.1.0",
    world: "payment-provider",
});

mod output;

use lessor::payments::host::{self as wit_host, HttpError, HttpMethod, HttpRequest, HttpResponse, LogLevel};
use lessor::payments::types as w;

pub(super) fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    add_wasi(&mut linker)?;
    wit_host::add_to_linker::<CallState, HasSelf<HostState>>(&mut linker, |s| &mut s.host)?;
    Ok(linker)
}

const PROVIDER: &str = "lessor:payments/provider@0.1.0";

/// Finds the five exports and type-checks each, once, against the types its calls use: a
/// component whose signatures differ is refused here, at load, and calls skip the check.
pub(super) fn bindings(pre: InstancePre<CallState>) -> wasmtime::Result<Box<dyn ProviderBindings>> {
    let provider = pre
        .component()
        .get_export_index(None, PROVIDER)
        .ok_or_else(|| wasmtime::format_err!("no export `{PROVIDER}`"))?;
    let exports = Exports {
        info: Checked::new(&pre, &provider)?,
        validate: Checked::new(&pre, &provider)?,
        process: Checked::new(&pre, &provider)?,
        refund: Checked::new(&pre, &provider)?,
        parse_webhook: Checked::new(&pre, &provider)?,
    };
    Ok(Box::new(Bindings { pre, exports }))
}

// Every result is `Bounded`: measured against the output cap before it is copied (`output.rs`).
signature!(InfoFn, "info", (), (Bounded<w::ProviderInfo>,));
signature!(ValidateFn, "validate", (PaymentRequestRef<'a>,), (Bounded<Result<(), w::ProviderError>>,));
signature!(ProcessFn, "process", (PaymentRequestRef<'a>,), (Bounded<Result<w::PaymentOutcome, w::ProviderError>>,));
signature!(RefundFn, "refund", (RefundRequestRef<'a>,), (Bounded<Result<w::RefundOutcome, w::ProviderError>>,));
signature!(
    ParseWebhookFn,
    "parse-webhook",
    (WebhookRequestRef<'a>,),
    (Bounded<Result<Option<w::WebhookEvent>, w::ProviderError>>,)
);

struct Exports {
    info: Checked<InfoFn>,
    validate: Checked<ValidateFn>,
    process: Checked<ProcessFn>,
    refund: Checked<RefundFn>,
    parse_webhook: Checked<ParseWebhookFn>,
}

struct Bindings {
    pre: InstancePre<CallState>,
    exports: Exports,
}

impl Bindings {
    /// Calls `export` on a fresh instance.
    fn call<S: Signature>(
        &self,
        store: &mut Store<CallState>,
        export: &Checked<S>,
        params: S::Params<'_>,
    ) -> Result<S::Results, CallFailure> {
        checked::call_fresh(&self.pre, store, export, params)
    }
}

impl ProviderBindings for Bindings {
    fn instantiate_only(&self, store: &mut Store<CallState>) -> Result<(), CallFailure> {
        checked::instantiate(&self.pre, store).map(drop)
    }

    fn info(&self, store: &mut Store<CallState>) -> Result<g::ProviderInfo, CallFailure> {
        let (Bounded(info),) = self.call(store, &self.exports.info, ())?;
        Ok(provider_info(info))
    }

    fn validate(
        &self,
        store: &mut Store<CallState>,
        request: &g::PaymentRequest,
    ) -> Result<Result<(), ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.validate, (request.into(),))?;
        Ok(result.map_err(provider_error))
    }

    fn process(
        &self,
        store: &mut Store<CallState>,
        request: &g::PaymentRequest,
    ) -> Result<Result<g::PaymentOutcome, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.process, (request.into(),))?;
        Ok(result.map(payment_outcome).map_err(provider_error))
    }

    fn refund(
        &self,
        store: &mut Store<CallState>,
        request: &g::RefundRequest,
    ) -> Result<Result<g::RefundOutcome, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.refund, (request.into(),))?;
        Ok(result.map(refund_outcome).map_err(provider_error))
    }

    /// 0.1.0 has no retrieve: not-supported, so reconciliation calls `process` again with the
    /// same request and idempotency key (what it always did for 0.1.0 plugins).
    fn retrieve_payment(
        &self,
        _store: &mut Store<CallState>,
        _lookup: &g::PaymentLookup,
    ) -> Result<Result<Option<g::PaymentOutcome>, ProviderError>, CallFailure> {
        Ok(Err(ProviderError::NotSupported))
    }

    /// As `retrieve_payment`: reconciliation calls `refund` again with the same key.
    fn retrieve_refund(
        &self,
        _store: &mut Store<CallState>,
        _lookup: &g::RefundLookup,
    ) -> Result<Result<Option<g::RefundOutcome>, ProviderError>, CallFailure> {
        Ok(Err(ProviderError::NotSupported))
    }

    fn parse_webhook(
        &self,
        store: &mut Store<CallState>,
        request: &g::WebhookRequest,
    ) -> Result<Result<g::WebhookBatch, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.parse_webhook, (request.into(),))?;
        // At most one event, answered with the host's own reply.
        Ok(result
            .map(|event| g::WebhookBatch { events: event.map(webhook_event).into_iter().collect(), reply: None })
            .map_err(provider_error))
    }
}

// ---- requests as lowered: views of the gateway types, so a call copies each string once,
// straight into the guest's memory (ids as their UUID text). Field names and order are the WIT
// records' (checked at load).

#[derive(ComponentType, Lower)]
#[component(record)]
struct MoneyRef {
    #[component(name = "amount")]
    amount: i64,
    #[component(name = "currency")]
    currency: &'static str,
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct PaymentRequestRef<'a> {
    #[component(name = "payment-id")]
    payment_id: String,
    #[component(name = "lease-id")]
    lease_id: String,
    #[component(name = "installment-id")]
    installment_id: Option<String>,
    #[component(name = "amount")]
    amount: MoneyRef,
    #[component(name = "payment-method")]
    payment_method: &'a str,
    #[component(name = "idempotency-key")]
    idempotency_key: &'a str,
    #[component(name = "metadata")]
    metadata: &'a [(String, String)],
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct RefundRequestRef<'a> {
    #[component(name = "refund-id")]
    refund_id: String,
    #[component(name = "payment-id")]
    payment_id: String,
    #[component(name = "provider-transaction-id")]
    provider_transaction_id: &'a str,
    #[component(name = "amount")]
    amount: MoneyRef,
    #[component(name = "reason")]
    reason: Option<&'a str>,
    #[component(name = "idempotency-key")]
    idempotency_key: &'a str,
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct WebhookRequestRef<'a> {
    #[component(name = "headers")]
    headers: &'a [(String, String)],
    #[component(name = "body")]
    body: &'a [u8],
    #[component(name = "received-at")]
    received_at: u64,
}

impl w::Host for HostState {}

impl wit_host::Host for HostState {
    fn fetch(&mut self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let method = match request.method {
            HttpMethod::Get => host_http::Method::Get,
            HttpMethod::Post => host_http::Method::Post,
            HttpMethod::Put => host_http::Method::Put,
            HttpMethod::Patch => host_http::Method::Patch,
            HttpMethod::Delete => host_http::Method::Delete,
        };
        match HostState::fetch(self, method, &request.url, request.headers, request.body) {
            Ok(r) => Ok(HttpResponse { status: r.status, headers: r.headers, body: r.body }),
            Err(HttpFailure::Denied(what)) => Err(HttpError::Denied(what)),
            Err(HttpFailure::Timeout) => Err(HttpError::Timeout),
            Err(HttpFailure::Connection(why)) => Err(HttpError::Connection(why)),
            Err(HttpFailure::TooLarge) => Err(HttpError::TooLarge),
            Err(HttpFailure::InvalidRequest(why)) => Err(HttpError::InvalidRequest(why)),
        }
    }

    fn config(&mut self, key: String) -> Option<String> {
        HostState::config(self, &key)
    }

    fn secret(&mut self, key: String) -> Option<String> {
        HostState::secret(self, &key)
    }

    fn log(&mut self, level: LogLevel, message: String, fields: Vec<(String, String)>) {
        let level = match level {
            LogLevel::Trace => HostLogLevel::Trace,
            LogLevel::Debug => HostLogLevel::Debug,
            LogLevel::Info => HostLogLevel::Info,
            LogLevel::Warn => HostLogLevel::Warn,
            LogLevel::Error => HostLogLevel::Error,
        };
        HostState::log(self, level, &message, &fields);
    }

    fn now(&mut self) -> u64 {
        HostState::now(self)
    }
}

// ---- conversions: gateway types -> 0.1.0 ----

impl<'a> From<&'a g::PaymentRequest> for PaymentRequestRef<'a> {
    fn from(r: &'a g::PaymentRequest) -> Self {
        Self {
            payment_id: r.payment_id.to_string(),
            lease_id: r.lease_id.to_string(),
            installment_id: r.installment_id.map(|i| i.to_string()),
            amount: MoneyRef { amount: r.amount, currency: r.currency.code() },
            payment_method: &r.payment_method,
            idempotency_key: &r.idempotency_key,
            metadata: &r.metadata,
        }
    }
}

impl<'a> From<&'a g::RefundRequest> for RefundRequestRef<'a> {
    fn from(r: &'a g::RefundRequest) -> Self {
        Self {
            refund_id: r.refund_id.to_string(),
            payment_id: r.payment_id.to_string(),
            provider_transaction_id: &r.provider_tx_id,
            amount: MoneyRef { amount: r.amount, currency: r.currency.code() },
            reason: r.reason.as_deref(),
            idempotency_key: &r.idempotency_key,
        }
    }
}

impl<'a> From<&'a g::WebhookRequest> for WebhookRequestRef<'a> {
    fn from(r: &'a g::WebhookRequest) -> Self {
        Self { headers: &r.headers, body: &r.body, received_at: r.received_at }
    }
}

// ---- conversions: 0.1.0 -> gateway types ----

fn payment_outcome(o: w::PaymentOutcome) -> g::PaymentOutcome {
    g::PaymentOutcome {
        status: match o.status {
            w::PaymentStatus::Succeeded => g::ProviderPaymentStatus::Succeeded,
            w::PaymentStatus::Processing => g::ProviderPaymentStatus::Processing,
            w::PaymentStatus::RequiresAction => g::ProviderPaymentStatus::RequiresAction,
            w::PaymentStatus::Failed => g::ProviderPaymentStatus::Failed,
        },
        provider_tx_id: o.provider_transaction_id,
        decline_code: o.decline_code,
        next_action_url: o.next_action_url,
    }
}

fn refund_outcome(o: w::RefundOutcome) -> g::RefundOutcome {
    g::RefundOutcome {
        status: match o.status {
            w::RefundStatus::Succeeded => g::ProviderRefundStatus::Succeeded,
            w::RefundStatus::Pending => g::ProviderRefundStatus::Pending,
            w::RefundStatus::Failed => g::ProviderRefundStatus::Failed,
        },
        provider_refund_id: o.provider_refund_id,
        failure_reason: o.failure_reason,
    }
}

fn webhook_event(e: w::WebhookEvent) -> g::NormalizedEvent {
    use g::ProviderEventKind as K;
    g::NormalizedEvent {
        event_id: e.event_id,
        kind: match e.kind {
            w::EventKind::PaymentSucceeded => K::PaymentSucceeded,
            w::EventKind::PaymentFailed => K::PaymentFailed,
            w::EventKind::PaymentProcessing => K::PaymentProcessing,
            w::EventKind::PaymentRequiresAction => K::PaymentRequiresAction,
            w::EventKind::PaymentSettled => K::PaymentSettled,
            w::EventKind::PaymentReturned => K::PaymentReturned,
            w::EventKind::RefundSucceeded => K::RefundSucceeded,
            w::EventKind::RefundFailed => K::RefundFailed,
            w::EventKind::DisputeOpened => K::DisputeOpened,
        },
        provider_tx_id: e.provider_transaction_id,
        provider_refund_id: None,
        amount: e.amount.map(|m| g::EventAmount { amount: m.amount, currency: m.currency }),
        reason_code: e.reason_code,
        occurred_at: e.occurred_at,
    }
}

/// 0.1.0's flags and currencies; it has no method kinds or settlement flag: its plugins took
/// both kinds and could always answer `processing`. (`recurring` has no successor.)
fn provider_info(i: w::ProviderInfo) -> g::ProviderInfo {
    let flag = |f: w::Capabilities| i.capabilities.contains(f);
    g::ProviderInfo {
        capabilities: g::ProviderCapabilities {
            currencies: i.currencies,
            method_kinds: vec![g::MethodKind::Token, g::MethodKind::SepaMandate],
            refunds: flag(w::Capabilities::REFUNDS),
            partial_refunds: flag(w::Capabilities::PARTIAL_REFUNDS),
            asynchronous_settlement: true,
            payer_actions: flag(w::Capabilities::PAYER_ACTIONS),
            webhooks: flag(w::Capabilities::WEBHOOKS),
        },
        id: i.id,
        version: i.version,
    }
}

fn provider_error(e: w::ProviderError) -> ProviderError {
    match e {
        w::ProviderError::Declined(reason) => ProviderError::Declined(reason),
        w::ProviderError::InvalidRequest(w::FieldError { field, reason }) => {
            ProviderError::InvalidRequest { field, reason }
        }
        w::ProviderError::ProviderUnavailable(why) => ProviderError::ProviderUnavailable(why),
        w::ProviderError::SignatureInvalid => ProviderError::SignatureInvalid,
        w::ProviderError::NotSupported => ProviderError::NotSupported,
        w::ProviderError::Internal(why) => ProviderError::Internal(why),
    }
}
