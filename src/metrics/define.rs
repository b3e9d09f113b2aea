//! Creating and registering one metric.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

// The definitions below are static: names, help texts and label names are fixed here and
// every one is exercised by the tests, so their construction cannot fail at run time.

#[expect(clippy::expect_used, reason = "static metric definition")]
pub(super) fn counter_vec(
    registry: &Registry,
    name: String,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    let metric =
        IntCounterVec::new(Opts::new(name, help), labels).expect("static metric definition");
    register(registry, metric)
}

pub(super) fn histogram_vec(
    registry: &Registry,
    name: String,
    help: &str,
    buckets: Vec<f64>,
    labels: &[&str],
) -> HistogramVec {
    #[expect(clippy::expect_used, reason = "static metric definition")]
    let metric = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
        .expect("static metric definition");
    register(registry, metric)
}

#[expect(clippy::expect_used, reason = "static metric definition")]
pub(super) fn counter(registry: &Registry, name: String, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help).expect("static metric definition");
    register(registry, metric)
}

#[expect(clippy::expect_used, reason = "static metric definition")]
pub(super) fn gauge(registry: &Registry, name: String, help: &str) -> IntGauge {
    let metric = IntGauge::new(name, help).expect("static metric definition");
    register(registry, metric)
}

#[expect(clippy::expect_used, reason = "static metric definition")]
pub(super) fn gauge_vec(
    registry: &Registry,
    name: String,
    help: &str,
    labels: &[&str],
) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition");
    register(registry, metric)
}

#[expect(clippy::expect_used, reason = "each metric is registered once")]
fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, metric: M) -> M {
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}
