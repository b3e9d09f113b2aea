//! Sessions (SPEC section 9): started at signup and login, renewed by refresh with
//! rotating refresh tokens and reuse detection, ended by revocation or by time.
//!
//! The session service decides; `auth` mints the tokens it describes; the store keeps the
//! rows; `revocations` keeps every replica's view of revoked sessions current.

mod refresh;
mod revocations;

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

pub use revocations::{REVOCATION_CHANNEL, RevocationFeed, RevocationSet, Source};

use crate::{
    domain::clock::Clock,
    domain::{Amr, Claims, TokenKind},
    domain::{
        ClientInfo, CustomerId, Error, RandomId, Revocation, RevokeReason, Session, SessionId,
    },
    metrics::Metrics,
    storage::redis::RedisClient,
    storage::store::{SessionStore, StartRefused, Which},
};

/// How often revocations whose tokens have expired are forgotten and dead sessions swept.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What to do with a refresh token that belongs to no session (minted by the Go service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyRefreshTokens {
    /// Accept it and start a session.
    Accept,
    /// 401 `invalid token`.
    Reject,
}

#[derive(Debug, Clone)]
pub struct SessionSettings {
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub session_max: Duration,
    pub rotation: bool,
    pub reuse_grace: Duration,
    pub legacy_refresh_tokens: LegacyRefreshTokens,
    pub max_per_customer: u32,
    pub revocation_poll: Duration,
}

/// What the tokens of a session name: whose it is and which. When it ends is known
/// server-side only (no claim carries it, SPEC 15.11).
#[derive(Debug, Clone, Copy)]
struct SessionKey {
    customer: CustomerId,
    sid: SessionId,
    /// How it was signed in: a refresh reads it off the refresh token it was given, which
    /// this service signed, so the session keeps it without a read.
    amr: Amr,
}

/// The claims of a new token pair for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub access: Claims,
    pub refresh: Claims,
}

#[derive(Clone)]
pub struct SessionService(Arc<Inner>);

struct Inner {
    store: Arc<dyn SessionStore>,
    set: Arc<RevocationSet>,
    feed: Arc<RevocationFeed>,
    settings: SessionSettings,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
}

impl SessionService {
    /// With `redis`, follows the revocation channel (register before `redis.start()`).
    pub fn new(
        store: Arc<dyn SessionStore>,
        redis: Option<Arc<RedisClient>>,
        settings: SessionSettings,
        clock: Arc<dyn Clock>,
        metrics: Metrics,
    ) -> Self {
        // Every reason is a series from the start, so that its first revocation is a rise.
        for reason in RevokeReason::ALL {
            metrics
                .sessions_revoked
                .with_label_values(&[reason.label()]);
        }
        for source in [Source::Pubsub, Source::Poll] {
            metrics
                .revocation_propagation
                .with_label_values(&[source.label()]);
        }
        let set = Arc::new(RevocationSet::default());
        let feed = RevocationFeed::new(
            set.clone(),
            store.clone(),
            redis,
            clock.clone(),
            metrics.clone(),
        );
        Self(Arc::new(Inner {
            store,
            set,
            feed,
            settings,
            clock,
            metrics,
        }))
    }

    pub fn settings(&self) -> &SessionSettings {
        &self.0.settings
    }

