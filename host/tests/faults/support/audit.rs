//! After a fault: what the clients were told, what the database holds, what the Stripe peer
//! charged, what the event stream holds and what each consumer group applied, compared.
//!
//! - **lost**: a payment answered 201 that the database does not have, or that the answer
//!   called `succeeded` and is not `succeeded` in the database or has no succeeded charge at the
//!   peer; a payment not final once reconciliation ran. Payments a fault left `pending` for
//!   reconciliation (due a minute later) are brought forward (`reconcile_after` = 0) and the
//!   host's reconciliation, every second in these tests, asks the provider again with the same
//!   key; a direct debit may stay `processing` (accepted by the bank, settled later).
//! - **doubled**: a second charge at the peer for one payment, charges for one payment under
//!   more than one idempotency key, a charge for a payment the database does not have, a
//!   payment no idempotency key created.
//! - **events lost**: a final payment without its event in the outbox, an outbox row never
//!   published, an event some consumer group never applied.
//! - **events doubled**: a payment with two events, an event id under two entries of the
//!   stream, an event a group applied twice (two effect rows, `consumers.rs`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use lessor_store::redis;
use serde_json::Value;
use sqlx::{PgPool, Row as _};
use uuid::Uuid;

use super::consumers::Consumers;
use super::load::KeyOutcome;
use super::report::Row;
use super::stack::Stack;

pub struct Findings {
    pub row: Row,
    /// Why each count is not zero, for the failure message.
    pub notes: Vec<String>,
}

