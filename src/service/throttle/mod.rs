//! Counters that limit abuse (SPEC section 10), shared by every replica through Redis when
//! it is configured (each decision one Lua script, atomic, with TTLs so that nothing grows
//! without bound), and kept per replica when Redis is absent or failing (bounded memory
//! there too): never "no limit".
//!
//! Two shapes:
//! - a **lockout** counter (failed logins): after `max` failures within the window the key
//!   is locked; each further lockout inside the window doubles, up to a ceiling;
//! - a **window** counter (signups, mails): at most `limit` hits per window.
//!
//! What a counter counts is typed (`LockoutKey`, `WindowKey`, in `keys`); the Redis key
//! names they render are unchanged.

mod keys;
mod local;
mod policy;

use std::{sync::Arc, time::Duration};

use fred::types::Value;

use crate::{domain::clock::Clock, metrics::Metrics, storage::redis::RedisClient};

pub use keys::{LockoutKey, WindowKey};
pub use policy::LockoutPolicy;

use keys::LockKey;
use local::LocalCounters;

/// The answer to an attempt on a lockout counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Go ahead (counted as a failure until it turns out right); `lockout_begun` when
    /// this attempt locked the key for the next ones.
    Allowed {
        lockout_begun: bool,
    },
    Limited {
        retry_after: Duration,
    },
}

/// The answer to "may this go ahead?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused for now; try again after this long.
    Limited {
        retry_after: Duration,
    },
}

/// A lockout counter in one script. KEYS: counter, family mark. ARGV: op, now (ms),
/// max failures, window, first lockout, max lockout (ms).
/// - `attempt`: {-1, remaining ms} while locked; otherwise counts the attempt as a failure
///   (taken back by `succeed` if it turns out right) and returns {failures, lockout begun
///   in ms or 0}. Counting before the password is checked is what holds the limit against
///   many guesses sent at once: no more than the limit are ever being checked.
/// - `succeed`: takes one failure back; `clear`: forgets the key; `clear-family`: forgets
///   every key of the family.
const LOCKOUT_SCRIPT: &str = r#"
local now = tonumber(ARGV[2])
local window = tonumber(ARGV[4])
if ARGV[1] == 'clear' then
  redis.call('DEL', KEYS[1])
  return 0
end
if ARGV[1] == 'clear-family' then
  redis.call('SET', KEYS[2], now, 'PX', window)
  redis.call('DEL', KEYS[1])
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'failures', 'lockouts', 'locked_until', 'since')
local failures, lockouts, locked_until, since = tonumber(f[1]) or 0, tonumber(f[2]) or 0, tonumber(f[3]) or 0, tonumber(f[4]) or now
local cleared = tonumber(redis.call('GET', KEYS[2])) or 0
if since < cleared or now - since > window then
  failures, lockouts, locked_until, since = 0, 0, 0, now
end
local begun = 0
if ARGV[1] == 'succeed' then
  if failures == 0 then return 0 end
  failures = failures - 1
else
  if locked_until > now then return {-1, locked_until - now} end
  failures = failures + 1
  if tonumber(ARGV[3]) > 0 and failures >= tonumber(ARGV[3]) then
    lockouts = lockouts + 1
    begun = math.min(tonumber(ARGV[5]) * 2 ^ (lockouts - 1), tonumber(ARGV[6]))
    locked_until = now + begun
  end
end
redis.call('HSET', KEYS[1], 'failures', failures, 'lockouts', lockouts, 'locked_until', locked_until, 'since', since)
redis.call('PEXPIRE', KEYS[1], math.max(window - (now - since), locked_until - now) + 1000)
return {failures, begun}
"#;

/// A window counter in one script. KEYS: counter. ARGV: limit, window (ms). Counts the hit
/// and returns {hits, remaining ms of the window}.
const WINDOW_SCRIPT: &str = r#"
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])); ttl = tonumber(ARGV[2]) end
return {hits, ttl}
"#;

