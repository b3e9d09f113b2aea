//! The services before any listener: stores behind their cache, Redis, the services and
//! their background tasks. `serve` and the CLI commands build the same one.

use std::{sync::Arc, time::Duration};

use anyhow::Context;

use super::tasks::Tasks;
use crate::{
    config::Settings,
    domain::{Secret, clock::Clock},
    metrics::Metrics,
    service::account::{AccountDeps, AccountService},
    service::auth::{self, AuthDeps, AuthService, HashPolicy, PasswordHasher, TokenCodec},
    service::idgen::{self, IdGenerator},
    service::keys::{Alg, KeyManager, KeyPair, KeySettings, KeySource},
    service::mail::{Mailer, Sender, Transport},
    service::mfa::{MfaKey, SecondFactor, mfa_key},
    service::operator::{AdminService, ApiKeys},
    service::recovery::{RecoveryDeps, RecoveryService},
    service::session::SessionService,
    service::throttle::Throttle,
    storage::cache::CachedStore,
    storage::redis::RedisClient,
    storage::store::{self, CustomerStore, DatabaseUrl, SqliteTarget},
};

/// Whether the services are built to serve, or for one command of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Command,
}

/// Everything the service is made of, before any listener: the stores behind their cache,
/// Redis, and the services. `serve` and the CLI commands build the same one, so that an
/// operator's command goes through the same code as the API.
pub struct Core {
    pub metrics: Metrics,
    pub cache: Arc<CachedStore>,
    pub redis: Option<Arc<RedisClient>>,
    pub auth: AuthService,
    pub account: AccountService,
    pub keys: KeyManager,
    pub clock: Arc<dyn Clock>,
    /// Password reset and email verification (SPEC section 13).
    pub recovery: RecoveryService,
    /// What the operator API and the `customer` commands call (SPEC section 14).
    pub admin: AdminService,
    /// The background tasks (revocation poll, sweep, key reload, mail sender, Redis listener).
    tasks: Tasks,
    /// How long the background tasks get to finish at close.
    shutdown_timeout: Duration,
}

/// What every part is built with.
struct Common<'a> {
    settings: &'a Settings,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    redis: Option<Arc<RedisClient>>,
    role: Role,
    tasks: &'a Tasks,
}

impl Common<'_> {
    fn throttle(&self) -> Throttle {
        Throttle::new(self.redis.clone(), self.clock.clone(), self.metrics.clone())
    }

    fn serving(&self) -> bool {
        self.role == Role::Server
    }
}

impl Core {
    pub async fn open(
        settings: &Settings,
        clock: Arc<dyn Clock>,
        role: Role,
    ) -> anyhow::Result<Self> {
        let metrics = Metrics::new(&settings.telemetry.app);
        let url = DatabaseUrl::parse(settings.database.dsn.expose(), &settings.database.data_dir)?;
        let stores = store::open(&url, &settings.pool, metrics.clone(), clock.clone())
            .await
            .context("opening the database")?;
        tracing::info!(backend = url.backend(), "database ready");
        RedisClient::declare_metrics(&metrics);
        let redis = (!settings.redis.addrs.is_empty())
            .then(|| RedisClient::new(settings.redis.clone(), metrics.clone()));
        let cache = Arc::new(
            CachedStore::new(
                stores.customers.clone(),
                settings.cache.clone(),
                redis.clone(),
                metrics.clone(),
            )
            .with_database_feed(stores.feed.clone(), clock.clone()),
        );
        let tasks = Tasks::default();
        let common = Common {
            settings,
            metrics,
            clock,
            redis,
            role,
            tasks: &tasks,
        };
        let sessions = open_sessions(&common, &stores).await?;
        if common.serving() {
            let poll = common.settings.session.revocation_poll;
            if let Some(feed) = cache.follow_database_feed(poll, common.tasks.token()) {
                common.tasks.add(feed);
            }
        }
        let keys = open_keys(&common, &stores, &url).await?;
        let mailer = Mailer::new(
            stores.outbox.clone(),
            common.clock.clone(),
            common.metrics.clone(),
        );
        let mfa = second_factor(&common, &stores, &url, &mailer)?;
        let auth = open_auth(&common, &cache, sessions, &keys, mfa)?;
        let (recovery, admin) = open_mail(&common, &stores, &auth, &cache, &mailer)?;
        let account = AccountService::new(AccountDeps {
            store: cache.clone(),
            verifications: stores.recovery.clone(),
            auth: auth.clone(),
            mailer,
            email_change: settings.email_change,
        });
        let Common {
            metrics,
            clock,
            redis,
            ..
        } = common;
        Ok(Self {
            account,
            metrics,
            cache,
            redis,
            auth,
            keys,
            clock,
            recovery,
            admin,
            tasks,
            shutdown_timeout: settings.shutdown.timeout,
        })
    }

