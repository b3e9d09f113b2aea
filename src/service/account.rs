//! Reading and updating a customer's personal and shipping information.

use std::sync::Arc;

use crate::{
    domain::{CustomerId, Error, PersonalInfo, ShippingInfo},
    storage::store::{CustomerStore, RecoveryStore},
};

#[derive(Clone)]
pub struct AccountService {
    store: Arc<dyn CustomerStore>,
    /// Where the verified address is kept: a changed email is unverified again.
    verifications: Arc<dyn RecoveryStore>,
}

impl AccountService {
    pub fn new(store: Arc<dyn CustomerStore>, verifications: Arc<dyn RecoveryStore>) -> Self {
        Self {
            store,
            verifications,
        }
    }

    pub async fn personal_info(&self, id: CustomerId) -> Result<PersonalInfo, Error> {
        self.store
            .personal_info(id)
            .await?
            .ok_or(Error::CustomerNotFound)
    }

    pub async fn shipping_info(&self, id: CustomerId) -> Result<ShippingInfo, Error> {
        self.store
            .shipping_info(id)
            .await?
            .ok_or(Error::CustomerNotFound)
    }

    pub async fn update_personal_info(
        &self,
        id: CustomerId,
        info: PersonalInfo,
    ) -> Result<(), Error> {
        let previous = self
            .store
            .update_personal_info(id, &info)
            .await?
            .ok_or(Error::CustomerNotFound)?;
        // SPEC section 13: a changed email is unverified again. (A change made by a Go
        // replica is caught too: verified means "equal to the address proven".)
        if previous.email.as_str().to_lowercase() != info.email.as_str().to_lowercase() {
            self.verifications.forget_verification(id).await?;
        }
        Ok(())
    }

    pub async fn update_shipping_info(
        &self,
        id: CustomerId,
        info: ShippingInfo,
    ) -> Result<(), Error> {
        self.store
            .update_shipping_info(id, &info)
            .await?
            .map(drop)
            .ok_or(Error::CustomerNotFound)
    }
}
