//! Prometheus metrics: one registry per application (so that tests can run several in one
//! process); the HTTP layer serves it as text on `PROM_PORT` at `/metrics`. Names of the
//! service's own metrics start with the `APP` prefix.
//!
//! A leaf module: it knows nothing of the services or transports. Labels that stand for a
//! closed set of values are typed here (`Tier`, `Transport`) or come from the domain's own
//! `label()` methods.
//!
//! `labels`: those typed labels; `define`: creating and registering one metric; `mail`: the
//! families of mail, recovery and the operator API; `mfa`: the second factor.

mod define;
mod labels;
mod mail;
mod mfa;

pub use labels::{Dependency, Tier, Transport, UNMATCHED_ROUTE};
pub use mail::MailMetrics;
pub use mfa::MfaMetrics;

use std::sync::Arc;

use prometheus::{
    Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
};

use define::{counter, counter_vec, gauge, gauge_vec, histogram_vec};

/// Handles to every metric; cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

/// Children of labelled metrics that every request touches, resolved once: a label lookup
/// hashes the label values on every call.
pub struct HotHandles {
    /// `token_verifications_total{transport, outcome="valid"}` by `Transport`.
    pub tokens_valid: [IntCounter; 2],
    /// `cache_hits_total{tier}` by `Tier`.
    pub cache_hits: [IntCounter; 2],
}

pub struct Inner {
    pub registry: Registry,
    pub hot: HotHandles,
    /// Cache lookups answered by a tier (`local`, `redis`).
    pub cache_hits: IntCounterVec,
    /// Cache lookups a tier could not answer.
    pub cache_misses: IntCounterVec,
    /// Loads from the database on behalf of the cache.
    pub cache_loads: IntCounter,
    /// Lookups that waited for another caller's load instead of loading (`local`, `redis`).
    pub cache_coalesced: IntCounterVec,
    /// Reads sent straight to the database because the caches could not be trusted.
    pub cache_bypassed: IntCounter,
    pub invalidations_sent: IntCounter,
    pub invalidations_received: IntCounter,
    /// Failed Redis operations by operation.
    pub redis_errors: IntCounterVec,
    /// Database statements by operation; the count is the number of queries.
    pub db_query_duration: HistogramVec,
    pub db_pool_in_use: IntGauge,
    pub db_pool_idle: IntGauge,
    /// HTTP, named and labelled as the Go service's go-http-metrics middleware.
    pub http_duration: HistogramVec,
    pub http_response_size: HistogramVec,
    pub http_inflight: IntGaugeVec,
    /// API requests answered 503 by the load shedder: the queue was full, or the wait for
    /// a slot ran out.
    pub http_shed: IntCounter,
    /// gRPC, named and labelled as go-grpc-prometheus.
    pub grpc_started: IntCounterVec,
    pub grpc_handled: IntCounterVec,
    pub grpc_handling_seconds: HistogramVec,
    pub grpc_msg_received: IntCounterVec,
    pub grpc_msg_sent: IntCounterVec,
    /// Outcomes of logins, signups and refreshes.
    pub logins: IntCounterVec,
    pub signups: IntCounterVec,
    pub refreshes: IntCounterVec,
    /// Token verifications by transport (`http`, `grpc`) and outcome (`valid`, `expired`,
    /// `invalid`, `revoked`).
    pub token_verifications: IntCounterVec,
    /// Logins, password checks and signups refused by a limit, by limit (`email_ip`, `ip`,
    /// `account`, `customer`, `signup_ip`).
    pub throttled: IntCounterVec,
    /// Lockouts begun, by limit (`email_ip`, `ip`, `account`, `customer`).
    pub lockouts: IntCounterVec,
    /// Stored hashes replaced on login by one of the configured kind and parameters.
    pub rehashes: IntCounterVec,
    /// Signing keys: 1 `active`; `published` (in the JWKS).
    pub signing_keys: IntGaugeVec,
    /// Verifications of asymmetric tokens answered by the cache of verified tokens, or not.
    pub token_cache: IntCounterVec,
    pub sessions_started: IntCounter,
    pub sessions_refreshed: IntCounter,
    /// Sessions ended, by reason (every reason present from the start, at 0).
    pub sessions_revoked: IntCounterVec,
    /// Revoked sessions whose access tokens this replica refuses.
    pub revocation_set_size: IntGauge,
    /// Delay from a revocation on any replica until this one applied it, by feed.
    pub revocation_propagation: HistogramVec,
    pub hash_queue_depth: IntGauge,
    /// How many hashing jobs may wait (`HASH_QUEUE`), for saturation ratios.
    pub hash_queue_capacity: IntGauge,
    pub hash_duration: HistogramVec,
    /// 1 while a dependency answers (`database`, `redis` when configured), else 0.
    pub dependency_up: IntGaugeVec,
    /// Mail, reset, verification and operator API (SPEC sections 13 and 14).
    pub mail: mail::MailMetrics,
    /// The second factor (SPEC section 16).
    pub mfa: mfa::MfaMetrics,
}