    /// Stops the background tasks, closes the shared Redis client (once, here: the cache,
    /// the sessions and the throttle all use it), waits for the tasks, then closes the
    /// database pool.
    pub async fn close(&self) {
        self.tasks.cancel();
        if let Some(redis) = &self.redis {
            // Ends its listener task (and the cache's invalidation retries).
            redis.close().await;
        }
        self.tasks.join(self.shutdown_timeout).await;
        self.cache.close().await;
    }
}

/// The session service, with its revocation feed started when serving.
async fn open_sessions(
    common: &Common<'_>,
    stores: &store::Stores,
) -> anyhow::Result<SessionService> {
    let sessions = SessionService::new(
        stores.sessions.clone(),
        common.redis.clone(),
        common.settings.session.clone(),
        common.clock.clone(),
        common.metrics.clone(),
    );
    // Every user of the client has registered its channels.
    if let Some(redis) = &common.redis {
        common.tasks.add(redis.start());
    }
    if common.serving() {
        let handles = sessions
            .start_background(common.tasks.token())
            .await
            .context("loading the revoked sessions")?;
        handles.into_iter().for_each(|h| common.tasks.add(h));
    }
    Ok(sessions)
}

/// The key ring, reloaded and rotated in the background when serving.
async fn open_keys(
    common: &Common<'_>,
    stores: &store::Stores,
    url: &DatabaseUrl,
) -> anyhow::Result<KeyManager> {
    let keys = KeyManager::start(
        key_settings(common.settings, url, common.role)?,
        stores.keys.clone(),
        common.clock.clone(),
        common.metrics.clone(),
    )
    .await
    .context("loading the signing keys")?;
    if common.serving() {
        let ring = keys.ring().load();
        tracing::info!(
            alg = ring.signer_alg().name(),
            kid = ring.signer_kid(),
            published = ring.published().len(),
            "signing key"
        );
        if let Some(handle) = keys.spawn(common.tasks.token()) {
            common.tasks.add(handle);
        }
    }
    Ok(keys)
}

/// The hashing pool and the auth service.
fn open_auth(
    common: &Common<'_>,
    cache: &Arc<CachedStore>,
    sessions: SessionService,
    keys: &KeyManager,
    mfa: SecondFactor,
) -> anyhow::Result<AuthService> {
    let settings = common.settings;
    let ids = Arc::new(IdGenerator::new(
        idgen::machine_id(settings.ids.machine_id),
        common.clock.clone(),
    ));
    let password = &settings.password;
    let threads = password.thread_count();
    let policy = HashPolicy::new(password.hash, password.argon2())
        .map_err(|e| anyhow::anyhow!("invalid Argon2id parameters: {e}"))?;
    if common.serving() {
        tracing::info!(
            algorithm = policy.algorithm().label(),
            threads,
            queue = password.queue,
            memory_bound_mib = (policy.memory_per_thread() * threads as u64) / (1024 * 1024),
            "password hashing pool"
        );
    }
    let hasher = PasswordHasher::new(threads, password.queue, policy, common.metrics.clone())
        .context("starting hashing threads")?;
    Ok(AuthService::new(AuthDeps {
        customers: cache.clone(),
        sessions,
        tokens: TokenCodec::with_ring(keys.ring(), Some(common.metrics.clone())),
        hasher,
        throttle: common.throttle(),
        abuse: settings.abuse.policy(),
        ids,
        clock: common.clock.clone(),
        metrics: common.metrics.clone(),
        mfa,
    }))
}

