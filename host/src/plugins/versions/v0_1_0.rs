//! `lessor:payments@0.1.0` (released: frozen). Bindings, the host interface, and conversions
//! between the generated types and `plugins::types`.

use wasmtime::component::{
    ComponentExportIndex, ComponentNamedList, HasSelf, Instance, InstancePre, Lift, Linker, Lower, TypedFunc,
};
use wasmtime::{Engine, Store};

use super::{CallFailure, ProviderBindings, add_wasi};
use crate::plugins::http::{self as host_http, HttpFailure};
use crate::plugins::state::{CallState, HostState, LogLevel as HostLogLevel};
use crate::plugins::types as t;

wasmtime::component::bindgen!({
    path: "../wit/lessor-payments@0.1.0",
    world: "payment-provider",
});

use lessor::payments::host::{self as wit_host, HttpError, HttpMethod, HttpRequest, HttpResponse, LogLevel};
use lessor::payments::types as w;

pub(super) fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    add_wasi(&mut linker)?;
    wit_host::add_to_linker::<CallState, HasSelf<HostState>>(&mut linker, |s| &mut s.host)?;
    Ok(linker)
}

pub(super) fn bindings(pre: InstancePre<CallState>) -> wasmtime::Result<Box<dyn ProviderBindings>> {
    let component = pre.component();
    let export = component
        .get_export_index(None, "lessor:payments/provider@0.1.0")
        .ok_or_else(|| wasmtime::format_err!("no export `lessor:payments/provider@0.1.0`"))?;
    let index = |name: &str| {
        component
            .get_export_index(Some(&export), name)
            .ok_or_else(|| wasmtime::format_err!("no export `lessor:payments/provider@0.1.0#{name}`"))
    };
    let indices = Indices {
        validate: index("validate")?,
        process: index("process")?,
        refund: index("refund")?,
        parse_webhook: index("parse-webhook")?,
    };
    Ok(Box::new(Bindings { pre: PaymentProviderPre::new(pre)?, indices }))
}

struct Indices {
    validate: ComponentExportIndex,
    process: ComponentExportIndex,
    refund: ComponentExportIndex,
    parse_webhook: ComponentExportIndex,
}

struct Bindings {
    pre: PaymentProviderPre<CallState>,
    indices: Indices,
}

impl Bindings {
    fn instantiate(&self, store: &mut Store<CallState>) -> Result<Instance, CallFailure> {
        self.pre.instance_pre().instantiate(store).map_err(CallFailure::Instantiate)
    }

    /// A fresh instance and the one export a call needs, type-checked (bindgen's own `instantiate`
    /// would type-check all five on every call).
    fn func<P, R>(
        &self,
        store: &mut Store<CallState>,
        index: &ComponentExportIndex,
    ) -> Result<TypedFunc<P, R>, CallFailure>
    where
        P: ComponentNamedList + Lower,
        R: ComponentNamedList + Lift,
    {
        let instance = self.instantiate(store)?;
        instance.get_typed_func::<P, R>(store, index).map_err(CallFailure::Call)
    }
}

impl ProviderBindings for Bindings {
    fn instantiate_only(&self, store: &mut Store<CallState>) -> Result<(), CallFailure> {
        self.instantiate(store).map(drop)
    }

    /// Goes through bindgen's checked path, which type-checks every export: `load` calls `info`
    /// first, so a component whose signatures do not match is refused at load.
    fn info(&self, store: &mut Store<CallState>) -> Result<t::ProviderInfo, CallFailure> {
        let p = self.pre.instantiate(&mut *store).map_err(CallFailure::Instantiate)?;
        let info = p.lessor_payments_provider().call_info(store).map_err(CallFailure::Call)?;
        Ok(info.into())
    }

    fn validate(
        &self,
        store: &mut Store<CallState>,
        request: &t::PaymentRequest,
    ) -> Result<Result<(), t::ProviderError>, CallFailure> {
        let f = self.func::<(&w::PaymentRequest,), (Result<(), w::ProviderError>,)>(store, &self.indices.validate)?;
        let (result,) = f.call(store, (&request.into(),)).map_err(CallFailure::Call)?;
        Ok(result.map_err(Into::into))
    }