impl std::ops::Deref for Metrics {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Metrics {
    /// All metrics, named with `app` as prefix.
    pub fn new(app: &str) -> Self {
        let r = Registry::new();
        let n = |suffix: &str| format!("{app}_{suffix}");
        let db_query_duration = histogram_vec(
            &r,
            n("db_query_duration_seconds"),
            "Duration of database statements.",
            vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ],
            &["operation"],
        );
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(process));
        }
        let cache_hits = counter_vec(
            &r,
            n("cache_hits_total"),
            "Cache lookups answered, by tier.",
            &["tier"],
        );
        let token_verifications = counter_vec(
            &r,
            n("token_verifications_total"),
            "Access token verifications by transport (http, grpc) and outcome (valid, expired, invalid, revoked).",
            &["transport", "outcome"],
        );
        let cache_misses = counter_vec(
            &r,
            n("cache_misses_total"),
            "Cache lookups not answered, by tier.",
            &["tier"],
        );
        let cache_coalesced = counter_vec(
            &r,
            n("cache_coalesced_waits_total"),
            "Lookups that waited for another caller's load, by level (local: same replica, redis: another replica).",
            &["level"],
        );
        // Series present from the start, so that a ratio has a denominator and a first
        // event is a rise.
        for tier in [Tier::Local, Tier::Redis] {
            cache_misses.with_label_values(&[tier.label()]);
            cache_coalesced.with_label_values(&[tier.label()]);
        }
        let hot = HotHandles {
            tokens_valid: [Transport::Http, Transport::Grpc]
                .map(|t| token_verifications.with_label_values(&[t.label(), "valid"])),
            cache_hits: [Tier::Local, Tier::Redis]
                .map(|t| cache_hits.with_label_values(&[t.label()])),
        };
        Self(Arc::new(Inner {
            hot,
            cache_hits,
            cache_misses,
            cache_loads: counter(
                &r,
                n("cache_loads_total"),
                "Database loads made on behalf of the cache.",
            ),
            cache_coalesced,
            cache_bypassed: counter(
                &r,
                n("cache_bypassed_total"),
                "Reads sent straight to the database while the invalidation channel was down.",
            ),
            invalidations_sent: counter(
                &r,
                n("cache_invalidations_sent_total"),
                "Cache keys invalidated by this replica's writes.",
            ),
            invalidations_received: counter(
                &r,
                n("cache_invalidations_received_total"),
                "Cache keys dropped on messages from invalidate_cache:account.",
            ),
            redis_errors: counter_vec(
                &r,
                n("redis_errors_total"),
                "Failed Redis operations, by operation.",
                &["operation"],
            ),
            db_query_duration,
            http_duration: histogram_vec(
                &r,
                n("http_request_duration_seconds"),
                "The latency of the HTTP requests.",
                prometheus::DEFAULT_BUCKETS.to_vec(),
                &["handler", "method", "code"],
            ),
            http_response_size: histogram_vec(
                &r,
                n("http_response_size_bytes"),
                "The size of the HTTP responses.",
                prometheus::exponential_buckets(100.0, 10.0, 8).unwrap_or_default(),
                &["handler", "method", "code"],
            ),
            http_shed: counter(
                &r,
                n("http_requests_shed_total"),
                "HTTP API requests answered 503 by the load shedder (queue full, or the wait for a slot ran out).",
            ),
            http_inflight: gauge_vec(
                &r,
                n("http_requests_inflight"),
                "The number of inflight requests being handled at the same time.",
                &["handler"],
            ),
            grpc_started: counter_vec(
                &r,
                "grpc_server_started_total".into(),
                "Total number of RPCs started on the server.",
                &["grpc_type", "grpc_service", "grpc_method"],
            ),
            grpc_handled: counter_vec(
                &r,
                "grpc_server_handled_total".into(),
                "Total number of RPCs completed on the server, regardless of success or failure.",
                &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
            ),
            grpc_handling_seconds: histogram_vec(
                &r,
                "grpc_server_handling_seconds".into(),
                "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
                prometheus::DEFAULT_BUCKETS.to_vec(),
                &["grpc_type", "grpc_service", "grpc_method"],
            ),
            grpc_msg_received: counter_vec(
                &r,
                "grpc_server_msg_received_total".into(),
                "Total number of RPC stream messages received on the server.",
                &["grpc_type", "grpc_service", "grpc_method"],
            ),
            grpc_msg_sent: counter_vec(
                &r,
                "grpc_server_msg_sent_total".into(),
                "Total number of gRPC stream messages sent by the server.",
                &["grpc_type", "grpc_service", "grpc_method"],
            ),
            logins: counter_vec(&r, n("logins_total"), "Logins by outcome.", &["outcome"]),
            signups: counter_vec(&r, n("signups_total"), "Signups by outcome.", &["outcome"]),
            refreshes: counter_vec(
                &r,
                n("refreshes_total"),
                "Token refreshes by outcome.",
                &["outcome"],
            ),
            token_verifications,
            hash_queue_depth: gauge(
                &r,
                n("password_hash_queue_depth"),
                "Password hashing jobs waiting for a thread.",
            ),
            signing_keys: gauge_vec(
                &r,
                n("signing_keys"),
                "Signing keys: active (signs new tokens), published (in the JWKS, verifying).",
                &["state"],
            ),
            token_cache: counter_vec(
                &r,
                n("token_cache_lookups_total"),
                "Verifications of EdDSA/ES256 tokens by result: hit (verified before), miss.",
                &["result"],
            ),
            throttled: counter_vec(
                &r,
                n("login_throttled_total"),
                "Logins, password checks and signups answered 429 by a limit, by limit (email_ip, ip, account, customer, signup_ip).",
                &["limit"],
            ),
            lockouts: counter_vec(
                &r,
                n("login_lockouts_total"),
                "Lockouts begun by failed logins and password checks, by limit (email_ip, ip, account, customer).",
                &["limit"],
            ),
            rehashes: counter_vec(
                &r,
                n("password_rehashes_total"),
                "Stored password hashes upgraded on login, by algorithm (from, to).",
                &["from", "to"],
            ),
            sessions_started: counter(
                &r,
                n("sessions_started_total"),
                "Sessions started (signup, login, legacy refresh).",
            ),
            sessions_refreshed: counter(
                &r,
                n("sessions_refreshed_total"),
                "Successful refreshes of a session.",
            ),
            sessions_revoked: counter_vec(
                &r,
                n("sessions_revoked_total"),
                "Sessions ended, by reason (logout, logout_all, password_change, password_reset, account_deleted, deactivated, reuse, evicted, expired, admin, email_reverted).",
                &["reason"],
            ),
            revocation_set_size: gauge(
                &r,
                n("revocation_set_size"),
                "Revoked sessions whose access tokens this replica refuses until they expire.",
            ),
            revocation_propagation: histogram_vec(
                &r,
                n("revocation_propagation_seconds"),
                "Delay from a revocation on any replica until this replica applied it, by feed (pubsub, poll).",
                vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 30.0,
                ],
                &["source"],
            ),
            hash_queue_capacity: gauge(
                &r,
                n("password_hash_queue_capacity"),
                "Password hashing jobs that may wait before logins and signups answer 503.",
            ),
            dependency_up: gauge_vec(
                &r,
                n("dependency_up"),
                "1 while a dependency answers (database; redis when configured and its invalidation channel is live), else 0.",
                &["dependency"],
            ),
            hash_duration: histogram_vec(
                &r,
                n("password_hash_duration_seconds"),
                "Time of one password hash, verification or strength check on a hashing thread, by algorithm.",
                vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0,
                ],
                &["operation", "algorithm"],
            ),
            db_pool_in_use: gauge(
                &r,
                n("db_pool_connections_in_use"),
                "Database connections in use.",
            ),
            db_pool_idle: gauge(
                &r,
                n("db_pool_connections_idle"),
                "Database connections open and idle.",
            ),
            mail: mail::MailMetrics::new(&r, app),
            mfa: mfa::MfaMetrics::new(&r, app),
            registry: r,
        }))
    }

    /// Counts one access-token verification; `outcome` is `valid` or the error's label.
    pub fn token_verified(&self, transport: Transport, outcome: &'static str) {
        if outcome == "valid" {
            if let Some(counter) = self.hot.tokens_valid.get(transport as usize) {
                counter.inc();
            }
        } else {
            self.token_verifications
                .with_label_values(&[transport.label(), outcome])
                .inc();
        }
    }

    /// Counts one cache lookup answered by `tier`.
    pub fn cache_hit(&self, tier: Tier) {
        if let Some(counter) = self.hot.cache_hits.get(tier as usize) {
            counter.inc();
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}
