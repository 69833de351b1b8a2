//! The consumer side: one [`EventBus`] trait, two engines ([`crate::RedisStreamBus`],
//! [`crate::InProcessBus`]), and [`run_consumer`], the loop a worker runs.
//!
//! Delivery is at least once: an event is acknowledged only after its handler succeeded,
//! and an event whose consumer died before acknowledging is delivered again (to another
//! consumer of the group once `claim_idle` passed). Each group records the events it handled
//! in `event_handled` and skips those on redelivery, so a handler runs once per event and
//! group unless a consumer dies between the handler's success and that record; handlers that
//! need strict exactly-once effects mark the event in their own transaction
//! ([`crate::mark_handled`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lessor_store::Db;

use crate::{Event, backoff, handled};

/// What a consumer group does with each event.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// `Ok` acknowledges the event; an error leaves it to be delivered again later. Events
    /// of types the handler does not care about should simply return `Ok(())`.
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

/// A handler failure: the event is retried later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(Box<dyn std::error::Error + Send + Sync>);

impl HandlerError {
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(cause.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("redis: {0}")]
    Redis(#[from] lessor_store::redis::RedisError),
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
}

/// Where a new consumer group starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// Everything the stream still holds.
    #[default]
    Beginning,
    /// Only events published after the group was created.
    Latest,
}

/// One consumer of a consumer group.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub stream: String,
    /// Every group gets every event; e.g. `chain-worker`, `search-indexer`.
    pub group: String,
    /// This consumer's name within the group; unique per process.
    pub consumer: String,
    /// Events read per round.
    pub batch: usize,
    /// How long a read waits for new events.
    pub block: Duration,
    /// Events left unacknowledged this long are taken over from the consumer that had them
    /// (on Redis; on the in-process bus, the group's lease lasts this long). Keep it well above
    /// the slowest handler call and above `block`: a handler still running after it may be
    /// run a second time by another consumer.
    pub claim_idle: Duration,
    pub start: StartFrom,
}

impl Subscription {
    pub fn new(stream: &str, group: &str) -> Self {
        Self {
            stream: stream.to_owned(),
            group: group.to_owned(),
            consumer: format!("consumer-{}", uuid::Uuid::new_v4().simple()),
            batch: 100,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(30),
            start: StartFrom::Beginning,
        }
    }
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    /// Events whose handler succeeded.
    pub handled: usize,
    /// Events the group had handled before, acknowledged without running the handler.
    pub duplicates: usize,
    /// Entries that are not an event this reader understands (logged, then acknowledged).
    pub undecodable: usize,
    /// Events whose handler failed (left for a later delivery).
    pub failed: usize,
    /// Of all these, entries taken over from another consumer (or a previous life of this one).
    pub claimed: usize,
}

impl Round {
    pub fn delivered(&self) -> usize {
        self.handled + self.duplicates + self.undecodable + self.failed
    }
}

/// A message bus that hands every event of a stream to every consumer group.
pub trait EventBus: Send + Sync {
    /// `redis` or `in-process`.
    fn engine(&self) -> &'static str;
    /// A consumer; nothing is connected until its first round.
    fn subscribe(&self, subscription: Subscription) -> Box<dyn EventConsumer>;
}

/// One consumer of a group. Dropping it mid-round is a crash: what it had not acknowledged
/// is delivered again.
#[async_trait]
pub trait EventConsumer: Send {
    fn subscription(&self) -> &Subscription;
    /// One round: takes over stale events, reads new ones (waiting up to `block`), hands each
    /// to `handler`, acknowledges those handled.
    async fn poll(&mut self, handler: &dyn EventHandler) -> Result<Round, BusError>;
    /// Lets other consumers of the group take over at once (when shutting down).
    async fn close(&mut self) {}
}

/// Runs rounds until `stop` resolves, backing off while rounds fail (Redis down, a handler
/// failing). `observe` sees every round.
pub async fn run_consumer(
    mut consumer: Box<dyn EventConsumer>,
    handler: Arc<dyn EventHandler>,
    observe: impl Fn(&Round) + Send,
    stop: impl Future<Output = ()> + Send,
) {
    const MIN_BACKOFF: Duration = Duration::from_millis(200);
    let max_backoff = consumer.subscription().claim_idle.clamp(MIN_BACKOFF, Duration::from_secs(30));
    tokio::pin!(stop);
    let mut failures = 0u32;
    loop {
        let result = tokio::select! {
            () = &mut stop => break,
            result = consumer.poll(&*handler) => result,
        };
        match result {
            Ok(round) => {
                observe(&round);
                if round.failed == 0 {
                    failures = 0;
                    continue;
                }
                failures += 1;
            }
            Err(e) => {
                failures += 1;
                let s = consumer.subscription();
                tracing::warn!(stream = %s.stream, group = %s.group, consumer = %s.consumer, error = %e, failures, "event consumer round failed");
            }
        }
        tokio::select! {
            () = &mut stop => break,
            () = tokio::time::sleep(backoff(failures, MIN_BACKOFF, max_backoff)) => {}
        }
    }
    consumer.close().await;
}

/// How one entry went.
pub(crate) enum Outcome {
    Handled,
    Duplicate,
    Undecodable,
    Failed,
}

impl Outcome {
    /// Whether the entry may be acknowledged.
    pub(crate) fn settled(&self) -> bool {
        !matches!(self, Self::Failed)
    }

    pub(crate) fn count(&self, round: &mut Round) {
        match self {
            Self::Handled => round.handled += 1,
            Self::Duplicate => round.duplicates += 1,
            Self::Undecodable => round.undecodable += 1,
            Self::Failed => round.failed += 1,
        }
    }
}

/// Decodes one entry, skips it if the group handled it before, runs the handler and records
/// success. `entry` names the entry in logs.
#[tracing::instrument(name = "events.deliver", skip(db, payload, handler))]
pub(crate) async fn deliver(
    db: &Db,
    group: &str,
    entry: &str,
    payload: Option<&str>,
    handler: &dyn EventHandler,
) -> Result<Outcome, BusError> {
    let event = match payload.map(Event::from_json) {
        Some(Ok(event)) => event,
        Some(Err(e)) => {
            tracing::error!(error = %e, "event entry cannot be read; acknowledging it without handling");
            return Ok(Outcome::Undecodable);
        }
        None => {
            tracing::error!("stream entry without an event field; acknowledging it without handling");
            return Ok(Outcome::Undecodable);
        }
    };
    if handled::is_handled(db, group, event.id).await? {
        return Ok(Outcome::Duplicate);
    }
    match handler.handle(&event).await {
        Ok(()) => {
            handled::record(db, group, event.id).await?;
            Ok(Outcome::Handled)
        }
        Err(e) => {
            tracing::warn!(event_id = %event.id, event_type = event.event_type(), error = %e, "event handler failed; will retry");
            Ok(Outcome::Failed)
        }
    }
}
