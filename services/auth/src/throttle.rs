//! Failed-login counting per account and per client address, in fixed windows that start
//! at the first failure. Redis shares the counts between replicas; memory serves one process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lessor_store::RedisConn;
use lessor_store::redis;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub max_failures_per_account: u32,
    pub max_failures_per_address: u32,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self { max_failures_per_account: 5, max_failures_per_address: 50, window: Duration::from_secs(900) }
    }
}

/// Failures counted for one key, and how long until the count resets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: u32,
    pub resets_in: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("throttle store unavailable: {0}")]
pub struct ThrottleError(pub String);

#[async_trait]
pub trait LoginThrottle: Send + Sync {
    async fn failures(&self, key: &str) -> Result<Failures, ThrottleError>;
    async fn record_failure(&self, key: &str, window: Duration) -> Result<(), ThrottleError>;
    async fn clear(&self, key: &str) -> Result<(), ThrottleError>;
}

/// Counts in this process's memory. Bounded: expired entries are swept as it grows.
#[derive(Default)]
pub struct MemoryThrottle {
    entries: Mutex<HashMap<String, (u32, Instant)>>,
}

const SWEEP_ABOVE: usize = 10_000;

#[async_trait]
impl LoginThrottle for MemoryThrottle {
    async fn failures(&self, key: &str) -> Result<Failures, ThrottleError> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        Ok(match entries.get(key) {
            Some(&(count, until)) if until > now => Failures { count, resets_in: until - now },
            _ => Failures { count: 0, resets_in: Duration::ZERO },
        })
    }

    async fn record_failure(&self, key: &str, window: Duration) -> Result<(), ThrottleError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() >= SWEEP_ABOVE {
            entries.retain(|_, (_, until)| *until > now);
        }
        let entry = entries.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), ThrottleError> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
}

/// Counts as Redis keys `<namespace>:login-failures:<key>` with the window as TTL.
pub struct RedisThrottle {
    redis: RedisConn,
}

impl RedisThrottle {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key(&format!("login-failures:{key}"))
    }
}

fn unavailable(e: redis::RedisError) -> ThrottleError {
    ThrottleError(e.to_string())
}

#[async_trait]
impl LoginThrottle for RedisThrottle {
    async fn failures(&self, key: &str) -> Result<Failures, ThrottleError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        let (count, ttl_ms): (Option<u32>, i64) =
            redis::pipe().get(self.key(key)).pttl(self.key(key)).query_async(&mut conn).await.map_err(unavailable)?;
        Ok(Failures { count: count.unwrap_or(0), resets_in: Duration::from_millis(ttl_ms.max(0) as u64) })
    }

    async fn record_failure(&self, key: &str, window: Duration) -> Result<(), ThrottleError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        let k = self.key(key);
        redis::pipe()
            .atomic()
            .incr(&k, 1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(window.as_millis() as u64)
            .arg("NX")
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(unavailable)
    }

    async fn clear(&self, key: &str) -> Result<(), ThrottleError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        redis::cmd("DEL").arg(self.key(key)).query_async::<()>(&mut conn).await.map_err(unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_counts_within_the_window_and_clears() {
        let t = MemoryThrottle::default();
        for _ in 0..3 {
            t.record_failure("account:a@b.cd", Duration::from_secs(60)).await.unwrap();
        }
        let f = t.failures("account:a@b.cd").await.unwrap();
        assert_eq!(f.count, 3);
        assert!(f.resets_in > Duration::from_secs(55));
        t.clear("account:a@b.cd").await.unwrap();
        assert_eq!(t.failures("account:a@b.cd").await.unwrap().count, 0);
    }

    #[tokio::test]
    async fn memory_window_expires() {
        let t = MemoryThrottle::default();
        t.record_failure("k", Duration::from_millis(20)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(t.failures("k").await.unwrap().count, 0);
        t.record_failure("k", Duration::from_secs(60)).await.unwrap();
        assert_eq!(t.failures("k").await.unwrap().count, 1);
    }
}
