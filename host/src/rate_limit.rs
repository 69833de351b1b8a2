//! Request rate limits past login: fixed one-minute windows counted where login throttling is
//! counted (Redis when configured, so every replica shares the count; this process's memory
//! otherwise). A window allows `limit` requests; the next one is told when the window ends.
//!
//! If Redis cannot be asked, requests are let through (and a warning is logged at most every
//! 10 s): an unavailable counter must not take the API down with it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lessor_store::{RedisConn, redis};

const WINDOW_SECS: u64 = 60;
const MAX_MEMORY_KEYS: usize = 200_000;

/// Whether a request may proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Limited { retry_after: Duration },
}

enum Counts {
    Memory(Mutex<MemoryCounts>),
    Redis(RedisConn),
}

#[derive(Default)]
struct MemoryCounts {
    window: u64,
    hits: HashMap<String, u32>,
}

pub struct RateLimiter {
    counts: Counts,
    warned: Mutex<Option<Instant>>,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl RateLimiter {
    pub fn in_memory() -> Self {
        Self { counts: Counts::Memory(Mutex::default()), warned: Mutex::new(None) }
    }

    pub fn redis(redis: RedisConn) -> Self {
        Self { counts: Counts::Redis(redis), warned: Mutex::new(None) }
    }

    /// Counts one request of `scope` under `key`; `limit` per minute, 0 for no limit.
    pub async fn hit(&self, scope: &str, key: &str, limit: u32) -> Verdict {
        if limit == 0 {
            return Verdict::Allowed;
        }
        let now = now_secs();
        let window = now / WINDOW_SECS;
        let count = match &self.counts {
            Counts::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                if m.window != window {
                    m.window = window;
                    m.hits.clear();
                }
                let entry = format!("{scope}:{key}");
                if m.hits.len() >= MAX_MEMORY_KEYS && !m.hits.contains_key(&entry) {
                    // Bounded memory: past this many keys in one window, new keys go uncounted.
                    return Verdict::Allowed;
                }
                let n = m.hits.entry(entry).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Counts::Redis(r) => match Self::redis_incr(r, &format!("rate:{scope}:{key}:{window}")).await {
                Ok(n) => n,
                Err(e) => {
                    self.warn(&e);
                    return Verdict::Allowed;
                }
            },
        };
        if count <= limit {
            Verdict::Allowed
        } else {
            Verdict::Limited { retry_after: Duration::from_secs((WINDOW_SECS - now % WINDOW_SECS).max(1)) }
        }
    }

    async fn redis_incr(r: &RedisConn, key: &str) -> redis::RedisResult<u32> {
        let mut conn = r.conn().await?;
        let key = r.key(key);
        let (count,): (u32,) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(WINDOW_SECS + 1)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }

    fn warn(&self, e: &redis::RedisError) {
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *warned = Some(Instant::now());
            tracing::warn!(error = %e, "rate limits not counted: Redis unavailable; letting requests through");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_counts_per_scope_and_key() {
        let limiter = RateLimiter::in_memory();
        for _ in 0..3 {
            assert_eq!(limiter.hit("token", "a", 3).await, Verdict::Allowed);
        }
        assert!(
            matches!(limiter.hit("token", "a", 3).await, Verdict::Limited { retry_after } if retry_after.as_secs() >= 1)
        );
        assert_eq!(limiter.hit("token", "b", 3).await, Verdict::Allowed);
        assert_eq!(limiter.hit("address", "a", 3).await, Verdict::Allowed);
        assert_eq!(limiter.hit("token", "a", 0).await, Verdict::Allowed, "0 is no limit");
    }
}
