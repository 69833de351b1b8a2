//! Creating a payment under an `Idempotency-Key`, as `POST /payments` does.
//!
//! The common case (a key not seen before, a lease and installment that fit, a provider that
//! accepts the request at `validate`, and no webhook between `process` and its outcome) takes
//! two writes, see `repo::keyed`: the key with the payment (its first `process` call claimed)
//! before the provider is charged, and the outcome with its outbox event, the installment and
//! the key's stored answer after. Anything else takes the general path,
//! [`IdempotencyStore::begin`] → [`PaymentService::create`] → [`IdempotencyStore::complete`]
//! (or `release`), which replays, refuses and explains. A request gets the same answer on
//! either path; only the number of round trips differs.

use std::time::{Duration, Instant};

use chrono::Utc;
use lessor_leases::{Viewer, now_micros};
use uuid::Uuid;

use super::{Conflict, PaymentError, PaymentService, millis, outcome_transition, payment_request, refusal_transition};
use crate::idempotency::{Begin, Claim, Fingerprint, IdempotencyError, IdempotencyKey, IdempotencyStore, Scope};
use crate::input::NewPayment;
use crate::record::Payment;
use crate::repo::{Finished, KeyAnswer, KeyClaim, NewPaymentRow, PaymentWork, Transition, event_for, moved};
use crate::status::PaymentStatus;

/// The HTTP status stored (and replayed) for a payment created under a key.
pub const CREATED: u16 = 201;

/// A payment request's idempotency key, scope and fingerprint, and the store that keeps them.
#[derive(Clone, Copy)]
pub struct KeyedRequest<'a> {
    pub keys: &'a IdempotencyStore,
    pub scope: &'a Scope,
    pub key: &'a IdempotencyKey,
    pub fingerprint: &'a Fingerprint,
}

/// What [`PaymentService::create_keyed`] answers.
#[derive(Debug)]
pub enum KeyedAnswer {
    /// The request ran now: `status` (201) and `body` are stored under the key for replays.
    Ran { payment: Box<Payment>, status: u16, body: String },
    /// The request ran before: answer with these.
    Replay { status: u16, body: String },
    /// The same request is running now (a 409).
    InFlight,
    /// The key was used with another request (a 422).
    Mismatch,
}

impl From<IdempotencyError> for PaymentError {
    fn from(e: IdempotencyError) -> Self {
        match e {
            IdempotencyError::LostClaim => Conflict::KeyTakenOver.into(),
            IdempotencyError::Store(e) => PaymentError::Store(e.to_string()),
        }
    }
}

impl PaymentService {
    /// Takes a payment once per idempotency key; `render` makes the body stored for replays
    /// from the payment as created. Errors mean that nothing was created and the key is free
    /// again (as [`Self::create`]).
    #[tracing::instrument(name = "payments.create", skip_all, fields(lease_id = %new.lease_id, provider = %new.provider, payment_id))]
    pub async fn create_keyed<R>(
        &self,
        viewer: Viewer,
        new: &NewPayment,
        request: KeyedRequest<'_>,
        render: R,
    ) -> Result<KeyedAnswer, PaymentError>
    where
        R: Fn(&Payment) -> Result<String, PaymentError> + Send + Sync,
    {
        if let Some(answer) = self.create_express(viewer, new, request, &render).await? {
            return Ok(answer);
        }
        match request.keys.begin(request.scope, request.key, request.fingerprint).await? {
            Begin::Replay { status, body } => Ok(KeyedAnswer::Replay { status, body }),
            Begin::InFlight => Ok(KeyedAnswer::InFlight),
            Begin::Mismatch => Ok(KeyedAnswer::Mismatch),
            Begin::New(claim) => match self.create(viewer, new, Some(&claim)).await {
                Ok(payment) => answered(request.keys, &claim, payment, &render).await,
                Err(e) => {
                    release_after_failure(request.keys, &claim).await;
                    Err(e)
                }
            },
        }
    }

    /// The common case in two writes; `None` (nothing written) when it does not apply.
    async fn create_express<R>(
        &self,
        viewer: Viewer,
        new: &NewPayment,
        request: KeyedRequest<'_>,
        render: &R,
    ) -> Result<Option<KeyedAnswer>, PaymentError>
    where
        R: Fn(&Payment) -> Result<String, PaymentError> + Send + Sync,
    {
        let payment_id = Uuid::new_v4();
        let provider_key = format!("lessor-pay-{payment_id}");
        let method = new.payment_method.wire();
        let provider = new.provider.as_str();
        let call = payment_request(new, payment_id, &provider_key, &method);
        if self.check_capabilities(provider, &call).is_err() || self.gateway.validate(provider, &call).await.is_err() {
            // The general path validates again and says why.
            return Ok(None);
        }
        let now = Utc::now();
        let (claim, times) = request.keys.fresh_claim(request.scope, request.key, now);
        let row = NewPaymentRow {
            id: payment_id,
            lease_id: new.lease_id,
            installment_id: new.installment_id,
            owner_id: viewer.user_id,
            amount: new.amount,
            currency: new.currency.code(),
            provider,
            payment_method: &method,
            idempotency_key: &provider_key,
            reconcile_after: now.timestamp_millis().saturating_add(millis(self.policy.delay(1))),
        };
        let key = KeyClaim { claim: &claim, fingerprint: request.fingerprint.as_str(), times };
        let Some(work) = self.repo.open_keyed(&row, viewer, &key).await? else { return Ok(None) };
        tracing::Span::current().record("payment_id", tracing::field::display(payment_id));
        tracing::info!(%payment_id, "payment written, pending");
        let done = self.process_opened(&work, &claim, request.keys, render).await;
        if done.is_err() {
            // The payment stays as opened (pending, its reconciliation due); the key is unlocked
            // so that a retry gets that payment instead of 409 for the rest of the lock.
            release_after_failure(request.keys, &claim).await;
        }
        done.map(Some)
    }

