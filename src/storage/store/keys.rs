//! The signing keys kept in the database (SPEC section 11), behind one trait.

use async_trait::async_trait;

use super::error::StoreResult;

/// A generated key as stored. Times are Unix milliseconds.
#[derive(Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    /// 1, 2, 3, ...: unique per algorithm, so that two replicas rotating at once cannot
    /// both add a key.
    pub generation: i64,
    /// PKCS#8 DER; never logged, never served.
    pub private_key: Vec<u8>,
    pub created_at: i64,
    /// When it starts to sign (it is published from when it is written).
    pub activates_at: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("generation", &self.generation)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The keys of `alg`, oldest generation first.
    async fn signing_keys(&self, alg: &str) -> StoreResult<Vec<StoredKey>>;
    /// Adds a key; false when its generation exists already (another replica added it).
    async fn add_signing_key(&self, key: &StoredKey) -> StoreResult<bool>;
    async fn remove_signing_key(&self, kid: &str) -> StoreResult<()>;
}
