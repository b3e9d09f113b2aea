//! Settings in layers: built-in defaults, then `config.yml` (the Go service's layout), then
//! environment variables, the environment winning. Every value is checked at start and a
//! bad one stops the start with an error naming it. Secrets never print.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use serde_yaml_ng::Value;

/// A value that must never reach a log line.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "<empty>"
        } else {
            "<redacted>"
        })
    }
}

/// One setting: its environment name, its key in `config.yml`, its default and what it does.
pub struct SettingSpec {
    pub key: Key,
    pub env: &'static str,
    pub yaml: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

macro_rules! specs {
    ($($name:ident, $yaml:literal, $default:literal, $help:literal;)*) => {
        /// A setting's name. Settings are read by these names only, so a misspelled one is a
        /// compile error, never a silent default.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, reason = "the names are the environment variables")]
        pub enum Key { $($name),* }

        impl Key {
            /// The environment variable.
            pub const fn env(self) -> &'static str {
                match self { $(Key::$name => stringify!($name)),* }
            }
        }

        /// Every setting the service reads, in the order `--help` lists them.
        pub const SETTINGS: &[SettingSpec] = &[$(SettingSpec { key: Key::$name, env: stringify!($name), yaml: $yaml, default: $default, help: $help }),*];
    };
}

specs! {
    APP, "app", "account", "service name; prefix of the HTTP metrics";
    HTTP_PORT, "httpPort", "8080", "HTTP API port (0 = pick a free one; the real port is logged)";
    GRPC_PORT, "grpcPort", "8000", "gRPC port (Auth, reflection, health)";
    PROM_PORT, "promPort", "8081", "Prometheus /metrics port";
    BIND_ADDRESS, "bindAddress", "0.0.0.0", "address the three listeners bind to";
    JAEGER_URL, "jaegerUrl", "", "trace collector (OTLP) endpoint; empty = no tracing export";
    JWT_SECRET, "jwtConfig.secret", "", "HS256 secret shared with every replica and the Go service; empty = a random one kept in DATA_DIR (SQLite) or per process";
    JWT_PREVIOUS_SECRETS, "jwtConfig.previousSecrets", "", "comma-separated HS256 secrets that still verify (rotating JWT_SECRET without logging anyone out)";
    JWT_ALG, "jwtConfig.alg", "HS256", "algorithm new tokens are signed with: HS256 (JWT_SECRET), EdDSA (Ed25519) or ES256 (P-256)";
    JWT_PRIVATE_KEY_FILE, "jwtConfig.privateKeyFile", "", "PKCS#8 PEM (or DER) private key for EdDSA/ES256; empty = keys generated, kept in the database and rotated";
    JWT_KEY_ROTATION_DAYS, "jwtConfig.keyRotationDays", "30", "age at which a generated EdDSA/ES256 key is replaced";
    JWT_ACCEPT_HS256, "jwtConfig.acceptHs256", "true", "with EdDSA/ES256 signing, HS256 tokens (JWT_SECRET, JWT_PREVIOUS_SECRETS) still verify";
    JWT_ACCESS_TOKEN_EXPIRE_SECOND, "jwtConfig.accessTokenExpireSecond", "300", "access token lifetime, seconds";
    JWT_REFRESH_TOKEN_EXPIRE_SECOND, "jwtConfig.refreshTokenExpireSecond", "900", "refresh token lifetime, seconds";
    SESSION_MAX_SECONDS, "sessionConfig.maxSeconds", "2592000", "absolute lifetime of a session (from login or signup); no token outlives it";
    REFRESH_TOKEN_ROTATION, "sessionConfig.refreshTokenRotation", "true", "each refresh returns a new refresh token and uses up the one presented";
    REFRESH_REUSE_GRACE_SECONDS, "sessionConfig.refreshReuseGraceSeconds", "5", "a used refresh token presented this soon after its rotation answers 200 again (racing tabs); later it revokes the session";
    LEGACY_REFRESH_TOKENS, "sessionConfig.legacyRefreshTokens", "accept", "refresh tokens without a session (Go-minted): accept (start a session) or reject";
    MAX_SESSIONS_PER_CUSTOMER, "sessionConfig.maxPerCustomer", "100", "live sessions per customer; a new one ends the least recently refreshed";
    REVOCATION_POLL_MILLISECONDS, "sessionConfig.revocationPollMilliseconds", "500", "how often each replica reads new revocations from the database (the bound on revocation delay without Redis)";
    TRUSTED_PROXIES, "trustedProxies", "", "comma-separated CIDR ranges of proxies whose X-Forwarded-For is believed; empty = none";
    LOGIN_MAX_FAILURES, "abuseConfig.loginMaxFailures", "5", "failed logins per (email, client address) within the window before logins for the pair answer 429; 0 = no limit";
    LOGIN_FAILURE_WINDOW_SECONDS, "abuseConfig.loginFailureWindowSeconds", "900", "window in which failed logins are counted";
    LOGIN_LOCKOUT_SECONDS, "abuseConfig.loginLockoutSeconds", "60", "first lockout; each further lockout inside the window doubles it";
    LOGIN_MAX_LOCKOUT_SECONDS, "abuseConfig.loginMaxLockoutSeconds", "900", "longest lockout";
    LOGIN_MAX_FAILURES_PER_IP, "abuseConfig.loginMaxFailuresPerIp", "0", "failed logins per client address within the window (any email); 0 = off (behind an untrusted proxy every customer shares one address)";
    SIGNUP_MAX_PER_IP_PER_HOUR, "abuseConfig.signupMaxPerIpPerHour", "0", "signups per client address per hour; 0 = off";
    THROTTLE_REFUSAL_DELAY_MILLISECONDS, "abuseConfig.refusalDelayMilliseconds", "1000", "a login or signup refused by a limit is answered (429) after this pause, which slows a flood of guesses to what costs nothing to answer";
    LOGIN_UNIFORM_ERRORS, "abuseConfig.loginUniformErrors", "false", "answer unknown emails and wrong passwords alike with 401 authentication failed";
    PASSWORD_HASH, "passwordConfig.hash", "bcrypt", "hash of new passwords: bcrypt (cost 10; Go replicas can verify) or argon2id; both always verify";
    ARGON2_MEMORY_KIB, "passwordConfig.argon2MemoryKib", "19456", "Argon2id memory cost in KiB (per hashing thread while it hashes)";
    ARGON2_ITERATIONS, "passwordConfig.argon2Iterations", "2", "Argon2id time cost";
    ARGON2_PARALLELISM, "passwordConfig.argon2Parallelism", "1", "Argon2id lanes";
    PASSWORD_MIN_SCORE, "passwordConfig.minScore", "0", "zxcvbn score 0-4 a new password needs (email and names count against it); 0 = only the length rule";
    DB_DSN, "dbConfig.dsn", "", "database: empty = SQLite in DATA_DIR, sqlite://PATH, mysql://user:pass@host:port/db or user:pass@tcp(host:port)/db?...";
    DB_MAX_OPEN_CONNS, "dbConfig.maxOpenConns", "10", "largest number of database connections";
    DB_MAX_IDLE_CONNS, "dbConfig.maxIdleConns", "3", "connections kept open while idle";
    DB_ACQUIRE_TIMEOUT_MS, "dbConfig.acquireTimeoutMs", "1000", "longest wait for a database connection before answering 503";
    DATA_DIR, "dataDir", "data", "directory of the embedded SQLite database, the generated JWT secret and mail/ (.eml files when SMTP_URL is unset)";
    MACHINE_ID, "machineId", "", "Sonyflake machine id 0-65535 (or an IPv4 address: its low 16 bits), unique per replica; empty = low 16 bits of the private IPv4 address";
    HASH_THREADS, "hashThreads", "0", "password hashing threads; 0 = one per CPU";
    HASH_QUEUE, "hashQueue", "64", "password hashing jobs that may wait; beyond it login and signup answer 503";
    HTTP_BODY_LIMIT_BYTES, "httpBodyLimitBytes", "65536", "largest accepted request body";
    HTTP_REQUEST_TIMEOUT_SECONDS, "httpRequestTimeoutSeconds", "30", "longest an HTTP request may run before it is answered 503";
    HTTP_HEADER_READ_TIMEOUT_SECONDS, "httpHeaderReadTimeoutSeconds", "10", "a connection that has not sent a whole request head within this is closed";
    HTTP_IDLE_TIMEOUT_SECONDS, "httpIdleTimeoutSeconds", "60", "an idle keep-alive connection is closed after this";
    MAX_CONNECTIONS, "maxConnections", "10000", "open HTTP connections at most; further ones wait in the kernel's backlog";
    HTTP_MAX_CONCURRENT_REQUESTS, "httpMaxConcurrentRequests", "512", "HTTP API requests handled at once (probes not counted)";
    HTTP_MAX_QUEUED_REQUESTS, "httpMaxQueuedRequests", "1024", "HTTP API requests that may wait for a slot; beyond that 503 with Retry-After at once";
    SHUTDOWN_TIMEOUT_SECONDS, "shutdownTimeoutSeconds", "10", "how long requests in flight may finish after SIGTERM";
    SHUTDOWN_DELAY_SECONDS, "shutdownDelaySeconds", "0", "after SIGTERM, how long to keep serving while unready, so load balancers drain first";
    LOCAL_CACHE_EXPIRATION_SECONDS, "localCacheConfig.expirationSeconds", "600", "in-process cache entry lifetime";
    LOCAL_CACHE_MAX_MB, "localCacheConfig.maxMegabytes", "64", "memory bound of the in-process cache, in MiB (approximate)";
    NEGATIVE_CACHE_SECONDS, "negativeCacheSeconds", "10", "lifetime of cached 'no such customer' answers, in both tiers";
    REDIS_ADDRS, "redisConfig.addrs", "", "comma-separated Redis seed nodes; several = cluster mode; empty = in-process cache only";
    REDIS_PASSWORD, "redisConfig.password", "", "Redis password";
    REDIS_DB, "redisConfig.db", "0", "Redis database number (single node only)";
    REDIS_POOL_SIZE, "redisConfig.poolSize", "10", "Redis connections per node";
    REDIS_MAX_RETRIES, "redisConfig.maxRetries", "3", "retries of a failed Redis command";
    REDIS_EXPIRATION_SECONDS, "redisConfig.expirationSeconds", "900", "Redis entry lifetime (plus 0-9 s jitter)";
    SMTP_URL, "mailConfig.smtpUrl", "", "SMTP server: smtp://user:pass@host:587 (STARTTLS), smtps://user:pass@host:465, or smtp://host:25?tls=none (local relay); empty = mails written as .eml files under DATA_DIR/mail/ (development)";
    MAIL_FROM, "mailConfig.from", "saga-account <noreply@localhost>", "From: of every mail";
    PUBLIC_BASE_URL, "mailConfig.publicBaseUrl", "http://localhost:8080", "base of the links in mails (never taken from a request's Host)";
    RESET_TOKEN_SECONDS, "mailConfig.resetTokenSeconds", "1800", "lifetime of a password reset token";
    VERIFY_TOKEN_SECONDS, "mailConfig.verifyTokenSeconds", "86400", "lifetime of an email verification token";
    MAIL_MAX_PER_EMAIL_PER_HOUR, "mailConfig.maxPerEmailPerHour", "5", "reset and verification mails per email address per hour; beyond it the answer is the same 202 and no mail goes; 0 = no limit";
    MAIL_MAX_PER_IP_PER_HOUR, "mailConfig.maxPerIpPerHour", "0", "reset and verification mails requested per client address per hour; 0 = off";
    MAIL_MAX_ATTEMPTS, "mailConfig.maxAttempts", "10", "attempts to send one mail before it is given up (logged and counted)";
    MAIL_RETRY_SECONDS, "mailConfig.retrySeconds", "10", "delay before the first retry of a mail; each further retry doubles it, up to an hour";
    MAIL_POLL_MILLISECONDS, "mailConfig.pollMilliseconds", "1000", "how often each replica looks for due mails (mails queued on the replica itself go at once)";
    MAIL_SEND_TIMEOUT_SECONDS, "mailConfig.sendTimeoutSeconds", "30", "longest wait for the SMTP server on one mail";
    MAIL_CONCURRENCY, "mailConfig.concurrency", "8", "mails one replica sends at once";
    ADMIN_PORT, "adminConfig.port", "0", "operator API port (0 = off)";
    ADMIN_BIND_ADDRESS, "adminConfig.bindAddress", "127.0.0.1", "address the operator API binds to";
    ADMIN_API_KEYS, "adminConfig.apiKeys", "", "comma-separated operator API keys name.secret (secrets of at least 32 characters); several at once to rotate them";
    LOG_FORMAT, "logFormat", "text", "log format: text or json";
    LOG_LEVEL, "logLevel", "info", "log filter (RUST_LOG syntax); RUST_LOG wins when set";
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value for {key}: {value:?} ({expected})")]
    Invalid {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("cannot read config file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        source: serde_yaml_ng::Error,
    },
    #[error("config file {path}: {key} must be a plain value, not a list or map")]
    YamlShape { path: PathBuf, key: &'static str },
}

/// What to do with a refresh token that belongs to no session (minted by the Go service).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyRefreshTokens {
    /// Accept it and start a session.
    Accept,
    /// 401 `invalid token`.
    Reject,
}

/// The algorithm new tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlg {
    Hs256,
    EdDsa,
    Es256,
}

