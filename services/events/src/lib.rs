//! Domain events for Lessor: written to an outbox in the transaction of the change they
//! report, relayed to the Redis Stream `payments` (or to an in-process bus when no Redis is
//! configured), and consumed by consumer groups with acknowledgement.
//!
//! - [`event`]: the versioned JSON envelope `lessor.event/1` and typed payloads
//!   (schema documented in `services/events/README.md`).
//! - [`outbox`]: [`enqueue`] inside a caller's transaction on either engine.
//! - [`relay`]: [`Relay`] publishes outbox rows in order, exactly once, across crashes and
//!   replicas, to an [`EventSink`] ([`RedisStreamSink`] or [`InProcessSink`]).
//! - [`bus`]: [`EventBus`] / [`EventConsumer`] / [`EventHandler`] and [`run_consumer`]:
//!   at-least-once delivery per consumer group ([`RedisStreamBus`], [`InProcessBus`]),
//!   deduplicated by event id in `event_handled` ([`mark_handled`]).
//!
//! Wiring, for a host:
//!
//! ```text
//! let wake = Arc::new(Notify::new());                    // writers notify after commit
//! let (sink, bus): (Arc<dyn EventSink>, Arc<dyn EventBus>) = match redis {
//!     Some(url) => (Arc::new(RedisStreamSink::new(&url, ns)?), Arc::new(RedisStreamBus::new(&url, ns, db.clone())?)),
//!     None => { let bus = InProcessBus::new(db.clone()); (Arc::new(bus.sink()), Arc::new(bus)) }
//! };
//! tokio::spawn(Relay::new(db, sink, RelayConfig::new(PAYMENTS)).run(wake, |_| {}, stop()));
//! let consumer = bus.subscribe(Subscription::new(PAYMENTS, "chain-worker"));
//! tokio::spawn(run_consumer(consumer, handler, |_| {}, stop()));
//! ```

pub mod bus;
pub mod event;
pub mod handled;
pub mod identity;
pub mod in_process;
pub mod outbox;
pub mod redis_stream;
pub mod relay;

use std::time::Duration;

pub use bus::{
    BusError, EventBus, EventConsumer, EventHandler, HandlerError, Round, StartFrom, Subscription, run_consumer,
};
pub use event::{Event, EventData, PaymentCompleted, PaymentFailed, PaymentRefunded, SCHEMA};
pub use handled::{mark_handled, prune_handled};
pub use identity::database_id;
pub use in_process::{InProcessBus, InProcessSink};
pub use outbox::{EventConn, Outbox, OutboxEntry, OutboxError, OutboxStats, PAYMENTS, enqueue};
pub use redis_stream::{RedisStreamBus, RedisStreamSink};
pub use relay::{EventSink, Published, Relay, RelayConfig, RelayError, RelayPass, SinkError};

/// Now, in Unix milliseconds: the unit of every time column of the event tables.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `min · 2^(attempt-1)`, at most `max`.
pub(crate) fn backoff(attempt: u32, min: Duration, max: Duration) -> Duration {
    let exp = attempt.clamp(1, 16) - 1;
    min.saturating_mul(1 << exp).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let (min, max) = (Duration::from_millis(250), Duration::from_secs(30));
        assert_eq!(backoff(0, min, max), min);
        assert_eq!(backoff(1, min, max), min);
        assert_eq!(backoff(3, min, max), Duration::from_secs(1));
        assert_eq!(backoff(40, min, max), max);
    }
}
