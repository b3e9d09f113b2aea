//! The rows of the settings table, one section per owner: adding a setting is one row here
//! plus one field in the owner's struct.

use std::net::Ipv4Addr;

use super::{read as parse, table::section};
use crate::{
    domain::IpNet,
    service::auth::{AbuseSettings, Algorithm, PasswordSettings},
    service::idgen::IdSettings,
    service::keys::{Alg, SigningSettings},
    service::mail::{EmailChangeSettings, MailSettings, SmtpUrl},
    service::mfa::MfaSettings,
    service::operator::keys,
    service::recovery::MailLimits,
    service::session::{LegacyRefreshTokens, SessionSettings},
    storage::cache::CacheSettings,
    storage::redis::RedisSettings,
    storage::store::{DatabaseSettings, PoolSettings},
    telemetry::{LogFormat, TelemetrySettings},
    transport::{HttpServerSettings, ListenSettings, OperatorSettings, ShutdownSettings},
};

/// `ADMIN_PORT`'s expected text; the check against `ADMIN_API_KEYS` is made after reading.
pub const ADMIN_PORT_EXPECTED: &str =
    "a port number 0-65535, and not 0 only with ADMIN_API_KEYS set";

section! {
    /// The listeners of the API.
    LISTEN, read_listen -> ListenSettings {
        http_port: HTTP_PORT, "httpPort", "8080",
            parse::port(),
            "HTTP API port (0 = pick a free one; the real port is logged)";
        grpc_port: GRPC_PORT, "grpcPort", "8000",
            parse::port(),
            "gRPC port (Auth, reflection, health)";
        prom_port: PROM_PORT, "promPort", "8081",
            parse::port(),
            "Prometheus /metrics port";
        bind_address: BIND_ADDRESS, "bindAddress", "0.0.0.0",
            parse::ip(),
            "address the three listeners bind to";
    }

    /// Logs and traces.
    TELEMETRY, read_telemetry -> TelemetrySettings {
        app: APP, "app", "account",
            parse::custom("a name of letters, digits and _", app_name),
            "service name; prefix of the HTTP metrics";
        jaeger_url: JAEGER_URL, "jaegerUrl", "",
            parse::non_empty(),
            "trace collector (OTLP) endpoint; empty = no tracing export";
        log_format: LOG_FORMAT, "logFormat", "text",
            parse::one_of("text or json", &[("text", LogFormat::Text), ("json", LogFormat::Json)]),
            "log format: text or json";
        log_level: LOG_LEVEL, "logLevel", "info",
            parse::text(),
            "log filter (RUST_LOG syntax); RUST_LOG wins when set";
    }

    /// The signing keys.
    SIGNING, read_signing -> SigningSettings {
        secret: JWT_SECRET, "jwtConfig.secret", "",
            parse::optional_secret(),
            "HS256 secret shared with every replica and the Go service; empty = a random one kept in DATA_DIR (SQLite) or per process";
        previous_secrets: JWT_PREVIOUS_SECRETS, "jwtConfig.previousSecrets", "",
            parse::secrets_csv(),
            "comma-separated HS256 secrets that still verify (rotating JWT_SECRET without logging anyone out)";
        alg: JWT_ALG, "jwtConfig.alg", "HS256",
            parse::custom("HS256, EdDSA or ES256", Alg::parse),
            "algorithm new tokens are signed with: HS256 (JWT_SECRET), EdDSA (Ed25519) or ES256 (P-256)";
        private_key_file: JWT_PRIVATE_KEY_FILE, "jwtConfig.privateKeyFile", "",
            parse::optional_path(),
            "PKCS#8 PEM (or DER) private key for EdDSA/ES256; empty = keys generated, kept in the database and rotated";
        rotation: JWT_KEY_ROTATION_DAYS, "jwtConfig.keyRotationDays", "30",
            parse::days_positive(),
            "age at which a generated EdDSA/ES256 key is replaced";
        accept_hs256: JWT_ACCEPT_HS256, "jwtConfig.acceptHs256", "true",
            parse::boolean(),
            "with EdDSA/ES256 signing, HS256 tokens (JWT_SECRET, JWT_PREVIOUS_SECRETS) still verify";
    }

    /// Sessions and token lifetimes.
    SESSION, read_session -> SessionSettings {
        access_ttl_secs: JWT_ACCESS_TOKEN_EXPIRE_SECOND, "jwtConfig.accessTokenExpireSecond", "300",
            parse::positive(),
            "access token lifetime, seconds";
        refresh_ttl_secs: JWT_REFRESH_TOKEN_EXPIRE_SECOND, "jwtConfig.refreshTokenExpireSecond", "900",
            parse::positive(),
            "refresh token lifetime, seconds";
        session_max: SESSION_MAX_SECONDS, "sessionConfig.maxSeconds", "2592000",
            parse::seconds_positive(),
            "absolute lifetime of a session (from login or signup); no token outlives it";
        rotation: REFRESH_TOKEN_ROTATION, "sessionConfig.refreshTokenRotation", "true",
            parse::boolean(),
            "each refresh returns a new refresh token and uses up the one presented";
        reuse_grace: REFRESH_REUSE_GRACE_SECONDS, "sessionConfig.refreshReuseGraceSeconds", "5",
            parse::seconds(),
            "a used refresh token presented this soon after its rotation answers 200 again (racing tabs); later it revokes the session";
        legacy_refresh_tokens: LEGACY_REFRESH_TOKENS, "sessionConfig.legacyRefreshTokens", "accept",
            parse::one_of("accept or reject", &[("accept", LegacyRefreshTokens::Accept), ("reject", LegacyRefreshTokens::Reject)]),
            "refresh tokens without a session (Go-minted): accept (start a session) or reject";
        max_per_customer: MAX_SESSIONS_PER_CUSTOMER, "sessionConfig.maxPerCustomer", "100",
            parse::positive(),
            "live sessions per customer; a new one ends the least recently refreshed";
        revocation_poll: REVOCATION_POLL_MILLISECONDS, "sessionConfig.revocationPollMilliseconds", "500",
            parse::millis_positive(),
            "how often each replica reads new revocations from the database (the bound on revocation delay without Redis)";
    }

    /// The HTTP API's limits.
    HTTP, read_http -> HttpServerSettings {
        trusted_proxies: TRUSTED_PROXIES, "trustedProxies", "",
            parse::csv("comma-separated CIDR ranges, e.g. 10.0.0.0/8,192.168.1.10/32", IpNet::parse),
            "comma-separated CIDR ranges of proxies whose X-Forwarded-For is believed; empty = none";
        body_limit: HTTP_BODY_LIMIT_BYTES, "httpBodyLimitBytes", "65536",
            parse::positive(),
            "largest accepted request body";
        request_timeout: HTTP_REQUEST_TIMEOUT_SECONDS, "httpRequestTimeoutSeconds", "30",
            parse::seconds_positive(),
            "longest an HTTP request may run before it is answered 503";
        header_read_timeout: HTTP_HEADER_READ_TIMEOUT_SECONDS, "httpHeaderReadTimeoutSeconds", "10",
            parse::seconds_positive(),
            "a connection that has not sent a whole request head within this is closed";
        idle_timeout: HTTP_IDLE_TIMEOUT_SECONDS, "httpIdleTimeoutSeconds", "60",
            parse::seconds_positive(),
            "an idle keep-alive connection is closed after this";
        max_connections: MAX_CONNECTIONS, "maxConnections", "10000",
            parse::positive(),
            "open HTTP connections at most; further ones wait in the kernel's backlog";
        max_concurrent_requests: HTTP_MAX_CONCURRENT_REQUESTS, "httpMaxConcurrentRequests", "512",
            parse::positive(),
            "HTTP API requests handled at once (probes not counted)";
        max_queued_requests: HTTP_MAX_QUEUED_REQUESTS, "httpMaxQueuedRequests", "10000",
            parse::whole(),
            "HTTP API requests that may wait for a slot (a bound on memory); beyond that 503 with Retry-After at once";
        max_queue_wait: HTTP_MAX_QUEUE_WAIT_MILLISECONDS, "httpMaxQueueWaitMilliseconds", "2000",
            parse::millis(),
            "longest an HTTP API request waits for a slot; then 503 with Retry-After (shedding by latency: a burst of cheap requests drains long before)";
    }

    /// Login and signup limits (SPEC section 10).
    ABUSE, read_abuse -> AbuseSettings {
        login_max_failures: LOGIN_MAX_FAILURES, "abuseConfig.loginMaxFailures", "5",
            parse::whole(),
            "failed logins per (email, client address) within the window before logins for the pair answer 429; 0 = no limit";
        login_failure_window: LOGIN_FAILURE_WINDOW_SECONDS, "abuseConfig.loginFailureWindowSeconds", "900",
            parse::seconds_positive(),
            "window in which failed logins are counted";
        login_lockout: LOGIN_LOCKOUT_SECONDS, "abuseConfig.loginLockoutSeconds", "60",
            parse::seconds_positive(),
            "first lockout; each further lockout inside the window doubles it";
        login_max_lockout: LOGIN_MAX_LOCKOUT_SECONDS, "abuseConfig.loginMaxLockoutSeconds", "900",
            parse::seconds_positive(),
            "longest lockout";
        login_max_failures_per_ip: LOGIN_MAX_FAILURES_PER_IP, "abuseConfig.loginMaxFailuresPerIp", "0",
            parse::whole(),
            "failed logins per client address within the window (any email); 0 = off (behind an untrusted proxy every customer shares one address)";
        login_max_failures_per_account: LOGIN_MAX_FAILURES_PER_ACCOUNT, "abuseConfig.loginMaxFailuresPerAccount", "100",
            parse::whole(),
            "failed logins per account (email) over every address within the window before its logins answer 429; 0 = no limit";
        signup_max_per_ip_per_hour: SIGNUP_MAX_PER_IP_PER_HOUR, "abuseConfig.signupMaxPerIpPerHour", "0",
            parse::whole(),
            "signups per client address per hour; 0 = off";
        refusal_delay: THROTTLE_REFUSAL_DELAY_MILLISECONDS, "abuseConfig.refusalDelayMilliseconds", "0",
            parse::millis(),
            "a 429 of a limit is held this long before it is sent, outside the load shedder (it holds no slot)";
        uniform_errors: LOGIN_UNIFORM_ERRORS, "abuseConfig.loginUniformErrors", "false",
            parse::boolean(),
            "answer unknown emails and wrong passwords alike with 401 authentication failed";
        min_password_score: PASSWORD_MIN_SCORE, "passwordConfig.minScore", "0",
            parse::within("a number 0-4", 0..=4),
            "zxcvbn score 0-4 a new password needs (email and names count against it); 0 = only the length rule";
    }

    /// Password hashing.
    PASSWORD, read_password -> PasswordSettings {
        hash: PASSWORD_HASH, "passwordConfig.hash", "bcrypt",
            parse::one_of("bcrypt or argon2id", &[("bcrypt", Algorithm::Bcrypt), ("argon2id", Algorithm::Argon2id)]),
            "hash of new passwords: bcrypt (cost 10; Go replicas can verify) or argon2id; both always verify";
        argon2_memory_kib: ARGON2_MEMORY_KIB, "passwordConfig.argon2MemoryKib", "19456",
            parse::custom("a number of KiB, at least 8 per lane", |v| v.parse().ok().filter(|m| *m >= 8)),
            "Argon2id memory cost in KiB (per hashing thread while it hashes)";
        argon2_iterations: ARGON2_ITERATIONS, "passwordConfig.argon2Iterations", "2",
            parse::positive(),
            "Argon2id time cost";
        argon2_parallelism: ARGON2_PARALLELISM, "passwordConfig.argon2Parallelism", "1",
            parse::within("a number 1-255", 1..=255),
            "Argon2id lanes";
        threads: HASH_THREADS, "hashThreads", "0",
            parse::within("a number 0-256", 0..=256),
            "password hashing threads; 0 = one per CPU";
        queue: HASH_QUEUE, "hashQueue", "64",
            parse::whole(),
            "password hashing jobs that may wait; beyond it login and signup answer 503";
    }

    /// The database.
    DATABASE, read_database -> DatabaseSettings {
        dsn: DB_DSN, "dbConfig.dsn", "",
            parse::secret(),
            "database: empty = SQLite in DATA_DIR, sqlite://PATH, mysql://user:pass@host:port/db or user:pass@tcp(host:port)/db?...";
        data_dir: DATA_DIR, "dataDir", "data",
            parse::path(),
            "directory of the embedded SQLite database, the generated JWT secret and mail/ (.eml files when SMTP_URL is unset)";
    }

    /// The database's connection pool.
    POOL, read_pool -> PoolSettings {
        max_open: DB_MAX_OPEN_CONNS, "dbConfig.maxOpenConns", "10",
            parse::positive(),
            "largest number of database connections";
        max_idle: DB_MAX_IDLE_CONNS, "dbConfig.maxIdleConns", "3",
            parse::whole(),
            "connections kept open while idle";
        acquire_timeout: DB_ACQUIRE_TIMEOUT_MS, "dbConfig.acquireTimeoutMs", "1000",
            parse::millis_positive(),
            "longest wait for a database connection before answering 503";
    }

    /// Id generation.
    IDS, read_ids -> IdSettings {
        machine_id: MACHINE_ID, "machineId", "",
            parse::optional(parse::custom("a number 0-65535, or an IPv4 address whose low 16 bits are used", machine_id)),
            "Sonyflake machine id 0-65535 (or an IPv4 address: its low 16 bits), unique per replica; empty = low 16 bits of the private IPv4 address";
    }

    /// The shutdown after SIGTERM.
    SHUTDOWN, read_shutdown -> ShutdownSettings {
        timeout: SHUTDOWN_TIMEOUT_SECONDS, "shutdownTimeoutSeconds", "10",
            parse::seconds(),
            "how long requests in flight may finish after SIGTERM";
        delay: SHUTDOWN_DELAY_SECONDS, "shutdownDelaySeconds", "0",
            parse::seconds(),
            "after SIGTERM, how long to keep serving while unready, so load balancers drain first";
    }

    /// The two cache tiers.
    CACHE, read_cache -> CacheSettings {
        local_ttl: LOCAL_CACHE_EXPIRATION_SECONDS, "localCacheConfig.expirationSeconds", "600",
            parse::seconds_positive(),
            "in-process cache entry lifetime";
        local_max_bytes: LOCAL_CACHE_MAX_MB, "localCacheConfig.maxMegabytes", "64",
            parse::mebibytes_positive(),
            "memory bound of the in-process cache, in MiB (approximate)";
        negative_ttl: NEGATIVE_CACHE_SECONDS, "negativeCacheSeconds", "10",
            parse::seconds_positive(),
            "lifetime of cached 'no such customer' answers, in both tiers";
        redis_ttl: REDIS_EXPIRATION_SECONDS, "redisConfig.expirationSeconds", "900",
            parse::seconds_positive(),
            "Redis entry lifetime (plus 0-9 s jitter)";
    }

    /// The Redis client.
    REDIS, read_redis -> RedisSettings {
        addrs: REDIS_ADDRS, "redisConfig.addrs", "",
            parse::csv("comma-separated host:port pairs", redis_addr),
            "comma-separated Redis seed nodes; several = cluster mode; empty = in-process cache only";
        password: REDIS_PASSWORD, "redisConfig.password", "",
            parse::optional_secret(),
            "Redis password";
        db: REDIS_DB, "redisConfig.db", "0",
            parse::whole(),
            "Redis database number (single node only)";
        pool_size: REDIS_POOL_SIZE, "redisConfig.poolSize", "10",
            parse::custom("a whole number above 0", |v| v.parse::<u32>().ok().filter(|n| *n > 0).and_then(|n| usize::try_from(n).ok())),
            "Redis connections per node";
        max_retries: REDIS_MAX_RETRIES, "redisConfig.maxRetries", "3",
            parse::whole(),
            "retries of a failed Redis command";
    }

    /// Mail (SPEC section 13).
    MAIL, read_mail -> MailSettings {
        smtp_url: SMTP_URL, "mailConfig.smtpUrl", "",
            parse::optional(parse::custom("smtp://[user:pass@]host[:port][?tls=none] or smtps://[user:pass@]host[:port]", SmtpUrl::parse)),
            "SMTP server: smtp://user:pass@host:587 (STARTTLS), smtps://user:pass@host:465, or smtp://host:25?tls=none (local relay); empty = mails written as .eml files under DATA_DIR/mail/ (development)";
        from: MAIL_FROM, "mailConfig.from", "saga-account <noreply@localhost>",
            parse::from_str("an address, or Name <address>"),
            "From: of every mail";
        public_base_url: PUBLIC_BASE_URL, "mailConfig.publicBaseUrl", "http://localhost:8080",
            parse::custom("an http:// or https:// URL", base_url),
            "base of the links in mails (never taken from a request's Host)";
        reset_ttl: RESET_TOKEN_SECONDS, "mailConfig.resetTokenSeconds", "1800",
            parse::seconds_positive(),
            "lifetime of a password reset token";
        verify_ttl: VERIFY_TOKEN_SECONDS, "mailConfig.verifyTokenSeconds", "86400",
            parse::seconds_positive(),
            "lifetime of an email verification token";
        max_attempts: MAIL_MAX_ATTEMPTS, "mailConfig.maxAttempts", "10",
            parse::positive(),
            "attempts to send one mail before it is given up (logged and counted)";
        retry_base: MAIL_RETRY_SECONDS, "mailConfig.retrySeconds", "10",
            parse::seconds_positive(),
            "delay before the first retry of a mail; each further retry doubles it, up to an hour";
        poll: MAIL_POLL_MILLISECONDS, "mailConfig.pollMilliseconds", "1000",
            parse::millis_positive(),
            "how often each replica looks for due mails (mails queued on the replica itself go at once)";
        send_timeout: MAIL_SEND_TIMEOUT_SECONDS, "mailConfig.sendTimeoutSeconds", "30",
            parse::seconds_positive(),
            "longest wait for the SMTP server on one mail";
        concurrency: MAIL_CONCURRENCY, "mailConfig.concurrency", "8",
            parse::within("a number 1-256", 1..=256),
            "mails one replica sends at once";
    }

    /// How many mails may be asked for.
    MAIL_LIMITS, read_mail_limits -> MailLimits {
        per_email_per_hour: MAIL_MAX_PER_EMAIL_PER_HOUR, "mailConfig.maxPerEmailPerHour", "5",
            parse::whole(),
            "reset and verification mails per email address per hour; beyond it the answer is the same 202 and no mail goes; 0 = no limit";
        per_ip_per_hour: MAIL_MAX_PER_IP_PER_HOUR, "mailConfig.maxPerIpPerHour", "0",
            parse::whole(),
            "reset and verification mails requested per client address per hour; 0 = off";
    }

    /// Email changes (SPEC rule 15.2).
    EMAIL_CHANGE, read_email_change -> EmailChangeSettings {
        requires_password: EMAIL_CHANGE_REQUIRES_PASSWORD, "emailChangeConfig.requiresPassword", "false",
            parse::boolean(),
            "a changed email on PUT /info/person needs current_password (missing or wrong: 401, counted as a failed password check)";
        revert_ttl: EMAIL_REVERT_SECONDS, "emailChangeConfig.revertSeconds", "604800",
            parse::seconds_positive(),
            "lifetime of the revert link mailed to the old address after an email change; changes less apart than this all revert to the address before the first";
        reset_hold: EMAIL_CHANGE_RESET_HOLD_SECONDS, "emailChangeConfig.resetHoldSeconds", "86400",
            parse::seconds(),
            "after an email change, password/forgot for the new address answers 202 and sends nothing for this long (the operator's reset still sends); 0 = no hold";
    }

    /// The second factor (SPEC section 16).
    MFA, read_mfa -> MfaSettings {
        encryption_key: MFA_ENCRYPTION_KEY, "mfaConfig.encryptionKey", "",
            parse::optional_secret(),
            "32 bytes in base64 that seal TOTP secrets (AES-256-GCM) and key recovery-code digests; the same on every replica; empty = generated and kept in DATA_DIR on SQLite, second factors off (503) on MySQL/PostgreSQL";
        token_ttl: MFA_TOKEN_SECONDS, "mfaConfig.tokenSeconds", "300",
            parse::seconds_positive(),
            "lifetime of the mfa_token a login with a second factor answers";
        issuer: MFA_ISSUER, "mfaConfig.issuer", "saga-account",
            parse::text(),
            "the name authenticator apps list the account under (the otpauth issuer)";
    }

    /// The operator API (SPEC section 14).
    OPERATOR, read_operator -> OperatorSettings {
        port: ADMIN_PORT, "adminConfig.port", "0",
            parse::from_str(ADMIN_PORT_EXPECTED),
            "operator API port (0 = off)";
        bind_address: ADMIN_BIND_ADDRESS, "adminConfig.bindAddress", "127.0.0.1",
            parse::ip(),
            "address the operator API binds to";
        api_keys: ADMIN_API_KEYS, "adminConfig.apiKeys", "",
            parse::custom("comma-separated name.secret keys: names of letters, digits, - and _, unique; secrets of at least 32 characters", keys::parse),
            "comma-separated operator API keys name.secret (secrets of at least 32 characters); several at once to rotate them";
    }
}

