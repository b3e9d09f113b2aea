//! The lockout counters around every password check (SPEC section 10, rules 15.4-15.6):
//! an attempt is in flight on each of its counters while the password is checked, and its
//! outcome settles them all.

use std::time::Duration;

use crate::{
    domain::Error,
    service::throttle::{Attempt, InFlight, LockoutKey, LockoutPolicy},
};

use super::AuthService;

/// One counter a check is in flight on.
pub(super) struct Counter {
    pub key: LockoutKey,
    pub policy: LockoutPolicy,
    /// Whether a right password forgets the failures counted so far (the pair, the
    /// account), or only is not counted (an address shared by many customers).
    pub cleared_by_success: bool,
}

/// A password check in flight on its counters.
pub(super) struct Checking(Vec<(Counter, InFlight)>);

impl AuthService {
    /// The customer's own count of password and code checks (rule 15.4), with login's
    /// limit, window and lockout.
    pub(super) fn customer_counter(&self, customer: crate::domain::CustomerId) -> Counter {
        Counter {
            key: LockoutKey::Customer(customer),
            policy: self.0.abuse.login,
            cleared_by_success: true,
        }
    }

    /// Puts one attempt in flight on each counter, in order; refused (429) by the first
    /// that is locked, before any hashing (those already entered are released).
    pub(super) async fn enter(&self, counters: Vec<Counter>) -> Result<Checking, Error> {
        let mut held = Vec::with_capacity(counters.len());
        for counter in counters {
            match self.0.throttle.attempt(&counter.key, &counter.policy).await {
                Attempt::Allowed(flight) => held.push((counter, flight)),
                Attempt::Limited { retry_after } => {
                    for (_, flight) in held {
                        flight.released().await;
                    }
                    return Err(self.refuse(counter.key.label(), retry_after));
                }
            }
        }
        Ok(Checking(held))
    }

    /// The check's outcome: a failure counts on every counter (a lockout it begins is
    /// counted in `login_lockouts_total`), a success on none.
    pub(super) async fn settle(&self, checking: Checking, right: bool) {
        for (counter, flight) in checking.0 {
            if right {
                flight.released().await;
                if counter.cleared_by_success {
                    self.0.throttle.clear(&counter.key, &counter.policy).await;
                }
            } else if flight.failed().await {
                let limit = counter.key.label();
                self.0.metrics.lockouts.with_label_values(&[limit]).inc();
            }
        }
    }

    /// Neither a failure nor a success: the attempts leave flight and nothing is counted
    /// or cleared (a right password that still needs its second step).
    pub(super) async fn release(&self, checking: Checking) {
        for (_, flight) in checking.0 {
            flight.released().await;
        }
    }

    /// A refusal by a limit: counted, and answered at once (the HTTP layer holds the
    /// answer for `THROTTLE_REFUSAL_DELAY_MILLISECONDS`, outside the load shedder).
    pub(super) fn refuse(&self, limit: &'static str, retry_after: Duration) -> Error {
        self.0.metrics.throttled.with_label_values(&[limit]).inc();
        Error::TooManyAttempts { retry_after }
    }
}
