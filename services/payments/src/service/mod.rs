//! The payment rules: who sees which payment, how a payment is taken and refunded, and how
//! payments whose outcome is unknown are reconciled.
//!
//! ## Creating a payment ([`PaymentService::create`])
//!
//! 1. The lease (visible to the caller, `active`, same currency) and the installment (of that
//!    lease, same amount, not paid) are checked.
//! 2. The provider is resolved and asked to `validate` the request. Validation has no side
//!    effects, so nothing is stored when it refuses: **a request the provider refuses before
//!    charging (unknown or disabled provider, `invalid-request`, `declined` at validation) is a
//!    422 field error and leaves no payment row**; a provider that cannot be asked is
//!    [`PaymentError::ProviderUnavailable`] (503), also without a row. The host releases the
//!    idempotency key for every error, so a corrected request can go on.
//! 3. The payment row is written `pending` (linked to the request's idempotency claim) and
//!    committed **before** `process` is called, so a crash during the call leaves a row that
//!    reconciliation finds.
//! 4. `process` (same payment id and idempotency key on every call). Its outcome, the
//!    `payment.completed`/`payment.failed` outbox event and, on success, the installment's
//!    `paid` are committed in one transaction. A refusal at `process` (declined, or the
//!    provider disappearing between `validate` and `process`) ends the payment `failed` with a
//!    code; the row exists, so this is a result (`Ok(payment)`), not an error.
//! 5. A timeout, sandbox trap or `provider-unavailable` during `process` leaves the payment
//!    `pending` with `reconcile_after` and the attempt count: the provider may have charged.
//!    [`PaymentService::reconcile_due`] calls `process` again with the same id and key (the
//!    provider deduplicates) with exponential backoff, and after
//!    [`ReconcilePolicy::max_attempts`] calls leaves it `pending` with `needs_attention` for an
//!    operator. It is never failed silently and never charged twice.
//!
//! Once the row exists, `create` returns `Ok(payment)` whatever the outcome; errors mean that
//! no payment was created.

mod keyed;
mod methods;
mod reconcile;
mod refunds;

pub use keyed::{CREATED, KeyedAnswer, KeyedRequest};

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lessor_leases::{FieldError, InstallmentStatus, LeaseStatus, Viewer};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::gateway::{GatewayError, PaymentOutcome, PaymentRequest, ProviderGateway, ProviderPaymentStatus};
use crate::idempotency::Claim;
use crate::input::{NewPayment, ValidationError};
use crate::record::{Payment, PaymentCursor, PaymentPage};
use crate::repo::{Applied, AttemptMark, InsertError, NewPaymentRow, PaymentWork, Repo, RepoError, Transition};
use crate::status::PaymentStatus;

/// The largest page of a listing.
pub const MAX_PAGE: u32 = 100;

/// Why a request created nothing. Every variant means no payment (or refund) was written, so
/// the host may release the idempotency key.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    /// 422: fields refused (by this crate or by the provider's `validate`).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// 404: no such payment or lease, or not visible to the caller (not told apart).
    #[error("not found")]
    NotFound,
    /// 403: only staff may do this.
    #[error("only staff may do this")]
    Forbidden,
    /// 409: the state of the lease, installment or payment does not allow the request.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// 503: the provider could not check the request; nothing was charged or stored.
    #[error("payment provider unavailable: {0}")]
    ProviderUnavailable(String),
    /// 500: the cause is for the log, not the client.
    #[error("storage failed: {0}")]
    Store(String),
}

/// What a 409 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("the installment is already paid")]
    InstallmentPaid,
    #[error("the installment already has a payment in progress or succeeded")]
    InstallmentBusy,
    #[error("a {0} payment cannot be refunded")]
    NotRefundable(PaymentStatus),
    /// The request's idempotency lock expired and a retry took the key over.
    #[error("the idempotency key was taken over by a retry of this request")]
    KeyTakenOver,
}

impl From<RepoError> for PaymentError {
    fn from(e: RepoError) -> Self {
        Self::Store(e.to_string())
    }
}

/// When payments (and refunds) whose outcome is unknown are asked about again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcilePolicy {
    /// After the first call without an outcome. Keep it above the plugin call deadline.
    pub first_delay: Duration,
    /// The delay doubles per attempt up to this.
    pub max_delay: Duration,
    /// Provider calls in all (the first included) before the payment is left to an operator.
    pub max_attempts: u32,
}

