//! Logs and traces. `tracing` events go to stdout, as logfmt text or JSON (`log`), filtered
//! by `RUST_LOG` or `LOG_LEVEL`; spans go to an OTLP collector when `JAEGER_URL` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, in batches, off the request path. Trace context is
//! taken from callers' W3C `traceparent` and Jaeger `uber-trace-id` headers.

mod log;
mod settings;
mod writer;

pub use settings::{LogFormat, TelemetrySettings};

use opentelemetry::{
    Context,
    propagation::{Extractor, TextMapCompositePropagator},
    trace::{TraceContextExt, TraceId, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt as _, Targets},
    prelude::*,
};

/// Keeps the trace exporter alive; `shutdown` flushes what is still batched.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
    /// Flushes the log writer's buffer when dropped.
    _log_writer: Option<writer::WriterGuard>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "flushing traces at shutdown");
        }
    }
}

/// The collector to export to: `JAEGER_URL`, else `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn collector_endpoint(settings: &TelemetrySettings) -> Option<String> {
    let configured = settings.jaeger_url.clone().or_else(|| {
        std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT")
            .ok()
            .filter(|v| !v.is_empty())
    })?;
    Some(otlp_endpoint(&configured))
}

/// The Go service's `JAEGER_URL` names Jaeger's Thrift collector
/// (`http://jaeger:14268/api/traces`); Jaeger takes OTLP/gRPC on port 4317 of the same host.
fn otlp_endpoint(url: &str) -> String {
    match url.strip_suffix("/api/traces") {
        Some(base) => {
            let host = base.rsplit_once(':').map_or(base, |(host, _)| host);
            format!("{host}:4317")
        }
        None => url.to_owned(),
    }
}

/// Installs the global subscriber and propagator. Fails, naming the setting, when the log
/// filter or the collector endpoint is invalid.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(opentelemetry_jaeger_propagator::Propagator::new()),
    ]));
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .map_err(|e| anyhow::anyhow!("invalid value for RUST_LOG: {directives:?} ({e})"))?,
        _ => EnvFilter::try_new(&settings.log_level).map_err(|e| {
            anyhow::anyhow!(
                "invalid value for LOG_LEVEL: {:?} ({e})",
                settings.log_level
            )
        })?,
    };
    // Log lines are written by a background thread in batches: a request formats its line
    // but never waits for stdout.
    let (writer, log_writer) = writer::BatchWriter::start(std::io::stdout())
        .map_err(|e| anyhow::anyhow!("cannot start the log writer thread: {e}"))?;
    let format = match settings.log_format {
        LogFormat::Text => log::Format::Text,
        LogFormat::Json => log::Format::Json,
    };
    // Log lines are events only: spans exist for the trace exporter, and when it is off no
    // layer wants them, so a request creates none.
    let logs = log::LogLayer::new(format, writer).with_filter(filter.and(log::EventsOnly));

    let provider = match collector_endpoint(settings) {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(std::time::Duration::from_secs(5))
                .build()
                .map_err(|e| anyhow::anyhow!("invalid value for JAEGER_URL: {endpoint:?} ({e})"))?;
            let processor =
                BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
            let provider = SdkTracerProvider::builder()
                .with_span_processor(processor)
                .with_resource(
                    Resource::builder()
                        .with_service_name(settings.app.clone())
                        .build(),
                )
                .build();
            tracing::info!(%endpoint, "exporting traces over OTLP");
            Some(provider)
        }
    };
    // Already installed (tests start several apps in one process): keep the first. Without
    // an exporter there is no trace layer at all (not an empty one, which would make every
    // span call site of every crate look wanted), so spans cost nothing.
    let installed = match &provider {
        Some(provider) => {
            let traces = tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("saga-account"))
                .with_filter(Targets::new().with_target("saga_account", tracing::Level::INFO));
            tracing_subscriber::registry()
                .with(logs)
                .with(traces)
                .try_init()
                .is_ok()
        }
        None => tracing_subscriber::registry().with(logs).try_init().is_ok(),
    };
    Ok(Telemetry {
        provider,
        _log_writer: installed.then_some(log_writer),
    })
}

