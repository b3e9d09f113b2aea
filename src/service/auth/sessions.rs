//! Refresh, logout and the session routes: token checks here, decisions in the session
//! service.

use crate::{
    domain::{Amr, ClientInfo, CustomerId, Error, RandomId, RevokeReason, Session, TokenKind},
    service::session::LegacyRefreshTokens,
    storage::store::Which,
};

use super::{AuthService, TokenPair, Verified, outcome};

impl AuthService {
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let result = self.try_refresh(refresh_token, client).await;
        self.0
            .metrics
            .refreshes
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    async fn try_refresh(
        &self,
        refresh_token: &str,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let claims =
            self.0
                .tokens
                .verify(refresh_token, TokenKind::Refresh, self.0.clock.now_secs())?;
        // The customer checks of Part I come first, then the session.
        let check = self
            .0
            .customers
            .check(claims.customer)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        if !check.active {
            return Err(Error::CustomerInactive);
        }
        let grant = match claims.sid {
            Some(sid) => self.0.sessions.refresh(sid, &claims).await?,
            None => match self.0.sessions.legacy_refresh_tokens() {
                LegacyRefreshTokens::Accept => {
                    self.0
                        .sessions
                        .start(claims.customer, None, client, Amr::NONE)
                        .await?
                }
                LegacyRefreshTokens::Reject => return Err(Error::TokenInvalid),
            },
        };
        Ok(self.mint(&grant))
    }

    /// Ends the session of the caller's access token (a Go-minted token has none: nothing
    /// to end).
    pub async fn logout(&self, caller: Verified) -> Result<(), Error> {
        if let Some(session) = caller.session {
            self.0
                .sessions
                .revoke(caller.customer, Which::Only(session), RevokeReason::Logout)
                .await?;
        }
        Ok(())
    }

    /// Ends the session of a refresh token: 401 as refresh would answer for a bad,
    /// expired or already revoked one.
    pub async fn logout_with_refresh_token(&self, refresh_token: &str) -> Result<(), Error> {
        let claims =
            self.0
                .tokens
                .verify(refresh_token, TokenKind::Refresh, self.0.clock.now_secs())?;
        let Some(session) = claims.sid else {
            return Ok(());
        };
        self.0.sessions.check_live(session, claims.customer).await?;
        self.0
            .sessions
            .revoke(claims.customer, Which::Only(session), RevokeReason::Logout)
            .await?;
        Ok(())
    }

    pub async fn logout_all(&self, customer: CustomerId) -> Result<usize, Error> {
        self.end_every_session(customer, RevokeReason::LogoutAll)
            .await
    }

    /// Ends every session, and those that logins verifying the password right now would
    /// start (SPEC rule 15.1): the credential generation moves on first, then every
    /// session that exists is revoked. Returns how many were live.
    pub async fn end_every_session(
        &self,
        customer: CustomerId,
        reason: RevokeReason,
    ) -> Result<usize, Error> {
        // A customer gone has no credentials to protect; their sessions still end.
        self.0.customers.bump_generation(customer).await?;
        self.0.sessions.revoke(customer, Which::All, reason).await
    }

    /// The customer's live sessions, newest first.
    pub async fn sessions_of(&self, customer: CustomerId) -> Result<Vec<Session>, Error> {
        self.0.sessions.list(customer).await
    }

    /// Ends one of the customer's sessions; `SessionNotFound` for an unknown, ended or
    /// malformed id, or another customer's (never "forbidden": ids cannot be probed).
    pub async fn end_session(&self, customer: CustomerId, id: &str) -> Result<(), Error> {
        let session = RandomId::parse(id).ok_or(Error::SessionNotFound)?;
        match self
            .0
            .sessions
            .revoke(customer, Which::Only(session), RevokeReason::Logout)
            .await?
        {
            0 => Err(Error::SessionNotFound),
            _ => Ok(()),
        }
    }
}