/// Every section, in the order `--help` lists them.
pub const SECTIONS: &[&[super::read::SettingSpec]] = &[
    TELEMETRY,
    LISTEN,
    SIGNING,
    SESSION,
    HTTP,
    ABUSE,
    PASSWORD,
    DATABASE,
    POOL,
    IDS,
    SHUTDOWN,
    CACHE,
    REDIS,
    MAIL,
    MAIL_LIMITS,
    EMAIL_CHANGE,
    MFA,
    OPERATOR,
];

/// `APP`: letters, digits and `_`.
fn app_name(v: &str) -> Option<String> {
    (!v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| v.to_owned())
}

/// `MACHINE_ID`: a number, or an IPv4 address (Kubernetes: `$(POD_IP)`) whose low 16 bits
/// are used, as Sonyflake derives it from the host's address.
fn machine_id(value: &str) -> Option<u16> {
    value.parse::<u16>().ok().or_else(|| {
        let ip: Ipv4Addr = value.parse().ok()?;
        let [_, _, high, low] = ip.octets();
        Some(u16::from_be_bytes([high, low]))
    })
}

/// One Redis seed node, `host:port`.
fn redis_addr(a: &str) -> Option<String> {
    let (host, port) = a.rsplit_once(':')?;
    (!host.is_empty() && port.parse::<u16>().is_ok()).then(|| a.to_owned())
}

/// `PUBLIC_BASE_URL`, kept without a trailing `/`.
fn base_url(v: &str) -> Option<String> {
    let url = url::Url::parse(v).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
        .then(|| v.trim_end_matches('/').to_owned())
}
