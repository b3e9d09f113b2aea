//! The request's side of mail: a row in the outbox, and a nudge to this replica's sender.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::{
    domain::clock::Clock,
    domain::{Error, MailKind},
    metrics::Metrics,
    storage::store::{NewMail, OutboxStore},
};

/// Queues mails; cheap to clone. Wakes this replica's sender, so that a mail goes out at
/// once rather than at the next poll.
#[derive(Clone)]
pub struct Mailer {
    pub(super) outbox: Arc<dyn OutboxStore>,
    wake: Arc<Notify>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) metrics: Metrics,
}

impl Mailer {
    pub fn new(outbox: Arc<dyn OutboxStore>, clock: Arc<dyn Clock>, metrics: Metrics) -> Self {
        for kind in MailKind::ALL {
            let m = &metrics.mail;
            for counter in [&m.queued, &m.sent, &m.failed, &m.retried, &m.skipped] {
                counter.with_label_values(&[kind.label()]);
            }
            m.delivery_delay.with_label_values(&[kind.label()]);
        }
        Self {
            outbox,
            wake: Arc::new(Notify::new()),
            clock,
            metrics,
        }
    }

    /// Inserts the row; that is all a request does.
    pub async fn queue(&self, mail: NewMail) -> Result<(), Error> {
        let now = i64::try_from(self.clock.now_millis()).unwrap_or(i64::MAX);
        self.outbox.enqueue(&mail, now).await?;
        self.metrics
            .mail
            .queued
            .with_label_values(&[mail.kind.label()])
            .inc();
        self.wake.notify_one();
        Ok(())
    }

    /// What the sender waits on besides its poll.
    pub(crate) fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }
}