impl Default for ReconcilePolicy {
    /// 1 minute, doubling up to 1 hour, 8 calls in all (about 2 hours).
    fn default() -> Self {
        Self { first_delay: Duration::from_secs(60), max_delay: Duration::from_secs(3600), max_attempts: 8 }
    }
}

impl ReconcilePolicy {
    /// How long after call number `attempt` (1-based) the next one is due.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = attempt.clamp(1, 20) - 1;
        self.first_delay.saturating_mul(1 << exp).min(self.max_delay)
    }
}

/// What one reconciliation pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Payments whose provider call ran in this pass.
    pub payments_checked: u32,
    /// Of those, resolved (the provider answered).
    pub payments_resolved: u32,
    /// Of those, flagged for an operator (attempts exhausted).
    pub payments_flagged: u32,
    pub refunds_checked: u32,
    pub refunds_resolved: u32,
    pub refunds_flagged: u32,
}

/// The `failure_code` of a payment whose provider answered another payment's transaction id.
pub const PROVIDER_TRANSACTION_REUSED: &str = "provider_transaction_reused";

/// The default of [`PaymentService::with_webhook_retry_window`]: one hour.
pub const WEBHOOK_RETRY_WINDOW: Duration = Duration::from_secs(3600);

/// The payments service. Cheap to share (`Arc`).
pub struct PaymentService {
    pub(crate) repo: Repo,
    pub(crate) gateway: Arc<dyn ProviderGateway>,
    pub(crate) policy: ReconcilePolicy,
    relay_wake: Option<Arc<Notify>>,
    /// How long after a payment (refund) was created an event that cannot be applied to it yet
    /// is answered "deliver again later"; see [`crate::webhook`].
    pub(crate) webhook_retry_window: Duration,
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The provider's field name (kebab-case, as in the WIT) as a path of our request body.
fn request_field(field: &str) -> String {
    match field {
        "amount.currency" | "currency" => "currency".to_owned(),
        "amount" | "amount.amount" => "amount".to_owned(),
        other => other.replace('-', "_"),
    }
}

impl PaymentService {
    pub fn new(db: lessor_store::Db, gateway: Arc<dyn ProviderGateway>, policy: ReconcilePolicy) -> Self {
        Self { repo: Repo::new(db), gateway, policy, relay_wake: None, webhook_retry_window: WEBHOOK_RETRY_WINDOW }
    }

    /// How long after a payment or refund was created an event about it that cannot be applied
    /// yet is answered "deliver again later" (default [`WEBHOOK_RETRY_WINDOW`], one hour).
    pub fn with_webhook_retry_window(mut self, window: Duration) -> Self {
        self.webhook_retry_window = window;
        self
    }

    /// Woken after every commit that wrote an outbox event (the events relay's wake-up).
    pub fn with_relay_wake(mut self, wake: Arc<Notify>) -> Self {
        self.relay_wake = Some(wake);
        self
    }

    pub fn policy(&self) -> ReconcilePolicy {
        self.policy
    }

    pub(crate) fn wake_relay(&self) {
        if let Some(wake) = &self.relay_wake {
            wake.notify_one();
        }
    }

    /// Takes a payment; see the module documentation for the flow. With a `claim` (from
    /// `IdempotencyStore::begin`), the payment is linked to it; a claim that recovered the
    /// payment of an earlier, crashed request returns that payment as it stands.
    #[tracing::instrument(name = "payments.create", skip_all, fields(lease_id = %new.lease_id, provider = %new.provider, payment_id))]
    pub async fn create(
        &self,
        viewer: Viewer,
        new: &NewPayment,
        claim: Option<&Claim>,
    ) -> Result<Payment, PaymentError> {
        if let Some(id) = claim.and_then(Claim::recovered) {
            tracing::info!(payment_id = %id, "returning the payment of an earlier attempt under this idempotency key");
            return self.get(viewer, id).await;
        }
        let owner_id = self.check_new(viewer, new).await?;
        let payment_id = Uuid::new_v4();
        tracing::Span::current().record("payment_id", tracing::field::display(payment_id));
        let key = format!("lessor-pay-{payment_id}");
        self.start(new, owner_id, payment_id, &key, claim, None).await
    }

