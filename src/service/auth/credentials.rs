//! The flows that check or set a password: signup, login, password change, account
//! deletion, and the operator's activation switch.

use std::time::Duration;

use crate::{
    domain::{
        Amr, ClientInfo, CustomerId, Email, EmailKey, Error, NewCustomer, Password, PersonalInfo,
        Proof, RevokeReason,
    },
    service::throttle::{Decision, LockoutKey, WindowKey},
    storage::store::{StoreError, Which},
};

use super::{
    AuthService, Signup, TokenPair, Verified, guard::Counter, outcome, password::Algorithm,
};

/// The window of `SIGNUP_MAX_PER_IP_PER_HOUR`.
const SIGNUP_WINDOW: Duration = Duration::from_secs(3600);

/// Two generators that share a machine id can produce one ID; the primary key catches it
/// and the insert is retried with a new one.
const MAX_ID_ATTEMPTS: usize = 5;

impl AuthService {
    pub async fn signup(&self, signup: Signup, client: &ClientInfo) -> Result<TokenPair, Error> {
        let result = self.try_signup(signup, client).await;
        self.0
            .metrics
            .signups
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    pub async fn login(
        &self,
        email: Email,
        password: Password,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let result = self.try_login(email, password, client).await;
        self.0
            .metrics
            .logins
            .with_label_values(&[outcome(&result)])
            .inc();
        result
    }

    async fn try_signup(&self, signup: Signup, client: &ClientInfo) -> Result<TokenPair, Error> {
        // Decided before any hashing: a flood of signups cannot take the pool.
        let key = WindowKey::Signup(client.ip);
        if let Decision::Limited { retry_after } = self
            .0
            .throttle
            .hit(&key, self.0.abuse.signups_per_ip_per_hour, SIGNUP_WINDOW)
            .await
        {
            return Err(self.refuse(key.label(), retry_after));
        }
        self.check_strength(&signup.password, &signup.personal)
            .await?;
        let password_hash = self.0.hasher.hash(signup.password).await?;
        let mut customer = NewCustomer {
            id: CustomerId(0),
            personal: signup.personal,
            shipping: signup.shipping,
            password_hash,
        };
        for _ in 0..MAX_ID_ATTEMPTS {
            customer.id = CustomerId(self.0.ids.next_id().map_err(Error::internal)?);
            match self.0.customers.insert(&customer).await {
                Ok(()) => {
                    let grant = self
                        .0
                        .sessions
                        .start(customer.id, None, client, Amr::NONE)
                        .await?;
                    return Ok(self.mint(&grant));
                }
                Err(StoreError::IdTaken) => {
                    tracing::warn!(
                        machine_id = self.0.ids.machine_id(),
                        "customer id collision; is MACHINE_ID shared by two replicas?"
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::internal("could not allocate a unique customer id"))
    }

    /// 400 `password too weak` below `PASSWORD_MIN_SCORE`, the customer's own data counting
    /// against the password.
    pub(crate) async fn check_strength(
        &self,
        password: &Password,
        personal: &PersonalInfo,
    ) -> Result<(), Error> {
        let min = self.0.abuse.min_password_score;
        if min == 0 {
            return Ok(());
        }
        let inputs = vec![
            personal.email.as_str().to_owned(),
            personal.first_name.as_str().to_owned(),
            personal.last_name.as_str().to_owned(),
        ];
        if self.0.hasher.strength(password.clone(), inputs).await? < min {
            return Err(Error::PasswordTooWeak);
        }
        Ok(())
    }

    async fn try_login(
        &self,
        email: Email,
        password: Password,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let abuse = &self.0.abuse;
        // Rule 15.3: every spelling the database takes for this address counts as one.
        let email_key = self.0.customers.email_key(&email).await?;
        let counters = self.login_counters(&email_key, client);
        // Decided before any hashing; however many guesses arrive at once, no more than
        // the limit are checked, and right ones beyond it wait for those ahead.
        let checking = self.enter(counters).await?;
        let Some(credentials) = self.0.customers.credentials(&email).await? else {
            // As long as a wrong password takes, so that the list of customers cannot be
            // read off the clock.
            self.0.hasher.verify_dummy(password).await?;
            self.settle(checking, false).await;
            return Err(if abuse.uniform_errors {
                Error::AuthenticationFailed
            } else {
                Error::CustomerNotFound
            });
        };
        let stored = credentials.password_hash.clone();
        let right = self
            .0
            .hasher
            .verify(password.clone(), credentials.password_hash)
            .await?;
        // With a second factor the password step clears no count: only the second step
        // does (SPEC section 17, details). It is not a failure either.
        let factors = if right {
            self.second_factors(credentials.id).await
        } else {
            Ok(Vec::new())
        };
        match &factors {
            Ok(factors) if !factors.is_empty() => self.release(checking).await,
            _ => self.settle(checking, right).await,
        }
        let factors = factors?;
        if !credentials.active && (right || !abuse.uniform_errors) {
            // Part I: an inactive customer is told so; with uniform errors only once the
            // password is right, so that it tells nothing about the address otherwise.
            return Err(Error::CustomerInactive);
        }
        if !right {
            return Err(Error::AuthenticationFailed);
        }
        if self.0.hasher.policy().needs_rehash(&stored) {
            self.upgrade_hash(credentials.id, password, &stored);
        }
        if !factors.is_empty() {
            return Err(self
                .challenge(
                    credentials.id,
                    credentials.generation,
                    email_key,
                    client,
                    factors,
                )
                .await?);
        }
        // Only while the credentials are still the ones verified (SPEC rule 15.1).
        let grant = match self
            .0
            .sessions
            .start(
                credentials.id,
                Some(credentials.generation),
                client,
                Amr::NONE,
            )
            .await
        {
            Err(Error::CustomerNotFound) if abuse.uniform_errors => {
                return Err(Error::AuthenticationFailed);
            }
            started => started?,
        };
        Ok(self.mint(&grant))
    }

    /// The counters a login's password check, and its second step, are in flight on.
    pub(super) fn login_counters(&self, email_key: &EmailKey, client: &ClientInfo) -> Vec<Counter> {
        let abuse = &self.0.abuse;
        vec![
            Counter {
                key: LockoutKey::Address(client.ip),
                policy: abuse.login_per_ip,
                cleared_by_success: false,
            },
            Counter {
                key: LockoutKey::Account(email_key.clone()),
                policy: abuse.login_per_account,
                cleared_by_success: true,
            },
            Counter {
                key: LockoutKey::EmailAddress {
                    email: email_key.clone(),
                    client: client.ip,
                },
                policy: abuse.login,
                cleared_by_success: true,
            },
        ]
    }

    /// Replaces a stored hash that is not of the configured kind and parameters, after the
    /// login has been answered; every replica's cached credentials follow. Only while the
    /// stored hash is still the one verified: a password changed meanwhile stays changed.
    fn upgrade_hash(&self, customer: CustomerId, password: Password, stored: &str) {
        let from = Algorithm::of(stored).map_or("unknown", Algorithm::label);
        let to = self.0.hasher.policy().algorithm().label();
        let service = self.clone();
        let verified = stored.to_owned();
        tokio::spawn(async move {
            let upgraded = async {
                let hash = service.0.hasher.hash(password).await?;
                let store = &service.0.customers;
                Ok::<_, Error>(store.upgrade_password(customer, &verified, &hash).await?)
            };
            match upgraded.await {
                Ok(false) => {
                    tracing::info!(customer_id = %customer, "password hash not upgraded: it changed since the login");
                }
                Ok(true) => {
                    service
                        .0
                        .metrics
                        .rehashes
                        .with_label_values(&[from, to])
                        .inc();
                    tracing::info!(customer_id = %customer, from, to, "password hash upgraded");
                }
                Err(error) => {
                    tracing::warn!(customer_id = %customer, %error, "password hash not upgraded")
                }
            }
        });
    }

    /// Clears the login failures counted for `email` from every address (after an email
    /// change is reverted).
    pub async fn clear_login_failures(&self, email: &Email) {
        let key = LockoutKey::Email(self.email_key(email).await);
        self.0
            .throttle
            .clear_family(&key, &self.0.abuse.login)
            .await;
    }

    /// Lifts every lockout of the customer after a password reset: the login failures of
    /// `email` from every address, its account ceiling (rule 15.5) and the customer's own
    /// count of password checks (rule 15.4). The link reached the mailbox and the password
    /// is new, so guesses at the old one say nothing about it: the customer logs in at
    /// once (an attacker can lock the account again, with as many guesses as before).
    pub async fn clear_lockouts(&self, customer: CustomerId, email: &Email) {
        let email = self.email_key(email).await;
        let (throttle, abuse) = (&self.0.throttle, &self.0.abuse);
        throttle
            .clear_family(&LockoutKey::Email(email.clone()), &abuse.login)
            .await;
        throttle
            .clear(&LockoutKey::Account(email), &abuse.login_per_account)
            .await;
        throttle
            .clear(&LockoutKey::Customer(customer), &abuse.login)
            .await;
    }

    /// The key of `email` (rule 15.3); ASCII-folded when the database cannot tell now.
    pub async fn email_key(&self, email: &Email) -> EmailKey {
        match self.0.customers.email_key(email).await {
            Ok(key) => key,
            Err(_) => EmailKey::ascii_folded(email),
        }
    }

    /// Whether `password` is the customer's; `AuthenticationFailed` when it is not. Counted
    /// per customer as logins are (rule 15.4): 429 once locked, before any hashing.
    pub(crate) async fn check_password(
        &self,
        customer: CustomerId,
        password: Password,
    ) -> Result<(), Error> {
        let checking = self.enter(vec![self.customer_counter(customer)]).await?;
        let right = self.verify_password(customer, password).await;
        // Only a wrong password counts; a failure to check is no guess.
        self.settle(checking, !matches!(right, Err(Error::AuthenticationFailed)))
            .await;
        right
    }

    async fn verify_password(&self, customer: CustomerId, password: Password) -> Result<(), Error> {
        let personal = self
            .0
            .customers
            .personal_info(customer)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        let credentials = self
            .0
            .customers
            .credentials(&personal.email)
            .await?
            .filter(|c| c.id == customer)
            .ok_or(Error::CustomerNotFound)?;
        if self
            .0
            .hasher
            .verify(password, credentials.password_hash)
            .await?
        {
            Ok(())
        } else {
            Err(Error::AuthenticationFailed)
        }
    }

    /// Replaces the password; every other session of the customer ends, the caller's stays.
    pub async fn change_password(
        &self,
        caller: Verified,
        current: Password,
        new: Password,
        proof: Option<Proof>,
    ) -> Result<(), Error> {
        self.check_password(caller.customer, current).await?;
        self.step_up(caller.customer, proof).await?;
        if self.0.abuse.min_password_score > 0 {
            let personal = self
                .0
                .customers
                .personal_info(caller.customer)
                .await?
                .ok_or(Error::CustomerNotFound)?;
            self.check_strength(&new, &personal).await?;
        }
        let hash = self.0.hasher.hash(new).await?;
        self.0
            .customers
            .update_password(caller.customer, &hash)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        let which = match caller.session {
            Some(current) => Which::AllExcept(current),
            None => Which::All,
        };
        self.0
            .sessions
            .revoke(caller.customer, which, RevokeReason::PasswordChange)
            .await?;
        Ok(())
    }

    /// Removes the customer, their sessions (their tokens refused on every replica) and
    /// every cache entry; the email and phone number can sign up again.
    pub async fn delete_account(
        &self,
        customer: CustomerId,
        password: Password,
        proof: Option<Proof>,
    ) -> Result<(), Error> {
        self.check_password(customer, password).await?;
        self.step_up(customer, proof).await?;
        self.delete_customer(customer).await
    }

    /// Account deletion without a password: the operator's.
    pub async fn delete_customer(&self, customer: CustomerId) -> Result<(), Error> {
        let now_ms = self.now_ms();
        let deleted = self
            .0
            .customers
            .delete(customer, now_ms)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        self.0
            .sessions
            .announce(RevokeReason::AccountDeleted, &deleted.revocations)
            .await;
        tracing::info!(customer_id = %customer, "account deleted");
        Ok(())
    }

    /// Allows or refuses a customer's logins and refreshes; deactivation also ends every
    /// session. Returns the previous state.
    pub async fn set_active(&self, customer: CustomerId, active: bool) -> Result<bool, Error> {
        let previous = self
            .0
            .customers
            .set_active(customer, active)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        if !active {
            self.0
                .sessions
                .revoke(customer, Which::All, RevokeReason::Deactivated)
                .await?;
        }
        Ok(previous)
    }
}
