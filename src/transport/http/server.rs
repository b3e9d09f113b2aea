//! The HTTP/1.1 accept loop (SPEC section 12): at most `MAX_CONNECTIONS` open connections
//! (further ones wait in the kernel's backlog), oversized heads answered 431 by hyper, and
//! two deadlines per connection that hyper alone cannot tell apart: a request head must
//! arrive whole within the head timeout of its first byte (or of the accept), and a
//! keep-alive connection may sit idle for the idle timeout.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::Request};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, Semaphore},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tower::Service as _;

/// Largest request head (request line and headers); a larger one gets 431.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How connections are bounded.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub head_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `app` on `listener` until `stop`, then lets requests in flight finish (the caller
/// bounds how long) while idle connections close at once.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    stop: CancellationToken,
) {
    let mut make = app.into_make_service_with_connect_info::<SocketAddr>();
    let mut h1 = http1::Builder::new();
    h1.timer(TokioTimer::new())
        // Our own deadlines below; hyper's would also close idle connections at 10 s.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEAD_BYTES.max(8192))
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    loop {
        // A slot first: beyond the cap, connections stay in the backlog, unaccepted.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and the like: pause rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let service = match make.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Watched {
            tcp,
            activity: activity.clone(),
        });
        let service = Tracked {
            inner: TowerToHyperService::new(service),
            activity: activity.clone(),
        };
        let connection = graceful.watch(h1.serve_connection(io, service));
        let (limits, stop) = (limits.clone(), stop.clone());
        tokio::spawn(async move {
            watch_connection(connection, &activity, &limits, &stop).await;
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Runs one connection until it ends or misses a deadline (then dropping it closes it).
async fn watch_connection(
    connection: impl Future<Output = Result<(), hyper::Error>>,
    activity: &Activity,
    limits: &ConnectionLimits,
    stop: &CancellationToken,
) {
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        let deadline = activity.deadline(limits);
        tokio::select! {
            result = &mut connection => {
                if let Err(error) = result {
                    tracing::debug!(%error, "HTTP connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if activity.deadline(limits).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("HTTP connection closed: head or idle timeout");
                    return;
                }
            }
            () = activity.changed.notified() => {}
            // Shutting down: hyper closes a connection once its response is written, or at
            // once between requests, but waits on one that never sent a byte: close it.
            () = stop.cancelled(), if !stopping => {
                if activity.untouched() {
                    return;
                }
                stopping = true;
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// What a connection is doing, for its deadlines. Times are milliseconds since `origin`.
struct Activity {
    origin: Instant,
    /// Requests being handled.
    in_flight: AtomicU32,
    /// When the first byte of the next head arrived; `NONE` while none has.
    head_started: AtomicU64,
    /// When the last response was produced; `NONE` before the first request.
    idle_since: AtomicU64,
    /// Whether any byte arrived yet.
    touched: AtomicBool,
    changed: Notify,
}

const NONE: u64 = u64::MAX;

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            in_flight: AtomicU32::new(0),
            head_started: AtomicU64::new(NONE),
            idle_since: AtomicU64::new(NONE),
            touched: AtomicBool::new(false),
            changed: Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.origin + Duration::from_millis(millis)
    }

    /// When the connection is to be closed unless something happens; `None` while a
    /// request is being handled (the request timeout bounds that).
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let head = self.head_started.load(Ordering::Acquire);
        if head != NONE {
            return Some(self.at(head) + limits.head_timeout);
        }
        match self.idle_since.load(Ordering::Acquire) {
            // Accepted, nothing sent yet: a head is owed.
            NONE => Some(self.origin + limits.head_timeout),
            idle => Some(self.at(idle) + limits.idle_timeout),
        }
    }

    fn untouched(&self) -> bool {
        !self.touched.load(Ordering::Acquire)
    }

    /// Bytes arrived: between requests, they start the next head.
    fn read(&self) {
        if !self.touched.load(Ordering::Relaxed) {
            self.touched.store(true, Ordering::Release);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NONE
            && self.idle_since.load(Ordering::Relaxed) != NONE
        {
            self.head_started.store(self.now(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_finished(&self) {
        self.idle_since.store(self.now(), Ordering::Release);
        self.head_started.store(NONE, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }
}

/// The socket, telling `Activity` when bytes arrive.
struct Watched {
    tcp: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// The connection's service, telling `Activity` when a request starts and ends.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

/// Ends the request in `Activity` however its future ends (also when it is dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

impl<S> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        let guard = InFlight(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await;
            drop(guard);
            response
        })
    }
}
