//! Fail fast while a dependency (the database, Redis) is unreachable: after a connection
//! failure, calls are refused at once for a short while instead of each waiting for a
//! timeout. The first call after the pause tries again, so the service recovers by itself.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

// tokio's clock, so that tests can pause and advance it.
use tokio::time::Instant;

#[derive(Debug)]
pub struct Breaker {
    epoch: Instant,
    /// Milliseconds since `epoch` until which requests are refused; 0 = closed.
    open_until_ms: AtomicU64,
    pause: Duration,
}

impl Breaker {
    pub fn new(pause: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            open_until_ms: AtomicU64::new(0),
            pause,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// True while requests should be refused without trying.
    pub fn is_open(&self) -> bool {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        until != 0 && self.now_ms() < until
    }

    pub fn trip(&self) {
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(self.pause.as_millis()).unwrap_or(u64::MAX));
        self.open_until_ms.store(until.max(1), Ordering::Relaxed);
    }

    pub fn reset(&self) {
        if self.open_until_ms.load(Ordering::Relaxed) != 0 {
            self.open_until_ms.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_for_the_pause_then_lets_a_request_through() {
        let breaker = Breaker::new(Duration::from_millis(30));
        assert!(!breaker.is_open());
        breaker.trip();
        assert!(breaker.is_open());
        tokio::time::advance(Duration::from_millis(29)).await;
        assert!(breaker.is_open());
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(!breaker.is_open());
        breaker.trip();
        breaker.reset();
        assert!(!breaker.is_open());
    }
}
