//! The `saga-account` binary: parse the command line, load settings, run.

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use saga_account::{
    app::{Application, Core, Role},
    config::{self, Settings},
    domain::{CustomerId, Error},
    storage::store::{self, DatabaseUrl, PoolSettings},
    telemetry,
};

/// Account and authentication service: HTTP API, gRPC Auth, JWT tokens, SQLite or MySQL.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// YAML config file (the Go service's layout). Default: ./config.yml when it exists.
    #[arg(short, long, env = "CONFIG_FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP, gRPC and metrics servers (the default).
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Change a customer's state; caches on every replica are invalidated.
    Customer {
        #[command(subcommand)]
        action: CustomerAction,
    },
    /// Ask the service on this host for /readyz (HTTP_PORT, BIND_ADDRESS or loopback):
    /// exit 0 when it answers 200, 1 otherwise. For container health checks.
    Healthcheck {
        /// Probe this path instead (e.g. /healthz for liveness).
        #[arg(long, default_value = "/readyz")]
        path: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 2)]
        timeout_seconds: u64,
    },
    /// The generated signing keys of JWT_ALG=EdDSA or ES256.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
}

#[derive(Subcommand)]
enum KeysAction {
    /// Publish a new key now; every replica verifies with it within 30 s, and it signs
    /// from ten minutes on (the first key of a fleet leaving HS256, or an early rotation).
    Publish,
}

#[derive(Subcommand)]
enum CustomerAction {
    /// Let the customer log in and refresh tokens again.
    Activate { id: u64 },
    /// Refuse the customer's logins and refreshes (401 customer inactive); ends every session.
    Deactivate { id: u64 },
    /// Show a customer (as GET /admin/v1/customers/ID).
    Show { id: u64 },
    /// Find a customer by email.
    Find { email: String },
    /// Delete a customer and their sessions, as account deletion does.
    Delete { id: u64 },
    /// List the customer's live sessions.
    Sessions { id: u64 },
    /// Revoke every session of the customer.
    RevokeSessions { id: u64 },
    /// Send the customer the password reset mail (a running replica sends it).
    PasswordReset { id: u64 },
    /// Remove the customer's TOTP and recovery codes (a lost phone); they are told by mail.
    MfaReset { id: u64 },
}

impl From<CustomerAction> for saga_account::transport::operator::cli::Action {
    fn from(action: CustomerAction) -> Self {
        use saga_account::transport::operator::cli::Action;
        match action {
            CustomerAction::Activate { id } => Action::SetActive(CustomerId(id), true),
            CustomerAction::Deactivate { id } => Action::SetActive(CustomerId(id), false),
            CustomerAction::Show { id } => Action::Show(CustomerId(id)),
            CustomerAction::Find { email } => Action::Find(email),
            CustomerAction::Delete { id } => Action::Delete(CustomerId(id)),
            CustomerAction::Sessions { id } => Action::Sessions(CustomerId(id)),
            CustomerAction::RevokeSessions { id } => Action::RevokeSessions(CustomerId(id)),
            CustomerAction::PasswordReset { id } => Action::PasswordReset(CustomerId(id)),
            CustomerAction::MfaReset { id } => Action::MfaReset(CustomerId(id)),
        }
    }
}

fn main() -> std::process::ExitCode {
    let matches = Cli::command()
        .after_long_help(config::help_table())
        .after_help(config::help_table())
        .get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    // No logs, traces or connections for a probe: it runs every few seconds.
    if let Some(Command::Healthcheck {
        path,
        timeout_seconds,
    }) = &cli.command
    {
        let addr = saga_account::transport::http::probe::probe_address(
            settings.listen.bind_address,
            settings.listen.http_port,
        );
        saga_account::transport::http::probe::probe(
            addr,
            path,
            std::time::Duration::from_secs(*timeout_seconds),
        )
        .await?;
        println!("{path} at {addr}: 200");
        return Ok(());
    }
    let telemetry = telemetry::init(&settings.telemetry)?;
    let result = execute(cli.command, settings).await;
    telemetry.shutdown();
    result
}

async fn execute(command: Option<Command>, settings: Settings) -> anyhow::Result<()> {
    match command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let url =
                DatabaseUrl::parse(settings.database.dsn.expose(), &settings.database.data_dir)?;
            let pool = PoolSettings {
                max_open: 1,
                max_idle: 0,
                acquire_timeout: settings
                    .pool
                    .acquire_timeout
                    .max(std::time::Duration::from_secs(10)),
            };
            store::migrate(&url, &pool).await?;
            println!("schema of the {} database is up to date", url.backend());
            Ok(())
        }
        Command::Customer { action } => {
            let core = Core::open(
                &settings,
                std::sync::Arc::new(saga_account::domain::clock::SystemClock),
                Role::Command,
            )
            .await?;
            if let Some(redis) = &core.redis
                && !redis
                    .wait_until_subscribed(std::time::Duration::from_secs(10))
                    .await
            {
                anyhow::bail!(
                    "Redis is configured but unreachable: other replicas would keep stale entries"
                );
            }
            let outcome =
                saga_account::transport::operator::cli::run(&core.admin, action.into()).await;
            core.close().await;
            match outcome {
                Err(Error::CustomerNotFound) => anyhow::bail!("customer not found"),
                Err(e) => Err(anyhow::Error::new(e)),
                Ok(report) => {
                    println!("{report}");
                    Ok(())
                }
            }
        }
        Command::Healthcheck { .. } => Ok(()),
        Command::Keys {
            action: KeysAction::Publish,
        } => {
            let core = Core::open(
                &settings,
                std::sync::Arc::new(saga_account::domain::clock::SystemClock),
                Role::Command,
            )
            .await?;
            let published = core.keys.publish_next().await;
            core.close().await;
            let kid = published?;
            println!("published signing key {kid}; it signs from ten minutes from now");
            Ok(())
        }
        Command::Serve => {
            let app = Application::build(settings).await?;
            let shutdown = shutdown_signal();
            tracing::info!(
                http = %app.http_addr(),
                grpc = %app.grpc_addr(),
                metrics = %app.metrics_addr(),
                admin = %app.admin_addr().map_or_else(|| "off".to_owned(), |a| a.to_string()),
                "saga-account listening"
            );
            app.run_until(shutdown).await
        }
    }
}

/// SIGINT or SIGTERM. The handlers are registered when this is called, not when the future
/// is first polled, so that a signal sent as soon as "listening" is logged is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            let wait = |registered: std::io::Result<tokio::signal::unix::Signal>| async move {
                match registered {
                    Ok(mut signal) => {
                        signal.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(interrupt) => tracing::info!("SIGINT received"),
                () = wait(terminate) => tracing::info!("SIGTERM received"),
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("SIGINT received");
        } else {
            std::future::pending::<()>().await;
        }
    }
}
