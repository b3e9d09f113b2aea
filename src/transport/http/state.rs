//! The state every handler of the API gets: the services, behind one reference count.

use std::sync::Arc;

use crate::{
    metrics::Metrics, service::account::AccountService, service::auth::AuthService,
    service::keys::KeyRing, service::readiness::Health, service::recovery::RecoveryService,
};

/// The handles every handler may use. One `Arc`: axum clones the state for every
/// extractor of every request, so a clone must be a single reference count.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub auth: AuthService,
    pub account: AccountService,
    pub health: Health,
    pub metrics: Metrics,
    pub keys: KeyRing,
    /// Password reset and email verification (SPEC section 13).
    pub recovery: RecoveryService,
}

impl AppState {
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}
