//! Reconciliation of payments and refunds whose outcome is unknown, and what operators do
//! with the ones it gave up on.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{MAX_PAGE, PaymentError, PaymentService, ReconcileReport};
use crate::record::Payment;
use crate::status::PaymentStatus;
use lessor_leases::Viewer;

impl PaymentService {
    /// One reconciliation pass at `now`: every pending payment and refund whose
    /// `reconcile_after` has passed (at most `limit` of each) is asked about again with the same
    /// request. Run it periodically (every minute or so) on any number of replicas: each call
    /// is claimed first, so one payment is asked about by one worker at a time.
    #[tracing::instrument(name = "payments.reconcile", skip(self))]
    pub async fn reconcile_due(&self, now: DateTime<Utc>, limit: u32) -> Result<ReconcileReport, PaymentError> {
        let mut report = ReconcileReport::default();
        for (id, attempts) in self.repo.due_payments(now.timestamp_millis(), limit).await? {
            let attempts = u32::try_from(attempts).unwrap_or(0);
            let Some(payment) = self.process(id, attempts, Some(now)).await? else { continue };
            report.payments_checked += 1;
            if payment.status != PaymentStatus::Pending {
                report.payments_resolved += 1;
            } else if payment.needs_attention {
                report.payments_flagged += 1;
            }
        }
        for (id, attempts) in self.repo.due_refunds(now.timestamp_millis(), limit).await? {
            let attempts = u32::try_from(attempts).unwrap_or(0);
            let Some(refund) = self.call_refund(id, attempts, Some(now)).await? else { continue };
            report.refunds_checked += 1;
            if refund.status != crate::RefundStatus::Pending || refund.reconcile_after.is_none() {
                report.refunds_resolved += 1;
            } else if refund.needs_attention {
                report.refunds_flagged += 1;
            }
        }
        Ok(report)
    }

    /// Payments flagged for an operator (staff only), oldest first: reconciliation gave up, a
    /// provider's answer or webhook amount contradicted the record, or a dispute was opened.
    pub async fn needing_attention(&self, viewer: Viewer, limit: u32) -> Result<Vec<Payment>, PaymentError> {
        if !viewer.is_staff {
            return Err(PaymentError::Forbidden);
        }
        Ok(self.repo.needing_attention(limit.clamp(1, MAX_PAGE)).await?)
    }

    /// Puts a flagged payment back into reconciliation, due now (staff only); `false` when
    /// it was not flagged.
    pub async fn retry_reconciliation(&self, viewer: Viewer, id: Uuid) -> Result<bool, PaymentError> {
        if !viewer.is_staff {
            return Err(PaymentError::Forbidden);
        }
        Ok(self.repo.requeue_payment(id, Utc::now().timestamp_millis()).await?)
    }

    /// Clears the operator flag of a payment that is not pending (a dispute or contradiction
    /// dealt with) (staff only); `false` when it was not flagged. Pending payments go back to
    /// reconciliation with [`Self::retry_reconciliation`] instead.
    pub async fn clear_attention(&self, viewer: Viewer, id: Uuid) -> Result<bool, PaymentError> {
        if !viewer.is_staff {
            return Err(PaymentError::Forbidden);
        }
        Ok(self.repo.clear_flag(id).await?)
    }
}
