//! The flows that check or set a password: signup, login, password change, account
//! deletion, and the operator's activation switch.

use crate::{
    domain::{
        ClientInfo, CustomerId, Email, Error, NewCustomer, Password, PersonalInfo, RevokeReason,
        ShippingInfo,
    },
    store::{StoreError, Which},
};

use super::{AuthService, TokenPair, Verified, outcome};

/// Two generators that share a machine id can produce one ID; the primary key catches it
/// and the insert is retried with a new one.
const MAX_ID_ATTEMPTS: usize = 5;

/// A validated signup.
#[derive(Debug, Clone)]
pub struct Signup {
    pub password: Password,
    pub personal: PersonalInfo,
    pub shipping: ShippingInfo,
}

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
        let bcrypted_password = self.0.hasher.hash(signup.password).await?;
        let mut customer = NewCustomer {
            id: CustomerId(0),
            personal: signup.personal,
            shipping: signup.shipping,
            bcrypted_password,
        };
        for _ in 0..MAX_ID_ATTEMPTS {
            customer.id = CustomerId(self.0.ids.next_id().map_err(Error::internal)?);
            match self.0.customers.insert(&customer).await {
                Ok(()) => {
                    let grant = self.0.sessions.start(customer.id, client).await?;
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

    async fn try_login(
        &self,
        email: Email,
        password: Password,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let credentials = self
            .0
            .customers
            .credentials(&email)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        if !credentials.active {
            return Err(Error::CustomerInactive);
        }
        if !self
            .0
            .hasher
            .verify(password, credentials.bcrypted_password)
            .await?
        {
            return Err(Error::AuthenticationFailed);
        }
        let grant = self.0.sessions.start(credentials.id, client).await?;
        Ok(self.mint(&grant))
    }

    /// Whether `password` is the customer's; `AuthenticationFailed` when it is not.
    async fn check_password(&self, customer: CustomerId, password: Password) -> Result<(), Error> {
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
            .verify(password, credentials.bcrypted_password)
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
    ) -> Result<(), Error> {
        self.check_password(caller.customer, current).await?;
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
    ) -> Result<(), Error> {
        self.check_password(customer, password).await?;
        self.delete_customer(customer).await
    }

    /// Account deletion without a password: the operator's.
    pub async fn delete_customer(&self, customer: CustomerId) -> Result<(), Error> {
        let now_ms = i64::try_from(self.0.clock.now_millis()).unwrap_or(i64::MAX);
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
