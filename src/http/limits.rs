//! Per-request limits of SPEC section 12 and the load shedder: `Connection: close` when the
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
use tokio::sync::Semaphore;

use super::ApiError;
use crate::{
    domain::{Error, Unavailable},
    metrics::Metrics,
};

/// Marks the request body so that the response can tell whether it was read to the end;
/// if not, the connection cannot carry another request, and the client is told so.
pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let body = Body::new(Watched {
        inner: body,
        finished: finished.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    // A 413 may have read a small body whole, but says "stop sending": close it anyway.
    if !finished.load(Ordering::Acquire) || response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
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

/// No request runs longer than `HTTP_REQUEST_TIMEOUT_SECONDS`.
pub async fn request_timeout(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::from(Error::Unavailable(Unavailable::TimedOut)).into_response(),
    }
}

/// At most `running` API requests at once, at most `queued` more waiting for a slot.
#[derive(Clone)]
pub struct Shedder(Arc<ShedderInner>);

struct ShedderInner {
    slots: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    metrics: Metrics,
}

impl Shedder {
    pub fn new(running: usize, queued: usize, metrics: Metrics) -> Self {
        Self(Arc::new(ShedderInner {
            slots: Semaphore::new(running),
            waiting: AtomicUsize::new(0),
            max_waiting: queued,
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

pub async fn shed(State(shedder): State<Shedder>, request: Request, next: Next) -> Response {
    // The probes answer however busy the API is.
    if matches!(request.uri().path(), "/healthz" | "/readyz") {
        return next.run(request).await;
    }
    let inner = &shedder.0;
    let slot = match inner.slots.try_acquire() {
        Ok(slot) => slot,
        Err(_) => {
            if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.max_waiting {
                inner.waiting.fetch_sub(1, Ordering::AcqRel);
                inner.metrics.http_shed.inc();
                return ApiError::from(Error::Unavailable(Unavailable::Overloaded)).into_response();
            }
            let waiting = Waiting(&inner.waiting);
            let slot = inner.slots.acquire().await;
            drop(waiting);
            match slot {
                Ok(slot) => slot,
                // The semaphore is never closed.
                Err(_) => {
                    return ApiError::from(Error::Unavailable(Unavailable::Overloaded))
                        .into_response();
                }
            }
        }
    };
    let response = next.run(request).await;
    drop(slot);
    response
}