    /// `process` for a payment `open_keyed` wrote, its outcome, and the key's answer.
    async fn process_opened<R>(
        &self,
        work: &PaymentWork,
        claim: &Claim,
        keys: &IdempotencyStore,
        render: &R,
    ) -> Result<KeyedAnswer, PaymentError>
    where
        R: Fn(&Payment) -> Result<String, PaymentError> + Send + Sync,
    {
        let payment = match self.gateway.process(&work.payment.provider, &work.request()).await {
            Err(e) if e.outcome_unknown() => self.settle(work, 1, Err(e)).await?,
            result => {
                let change = match result {
                    Ok(outcome) => outcome_transition(outcome),
                    Err(e) => refusal_transition(&e),
                };
                if let Some(answer) = self.finish_express(work, &change, claim, render).await? {
                    return Ok(answer);
                }
                self.apply_outcome(work.payment.id, &change).await?
            }
        };
        answered(keys, claim, payment, render).await
    }

    /// The outcome, its event and the key's answer in one write; `None` when the payment is
    /// no longer as it was opened (the general path applies the outcome then).
    async fn finish_express<R>(
        &self,
        work: &PaymentWork,
        change: &Transition,
        claim: &Claim,
        render: &R,
    ) -> Result<Option<KeyedAnswer>, PaymentError>
    where
        R: Fn(&Payment) -> Result<String, PaymentError> + Send + Sync,
    {
        let Some(target) = change.target.filter(|t| PaymentStatus::Pending.can_transition_to(*t)) else {
            return Ok(None);
        };
        let next = moved(&work.payment, target, change, now_micros());
        let body = render(&next)?;
        let event = event_for(&next);
        let answer = KeyAnswer { claim, status: CREATED, body: &body };
        let finished = self.repo.finish_keyed(&next, event.as_ref(), &answer).await?;
        if matches!(finished, Finished::Done | Finished::ClaimLost) {
            tracing::info!(payment_id = %next.id, from = %PaymentStatus::Pending, to = %next.status, "payment status changed");
            if event.is_some() {
                self.wake_relay();
            }
        }
        match finished {
            Finished::Done => Ok(Some(KeyedAnswer::Ran { payment: Box::new(next), status: CREATED, body })),
            Finished::ClaimLost => Err(Conflict::KeyTakenOver.into()),
            // Nothing written: the general path fails the payment as reused.
            Finished::NotPending | Finished::TransactionTaken => Ok(None),
        }
    }
}

/// Gives the key up after a request that failed (`IdempotencyStore::release`: forgotten when
/// nothing was created, else unlocked so a retry takes the payment over). When the database is
/// what failed, the release fails too and the key would stay locked for the whole lock timeout
/// (2 minutes: every retry 409 long after the database is back), so it is tried again in the
/// background, backing off to 1 s, until it goes through or the lock would have ended anyway.
async fn release_after_failure(keys: &IdempotencyStore, claim: &Claim) {
    let Err(error) = keys.release(claim).await else { return };
    tracing::warn!(%error, "could not release an idempotency key; retrying in the background");
    let (keys, claim) = (keys.clone(), claim.clone());
    let give_up = Instant::now() + keys.config().lock_timeout();
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(50);
        while Instant::now() < give_up {
            tokio::time::sleep(wait).await;
            match keys.release(&claim).await {
                Ok(released) => {
                    tracing::info!(?released, "idempotency key released after the failure");
                    return;
                }
                Err(_) => wait = (wait * 2).min(Duration::from_secs(1)),
            }
        }
    });
}

/// Stores the answer for `payment` under the claim.
async fn answered<R>(
    keys: &IdempotencyStore,
    claim: &Claim,
    payment: Payment,
    render: &R,
) -> Result<KeyedAnswer, PaymentError>
where
    R: Fn(&Payment) -> Result<String, PaymentError> + Send + Sync,
{
    let body = render(&payment)?;
    keys.complete(claim, CREATED, &body).await?;
    Ok(KeyedAnswer::Ran { payment: Box::new(payment), status: CREATED, body })
}
