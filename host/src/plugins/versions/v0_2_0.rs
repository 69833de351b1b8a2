//! `lessor:payments@0.2.0`. Bindings, the host interface, and conversions between the generated
//! types and the payments crate's gateway types (`lessor_payments`): retrieve-payment and
//! retrieve-refund, webhook batches with the plugin's reply, provider-refund-id in events, the
//! typed `egress-denied` and `misconfigured` errors, and capabilities with method kinds.

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
    path: "../wit/lessor-payments@0.2.0",
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

const PROVIDER: &str = "lessor:payments/provider@0.2.0";

/// Finds the seven exports and type-checks each, once, against the types its calls use: a
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
        retrieve_payment: Checked::new(&pre, &provider)?,
        refund: Checked::new(&pre, &provider)?,
        retrieve_refund: Checked::new(&pre, &provider)?,
        parse_webhook: Checked::new(&pre, &provider)?,
    };
    Ok(Box::new(Bindings { pre, exports }))
}

// Every result is `Bounded`: measured against the output cap before it is copied (`output.rs`).
signature!(InfoFn, "info", (), (Bounded<w::ProviderInfo>,));
signature!(ValidateFn, "validate", (PaymentRequestRef<'a>,), (Bounded<Result<(), w::ProviderError>>,));
signature!(ProcessFn, "process", (PaymentRequestRef<'a>,), (Bounded<Result<w::PaymentOutcome, w::ProviderError>>,));
signature!(
    RetrievePaymentFn,
    "retrieve-payment",
    (PaymentLookupRef<'a>,),
    (Bounded<Result<Option<w::PaymentOutcome>, w::ProviderError>>,)
);
signature!(RefundFn, "refund", (RefundRequestRef<'a>,), (Bounded<Result<w::RefundOutcome, w::ProviderError>>,));
signature!(
    RetrieveRefundFn,
    "retrieve-refund",
    (RefundLookupRef<'a>,),
    (Bounded<Result<Option<w::RefundOutcome>, w::ProviderError>>,)
);
signature!(
    ParseWebhookFn,
    "parse-webhook",
    (WebhookRequestRef<'a>,),
    (Bounded<Result<w::WebhookBatch, w::ProviderError>>,)
);

struct Exports {
    info: Checked<InfoFn>,
    validate: Checked<ValidateFn>,
    process: Checked<ProcessFn>,
    retrieve_payment: Checked<RetrievePaymentFn>,
    refund: Checked<RefundFn>,
    retrieve_refund: Checked<RetrieveRefundFn>,
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

    fn retrieve_payment(
        &self,
        store: &mut Store<CallState>,
        lookup: &g::PaymentLookup,
    ) -> Result<Result<Option<g::PaymentOutcome>, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.retrieve_payment, (lookup.into(),))?;
        Ok(result.map(|o| o.map(payment_outcome)).map_err(provider_error))
    }

    fn refund(
        &self,
        store: &mut Store<CallState>,
        request: &g::RefundRequest,
    ) -> Result<Result<g::RefundOutcome, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.refund, (request.into(),))?;
        Ok(result.map(refund_outcome).map_err(provider_error))
    }

    fn retrieve_refund(
        &self,
        store: &mut Store<CallState>,
        lookup: &g::RefundLookup,
    ) -> Result<Result<Option<g::RefundOutcome>, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.retrieve_refund, (lookup.into(),))?;
        Ok(result.map(|o| o.map(refund_outcome)).map_err(provider_error))
    }

    fn parse_webhook(
        &self,
        store: &mut Store<CallState>,
        request: &g::WebhookRequest,
    ) -> Result<Result<g::WebhookBatch, ProviderError>, CallFailure> {
        let (Bounded(result),) = self.call(store, &self.exports.parse_webhook, (request.into(),))?;
        Ok(result.map(webhook_batch).map_err(provider_error))
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
    #[component(name = "method-kind")]
    method_kind: w::MethodKind,
    #[component(name = "payment-method")]
    payment_method: &'a str,
    #[component(name = "idempotency-key")]
    idempotency_key: &'a str,
    #[component(name = "metadata")]
    metadata: &'a [(String, String)],
}

#[derive(ComponentType, Lower)]
#[component(record)]
struct PaymentLookupRef<'a> {
    #[component(name = "payment-id")]
    payment_id: String,
    #[component(name = "idempotency-key")]
    idempotency_key: &'a str,
    #[component(name = "provider-transaction-id")]
    provider_transaction_id: Option<&'a str>,
    #[component(name = "amount")]
    amount: MoneyRef,
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
struct RefundLookupRef<'a> {
    #[component(name = "refund-id")]
    refund_id: String,
    #[component(name = "payment-id")]
    payment_id: String,
    #[component(name = "provider-transaction-id")]
    provider_transaction_id: &'a str,
    #[component(name = "provider-refund-id")]
    provider_refund_id: Option<&'a str>,
    #[component(name = "amount")]
    amount: MoneyRef,
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

// ---- conversions: gateway types -> 0.2.0 ----

fn method_kind(kind: g::MethodKind) -> w::MethodKind {
    match kind {
        g::MethodKind::Token => w::MethodKind::Token,
        g::MethodKind::SepaMandate => w::MethodKind::SepaMandate,
    }
}

impl<'a> From<&'a g::PaymentRequest> for PaymentRequestRef<'a> {
    fn from(r: &'a g::PaymentRequest) -> Self {
        Self {
            payment_id: r.payment_id.to_string(),
            lease_id: r.lease_id.to_string(),
            installment_id: r.installment_id.map(|i| i.to_string()),
            amount: MoneyRef { amount: r.amount, currency: r.currency.code() },
            method_kind: method_kind(r.method_kind),
            payment_method: &r.payment_method,
            idempotency_key: &r.idempotency_key,
            metadata: &r.metadata,
        }
    }
}

impl<'a> From<&'a g::PaymentLookup> for PaymentLookupRef<'a> {
    fn from(l: &'a g::PaymentLookup) -> Self {
        Self {
            payment_id: l.payment_id.to_string(),
            idempotency_key: &l.idempotency_key,
            provider_transaction_id: l.provider_tx_id.as_deref(),
            amount: MoneyRef { amount: l.amount, currency: l.currency.code() },
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

impl<'a> From<&'a g::RefundLookup> for RefundLookupRef<'a> {
    fn from(l: &'a g::RefundLookup) -> Self {
        Self {
            refund_id: l.refund_id.to_string(),
            payment_id: l.payment_id.to_string(),
            provider_transaction_id: &l.provider_tx_id,
            provider_refund_id: l.provider_refund_id.as_deref(),
            amount: MoneyRef { amount: l.amount, currency: l.currency.code() },
            idempotency_key: &l.idempotency_key,
        }
    }
}

impl<'a> From<&'a g::WebhookRequest> for WebhookRequestRef<'a> {
    fn from(r: &'a g::WebhookRequest) -> Self {
        Self { headers: &r.headers, body: &r.body, received_at: r.received_at }
    }
}

// ---- conversions: 0.2.0 -> gateway types ----

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
        provider_refund_id: e.provider_refund_id,
        amount: e.amount.map(|m| g::EventAmount { amount: m.amount, currency: m.currency }),
        reason_code: e.reason_code,
        occurred_at: e.occurred_at,
    }
}

/// The plugin's reply is passed on as it chose it; the host checks it before answering with it.
fn webhook_batch(b: w::WebhookBatch) -> g::WebhookBatch {
    g::WebhookBatch {
        events: b.events.into_iter().map(webhook_event).collect(),
        reply: Some(g::WebhookReply { status: b.reply.status, content_type: b.reply.content_type, body: b.reply.body }),
    }
}

fn provider_info(i: w::ProviderInfo) -> g::ProviderInfo {
    let c = i.capabilities;
    g::ProviderInfo {
        id: i.id,
        version: i.version,
        capabilities: g::ProviderCapabilities {
            currencies: c.currencies,
            method_kinds: c
                .method_kinds
                .into_iter()
                .map(|k| match k {
                    w::MethodKind::Token => g::MethodKind::Token,
                    w::MethodKind::SepaMandate => g::MethodKind::SepaMandate,
                })
                .collect(),
            refunds: c.refunds,
            partial_refunds: c.partial_refunds,
            asynchronous_settlement: c.asynchronous_settlement,
            payer_actions: c.payer_actions,
            webhooks: c.webhooks,
        },
    }
}

fn provider_error(e: w::ProviderError) -> ProviderError {
    match e {
        w::ProviderError::Declined(reason) => ProviderError::Declined(reason),
        w::ProviderError::InvalidRequest(w::FieldError { field, reason }) => {
            ProviderError::InvalidRequest { field, reason }
        }
        w::ProviderError::EgressDenied(what) => ProviderError::EgressDenied(what),
        w::ProviderError::Misconfigured(key) => ProviderError::Misconfigured(key),
        w::ProviderError::ProviderUnavailable(why) => ProviderError::ProviderUnavailable(why),
        w::ProviderError::SignatureInvalid => ProviderError::SignatureInvalid,
        w::ProviderError::NotSupported => ProviderError::NotSupported,
        w::ProviderError::Internal(why) => ProviderError::Internal(why),
    }
}
