//! Refunds: reserved against the payment before the provider is called, so concurrent
//! refunds never exceed what was captured.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Conflict, PaymentError, PaymentService, failure_message, millis};
use crate::gateway::{GatewayError, ProviderRefundStatus, RefundOutcome};
use crate::idempotency::Claim;
use crate::input::{NewRefund, ValidationError};
use crate::record::Refund;
use crate::repo::{NewRefundRow, RefundResolution, RefundWork, ReserveError};
use lessor_leases::Viewer;

impl PaymentService {
    /// Refunds (part of) a payment (staff only). The amount is reserved against the payment
    /// before the provider is called, inside one transaction, so concurrent refunds never
    /// exceed what was captured: one that would is refused with a field error on `amount`.
    /// Like `create`, once the refund row exists the result is `Ok(refund)` whatever the
    /// provider said (`pending` when its outcome is unknown: reconciliation asks again).
    #[tracing::instrument(name = "payments.refund", skip_all, fields(payment_id = %payment_id, refund_id))]
    pub async fn refund(
        &self,
        viewer: Viewer,
        payment_id: Uuid,
        new: &NewRefund,
        claim: Option<&Claim>,
    ) -> Result<Refund, PaymentError> {
        if !viewer.is_staff {
            return Err(PaymentError::Forbidden);
        }
        if let Some(id) = claim.and_then(Claim::recovered) {
            return self.repo.refund(id).await?.ok_or(PaymentError::NotFound);
        }
        self.check_refund_capabilities(payment_id, new).await?;
        let refund_id = Uuid::new_v4();
        tracing::Span::current().record("refund_id", tracing::field::display(refund_id));
        let key = crate::repo::refund_key(refund_id);
        let first_check = Utc::now().timestamp_millis().saturating_add(millis(self.policy.delay(1)));
        let row = NewRefundRow {
            id: refund_id,
            payment_id,
            amount: new.amount,
            reason: new.reason.as_deref(),
            idempotency_key: &key,
            reconcile_after: first_check,
        };
        let (refund, _) = self.repo.reserve_refund(&row, claim).await.map_err(|e| match e {
            ReserveError::NotFound => PaymentError::NotFound,
            ReserveError::NotRefundable(status) => Conflict::NotRefundable(status).into(),
            ReserveError::Exceeds { available } => ValidationError::single(
                "amount",
                format!("exceeds what can still be refunded ({available} minor units)"),
            )
            .into(),
            ReserveError::ClaimLost => Conflict::KeyTakenOver.into(),
            ReserveError::Repo(e) => PaymentError::from(e),
        })?;
        tracing::info!(amount = refund.amount, "refund reserved, pending");
        match self.call_refund(refund.id, refund.attempts, None).await? {
            Some(refund) => Ok(refund),
            None => self.repo.refund(refund_id).await?.ok_or(PaymentError::NotFound),
        }
    }

    /// The refunds of a payment visible to `viewer`, oldest first.
    pub async fn refunds(&self, viewer: Viewer, payment_id: Uuid) -> Result<Vec<Refund>, PaymentError> {
        self.get(viewer, payment_id).await?;
        Ok(self.repo.refunds_of(payment_id).await?)
    }

    /// A refund, or a partial one, the payment's provider does not declare is refused (422)
    /// before anything is reserved or sent.
    async fn check_refund_capabilities(&self, payment_id: Uuid, new: &NewRefund) -> Result<(), PaymentError> {
        let Some(payment) = self.repo.payment(payment_id).await? else { return Err(PaymentError::NotFound) };
        let Some(caps) = self.gateway.capabilities(&payment.provider) else { return Ok(()) };
        if !caps.refunds {
            let reason = format!("{} does not take refunds", payment.provider);
            return Err(ValidationError::single("amount", reason).into());
        }
        let partial = new.amount.is_some_and(|a| a < payment.amount) || payment.refunded_amount > 0;
        if partial && !caps.partial_refunds {
            let reason = format!(
                "{} takes only one refund of the whole payment ({} minor units)",
                payment.provider, payment.amount
            );
            return Err(ValidationError::single("amount", reason).into());
        }
        Ok(())
    }

