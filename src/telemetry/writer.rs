//! Where log lines go: a shared buffer that a background thread writes to stdout in
//! batches. A request appends its line under a short lock and never waits for stdout, and
//! there is no wake-up per line: the writer thread runs every few milliseconds (sooner when
//! the buffer grows), so under load one system call carries hundreds of lines.
//!
//! If stdout stops draining, the buffer stops growing at `MAX_BUFFERED` and further lines
//! are dropped and counted rather than requests stalled or memory used without bound.

use std::{
    io::Write,
    sync::{Arc, Condvar, Mutex},
    thread::JoinHandle,
    time::Duration,
};

/// How long a line may wait before it is written.
const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// A buffer this large is written at once.
const FLUSH_AT: usize = 64 * 1024;
/// Beyond this, lines are dropped until the writer catches up.
const MAX_BUFFERED: usize = 4 * 1024 * 1024;

struct State {
    buffer: Vec<u8>,
    dropped: u64,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// Appends lines; cheap to clone.
#[derive(Clone)]
pub struct BatchWriter(Arc<Shared>);

/// Writes what is left and stops the thread when dropped.
pub struct WriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// A writer whose thread writes to `out`.
    pub fn start(out: impl Write + Send + 'static) -> std::io::Result<(BatchWriter, WriterGuard)> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                buffer: Vec::with_capacity(FLUSH_AT),
                dropped: 0,
                closed: false,
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn({
                let shared = shared.clone();
                move || write_loop(&shared, out)
            })?;
        Ok((
            BatchWriter(shared.clone()),
            WriterGuard {
                shared,
                thread: Some(thread),
            },
        ))
    }

    /// Appends one whole line.
    pub fn push(&self, line: &[u8]) {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.buffer.len() + line.len() > MAX_BUFFERED {
            state.dropped += 1;
            return;
        }
        state.buffer.extend_from_slice(line);
        if state.buffer.len() >= FLUSH_AT {
            self.0.wake.notify_one();
        }
    }
}

fn write_loop(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::with_capacity(FLUSH_AT);
    loop {
        let (dropped, closed) = {
            let state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let (mut state, _) = shared
                .wake
                .wait_timeout_while(state, FLUSH_EVERY, |s| {
                    s.buffer.len() < FLUSH_AT && !s.closed
                })
                .unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut batch, &mut state.buffer);
            (std::mem::take(&mut state.dropped), state.closed)
        };
        if dropped > 0 {
            let _ = writeln!(
                batch,
                "log writer: {dropped} lines dropped while stdout was not draining"
            );
        }
        if !batch.is_empty() {
            let _ = out.write_all(&batch);
            let _ = out.flush();
            batch.clear();
        }
        if closed {
            return;
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_by_the_time_the_guard_is_dropped() {
        let sink = Sink::default();
        let (writer, guard) = BatchWriter::start(sink.clone()).unwrap();
        for i in 0..10_000 {
            writer.push(format!("line {i}\n").as_bytes());
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 10_000);
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, l)| *l == format!("line {i}"))
        );
    }
}
