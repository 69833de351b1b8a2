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

/// Counts in order (KEYS: the counters, ARGV[1]: their expiry in seconds, ARGV[1 + i]: the limit
/// of KEYS[i]) and stops at the first counter over its limit, returning its position (1-based),
/// or 0. Redis caches the script by its digest; `EVAL` sends its text, a few hundred bytes.
const COUNT_SCRIPT: &str = r"
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then redis.call('EXPIRE', key, ARGV[1]) end
  if n > tonumber(ARGV[i + 1]) then return i end
end
return 0
";

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
        self.hit_each(&[(scope, key, limit)]).await.map_or(Verdict::Allowed, |(_, verdict)| verdict)
    }

    /// Counts one request against each `(scope, key, limit)` in order, stopping at the first
    /// that is over its limit: that one's index and verdict, or `None` when all allow it. A
    /// limit of 0 is no limit (not counted). With Redis this is one round trip, whatever the
    /// number of counters (a script that counts in order and stops where `hit` would).
    pub async fn hit_each(&self, hits: &[(&str, &str, u32)]) -> Option<(usize, Verdict)> {
        let now = now_secs();
        let window = now / WINDOW_SECS;
        let limited = Verdict::Limited { retry_after: Duration::from_secs((WINDOW_SECS - now % WINDOW_SECS).max(1)) };
        let counted: Vec<(usize, String, u32)> = hits
            .iter()
            .enumerate()
            .filter(|(_, (_, _, limit))| *limit > 0)
            .map(|(i, (scope, key, limit))| (i, format!("{scope}:{key}"), *limit))
            .collect();
        if counted.is_empty() {
            return None;
        }
        match &self.counts {
            Counts::Memory(m) => {
                let mut m = m.lock().unwrap_or_else(|p| p.into_inner());
                if m.window != window {
                    m.window = window;
                    m.hits.clear();
                }
                for (index, entry, limit) in counted {
                    if m.hits.len() >= MAX_MEMORY_KEYS && !m.hits.contains_key(&entry) {
                        // Bounded memory: past this many keys in one window, new keys go uncounted.
                        continue;
                    }
                    let n = m.hits.entry(entry).or_insert(0);
                    *n = n.saturating_add(1);
                    if *n > limit {
                        return Some((index, limited));
                    }
                }
                None
            }
            Counts::Redis(r) => match Self::redis_count(r, &counted, window).await {
                Ok(0) => None,
                Ok(position) => counted.get(position - 1).map(|(index, _, _)| (*index, limited)),
                Err(e) => {
                    self.warn(&e);
                    None
                }
            },
        }
    }

    /// Runs [`COUNT_SCRIPT`]: the 1-based position of the first counter over its limit, or 0.
    async fn redis_count(r: &RedisConn, counted: &[(usize, String, u32)], window: u64) -> redis::RedisResult<usize> {
        let mut conn = r.conn().await?;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(COUNT_SCRIPT).arg(counted.len());
        for (_, entry, _) in counted {
            cmd.arg(r.key(&format!("rate:{entry}:{window}")));
        }
        cmd.arg(WINDOW_SECS + 1);
        for (_, _, limit) in counted {
            cmd.arg(*limit);
        }
        cmd.query_async(&mut conn).await
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

    #[tokio::test]
    async fn counts_in_order_and_stops_at_the_first_refusal() {
        let limiter = RateLimiter::in_memory();
        let hits = [("address", "a", 2), ("token", "t", 5)];
        assert_eq!(limiter.hit_each(&hits).await, None);
        assert_eq!(limiter.hit_each(&hits).await, None);
        assert!(matches!(limiter.hit_each(&hits).await, Some((0, Verdict::Limited { .. }))));
        // The token was counted twice, not three times: another address still has 3 left on it.
        let other = [("address", "b", 2), ("token", "t", 5)];
        assert_eq!(limiter.hit_each(&other).await, None);
        assert_eq!(limiter.hit_each(&other).await, None);
        assert_eq!(limiter.hit_each(&[("token", "t", 5)]).await, None);
        assert!(matches!(limiter.hit_each(&[("token", "t", 5)]).await, Some((0, Verdict::Limited { .. }))));
        assert_eq!(limiter.hit_each(&[("token", "t", 0), ("address", "c", 0)]).await, None, "0 is no limit");
    }
}
