//! The installment collection job: charges due installments of active leases through the
//! normal payment flow, with the lease's payment method.
//!
//! - **Which**: installments due on or before `today`, `due` (or `overdue` while attempts
//!   remain), of `active` leases that have a payment method, with no payment that is pending,
//!   processing, requiring action or succeeded (the partial unique index
//!   `payments_installment_open_idx` makes a second such payment impossible whatever races).
//! - **Once per attempt**: attempt *n* of an installment is the row `collection_attempts
//!   (installment_id, n)`, written in the transaction that writes its payment; a second run
//!   (concurrent or later) cannot write it again. The provider idempotency key is
//!   `lessor-collect-<installment id>-<n>`.
//! - **Retries**: an attempt failed when it was refused before a payment existed, or its
//!   payment ended `failed` or `returned`. Attempt *n+1* waits
//!   `retry_after_days[n-1]` days after attempt *n* (default 1, 3, 7). After the last attempt
//!   failed the installment is marked `overdue` and no longer collected automatically.
//! - An attempt whose provider could not be asked at all (`ProviderUnavailable` at
//!   validation) is not counted: the next run tries again.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use uuid::Uuid;

use crate::input::NewPayment;
use crate::method::{PaymentMethod, ProviderName};
use crate::repo::{AttemptMark, CandidateRow};
use crate::service::{Conflict, PaymentError, PaymentService};
use crate::status::PaymentStatus;

/// When failed collections are tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionPolicy {
    /// Days to wait after attempt n before attempt n+1; its length is the number of retries.
    pub retry_after_days: Vec<u32>,
    /// Installments looked at per run.
    pub batch_size: u32,
}

impl Default for CollectionPolicy {
    /// Retries after 1, 3 and 7 days (4 attempts in all); 100 installments per run.
    fn default() -> Self {
        Self { retry_after_days: vec![1, 3, 7], batch_size: 100 }
    }
}

impl CollectionPolicy {
    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.retry_after_days.len()).unwrap_or(i32::MAX - 1) + 1
    }
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectionReport {
    /// Payments started (or refused by the provider at validation) in this run.
    pub attempted: u32,
    pub succeeded: u32,
    /// Started but not final yet: processing, requiring action, or outcome unknown.
    pub pending: u32,
    pub failed: u32,
    /// Not due for a retry yet, taken by another run, or the provider could not be asked.
    pub skipped: u32,
    pub marked_overdue: u32,
    /// Installments that could not be handled because of an error (logged).
    pub errors: u32,
}

/// Collects due installments; run `run_once` daily (or more often) on any replica.
pub struct CollectionJob {
    payments: Arc<PaymentService>,
    policy: CollectionPolicy,
}

enum Attempted {
    Payment(PaymentStatus),
    Refused,
    Skipped,
}

impl CollectionJob {
    pub fn new(payments: Arc<PaymentService>, policy: CollectionPolicy) -> Self {
        Self { payments, policy }
    }

    pub fn policy(&self) -> &CollectionPolicy {
        &self.policy
    }

    /// One pass over the installments due on or before `today`.
    #[tracing::instrument(name = "payments.collect", skip(self))]
    pub async fn run_once(&self, today: NaiveDate) -> Result<CollectionReport, PaymentError> {
        let repo = &self.payments.repo;
        let mut report = CollectionReport::default();
        let max = self.policy.max_attempts();
        for candidate in repo.collection_candidates(today, self.policy.batch_size).await? {
            let attempts = repo.collection_attempts(candidate.id).await?;
            let attempt = match attempts.last() {
                None => 1,
                Some(last) if !last.failed() => {
                    report.skipped += 1;
                    continue;
                }
                Some(last) if last.attempt >= max => {
                    if repo.mark_overdue(candidate.id).await? {
                        tracing::info!(installment_id = %candidate.id, "collection attempts exhausted; installment overdue");
                        report.marked_overdue += 1;
                    }
                    continue;
                }
                Some(last) => {
                    let wait = usize::try_from(last.attempt - 1)
                        .ok()
                        .and_then(|i| self.policy.retry_after_days.get(i))
                        .copied()
                        .unwrap_or(0);
                    let next_on = last.attempted_on.checked_add_days(Days::new(u64::from(wait)));
                    if next_on.is_none_or(|next_on| today < next_on) {
                        report.skipped += 1;
                        continue;
                    }
                    last.attempt + 1
                }
            };
            let outcome = match self.collect(&candidate, attempt, today).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::error!(installment_id = %candidate.id, error = %e, "collection failed");
                    report.errors += 1;
                    continue;
                }
            };
            let failed = match outcome {
                Attempted::Skipped => {
                    report.skipped += 1;
                    continue;
                }
                Attempted::Refused => {
                    report.failed += 1;
                    true
                }
                Attempted::Payment(PaymentStatus::Succeeded) => {
                    report.succeeded += 1;
                    false
                }
                Attempted::Payment(PaymentStatus::Failed) => {
                    report.failed += 1;
                    true
                }
                Attempted::Payment(_) => {
                    report.pending += 1;
                    false
                }
            };
            report.attempted += 1;
            if failed && attempt >= max && repo.mark_overdue(candidate.id).await? {
                tracing::info!(installment_id = %candidate.id, "last collection attempt failed; installment overdue");
                report.marked_overdue += 1;
            }
        }
        Ok(report)
    }

    async fn collect(&self, c: &CandidateRow, attempt: i32, today: NaiveDate) -> Result<Attempted, PaymentError> {
        let store = |what: &str, e: &dyn std::fmt::Display| PaymentError::Store(format!("stored {what}: {e}"));
        let new = NewPayment {
            lease_id: c.lease_id,
            installment_id: Some(c.id),
            amount: c.amount,
            currency: c.currency.parse().map_err(|e| store("currency", &e))?,
            provider: ProviderName::parse(&c.provider).map_err(|e| store("provider", &e))?,
            payment_method: PaymentMethod::from_wire(&c.method),
        };
        let key = format!("lessor-collect-{}-{attempt}", c.id);
        let mark = AttemptMark { installment_id: c.id, attempt, attempted_on: today };
        let result = self.payments.start(&new, c.owner_id, Uuid::new_v4(), &key, None, Some(&mark)).await;
        match result {
            Ok(payment) => {
                tracing::info!(installment_id = %c.id, attempt, payment_id = %payment.id, status = %payment.status, "installment collection attempted");
                Ok(Attempted::Payment(payment.status))
            }
            Err(PaymentError::Conflict(Conflict::InstallmentBusy | Conflict::InstallmentPaid)) => {
                Ok(Attempted::Skipped)
            }
            Err(PaymentError::ProviderUnavailable(message)) => {
                tracing::warn!(installment_id = %c.id, %message, "provider unavailable; collection tried again next run");
                Ok(Attempted::Skipped)
            }
            Err(PaymentError::Invalid(error)) => {
                tracing::warn!(installment_id = %c.id, attempt, %error, "the provider refused the lease's payment method");
                if self.payments.repo.record_refused_attempt(c.id, attempt, today, "invalid-request").await? {
                    Ok(Attempted::Refused)
                } else {
                    Ok(Attempted::Skipped)
                }
            }
            Err(other) => Err(other),
        }
    }
}
