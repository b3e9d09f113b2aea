//! Counters that limit abuse (SPEC section 10), shared by every replica through Redis when
//! it is configured (each decision one Lua script, atomic, with TTLs so that nothing grows
//! without bound), and kept per replica when Redis is absent or failing (bounded memory
//! there too): never "no limit".
//!
//! Two shapes:
//! - a **lockout** counter (failed logins, failed password checks): after `max` failures
//!   within the window the key is locked; each further lockout inside the window doubles,
//!   up to a ceiling. Attempts are in flight until their outcome is known, and no more are
//!   let through at once than the failures still allowed (`lockout`);
//! - a **window** counter (signups, mails): at most `limit` hits per window.
//!
//! What a counter counts is typed (`LockoutKey`, `WindowKey`, in `keys`); the Redis key
//! names they render are unchanged.

mod counters;
mod keys;
mod local;
mod lockout;
mod policy;
mod scripts;

pub use counters::{Decision, Throttle};
pub use keys::{LockoutKey, WindowKey};
pub use lockout::{Attempt, InFlight};
pub use policy::LockoutPolicy;

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;
    use crate::domain::clock::ManualClock;
    use crate::metrics::Metrics;

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

    /// One attempt that fails: the lockout it begins, or the refusal.
    async fn fail(throttle: &Throttle, key: &LockoutKey, policy: &LockoutPolicy) -> Outcome {
        match throttle.attempt(key, policy).await {
            Attempt::Allowed(flight) => match flight.failed().await {
                true => Outcome::Begins,
                false => Outcome::Free,
            },
            Attempt::Limited { retry_after } => Outcome::Limited(retry_after.as_secs()),
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Outcome {
        Free,
        Begins,
        Limited(u64),
    }
    use Outcome::*;

    /// The local counters follow the same rules as the script (the Redis variant is tested
    /// against a real Redis in tests/api/abuse.rs).
    #[tokio::test]
    async fn lockouts_double_inside_the_window_up_to_the_ceiling() {
        let clock = Arc::new(ManualClock::starting_now());
        let throttle = Throttle::new(None, clock.clone(), Metrics::new("test"));
        let key = pair("10.0.0.1");
        let policy = policy();
        // An attempt that turns out right is not counted: right ones never add up.
        for _ in 0..5 {
            let Attempt::Allowed(flight) = throttle.attempt(&key, &policy).await else {
                panic!("refused")
            };
            flight.released().await;
        }
        assert_eq!(fail(&throttle, &key, &policy).await, Free);
        assert_eq!(fail(&throttle, &key, &policy).await, Free);
        assert_eq!(
            fail(&throttle, &key, &policy).await,
            Begins,
            "the third begins it"
        );
        assert_eq!(fail(&throttle, &key, &policy).await, Limited(60));
        clock.advance(Duration::from_secs(61));
        // The count is still at the limit: one more failure locks again, twice as long.
        assert_eq!(fail(&throttle, &key, &policy).await, Begins);
        assert_eq!(fail(&throttle, &key, &policy).await, Limited(120));
        clock.advance(Duration::from_secs(121));
        fail(&throttle, &key, &policy).await;
        assert_eq!(fail(&throttle, &key, &policy).await, Limited(200), "capped");
        // Another address of the same email is counted on its own.
        let other = pair("10.0.0.2");
        assert_eq!(fail(&throttle, &other, &policy).await, Free);
        // A success clears the pair.
        throttle.clear(&key, &policy).await;
        assert_eq!(fail(&throttle, &key, &policy).await, Free);
        // After the window, counting starts again.
        clock.advance(Duration::from_secs(901));
        assert_eq!(fail(&throttle, &key, &policy).await, Free);
        assert_eq!(fail(&throttle, &key, &policy).await, Free);
    }

    /// No more attempts are in flight than failures the key still allows; the next waits
    /// for an outcome, and a dropped attempt gives its place back.
    #[tokio::test]
    async fn attempts_beyond_the_budget_wait_for_those_in_flight() {
        let clock = Arc::new(ManualClock::starting_now());
        let throttle = Throttle::new(None, clock.clone(), Metrics::new("test"));
        let key = pair("10.0.0.1");
        let policy = policy();
        let mut flights = Vec::new();
        for _ in 0..3 {
            match throttle.attempt(&key, &policy).await {
                Attempt::Allowed(flight) => flights.push(flight),
                refused => panic!("{refused:?}"),
            }
        }
        let waiter = {
            let (throttle, key) = (throttle.clone(), key.clone());
            tokio::spawn(async move { throttle.attempt(&key, &policy).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "the fourth waits");
        drop(flights.pop());
        let Attempt::Allowed(fourth) = waiter.await.unwrap() else {
            panic!("let through once one landed")
        };
        fourth.released().await;
        // Two failures leave a budget of one: one in flight, the next waits again.
        for flight in flights {
            assert!(!flight.failed().await);
        }
        let Attempt::Allowed(last) = throttle.attempt(&key, &policy).await else {
            panic!("one left")
        };
        let waiter = {
            let (throttle, key) = (throttle.clone(), key.clone());
            tokio::spawn(async move { throttle.attempt(&key, &policy).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished());
        assert!(last.failed().await, "the third failure locks");
        assert!(matches!(waiter.await.unwrap(), Attempt::Limited { .. }));
    }

    #[tokio::test]
    async fn clearing_a_family_clears_every_member() {
        let clock = Arc::new(ManualClock::starting_now());
        let throttle = Throttle::new(None, clock.clone(), Metrics::new("test"));
        let policy = policy();
        let keys: Vec<LockoutKey> = (0..3).map(|i| pair(&format!("10.0.0.{i}"))).collect();
        for key in &keys {
            for _ in 0..3 {
                fail(&throttle, key, &policy).await;
            }
            assert!(matches!(fail(&throttle, key, &policy).await, Limited(_)));
        }
        clock.advance(Duration::from_millis(1));
        throttle.clear_family(&keys[0], &policy).await;
        for key in &keys {
            assert_eq!(fail(&throttle, key, &policy).await, Free);
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