/// The hash given to new passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordHashKind {
    Bcrypt,
    Argon2id,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// A CIDR range of addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a single address.
    pub fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (
                addr.parse::<IpAddr>().ok()?,
                Some(prefix.parse::<u8>().ok()?),
            ),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self {
            network: addr,
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub app: String,
    pub http_port: u16,
    pub grpc_port: u16,
    pub prom_port: u16,
    pub bind_address: IpAddr,
    pub jaeger_url: Option<String>,
    pub jwt_secret: Option<Secret>,
    pub jwt_previous_secrets: Vec<Secret>,
    pub jwt_alg: JwtAlg,
    pub jwt_private_key_file: Option<PathBuf>,
    pub jwt_key_rotation: Duration,
    pub jwt_accept_hs256: bool,
    pub access_token_expire_secs: i64,
    pub refresh_token_expire_secs: i64,
    pub session_max: Duration,
    pub refresh_rotation: bool,
    pub refresh_reuse_grace: Duration,
    pub legacy_refresh_tokens: LegacyRefreshTokens,
    pub max_sessions_per_customer: u32,
    pub revocation_poll: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub login_max_failures: u32,
    pub login_failure_window: Duration,
    pub login_lockout: Duration,
    pub login_max_lockout: Duration,
    pub login_max_failures_per_ip: u32,
    pub signup_max_per_ip_per_hour: u32,
    pub throttle_refusal_delay: Duration,
    pub login_uniform_errors: bool,
    pub password_hash: PasswordHashKind,
    pub argon2: Argon2Params,
    pub password_min_score: u8,
    pub db_dsn: Secret,
    pub db_max_open_conns: u32,
    pub db_max_idle_conns: u32,
    pub db_acquire_timeout: Duration,
    pub data_dir: PathBuf,
    pub machine_id: Option<u16>,
    pub hash_threads: usize,
    pub hash_queue: usize,
    pub http_body_limit: usize,
    pub http_request_timeout: Duration,
    pub http_header_read_timeout: Duration,
    pub http_idle_timeout: Duration,
    pub max_connections: usize,
    pub http_max_concurrent_requests: usize,
    pub http_max_queued_requests: usize,
    pub shutdown_timeout: Duration,
    pub shutdown_delay: Duration,
    pub local_cache_expiration: Duration,
    pub local_cache_max_bytes: u64,
    pub negative_cache_expiration: Duration,
    pub redis_addrs: Vec<String>,
    pub redis_password: Option<Secret>,
    pub redis_db: u32,
    pub redis_pool_size: u32,
    pub redis_max_retries: u32,
    pub redis_expiration: Duration,
    pub log_format: LogFormat,
    pub log_level: String,
    /// SPEC section 13; `None` = `.eml` files.
    pub smtp_url: Option<crate::service::mail::SmtpUrl>,
    pub mail_from: lettre::message::Mailbox,
    /// Without a trailing `/`.
    pub public_base_url: String,
    pub reset_token_ttl: Duration,
    pub verify_token_ttl: Duration,
    pub mail_max_per_email_per_hour: u32,
    pub mail_max_per_ip_per_hour: u32,
    pub mail_max_attempts: u32,
    pub mail_retry: Duration,
    pub mail_poll: Duration,
    pub mail_send_timeout: Duration,
    pub mail_concurrency: usize,
    /// SPEC section 14; 0 = off.
    pub admin_port: u16,
    pub admin_bind_address: IpAddr,
    pub admin_api_keys: Vec<crate::service::operator::ApiKey>,
}

