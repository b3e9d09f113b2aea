//! The cache as a `CustomerStore`: reads go through `get_or_load`, and every write
//! invalidates what it makes stale, before and after, here and only here.

use std::{future::Future, time::Duration};

use async_trait::async_trait;

use super::CachedStore;
use super::keys::{CacheKey, credential_keys};
use crate::domain::EmailKey;
use crate::{
    domain::{
        CheckResult, Credentials, CustomerId, Email, NewCustomer, PersonalInfo, ShippingInfo,
    },
    storage::store::{CustomerStore, DeletedCustomer, RevertOutcome, StoreResult},
};

impl CachedStore {
    /// Every key that can hold credentials of `email`, under the database's key of it (its
    /// ASCII-folded form if the database cannot tell now: it will not load either).
    pub(super) async fn credential_keys(&self, email: &Email) -> Vec<CacheKey> {
        let key = match self.inner.email_key(email).await {
            Ok(key) => key,
            Err(_) => EmailKey::ascii_folded(email),
        };
        credential_keys(&key, email)
    }

    /// A write of `id`'s credentials that answers their email: drops the credential keys of
    /// the address before it and of the one it reports after it.
    async fn credentials_write(
        &self,
        id: CustomerId,
        write: impl Future<Output = StoreResult<Option<Email>>>,
    ) -> StoreResult<Option<Email>> {
        let Some(current) = self.inner.personal_info(id).await? else {
            return write.await;
        };
        let (email, mut keys) = self
            .invalidate_around_then(self.credential_keys(&current.email).await, write)
            .await?;
        if let Some(email) = &email {
            keys.extend(self.credential_keys(email).await);
            keys.sort();
            keys.dedup();
        }
        self.invalidate(keys).await;
        Ok(email)
    }

    /// A write of `id`'s email made outside this trait: the revert of rule 15.2, which
    /// uses up its token in the same transaction. Drops the personal information and the
    /// credential keys of the address now, of `restored`, and of the address the write
    /// reports it replaced, before and after, as `update_personal_info` does.
    pub async fn email_write(
        &self,
        id: CustomerId,
        restored: &Email,
        write: impl Future<Output = StoreResult<RevertOutcome>>,
    ) -> StoreResult<RevertOutcome> {
        let mut keys = vec![CacheKey::Personal(id)];
        keys.extend(self.credential_keys(restored).await);
        if let Some(current) = self.inner.personal_info(id).await? {
            keys.extend(self.credential_keys(&current.email).await);
        }
        let (outcome, mut keys) = self.invalidate_around_then(keys, write).await?;
        if let RevertOutcome::Done { replaced, .. } = &outcome {
            keys.extend(self.credential_keys(replaced).await);
        }
        keys.sort();
        keys.dedup();
        self.invalidate(keys).await;
        Ok(outcome)
    }

    /// Drops `keys` before `write` and again after it. After alone, a crash between the
    /// commit and the invalidation would leave the old value in Redis (and in the other
    /// replicas' memory) until it expires; before as well, only a load racing the write
    /// itself can put it back.
    async fn invalidate_around<T>(
        &self,
        keys: Vec<CacheKey>,
        write: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let (result, keys) = self.invalidate_around_then(keys, write).await?;
        self.invalidate(keys).await;
        Ok(result)
    }

    /// The first half of `invalidate_around`: the caller adds what the write told it and
    /// invalidates after.
    async fn invalidate_around_then<T>(
        &self,
        keys: Vec<CacheKey>,
        write: impl Future<Output = StoreResult<T>>,
    ) -> StoreResult<(T, Vec<CacheKey>)> {
        self.invalidate_without_repeat(&keys).await;
        Ok((write.await?, keys))
    }
}

#[async_trait]
impl CustomerStore for CachedStore {
    async fn insert(&self, customer: &NewCustomer) -> StoreResult<()> {
        // A failed login may have cached "no such email".
        let mut keys = self.credential_keys(&customer.personal.email).await;
        keys.push(CacheKey::Check(customer.id));
        self.invalidate_around(keys, self.inner.insert(customer))
            .await
    }

    async fn credentials(&self, email: &Email) -> StoreResult<Option<Credentials>> {
        let key = self.inner.email_key(email).await?;
        self.get_or_load(CacheKey::credentials(&key), self.inner.credentials(email))
            .await
    }

