//! This replica's own counters, for when Redis is absent or failing: the same rules as the
//! scripts, in bounded tables (the least used entries go first when full).

use std::{sync::Mutex, time::Duration};

use quick_cache::sync::Cache;

use super::{keys::LockKey, policy::LockoutPolicy};

/// Entries per table: enough for every address that failed a login in a window, bounded.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct LockState {
    failures: u32,
    lockouts: u32,
    locked_until: i64,
    since: i64,
}

pub struct LocalCounters {
    locks: Cache<LockKey, LockState>,
    /// When each family was last cleared (Unix ms).
    cleared: Cache<String, i64>,
    /// Window counters: (hits, end of the window in Unix ms).
    windows: Cache<String, (i64, i64)>,
    /// Read-modify-write of one entry is one step (logins are rare next to the lock's cost).
    update: Mutex<()>,
}

impl Default for LocalCounters {
    fn default() -> Self {
        Self {
            locks: Cache::new(MAX_ENTRIES),
            cleared: Cache::new(MAX_ENTRIES),
            windows: Cache::new(MAX_ENTRIES),
            update: Mutex::new(()),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl LocalCounters {
    /// The state of `key` at `now`, reset when its window passed or its family was cleared.
    fn state(&self, key: &LockKey, policy: &LockoutPolicy, now: i64) -> LockState {
        let fresh = LockState {
            failures: 0,
            lockouts: 0,
            locked_until: 0,
            since: now,
        };
        let cleared = self.cleared.get(&key.family).unwrap_or(0);
        match self.locks.get(key) {
            Some(s) if s.since >= cleared && now - s.since <= millis(policy.window) => s,
            _ => fresh,
        }
    }

    /// As the script's `attempt`: (-1, remaining ms) while locked, else the attempt is
    /// counted and (failures, lockout begun in ms or 0).
    pub(super) fn attempt(&self, key: &LockKey, policy: &LockoutPolicy, now: i64) -> (i64, i64) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state(key, policy, now);
        if state.locked_until > now {
            return (-1, state.locked_until - now);
        }
        state.failures += 1;
        let mut begun = 0;
        if state.failures >= policy.max_failures {
            state.lockouts += 1;
            let doubling = 2_i64.saturating_pow(state.lockouts.saturating_sub(1));
            begun = millis(policy.first_lockout)
                .saturating_mul(doubling)
                .min(millis(policy.max_lockout));
            state.locked_until = now + begun;
        }
        self.locks.insert(key.clone(), state);
        (i64::from(state.failures), begun)
    }

    /// Takes one counted attempt back.
    pub(super) fn succeed(&self, key: &LockKey, policy: &LockoutPolicy, now: i64) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let mut state = self.state(key, policy, now);
        if state.failures > 0 {
            state.failures -= 1;
            self.locks.insert(key.clone(), state);
        }
    }

    pub(super) fn clear(&self, key: &LockKey) {
        self.locks.remove(key);
    }

    pub(super) fn clear_family(&self, key: &LockKey, now: i64) {
        self.cleared.insert(key.family.clone(), now);
        self.locks.remove(key);
    }

    /// Counts a hit; returns (hits in the window, remaining ms of the window).
    pub(super) fn hit(&self, key: &str, window: Duration, now: i64) -> (i64, i64) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let (hits, end) = match self.windows.get(key) {
            Some((hits, end)) if end > now => (hits + 1, end),
            _ => (1, now + millis(window)),
        };
        self.windows.insert(key.to_owned(), (hits, end));
        (hits, end - now)
    }
}
