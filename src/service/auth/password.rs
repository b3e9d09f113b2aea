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

use std::{borrow::Cow, sync::Arc, thread};

use argon2::{ARGON2ID_IDENT, Argon2, Block, Params, PasswordHash, password_hash::Output};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
};
use sha2::{Digest, Sha256};
use tokio::sync::{OnceCell, oneshot};

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

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// The hash of new passwords and the pool that computes them, as configured.
#[derive(Debug, Clone)]
pub struct PasswordSettings {
    /// The hash given to new passwords (both kinds always verify).
    pub hash: Algorithm,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Hashing threads; 0 = one per CPU.
    pub threads: usize,
    /// Jobs that may wait; beyond it login and signup answer 503.
    pub queue: usize,
}

impl PasswordSettings {
    pub fn argon2(&self) -> Argon2Params {
        Argon2Params {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    /// The number of hashing threads (0 resolved to one per CPU).
    pub fn thread_count(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// A kind of stored hash, and the hash given to new passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Bcrypt,
    Argon2id,
}

impl Algorithm {
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::Bcrypt => "bcrypt",
            Algorithm::Argon2id => "argon2id",
        }
    }

    /// The kind of a stored hash; `None` for anything we cannot verify.
    pub fn of(stored: &str) -> Option<Self> {
        if stored.starts_with("$argon2id$") {
            Some(Algorithm::Argon2id)
        } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            Some(Algorithm::Bcrypt)
        } else {
            None
        }
    }
}

/// How new passwords are hashed.
#[derive(Debug, Clone)]
pub enum HashPolicy {
    Bcrypt { cost: u32 },
    Argon2id(Params),
}

impl HashPolicy {
    pub fn new(kind: Algorithm, argon2: Argon2Params) -> Result<Self, argon2::Error> {
        Ok(match kind {
            Algorithm::Bcrypt => HashPolicy::Bcrypt { cost: BCRYPT_COST },
            Algorithm::Argon2id => HashPolicy::Argon2id(Params::new(
                argon2.memory_kib,
                argon2.iterations,
                argon2.parallelism,
                None,
            )?),
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            HashPolicy::Bcrypt { .. } => Algorithm::Bcrypt,
            HashPolicy::Argon2id(_) => Algorithm::Argon2id,
        }
    }

    /// Memory one hashing thread may hold while it hashes, in bytes (Argon2id's cost;
    /// bcrypt needs a few KiB).
    pub fn memory_per_thread(&self) -> u64 {
        match self {
            HashPolicy::Bcrypt { .. } => 4 * 1024,
            HashPolicy::Argon2id(p) => u64::from(p.m_cost()) * 1024,
        }
    }

    fn hash(&self, password: &str) -> Result<String, Error> {
        match self {
            HashPolicy::Bcrypt { cost } => {
                bcrypt::hash_with_result(bcrypt_input(password).as_ref(), *cost)
                    .map(|h| h.format_for_version(bcrypt::Version::TwoA))
                    .map_err(Error::internal)
            }
            HashPolicy::Argon2id(params) => {
                let salt: [u8; 16] = rand::random();
                let mut output = [0u8; 32];
                argon2id_into(params, password.as_bytes(), &salt, &mut output)
                    .map_err(|e| Error::internal(e.to_string()))?;
                Ok(format!(
                    "$argon2id$v=19$m={},t={},p={}${}${}",
                    params.m_cost(),
                    params.t_cost(),
                    params.p_cost(),
                    STANDARD_NO_PAD.encode(salt),
                    STANDARD_NO_PAD.encode(output),
                ))
            }
        }
    }

    /// Whether `stored` is not of this kind and these parameters.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match self {
            HashPolicy::Bcrypt { cost } => {
                Algorithm::of(stored) != Some(Algorithm::Bcrypt)
                    || stored.get(4..6).and_then(|c| c.parse::<u32>().ok()) != Some(*cost)
            }
            HashPolicy::Argon2id(want) => {
                let Ok(hash) = PasswordHash::new(stored) else {
                    return true;
                };
                if hash.algorithm != ARGON2ID_IDENT || hash.version != Some(0x13) {
                    return true;
                }
                Params::try_from(&hash).map_or(true, |p| {
                    p.m_cost() != want.m_cost()
                        || p.t_cost() != want.t_cost()
                        || p.p_cost() != want.p_cost()
                })
            }
        }
    }
}

