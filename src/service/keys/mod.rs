//! The key ring (SPEC section 11): the key that signs new tokens, and every key a token may
//! be verified with (the current HS256 secret and `JWT_PREVIOUS_SECRETS`, the published
//! Ed25519 or P-256 keys). `auth::token` signs and verifies through it; the HTTP layer
//! renders its public keys as the JWKS; `rotation` keeps it current from the database.
//!
//! A token names its key with the `kid` header. Tokens minted by the Go service have none:
//! they are tried against every accepted HS256 secret. A header that tries to bring its own
//! key (`jwk`, `jku`, `x5u`, `x5c`) or names no key we have is refused.
//!
//! `ring`: the ring and its immutable states; `material`: the key types and their
//! encodings; `rotation`: loading, generating and retiring keys in the database.

mod material;
mod ring;
mod rotation;

pub use material::{Alg, HmacKey, KeyError, KeyPair, PublicKey};
pub use ring::{B64, KeyRing, Published, RingState, Signer};
pub use rotation::{KeyManager, KeySettings, KeySource, SigningSettings};
