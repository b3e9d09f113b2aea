//! Mail (SPEC section 13): the outbox a request writes to, and the sender task that
//! empties it.
//!
//! A request only inserts a row (`Mailer::queue`, in `outbox`): what to send to whom,
//! never a token; `settings` holds how mails are made and retried.
//! The sender (`sender`) claims due rows by compare-and-set, so that one replica sends
//! each; makes the token when it sends (a retry makes a new one); hands the mail to SMTP
//! (`smtp`) in plain text and HTML (`templates`); and retries with backoff across
//! restarts until `MAIL_MAX_ATTEMPTS`, then gives up with a log line and a metric.

mod outbox;
mod sender;
mod settings;
pub mod smtp;
mod templates;
pub mod token;

pub use outbox::Mailer;
pub use sender::Sender;
pub use settings::{EmailChangeSettings, MAX_RETRY_DELAY, MailSettings};
pub use smtp::{SmtpTls, SmtpUrl, Transport};