    pub(crate) async fn call_refund(
        &self,
        id: Uuid,
        attempts_so_far: u32,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Refund>, PaymentError> {
        let attempt = attempts_so_far + 1;
        let now = due_at.unwrap_or_else(Utc::now);
        let next = now.timestamp_millis().saturating_add(millis(self.policy.delay(attempt)));
        let due_ms = due_at.map(|at| at.timestamp_millis());
        let Some(work) = self.repo.claim_refund_call(id, attempts_so_far, next, due_ms).await? else {
            return Ok(None);
        };
        let result = if attempts_so_far == 0 {
            self.gateway.refund(&work.payment.payment.provider, &work.request()).await
        } else {
            self.ask_refund_again(&work).await
        };
        self.settle_refund(&work, attempt, result).await.map(Some)
    }

    /// A pending refund asked about again (reconciliation): `retrieve_refund` first; `refund`
    /// again with the same key only when the provider has none or cannot say.
    async fn ask_refund_again(&self, work: &RefundWork) -> Result<RefundOutcome, GatewayError> {
        let (provider, request) = (&work.payment.payment.provider, work.request());
        let lookup = request.lookup(work.refund.provider_refund_id.clone());
        match self.gateway.retrieve_refund(provider, &lookup).await {
            Ok(Some(outcome)) => {
                tracing::info!(refund_id = %work.refund.id, "reconciled by retrieve-refund");
                Ok(outcome)
            }
            Ok(None) | Err(GatewayError::NotSupported) => self.gateway.refund(provider, &request).await,
            Err(e) => Err(e),
        }
    }

    async fn settle_refund(
        &self,
        work: &RefundWork,
        attempt: u32,
        result: Result<RefundOutcome, GatewayError>,
    ) -> Result<Refund, PaymentError> {
        let id = work.refund.id;
        let resolution = match result {
            Ok(outcome) => match outcome.status {
                ProviderRefundStatus::Succeeded => {
                    RefundResolution::Succeeded { provider_refund_id: Some(outcome.provider_refund_id) }
                }
                ProviderRefundStatus::Pending => {
                    RefundResolution::Accepted { provider_refund_id: outcome.provider_refund_id }
                }
                ProviderRefundStatus::Failed => RefundResolution::Failed {
                    code: "declined".to_owned(),
                    message: outcome.failure_reason,
                    provider_refund_id: Some(outcome.provider_refund_id),
                },
            },
            Err(e) if e.outcome_unknown() => {
                let give_up = attempt >= self.policy.max_attempts;
                self.repo.note_refund_unknown(id, &e.to_string(), give_up).await?;
                tracing::warn!(refund_id = %id, attempt, give_up, code = e.code(), "refund outcome unknown");
                return self.repo.refund(id).await?.ok_or(PaymentError::NotFound);
            }
            Err(e) => RefundResolution::Failed {
                code: e.code().to_owned(),
                message: Some(failure_message(&e)),
                provider_refund_id: None,
            },
        };
        match self.repo.resolve_refund(id, &resolution, None).await? {
            crate::repo::RefundApplied::Moved { refund, .. } => {
                tracing::info!(refund_id = %id, status = %refund.status, "refund answered");
                self.wake_relay();
                Ok(refund)
            }
            crate::repo::RefundApplied::Unchanged { refund, .. } => {
                // A webhook resolved it first: keep the provider's id, later events name it.
                let known = match &resolution {
                    RefundResolution::Succeeded { provider_refund_id: Some(known) }
                    | RefundResolution::Failed { provider_refund_id: Some(known), .. }
                    | RefundResolution::Accepted { provider_refund_id: known } => Some(known),
                    _ => None,
                };
                if let (Some(known), None) = (known, &refund.provider_refund_id) {
                    self.repo.note_provider_refund_id(refund.id, known).await?;
                }
                Ok(refund)
            }
            _ => Err(PaymentError::NotFound),
        }
    }
}