/// The counters: Redis when it answers, this replica's own otherwise.
#[derive(Clone)]
pub struct Throttle {
    redis: Option<Arc<RedisClient>>,
    local: Arc<LocalCounters>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(i) => Some(*i),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Throttle {
    pub fn new(redis: Option<Arc<RedisClient>>, clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        Self {
            redis,
            local: Arc::new(LocalCounters::default()),
            clock,
            metrics,
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX)
    }

    /// Runs the lockout script on Redis; `None` when Redis is absent or failing.
    async fn lockout_script(
        &self,
        op: &str,
        key: &LockKey,
        policy: &LockoutPolicy,
        now: i64,
    ) -> Option<Value> {
        let redis = self.redis.as_ref()?;
        let args = vec![
            op.to_owned(),
            now.to_string(),
            policy.max_failures.to_string(),
            millis(policy.window).to_string(),
            millis(policy.first_lockout).to_string(),
            millis(policy.max_lockout).to_string(),
        ];
        redis
            .eval("throttle", LOCKOUT_SCRIPT, key.redis_keys().to_vec(), args)
            .await
            .ok()
    }

    /// An attempt on `key`: refused while it is locked; otherwise counted as a failure
    /// until `succeeded` takes it back. Tells whether it began a lockout.
    pub async fn attempt(&self, key: &LockoutKey, policy: &LockoutPolicy) -> Attempt {
        if policy.max_failures == 0 {
            return Attempt::Allowed {
                lockout_begun: false,
            };
        }
        let key = &key.counter();
        let now = self.now_ms();
        let (first, second) = match self.lockout_script("attempt", key, policy, now).await {
            Some(Value::Array(reply)) => (
                reply.first().and_then(as_int).unwrap_or(0),
                reply.get(1).and_then(as_int).unwrap_or(0),
            ),
            _ => self.local.attempt(key, policy, now),
        };
        if first < 0 {
            Attempt::Limited {
                retry_after: Duration::from_millis(u64::try_from(second).unwrap_or(0)),
            }
        } else {
            Attempt::Allowed {
                lockout_begun: second > 0,
            }
        }
    }

    /// The attempt turned out right: it is not a failure after all.
    pub async fn succeeded(&self, key: &LockoutKey, policy: &LockoutPolicy) {
        if policy.max_failures == 0 {
            return;
        }
        let key = &key.counter();
        let now = self.now_ms();
        if self
            .lockout_script("succeed", key, policy, now)
            .await
            .is_none()
        {
            self.local.succeed(key, policy, now);
        }
    }

    /// Forgets the failures of `key` (a successful login).
    pub async fn clear(&self, key: &LockoutKey, policy: &LockoutPolicy) {
        let key = &key.counter();
        let now = self.now_ms();
        let _ = self.lockout_script("clear", key, policy, now).await;
        // Whatever this replica counted while Redis was away is forgotten too.
        self.local.clear(key);
    }

    /// Forgets the failures of every key of `key`'s family (a password reset clears every
    /// address's count for its email).
    pub async fn clear_family(&self, key: &LockoutKey, policy: &LockoutPolicy) {
        let key = &key.counter();
        let now = self.now_ms();
        let _ = self.lockout_script("clear-family", key, policy, now).await;
        self.local.clear_family(key, now);
    }

    /// Counts one hit of a window counter; `Limited` once there were more than `limit` in
    /// the window (the refused hits count too, so hammering does not help). `limit` 0 = off.
    pub async fn hit(&self, key: &WindowKey, limit: u32, window: Duration) -> Decision {
        if limit == 0 {
            return Decision::Allowed;
        }
        let key = key.render();
        let reply = match &self.redis {
            Some(redis) => redis
                .eval(
                    "throttle",
                    WINDOW_SCRIPT,
                    vec![key.clone()],
                    vec![limit.to_string(), millis(window).to_string()],
                )
                .await
                .ok(),
            None => None,
        };
        let (hits, remaining) = match reply {
            Some(Value::Array(reply)) => (
                reply.first().and_then(as_int).unwrap_or(0),
                reply.get(1).and_then(as_int).unwrap_or(0),
            ),
            _ => self.local.hit(&key, window, self.now_ms()),
        };
        if hits > i64::from(limit) {
            Decision::Limited {
                retry_after: Duration::from_millis(u64::try_from(remaining.max(1)).unwrap_or(1)),
            }
        } else {
            Decision::Allowed
        }
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::ManualClock;

    fn pair(address: &str) -> LockoutKey {
        LockoutKey::EmailAddress {
            email: crate::domain::EmailKey::ascii_folded(
                &crate::domain::Email::parse("a@b.co").unwrap(),
            ),
            client: Some(address.parse().unwrap()),
        }
    }

    fn signup(address: &str) -> WindowKey {
        WindowKey::Signup(Some(address.parse().unwrap()))
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 3,
            window: Duration::from_secs(900),
            first_lockout: Duration::from_secs(60),
            max_lockout: Duration::from_secs(200),
        }
    }

    const FREE: Attempt = Attempt::Allowed {
        lockout_begun: false,
    };
    const BEGINS: Attempt = Attempt::Allowed {
        lockout_begun: true,
    };

    fn limited(secs: u64) -> Attempt {
        Attempt::Limited {
            retry_after: Duration::from_secs(secs),
        }
    }

    /// The local counters follow the same rules as the script (the Redis variant is tested
    /// against a real Redis in tests/api/abuse.rs).
    #[tokio::test]
    async fn lockouts_double_inside_the_window_up_to_the_ceiling() {
        let clock = Arc::new(ManualClock::starting_now());
        let throttle = Throttle::new(None, clock.clone(), Metrics::new("test"));
        let key = pair("10.0.0.1");
        let policy = policy();
        // An attempt that turns out right is taken back: right ones never add up.
        for _ in 0..5 {
            assert_eq!(throttle.attempt(&key, &policy).await, FREE);
            throttle.succeeded(&key, &policy).await;
        }
        assert_eq!(throttle.attempt(&key, &policy).await, FREE);
        assert_eq!(throttle.attempt(&key, &policy).await, FREE);
        assert_eq!(
            throttle.attempt(&key, &policy).await,
            BEGINS,
            "the third begins it"
        );
        assert_eq!(throttle.attempt(&key, &policy).await, limited(60));
        clock.advance(Duration::from_secs(61));
        // The count is still at the limit: one more attempt locks again, twice as long.
        assert_eq!(throttle.attempt(&key, &policy).await, BEGINS);
        assert_eq!(throttle.attempt(&key, &policy).await, limited(120));
        clock.advance(Duration::from_secs(121));
        throttle.attempt(&key, &policy).await;
        assert_eq!(
            throttle.attempt(&key, &policy).await,
            limited(200),
            "capped"
        );
        // Another address of the same email is counted on its own.
        let other = pair("10.0.0.2");
        assert_eq!(throttle.attempt(&other, &policy).await, FREE);
        // A success clears the pair.
        throttle.clear(&key, &policy).await;
        assert_eq!(throttle.attempt(&key, &policy).await, FREE);
        // After the window, counting starts again.
        throttle.attempt(&key, &policy).await;
        clock.advance(Duration::from_secs(901));
        assert_eq!(throttle.attempt(&key, &policy).await, FREE);
        assert_eq!(throttle.attempt(&key, &policy).await, FREE);
    }

    #[tokio::test]
    async fn clearing_a_family_clears_every_member() {
        let clock = Arc::new(ManualClock::starting_now());
        let throttle = Throttle::new(None, clock.clone(), Metrics::new("test"));
        let policy = policy();
        let keys: Vec<LockoutKey> = (0..3).map(|i| pair(&format!("10.0.0.{i}"))).collect();
        for key in &keys {
            for _ in 0..3 {
                throttle.attempt(key, &policy).await;
            }
            assert!(matches!(
                throttle.attempt(key, &policy).await,
                Attempt::Limited { .. }
            ));
        }
        clock.advance(Duration::from_millis(1));
        throttle.clear_family(&keys[0], &policy).await;
        for key in &keys {
            assert_eq!(throttle.attempt(key, &policy).await, FREE);
        }
    }

    #[tokio::test]
    async fn window_counters_refuse_beyond_the_limit_until_the_window_ends() {
        let clock = Arc::new(ManualClock::starting_now());
        let throttle = Throttle::new(None, clock.clone(), Metrics::new("test"));
        let hour = Duration::from_secs(3600);
        for _ in 0..2 {
            assert_eq!(
                throttle.hit(&signup("10.0.0.1"), 2, hour).await,
                Decision::Allowed
            );
        }
        assert_eq!(
            throttle.hit(&signup("10.0.0.1"), 2, hour).await,
            Decision::Limited { retry_after: hour }
        );
        assert_eq!(
            throttle.hit(&signup("10.0.0.2"), 2, hour).await,
            Decision::Allowed
        );
        clock.advance(hour);
        assert_eq!(
            throttle.hit(&signup("10.0.0.1"), 2, hour).await,
            Decision::Allowed
        );
        assert_eq!(
            throttle.hit(&signup("10.0.0.1"), 0, hour).await,
            Decision::Allowed,
            "0 = off"
        );
    }
}