thread_local! {
    /// Argon2id's working memory, kept by each hashing thread from one hash to the next:
    /// allocated anew each time, freed blocks of that size pile up in the allocator's
    /// per-thread arenas (measured: 240 MiB resident with two threads at the default cost),
    /// where reused they bound the pool at threads x memory cost.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Argon2id of `password` and `salt` into `out`, in this thread's working memory.
fn argon2id_into(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let hasher = Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params.clone(),
    );
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        let blocks = params.block_count();
        if memory.len() < blocks {
            memory.resize(blocks, Block::new());
        }
        hasher.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Checks a password against an Argon2id PHC string with the parameters it carries, in
/// constant time.
fn verify_argon2id(password: &str, stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    if hash.algorithm != ARGON2ID_IDENT || hash.version.is_some_and(|v| v != 0x13) {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    argon2id_into(&params, password.as_bytes(), salt, &mut output).is_ok()
        && Output::new(&output).is_ok_and(|computed| computed == expected)
}

/// Checks a password against a bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`) or Argon2id hash,
/// with the parameters stored in the hash. A malformed stored hash matches nothing.
fn verify(password: &str, stored: &str) -> bool {
    match Algorithm::of(stored) {
        Some(Algorithm::Bcrypt) => {
            bcrypt::verify(bcrypt_input(password).as_ref(), stored).unwrap_or(false)
        }
        Some(Algorithm::Argon2id) => verify_argon2id(password, stored),
        None => false,
    }
}

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
        let hasher =
            PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test"))
                .unwrap();
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
        let hasher =
            PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test"))
                .unwrap();
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
        let hasher =
            PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test"))
                .unwrap();
        let long = "a".repeat(100);
        let hash = hasher.hash(pw(&long)).await.unwrap();
        assert!(hasher.verify(pw(&long), hash.clone()).await.unwrap());
        let same_prefix = format!("{}b", "a".repeat(99));
        assert!(!hasher.verify(pw(&same_prefix), hash.clone()).await.unwrap());
        assert!(!hasher.verify(pw(&"a".repeat(72)), hash).await.unwrap());
    }

    /// Our PHC strings are the standard ones: the argon2 crate's own verifier accepts them,
    /// and ours accepts the crate's.
    #[test]
    fn argon2id_strings_agree_with_the_reference_implementation() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString};
        let params = Params::new(64, 2, 1, None).unwrap();
        let ours = HashPolicy::Argon2id(params.clone())
            .hash("hunter2hunter2")
            .unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"hunter2hunter2", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"hunter2hunter3", &parsed)
                .is_err()
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"hunter2hunter2", &salt)
            .unwrap()
            .to_string();
        assert!(verify("hunter2hunter2", &theirs));
        assert!(!verify("hunter2hunter3", &theirs));
        assert!(!verify(
            "hunter2hunter2",
            "$argon2id$v=19$m=64,t=2,p=1$bad$bad"
        ));
    }

    #[tokio::test]
    async fn argon2id_hashes_verify_and_every_kind_is_told_apart() {
        let params = Params::new(64, 1, 1, None).unwrap();
        let hasher =
            PasswordHasher::new(1, 4, HashPolicy::Argon2id(params), Metrics::new("test")).unwrap();
        let hash = hasher.hash(pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
        assert!(
            hasher
                .verify(pw("correct horse"), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(pw("correct horsf"), hash.clone())
                .await
                .unwrap()
        );
        assert!(!hasher.policy().needs_rehash(&hash));
        let stronger = HashPolicy::Argon2id(Params::new(128, 1, 1, None).unwrap());
        assert!(stronger.needs_rehash(&hash), "other parameters");
        assert!(
            HashPolicy::Bcrypt { cost: 4 }.needs_rehash(&hash),
            "other kind"
        );
        // A bcrypt hash still verifies with the Argon2id policy, and asks to be upgraded.
        let bcrypt =
            PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test"))
                .unwrap();
        let old = bcrypt.hash(pw("password1")).await.unwrap();
        assert!(hasher.verify(pw("password1"), old.clone()).await.unwrap());
        assert!(hasher.policy().needs_rehash(&old));
        assert!(!bcrypt.policy().needs_rehash(&old));
        assert!(
            HashPolicy::Bcrypt { cost: 10 }.needs_rehash(&old),
            "another cost"
        );
        hasher.verify_dummy(pw("anything")).await.unwrap();
    }

    #[tokio::test]
    async fn weak_passwords_score_low() {
        let hasher =
            PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test"))
                .unwrap();
        assert!(hasher.strength(pw("password123"), vec![]).await.unwrap() <= 1);
        let email = "ming.hsu@example.com";
        assert!(
            hasher.strength(pw(email), vec![]).await.unwrap() >= 3,
            "alone it looks strong"
        );
        assert_eq!(
            hasher
                .strength(pw(email), vec![email.into()])
                .await
                .unwrap(),
            0,
            "the customer's own data counts against it"
        );
        assert!(
            hasher
                .strength(pw("correct horse battery staple vortex"), vec![])
                .await
                .unwrap()
                >= 3
        );
    }

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let hasher =
            PasswordHasher::new(1, 1, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test"))
                .unwrap();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let (started_tx, started_rx) = oneshot::channel::<()>();
        // Occupy the only thread until released, then fill the one queue slot.
        let blocker = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .run("test", Algorithm::Bcrypt, move || {
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
