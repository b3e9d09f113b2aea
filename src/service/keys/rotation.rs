//! Where the ring's keys come from, and their rotation.
//!
//! - HS256 (`JWT_ALG=HS256`, the default): `JWT_SECRET` signs; it and `JWT_PREVIOUS_SECRETS`
//!   verify.
//! - EdDSA or ES256 with `JWT_PRIVATE_KEY_FILE`: that key signs, and is published.
//! - EdDSA or ES256 without it: keys are generated and kept in the database. Each key has a
//!   generation; a new generation is written by whichever replica gets there first (the
//!   generation is unique, so exactly one insert wins: no timer race) some minutes before it
//!   is to sign, so that every replica, and every gateway caching the JWKS, knows it before a
//!   token signed by it arrives. A retired key stays published until every token it signed
//!   has expired, then it is deleted. Every replica re-reads the keys every 30 s.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{
    material::{Alg, HmacKey, KeyPair},
    ring::{KeyRing, Published, RingState, Signer},
};
use crate::{
    domain::Secret,
    domain::clock::Clock,
    metrics::Metrics,
    storage::store::{KeyStore, StoreError, StoredKey},
};

/// How often each replica reads the keys again.
const RELOAD_EVERY: Duration = Duration::from_secs(30);
/// How long before it signs a new key is published: twice the JWKS's `max-age`.
const PREPUBLISH: Duration = Duration::from_secs(600);
/// Added to a retired key's publication: a replica may sign with it for up to one reload
/// after its successor took over, and clocks differ a little.
const RETIRE_MARGIN: Duration = Duration::from_secs(120);

/// Where the asymmetric key comes from.
#[derive(Debug, Clone)]
pub enum KeySource {
    File(Box<KeyPair>),
    Database,
}

/// The signing settings as configured (`JWT_*`); `KeySettings` adds what the start decides.
#[derive(Debug, Clone)]
pub struct SigningSettings {
    /// `JWT_SECRET`; `None` = generated.
    pub secret: Option<Secret>,
    pub previous_secrets: Vec<Secret>,
    /// The algorithm new tokens are signed with.
    pub alg: Alg,
    /// PKCS#8 key for EdDSA/ES256; `None` = generated and kept in the database.
    pub private_key_file: Option<std::path::PathBuf>,
    /// Age at which a generated key is replaced.
    pub rotation: Duration,
    /// Whether HS256 tokens verify when another algorithm signs.
    pub accept_hs256: bool,
}

#[derive(Debug, Clone)]
pub struct KeySettings {
    pub alg: Alg,
    /// `JWT_SECRET` (with HS256 signing: the generated one when unset).
    pub secret: Option<Secret>,
    pub previous_secrets: Vec<Secret>,
    /// Whether HS256 tokens verify when another algorithm signs.
    pub accept_hs256: bool,
    /// False for a CLI command: it neither signs nor verifies, so it creates no key.
    pub serving: bool,
    pub source: KeySource,
    pub rotation: Duration,
    /// The longest a token lives (access or refresh): how long a retired key is published.
    pub token_lifetime: Duration,
}

/// Keeps the ring current.
#[derive(Clone)]
pub struct KeyManager {
    ring: KeyRing,
    settings: Arc<KeySettings>,
    store: Arc<dyn KeyStore>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl KeyManager {
    /// Builds the first ring (creating the first key in the database when needed).
    pub async fn start(
        settings: KeySettings,
        store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let hmac = hmac_keys(&settings);
        let first = match (&settings.source, settings.alg) {
            (_, Alg::Hs256) => {
                let signer = hmac
                    .first()
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("HS256 signing needs JWT_SECRET"))?;
                RingState::new(Signer::Hmac(signer), hmac.clone(), Vec::new())
            }
            (KeySource::File(pair), _) => {
                let kid = pair.public().thumbprint();
                let public = vec![Published {
                    kid: kid.clone(),
                    key: pair.public(),
                }];
                RingState::new(
                    Signer::Pair {
                        kid,
                        pair: KeyPair::clone(pair),
                    },
                    hmac.clone(),
                    public,
                )
            }
            (KeySource::Database, alg) => {
                // A placeholder until the keys are read below.
                let pair = KeyPair::generate(alg).ok_or_else(|| {
                    anyhow::anyhow!("{} is not an asymmetric algorithm", alg.name())
                })?;
                RingState::new(
                    Signer::Pair {
                        kid: String::new(),
                        pair,
                    },
                    hmac.clone(),
                    Vec::new(),
                )
            }
        };
        let manager = Self {
            ring: KeyRing::new(first),
            settings: Arc::new(settings),
            store,
            clock,
            metrics,
        };
        if manager.settings.serving {
            manager.maintain().await?;
        }
        Ok(manager)
    }