/// Waits until the outbox is published and the groups caught up, then compares everything.
/// `forgotten`: payments a restored backup rolled back on purpose (their charges are not counted).
pub async fn audit(
    fault: &str,
    db_url: &str,
    redis_url: &str,
    stack: &Stack,
    outcomes: &[KeyOutcome],
    forgotten: &[KeyOutcome],
    consumers: &Consumers,
) -> Findings {
    let pool = PgPool::connect(db_url).await.expect("the audit connects to the host's database");
    let started = std::time::Instant::now();
    let reconciled = reconcile_now(&pool, Duration::from_secs(30)).await;
    println!("{fault}: {reconciled} payments left to reconciliation were reconciled (brought forward)");
    wait_published(&pool, Duration::from_secs(40)).await;
    let published = started.elapsed();
    let outbox = outbox(&pool).await;
    let expected: Vec<Uuid> = outbox.iter().map(|e| e.event_id).collect();
    consumers.wait_for(&expected, Duration::from_secs(20)).await;
    println!("{fault}: slowest request (status, time) {:?}", super::load::slowest(outcomes));
    println!(
        "{fault}: outbox published {published:?} and every group caught up {:?} after the stream ended",
        started.elapsed()
    );

    let mut row = Row::new(fault);
    row.payments_accepted = outcomes.iter().filter(|o| o.status == 201).count();
    let mut notes = Vec::new();
    let payments = payments(&pool).await;
    let keyed: HashSet<Uuid> =
        sqlx::query_scalar("SELECT resource_id FROM idempotency_keys WHERE resource_id IS NOT NULL")
            .fetch_all(&pool)
            .await
            .expect("idempotency keys")
            .into_iter()
            .collect();

    // Charges at the peers (Stripe's PaymentIntents, the bank's collections), by payment id,
    // and the provider idempotency keys each payment was sent under.
    let forgotten: HashSet<&str> = forgotten.iter().filter_map(|o| o.payment_id.as_deref()).collect();
    let mut charges: HashMap<String, Vec<String>> = HashMap::new();
    let mut keys_per_payment: HashMap<String, HashSet<String>> = HashMap::new();
    let intents = stack.stripe.payment_intents().into_iter();
    let stripe_charges = intents.map(|i| (i.metadata.get("payment_id").cloned().unwrap_or_default(), i.status));
    let collections = stack.bank.collections().into_iter();
    let bank_charges = collections.map(|c| (payment_of_end_to_end_id(&c.end_to_end_id), c.status));
    for (payment, status) in stripe_charges.chain(bank_charges) {
        if !forgotten.contains(payment.as_str()) {
            charges.entry(payment).or_default().push(status);
        }
    }
    let (cards, debits) = (stack.stripe.payment_intents().len(), stack.bank.collections().len());
    println!("{fault}: {cards} PaymentIntents at the Stripe peer, {debits} collections at the bank peer");
    assert!(cards > 0 && debits > 0, "{fault}: the stream must pay through both providers");
    for request in stack.stripe.requests().iter().filter(|r| r.method == "POST" && r.path == "/v1/payment_intents") {
        let payment = request.form().into_iter().find(|(k, _)| k == "metadata[payment_id]").map(|(_, v)| v);
        let key = request.header("idempotency-key").unwrap_or("").to_owned();
        keys_per_payment.entry(payment.unwrap_or_default()).or_default().insert(key);
    }
    for request in stack.bank.requests().iter().filter(|r| r.method == "POST" && r.path == "/v1/collections") {
        let payment = payment_of_end_to_end_id(request.json()["end_to_end_id"].as_str().unwrap_or(""));
        let key = request.header("idempotency-key").unwrap_or("").to_owned();
        keys_per_payment.entry(payment).or_default().insert(key);
    }

    // Answered 201: the payment exists; one the answer called succeeded is succeeded and charged.
    for o in outcomes.iter().filter(|o| o.status == 201) {
        let id = o.payment_id.as_deref().and_then(|id| id.parse::<Uuid>().ok());
        let stored = id.and_then(|id| payments.get(&id)).map(|p| p.status.as_str());
        let charged = o.payment_id.as_ref().and_then(|id| charges.get(id));
        let told_succeeded = o.payment_status.as_deref() == Some("succeeded");
        let ok = stored.is_some()
            && (!told_succeeded
                || (stored == Some("succeeded") && charged.is_some_and(|c| c.iter().any(|s| s == "succeeded"))));
        if !ok {
            row.lost += 1;
            notes.push(format!(
                "key {} answered 201 {:?}: stored {stored:?}, charges {charged:?}",
                o.key, o.payment_status
            ));
        }
    }
    for (id, p) in &payments {
        let final_state = matches!(p.status.as_str(), "succeeded" | "failed");
        // A direct debit is `processing` until the bank reports it settled.
        let settling = p.status == "processing"
            && p.provider == "bank"
            && charges.get(&id.to_string()).is_some_and(|c| c.iter().any(|s| s == "accepted"));
        if !final_state && !settling {
            row.lost += 1;
            notes.push(format!("payment {id} is {} after reconciliation", p.status));
        }
        if p.status == "succeeded" && !charges.get(&id.to_string()).is_some_and(|c| c.iter().any(|s| s == "succeeded"))
        {
            row.lost += 1;
            notes.push(format!("payment {id} succeeded without a charge at the peer"));
        }
        if !keyed.contains(id) {
            row.doubled += 1;
            notes.push(format!("payment {id} was created by no idempotency key"));
        }
    }
    for (payment, list) in &charges {
        if list.len() > 1 {
            row.doubled += list.len() - 1;
            notes.push(format!("payment {payment} charged {} times", list.len()));
        }
        if payment.parse::<Uuid>().ok().is_none_or(|id| !payments.contains_key(&id)) {
            row.doubled += list.len();
            notes.push(format!("a charge for payment {payment:?}, which the database does not have"));
        }
    }
    for (payment, keys) in &keys_per_payment {
        if keys.len() > 1 {
            row.doubled += 1;
            notes.push(format!("payment {payment} sent to the peer under {} idempotency keys", keys.len()));
        }
    }

    // Events.
    let mut per_payment: HashMap<Uuid, usize> = HashMap::new();
    for e in &outbox {
        if let Some(p) = e.payment_id {
            *per_payment.entry(p).or_default() += 1;
        }
        if !e.published {
            row.events_lost += 1;
            notes.push(format!("event {} never published", e.event_id));
        }
    }
    for (id, p) in &payments {
        let events = per_payment.get(id).copied().unwrap_or(0);
        let want = usize::from(matches!(p.status.as_str(), "succeeded" | "failed"));
        if events < want {
            row.events_lost += 1;
            notes.push(format!("payment {id} is {} without its event", p.status));
        }
        if events > want {
            row.events_doubled += events - want;
            notes.push(format!("payment {id} ({}) has {events} events", p.status));
        }
    }
    for (event, entries) in stream_entries(redis_url, &stack.namespace).await {
        if entries > 1 {
            row.events_doubled += entries - 1;
            notes.push(format!("event {event} is in the stream {entries} times"));
        }
    }
    let applied = consumers.applied().await;
    for group in &consumers.groups {
        let none = HashMap::new();
        let applied = applied.get(group).unwrap_or(&none);
        for id in &expected {
            match applied.get(id).copied().unwrap_or(0) {
                0 => {
                    row.events_lost += 1;
                    notes.push(format!("group {group} never applied event {id}"));
                }
                1 => {}
                n => {
                    row.events_doubled += n as usize - 1;
                    notes.push(format!("group {group} applied event {id} {n} times"));
                }
            }
        }
    }
    pool.close().await;
    Findings { row, notes }
}

