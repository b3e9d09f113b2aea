//! What the logs and traces are configured with.

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// `APP`, `JAEGER_URL`, `LOG_FORMAT` and `LOG_LEVEL`.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// The service's name in traces; also the prefix of the HTTP metrics.
    pub app: String,
    /// The trace collector; `None` = `OTEL_EXPORTER_OTLP_ENDPOINT`, else no export.
    pub jaeger_url: Option<String>,
    pub log_format: LogFormat,
    /// A `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    pub log_level: String,
}
