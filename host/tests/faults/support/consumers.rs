//! Consumer groups of the test's own on the host's event stream, written the way
//! `services/events/README.md` prescribes a consumer with exactly-once effects:
//! `lessor_events::RedisStreamBus` consumer groups (acknowledge after the handler, claim what a
//! dead consumer left, recreate a group that vanished with Redis), and a handler that writes its
//! effect and marks the event handled (`mark_handled`, deduplicating by event id) in one
//! transaction of the host's database. The effect is a row in `faults_consumer_effects`, which
//! has no unique key: an event applied twice shows as two rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lessor_events::{Event, EventHandler, HandlerError, PAYMENTS, RedisStreamBus, Subscription, run_consumer};
use lessor_store::{DatabaseTarget, Db};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

const EFFECTS: &str = "CREATE TABLE IF NOT EXISTS faults_consumer_effects \
     (group_name TEXT NOT NULL, event_id UUID NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())";

struct Applying {
    pool: PgPool,
    group: String,
}

#[async_trait]
impl EventHandler for Applying {
    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await.map_err(HandlerError::new)?;
        if !lessor_events::mark_handled(&mut *tx, &self.group, event.id).await.map_err(HandlerError::new)? {
            return Ok(()); // applied before
        }
        sqlx::query("INSERT INTO faults_consumer_effects (group_name, event_id) VALUES ($1, $2)")
            .bind(&self.group)
            .bind(event.id)
            .execute(&mut *tx)
            .await
            .map_err(HandlerError::new)?;
        tx.commit().await.map_err(HandlerError::new)
    }
}

pub struct Consumers {
    pub groups: Vec<String>,
    pool: PgPool,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Consumers {
    /// One consumer per group in `groups`, reading `<namespace>:payments` on `redis_url`.
    pub async fn start(db_url: &str, redis_url: &str, namespace: &str, groups: &[&str]) -> Self {
        let target = DatabaseTarget::Postgres(db_url.parse().expect("database URL"));
        let db = Db::connect(&target).await.expect("the consumers connect to the host's database");
        let Db::Postgres(pool) = db.clone() else { unreachable!("a PostgreSQL target") };
        sqlx::query(EFFECTS).execute(&pool).await.expect("create faults_consumer_effects");
        let bus = RedisStreamBus::new(&redis_url.parse().expect("Redis URL"), namespace, db).expect("Redis bus");
        let (stop, _) = watch::channel(false);
        let groups_owned = groups.iter().map(|g| (*g).to_owned()).collect();
        let mut this = Self { groups: groups_owned, pool: pool.clone(), stop, tasks: Vec::new() };
        for group in groups {
            let mut subscription = Subscription::new(PAYMENTS, group);
            subscription.block = Duration::from_millis(200);
            subscription.claim_idle = Duration::from_secs(5);
            let consumer = lessor_events::EventBus::subscribe(&bus, subscription);
            let mut stopped = this.stop.subscribe();
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            let handler = Arc::new(Applying { pool: pool.clone(), group: (*group).to_owned() });
            this.tasks.push(tokio::spawn(run_consumer(consumer, handler, |_| {}, stop)));
        }
        this
    }

    /// Per group: how many times each event was applied (effect rows).
    pub async fn applied(&self) -> HashMap<String, HashMap<Uuid, u32>> {
        let rows: Vec<(String, Uuid, i64)> = sqlx::query_as(
            "SELECT group_name, event_id, count(*) FROM faults_consumer_effects GROUP BY group_name, event_id",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap_or_default();
        let mut groups: HashMap<String, HashMap<Uuid, u32>> = HashMap::new();
        for (group, event, n) in rows {
            groups.entry(group).or_default().insert(event, n as u32);
        }
        groups
    }

    /// Waits until every group applied every event of `expected` (or `timeout`).
    pub async fn wait_for(&self, expected: &[Uuid], timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let applied = self.applied().await;
            let done = self
                .groups
                .iter()
                .all(|g| applied.get(g).is_some_and(|a| expected.iter().all(|id| a.contains_key(id))));
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
        self.pool.close().await;
    }
}