/// The config file read when no path is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "config.yml";

impl Settings {
    /// Reads `config.yml` (or `explicit_file`, which must exist) and the process environment.
    pub fn load(explicit_file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::from_sources(explicit_file, |key| std::env::var(key).ok())
    }

    /// As `load`, with the environment given as a lookup function (tests pass a map).
    pub fn from_sources(
        explicit_file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut raw: HashMap<Key, String> = SETTINGS
            .iter()
            .map(|s| (s.key, s.default.to_owned()))
            .collect();
        let file = match explicit_file {
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.exists()),
        };
        if let Some(path) = file {
            read_yaml(&path, &mut raw)?;
        }
        for spec in SETTINGS {
            if let Some(value) = env(spec.env).filter(|v| !v.is_empty()) {
                raw.insert(spec.key, value);
            }
        }
        Self::from_raw(&raw)
    }

    /// Defaults only, as if nothing was configured.
    pub fn defaults() -> Self {
        let raw = SETTINGS
            .iter()
            .map(|s| (s.key, s.default.to_owned()))
            .collect();
        #[expect(
            clippy::expect_used,
            reason = "the built-in defaults are valid (tested)"
        )]
        Self::from_raw(&raw).expect("built-in defaults are valid")
    }

    fn from_raw(raw: &HashMap<Key, String>) -> Result<Self, ConfigError> {
        let r = Reader(raw);
        let non_empty = |key| Some(r.text(key)).filter(|v| !v.is_empty());
        Ok(Self {
            app: r.parse_with(Key::APP, "a name of letters, digits and _", |v| {
                (!v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
                    .then(|| v.to_owned())
            })?,
            http_port: r.parse(Key::HTTP_PORT, "a port number 0-65535")?,
            grpc_port: r.parse(Key::GRPC_PORT, "a port number 0-65535")?,
            prom_port: r.parse(Key::PROM_PORT, "a port number 0-65535")?,
            bind_address: r.parse(Key::BIND_ADDRESS, "an IP address")?,
            jaeger_url: non_empty(Key::JAEGER_URL),
            jwt_secret: non_empty(Key::JWT_SECRET).map(Secret),
            jwt_previous_secrets: r
                .text(Key::JWT_PREVIOUS_SECRETS)
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Secret::new)
                .collect(),
            jwt_alg: r.parse_with(Key::JWT_ALG, "HS256, EdDSA or ES256", |v| match v {
                "HS256" => Some(JwtAlg::Hs256),
                "EdDSA" => Some(JwtAlg::EdDsa),
                "ES256" => Some(JwtAlg::Es256),
                _ => None,
            })?,
            jwt_private_key_file: non_empty(Key::JWT_PRIVATE_KEY_FILE).map(PathBuf::from),
            jwt_key_rotation: Duration::from_secs(
                r.positive::<u64>(Key::JWT_KEY_ROTATION_DAYS)?
                    .saturating_mul(86_400),
            ),
            jwt_accept_hs256: r.boolean(Key::JWT_ACCEPT_HS256)?,
            access_token_expire_secs: r.positive(Key::JWT_ACCESS_TOKEN_EXPIRE_SECOND)?,
            refresh_token_expire_secs: r.positive(Key::JWT_REFRESH_TOKEN_EXPIRE_SECOND)?,
            session_max: Duration::from_secs(r.positive(Key::SESSION_MAX_SECONDS)?),
            refresh_rotation: r.boolean(Key::REFRESH_TOKEN_ROTATION)?,
            refresh_reuse_grace: Duration::from_secs(
                r.parse(Key::REFRESH_REUSE_GRACE_SECONDS, "a whole number")?,
            ),
            legacy_refresh_tokens: r.parse_with(
                Key::LEGACY_REFRESH_TOKENS,
                "accept or reject",
                |v| match v {
                    "accept" => Some(LegacyRefreshTokens::Accept),
                    "reject" => Some(LegacyRefreshTokens::Reject),
                    _ => None,
                },
            )?,
            max_sessions_per_customer: r.positive(Key::MAX_SESSIONS_PER_CUSTOMER)?,
            revocation_poll: Duration::from_millis(r.positive(Key::REVOCATION_POLL_MILLISECONDS)?),
            login_max_failures: r.parse(Key::LOGIN_MAX_FAILURES, "a whole number")?,
            login_failure_window: Duration::from_secs(
                r.positive(Key::LOGIN_FAILURE_WINDOW_SECONDS)?,
            ),
            login_lockout: Duration::from_secs(r.positive(Key::LOGIN_LOCKOUT_SECONDS)?),
            login_max_lockout: Duration::from_secs(r.positive(Key::LOGIN_MAX_LOCKOUT_SECONDS)?),
            login_max_failures_per_ip: r.parse(Key::LOGIN_MAX_FAILURES_PER_IP, "a whole number")?,
            signup_max_per_ip_per_hour: r
                .parse(Key::SIGNUP_MAX_PER_IP_PER_HOUR, "a whole number")?,
            throttle_refusal_delay: Duration::from_millis(
                r.parse(Key::THROTTLE_REFUSAL_DELAY_MILLISECONDS, "a whole number")?,
            ),
            login_uniform_errors: r.boolean(Key::LOGIN_UNIFORM_ERRORS)?,
            password_hash: r.parse_with(Key::PASSWORD_HASH, "bcrypt or argon2id", |v| match v {
                "bcrypt" => Some(PasswordHashKind::Bcrypt),
                "argon2id" => Some(PasswordHashKind::Argon2id),
                _ => None,
            })?,
            argon2: Argon2Params {
                memory_kib: r.parse_with(
                    Key::ARGON2_MEMORY_KIB,
                    "a number of KiB, at least 8 per lane",
                    |v| v.parse().ok().filter(|m| *m >= 8),
                )?,
                iterations: r.positive(Key::ARGON2_ITERATIONS)?,
                parallelism: r.parse_with(Key::ARGON2_PARALLELISM, "a number 1-255", |v| {
                    v.parse().ok().filter(|p| (1..=255).contains(p))
                })?,
            },
            password_min_score: r.parse_with(Key::PASSWORD_MIN_SCORE, "a number 0-4", |v| {
                v.parse().ok().filter(|s| *s <= 4)
            })?,
            trusted_proxies: r.parse_with(
                Key::TRUSTED_PROXIES,
                "comma-separated CIDR ranges, e.g. 10.0.0.0/8,192.168.1.10/32",
                |v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(IpNet::parse)
                        .collect()
                },
            )?,
            db_dsn: Secret(r.text(Key::DB_DSN)),
            db_max_open_conns: r.positive(Key::DB_MAX_OPEN_CONNS)?,
            db_max_idle_conns: r.parse(Key::DB_MAX_IDLE_CONNS, "a whole number")?,
            db_acquire_timeout: Duration::from_millis(r.positive(Key::DB_ACQUIRE_TIMEOUT_MS)?),
            data_dir: PathBuf::from(r.text(Key::DATA_DIR)),
            machine_id: match non_empty(Key::MACHINE_ID) {
                None => None,
                Some(_) => Some(r.parse_with(
                    Key::MACHINE_ID,
                    "a number 0-65535, or an IPv4 address whose low 16 bits are used",
                    parse_machine_id,
                )?),
            },
            hash_threads: r.parse_with(Key::HASH_THREADS, "a number 0-256", |v| {
                v.parse::<usize>().ok().filter(|n| *n <= 256)
            })?,
            hash_queue: r.parse(Key::HASH_QUEUE, "a whole number")?,
            http_body_limit: r.positive(Key::HTTP_BODY_LIMIT_BYTES)?,
            http_request_timeout: Duration::from_secs(
                r.positive(Key::HTTP_REQUEST_TIMEOUT_SECONDS)?,
            ),
            http_header_read_timeout: Duration::from_secs(
                r.positive(Key::HTTP_HEADER_READ_TIMEOUT_SECONDS)?,
            ),
            http_idle_timeout: Duration::from_secs(r.positive(Key::HTTP_IDLE_TIMEOUT_SECONDS)?),
            max_connections: r.positive(Key::MAX_CONNECTIONS)?,
            http_max_concurrent_requests: r.positive(Key::HTTP_MAX_CONCURRENT_REQUESTS)?,
            http_max_queued_requests: r.parse(Key::HTTP_MAX_QUEUED_REQUESTS, "a whole number")?,
            shutdown_timeout: Duration::from_secs(
                r.parse(Key::SHUTDOWN_TIMEOUT_SECONDS, "a whole number")?,
            ),
            shutdown_delay: Duration::from_secs(
                r.parse(Key::SHUTDOWN_DELAY_SECONDS, "a whole number")?,
            ),
            local_cache_expiration: Duration::from_secs(
                r.positive(Key::LOCAL_CACHE_EXPIRATION_SECONDS)?,
            ),
            local_cache_max_bytes: r
                .positive::<u64>(Key::LOCAL_CACHE_MAX_MB)?
                .saturating_mul(1024 * 1024),
            negative_cache_expiration: Duration::from_secs(
                r.positive(Key::NEGATIVE_CACHE_SECONDS)?,
            ),
            redis_addrs: r.parse_with(
                Key::REDIS_ADDRS,
                "comma-separated host:port pairs",
                |v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(|a| {
                            let (host, port) = a.rsplit_once(':')?;
                            (!host.is_empty() && port.parse::<u16>().is_ok()).then(|| a.to_owned())
                        })
                        .collect::<Option<Vec<_>>>()
                },
            )?,
            redis_password: non_empty(Key::REDIS_PASSWORD).map(Secret),
            redis_db: r.parse(Key::REDIS_DB, "a whole number")?,
            redis_pool_size: r.positive(Key::REDIS_POOL_SIZE)?,
            redis_max_retries: r.parse(Key::REDIS_MAX_RETRIES, "a whole number")?,
            redis_expiration: Duration::from_secs(r.positive(Key::REDIS_EXPIRATION_SECONDS)?),
            log_format: r.parse_with(Key::LOG_FORMAT, "text or json", |v| match v {
                "text" => Some(LogFormat::Text),
                "json" => Some(LogFormat::Json),
                _ => None,
            })?,
            log_level: r.text(Key::LOG_LEVEL),
            smtp_url: match non_empty(Key::SMTP_URL) {
                None => None,
                Some(_) => Some(r.parse_with(
                    Key::SMTP_URL,
                    "smtp://[user:pass@]host[:port][?tls=none] or smtps://[user:pass@]host[:port]",
                    crate::service::mail::SmtpUrl::parse,
                )?),
            },
            mail_from: r.parse(Key::MAIL_FROM, "an address, or Name <address>")?,
            public_base_url: r.parse_with(
                Key::PUBLIC_BASE_URL,
                "an http:// or https:// URL",
                |v| {
                    let url = url::Url::parse(v).ok()?;
                    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
                        .then(|| v.trim_end_matches('/').to_owned())
                },
            )?,
            reset_token_ttl: Duration::from_secs(r.positive(Key::RESET_TOKEN_SECONDS)?),
            verify_token_ttl: Duration::from_secs(r.positive(Key::VERIFY_TOKEN_SECONDS)?),
            mail_max_per_email_per_hour: r
                .parse(Key::MAIL_MAX_PER_EMAIL_PER_HOUR, "a whole number")?,
            mail_max_per_ip_per_hour: r.parse(Key::MAIL_MAX_PER_IP_PER_HOUR, "a whole number")?,
            mail_max_attempts: r.positive(Key::MAIL_MAX_ATTEMPTS)?,
            mail_retry: Duration::from_secs(r.positive(Key::MAIL_RETRY_SECONDS)?),
            mail_poll: Duration::from_millis(r.positive(Key::MAIL_POLL_MILLISECONDS)?),
            mail_send_timeout: Duration::from_secs(r.positive(Key::MAIL_SEND_TIMEOUT_SECONDS)?),
            mail_concurrency: r.parse_with(Key::MAIL_CONCURRENCY, "a number 1-256", |v| {
                v.parse::<usize>().ok().filter(|n| (1..=256).contains(n))
            })?,
            admin_api_keys: r.parse_with(
                Key::ADMIN_API_KEYS,
                "comma-separated name.secret keys: names of letters, digits, - and _, unique; secrets of at least 32 characters",
                crate::service::operator::keys::parse,
            )?,
            admin_port: r.parse_with(
                Key::ADMIN_PORT,
                "a port number 0-65535, and not 0 only with ADMIN_API_KEYS set",
                |v| {
                    let port = v.parse::<u16>().ok()?;
                    // An operator API nobody can call is a mistake, not a setting.
                    (port == 0 || !r.text(Key::ADMIN_API_KEYS).is_empty()).then_some(port)
                },
            )?,
            admin_bind_address: r.parse(Key::ADMIN_BIND_ADDRESS, "an IP address")?,
        })
    }
}

