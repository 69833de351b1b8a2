//! Consumer groups of the test's own on the host's event stream, run the way
//! `services/events/README.md` prescribes a consumer: `lessor_events::RedisStreamBus` consumer
//! groups (acknowledge after the handler, claim what a dead consumer left, recreate a group that
//! vanished with Redis) deduplicating by event id in the host database's `event_handled`. Each
//! group's handler counts how often it applied each event: more than once is a doubled event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lessor_events::{Event, EventHandler, HandlerError, PAYMENTS, RedisStreamBus, Subscription, run_consumer};
use lessor_store::{DatabaseTarget, Db};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Applications per event id, for one group.
type Applied = Arc<Mutex<HashMap<Uuid, u32>>>;

struct Counting(Applied);

#[async_trait]
impl EventHandler for Counting {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        *self.0.lock().expect("lock").entry(event.id).or_default() += 1;
        Ok(())
    }
}

pub struct Consumers {
    groups: Vec<(String, Applied)>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumers {
    /// One consumer per group in `groups`, reading `<namespace>:payments` on `redis_url`.
    pub async fn start(db_url: &str, redis_url: &str, namespace: &str, groups: &[&str]) -> Self {
        let target = DatabaseTarget::Postgres(db_url.parse().expect("database URL"));
        let db = Db::connect(&target).await.expect("the consumers connect to the host's database");
        let bus = RedisStreamBus::new(&redis_url.parse().expect("Redis URL"), namespace, db).expect("Redis bus");
        let (stop, _) = watch::channel(false);
        let mut this = Self { groups: Vec::new(), stop, tasks: Vec::new() };
        for group in groups {
            let applied: Applied = Arc::default();
            let mut subscription = Subscription::new(PAYMENTS, group);
            subscription.block = Duration::from_millis(200);
            subscription.claim_idle = Duration::from_secs(5);
            let consumer = lessor_events::EventBus::subscribe(&bus, subscription);
            let mut stopped = this.stop.subscribe();
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let handler = Arc::new(Counting(applied.clone()));
            this.tasks.push(tokio::spawn(run_consumer(consumer, handler, |_| {}, stop)));
            this.groups.push(((*group).to_owned(), applied));
        }
        this
    }

    /// Per group: events applied once, more than once, and the set applied.
    pub fn applied(&self) -> Vec<(String, HashMap<Uuid, u32>)> {
        self.groups.iter().map(|(g, a)| (g.clone(), a.lock().expect("lock").clone())).collect()
    }

    /// Waits until every group applied every event of `expected` (or `timeout`).
    pub async fn wait_for(&self, expected: &[Uuid], timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done = self.applied().iter().all(|(_, applied)| expected.iter().all(|id| applied.contains_key(id)));
            if done || tokio::time::Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
