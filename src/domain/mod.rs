//! Domain types and errors: what a customer is, which values are valid, what can go wrong.
//!
//! Nothing here knows about HTTP, gRPC, SQL or Redis; transports and storage translate
//! to and from these types.

mod amr;
pub mod clock;
mod customer;
mod email_key;
mod error;
mod fields;
mod format;
mod mail;
pub mod net;
mod random_id;
pub mod secret;
mod session;
mod token;

pub use amr::{Amr, Method, Proof};
pub use customer::{CheckResult, Credentials, CustomerId, NewCustomer, PersonalInfo, ShippingInfo};
pub use email_key::EmailKey;
pub use error::{Error, ErrorChain, InternalError, Invalid, Unavailable};
pub use fields::{Address, Email, FieldError, Name, Password, PhoneNumber};
pub use mail::{Account, MailKind, TokenPurpose, masked_email};
pub use net::IpNet;
pub use random_id::{RandomId, SessionId, TokenId};
pub use secret::Secret;
pub use session::{ClientInfo, Revocation, RevokeReason, Session};
pub use token::{Claims, TokenError, TokenKind};
