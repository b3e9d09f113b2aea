//! The second step of a login and the step-up of sensitive changes (SPEC section 16).
//!
//! A code is accepted once: a TOTP step only if later than the last one used, a recovery
//! code by deleting it, each one conditional statement in the database, so that the same
//! code on another replica a moment later is refused. Wrong codes count as failed logins on
//! the login's counters (section 10, rule 15.5) and, for a signed-in customer, on their own
//! count of password checks (rule 15.4).

use crate::{
    domain::{Amr, ClientInfo, CustomerId, EmailKey, Error, MailKind, Method, Proof},
    service::mail::token,
    service::mfa::{MAX_TOKEN_ATTEMPTS, MfaKey, codes, totp},
    storage::store::{MfaChallenge, NewMail},
};

use super::{AuthService, TokenPair};

/// The second step's `methods` for a customer with TOTP.
const TOTP_METHODS: [&str; 2] = ["totp", "recovery_code"];

fn client_text(client: &ClientInfo) -> String {
    client.ip.map(|ip| ip.to_string()).unwrap_or_default()
}

impl AuthService {
    pub(super) fn mfa_key(&self) -> Result<&MfaKey, Error> {
        self.0
            .mfa
            .key
            .as_ref()
            .ok_or(Error::SecondFactorNotConfigured)
    }

