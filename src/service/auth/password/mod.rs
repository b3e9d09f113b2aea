//! Password hashing on a small pool of dedicated threads with a bounded queue.
//!
//! New passwords get the configured hash: bcrypt at cost 10 (`$2a$`, as the Go service
//! writes, so Go replicas can verify it) or Argon2id (a PHC string). Both kinds always
//! verify, so a fleet can move from one to the other; `needs_rehash` tells which stored
//! hashes are not of the configured kind and parameters yet (the login upgrades them).
//!
//! Hashing takes tens of milliseconds of CPU (and Argon2id its memory cost per thread). It
//! never runs on the async request threads; the pool's threads run at a lower priority so
//! that `Auth` and cached reads keep their latency while logins saturate it; a full queue
//! refuses at once (503) instead of letting waiting logins pile up without bound.

mod policy;
#[cfg(test)]
mod tests;

use std::{sync::Arc, thread};

use tokio::sync::{OnceCell, oneshot};

use policy::verify;
pub use policy::{Algorithm, Argon2Params, BCRYPT_COST, HashPolicy, PasswordSettings};

use crate::{
    domain::{Error, Password, Unavailable},
    metrics::Metrics,
};

/// Nice value of the hashing threads: below the request threads, so they yield to them.
const HASH_THREAD_NICENESS: i32 = 10;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Cheap to clone; the threads end when the last clone is dropped (their queue closes).
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: crossbeam_channel::Sender<Job>,
    policy: Arc<HashPolicy>,
    /// A hash of a random password, of the configured kind: what an unknown email is
    /// checked against, so that it costs what a wrong password costs.
    dummy: Arc<OnceCell<String>>,
    metrics: Metrics,
}

impl PasswordHasher {
    /// Starts `threads` hashing threads with room for `queue` waiting jobs.
    pub fn new(
        threads: usize,
        queue: usize,
        policy: HashPolicy,
        metrics: Metrics,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        metrics
            .hash_queue_capacity
            .set(i64::try_from(queue).unwrap_or(i64::MAX));
        for operation in ["hash", "verify"] {
            metrics
                .hash_duration
                .with_label_values(&[operation, policy.algorithm().label()]);
        }
        let (jobs, receiver) = crossbeam_channel::bounded::<Job>(queue);
        for i in 0..threads {
            let receiver = receiver.clone();
            thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || {
                    lower_thread_priority();
                    for job in receiver {
                        job();
                    }
                })?;
        }
        Ok(Self {
            jobs,
            policy: Arc::new(policy),
            dummy: Arc::new(OnceCell::new()),
            metrics,
        })
    }

    pub fn policy(&self) -> &HashPolicy {
        &self.policy
    }

    /// Jobs waiting for a thread.
    pub fn queue_depth(&self) -> usize {
        self.jobs.len()
    }

    /// A hash of the configured kind.
    pub async fn hash(&self, password: Password) -> Result<String, Error> {
        let policy = self.policy.clone();
        self.run("hash", policy.algorithm(), move || {
            policy.hash(password.expose())
        })
        .await?
    }

    /// Checks a password against a stored hash of either kind.
    pub async fn verify(&self, password: Password, stored: String) -> Result<bool, Error> {
        let algorithm = Algorithm::of(&stored).unwrap_or(self.policy.algorithm());
        self.run("verify", algorithm, move || {
            verify(password.expose(), &stored)
        })
        .await
    }

    /// What a login for an unknown email costs: one verification against a hash of the
    /// configured kind. The answer is always "no".
    pub async fn verify_dummy(&self, password: Password) -> Result<(), Error> {
        let dummy = self
            .dummy
            .get_or_try_init(|| async {
                let random = Password::parse(format!("{:032x}", rand::random::<u128>()))
                    .map_err(Error::from)?;
                self.hash(random).await
            })
            .await?
            .clone();
        self.verify(password, dummy).await.map(drop)
    }

    /// The zxcvbn score (0-4) of a new password, with the customer's own data counting
    /// against it. Runs on the pool: a long password takes milliseconds.
    pub async fn strength(
        &self,
        password: Password,
        user_inputs: Vec<String>,
    ) -> Result<u8, Error> {
        self.run("strength", self.policy.algorithm(), move || {
            let inputs: Vec<&str> = user_inputs.iter().map(String::as_str).collect();
            u8::from(zxcvbn::zxcvbn(password.expose(), &inputs).score())
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        algorithm: Algorithm,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        // The work runs on another thread, inside a child of the caller's span.
        let span = tracing::info_span!("password", otel.name = %format_args!("{} {operation}", algorithm.label()), operation);
        let metrics = self.metrics.clone();
        let job: Job = Box::new(move || {
            metrics.hash_queue_depth.dec();
            // The caller gave up (client went away): skip the expensive part.
            if !tx.is_closed() {
                let _entered = span.enter();
                let timer = metrics
                    .hash_duration
                    .with_label_values(&[operation, algorithm.label()])
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