    fn process(
        &self,
        store: &mut Store<CallState>,
        request: &t::PaymentRequest,
    ) -> Result<Result<t::PaymentOutcome, t::ProviderError>, CallFailure> {
        let f = self.func::<(&w::PaymentRequest,), (Result<w::PaymentOutcome, w::ProviderError>,)>(
            store,
            &self.indices.process,
        )?;
        let (result,) = f.call(store, (&request.into(),)).map_err(CallFailure::Call)?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    fn refund(
        &self,
        store: &mut Store<CallState>,
        request: &t::RefundRequest,
    ) -> Result<Result<t::RefundOutcome, t::ProviderError>, CallFailure> {
        let f = self
            .func::<(&w::RefundRequest,), (Result<w::RefundOutcome, w::ProviderError>,)>(store, &self.indices.refund)?;
        let (result,) = f.call(store, (&request.into(),)).map_err(CallFailure::Call)?;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    fn parse_webhook(
        &self,
        store: &mut Store<CallState>,
        request: &t::WebhookRequest,
    ) -> Result<Result<Option<t::WebhookEvent>, t::ProviderError>, CallFailure> {
        let f = self.func::<(&w::WebhookRequest,), (Result<Option<w::WebhookEvent>, w::ProviderError>,)>(
            store,
            &self.indices.parse_webhook,
        )?;
        let request = w::WebhookRequest {
            headers: request.headers.clone(),
            body: request.body.clone(),
            received_at: request.received_at,
        };
        let (result,) = f.call(store, (&request,)).map_err(CallFailure::Call)?;
        Ok(result.map(|event| event.map(Into::into)).map_err(Into::into))
    }
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

// ---- conversions: host types -> 0.1.0 ----

impl From<&t::Money> for w::Money {
    fn from(m: &t::Money) -> Self {
        Self { amount: m.amount, currency: m.currency.clone() }
    }
}

impl From<&t::PaymentRequest> for w::PaymentRequest {
    fn from(r: &t::PaymentRequest) -> Self {
        Self {
            payment_id: r.payment_id.clone(),
            lease_id: r.lease_id.clone(),
            installment_id: r.installment_id.clone(),
            amount: (&r.amount).into(),
            payment_method: r.payment_method.clone(),
            idempotency_key: r.idempotency_key.clone(),
            metadata: r.metadata.clone(),
        }
    }
}

impl From<&t::RefundRequest> for w::RefundRequest {
    fn from(r: &t::RefundRequest) -> Self {
        Self {
            refund_id: r.refund_id.clone(),
            payment_id: r.payment_id.clone(),
            provider_transaction_id: r.provider_transaction_id.clone(),
            amount: (&r.amount).into(),
            reason: r.reason.clone(),
            idempotency_key: r.idempotency_key.clone(),
        }
    }
}

// ---- conversions: 0.1.0 -> host types ----

impl From<w::Money> for t::Money {
    fn from(m: w::Money) -> Self {
        Self { amount: m.amount, currency: m.currency }
    }
}

impl From<w::PaymentOutcome> for t::PaymentOutcome {
    fn from(o: w::PaymentOutcome) -> Self {
        Self {
            status: match o.status {
                w::PaymentStatus::Succeeded => t::PaymentStatus::Succeeded,
                w::PaymentStatus::Processing => t::PaymentStatus::Processing,
                w::PaymentStatus::RequiresAction => t::PaymentStatus::RequiresAction,
                w::PaymentStatus::Failed => t::PaymentStatus::Failed,
            },
            provider_transaction_id: o.provider_transaction_id,
            decline_code: o.decline_code,
            next_action_url: o.next_action_url,
        }
    }
}

impl From<w::RefundOutcome> for t::RefundOutcome {
    fn from(o: w::RefundOutcome) -> Self {
        Self {
            status: match o.status {
                w::RefundStatus::Succeeded => t::RefundStatus::Succeeded,
                w::RefundStatus::Pending => t::RefundStatus::Pending,
                w::RefundStatus::Failed => t::RefundStatus::Failed,
            },
            provider_refund_id: o.provider_refund_id,
            failure_reason: o.failure_reason,
        }
    }
}

impl From<w::WebhookEvent> for t::WebhookEvent {
    fn from(e: w::WebhookEvent) -> Self {
        Self {
            event_id: e.event_id,
            kind: match e.kind {
                w::EventKind::PaymentSucceeded => t::EventKind::PaymentSucceeded,
                w::EventKind::PaymentFailed => t::EventKind::PaymentFailed,
                w::EventKind::PaymentProcessing => t::EventKind::PaymentProcessing,
                w::EventKind::PaymentRequiresAction => t::EventKind::PaymentRequiresAction,
                w::EventKind::PaymentSettled => t::EventKind::PaymentSettled,
                w::EventKind::PaymentReturned => t::EventKind::PaymentReturned,
                w::EventKind::RefundSucceeded => t::EventKind::RefundSucceeded,
                w::EventKind::RefundFailed => t::EventKind::RefundFailed,
                w::EventKind::DisputeOpened => t::EventKind::DisputeOpened,
            },
            provider_transaction_id: e.provider_transaction_id,
            amount: e.amount.map(Into::into),
            reason_code: e.reason_code,
            occurred_at: e.occurred_at,
        }
    }
}

impl From<w::ProviderInfo> for t::ProviderInfo {
    fn from(i: w::ProviderInfo) -> Self {
        let flags = [
            (w::Capabilities::REFUNDS, t::Capability::Refunds),
            (w::Capabilities::PARTIAL_REFUNDS, t::Capability::PartialRefunds),
            (w::Capabilities::WEBHOOKS, t::Capability::Webhooks),
            (w::Capabilities::PAYER_ACTIONS, t::Capability::PayerActions),
            (w::Capabilities::RECURRING, t::Capability::Recurring),
        ];
        Self {
            id: i.id,
            version: i.version,
            currencies: i.currencies,
            capabilities: flags.into_iter().filter(|(f, _)| i.capabilities.contains(*f)).map(|(_, c)| c).collect(),
        }
    }
}

impl From<w::ProviderError> for t::ProviderError {
    fn from(e: w::ProviderError) -> Self {
        match e {
            w::ProviderError::Declined(reason) => Self::Declined(reason),
            w::ProviderError::InvalidRequest(w::FieldError { field, reason }) => Self::InvalidRequest { field, reason },
            w::ProviderError::ProviderUnavailable(why) => Self::ProviderUnavailable(why),
            w::ProviderError::SignatureInvalid => Self::SignatureInvalid,
            w::ProviderError::NotSupported => Self::NotSupported,
            w::ProviderError::Internal(why) => Self::Internal(why),
        }
    }
}
