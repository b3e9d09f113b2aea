//! Per-request limits of SPEC section 12 and the load shedder, as one layer: a body
//! announced over the limit refused at once (413, rule 15.8), `Connection: close` when the
//! request body was left unread, the request timeout (503), and a bounded queue in front of
//! the API routes (503 with `Retry-After` at once beyond it; the probes are never queued).

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Body as _, Frame, SizeHint};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::error::ApiError;
use crate::{
    domain::{Error, Unavailable},
    metrics::Metrics,
};

/// The per-request limits in one layer (one boxed future per request, not three), in
/// this order: the body is watched, the shedder admits (probes pass by), the timeout runs.
/// A response that leaves the body unread says `Connection: close`: the connection cannot
/// carry another request.
pub async fn guard(State(limits): State<RequestLimits>, request: Request, next: Next) -> Response {
    // A body announced over the limit is refused before a byte of it is read (hyper sends
    // `100 Continue` only once the body is polled, so an `Expect` gets this 413 instead).
    if announced_length(&request).is_some_and(|length| length > limits.body_limit) {
        let mut response = ApiError::BodyTooLarge.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    let (parts, body) = request.into_parts();
    let finished = (!body.is_end_stream()).then(|| Arc::new(AtomicBool::new(false)));
    let body = match &finished {
        Some(finished) => Body::new(Watched {
            inner: body,
            finished: finished.clone(),
        }),
        None => body,
    };
    let mut response = limits
        .admit_and_run(Request::from_parts(parts, body), next)
        .await;
    // Rule 15.6: a refusal is held, if at all, after its slot is given back.
    if response.status() == StatusCode::TOO_MANY_REQUESTS && !limits.refusal_delay.is_zero() {
        tokio::time::sleep(limits.refusal_delay).await;
    }
    // A 413 may have read a small body whole, but says "stop sending": close it anyway.
    let unread = finished.is_some_and(|f| !f.load(Ordering::Acquire));
    if unread || response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The `Content-Length` a request announces; `None` without one (or an unreadable one,
/// which hyper has refused already).
fn announced_length(request: &Request) -> Option<usize> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The shedder, the request timeout (`HTTP_REQUEST_TIMEOUT_SECONDS`), the body limit
/// (`HTTP_BODY_LIMIT_BYTES`) checked against the announced length, and the pause before a
/// 429 (`THROTTLE_REFUSAL_DELAY_MILLISECONDS`).
#[derive(Clone)]
pub struct RequestLimits {
    pub shedder: Shedder,
    pub timeout: Duration,
    pub body_limit: usize,
    pub refusal_delay: Duration,
}

impl RequestLimits {
    async fn admit_and_run(&self, request: Request, next: Next) -> Response {
        // The probes answer however busy the API is.
        let _slot = if matches!(request.uri().path(), "/healthz" | "/readyz") {
            None
        } else {
            match self.shedder.admit().await {
                Some(slot) => Some(slot),
                None => {
                    return ApiError::from(Error::Unavailable(Unavailable::Overloaded))
                        .into_response();
                }
            }
        };
        match tokio::time::timeout(self.timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::from(Error::Unavailable(Unavailable::TimedOut)).into_response(),
        }
    }
}

struct Watched {
    inner: Body,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How many API requests run at once, and how many may wait for how long.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    pub running: usize,
    /// A bound on memory, not the shedding rule: a burst of cheap requests drains fast.
    pub waiting: usize,
    /// The shedding rule: a request that waited this long for a slot is answered 503.
    pub wait: Duration,
}

/// At most `running` API requests at once; the others wait, each at most `wait` (shedding
/// by latency: only a queue that does not drain sheds), at most `waiting` of them.
#[derive(Clone)]
pub struct Shedder(Arc<ShedderInner>);

struct ShedderInner {
    slots: Semaphore,
    waiting: AtomicUsize,
    queue: Queue,
    metrics: Metrics,
}

impl Shedder {
    pub fn new(queue: Queue, metrics: Metrics) -> Self {
        Self(Arc::new(ShedderInner {
            slots: Semaphore::new(queue.running),
            waiting: AtomicUsize::new(0),
            queue,
            metrics,
        }))
    }
}

/// Counts a waiter out however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Shedder {
    /// A slot, at once or after a wait in the queue; `None` when the queue is full or the
    /// wait ran out.
    async fn admit(&self) -> Option<SemaphorePermit<'_>> {
        let inner = &self.0;
        if let Ok(slot) = inner.slots.try_acquire() {
            return Some(slot);
        }
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.queue.waiting {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            inner.metrics.http_shed.inc();
            return None;
        }
        let _waiting = Waiting(&inner.waiting);
        // The semaphore is never closed.
        match tokio::time::timeout(inner.queue.wait, inner.slots.acquire()).await {
            Ok(slot) => slot.ok(),
            Err(_) => {
                inner.metrics.http_shed.inc();
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_of(running: usize, waiting: usize, wait: Duration) -> Shedder {
        let queue = Queue {
            running,
            waiting,
            wait,
        };
        Shedder::new(queue, Metrics::new("test"))
    }

    /// Finding 9: a burst far beyond the slots, of requests that finish quickly, is served
    /// whole; only a bound on memory refuses at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_that_drains_is_served_whole() {
        let shedder = queue_of(4, 10_000, Duration::from_secs(2));
        let admitted = (0..2000).map(|_| {
            let shedder = shedder.clone();
            tokio::spawn(async move {
                let slot = shedder.admit().await;
                tokio::time::sleep(Duration::from_micros(200)).await;
                slot.is_some()
            })
        });
        let admitted = futures_util::future::join_all(admitted).await;
        assert!(admitted.into_iter().all(|a| a.unwrap()));
        assert_eq!(shedder.0.metrics.http_shed.get(), 0);

        let small = queue_of(1, 2, Duration::from_secs(2));
        let _held = small.admit().await;
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let small = small.clone();
                tokio::spawn(async move { small.admit().await.is_some() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            small.admit().await.is_none(),
            "beyond the bound on memory: at once"
        );
        drop(waiters);
    }

    /// A queue that does not drain sheds those that waited `wait`.
    #[tokio::test]
    async fn a_queue_that_does_not_drain_sheds_by_wait() {
        let shedder = queue_of(1, 10_000, Duration::from_millis(100));
        let _stuck = shedder.admit().await;
        let started = std::time::Instant::now();
        assert!(shedder.admit().await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(shedder.0.metrics.http_shed.get(), 1);
    }
}
