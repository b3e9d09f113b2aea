//! Metrics of mail, password reset, email verification and the operator API (SPEC
//! sections 13 and 14). Every label set known at start is a series from the start, at 0.

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};

use super::define::{counter, counter_vec, gauge, histogram_vec};

pub struct MailMetrics {
    /// Mails queued in the outbox, by kind.
    pub queued: IntCounterVec,
    /// Mails handed to the SMTP server (or written as `.eml`), by kind.
    pub sent: IntCounterVec,
    /// Mails given up after the last attempt, by kind.
    pub failed: IntCounterVec,
    /// Failed attempts that will be tried again, by kind.
    pub retried: IntCounterVec,
    /// Queued mails with nobody to send them to (unknown or inactive customer, email
    /// changed since), by kind.
    pub skipped: IntCounterVec,
    /// Reset and verification mails not sent because of a limit, by limit (`email`, `ip`).
    pub limited: IntCounterVec,
    /// Rows in the outbox (sent or given-up ones are deleted).
    pub outbox_depth: IntGauge,
    /// Age of the oldest row in the outbox; 0 when it is empty.
    pub outbox_oldest_age_seconds: IntGauge,
    /// From the request to the hand-over to SMTP, by kind.
    pub delivery_delay: HistogramVec,
    /// Password resets by outcome.
    pub resets: IntCounterVec,
    /// Email verifications by outcome.
    pub verifications: IntCounterVec,
    /// Email change reverts (rule 15.2) by outcome.
    pub reverts: IntCounterVec,
    /// Operator API and CLI calls by action and key name (`cli` for the command line).
    pub admin_calls: IntCounterVec,
    /// Operator API calls refused for a missing, malformed or unknown key.
    pub admin_rejected: IntCounter,
}

impl MailMetrics {
    pub(super) fn new(r: &Registry, app: &str) -> Self {
        let n = |suffix: &str| format!("{app}_{suffix}");
        let by_kind = |name: &str, help: &str| counter_vec(r, n(name), help, &["kind"]);
        Self {
            queued: by_kind("mail_queued_total", "Mails queued in the outbox, by kind."),
            sent: by_kind(
                "mail_sent_total",
                "Mails handed to the SMTP server (or written as .eml), by kind.",
            ),
            failed: by_kind(
                "mail_failed_total",
                "Mails given up after MAIL_MAX_ATTEMPTS failed attempts, by kind.",
            ),
            retried: by_kind(
                "mail_retried_total",
                "Failed mail attempts that will be tried again, by kind.",
            ),
            skipped: by_kind(
                "mail_skipped_total",
                "Queued mails with nobody to send them to (unknown or inactive customer, email changed), by kind.",
            ),
            limited: counter_vec(
                r,
                n("mail_requests_limited_total"),
                "Reset and verification mails not sent because of MAIL_MAX_PER_EMAIL_PER_HOUR (email) or MAIL_MAX_PER_IP_PER_HOUR (ip); the caller still got 202.",
                &["limit"],
            ),
            outbox_depth: gauge(r, n("mail_outbox_depth"), "Mails waiting in the outbox."),
            outbox_oldest_age_seconds: gauge(
                r,
                n("mail_outbox_oldest_age_seconds"),
                "Age of the oldest mail in the outbox (0 when empty).",
            ),
            delivery_delay: histogram_vec(
                r,
                n("mail_delivery_delay_seconds"),
                "Delay from the request to the hand-over of the mail, by kind.",
                vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                    3600.0,
                ],
                &["kind"],
            ),
            resets: counter_vec(
                r,
                n("password_resets_total"),
                "Password resets by outcome (success, invalid_or_expired_token, password_too_weak, invalid_parameter, ...).",
                &["outcome"],
            ),
            verifications: counter_vec(
                r,
                n("email_verifications_total"),
                "Email verifications by outcome (success, invalid_or_expired_token, ...).",
                &["outcome"],
            ),
            reverts: counter_vec(
                r,
                n("email_reverts_total"),
                "Email change reverts by outcome (success, invalid_or_expired_token, duplicate_entry, ...).",
                &["outcome"],
            ),
            admin_calls: counter_vec(
                r,
                n("admin_calls_total"),
                "Operator API and CLI calls by action and key name (cli for the command line).",
                &["action", "key"],
            ),
            admin_rejected: counter(
                r,
                n("admin_rejected_total"),
                "Operator API calls refused for a missing, malformed or unknown key.",
            ),
        }
    }
}