    async fn email_key(&self, email: &Email) -> StoreResult<EmailKey> {
        self.inner.email_key(email).await
    }

    async fn check(&self, id: CustomerId) -> StoreResult<Option<CheckResult>> {
        self.get_or_load(CacheKey::Check(id), self.inner.check(id))
            .await
    }

    async fn personal_info(&self, id: CustomerId) -> StoreResult<Option<PersonalInfo>> {
        self.get_or_load(CacheKey::Personal(id), self.inner.personal_info(id))
            .await
    }

    async fn shipping_info(&self, id: CustomerId) -> StoreResult<Option<ShippingInfo>> {
        self.get_or_load(CacheKey::Shipping(id), self.inner.shipping_info(id))
            .await
    }

    async fn update_personal_info(
        &self,
        id: CustomerId,
        info: &PersonalInfo,
        revert_window: Duration,
    ) -> StoreResult<Option<PersonalInfo>> {
        let mut keys = vec![CacheKey::Personal(id)];
        // Fix (SPEC section 5): the old address must stop logging in, the new one start.
        keys.extend(self.credential_keys(&info.email).await);
        // The address as it is now (read first, for the invalidation before the write).
        if let Some(current) = self.inner.personal_info(id).await? {
            keys.extend(self.credential_keys(&current.email).await);
        }
        let (previous, mut keys) = self
            .invalidate_around_then(
                keys,
                self.inner.update_personal_info(id, info, revert_window),
            )
            .await?;
        if let Some(previous) = &previous {
            keys.extend(self.credential_keys(&previous.email).await);
        }
        keys.sort();
        keys.dedup();
        self.invalidate(keys).await;
        Ok(previous)
    }

    async fn update_shipping_info(
        &self,
        id: CustomerId,
        info: &ShippingInfo,
    ) -> StoreResult<Option<ShippingInfo>> {
        self.invalidate_around(
            vec![CacheKey::Shipping(id)],
            self.inner.update_shipping_info(id, info),
        )
        .await
    }

    async fn set_active(&self, id: CustomerId, active: bool) -> StoreResult<Option<bool>> {
        let mut keys = vec![CacheKey::Check(id)];
        if let Some(personal) = self.inner.personal_info(id).await? {
            keys.extend(self.credential_keys(&personal.email).await);
        }
        self.invalidate_around(keys, self.inner.set_active(id, active))
            .await
    }

    async fn update_password(&self, id: CustomerId, hash: &str) -> StoreResult<Option<Email>> {
        // Every replica must verify against the new hash from now on.
        self.credentials_write(id, self.inner.update_password(id, hash))
            .await
    }

    async fn upgrade_password(
        &self,
        id: CustomerId,
        verified: &str,
        hash: &str,
    ) -> StoreResult<bool> {
        let Some(current) = self.inner.personal_info(id).await? else {
            return Ok(false);
        };
        self.invalidate_around(
            self.credential_keys(&current.email).await,
            self.inner.upgrade_password(id, verified, hash),
        )
        .await
    }

    async fn bump_generation(&self, id: CustomerId) -> StoreResult<Option<Email>> {
        // Cached credentials carry the generation: every replica must read the new one.
        self.credentials_write(id, self.inner.bump_generation(id))
            .await
    }

    async fn delete(&self, id: CustomerId, now_ms: i64) -> StoreResult<Option<DeletedCustomer>> {
        let mut before = vec![
            CacheKey::Personal(id),
            CacheKey::Shipping(id),
            CacheKey::Check(id),
        ];
        if let Some(current) = self.inner.personal_info(id).await? {
            before.extend(self.credential_keys(&current.email).await);
        }
        self.invalidate_without_repeat(&before).await;
        let deleted = self.inner.delete(id, now_ms).await?;
        if let Some(deleted) = &deleted {
            let mut keys = vec![
                CacheKey::Personal(id),
                CacheKey::Shipping(id),
                CacheKey::Check(id),
            ];
            keys.extend(self.credential_keys(&deleted.personal.email).await);
            self.invalidate(keys).await;
        }
        Ok(deleted)
    }

    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }

    /// Closes the database pool. The Redis client is shared (sessions, throttle) and
    /// closed by its owner.
    async fn close(&self) {
        self.inner.close().await;
    }
}