    /// Checks the lease and installment; the lease's owner.
    async fn check_new(&self, viewer: Viewer, new: &NewPayment) -> Result<Uuid, PaymentError> {
        let lease = self.repo.lease(new.lease_id).await?;
        let Some(lease) = lease.filter(|l| viewer.is_staff || l.owner_id == viewer.user_id) else {
            return Err(ValidationError::single("lease_id", "no such lease").into());
        };
        let mut errors = Vec::new();
        let status = lease.status()?;
        if status != LeaseStatus::Active {
            errors
                .push(FieldError::new("lease_id", format!("the lease is {status}; only active leases take payments")));
        }
        if new.currency.code() != lease.currency {
            errors.push(FieldError::new("currency", format!("must be the lease's currency {}", lease.currency)));
        }
        let mut paid = false;
        if let Some(installment_id) = new.installment_id {
            match self.repo.installment(installment_id).await?.filter(|i| i.lease_id == new.lease_id) {
                None => errors.push(FieldError::new("installment_id", "is not an installment of this lease")),
                Some(installment) => {
                    if installment.amount != new.amount {
                        errors.push(FieldError::new(
                            "amount",
                            format!("must equal the installment's amount of {} minor units", installment.amount),
                        ));
                    }
                    let currency_reported = errors.iter().any(|e| e.field == "currency");
                    if installment.currency != new.currency.code() && !currency_reported {
                        errors.push(FieldError::new(
                            "currency",
                            format!("must be the installment's currency {}", installment.currency),
                        ));
                    }
                    paid = installment.status()? == InstallmentStatus::Paid;
                }
            }
        }
        if !errors.is_empty() {
            return Err(ValidationError::new(errors).into());
        }
        if paid {
            return Err(Conflict::InstallmentPaid.into());
        }
        Ok(lease.owner_id)
    }

    /// Validate, write the row, process: the flow shared by the API and the collection job.
    pub(crate) async fn start(
        &self,
        new: &NewPayment,
        owner_id: Uuid,
        payment_id: Uuid,
        provider_key: &str,
        claim: Option<&Claim>,
        attempt: Option<&AttemptMark>,
    ) -> Result<Payment, PaymentError> {
        let method = new.payment_method.wire();
        let request = payment_request(new, payment_id, provider_key, &method);
        let provider = new.provider.as_str();
        self.check_capabilities(provider, &request)?;
        if let Err(e) = self.gateway.validate(provider, &request).await {
            tracing::info!(code = e.code(), "the provider refused the payment at validation");
            return Err(validation_error(e));
        }
        let first_check = Utc::now().timestamp_millis().saturating_add(millis(self.policy.delay(1)));
        let row = NewPaymentRow {
            id: payment_id,
            lease_id: new.lease_id,
            installment_id: new.installment_id,
            owner_id,
            amount: new.amount,
            currency: new.currency.code(),
            provider,
            payment_method: &method,
            idempotency_key: provider_key,
            reconcile_after: first_check,
        };
        let payment = self.repo.insert_payment(&row, claim, attempt).await.map_err(|e| match e {
            InsertError::InstallmentPaid => Conflict::InstallmentPaid.into(),
            InsertError::InstallmentBusy => Conflict::InstallmentBusy.into(),
            InsertError::ClaimLost => Conflict::KeyTakenOver.into(),
            InsertError::Repo(e) => PaymentError::from(e),
        })?;
        tracing::info!(payment_id = %payment.id, "payment written, pending");
        match self.process(payment.id, payment.process_attempts, None).await? {
            Some(payment) => Ok(payment),
            // Someone else (reconciliation) claimed it first: report it as it stands.
            None => self.repo.payment(payment_id).await?.ok_or(PaymentError::NotFound),
        }
    }