    /// The active second factors of a customer (`GET /info/account`'s `mfa`): `["totp"]`
    /// or `[]`.
    pub async fn second_factors(&self, customer: CustomerId) -> Result<Vec<&'static str>, Error> {
        let totp = self.0.mfa.store.totp(customer).await?;
        Ok(if totp.is_some_and(|t| t.confirmed) {
            vec!["totp"]
        } else {
            Vec::new()
        })
    }

    /// After a right password of a customer with a second factor: the `mfa_token` that
    /// finishes the login, as the error the login answers (no session yet).
    pub(super) async fn challenge(
        &self,
        customer: CustomerId,
        generation: i64,
        email_key: EmailKey,
        client: &ClientInfo,
        factors: Vec<&'static str>,
    ) -> Result<Error, Error> {
        debug_assert!(factors.contains(&"totp"), "the only second factor so far");
        // As a token in a mail: 256 random bits, only their hash stored.
        let (token, hash) = token::generate();
        let now = self.now_ms();
        let ttl = i64::try_from(self.0.mfa.token_ttl.as_millis()).unwrap_or(i64::MAX);
        self.0
            .mfa
            .store
            .add_challenge(&MfaChallenge {
                token_hash: hash,
                customer,
                client_ip: client_text(client),
                email_key: email_key.as_str().to_owned(),
                generation,
                created_at: now,
                expires_at: now.saturating_add(ttl),
                attempts: 0,
            })
            .await?;
        Ok(Error::SecondFactorRequired {
            mfa_token: token,
            methods: TOTP_METHODS.to_vec(),
        })
    }

    /// `POST /auth/mfa`: the second step; a session with `amr` `pwd` and the method.
    pub async fn finish_login(
        &self,
        mfa_token: &str,
        proof: Proof,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let method = proof.method();
        let result = self.try_finish_login(mfa_token, proof, client).await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(Error::SecondFactorFailed) => "invalid_code",
            Err(Error::TokenInvalid) => "invalid_token",
            Err(e) => e.label(),
        };
        let m = &self.0.metrics;
        m.mfa
            .second_steps
            .with_label_values(&[method, outcome])
            .inc();
        m.logins.with_label_values(&[super::outcome(&result)]).inc();
        result
    }

    async fn try_finish_login(
        &self,
        mfa_token: &str,
        proof: Proof,
        client: &ClientInfo,
    ) -> Result<TokenPair, Error> {
        let hash = token::parse(mfa_token).ok_or(Error::TokenInvalid)?;
        let store = &self.0.mfa.store;
        // Counted before the code is looked at: concurrent guesses share the five.
        let challenge = store
            .attempt_challenge(&hash, self.now_ms(), MAX_TOKEN_ATTEMPTS)
            .await?
            .filter(|c| c.client_ip == client_text(client))
            .ok_or(Error::TokenInvalid)?;
        let email_key = EmailKey::from_canonical(challenge.email_key.clone());
        let checking = self.enter(self.login_counters(&email_key, client)).await?;
        let checked = self.check_proof(challenge.customer, &proof).await;
        let right = !matches!(checked, Ok(None));
        // A failure to check is no guess; a wrong code is a failed login.
        self.settle(checking, checked.is_err() || right).await;
        let method = checked?.ok_or(Error::SecondFactorFailed)?;
        if !store.finish_challenge(&hash).await? {
            return Err(Error::TokenInvalid);
        }
        let amr = Amr::of(&[Method::Password, method]);
        let grant = match self
            .0
            .sessions
            .start(challenge.customer, Some(challenge.generation), client, amr)
            .await
        {
            Err(Error::CustomerNotFound) if self.0.abuse.uniform_errors => {
                return Err(Error::AuthenticationFailed);
            }
            started => started?,
        };
        Ok(self.mint(&grant))
    }

    /// Whether `proof` is a valid, unused code of the customer's; `Ok(None)` when it is not.
    /// A code accepted here is used up.
    async fn check_proof(
        &self,
        customer: CustomerId,
        proof: &Proof,
    ) -> Result<Option<Method>, Error> {
        let store = &self.0.mfa.store;
        match proof {
            Proof::Totp(code) => {
                let Some(code) = totp::normalise(code) else {
                    return Ok(None);
                };
                let Some(stored) = store.totp(customer).await?.filter(|t| t.confirmed) else {
                    return Ok(None);
                };
                let secret = self.open_secret(customer, &stored.sealed)?;
                let now = self.0.clock.now_secs();
                let Some(step) =
                    totp::matching_step(&secret, &code, u64::try_from(now).unwrap_or(0))
                else {
                    return Ok(None);
                };
                // Later than the last step used, or a replay.
                Ok(store
                    .use_totp_step(customer, step)
                    .await?
                    .then_some(Method::Otp))
            }
            Proof::RecoveryCode(code) => {
                let Some(code) = codes::normalise(code) else {
                    return Ok(None);
                };
                let digest = self.mfa_key()?.code_digest(customer, &code);
                let Some(left) = store.use_recovery_code(customer, &digest).await? else {
                    return Ok(None);
                };
                self.0.metrics.mfa.recovery_codes_used.inc();
                tracing::info!(customer_id = %customer, left, "recovery code used");
                self.notify(customer, MailKind::RecoveryCodeUsed).await;
                Ok(Some(Method::RecoveryCode))
            }
        }
    }

    pub(super) fn open_secret(
        &self,
        customer: CustomerId,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Error> {
        self.mfa_key()?.open(customer, sealed).ok_or_else(|| {
            Error::internal(
                "a TOTP secret does not open with MFA_ENCRYPTION_KEY (was the key changed?)",
            )
        })
    }

    /// The step-up of a sensitive change (SPEC section 16): with an active second factor,
    /// a valid code is required (400 `invalid code` otherwise); counted per customer with
    /// the password checks (rule 15.4). Without one, nothing is asked.
    pub(crate) async fn step_up(
        &self,
        customer: CustomerId,
        proof: Option<Proof>,
    ) -> Result<(), Error> {
        if self.second_factors(customer).await?.is_empty() {
            return Ok(());
        }
        let proof = proof.ok_or(Error::InvalidCode)?;
        let checking = self.enter(vec![self.customer_counter(customer)]).await?;
        let checked = self.check_proof(customer, &proof).await;
        self.settle(checking, !matches!(checked, Ok(None))).await;
        checked?.map(drop).ok_or(Error::InvalidCode)
    }

    /// Queues a notice to the customer's current email; a failure to queue is logged, the
    /// change it reports stands.
    pub(super) async fn notify(&self, customer: CustomerId, kind: MailKind) {
        let queued = async {
            let personal = self
                .0
                .customers
                .personal_info(customer)
                .await?
                .ok_or(Error::CustomerNotFound)?;
            self.0
                .mfa
                .mailer
                .queue(NewMail {
                    kind,
                    customer: Some(customer),
                    email: personal.email,
                })
                .await
        };
        if let Err(error) = queued.await {
            tracing::warn!(customer_id = %customer, kind = kind.label(), %error, "notice not queued");
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        i64::try_from(self.0.clock.now_millis()).unwrap_or(i64::MAX)
    }
}
