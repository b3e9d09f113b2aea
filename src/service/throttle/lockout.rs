//! Lockout counters: an attempt is in flight from the moment it is let through until its
//! outcome is known. Only failures count, and no more attempts are in flight at once than
//! the failures the key still allows, so that a burst of guesses never checks more than
//! the limit, and a burst of right passwords waits for the outcome of those ahead of it
//! instead of being refused (rule 15.6).

use std::time::{Duration, Instant};

use fred::types::Value;

use super::{
    counters::{Throttle, as_int, millis},
    keys::{LockKey, LockoutKey},
    policy::{IN_FLIGHT_LIFETIME, LockoutPolicy},
    scripts,
};

/// How long an attempt waits for the outcome of those in flight before it is refused.
const BUSY_WAIT_LIMIT: Duration = Duration::from_secs(10);
/// What a refused waiter is told to wait.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The answer to an attempt on a lockout counter.
#[derive(Debug)]
pub enum Attempt {
    /// Go ahead; in flight until it is settled (`failed`, `released`, or dropped).
    Allowed(InFlight),
    Limited {
        retry_after: Duration,
    },
}

/// An attempt let through. Dropped unsettled (the request went away), it is released.
#[derive(Debug)]
pub struct InFlight(Option<Ticket>);

#[derive(Debug)]
struct Ticket {
    throttle: Throttle,
    key: LockKey,
    policy: LockoutPolicy,
    id: String,
    /// Where it was put in flight: it is settled there.
    on_redis: bool,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

impl InFlight {
    /// An attempt on a counter that is off.
    fn unlimited() -> Self {
        Self(None)
    }

    /// The attempt failed: counted. Whether this failure began a lockout.
    pub async fn failed(mut self) -> bool {
        match self.0.take() {
            Some(ticket) => ticket.fail().await,
            None => false,
        }
    }

    /// The attempt turned out right, or was not a check after all: not counted.
    pub async fn released(mut self) {
        if let Some(ticket) = self.0.take() {
            ticket.release().await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(ticket) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(ticket.release());
        }
    }
}

impl Ticket {
    async fn fail(self) -> bool {
        let now = self.throttle.now_ms();
        let reply = match self.on_redis {
            true => self.script("fail", now).await,
            false => None,
        };
        let begun = match reply {
            Some(Value::Array(reply)) => reply.get(1).and_then(as_int).unwrap_or(0),
            // Redis went away since: this replica counts it.
            _ => {
                self.throttle
                    .local
                    .fail(&self.key, &self.policy, now, &self.id)
                    .1
            }
        };
        begun > 0
    }

    async fn release(self) {
        let now = self.throttle.now_ms();
        if !self.on_redis || self.script("release", now).await.is_none() {
            self.throttle.local.release(&self.key, &self.id);
        }
    }

    async fn script(&self, op: &str, now: i64) -> Option<Value> {
        self.throttle
            .lockout_script(op, &self.key, &self.policy, now, &self.id)
            .await
    }
}

impl Throttle {
    /// Runs the lockout script on Redis; `None` when Redis is absent or failing.
    pub(super) async fn lockout_script(
        &self,
        op: &str,
        key: &LockKey,
        policy: &LockoutPolicy,
        now: i64,
        id: &str,
    ) -> Option<Value> {
        let redis = self.redis.as_ref()?;
        let args = vec![
            op.to_owned(),
            now.to_string(),
            policy.max_failures.to_string(),
            millis(policy.window).to_string(),
            millis(policy.first_lockout).to_string(),
            millis(policy.max_lockout).to_string(),
            id.to_owned(),
            millis(IN_FLIGHT_LIFETIME).to_string(),
        ];
        redis
            .eval(
                "throttle",
                scripts::LOCKOUT,
                key.redis_keys().to_vec(),
                args,
            )
            .await
            .ok()
    }

    /// An attempt on `key`: refused while it is locked; otherwise in flight until settled.
    /// While the attempts in flight use up what the key still allows, it waits for their
    /// outcome (bounded), so that right passwords sent at once are all let through.
    pub async fn attempt(&self, key: &LockoutKey, policy: &LockoutPolicy) -> Attempt {
        if policy.max_failures == 0 {
            return Attempt::Allowed(InFlight::unlimited());
        }
        let key = key.counter();
        let id = format!("{:016x}", rand::random::<u64>());
        let started = Instant::now();
        loop {
            let now = self.now_ms();
            let (first, second, on_redis) =
                match self.lockout_script("attempt", &key, policy, now, &id).await {
                    Some(Value::Array(reply)) => (
                        reply.first().and_then(as_int).unwrap_or(0),
                        reply.get(1).and_then(as_int).unwrap_or(0),
                        true,
                    ),
                    _ => {
                        let (first, second) = self.local.attempt(&key, policy, now, &id);
                        (first, second, false)
                    }
                };
            match first {
                -1 => {
                    return Attempt::Limited {
                        retry_after: Duration::from_millis(u64::try_from(second).unwrap_or(0)),
                    };
                }
                -2 if started.elapsed() >= BUSY_WAIT_LIMIT => {
                    return Attempt::Limited {
                        retry_after: BUSY_RETRY_AFTER,
                    };
                }
                // About a tenth of a password check, spread so that waiters do not poll in step.
                -2 => {
                    let pause = 5 + rand::random::<u64>() % 15;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                _ => {
                    return Attempt::Allowed(InFlight(Some(Ticket {
                        throttle: self.clone(),
                        key,
                        policy: *policy,
                        id,
                        on_redis,
                    })));
                }
            }
        }
    }

    /// Forgets the failures of `key` (a successful login; a password reset, for the
    /// account ceiling and the customer's password checks).
    pub async fn clear(&self, key: &LockoutKey, policy: &LockoutPolicy) {
        let key = &key.counter();
        let now = self.now_ms();
        let _ = self.lockout_script("clear", key, policy, now, "").await;
        // Whatever this replica counted while Redis was away is forgotten too.
        self.local.clear(key);
    }

    /// Forgets the failures of every key of `key`'s family (a password reset clears every
    /// address's count for its email).
    pub async fn clear_family(&self, key: &LockoutKey, policy: &LockoutPolicy) {
        let key = &key.counter();
        let now = self.now_ms();
        let _ = self
            .lockout_script("clear-family", key, policy, now, "")
            .await;
        self.local.clear_family(key, now);
    }
}