/// Reads propagation headers from an HTTP request or gRPC metadata.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace context, from `traceparent` or `uber-trace-id`.
pub fn extract_context(headers: &http::HeaderMap) -> Context {
    if !headers.contains_key("traceparent") && !headers.contains_key("uber-trace-id") {
        return Context::new();
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)))
}

/// What every log line of a request carries.
pub struct RequestContext {
    pub request_id: RequestId,
    pub trace_id: TraceIdText,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

/// Runs `future` as the handling of one request: its log lines carry `context`.
pub async fn in_request<F: std::future::Future>(context: RequestContext, future: F) -> F::Output {
    REQUEST.scope(context, future).await
}

/// Calls `f` with the context of the request being handled, if any.
pub fn with_request<T>(f: impl FnOnce(&RequestContext) -> T) -> Option<T> {
    REQUEST.try_with(f).ok()
}

/// A trace id as the 32 lowercase hex digits that log lines carry.
#[derive(Clone, Copy)]
pub struct TraceIdText([u8; 32]);

impl TraceIdText {
    fn new(id: TraceId) -> Self {
        let mut text = [0u8; 32];
        hex_into(&id.to_bytes(), &mut text);
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        for (slot, nibble) in pair.iter_mut().zip([b >> 4, b & 0xf]) {
            *slot = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
        }
    }
}

/// Makes `span` a child of the caller's span and returns the trace id that every log line
/// of the request carries: the exported span's, else the caller's, else a fresh one.
pub fn join_trace(span: &Span, parent: Context) -> TraceIdText {
    let from_caller = parent.span().span_context().trace_id();
    let _ = span.set_parent(parent);
    let exported = span.context().span().span_context().trace_id();
    if exported != TraceId::INVALID {
        return TraceIdText::new(exported);
    }
    if from_caller != TraceId::INVALID {
        return TraceIdText::new(from_caller);
    }
    TraceIdText::new(TraceId::from_bytes(rand::random::<[u8; 16]>()))
}

/// A request id: the caller's `x-request-id` when it is sane, else a new one.
pub enum RequestId {
    Given(http::HeaderValue),
    Generated([u8; 16]),
}

impl RequestId {
    pub fn from_headers(headers: &http::HeaderMap) -> Self {
        match headers.get("x-request-id") {
            Some(v)
                if !v.is_empty()
                    && v.len() <= 128
                    && v.as_bytes().iter().all(u8::is_ascii_graphic) =>
            {
                RequestId::Given(v.clone())
            }
            _ => {
                let mut text = [0u8; 16];
                hex_into(&rand::random::<[u8; 8]>(), &mut text);
                RequestId::Generated(text)
            }
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Checked to be visible ASCII above.
            RequestId::Given(v) => v.to_str().unwrap_or_default(),
            RequestId::Generated(text) => std::str::from_utf8(text).unwrap_or_default(),
        }
    }

    /// For the `x-request-id` response header.
    pub fn header_value(&self) -> Option<http::HeaderValue> {
        match self {
            RequestId::Given(v) => Some(v.clone()),
            RequestId::Generated(text) => http::HeaderValue::from_bytes(text).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_jaeger_url_becomes_the_otlp_port() {
        assert_eq!(
            otlp_endpoint("http://jaeger:14268/api/traces"),
            "http://jaeger:4317"
        );
        assert_eq!(
            otlp_endpoint("http://collector:4317"),
            "http://collector:4317"
        );
    }

    #[test]
    fn request_ids_are_kept_only_when_sane() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-request-id", "abc-123".parse().unwrap());
        assert_eq!(RequestId::from_headers(&headers).as_str(), "abc-123");
        headers.insert("x-request-id", "has space".parse().unwrap());
        let generated = RequestId::from_headers(&headers);
        assert_ne!(generated.as_str(), "has space");
        assert_eq!(generated.as_str().len(), 16);
        assert!(generated.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
    }

    #[test]
    fn trace_ids_print_as_32_hex_digits() {
        let id = TraceId::from_bytes([0xab; 16]);
        assert_eq!(TraceIdText::new(id).as_str(), "ab".repeat(16));
        assert_eq!(TraceIdText::new(id).as_str(), id.to_string());
    }
}