    /// Loads the revocations that still matter, then keeps the set current (the database
    /// poll) and tidy (purge and sweep) until `stop`.
    pub async fn start_background(
        &self,
        stop: CancellationToken,
    ) -> crate::storage::store::StoreResult<[tokio::task::JoinHandle<()>; 2]> {
        let loaded = self.0.feed.load().await?;
        tracing::info!(revocations = loaded, "revoked sessions loaded");
        let poller = self.clone();
        let poll_stop = stop.clone();
        let poll = tokio::spawn(async move {
            let mut tick = tokio::time::interval(poller.0.settings.revocation_poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = poll_stop.cancelled() => return,
                }
                if let Err(error) = poller.0.feed.poll().await {
                    tracing::debug!(%error, "reading the revocation feed");
                }
            }
        });
        let sweeper = self.clone();
        let sweep = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => return,
                }
                sweeper.sweep().await;
            }
        });
        Ok([poll, sweep])
    }

    /// Forgets expired revocations and deletes sessions no token of which can be presented.
    pub async fn sweep(&self) {
        self.0.feed.purge();
        match self.0.store.sweep(self.now_ms()).await {
            Ok(counts) => {
                self.count_revoked(RevokeReason::Expired, counts.expired);
                if counts.sessions > 0 || counts.revocations > 0 {
                    tracing::debug!(
                        sessions = counts.sessions,
                        revocations = counts.revocations,
                        "swept ended sessions"
                    );
                }
            }
            Err(error) => tracing::debug!(%error, "sweeping sessions"),
        }
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.0.clock.now_millis()).unwrap_or(i64::MAX)
    }

    fn count_revoked(&self, reason: RevokeReason, n: u64) {
        if n > 0 {
            self.0
                .metrics
                .sessions_revoked
                .with_label_values(&[reason.label()])
                .inc_by(n);
        }
    }

    /// Whether access tokens of `sid` must be refused: a pure in-memory check.
    pub fn is_revoked(&self, sid: &SessionId, now_secs: i64) -> bool {
        self.0.set.contains(sid, now_secs)
    }

    /// The revocation set's size (for tests and benchmarks).
    pub fn revoked_count(&self) -> usize {
        self.0.set.len()
    }

    /// Token expiries for a pair minted at `now`, never beyond the session's end.
    fn expiries(&self, now: i64, session_expires_at_ms: i64) -> (i64, i64) {
        let end = session_expires_at_ms / 1000;
        (
            now.saturating_add(self.0.settings.access_ttl_secs).min(end),
            now.saturating_add(self.0.settings.refresh_ttl_secs)
                .min(end),
        )
    }

    /// Starts a session for a signup or login. `generation`: the credential generation the
    /// login read with the password it verified; the session starts only while it is still
    /// the customer's (SPEC rule 15.1), and only for a customer who exists and is active.
    /// `amr`: how the customer signed in, carried by every pair of the session.
    pub async fn start(
        &self,
        customer: CustomerId,
        generation: Option<i64>,
        client: &ClientInfo,
        amr: Amr,
    ) -> Result<Grant, Error> {
        let now_ms = self.now_ms();
        let now = now_ms / 1000;
        let max_ms = i64::try_from(self.0.settings.session_max.as_millis()).unwrap_or(i64::MAX);
        let expires_at = now_ms.saturating_add(max_ms);
        let (access_exp, refresh_exp) = self.expiries(now, expires_at);
        let session = Session {
            id: RandomId::new(rand::random()),
            customer,
            created_at: now_ms,
            refreshed_at: now_ms,
            expires_at,
            refresh_jti: RandomId::new(rand::random()),
            refresh_iat: now,
            refresh_exp,
            previous_jti: None,
            rotated_at: None,
            access_exp,
            tokens_exp: access_exp.max(refresh_exp),
            user_agent: client.user_agent.clone().unwrap_or_default(),
            client_ip: client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            revoked_at: None,
            revoke_reason: None,
        };
        let evicted = self
            .0
            .store
            .start(&session, self.0.settings.max_per_customer, generation)
            .await?
            .map_err(|refused| match refused {
                StartRefused::CustomerGone => Error::CustomerNotFound,
                StartRefused::Inactive => Error::CustomerInactive,
                StartRefused::CredentialsChanged => Error::AuthenticationFailed,
            })?;
        self.0.metrics.sessions_started.inc();
        self.count_revoked(RevokeReason::Evicted, evicted.len() as u64);
        self.0.feed.announce(&evicted).await;
        let key = SessionKey {
            customer,
            sid: session.id,
            amr,
        };
        Ok(self.grant(key, access_exp, session.refresh_jti, now, refresh_exp))
    }

    fn grant(
        &self,
        session: SessionKey,
        access_exp: i64,
        jti: RandomId,
        refresh_iat: i64,
        refresh_exp: i64,
    ) -> Grant {
        let now = self.0.clock.now_secs();
        Grant {
            access: Claims {
                customer: session.customer,
                kind: TokenKind::Access,
                exp: access_exp,
                iat: Some(now),
                sid: Some(session.sid),
                jti: None,
                amr: session.amr,
            },
            refresh: Claims {
                customer: session.customer,
                kind: TokenKind::Refresh,
                exp: refresh_exp,
                iat: Some(refresh_iat),
                sid: Some(session.sid),
                jti: Some(jti),
                amr: session.amr,
            },
        }
    }

    /// What to do with a refresh token that names no session.
    pub fn legacy_refresh_tokens(&self) -> LegacyRefreshTokens {
        self.0.settings.legacy_refresh_tokens
    }

    /// Whether `sid` is a live session of `customer` (for logout with a refresh token).
    pub async fn check_live(&self, sid: SessionId, customer: CustomerId) -> Result<(), Error> {
        self.live_session(sid, customer, self.now_ms())
            .await
            .map(drop)
    }

    /// Ends the sessions `which` names; every replica refuses their access tokens within a
    /// poll. Returns how many ended.
    pub async fn revoke(
        &self,
        customer: CustomerId,
        which: Which,
        reason: RevokeReason,
    ) -> Result<usize, Error> {
        let revoked = self
            .0
            .store
            .revoke(customer, which, reason, self.now_ms())
            .await?;
        self.count_revoked(reason, revoked.len() as u64);
        self.0.feed.announce(&revoked).await;
        Ok(revoked.len())
    }

    /// Revocations made elsewhere (an account deletion) that every replica must learn.
    pub async fn announce(&self, reason: RevokeReason, revocations: &[Revocation]) {
        self.count_revoked(reason, revocations.len() as u64);
        self.0.feed.announce(revocations).await;
    }

    /// Live sessions, newest first.
    pub async fn list(&self, customer: CustomerId) -> Result<Vec<Session>, Error> {
        Ok(self.0.store.list_live(customer, self.now_ms()).await?)
    }

    /// Reads the revocation feed now (tests; the background poll does it periodically).
    pub async fn poll_revocations(&self) -> Result<(), Error> {
        Ok(self.0.feed.poll().await?)
    }
}
