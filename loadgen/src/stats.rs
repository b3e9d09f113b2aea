//! Latency histograms and the report lines.

use std::time::Duration;

use hdrhistogram::Histogram;

/// What one worker saw; merged at the end of a run.
pub struct Recorder {
    pub latencies: Histogram<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            // 1 µs .. 60 s, 3 significant digits.
            latencies: Histogram::new_with_bounds(1, 60_000_000, 3)
                .unwrap_or_else(|_| unreachable!("valid bounds")),
            errors: 0,
            first_error: None,
        }
    }

    pub fn ok(&mut self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self.latencies.record(micros.min(60_000_000));
    }

    pub fn error(&mut self, what: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what());
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        let _ = self.latencies.add(&other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// The figures of one scenario run.
pub struct Report {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub first_error: Option<String>,
}

impl Report {
    pub fn from(name: &str, recorder: Recorder, elapsed: Duration) -> Self {
        let ms = |q: f64| recorder.latencies.value_at_quantile(q) as f64 / 1000.0;
        Self {
            name: name.to_owned(),
            requests: recorder.latencies.len(),
            errors: recorder.errors,
            elapsed,
            p50: ms(0.5),
            p99: ms(0.99),
            p999: ms(0.999),
            max: recorder.latencies.max() as f64 / 1000.0,
            first_error: recorder.first_error,
        }
    }

    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn header() -> String {
        format!(
            "{:<26} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8}  {}",
            "scenario", "req/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors", "vs ceiling"
        )
    }

    pub fn line(&self, ceiling: Option<&Report>) -> String {
        let ratio = ceiling
            .map(|c| {
                format!(
                    "{:.0}% of {} ({:.0} req/s)",
                    100.0 * self.rate() / c.rate().max(1e-9),
                    c.name,
                    c.rate()
                )
            })
            .unwrap_or_default();
        format!(
            "{:<26} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8}  {}",
            self.name,
            self.rate(),
            self.p50,
            self.p99,
            self.p999,
            self.max,
            self.errors,
            ratio
        )
    }
}
