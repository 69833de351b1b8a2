//! The stream of payments a fault hits: one client task per customer posting
//! `POST /api/v1/payments` one after another, each with an Idempotency-Key of its own. Like a
//! real client, a request without an answer (connection refused or cut, 5xx, 409 in flight) is
//! sent again with the same key and body until it gets one; a 401 (its session gone with Redis)
//! logs in again first. A key still 409 after a few seconds (its request was cut off by a kill
//! and the key stays locked) is given up, unanswered, and the client goes on with a new one.
//! Every attempt is recorded with its time and status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinHandle;

use super::stack::{Payer, relogin};
use crate::served::Api;

/// One request sent: when it was answered (or failed), and its status (0: no HTTP answer).
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub at: Instant,
    pub status: u16,
    /// From sending to the answer (or the failure).
    pub took: Duration,
}

/// One idempotency key and what became of it.
#[derive(Debug, Clone)]
pub struct KeyOutcome {
    pub key: String,
    /// The last status (201, 202, 402: an answer; 0, 409, 5xx: none before the client gave up).
    pub status: u16,
    pub payment_id: Option<String>,
    /// The payment's status in the answer's body (`succeeded`, or `pending` when its outcome
    /// is left to reconciliation).
    pub payment_status: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// How long a client retries a key answered 409 (in flight) in a row before it gives it up.
const IN_FLIGHT_PATIENCE: Duration = Duration::from_secs(3);

pub struct PaymentStream {
    /// Set when the stream should stop: no new keys; the key in hand is retried until then.
    give_up_at: Arc<Mutex<Option<Instant>>>,
    tasks: Vec<JoinHandle<Vec<KeyOutcome>>>,
}

impl PaymentStream {
    pub fn start(api: &Api, payers: &[Payer]) -> Self {
        let give_up_at = Arc::new(Mutex::new(None));
        let tasks =
            payers.iter().map(|payer| tokio::spawn(client(api.clone(), payer.clone(), give_up_at.clone()))).collect();
        Self { give_up_at, tasks }
    }

    /// Stops starting new keys; a key still without an answer is retried for at most `grace`.
    pub async fn finish(self, grace: Duration) -> Vec<KeyOutcome> {
        *self.give_up_at.lock().expect("lock") = Some(Instant::now() + grace);
        let mut all = Vec::new();
        for task in self.tasks {
            all.extend(task.await.expect("a payment client panicked"));
        }
        all
    }
}

async fn client(api: Api, payer: Payer, give_up_at: Arc<Mutex<Option<Instant>>>) -> Vec<KeyOutcome> {
    let mut token = payer.customer.token.clone();
    let mut outcomes = Vec::new();
    let stopping = || *give_up_at.lock().expect("lock");
    while stopping().is_none() {
        let key = format!("faults-{}", uuid::Uuid::new_v4().simple());
        let body = json!({"lease_id": payer.customer.lease_id, "amount": 1000, "currency": "EUR",
                          "provider": payer.provider, "payment_method": payer.payment_method});
        let mut outcome =
            KeyOutcome { key: key.clone(), status: 0, payment_id: None, payment_status: None, attempts: Vec::new() };
        let mut in_flight_since: Option<Instant> = None;
        loop {
            let sent = Instant::now();
            let answer = api.send("POST", "/api/v1/payments", &token, Some(body.clone()), Some(&key)).await;
            let at = Instant::now();
            let status = answer.as_ref().map_or(0, |(s, _)| *s);
            outcome.attempts.push(Attempt { at, status, took: at - sent });
            outcome.status = status;
            if let Ok((201 | 202 | 402, body)) = &answer {
                outcome.payment_id = body["id"].as_str().map(str::to_owned);
                outcome.payment_status = body["status"].as_str().map(str::to_owned);
                break;
            }
            if matches!(status, 400 | 403 | 404 | 422) {
                break; // a refusal: nothing to retry (the audit reports it)
            }
            if status == 409 {
                let since = *in_flight_since.get_or_insert(at);
                if at - since > IN_FLIGHT_PATIENCE {
                    break; // its request was cut off (kill -9): the key stays locked; go on with another
                }
            } else {
                in_flight_since = None;
            }
            if status == 401
                && let Ok(fresh) = relogin(&api, &payer).await
            {
                token = fresh;
            }
            if stopping().is_some_and(|deadline| Instant::now() > deadline) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(if status == 0 { 50 } else { 20 })).await;
        }
        outcomes.push(outcome);
    }
    outcomes
}

/// Every attempt of every key, in the order answered.
pub fn attempts(outcomes: &[KeyOutcome]) -> Vec<Attempt> {
    let mut all: Vec<Attempt> = outcomes.iter().flat_map(|o| o.attempts.iter().copied()).collect();
    all.sort_by_key(|a| a.at);
    all
}

/// How long after `since` the first payment was answered 201 (`None`: none was).
pub fn first_success_after(outcomes: &[KeyOutcome], since: Instant) -> Option<Duration> {
    attempts(outcomes).into_iter().find(|a| a.status == 201 && a.at >= since).map(|a| a.at - since)
}

/// The slowest attempt: its status and how long it took.
pub fn slowest(outcomes: &[KeyOutcome]) -> Option<(u16, Duration)> {
    attempts(outcomes).into_iter().max_by_key(|a| a.took).map(|a| (a.status, a.took))
}
