//! Event lag (issue 12, item 4): a consumer group of the bench's own reads the Redis stream
//! `<namespace>:payments` with `XREADGROUP … BLOCK`, acknowledges every entry, and records for
//! each event the time from its creation (`occurred_at` in the envelope, set just before the
//! transaction that commits it) to its receipt here. Creation precedes the commit by the length
//! of that transaction, so the figure is commit-to-receipt plus that.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::served::Error;

const GROUP: &str = "bench-lag";

pub struct LagProbe {
    recording: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    lags_ms: Arc<Mutex<Vec<f64>>>,
    task: JoinHandle<Result<(), redis::RedisError>>,
}

impl LagProbe {
    /// Creates the group at the stream's end (`$`, `MKSTREAM`) and starts reading.
    pub async fn start(redis_url: &str, namespace: &str) -> Result<Self, Error> {
        let key = format!("{namespace}:payments");
        let client = redis::Client::open(redis_url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let created: redis::RedisResult<()> = conn.xgroup_create_mkstream(&key, GROUP, "$").await;
        if let Err(e) = created
            && e.code() != Some("BUSYGROUP")
        {
            return Err(e.into());
        }
        let (recording, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let lags_ms = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(read(conn, key, recording.clone(), stop.clone(), lags_ms.clone()));
        Ok(Self { recording, stop, lags_ms, task })
    }

    /// Whether receipts from now on are recorded (during the load rounds) or only acknowledged.
    pub fn record(&self, on: bool) {
        self.recording.store(on, Ordering::SeqCst);
    }

    /// The lags recorded so far, in milliseconds, emptied.
    pub async fn take(&self) -> Vec<f64> {
        std::mem::take(&mut *self.lags_ms.lock().await)
    }

    pub async fn stop(self) -> Result<(), Error> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await?.map_err(Into::into)
    }
}

async fn read(
    mut conn: redis::aio::MultiplexedConnection,
    key: String,
    recording: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    lags_ms: Arc<Mutex<Vec<f64>>>,
) -> Result<(), redis::RedisError> {
    let options = StreamReadOptions::default().group(GROUP, "bench").count(1000).block(200);
    while !stop.load(Ordering::SeqCst) {
        let reply: StreamReadReply = conn.xread_options(&[&key], &[">"], &options).await?;
        let received = Utc::now();
        let mut ids = Vec::new();
        let mut lags = Vec::new();
        for entry in reply.keys.iter().flat_map(|k| &k.ids) {
            ids.push(entry.id.clone());
            let created = entry
                .get::<String>("event")
                .and_then(|e| serde_json::from_str::<serde_json::Value>(&e).ok())
                .and_then(|v| v["occurred_at"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok()));
            if let Some(created) = created {
                lags.push((received - created).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e3);
            }
        }
        if !ids.is_empty() {
            let _: i64 = conn.xack(&key, GROUP, &ids).await?;
        }
        if recording.load(Ordering::SeqCst) && !lags.is_empty() {
            lags_ms.lock().await.extend(lags);
        }
    }
    Ok(())
}

/// The `p`-quantile (0..=1) of `values`, nearest rank; NaN when empty.
pub fn quantile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// How long to wait after a round for the stream to deliver what the round committed.
pub const DRAIN: Duration = Duration::from_millis(300);