    /// One `process` call for a pending payment, claimed first; `None` when the payment was
    /// not claimable (no longer pending, or another worker holds it).
    pub(crate) async fn process(
        &self,
        id: Uuid,
        attempts_so_far: u32,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Payment>, PaymentError> {
        let attempt = attempts_so_far + 1;
        let now = due_at.unwrap_or_else(Utc::now);
        let next = now.timestamp_millis().saturating_add(millis(self.policy.delay(attempt)));
        let due_ms = due_at.map(|at| at.timestamp_millis());
        let Some(work) = self.repo.claim_process(id, attempts_so_far, next, due_ms).await? else {
            return Ok(None);
        };
        let result = if attempts_so_far == 0 {
            self.gateway.process(&work.payment.provider, &work.request()).await
        } else {
            self.ask_again(&work).await
        };
        let payment = self.settle(&work, attempt, result).await?;
        Ok(Some(payment))
    }

    /// A pending payment asked about again (reconciliation): where it stands at the provider
    /// (`retrieve_payment`); `process` again with the same key only when the provider has no such
    /// payment or cannot say (`NotSupported`), so a charge the provider took is never taken twice.
    async fn ask_again(&self, work: &PaymentWork) -> Result<PaymentOutcome, GatewayError> {
        let (provider, request) = (&work.payment.provider, work.request());
        let lookup = request.lookup(work.payment.provider_tx_id.clone());
        match self.gateway.retrieve_payment(provider, &lookup).await {
            Ok(Some(outcome)) => {
                tracing::info!(payment_id = %work.payment.id, "reconciled by retrieve-payment");
                Ok(outcome)
            }
            Ok(None) | Err(GatewayError::NotSupported) => self.gateway.process(provider, &request).await,
            Err(e) => Err(e),
        }
    }

    /// Applies the result of `process` call number `attempt`.
    pub(crate) async fn settle(
        &self,
        work: &PaymentWork,
        attempt: u32,
        result: Result<PaymentOutcome, GatewayError>,
    ) -> Result<Payment, PaymentError> {
        let id = work.payment.id;
        let change = match result {
            Ok(outcome) => outcome_transition(outcome),
            Err(e) if e.outcome_unknown() => {
                let give_up = attempt >= self.policy.max_attempts;
                self.repo.note_unknown_outcome(id, &e.to_string(), give_up).await?;
                if give_up {
                    tracing::error!(payment_id = %id, attempt, code = e.code(), "payment outcome still unknown; left for an operator");
                } else {
                    tracing::warn!(payment_id = %id, attempt, code = e.code(), "payment outcome unknown; will ask the provider again");
                }
                return self.repo.payment(id).await?.ok_or(PaymentError::NotFound);
            }
            Err(e) => refusal_transition(&e),
        };
        self.apply_outcome(id, &change).await
    }

    /// Why the provider's transaction id `tx` cannot be `payment`'s: another payment of the same
    /// provider has it (a plugin bug, or a provider reusing ids). Storing it would break the
    /// one-transaction-per-payment rule, which the unique index enforces when it is written.
    async fn reused_why(&self, payment: &Payment, tx: &str) -> Result<String, PaymentError> {
        let other = self.repo.payment_by_provider_tx(&payment.provider, tx).await?;
        let tx = crate::webhook::short(tx);
        Ok(match other.filter(|other| other.id != payment.id) {
            Some(other) => format!("the provider answered transaction id `{tx}`, already that of payment {}", other.id),
            None => format!("the provider answered transaction id `{tx}`, already that of another payment"),
        })
    }

    /// Fails the payment with `provider_transaction_reused` and flags it for an operator.
    async fn fail_reused(&self, id: Uuid, why: &str) -> Result<Payment, PaymentError> {
        tracing::error!(payment_id = %id, why, "provider transaction id reused; payment failed and flagged");
        let change = Transition {
            target: Some(PaymentStatus::Failed),
            failure: Some((PROVIDER_TRANSACTION_REUSED.to_owned(), Some(why.to_owned()))),
            ..Transition::default()
        };
        // No transaction id in this change, so it cannot be refused as reused.
        let applied = self.repo.apply(id, &change, None).await?;
        self.applied_payment(applied)?;
        self.repo.flag_payment(id, why).await?;
        self.repo.payment(id).await?.ok_or(PaymentError::NotFound)
    }

    /// Applies a provider's answer about payment `id` (see `Repo::apply`).
    pub(crate) async fn apply_outcome(&self, id: Uuid, change: &Transition) -> Result<Payment, PaymentError> {
        let applied = self.repo.apply(id, change, None).await?;
        if let Applied::TransactionTaken(payment) = &applied {
            let why = self.reused_why(payment, change.provider_tx_id.as_deref().unwrap_or_default()).await?;
            return self.fail_reused(id, &why).await;
        }
        if let (Applied::Stale(stored), Some(said)) = (&applied, change.target) {
            // Behind the stored status (a replayed `processing` after the webhook's
            // `succeeded`) is harmless; a contradiction (`succeeded` for a payment a webhook
            // failed) is money an operator must look at.
            if !said.can_reach(stored.status) && !stored.status.can_reach(said) {
                tracing::error!(payment_id = %id, stored = %stored.status, %said, "provider answer contradicts the payment's status");
                self.repo
                    .flag_payment(id, &format!("the provider answered {said} to a {} payment", stored.status))
                    .await?;
            }
        }
        self.applied_payment(applied)
    }

    pub(crate) fn applied_payment(&self, applied: Applied) -> Result<Payment, PaymentError> {
        match applied {
            Applied::Moved { from, payment } => {
                tracing::info!(payment_id = %payment.id, %from, to = %payment.status, "payment status changed");
                if matches!(payment.status, PaymentStatus::Succeeded | PaymentStatus::Failed | PaymentStatus::Returned)
                {
                    self.wake_relay();
                }
                Ok(payment)
            }
            Applied::Unchanged(payment) => Ok(payment),
            Applied::Stale(payment) | Applied::Early(payment) => {
                tracing::warn!(payment_id = %payment.id, status = %payment.status, "provider outcome does not fit the payment's status; kept");
                Ok(payment)
            }
            Applied::Missing | Applied::Duplicate => Err(PaymentError::NotFound),
            // `apply_outcome` fails such a payment as reused before it gets here.
            Applied::TransactionTaken(payment) => Ok(payment),
        }
    }

    /// A payment visible to `viewer`.
    pub async fn get(&self, viewer: Viewer, id: Uuid) -> Result<Payment, PaymentError> {
        match self.repo.payment(id).await? {
            Some(payment) if viewer.is_staff || payment.owner_id == viewer.user_id => Ok(payment),
            _ => Err(PaymentError::NotFound),
        }
    }

    /// A lease's payments, newest first; `NotFound` when the lease is not visible to `viewer`.
    pub async fn list_by_lease(
        &self,
        viewer: Viewer,
        lease_id: Uuid,
        after: Option<&PaymentCursor>,
        limit: u32,
    ) -> Result<PaymentPage, PaymentError> {
        self.visible_lease(viewer, lease_id).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let mut items = self.repo.payments_of_lease(lease_id, after, limit + 1).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|p| PaymentCursor { created_at: p.created_at, id: p.id })
        } else {
            None
        };
        Ok(PaymentPage { items, next })
    }

