//! Login attempt counting in fixed windows that start at the first attempt. A slot is
//! reserved atomically *before* the password is checked, so concurrent wrong passwords
//! cannot all be verified: the reservation that would pass the limit is refused. Redis
//! shares the counts between replicas; memory serves one process.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lessor_store::RedisConn;
use lessor_store::redis;

/// The login throttling policy (see the README, "Login throttling").
#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failed logins for one account from one address (IPv6: its /64) before 429.
    pub max_failures_per_account_address: u32,
    /// Failed logins from one address (any account) before 429.
    pub max_failures_per_address: u32,
    /// The window those failures are counted in.
    pub window: Duration,
    /// The longest an attempt on an account with many recent failures is slowed down.
    pub account_max_delay: Duration,
}

/// The first step of the account's progressive delay; it doubles with each further failure.
const ACCOUNT_DELAY_STEP: Duration = Duration::from_millis(100);

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account_address: 5,
            max_failures_per_address: 50,
            window: Duration::from_secs(900),
            account_max_delay: Duration::from_secs(2),
        }
    }
}

impl ThrottlePolicy {
    /// How long an attempt on an account waits when the account has `failures` recent failed
    /// logins (from anywhere): nothing for as many as one address may make, then 100 ms
    /// doubling with each failure, capped at `account_max_delay`. Never a refusal.
    pub fn account_delay(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.max_failures_per_account_address) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(over.min(20)).unwrap_or(u32::MAX);
        ACCOUNT_DELAY_STEP.saturating_mul(factor).min(self.account_max_delay)
    }
}

/// The key a client address is counted under: an IPv4 address as such (IPv4-mapped IPv6
/// included), an IPv6 address by its /64, the block one subscriber usually holds.
pub fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The outcome of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted; `count` attempts (this one included) are now counted in the window.
    Admitted { count: u32 },
    /// `limit` attempts are already counted; nothing was added.
    Refused { retry_after: Duration },
}

#[derive(Debug, thiserror::Error)]
#[error("throttle store unavailable: {0}")]
pub struct ThrottleError(pub String);

#[async_trait]
pub trait LoginThrottle: Send + Sync {
    /// Counts one attempt against `key` unless `limit` are already counted in its window
    /// (which starts with the first and lasts `window`). Atomic: concurrent callers together
    /// never get more than `limit` admissions per window.
    async fn reserve(&self, key: &str, limit: u32, window: Duration) -> Result<Admission, ThrottleError>;
    /// Takes one counted attempt back (it turned out not to be a failure).
    async fn release(&self, key: &str) -> Result<(), ThrottleError>;
    /// Forgets every attempt counted against `key`.
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
    async fn reserve(&self, key: &str, limit: u32, window: Duration) -> Result<Admission, ThrottleError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if entries.len() >= SWEEP_ABOVE {
            entries.retain(|_, (_, until)| *until > now);
        }
        let entry = entries.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        if entry.0 >= limit {
            return Ok(Admission::Refused { retry_after: entry.1 - now });
        }
        entry.0 += 1;
        Ok(Admission::Admitted { count: entry.0 })
    }

    async fn release(&self, key: &str) -> Result<(), ThrottleError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                entries.remove(key);
            }
        }
        Ok(())
    }

    async fn clear(&self, key: &str) -> Result<(), ThrottleError> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
        Ok(())
    }
}

/// Counts as Redis keys `<namespace>:login-failures:<key>` with the window as TTL. Each
/// operation is one Lua script: one round trip, atomic against every other replica.
pub struct RedisThrottle {
    redis: RedisConn,
}

/// KEYS[1] the counter; ARGV[1] the limit, ARGV[2] the window in ms. Returns {count, ttl_ms},
/// count -1 when refused.
const RESERVE: &str = r"
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  return {-1, redis.call('PTTL', KEYS[1])}
end
n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return {n, redis.call('PTTL', KEYS[1])}
";

const RELEASE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
";

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
    async fn reserve(&self, key: &str, limit: u32, window: Duration) -> Result<Admission, ThrottleError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, ttl_ms): (i64, i64) = redis::cmd("EVAL")
            .arg(RESERVE)
            .arg(1)
            .arg(self.key(key))
            .arg(limit)
            .arg(window_ms)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let ttl = Duration::from_millis(ttl_ms.max(0) as u64);
        Ok(match u32::try_from(count) {
            Ok(count) => Admission::Admitted { count },
            Err(_) => Admission::Refused { retry_after: ttl },
        })
    }

    async fn release(&self, key: &str) -> Result<(), ThrottleError> {
        let mut conn = self.redis.conn().await.map_err(unavailable)?;
        redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.key(key))
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
    use std::sync::Arc;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn ipv4_and_mapped_ipv4_are_one_key() {
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(v4), "192.0.2.7");
        assert_eq!(address_key(mapped), "192.0.2.7");
        assert_ne!(address_key("192.0.2.8".parse().unwrap()), address_key(v4));
    }

    #[test]
    fn ipv6_is_keyed_on_its_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = address_key("2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap());
        let other = address_key("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
        assert_ne!(a, other);
    }

    #[test]
    fn account_delay_grows_then_caps_and_never_refuses() {
        let p = ThrottlePolicy::default();
        assert_eq!(p.account_delay(0), Duration::ZERO);
        assert_eq!(p.account_delay(4), Duration::ZERO);
        assert_eq!(p.account_delay(5), Duration::from_millis(100));
        assert_eq!(p.account_delay(6), Duration::from_millis(200));
        assert_eq!(p.account_delay(9), Duration::from_millis(1600));
        assert_eq!(p.account_delay(10), Duration::from_secs(2));
        assert_eq!(p.account_delay(u32::MAX), Duration::from_secs(2));
    }

    #[tokio::test]
    async fn memory_reserves_up_to_the_limit_releases_and_clears() {
        let t = MemoryThrottle::default();
        for n in 1..=3 {
            assert_eq!(t.reserve("k", 3, MINUTE).await.unwrap(), Admission::Admitted { count: n });
        }
        let Admission::Refused { retry_after } = t.reserve("k", 3, MINUTE).await.unwrap() else { panic!() };
        assert!(retry_after > Duration::from_secs(55));
        t.release("k").await.unwrap();
        assert_eq!(t.reserve("k", 3, MINUTE).await.unwrap(), Admission::Admitted { count: 3 });
        t.clear("k").await.unwrap();
        assert_eq!(t.reserve("k", 3, MINUTE).await.unwrap(), Admission::Admitted { count: 1 });
    }

    #[tokio::test]
    async fn memory_window_expires() {
        let t = MemoryThrottle::default();
        t.reserve("k", 1, Duration::from_millis(20)).await.unwrap();
        assert!(matches!(t.reserve("k", 1, MINUTE).await.unwrap(), Admission::Refused { .. }));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(t.reserve("k", 1, MINUTE).await.unwrap(), Admission::Admitted { count: 1 });
    }

    #[tokio::test]
    async fn concurrent_reservations_never_pass_the_limit() {
        let t = Arc::new(MemoryThrottle::default());
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.reserve("k", 5, MINUTE).await.unwrap() })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += matches!(task.await.unwrap(), Admission::Admitted { .. }) as u32;
        }
        assert_eq!(admitted, 5);
    }
}
