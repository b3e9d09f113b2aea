//! The log line writer: one line per event, text (logfmt) or JSON, carrying the
//! `request_id` and `trace_id` of the request it was logged in.
//!
//! Written for the hot path (one line per request): spans are none of its business (the
//! request's two ids come from the request context, so no span is needed for them); the
//! line is built in a reused per-thread buffer; no ANSI styling; the timestamp's date and
//! time part is formatted once per second per thread. Lines go to a batching writer, so a
//! request never waits for stdout.

use std::{
    cell::RefCell,
    fmt::{self, Write as _},
};

use tracing::{
    Event, Level, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{Layer, layer::Context};

use super::writer::BatchWriter;
use crate::domain::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// Writes every event it sees to `writer`.
pub struct LogLayer {
    format: Format,
    writer: BatchWriter,
}

impl LogLayer {
    pub fn new(format: Format, writer: BatchWriter) -> Self {
        Self { format, writer }
    }
}

/// Lets events through and never spans, decided once per call site (a filter function
/// would be asked again for every span).
pub struct EventsOnly;

impl<S> tracing_subscriber::layer::Filter<S> for EventsOnly {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        metadata.is_event()
    }

    fn callsite_enabled(
        &self,
        metadata: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if metadata.is_event() {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        LINE.with(|line| {
            let Ok(mut line) = line.try_borrow_mut() else {
                return; // an event logged while formatting one: drop it
            };
            line.clear();
            let metadata = event.metadata();
            write_timestamp(&mut line, self.format);
            match self.format {
                Format::Text => {
                    let _ = write!(line, " {:>5} ", level_name(metadata.level()));
                    let mut visitor = TextFields { line: &mut line };
                    event.record(&mut visitor);
                }
                Format::Json => {
                    line.push_str(",\"level\":\"");
                    line.push_str(level_name(metadata.level()));
                    line.push('"');
                    let mut visitor = JsonFields { line: &mut line };
                    event.record(&mut visitor);
                }
            }
            let _ = super::with_request(|request| {
                self.write_field(&mut line, "request_id", request.request_id.as_str());
                self.write_field(&mut line, "trace_id", request.trace_id.as_str());
            });
            if self.format == Format::Json {
                line.push('}');
            }
            line.push('\n');
            self.writer.push(line.as_bytes());
        });
    }
}

impl LogLayer {
    fn write_field(&self, line: &mut String, name: &str, value: &str) {
        match self.format {
            Format::Text => {
                line.push(' ');
                line.push_str(name);
                line.push('=');
                push_text_value(line, value);
            }
            Format::Json => {
                line.push_str(",\"");
                line.push_str(name);
                line.push_str("\":");
                push_json_string(line, value);
            }
        }
    }
}

thread_local! {
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
    /// The second last formatted and its `YYYY-MM-DDTHH:MM:SS` text.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// RFC 3339 UTC with microseconds; the date and time are formatted once per second.
fn write_timestamp(line: &mut String, format: Format) {
    let micros = clock::wall_clock_micros();
    let (secs, fraction) = (micros / 1_000_000, micros % 1_000_000);
    if format == Format::Json {
        line.push_str("{\"timestamp\":\"");
    }
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != secs {
            cached.1.clear();
            let _ = clock::write_date_time(&mut cached.1, secs);
            cached.0 = secs;
        }
        line.push_str(&cached.1);
    });
    let _ = write!(line, ".{fraction:06}Z");
    if format == Format::Json {
        line.push('"');
    }
}

/// A logfmt value: bare when it is a plain word, quoted and escaped otherwise.
fn push_text_value(line: &mut String, value: &str) {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        line.push_str(value);
    } else {
        let _ = write!(line, "{value:?}");
    }
}

fn push_json_string(line: &mut String, value: &str) {
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

struct TextFields<'a> {
    line: &'a mut String,
}

impl Visit for TextFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.line.push_str(value);
            return;
        }
        self.line.push(' ');
        self.line.push_str(field.name());
        self.line.push('=');
        push_text_value(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.line, "{value:?}");
            return;
        }
        self.line.push(' ');
        self.line.push_str(field.name());
        self.line.push('=');
        // Display-like values (`%x`) and numbers print bare; text from Debug is quoted.
        let start = self.line.len();
        let _ = write!(self.line, "{value:?}");
        let needs_quotes = self.line[start..]
            .bytes()
            .any(|b| b == b' ' || b == b'"' || b == b'=');
        if needs_quotes && !self.line[start..].starts_with('"') {
            let written = self.line.split_off(start);
            let _ = write!(self.line, "{written:?}");
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let _ = write!(self.line, " {}={value}", field.name());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let _ = write!(self.line, " {}={value}", field.name());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let _ = write!(self.line, " {}={value}", field.name());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let _ = write!(self.line, " {}={value}", field.name());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_debug(field, &format_args!("{value}"));
    }
}

struct JsonFields<'a> {
    line: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) {
        self.line.push_str(",\"");
        self.line.push_str(field.name());
        self.line.push_str("\":");
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        push_json_string(self.line, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        push_json_string(self.line, &format!("{value:?}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.line, "{value}");
        } else {
            self.line.push_str("null");
        }
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        let _ = write!(self.line, "{value}");
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        push_json_string(self.line, &value.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_values_are_quoted_only_when_needed() {
        let mut line = String::new();
        push_text_value(&mut line, "plain");
        line.push(' ');
        push_text_value(&mut line, "two words");
        line.push(' ');
        push_text_value(&mut line, "");
        assert_eq!(line, r#"plain "two words" """#);
    }

    #[test]
    fn json_strings_are_escaped() {
        let mut line = String::new();
        push_json_string(&mut line, "a\"b\\c\nd\u{1}");
        assert_eq!(line, r#""a\"b\\c\nd\u0001""#);
    }
}
