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
}
