//! Metrics of the second factor (SPEC section 16). Every label set known at start is a
//! series from the start, at 0.

use prometheus::{IntCounter, IntCounterVec, Registry};

use super::define::{counter, counter_vec};

pub struct MfaMetrics {
    /// Enrolment events: `started`, `confirmed`, `removed`, `operator_reset`.
    pub enrolments: IntCounterVec,
    /// Second steps of logins by method (`totp`, `recovery_code`) and outcome (`success`,
    /// `invalid_code`, `invalid_token`, `too_many_attempts`, ...).
    pub second_steps: IntCounterVec,
    /// Recovery codes used (at a login or as a step-up).
    pub recovery_codes_used: IntCounter,
}

impl MfaMetrics {
    pub const EVENTS: [&'static str; 4] = ["started", "confirmed", "removed", "operator_reset"];
    pub const METHODS: [&'static str; 2] = ["totp", "recovery_code"];
    pub const OUTCOMES: [&'static str; 5] = [
        "success",
        "invalid_code",
        "invalid_token",
        "too_many_attempts",
        "unavailable",
    ];

    pub(super) fn new(r: &Registry, app: &str) -> Self {
        let n = |suffix: &str| format!("{app}_{suffix}");
        let metrics = Self {
            enrolments: counter_vec(
                r,
                n("mfa_enrolments_total"),
                "Second-factor enrolment events: started, confirmed, removed (by the customer), operator_reset.",
                &["event"],
            ),
            second_steps: counter_vec(
                r,
                n("mfa_second_steps_total"),
                "Second steps of logins (POST /auth/mfa) by method and outcome.",
                &["method", "outcome"],
            ),
            recovery_codes_used: counter(
                r,
                n("mfa_recovery_codes_used_total"),
                "Recovery codes used, at a login or to confirm a sensitive change.",
            ),
        };
        for event in Self::EVENTS {
            metrics.enrolments.with_label_values(&[event]);
        }
        for method in Self::METHODS {
            for outcome in Self::OUTCOMES {
                metrics.second_steps.with_label_values(&[method, outcome]);
            }
        }
        metrics
    }
}
