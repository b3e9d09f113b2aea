//! What a password is hashed with: the configured kind and cost, and the verification of
//! either kind of stored hash (bcrypt as the Go service writes it, or an Argon2id PHC string).

use std::borrow::Cow;

use argon2::{ARGON2ID_IDENT, Argon2, Block, Params, PasswordHash, password_hash::Output};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD},
};
use sha2::{Digest, Sha256};

use crate::domain::Error;

/// The Go service's cost; existing rows use it and new ones must verify there too.
pub const BCRYPT_COST: u32 = 10;

/// bcrypt reads at most this many bytes of a password; the rest would be ignored.
const BCRYPT_MAX_BYTES: usize = 72;

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

    pub(super) fn hash(&self, password: &str) -> Result<String, Error> {
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
pub(super) fn argon2id_into(
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
        hasher.hash_password_into_with_memory(
            password,
            salt,
            out,
            memory
                .get_mut(..blocks)
                .ok_or(argon2::Error::MemoryTooLittle)?,
        )
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
pub(super) fn verify(password: &str, stored: &str) -> bool {
    match Algorithm::of(stored) {
        Some(Algorithm::Bcrypt) => {
            bcrypt::verify(bcrypt_input(password).as_ref(), stored).unwrap_or(false)
        }
        Some(Algorithm::Argon2id) => verify_argon2id(password, stored),
        None => false,
    }
}

/// What bcrypt is given for a password. Up to 72 bytes: the password itself, so hashes stay
/// compatible with the Go service both ways. Longer: its SHA-256, base64-encoded, so that
/// every byte counts and two passwords sharing their first 72 bytes stay two passwords.
pub(super) fn bcrypt_input(password: &str) -> Cow<'_, [u8]> {
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