    pub(crate) async fn visible_lease(
        &self,
        viewer: Viewer,
        lease_id: Uuid,
    ) -> Result<crate::repo::LeaseFacts, PaymentError> {
        match self.repo.lease(lease_id).await? {
            Some(lease) if viewer.is_staff || lease.owner_id == viewer.user_id => Ok(lease),
            _ => Err(PaymentError::NotFound),
        }
    }
}

pub(crate) fn outcome_transition(outcome: PaymentOutcome) -> Transition {
    let target = match outcome.status {
        ProviderPaymentStatus::Succeeded => PaymentStatus::Succeeded,
        ProviderPaymentStatus::Processing => PaymentStatus::Processing,
        ProviderPaymentStatus::RequiresAction => PaymentStatus::RequiresAction,
        ProviderPaymentStatus::Failed => PaymentStatus::Failed,
    };
    let failure = (target == PaymentStatus::Failed).then(|| ("declined".to_owned(), outcome.decline_code.clone()));
    Transition {
        target: Some(target),
        provider_tx_id: Some(outcome.provider_tx_id).filter(|id| !id.is_empty()),
        next_action_url: outcome.next_action_url,
        failure,
        return_reason: None,
    }
}

/// What the provider is asked for a new payment (`method` is the wire form of its method).
pub(crate) fn payment_request(new: &NewPayment, payment_id: Uuid, provider_key: &str, method: &str) -> PaymentRequest {
    PaymentRequest {
        payment_id,
        lease_id: new.lease_id,
        installment_id: new.installment_id,
        amount: new.amount,
        currency: new.currency,
        method_kind: crate::gateway::MethodKind::of_wire(method),
        payment_method: method.to_owned(),
        idempotency_key: provider_key.to_owned(),
        metadata: crate::repo::request_metadata(new.lease_id, new.installment_id),
    }
}