    pub fn ring(&self) -> KeyRing {
        self.ring.clone()
    }

    /// Re-reads the keys every 30 s until `stop`.
    pub fn spawn(&self, stop: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
        // A key file is the whole ring; everything else follows the database.
        if matches!(self.settings.source, KeySource::File(_)) && self.settings.alg != Alg::Hs256 {
            return None;
        }
        let manager = self.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(RELOAD_EVERY) => {}
                    () = stop.cancelled() => return,
                }
                if let Err(error) = manager.maintain().await {
                    tracing::warn!(%error, "reading the signing keys");
                }
            }
        }))
    }

    /// Reads the keys, adds the next one when it is due, forgets the expired ones, and
    /// installs the result.
    pub async fn maintain(&self) -> Result<(), StoreError> {
        let now = i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX);
        let hmac = hmac_keys(&self.settings);
        let state = match (&self.settings.source, self.settings.alg) {
            (_, Alg::Hs256) => {
                // Keys generated by replicas that already sign asymmetrically verify here
                // too, so that a fleet can move to EdDSA one replica at a time.
                let mut published = Vec::new();
                for alg in [Alg::EdDsa, Alg::Es256] {
                    let keys = self.store.signing_keys(alg.name()).await?;
                    published.extend(self.live(&keys, now).map(|(_, key)| key));
                }
                let signer = hmac
                    .first()
                    .cloned()
                    .ok_or_else(|| StoreError::Other("HS256 signing needs JWT_SECRET".into()))?;
                RingState::new(Signer::Hmac(signer), hmac, published)
            }
            (KeySource::File(_), _) => {
                self.count(&self.ring.load());
                return Ok(());
            }
            (KeySource::Database, alg) => self.rotate(alg, hmac, now).await?,
        };
        self.count(&state);
        self.ring.replace(state);
        Ok(())
    }

    fn count(&self, state: &RingState) {
        let gauge = &self.metrics.signing_keys;
        gauge.with_label_values(&["active"]).set(1);
        gauge
            .with_label_values(&["published"])
            .set(i64::try_from(state.published().len()).unwrap_or(i64::MAX));
    }

    /// The stored keys still worth verifying with: all but those retired so long ago that
    /// no token they signed can still be presented.
    fn live<'k>(
        &self,
        keys: &'k [StoredKey],
        now: i64,
    ) -> impl Iterator<Item = (&'k StoredKey, Published)> {
        let lifetime = ms(self.settings.token_lifetime) + ms(RETIRE_MARGIN);
        keys.iter().enumerate().filter_map(move |(i, stored)| {
            let successor = keys.get(i + 1).map(|k| k.activates_at);
            if successor.is_some_and(|s| now > s.saturating_add(lifetime)) {
                return None;
            }
            match KeyPair::from_pkcs8(&stored.private_key) {
                Ok(pair) => Some((
                    stored,
                    Published {
                        kid: stored.kid.clone(),
                        key: pair.public(),
                    },
                )),
                Err(_) => {
                    tracing::warn!(kid = %stored.kid, "ignoring an unreadable signing key");
                    None
                }
            }
        })
    }

    /// The ring of an algorithm whose keys live in the database: creates the first key,
    /// publishes the next one when it is due, deletes those no token can need.
    async fn rotate(
        &self,
        alg: Alg,
        hmac: Vec<HmacKey>,
        now: i64,
    ) -> Result<RingState, StoreError> {
        let mut keys = self.store.signing_keys(alg.name()).await?;
        if keys.is_empty() {
            self.add(alg, 1, now, now).await?;
            keys = self.store.signing_keys(alg.name()).await?;
        }
        if let Some(newest) = keys.last() {
            let due = newest
                .activates_at
                .saturating_add(ms(self.settings.rotation));
            if now >= due.saturating_sub(ms(PREPUBLISH)) {
                let activates = due.max(now + ms(PREPUBLISH));
                if self.add(alg, newest.generation + 1, activates, now).await? {
                    tracing::info!(
                        alg = alg.name(),
                        generation = newest.generation + 1,
                        "new signing key published"
                    );
                }
                keys = self.store.signing_keys(alg.name()).await?;
            }
        }
        let live: Vec<_> = self.live(&keys, now).collect();
        for stored in &keys {
            if !live.iter().any(|(s, _)| s.kid == stored.kid) {
                self.store.remove_signing_key(&stored.kid).await?;
            }
        }
        // The newest active key signs. Before the first one activates (it was published
        // ahead with `saga-account keys publish`), HS256 signs when it can, so that no
        // replica signs with a key the others may not know yet.
        let active = live.iter().rev().find(|(s, _)| s.activates_at <= now);
        let signer = match (active, hmac.first()) {
            (Some(_), _) | (None, None) => {
                let stored = active.or(live.first()).map(|(s, _)| *s).ok_or_else(|| {
                    StoreError::Other("no readable signing key in the database".into())
                })?;
                let pair = KeyPair::from_pkcs8(&stored.private_key)
                    .map_err(|e| StoreError::Other(e.into()))?;
                Signer::Pair {
                    kid: stored.kid.clone(),
                    pair,
                }
            }
            (None, Some(secret)) => Signer::Hmac(secret.clone()),
        };
        let published = live.into_iter().map(|(_, key)| key).collect();
        Ok(RingState::new(signer, hmac, published))
    }

    /// Publishes a new key of `JWT_ALG` that signs from `PREPUBLISH` from now on, whatever
    /// the schedule (`saga-account keys publish`): the first key of a fleet moving from
    /// HS256, or an early rotation. Returns its kid.
    pub async fn publish_next(&self) -> Result<String, StoreError> {
        let alg = self.settings.alg;
        if alg == Alg::Hs256 {
            return Err(StoreError::Other(
                "JWT_ALG=HS256 has no key pairs to publish".into(),
            ));
        }
        let now = i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX);
        loop {
            let keys = self.store.signing_keys(alg.name()).await?;
            let generation = keys.last().map_or(1, |k| k.generation + 1);
            if let Some(kid) = self
                .add_kid(alg, generation, now + ms(PREPUBLISH), now)
                .await?
            {
                return Ok(kid);
            }
        }
    }

    /// Writes generation `generation`; false when another replica wrote it first.
    async fn add(
        &self,
        alg: Alg,
        generation: i64,
        activates_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .add_kid(alg, generation, activates_at, now)
            .await?
            .is_some())
    }

    async fn add_kid(
        &self,
        alg: Alg,
        generation: i64,
        activates_at: i64,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let pair = KeyPair::generate(alg)
            .ok_or_else(|| StoreError::Other(format!("{} has no key pair", alg.name()).into()))?;
        let private_key = pair
            .to_pkcs8_der()
            .map_err(|e| StoreError::Other(e.into()))?;
        let kid = pair.public().thumbprint();
        let added = self
            .store
            .add_signing_key(&StoredKey {
                kid: kid.clone(),
                alg: alg.name().to_owned(),
                generation,
                private_key,
                created_at: now,
                activates_at,
            })
            .await?;
        Ok(added.then_some(kid))
    }
}

/// The accepted HS256 secrets, the signing one first.
fn hmac_keys(settings: &KeySettings) -> Vec<HmacKey> {
    if settings.alg != Alg::Hs256 && !settings.accept_hs256 {
        return Vec::new();
    }
    settings
        .secret
        .iter()
        .chain(&settings.previous_secrets)
        .map(|s| HmacKey::new(s.expose().as_bytes()))
        .collect()
}