struct Payment {
    status: String,
    provider: String,
}

async fn payments(pool: &PgPool) -> HashMap<Uuid, Payment> {
    sqlx::query("SELECT id, status, provider FROM payments")
        .fetch_all(pool)
        .await
        .expect("payments")
        .into_iter()
        .map(|r| {
            let p = Payment { status: r.get("status"), provider: r.get("provider") };
            (r.get("id"), p)
        })
        .collect()
}

pub struct OutboxEvent {
    pub event_id: Uuid,
    pub payment_id: Option<Uuid>,
    pub published: bool,
}

pub async fn outbox(pool: &PgPool) -> Vec<OutboxEvent> {
    sqlx::query("SELECT event_id, payload, published_at FROM event_outbox ORDER BY id")
        .fetch_all(pool)
        .await
        .expect("event_outbox")
        .into_iter()
        .map(|r| {
            let payload: Value = serde_json::from_str(r.get::<&str, _>("payload")).unwrap_or(Value::Null);
            OutboxEvent {
                event_id: r.get("event_id"),
                payment_id: payload["data"]["payment_id"].as_str().and_then(|p| p.parse().ok()),
                published: r.get::<Option<i64>, _>("published_at").is_some(),
            }
        })
        .collect()
}

/// Makes the reconciliation of payments left `pending` due now and waits (at most `timeout`)
/// until the host's reconciliation has resolved them; returns how many there were.
async fn reconcile_now(pool: &PgPool, timeout: Duration) -> u64 {
    let due = "UPDATE payments SET reconcile_after = 0 WHERE status = 'pending' AND reconcile_after IS NOT NULL";
    let brought = sqlx::query(due).execute(pool).await.expect("bring reconciliation forward").rows_affected();
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM payments WHERE status = 'pending'")
            .fetch_one(pool)
            .await
            .unwrap_or(i64::MAX);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    brought
}

/// Waits until no outbox row is left unpublished (or `timeout`: the audit then counts them).
pub async fn wait_published(pool: &PgPool, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await
            .unwrap_or(i64::MAX);
        if left == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How many entries of `<namespace>:payments` carry each event id.
pub async fn stream_entries(redis_url: &str, namespace: &str) -> HashMap<String, usize> {
    let client = redis::Client::open(redis_url).expect("Redis URL");
    let mut conn = client.get_multiplexed_async_connection().await.expect("connect to Redis");
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{namespace}:payments"))
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .expect("XRANGE");
    let mut counts = HashMap::new();
    for entry in reply.ids {
        let event: Option<String> = entry.get("event");
        let id = event
            .and_then(|e| serde_json::from_str::<Value>(&e).ok())
            .and_then(|v| v["id"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("undecodable entry {}", entry.id));
        *counts.entry(id).or_default() += 1;
    }
    counts
}

impl Findings {
    /// Writes the row to `target/faults/results.jsonl`, then fails the test on anything lost or
    /// doubled, or on a stream in which nothing was accepted (`log`: the host's log tail).
    pub fn write_and_check(self, log: &str) -> Row {
        self.row.write();
        let r = &self.row;
        let notes = self.notes.iter().take(20).cloned().collect::<Vec<_>>().join("\n  ");
        assert!(r.payments_accepted > 0, "{}: no payment was accepted\nhost log:\n{log}", r.fault);
        assert!(
            r.lost == 0 && r.doubled == 0 && r.events_lost == 0 && r.events_doubled == 0,
            "{}: lost {}, doubled {}, events lost {}, doubled {}:\n  {notes}\nhost log:\n{log}",
            r.fault,
            r.lost,
            r.doubled,
            r.events_lost,
            r.events_doubled
        );
        self.row
    }
}

/// The payment id (hyphenated) of a bank collection: the plugin sends the UUID without hyphens.
fn payment_of_end_to_end_id(end_to_end_id: &str) -> String {
    end_to_end_id.parse::<Uuid>().map_or_else(|_| end_to_end_id.to_owned(), |id| id.to_string())
}