impl PaymentService {
    /// What the provider declares it takes (its capabilities), checked before it is called: a
    /// currency or payment method kind it does not list is refused (422) naming the field.
    pub(crate) fn check_capabilities(&self, provider: &str, request: &PaymentRequest) -> Result<(), PaymentError> {
        let Some(caps) = self.gateway.capabilities(provider) else { return Ok(()) };
        if !caps.currencies.iter().any(|c| c.eq_ignore_ascii_case(request.currency.code())) {
            let reason = format!(
                "{provider} does not take {} (it takes {})",
                request.currency.code(),
                caps.currencies.join(", ")
            );
            return Err(ValidationError::single("currency", reason).into());
        }
        if !caps.method_kinds.contains(&request.method_kind) {
            let reason = format!("{provider} does not take a {} payment method", request.method_kind.as_str());
            return Err(ValidationError::single("payment_method", reason).into());
        }
        Ok(())
    }
}

/// A refusal at `process`: the payment fails with the provider's code.
pub(crate) fn refusal_transition(e: &GatewayError) -> Transition {
    Transition {
        target: Some(PaymentStatus::Failed),
        failure: Some((e.code().to_owned(), Some(failure_message(e)))),
        ..Transition::default()
    }
}

/// A refusal at `validate`, before anything was written.
pub(crate) fn validation_error(e: GatewayError) -> PaymentError {
    match e {
        GatewayError::UnknownProvider(_) => {
            ValidationError::single("provider", "no such payment provider is installed").into()
        }
        GatewayError::Disabled(_) => ValidationError::single("provider", "this payment provider is disabled").into(),
        GatewayError::InvalidRequest { field, reason } => ValidationError::single(request_field(&field), reason).into(),
        GatewayError::Declined(reason) => {
            ValidationError::single("payment_method", format!("was declined by the provider: {reason}")).into()
        }
        GatewayError::Unavailable(message) | GatewayError::OutcomeUnknown(message) => {
            PaymentError::ProviderUnavailable(message)
        }
        // Nothing was written yet: the provider cannot be used until the operator fixes its
        // grants, which is the host's problem, not the request's.
        denied @ GatewayError::EgressDenied(_) => PaymentError::ProviderUnavailable(denied.to_string()),
        // Not answers `validate` gives (the host maps them for `parse_webhook` only).
        GatewayError::InputTooLarge(reason) => ValidationError::single("payment_method", reason).into(),
        other @ (GatewayError::SignatureInvalid | GatewayError::NotSupported) => {
            PaymentError::ProviderUnavailable(other.to_string())
        }
        misconfigured @ GatewayError::Misconfigured(_) => PaymentError::ProviderUnavailable(misconfigured.to_string()),
    }
}

/// The stored `failure_message` of a refusal: what the provider said, safe to show.
pub(crate) fn failure_message(e: &GatewayError) -> String {
    match e {
        GatewayError::Declined(reason) => reason.clone(),
        GatewayError::InvalidRequest { field, reason } => format!("{}: {reason}", request_field(field)),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconcile_delays_double_up_to_the_cap() {
        let policy = ReconcilePolicy::default();
        assert_eq!(policy.delay(1), Duration::from_secs(60));
        assert_eq!(policy.delay(2), Duration::from_secs(120));
        assert_eq!(policy.delay(6), Duration::from_secs(1920));
        assert_eq!(policy.delay(7), Duration::from_secs(3600));
        assert_eq!(policy.delay(500), Duration::from_secs(3600));
    }

    #[test]
    fn provider_fields_become_request_paths() {
        assert_eq!(request_field("payment-method"), "payment_method");
        assert_eq!(request_field("amount.currency"), "currency");
        assert_eq!(request_field("amount"), "amount");
        assert_eq!(request_field("installment-id"), "installment_id");
    }

    #[test]
    fn validation_refusals_map_to_field_errors_or_unavailable() {
        let invalid =
            validation_error(GatewayError::InvalidRequest { field: "payment-method".into(), reason: "bad".into() });
        assert!(matches!(invalid, PaymentError::Invalid(e) if e.reason_for("payment_method") == Some("bad")));
        assert!(matches!(validation_error(GatewayError::UnknownProvider("x".into())), PaymentError::Invalid(_)));
        assert!(matches!(
            validation_error(GatewayError::OutcomeUnknown("trap".into())),
            PaymentError::ProviderUnavailable(_)
        ));
    }
}
