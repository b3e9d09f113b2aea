//! The customer and the views of it that the API reads and writes.

use std::fmt;

use super::fields::{Address, Email, Name, PhoneNumber};

/// A Sonyflake ID (SPEC section 3): 39-bit time, 8-bit sequence, 16-bit machine id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CustomerId(pub u64);

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything a signup stores; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewCustomer {
    pub id: CustomerId,
    pub personal: PersonalInfo,
    pub shipping: ShippingInfo,
    /// A bcrypt or Argon2id hash (the column keeps the Go service's name, `bcrypted_password`).
    pub password_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalInfo {
    pub first_name: Name,
    pub last_name: Name,
    pub email: Email,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingInfo {
    pub address: Address,
    pub phone_number: PhoneNumber,
}

/// What login needs to know about an email address.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub id: CustomerId,
    pub active: bool,
    /// A bcrypt or Argon2id hash, as stored.
    pub password_hash: String,
    /// The credential generation read with them (SPEC rule 15.1): the session a login
    /// starts requires it unchanged.
    pub generation: i64,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("id", &self.id)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// What refresh needs to know about a customer id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckResult {
    pub active: bool,
}