/// `MACHINE_ID`: a number, or an IPv4 address (Kubernetes: `$(POD_IP)`) whose low 16 bits
/// are used, as Sonyflake derives it from the host's address.
fn parse_machine_id(value: &str) -> Option<u16> {
    value.parse::<u16>().ok().or_else(|| {
        let ip: std::net::Ipv4Addr = value.parse().ok()?;
        let [_, _, high, low] = ip.octets();
        Some(u16::from_be_bytes([high, low]))
    })
}

struct Reader<'a>(&'a HashMap<Key, String>);

impl Reader<'_> {
    fn text(&self, key: Key) -> String {
        self.0
            .get(&key)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    fn parse_with<T>(
        &self,
        key: Key,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let value = self.text(key);
        parse(&value).ok_or(ConfigError::Invalid {
            key: key.env(),
            value,
            expected,
        })
    }

    fn parse<T: std::str::FromStr>(
        &self,
        key: Key,
        expected: &'static str,
    ) -> Result<T, ConfigError> {
        self.parse_with(key, expected, |v| v.parse().ok())
    }

    fn boolean(&self, key: Key) -> Result<bool, ConfigError> {
        self.parse_with(key, "true or false", |v| {
            match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            }
        })
    }

    fn positive<T: std::str::FromStr + PartialOrd + Default>(
        &self,
        key: Key,
    ) -> Result<T, ConfigError> {
        self.parse_with(key, "a whole number above 0", |v| {
            v.parse().ok().filter(|n| *n > T::default())
        })
    }
}

