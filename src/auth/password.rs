//! Password hashing on a small pool of dedicated threads with a bounded queue.
//!
//! bcrypt at cost 10 takes tens of milliseconds of CPU. It never runs on the async request
//! threads, the pool's threads run at a lower priority so that `Auth` and cached reads keep
//! their latency while logins saturate it, and a full queue refuses at once (503) instead
//! of letting waiting logins pile up without bound.

use std::{borrow::Cow, thread};

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use crate::{
    domain::{Error, Password, Unavailable},
    metrics::Metrics,
};

/// The Go service's cost; existing rows use it and new ones must verify there too.
pub const BCRYPT_COST: u32 = 10;

/// bcrypt reads at most this many bytes of a password; the rest would be ignored.
const BCRYPT_MAX_BYTES: usize = 72;

/// Nice value of the hashing threads: below the request threads, so they yield to them.
const HASH_THREAD_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Cheap to clone; the threads end when the last clone is dropped (their queue closes).
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: crossbeam_channel::Sender<Job>,
    cost: u32,
    metrics: Metrics,
}

impl PasswordHasher {
    /// Starts `threads` hashing threads with room for `queue` waiting jobs.
    pub fn new(threads: usize, queue: usize, metrics: Metrics) -> std::io::Result<Self> {
        Self::with_cost(threads, queue, BCRYPT_COST, metrics)
    }

    pub fn with_cost(
        threads: usize,
        queue: usize,
        cost: u32,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        metrics
            .hash_queue_capacity
            .set(i64::try_from(queue).unwrap_or(i64::MAX));
        let (jobs, receiver) = crossbeam_channel::bounded::<Job>(queue);
        for i in 0..threads {
            let receiver = receiver.clone();
            thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || {
                    lower_thread_priority();
                    for job in receiver {
                        job();
                    }
                })?;
        }
        Ok(Self {
            jobs,
            cost,
            metrics,
        })
    }

    /// Jobs waiting for a thread.
    pub fn queue_depth(&self) -> usize {
        self.jobs.len()
    }

    /// A `$2a$` hash, as the Go service writes them.
    pub async fn hash(&self, password: Password) -> Result<String, Error> {
        let cost = self.cost;
        self.run("hash", move || {
            bcrypt::hash_with_result(bcrypt_input(password.expose()).as_ref(), cost)
                .map(|h| h.format_for_version(bcrypt::Version::TwoA))
                .map_err(Error::internal)
        })
        .await?
    }

    /// Checks a password against a `$2a$`, `$2b$`, `$2x$` or `$2y$` hash. A malformed stored
    /// hash matches nothing.
    pub async fn verify(&self, password: Password, hash: String) -> Result<bool, Error> {
        self.run("verify", move || {
            bcrypt::verify(bcrypt_input(password.expose()).as_ref(), &hash).unwrap_or(false)
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        // The work runs on another thread, inside a child of the caller's span.
        let span = tracing::info_span!("password", otel.name = %format_args!("bcrypt {operation}"), operation);
        let metrics = self.metrics.clone();
        let job: Job = Box::new(move || {
            metrics.hash_queue_depth.dec();
            // The caller gave up (client went away): skip the expensive part.
            if !tx.is_closed() {
                let _entered = span.enter();
                let timer = metrics
                    .hash_duration
                    .with_label_values(&[operation])
                    .start_timer();
                let result = work();
                timer.observe_duration();
                let _ = tx.send(result);
            }
        });
        self.metrics.hash_queue_depth.inc();
        self.jobs.try_send(job).map_err(|e| {
            self.metrics.hash_queue_depth.dec();
            match e {
                crossbeam_channel::TrySendError::Full(_) => {
                    Error::Unavailable(Unavailable::HashPoolFull)
                }
                crossbeam_channel::TrySendError::Disconnected(_) => {
                    Error::Unavailable(Unavailable::ShuttingDown)
                }
            }
        })?;
        rx.await
            .map_err(|_| Error::internal("password hashing thread stopped"))
    }
}

/// What bcrypt is given for a password. Up to 72 bytes: the password itself, so hashes stay
/// compatible with the Go service both ways. Longer: its SHA-256, base64-encoded, so that
/// every byte counts and two passwords sharing their first 72 bytes stay two passwords.
fn bcrypt_input(password: &str) -> Cow<'_, [u8]> {
    if password.len() <= BCRYPT_MAX_BYTES {
        Cow::Borrowed(password.as_bytes())
    } else {
        Cow::Owned(
            STANDARD
                .encode(Sha256::digest(password.as_bytes()))
                .into_bytes(),
        )
    }
}

#[cfg(target_os = "linux")]
fn lower_thread_priority() {
    // On Linux, PRIO_PROCESS with id 0 sets the nice value of the calling thread only.
    // SAFETY: setpriority has no memory-safety preconditions; failure only leaves the default.
    #[expect(unsafe_code, reason = "setpriority has no safe wrapper in std")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, HASH_THREAD_NICENESS);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_thread_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> Password {
        Password::parse(s).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_and_have_the_go_prefix() {
        let hasher = PasswordHasher::with_cost(1, 4, 4, Metrics::new("test")).unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$2a$04$"), "{hash}");
        assert_eq!(hash.len(), 60);
        assert!(
            hasher
                .verify(pw("correct horse"), hash.clone())
                .await
                .unwrap()
        );
        assert!(!hasher.verify(pw("correct horsf"), hash).await.unwrap());
    }

    #[tokio::test]
    async fn legacy_prefixes_verify() {
        let hasher = PasswordHasher::with_cost(1, 4, 4, Metrics::new("test")).unwrap();
        let hash = hasher.hash(pw("password1")).await.unwrap();
        for prefix in ["$2b$", "$2y$"] {
            let legacy = format!("{prefix}{}", &hash[4..]);
            assert!(
                hasher.verify(pw("password1"), legacy).await.unwrap(),
                "{prefix}"
            );
        }
        assert!(
            !hasher
                .verify(pw("password1"), "not a hash".into())
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn every_byte_of_a_long_password_counts() {
        let hasher = PasswordHasher::with_cost(1, 4, 4, Metrics::new("test")).unwrap();
        let long = "a".repeat(100);
        let hash = hasher.hash(pw(&long)).await.unwrap();
        assert!(hasher.verify(pw(&long), hash.clone()).await.unwrap());
        let same_prefix = format!("{}b", "a".repeat(99));
        assert!(!hasher.verify(pw(&same_prefix), hash.clone()).await.unwrap());
        assert!(!hasher.verify(pw(&"a".repeat(72)), hash).await.unwrap());
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let hasher = PasswordHasher::with_cost(1, 1, 4, Metrics::new("test")).unwrap();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        // Occupy the only thread until released, then fill the one queue slot.
        let blocker = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .run("test", move || {
                        let _ = started_tx.send(());
                        let _ = release_rx.recv();
                    })
                    .await
            }
        });
        started_rx.await.unwrap();
        let queued = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(pw("password1")).await }
        });
        while hasher.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        let refused = hasher.verify(pw("password1"), String::new()).await;
        assert!(
            matches!(refused, Err(Error::Unavailable(Unavailable::HashPoolFull))),
            "{refused:?}"
        );
        release_tx.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert!(queued.await.unwrap().is_ok());
    }
}