/// The second factor's key and store (SPEC section 16). On the embedded database a key is
/// generated and kept when none is configured; elsewhere each replica would make its own.
fn second_factor(
    common: &Common<'_>,
    stores: &store::Stores,
    url: &DatabaseUrl,
    mailer: &Mailer,
) -> anyhow::Result<SecondFactor> {
    let settings = &common.settings.mfa;
    let embedded = matches!(url, DatabaseUrl::Sqlite(SqliteTarget::File(_)));
    let in_memory = matches!(url, DatabaseUrl::Sqlite(SqliteTarget::Memory));
    let key = match (settings.encryption_key.as_ref(), in_memory) {
        // An in-memory database forgets its secrets anyway: a key of this process will do.
        (None, true) => Some(MfaKey::from_master(&rand::random())),
        (configured, _) => mfa_key(configured, &common.settings.database.data_dir, embedded)?,
    };
    Ok(SecondFactor {
        store: stores.mfa.clone(),
        key,
        token_ttl: settings.token_ttl,
        issuer: settings.issuer.clone(),
        mailer: mailer.clone(),
    })
}

/// The outbox, the reset and verification flows, the operator service, and (serving)
/// the mail sender task (SPEC sections 13 and 14).
fn open_mail(
    common: &Common<'_>,
    stores: &store::Stores,
    auth: &AuthService,
    cache: &Arc<CachedStore>,
    mailer: &Mailer,
) -> anyhow::Result<(RecoveryService, AdminService)> {
    let settings = common.settings;
    let recovery = RecoveryService::new(RecoveryDeps {
        auth: auth.clone(),
        customers: cache.clone(),
        store: stores.recovery.clone(),
        mailer: mailer.clone(),
        throttle: common.throttle(),
        limits: settings.mail_limits,
        clock: common.clock.clone(),
        metrics: common.metrics.clone(),
    });
    let keys = ApiKeys::new(&settings.operator.api_keys);
    let admin = AdminService::new(
        auth.clone(),
        recovery.clone(),
        common.metrics.clone(),
        keys.names(),
    );
    if !common.serving() {
        return Ok((recovery, admin));
    }
    let mail = &settings.mail;
    let data_dir = &settings.database.data_dir;
    let transport = Transport::new(mail.smtp_url.as_ref(), data_dir, mail.send_timeout)
        .context("invalid value for SMTP_URL")?;
    if transport.is_smtp() {
        if let Some(url) = &mail.smtp_url {
            tracing::info!(host = %url.host, port = url.port, tls = ?url.tls, "mail goes out through SMTP");
        }
    } else {
        tracing::warn!(
            dir = %data_dir.join("mail").display(),
            "SMTP_URL is not set: mails are written as .eml files (development only)"
        );
    }
    let sender = Sender::new(
        mailer,
        stores.recovery.clone(),
        stores.mfa.clone(),
        transport,
        Arc::new(mail.clone()),
        settings.email_change,
    );
    common.tasks.add(sender.spawn(common.tasks.token()));
    Ok((recovery, admin))
}

/// Where the signing keys come from, as configured.
fn key_settings(settings: &Settings, url: &DatabaseUrl, role: Role) -> anyhow::Result<KeySettings> {
    let signing = &settings.signing;
    let alg = signing.alg;
    let secret = match (alg, role, &signing.secret) {
        // HS256 signs: a secret is needed, generated when not configured.
        (Alg::Hs256, Role::Server, configured) => {
            let embedded = matches!(url, DatabaseUrl::Sqlite(SqliteTarget::File(_)));
            Some(auth::jwt_secret(
                configured.as_ref(),
                &settings.database.data_dir,
                embedded,
            )?)
        }
        (Alg::Hs256, Role::Command, None) => {
            Some(Secret::new(format!("{:x}", rand::random::<u128>())))
        }
        (_, _, configured) => configured.clone(),
    };
    let source = match &signing.private_key_file {
        None => KeySource::Database,
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading JWT_PRIVATE_KEY_FILE {}", path.display()))?;
            let pair = KeyPair::from_pkcs8(&bytes).with_context(|| {
                format!("invalid value for JWT_PRIVATE_KEY_FILE: {}", path.display())
            })?;
            anyhow::ensure!(
                pair.alg() == alg,
                "invalid value for JWT_PRIVATE_KEY_FILE: an {} key, but JWT_ALG is {}",
                pair.alg().name(),
                alg.name()
            );
            KeySource::File(Box::new(pair))
        }
    };
    let session = &settings.session;
    Ok(KeySettings {
        alg,
        secret,
        previous_secrets: signing.previous_secrets.clone(),
        accept_hs256: signing.accept_hs256,
        serving: role == Role::Server,
        source,
        rotation: signing.rotation,
        token_lifetime: Duration::from_secs(
            u64::try_from(session.access_ttl_secs.max(session.refresh_ttl_secs))
                .unwrap_or(u64::MAX),
        ),
    })
}