fn read_yaml(path: &Path, raw: &mut HashMap<Key, String>) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.into(),
        source,
    })?;
    let doc: Value = serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Yaml {
        path: path.into(),
        source,
    })?;
    for spec in SETTINGS {
        let mut node = Some(&doc);
        for part in spec.yaml.split('.') {
            node = node.and_then(|n| n.get(part));
        }
        let value = match node {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(_) => {
                return Err(ConfigError::YamlShape {
                    path: path.into(),
                    key: spec.env,
                });
            }
        };
        raw.insert(spec.key, value);
    }
    Ok(())
}

/// The settings table for `--help`.
pub fn help_table() -> String {
    let mut out =
        String::from("Settings (environment variable / config.yml key; the environment wins):\n");
    for s in SETTINGS {
        let default = if s.default.is_empty() {
            String::new()
        } else {
            format!(" [default: {}]", s.default)
        };
        out.push_str(&format!(
            "  {:<34} {}\n      {}{}\n",
            s.env, s.yaml, s.help, default
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// Every setting has a row in the README's configuration table (a row may name several).
    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../README.md");
        let table: Vec<&str> = readme
            .lines()
            .skip_while(|l| !l.starts_with("## Configuration"))
            .take_while(|l| !l.starts_with("## The API"))
            .filter(|l| l.starts_with("| `"))
            .collect();
        let missing: Vec<&str> = SETTINGS
            .iter()
            .map(|s| s.env)
            .filter(|env| {
                let cell = format!("`{env}`");
                !table
                    .iter()
                    .any(|row| row.split('|').nth(1).is_some_and(|c| c.contains(&cell)))
            })
            .collect();
        assert!(
            missing.is_empty(),
            "settings missing from the README table: {missing:?}"
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::defaults();
        assert_eq!((s.http_port, s.grpc_port, s.prom_port), (8080, 8000, 8081));
        assert_eq!(
            (s.access_token_expire_secs, s.refresh_token_expire_secs),
            (300, 900)
        );
        assert_eq!(s.local_cache_expiration, Duration::from_secs(600));
        assert_eq!(s.redis_expiration, Duration::from_secs(900));
        assert!(s.jwt_secret.is_none() && s.redis_addrs.is_empty());
    }

    #[test]
    fn go_config_file_is_read_and_env_wins() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(
            file,
            "app: shop\nhttpPort: 80\njwtConfig:\n  secret: from-file\n  accessTokenExpireSecond: 60\n\
             dbConfig:\n  dsn: root:pw@tcp(db:3306)/account\n  maxOpenConns: 20\n\
             redisConfig:\n  addrs: \"a:7000, b:7001\"\n  password: pass.123\n  db: 0\nginMode: debug\n"
        )
        .unwrap();
        let s = Settings::from_sources(
            Some(file.path()),
            env(&[("HTTP_PORT", "9000"), ("JWT_SECRET", "from-env")]),
        )
        .unwrap();
        assert_eq!(s.app, "shop");
        assert_eq!(s.http_port, 9000);
        assert_eq!(s.jwt_secret.unwrap().expose(), "from-env");
        assert_eq!(s.access_token_expire_secs, 60);
        assert_eq!(s.db_max_open_conns, 20);
        assert_eq!(s.redis_addrs, vec!["a:7000", "b:7001"]);
        assert_eq!(s.db_dsn.expose(), "root:pw@tcp(db:3306)/account");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("HTTP_PORT", "http"),
            ("GRPC_PORT", "70000"),
            ("JWT_ACCESS_TOKEN_EXPIRE_SECOND", "0"),
            ("DB_MAX_OPEN_CONNS", "-1"),
            ("MACHINE_ID", "65536"),
            ("LOG_FORMAT", "xml"),
            ("REDIS_DB", "one"),
            ("REDIS_ADDRS", "redis-node1"),
            ("LOCAL_CACHE_MAX_MB", "0"),
            ("SMTP_URL", "smtp://mail?tls=none&x=1"),
            ("PUBLIC_BASE_URL", "ftp://shop"),
            ("ADMIN_API_KEYS", "ops.tooshort"),
            ("ADMIN_PORT", "9090"),
        ] {
            let err = Settings::from_sources(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    /// A setting declared but never read would be a silent no-op: every key must change the
    /// settings or be refused when given a value unlike its default.
    #[test]
    fn every_declared_setting_is_read() {
        let defaults = format!("{:?}", Settings::defaults());
        for spec in SETTINGS {
            let odd = if spec.default == "7" { "9" } else { "7" };
            match Settings::from_sources(None, env(&[(spec.env, odd)])) {
                Err(e) => assert!(e.to_string().contains(spec.env), "{e}"),
                Ok(s) => assert_ne!(format!("{s:?}"), defaults, "{} is never read", spec.env),
            }
        }
    }

    #[test]
    fn cidr_ranges_contain_what_they_should() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.3.4".parse().unwrap()));
        assert!(
            net.contains("::ffff:10.1.2.3".parse().unwrap()),
            "IPv4-mapped peers"
        );
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        let one = IpNet::parse("192.168.1.10").unwrap();
        assert!(one.contains("192.168.1.10".parse().unwrap()));
        assert!(!one.contains("192.168.1.11".parse().unwrap()));
        assert!(
            IpNet::parse("2001:db8::/32")
                .unwrap()
                .contains("2001:db8::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", ""] {
            assert!(IpNet::parse(bad).is_none(), "{bad}");
        }
        let s = Settings::from_sources(None, env(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")]))
            .unwrap();
        assert_eq!(s.trusted_proxies.len(), 2);
        assert!(Settings::from_sources(None, env(&[("TRUSTED_PROXIES", "10.0.0.0/40")])).is_err());
    }

    #[test]
    fn machine_id_is_a_number_or_an_address() {
        let id =
            |v: &str| Settings::from_sources(None, env(&[("MACHINE_ID", v)])).map(|s| s.machine_id);
        assert_eq!(id("513").unwrap(), Some(513));
        assert_eq!(id("10.1.2.3").unwrap(), Some(0x0203));
        assert!(id("10.1.2").is_err());
    }

    #[test]
    fn operator_keys_are_checked_at_start_and_never_print() {
        let secret = "k".repeat(32);
        let s = Settings::from_sources(
            None,
            env(&[
                ("ADMIN_PORT", "9090"),
                ("ADMIN_API_KEYS", &format!("ops.{secret},ci.{secret}")),
            ]),
        )
        .unwrap();
        assert_eq!(s.admin_port, 9090);
        assert_eq!(s.admin_api_keys.len(), 2);
        assert_eq!(s.admin_bind_address.to_string(), "127.0.0.1");
        assert!(!format!("{s:?}").contains(&secret));
        let d = Settings::defaults();
        assert_eq!((d.admin_port, d.mail_max_per_email_per_hour), (0, 5));
        assert!(d.smtp_url.is_none());
    }

    /// The defaults SPEC section 13 names.
    #[test]
    fn mail_defaults_are_the_specs() {
        let d = Settings::defaults();
        assert_eq!(d.reset_token_ttl, Duration::from_secs(1800));
        assert_eq!(d.verify_token_ttl, Duration::from_secs(86400));
        assert_eq!(d.mail_max_per_email_per_hour, 5);
        assert_eq!(d.mail_max_per_ip_per_hour, 0, "off");
        assert_eq!(d.data_dir, PathBuf::from("data"));
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        assert!(
            Settings::from_sources(Some(Path::new("/nonexistent/config.yml")), env(&[])).is_err()
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::from_sources(
            None,
            env(&[("JWT_SECRET", "s3cr3t"), ("DB_DSN", "u:hunter2@tcp(h)/d")]),
        )
        .unwrap();
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("s3cr3t") && !printed.contains("hunter2"),
            "{printed}"
        );
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        /// Values of every shape a setting is given: numbers (negative, huge), booleans,
        /// lists, addresses, and any text.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<u64>().prop_map(|n| format!("{n}0")),
                Just("true".to_owned()),
                "[a-zA-Z0-9_:./,\\[\\] -]{0,30}",
                ".{0,60}",
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any values for any settings: settings, or an error naming one of the settings
            /// that was given. Never a panic.
            #[test]
            fn any_values_load_or_name_the_setting(
                given in proptest::collection::vec((0..SETTINGS.len(), value()), 1..4),
            ) {
                let pairs: Vec<(&str, String)> =
                    given.iter().map(|(i, v)| (SETTINGS[*i].env, v.clone())).collect();
                let lookup = |key: &str| {
                    pairs.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
                };
                if let Err(e) = Settings::from_sources(None, lookup) {
                    let message = e.to_string();
                    prop_assert!(
                        pairs.iter().any(|(key, _)| message.contains(&format!("for {key}:"))),
                        "{} names none of {:?}", message, pairs
                    );
                }
            }

            /// Valid values come back as given.
            #[test]
            fn valid_values_round_trip(
                port in any::<u16>(),
                expiry in 1..=i64::MAX,
                machine in any::<u16>(),
                flag in prop_oneof![Just(("true", true)), Just(("OFF", false)), Just(("1", true)), Just(("no", false))],
                redis in proptest::collection::vec(("[a-z][a-z0-9.-]{0,12}", any::<u16>()), 1..4),
            ) {
                let redis: Vec<String> = redis.iter().map(|(h, p)| format!("{h}:{p}")).collect();
                let s = Settings::from_sources(
                    None,
                    env(&[
                        ("HTTP_PORT", &port.to_string()),
                        ("JWT_ACCESS_TOKEN_EXPIRE_SECOND", &expiry.to_string()),
                        ("MACHINE_ID", &format!(" {machine} ")),
                        ("LOGIN_UNIFORM_ERRORS", flag.0),
                        ("REDIS_ADDRS", &redis.join(" , ")),
                    ]),
                )
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(s.http_port, port);
                prop_assert_eq!(s.access_token_expire_secs, expiry);
                prop_assert_eq!(s.machine_id, Some(machine));
                prop_assert_eq!(s.login_uniform_errors, flag.1);
                prop_assert_eq!(s.redis_addrs, redis);
            }
        }
    }
}
