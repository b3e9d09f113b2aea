//! Enrolling and removing TOTP and renewing recovery codes (SPEC section 16): each asks
//! for what proves the customer is at the keyboard, the password and, once a factor is
//! active, a code; each is told to the customer by mail.

use crate::{
    domain::{CustomerId, Error, MailKind, Password, Proof},
    service::mfa::{codes, totp},
};

use super::{AuthService, Verified};

impl AuthService {
    /// `POST /info/mfa/totp`: a new secret, pending until a code of it is confirmed.
    pub async fn enrol_totp(
        &self,
        caller: Verified,
        password: Password,
    ) -> Result<totp::Enrolment, Error> {
        let customer = caller.customer;
        let key = self.mfa_key()?.clone();
        self.check_password(customer, password).await?;
        let personal = self
            .0
            .customers
            .personal_info(customer)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        let secret = totp::new_secret();
        let sealed = key.seal(customer, &secret);
        if !self
            .0
            .mfa
            .store
            .begin_totp(customer, &sealed, self.now_ms())
            .await?
        {
            return Err(Error::SecondFactorAlreadyActive);
        }
        self.count_enrolment("started");
        Ok(totp::enrolment(
            &secret,
            &self.0.mfa.issuer,
            personal.email.as_str(),
        ))
    }

    /// `POST /info/mfa/totp/confirm`: a code of the pending secret activates it; the
    /// recovery codes are returned, once.
    pub async fn confirm_totp(&self, caller: Verified, code: &str) -> Result<Vec<String>, Error> {
        let customer = caller.customer;
        self.mfa_key()?;
        let stored = match self.0.mfa.store.totp(customer).await? {
            Some(t) if t.confirmed => return Err(Error::SecondFactorAlreadyActive),
            Some(t) => t,
            None => return Err(Error::InvalidCode),
        };
        // A wrong code is a guess like a wrong password (rule 15.4).
        let checking = self.enter(vec![self.customer_counter(customer)]).await?;
        let step = match self.open_secret(customer, &stored.sealed) {
            Ok(secret) => {
                let now = u64::try_from(self.0.clock.now_secs()).unwrap_or(0);
                Ok(totp::normalise(code).and_then(|code| totp::matching_step(&secret, &code, now)))
            }
            Err(e) => Err(e),
        };
        self.settle(checking, !matches!(step, Ok(None))).await;
        let step = step?.ok_or(Error::InvalidCode)?;
        let shown = codes::generate();
        let digests = self.digests(customer, &shown)?;
        if !self
            .0
            .mfa
            .store
            .confirm_totp(customer, &stored.sealed, step, &digests, self.now_ms())
            .await?
        {
            // Confirmed or replaced by a request that ran meanwhile.
            return Err(Error::InvalidCode);
        }
        self.count_enrolment("confirmed");
        tracing::info!(customer_id = %customer, "second factor added");
        self.notify(customer, MailKind::SecondFactorAdded).await;
        Ok(shown)
    }

    /// `DELETE /info/mfa/totp`: the password and a code (or a recovery code) remove it.
    /// Without an active factor, only a pending secret goes, and no code is asked.
    pub async fn remove_totp(
        &self,
        caller: Verified,
        password: Password,
        proof: Option<Proof>,
    ) -> Result<(), Error> {
        let customer = caller.customer;
        self.check_password(customer, password).await?;
        self.step_up(customer, proof).await?;
        if self.0.mfa.store.remove_totp(customer).await? {
            self.count_enrolment("removed");
            tracing::info!(customer_id = %customer, "second factor removed");
            self.notify(customer, MailKind::SecondFactorRemoved).await;
        }
        Ok(())
    }

    /// `POST /info/mfa/recovery-codes`: a new set; the older one is void.
    pub async fn renew_recovery_codes(
        &self,
        caller: Verified,
        password: Password,
        proof: Option<Proof>,
    ) -> Result<Vec<String>, Error> {
        let customer = caller.customer;
        self.mfa_key()?;
        self.check_password(customer, password).await?;
        if self.second_factors(customer).await?.is_empty() {
            // Recovery codes stand in for a factor; without one there is nothing to renew.
            return Err(Error::InvalidCode);
        }
        self.step_up(customer, proof).await?;
        let shown = codes::generate();
        let digests = self.digests(customer, &shown)?;
        if !self
            .0
            .mfa
            .store
            .replace_recovery_codes(customer, &digests, self.now_ms())
            .await?
        {
            return Err(Error::InvalidCode);
        }
        tracing::info!(customer_id = %customer, "recovery codes renewed");
        Ok(shown)
    }

    /// The operator's reset (`DELETE /admin/v1/customers/{id}/mfa`): TOTP and recovery
    /// codes removed, the customer told. Whether a factor was active.
    pub async fn reset_second_factor(&self, customer: CustomerId) -> Result<bool, Error> {
        self.0
            .customers
            .check(customer)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        let removed = self.0.mfa.store.remove_totp(customer).await?;
        if removed {
            self.count_enrolment("operator_reset");
            self.notify(customer, MailKind::SecondFactorRemoved).await;
        }
        Ok(removed)
    }

    fn digests(&self, customer: CustomerId, shown: &[String]) -> Result<Vec<[u8; 32]>, Error> {
        let key = self.mfa_key()?;
        Ok(shown
            .iter()
            .filter_map(|code| codes::normalise(code))
            .map(|code| key.code_digest(customer, &code))
            .collect())
    }

    fn count_enrolment(&self, event: &str) {
        self.0
            .metrics
            .mfa
            .enrolments
            .with_label_values(&[event])
            .inc();
    }
}
