//! Domain events out of the database: the relay publishes `event_outbox` rows to the Redis
//! Stream `<namespace>:payments` when Redis is configured, and to the in-process bus (cursors in
//! the database) otherwise. Consumers (the chain worker, tests, other services) read through the
//! [`EventBus`] with consumer groups and acknowledgement. See `services/events/README.md`.

use std::sync::Arc;

use anyhow::Context;
use lessor_events::{EventBus, EventSink, InProcessBus, RedisStreamBus, RedisStreamSink};
use lessor_store::Db;
use tokio::sync::Notify;

use crate::config::Config;

/// Where events go and how consumers read them.
#[derive(Clone)]
pub struct EventPipes {
    /// Writers notify it after committing an outbox row, so the relay publishes at once.
    pub wake: Arc<Notify>,
    pub sink: Arc<dyn EventSink>,
    pub bus: Arc<dyn EventBus>,
}

impl EventPipes {
    pub fn new(config: &Config, db: &Db) -> anyhow::Result<Self> {
        let (sink, bus): (Arc<dyn EventSink>, Arc<dyn EventBus>) = match &config.redis {
            Some(target) => (
                Arc::new(RedisStreamSink::new(&target.0, &config.redis_namespace).context("redis_url")?),
                Arc::new(RedisStreamBus::new(&target.0, &config.redis_namespace, db.clone()).context("redis_url")?),
            ),
            None => {
                let bus = InProcessBus::new(db.clone());
                (Arc::new(bus.sink()), Arc::new(bus))
            }
        };
        Ok(Self { wake: Arc::new(Notify::new()), sink, bus })
    }

    /// Refuses to start on a Redis namespace whose stream belongs to another database (see
    /// services/events/README.md, "Database identity and restores"). A Redis that cannot be
    /// reached now is not fatal: the relay checks again on its first pass.
    pub async fn check_owner(&self, db: &Db) -> anyhow::Result<()> {
        let relay = lessor_events::Relay::new(
            db.clone(),
            self.sink.clone(),
            lessor_events::RelayConfig::new(lessor_events::PAYMENTS),
        );
        match relay.check_owner().await {
            Ok(()) => Ok(()),
            Err(e @ lessor_events::RelayError::Sink(lessor_events::SinkError::OwnedByAnother { .. })) => {
                Err(anyhow::anyhow!(e))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not check who owns the event stream; the relay checks again");
                Ok(())
            }
        }
    }
}
