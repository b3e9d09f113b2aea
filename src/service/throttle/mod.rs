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
//! Keys hold SHA-256 digests of what they count, never an email or an address in clear.

mod local;

use std::{sync::Arc, time::Duration};

use fred::types::Value;
use sha2::{Digest, Sha256};

use crate::{domain::clock::Clock, metrics::Metrics, storage::redis::RedisClient};

pub use local::LocalCounters;

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

/// How a lockout counter behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within the window that lock the key; 0 = never.
    pub max_failures: u32,
    pub window: Duration,
    pub first_lockout: Duration,
    pub max_lockout: Duration,
}

/// A lockout counter's key. `family` groups keys that can be cleared together (all the
/// addresses of one email).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LockKey {
    family: String,
    member: String,
}

impl LockKey {
    /// `kind` names the limit (`login`, `login-ip`); `family` and `member` are hashed.
    pub fn new(kind: &str, family: &str, member: &str) -> Self {
        Self {
            family: format!("{kind}:{}", digest(family)),
            member: digest(member),
        }
    }

    /// The Redis key of the counter and of its family's "cleared at" mark: one hash tag,
    /// so that both live on one cluster slot for the script.
    fn redis_keys(&self) -> [String; 2] {
        [
            format!("throttle:{{{}}}:{}", self.family, self.member),
            format!("throttle:{{{}}}:cleared", self.family),
        ]
    }
}

/// 64 bits of SHA-256, in hex: collisions are out of reach, and nothing readable is stored.
pub fn digest(text: &str) -> String {
    let hash = Sha256::digest(text.as_bytes());
    hash[..8].iter().map(|b| format!("{b:02x}")).collect()
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
    pub async fn attempt(&self, key: &LockKey, policy: &LockoutPolicy) -> Attempt {
        if policy.max_failures == 0 {
            return Attempt::Allowed {
                lockout_begun: false,
            };
        }
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
    pub async fn succeeded(&self, key: &LockKey, policy: &LockoutPolicy) {
        if policy.max_failures == 0 {
            return;
        }
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
    pub async fn clear(&self, key: &LockKey, policy: &LockoutPolicy) {
        let now = self.now_ms();
        let _ = self.lockout_script("clear", key, policy, now).await;
        // Whatever this replica counted while Redis was away is forgotten too.
        self.local.clear(key);
    }

    /// Forgets the failures of every key of `key`'s family (a password reset clears every
    /// address's count for its email).
    pub async fn clear_family(&self, key: &LockKey, policy: &LockoutPolicy) {
        let now = self.now_ms();
        let _ = self.lockout_script("clear-family", key, policy, now).await;
        self.local.clear_family(key, now);
    }

    /// Counts one hit of a window counter; `Limited` once there were more than `limit` in
    /// the window (the refused hits count too, so hammering does not help). `limit` 0 = off.
    pub async fn hit(&self, key: &str, limit: u32, window: Duration) -> Decision {
        if limit == 0 {
            return Decision::Allowed;
        }
        let key = format!("throttle:{key}");
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
        let key = LockKey::new("login", "a@b.co", "10.0.0.1");
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
        let other = LockKey::new("login", "a@b.co", "10.0.0.2");
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
        let keys: Vec<LockKey> = (0..3)
            .map(|i| LockKey::new("login", "a@b.co", &format!("10.0.0.{i}")))
            .collect();
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
            assert_eq!(throttle.hit("signup:x", 2, hour).await, Decision::Allowed);
        }
        assert_eq!(
            throttle.hit("signup:x", 2, hour).await,
            Decision::Limited { retry_after: hour }
        );
        assert_eq!(throttle.hit("signup:y", 2, hour).await, Decision::Allowed);
        clock.advance(hour);
        assert_eq!(throttle.hit("signup:x", 2, hour).await, Decision::Allowed);
        assert_eq!(
            throttle.hit("signup:x", 0, hour).await,
            Decision::Allowed,
            "0 = off"
        );
    }
}
