//! Renewing a session: the rotation of its refresh token, the grace window for a racing
//! tab, and reuse detection.

use super::{Grant, SessionKey, SessionService};
use crate::{
    domain::{Claims, CustomerId, Error, RandomId, RevokeReason, Session, SessionId},
    storage::store::{Rotation, Which},
};

impl SessionService {
    /// Renews the session of a verified refresh token: rotates it (one compare-and-set in
    /// the database), answers a racing tab within the grace window, and revokes the session
    /// when a used token comes back later.
    pub async fn refresh(&self, sid: SessionId, presented: &Claims) -> Result<Grant, Error> {
        let now_ms = self.now_ms();
        let now = now_ms / 1000;
        let customer = presented.customer;
        let key = SessionKey {
            customer,
            sid,
            amr: presented.amr,
        };
        let presented_jti = presented.jti.ok_or(Error::TokenInvalid)?;
        let rotation = self.0.settings.rotation;
        // The session's end caps the new tokens but no claim may carry it (SPEC 15.11). The
        // common case stays one statement: a compare-and-set that also requires the session
        // to outlive the uncapped tokens (then no cap applies). Only a refresh near the
        // session's end, or one that loses, reads the session.
        let (access_exp, refresh_exp) = self.expiries(now, i64::MAX);
        let tokens_exp = access_exp.max(refresh_exp);
        let new_jti = RandomId::new(rand::random());
        let rotated = |access_exp, refresh_exp, tokens_exp| Rotation {
            new_jti,
            iat: now,
            refresh_exp,
            refreshed_at: now_ms,
            access_exp,
            tokens_exp,
        };
        let outlives = tokens_exp.saturating_mul(1000).saturating_sub(1);
        if rotation
            && self
                .0
                .store
                .rotate(
                    sid,
                    customer,
                    presented_jti,
                    &rotated(access_exp, refresh_exp, tokens_exp),
                    outlives,
                )
                .await?
        {
            self.0.metrics.sessions_refreshed.inc();
            return Ok(self.grant(key, access_exp, new_jti, now, refresh_exp));
        }
        // Near its end, with rotation off, or not the current token of a live session.
        let session = self.live_session(sid, customer, now_ms).await?;
        let (access_exp, refresh_exp) = self.expiries(now, session.expires_at);
        let tokens_exp = access_exp.max(refresh_exp);
        if !rotation {
            // As in the Go service: the token stays usable, only bound to its session.
            if !self
                .0
                .store
                .touch(sid, now_ms, access_exp, tokens_exp)
                .await?
            {
                return Err(Error::TokenRevoked);
            }
            self.0.metrics.sessions_refreshed.inc();
            return Ok(self.grant(key, access_exp, presented_jti, now, refresh_exp));
        }
        // The session ends before the uncapped tokens would: rotate with capped ones.
        if session.expires_at <= outlives
            && self
                .0
                .store
                .rotate(
                    sid,
                    customer,
                    presented_jti,
                    &rotated(access_exp, refresh_exp, tokens_exp),
                    now_ms,
                )
                .await?
        {
            self.0.metrics.sessions_refreshed.inc();
            return Ok(self.grant(key, access_exp, new_jti, now, refresh_exp));
        }
        // Not the current token of a live session: revoked, ended, or used already.
        let grace_ms = i64::try_from(self.0.settings.reuse_grace.as_millis()).unwrap_or(0);
        let in_grace = session.previous_jti == Some(presented_jti)
            && session
                .rotated_at
                .is_some_and(|at| now_ms.saturating_sub(at) <= grace_ms);
        if in_grace {
            // Two tabs raced: both get the current refresh token, written again.
            if !self
                .0
                .store
                .touch(sid, now_ms, access_exp, tokens_exp)
                .await?
            {
                return Err(Error::TokenRevoked);
            }
            self.0.metrics.sessions_refreshed.inc();
            return Ok(self.grant(
                key,
                access_exp,
                session.refresh_jti,
                session.refresh_iat,
                session.refresh_exp,
            ));
        }
        tracing::warn!(
            customer_id = %customer,
            session = %sid,
            "a used refresh token was presented again: the session is revoked"
        );
        self.revoke(customer, Which::Only(sid), RevokeReason::Reuse)
            .await?;
        Err(Error::TokenRevoked)
    }

    /// The session, if it belongs to `customer` and is live at `now_ms`; `TokenRevoked`
    /// otherwise (revoked, ended, or gone).
    pub(super) async fn live_session(
        &self,
        sid: SessionId,
        customer: CustomerId,
        now_ms: i64,
    ) -> Result<Session, Error> {
        match self.0.store.get(sid).await? {
            Some(session) if session.customer == customer && session.is_live(now_ms) => Ok(session),
            // Revoked, ended (counted as `expired` when swept), or gone.
            _ => Err(Error::TokenRevoked),
        }
    }
}
