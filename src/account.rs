//! Reading and updating a customer's personal and shipping information.

use std::sync::Arc;

use crate::{
    domain::{CustomerId, Error, PersonalInfo, ShippingInfo},
    store::CustomerStore,
};

#[derive(Clone)]
pub struct AccountService {
    store: Arc<dyn CustomerStore>,
}

impl AccountService {
    pub fn new(store: Arc<dyn CustomerStore>) -> Self {
        Self { store }
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
        self.store
            .update_personal_info(id, &info)
            .await?
            .map(drop)
            .ok_or(Error::CustomerNotFound)
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
