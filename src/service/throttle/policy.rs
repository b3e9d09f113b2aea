//! How a lockout counter behaves.

use std::time::Duration;

/// How a lockout counter behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within the window that lock the key; 0 = never.
    pub max_failures: u32,
    pub window: Duration,
    pub first_lockout: Duration,
    pub max_lockout: Duration,
}

/// How long an attempt stays in flight when its replica never settles it (a crash): longer
/// than any request may run.
pub(super) const IN_FLIGHT_LIFETIME: Duration = Duration::from_secs(60);
