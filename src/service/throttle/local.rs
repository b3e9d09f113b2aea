//! This replica's own counters, for when Redis is absent or failing: the same rules as the
//! scripts, in bounded tables (the least used entries go first when full).

use std::{sync::Mutex, time::Duration};

use quick_cache::sync::Cache;

use super::{
    keys::LockKey,
    policy::{IN_FLIGHT_LIFETIME, LockoutPolicy},
};

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
    /// Attempts in flight per key: (id, when it lapses in Unix ms).
    in_flight: Cache<LockKey, Vec<(String, i64)>>,
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
            in_flight: Cache::new(MAX_ENTRIES),
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

    /// As the script's `attempt`: (-1, remaining ms) while locked, (-2, 0) while the
    /// attempts in flight use up the budget, else the attempt is in flight: (failures, 0).
    pub(super) fn attempt(
        &self,
        key: &LockKey,
        policy: &LockoutPolicy,
        now: i64,
        id: &str,
    ) -> (i64, i64) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|p| p.into_inner());
        let state = self.state(key, policy, now);
        if state.locked_until > now {
            return (-1, state.locked_until - now);
        }
        let mut flying = self.in_flight.get(key).unwrap_or_default();
        flying.retain(|(_, lapses)| *lapses > now);
        let budget = policy.max_failures.saturating_sub(state.failures).max(1);
        if flying.len() >= budget as usize {
            self.in_flight.insert(key.clone(), flying);
            return (-2, 0);
        }
        flying.push((id.to_owned(), now + millis(IN_FLIGHT_LIFETIME)));
        self.in_flight.insert(key.clone(), flying);
        (i64::from(state.failures), 0)
    }

    /// As the script's `fail`: the attempt `id` failed; (failures, lockout begun in ms or 0).
    pub(super) fn fail(
        &self,
        key: &LockKey,
        policy: &LockoutPolicy,
        now: i64,
        id: &str,
    ) -> (i64, i64) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|p| p.into_inner());
        self.land(key, id);
        let mut state = self.state(key, policy, now);
        state.failures += 1;
        let mut begun = 0;
        if policy.max_failures > 0 && state.failures >= policy.max_failures {
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

    /// As the script's `release`: the attempt `id` ended without failing.
    pub(super) fn release(&self, key: &LockKey, id: &str) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|p| p.into_inner());
        self.land(key, id);
    }

    /// Takes the attempt `id` out of flight (the caller holds `update`).
    fn land(&self, key: &LockKey, id: &str) {
        if let Some(mut flying) = self.in_flight.get(key) {
            flying.retain(|(other, _)| other != id);
            match flying.is_empty() {
                true => {
                    self.in_flight.remove(key);
                }
                false => self.in_flight.insert(key.clone(), flying),
            }
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
