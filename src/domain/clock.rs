//! Time as a parameter: services read the wall clock through this trait, so tests can fix
//! it. This module is the only place that reads the system clock (clippy enforces it).

use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_millis(&self) -> u64;

    fn now_secs(&self) -> i64 {
        i64::try_from(self.now_millis() / 1000).unwrap_or(i64::MAX)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_millis(&self) -> u64 {
        u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A clock that stands still until moved: tests decide what time it is.
#[derive(Debug)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    /// Starting at the system clock's time.
    pub fn starting_now() -> Self {
        Self(std::sync::atomic::AtomicU64::new(SystemClock.now_millis()))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let millis = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0
            .fetch_add(millis, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_millis(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Microseconds since the Unix epoch, for log timestamps (never for decisions).
pub fn wall_clock_micros() -> u64 {
    u64::try_from(since_epoch().as_micros()).unwrap_or(u64::MAX)
}

#[expect(
    clippy::disallowed_methods,
    reason = "the one place that reads the system clock"
)]
fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// RFC 3339 in UTC, to the second: `2026-11-27T08:21:09Z`.
pub fn rfc3339(unix_millis: i64) -> String {
    let mut out = String::with_capacity(20);
    let _ = write_date_time(
        &mut out,
        u64::try_from(unix_millis.max(0) / 1000).unwrap_or(0),
    );
    out.push('Z');
    out
}

/// `YYYY-MM-DDTHH:MM:SS` of a Unix time (proleptic Gregorian, Howard Hinnant's algorithm).
pub fn write_date_time(out: &mut String, unix_secs: u64) -> std::fmt::Result {
    use std::fmt::Write as _;
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0);
    let rem = unix_secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_calendar() {
        let mut out = String::new();
        write_date_time(&mut out, 0).unwrap();
        assert_eq!(out, "1970-01-01T00:00:00");
        out.clear();
        write_date_time(&mut out, 1_709_210_096).unwrap(); // a leap day
        assert_eq!(out, "2024-02-29T12:34:56");
        out.clear();
        write_date_time(&mut out, 4_102_444_799).unwrap();
        assert_eq!(out, "2099-12-31T23:59:59");
    }

    #[test]
    fn rfc3339_is_utc_to_the_second() {
        assert_eq!(rfc3339(1_709_210_096_789), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }
}
