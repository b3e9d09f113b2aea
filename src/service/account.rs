//! Reading and updating a customer's personal and shipping information.
//!
//! An email change is guarded (SPEC rule 15.2): with `EMAIL_CHANGE_REQUIRES_PASSWORD` it
//! needs the current password, and the address it replaces always gets a notice with a
//! revert link (sent by the mail sender, which makes the token). An address the database
//! takes for the same one (another spelling) is no change.

use std::sync::Arc;

use crate::{
    domain::{CustomerId, Error, MailKind, Password, PersonalInfo, ShippingInfo},
    service::auth::AuthService,
    service::mail::{EmailChangeSettings, Mailer},
    storage::store::{CustomerStore, NewMail, RecoveryStore},
};

/// What the account service is built from.
pub struct AccountDeps {
    pub store: Arc<dyn CustomerStore>,
    /// Where the verified address is kept: a changed email is unverified again.
    pub verifications: Arc<dyn RecoveryStore>,
    /// The password check of a guarded email change (throttled per customer, rule 15.4).
    pub auth: AuthService,
    pub mailer: Mailer,
    pub email_change: EmailChangeSettings,
}

#[derive(Clone)]
pub struct AccountService(Arc<AccountDeps>);

impl AccountService {
    pub fn new(deps: AccountDeps) -> Self {
        Self(Arc::new(deps))
    }

    pub async fn personal_info(&self, id: CustomerId) -> Result<PersonalInfo, Error> {
        self.0
            .store
            .personal_info(id)
            .await?
            .ok_or(Error::CustomerNotFound)
    }

    pub async fn shipping_info(&self, id: CustomerId) -> Result<ShippingInfo, Error> {
        self.0
            .store
            .shipping_info(id)
            .await?
            .ok_or(Error::CustomerNotFound)
    }

    /// `PUT /info/person`. `current_password` is `None` when the body has none, and
    /// `Some(Err(()))` when it has one that cannot be a password (wrong, without hashing).
    pub async fn update_personal_info(
        &self,
        id: CustomerId,
        info: PersonalInfo,
        current_password: Option<Result<Password, ()>>,
    ) -> Result<(), Error> {
        let store = &self.0.store;
        if self.0.email_change.requires_password {
            let current = self.personal_info(id).await?;
            if store.email_key(&current.email).await? != store.email_key(&info.email).await? {
                match current_password {
                    Some(Ok(password)) => self.0.auth.check_password(id, password).await?,
                    None | Some(Err(())) => return Err(Error::AuthenticationFailed),
                }
            }
        }
        let previous = store
            .update_personal_info(id, &info, self.0.email_change.revert_ttl)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        // The comparison the database made when it recorded the change (rule 15.3).
        if store.email_key(&previous.email).await? == store.email_key(&info.email).await? {
            return Ok(());
        }
        // SPEC section 13: a changed email is unverified again. (A change made by a Go
        // replica is caught too: verified means "equal to the address proven".)
        self.0.verifications.forget_verification(id).await?;
        // A security notice: one per change, to the address it replaced, outside the
        // limits on mails a customer asks for.
        tracing::info!(customer_id = %id, "email changed");
        self.0
            .mailer
            .queue(NewMail {
                kind: MailKind::EmailChanged,
                customer: Some(id),
                email: previous.email,
            })
            .await
    }

    pub async fn update_shipping_info(
        &self,
        id: CustomerId,
        info: ShippingInfo,
    ) -> Result<(), Error> {
        self.0
            .store
            .update_shipping_info(id, &info)
            .await?
            .map(drop)
            .ok_or(Error::CustomerNotFound)
    }
}
