//! The background tasks (revocation poll and sweep, key reload, mail sender, the Redis
//! listener that feeds the cache invalidations and revocations): started,
//! stopped and awaited through one mechanism.

use std::{sync::Mutex, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One stop signal for every background task, and their handles to wait for.
#[derive(Default)]
pub struct Tasks {
    stop: CancellationToken,
    handles: Mutex<Vec<JoinHandle<()>>>,
}

impl Tasks {
    /// The signal a task started now must stop on.
    pub fn token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Keeps `handle` to be awaited at `stop`.
    pub fn add(&self, handle: JoinHandle<()>) {
        if let Ok(mut handles) = self.handles.lock() {
            handles.push(handle);
        }
    }

    /// Signals every task to stop.
    pub fn cancel(&self) {
        self.stop.cancel();
    }

    /// Waits up to `timeout` for every task; those still running then are aborted (a mail
    /// being handed over is finished first; one stuck longer is retried elsewhere when its
    /// lease runs out).
    pub async fn join(&self, timeout: Duration) {
        let handles = self
            .handles
            .lock()
            .map(|mut h| std::mem::take(&mut *h))
            .unwrap_or_default();
        let aborts: Vec<_> = handles.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(timeout, futures_util::future::join_all(handles))
            .await
            .is_err()
        {
            tracing::warn!("background tasks still running after the shutdown timeout");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }
}
