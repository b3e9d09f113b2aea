//! Signup, login, token refresh and token verification.

mod password;
mod secret;
mod token;

use std::sync::Arc;

pub use password::{BCRYPT_COST, PasswordHasher};
pub use secret::jwt_secret;
pub use token::{TokenCodec, TokenError, TokenKind};

use crate::{
    clock::Clock,
    domain::{CustomerId, Email, Error, NewCustomer, Password, PersonalInfo, ShippingInfo},
    idgen::IdGenerator,
    metrics::Metrics,
    store::{CustomerStore, StoreError},
};

/// A fresh access token and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
}

/// A validated signup.
#[derive(Debug, Clone)]
pub struct Signup {
    pub password: Password,
    pub personal: PersonalInfo,
    pub shipping: ShippingInfo,
}

/// Token lifetimes in seconds.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    pub access_secs: i64,
    pub refresh_secs: i64,
}

/// Two generators that share a machine id can produce one ID; the primary key catches it
/// and the insert is retried with a new one.
const MAX_ID_ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct AuthService {
    store: Arc<dyn CustomerStore>,
    tokens: TokenCodec,
    hasher: PasswordHasher,
    ids: Arc<IdGenerator>,
    clock: Arc<dyn Clock>,
    lifetimes: TokenLifetimes,
    metrics: Metrics,
}

fn outcome<T>(result: &Result<T, Error>) -> &'static str {
    match result {
        Ok(_) => "success",
        Err(e) => e.label(),
    }
}

impl AuthService {
    pub fn new(
        store: Arc<dyn CustomerStore>,
        tokens: TokenCodec,
        hasher: PasswordHasher,
        ids: Arc<IdGenerator>,
        clock: Arc<dyn Clock>,
        lifetimes: TokenLifetimes,
        metrics: Metrics,
    ) -> Self {
        Self {
            store,
            tokens,
            hasher,
            ids,
            clock,
            lifetimes,
            metrics,
        }
    }

    pub async fn signup(&self, signup: Signup) -> Result<TokenPair, Error> {
        let result = self.try_signup(signup).await;
        self.metrics
            .signups
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    pub async fn login(&self, email: Email, password: Password) -> Result<TokenPair, Error> {
        let result = self.try_login(email, password).await;
        self.metrics
            .logins
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let result = self.try_refresh(refresh_token).await;
        self.metrics
            .refreshes
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    async fn try_signup(&self, signup: Signup) -> Result<TokenPair, Error> {
        let bcrypted_password = self.hasher.hash(signup.password).await?;
        let mut customer = NewCustomer {
            id: CustomerId(0),
            personal: signup.personal,
            shipping: signup.shipping,
            bcrypted_password,
        };
        for _ in 0..MAX_ID_ATTEMPTS {
            customer.id = CustomerId(self.ids.next_id().map_err(Error::internal)?);
            match self.store.insert(&customer).await {
                Ok(()) => return Ok(self.issue(customer.id)),
                Err(StoreError::IdTaken) => {
                    tracing::warn!(
                        machine_id = self.ids.machine_id(),
                        "customer id collision; is MACHINE_ID shared by two replicas?"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("could not allocate a unique customer id"))
    }

    async fn try_login(&self, email: Email, password: Password) -> Result<TokenPair, Error> {
        let credentials = self
            .store
            .credentials(&email)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        if !credentials.active {
            return Err(Error::CustomerInactive);
        }
        if !self
            .hasher
            .verify(password, credentials.bcrypted_password)
            .await?
        {
            return Err(Error::AuthenticationFailed);
        }
        Ok(self.issue(credentials.id))
    }

    async fn try_refresh(&self, refresh_token: &str) -> Result<TokenPair, Error> {
        let id = self.verify(refresh_token, TokenKind::Refresh)?;
        let check = self.store.check(id).await?.ok_or(Error::CustomerNotFound)?;
        if !check.active {
            return Err(Error::CustomerInactive);
        }
        Ok(self.issue(id))
    }

    /// Pure token verification: no storage, no cache. The `Auth` RPC and the HTTP
    /// middleware call this on every request.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<CustomerId, TokenError> {
        self.tokens.verify(token, kind, self.clock.now_secs())
    }

    fn issue(&self, id: CustomerId) -> TokenPair {
        let now = self.clock.now_secs();
        TokenPair {
            access_token: self.tokens.mint(
                id,
                TokenKind::Access,
                now.saturating_add(self.lifetimes.access_secs),
            ),
            refresh_token: self.tokens.mint(
                id,
                TokenKind::Refresh,
                now.saturating_add(self.lifetimes.refresh_secs),
            ),
        }
    }
}
