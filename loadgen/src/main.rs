//! `loadgen`: drives a running saga-account over real connections and prints requests/s and
//! latency percentiles per scenario, next to the ceilings of the same stack.
//!
//! ```text
//! cargo run --release --bin loadgen -- run --http 127.0.0.1:8080 --grpc 127.0.0.1:8000 --ceilings auth person refresh
//! cargo run --release --bin loadgen -- run --spawn --duration 2 auth person shipping refresh login signup mix
//! cargo run --release --bin loadgen -- seed --dsn sqlite://data/account.db --customers 1000000
//! ```

mod attack;
mod ceilings;
mod clients;
mod scenarios;
mod seed;
mod stats;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::{Args, Parser, Subcommand};
use scenarios::{Load, Scenario, Target};
use stats::Report;

#[derive(Parser)]
#[command(about = "Load generator for saga-account")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scenarios against a service and print the figures.
    Run(Box<RunArgs>),
    /// Insert many customers straight into a database (for growth measurements).
    Seed {
        /// The service's DB_DSN.
        #[arg(long)]
        dsn: String,
        #[arg(long, default_value_t = 1_000)]
        customers: u64,
        /// First number of the `seed<N>@load.test` addresses.
        #[arg(long, default_value_t = 0)]
        start_at: u64,
    },
    /// Insert revoked sessions straight into the revocation feed (every replica loads them
    /// at its next poll): for `Auth` and memory figures with a large revocation set.
    SeedRevocations {
        /// The service's DB_DSN.
        #[arg(long)]
        dsn: String,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// How long ago they were revoked: 0 = now (running replicas read them at their
        /// next poll); older ones are read by replicas only when they start.
        #[arg(long, default_value_t = 0)]
        age: i64,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Scenarios to run, in order.
    #[arg(value_enum, default_values_t = [Scenario::Auth, Scenario::Person, Scenario::Refresh])]
    scenarios: Vec<Scenario>,
    /// The service's HTTP address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The service's gRPC address.
    #[arg(long, default_value = "127.0.0.1:8000")]
    grpc: SocketAddr,
    /// Start the service in this process instead (SQLite in a temporary directory).
    #[arg(long)]
    spawn: bool,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Stop a scenario after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Concurrent workers (HTTP: one connection each; gRPC: streams over --grpc-connections).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 4)]
    grpc_connections: usize,
    /// Aim at this many requests per second in total (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Customers signed up before the run; requests cycle through them.
    #[arg(long, default_value_t = 16)]
    customers: usize,
    /// Drive the first N customers made by `loadgen seed` instead of signing up new ones
    /// (needs --dsn and --jwt-secret; tokens are minted locally).
    #[arg(long, default_value_t = 0)]
    seeded: usize,
    /// The service's DB_DSN, to find the seeded customers.
    #[arg(long, default_value = "")]
    dsn: String,
    /// The service's JWT_SECRET, to mint the seeded customers' tokens.
    #[arg(long, default_value = "")]
    jwt_secret: String,
    /// The service's JWT_PRIVATE_KEY_FILE, to mint EdDSA or ES256 tokens (auth-keys).
    #[arg(long)]
    jwt_private_key: Option<std::path::PathBuf>,
    /// Also measure the empty-RPC and empty-handler ceilings with the same settings.
    #[arg(long)]
    ceilings: bool,
    /// The service's HASH_THREADS, for the login ceiling (default: CPUs).
    #[arg(long)]
    hash_threads: Option<usize>,
    /// The service's process id: its resident memory is printed before and after each
    /// scenario and every --rss-every seconds during it, and its CPU time per request.
    #[arg(long)]
    service_pid: Option<u32>,
    #[arg(long, default_value_t = 30.0)]
    rss_every: f64,
    /// Exit 0 even if some responses were wrong.
    #[arg(long)]
    allow_errors: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Seed {
            dsn,
            customers,
            start_at,
        } => runtime.block_on(seed::seed(&dsn, customers, start_at)),
        Command::SeedRevocations { dsn, count, age } => {
            runtime.block_on(seed::seed_revocations(&dsn, count, age))
        }
        Command::Run(args) => {
            let target = if args.spawn {
                spawn_service()?
            } else {
                Target {
                    http: args.http,
                    grpc: args.grpc,
                }
            };
            let ceilings = if args.ceilings {
                let (http, grpc) = ceilings::start()?;
                Some(Target { http, grpc })
            } else {
                None
            };
            let errors = runtime.block_on(run(*args, target, ceilings))?;
            anyhow::ensure!(errors == 0, "{errors} wrong or failed responses");
            Ok(())
        }
    }
}

/// Runs the service on its own runtime, as its own process would.
fn spawn_service() -> anyhow::Result<Target> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let dir = tempfile_dir()?;
    let mut settings = saga_account::config::Settings::defaults();
    settings.listen.http_port = 0;
    settings.listen.grpc_port = 0;
    settings.listen.prom_port = 0;
    settings.listen.bind_address = [127, 0, 0, 1].into();
    settings.database.data_dir = dir.clone();
    settings.signing.secret = Some(saga_account::domain::Secret::new("loadgen-secret"));
    let app = runtime.block_on(saga_account::app::Application::build(settings))?;
    let target = Target {
        http: app.http_addr(),
        grpc: app.grpc_addr(),
    };
    std::thread::Builder::new()
        .name("service".into())
        .spawn(move || {
            let _ = runtime.block_on(app.run_until(std::future::pending()));
            let _ = std::fs::remove_dir_all(dir);
        })?;
    Ok(target)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("loadgen-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn run(args: RunArgs, target: Target, ceilings: Option<Target>) -> anyhow::Result<u64> {
    let load = Load {
        duration: Duration::from_secs_f64(args.duration),
        requests: args.requests,
        concurrency: args.concurrency,
        grpc_connections: args.grpc_connections,
        rate: args.rate,
        check_bodies: true,
    };
    let ceiling_load = Load {
        check_bodies: false,
        ..load.clone()
    };
    let customers = if args.seeded > 0 {
        Arc::new(seed::seeded_customers(&args.dsn, &args.jwt_secret, args.seeded).await?)
    } else {
        Arc::new(scenarios::sign_up(target, args.customers.max(1)).await?)
    };
    let hash_threads = args
        .hash_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!(
        "{} customers; {} s per scenario, {} workers, {} gRPC connections; {} CPUs",
        customers.len(),
        args.duration,
        args.concurrency,
        args.grpc_connections,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("{}", Report::header());
    let mut errors = 0;
    let mut print = |report: &Report, ceiling: Option<&Report>| {
        println!("{}", report.line(ceiling));
        if let Some(e) = &report.first_error {
            println!("    first error: {e}");
        }
        errors += report.errors;
    };
    let rss_watch = args.service_pid.map(|pid| {
        let every = Duration::from_secs_f64(args.rss_every.max(0.1));
        tokio::spawn(async move {
            let start = std::time::Instant::now();
            loop {
                tokio::time::sleep(every).await;
                print_rss(pid, &format!("at {:.0} s", start.elapsed().as_secs_f64()));
            }
        })
    });
    for scenario in args.scenarios.clone() {
        let name = format!("{scenario:?}").to_lowercase();
        if let Some(pid) = args.service_pid {
            print_rss(pid, &format!("before {name}"));
        }
        let ceiling = match (ceilings, scenario) {
            (Some(c), Scenario::Auth) => Some(
                scenarios::run(
                    "empty-rpc",
                    Scenario::Auth,
                    c,
                    customers.clone(),
                    &ceiling_load,
                )
                .await?,
            ),
            (Some(c), Scenario::Person | Scenario::Shipping) => Some(
                scenarios::run(
                    "empty-handler",
                    Scenario::Person,
                    c,
                    customers.clone(),
                    &ceiling_load,
                )
                .await?,
            ),
            (Some(c), Scenario::Refresh) => Some(
                scenarios::run(
                    "empty-handler",
                    Scenario::Refresh,
                    c,
                    customers.clone(),
                    &ceiling_load,
                )
                .await?,
            ),
            _ => None,
        };
        match scenario {
            Scenario::LoginUnderAttack | Scenario::LoginUnderSpray => {
                let attack = if scenario == Scenario::LoginUnderAttack {
                    attack::Attack::OneAccount
                } else {
                    attack::Attack::Spray
                };
                attack::login_under_attack(
                    target,
                    customers.clone(),
                    &load,
                    hash_threads,
                    attack,
                    &mut print,
                )
                .await?;
            }
            Scenario::LoginTiming => {
                attack::login_timing(
                    target,
                    customers.clone(),
                    args.requests.unwrap_or(200),
                    &mut print,
                )
                .await?;
            }
            Scenario::AuthRevocation => {
                anyhow::ensure!(
                    !args.jwt_secret.is_empty(),
                    "auth-revocation mints session-less tokens: give --jwt-secret"
                );
                let codec =
                    saga_account::service::auth::TokenCodec::new(args.jwt_secret.as_bytes());
                let exp = {
                    use saga_account::domain::clock::Clock as _;
                    saga_account::domain::clock::SystemClock.now_secs() + 3600
                };
                let legacy: Vec<_> = customers
                    .iter()
                    .map(|c| {
                        let mut c = c.clone();
                        c.access = codec.mint(&saga_account::service::auth::Claims::legacy(
                            saga_account::domain::CustomerId(c.id),
                            saga_account::service::auth::TokenKind::Access,
                            exp,
                        ));
                        c
                    })
                    .collect();
                let without = scenarios::run(
                    "auth (no session: no check)",
                    Scenario::Auth,
                    target,
                    Arc::new(legacy),
                    &load,
                )
                .await?;
                print(&without, None);
                let with = scenarios::run(
                    "auth (session: checked)",
                    Scenario::Auth,
                    target,
                    customers.clone(),
                    &load,
                )
                .await?;
                print(&with, Some(&without));
            }
            Scenario::AuthKeys => {
                auth_keys(&args, target, &customers, &load, &mut print).await?;
            }
            Scenario::AuthUnderLogin => {
                let alone = scenarios::run(
                    "auth (alone)",
                    Scenario::Auth,
                    target,
                    customers.clone(),
                    &load,
                )
                .await?;
                print(&alone, None);
                let logins = Load {
                    concurrency: hash_threads * 4,
                    ..load.clone()
                };
                let (auth, login) = tokio::join!(
                    scenarios::run(
                        "auth (under login)",
                        Scenario::Auth,
                        target,
                        customers.clone(),
                        &load
                    ),
                    scenarios::run(
                        "login (beside auth)",
                        Scenario::Login,
                        target,
                        customers.clone(),
                        &logins
                    ),
                );
                let (auth, login) = (auth?, login?);
                print(&auth, Some(&alone));
                print(&login, None);
            }
            Scenario::Login => {
                let login_load = Load {
                    concurrency: load.concurrency.min(hash_threads * 8),
                    ..load.clone()
                };
                let report =
                    scenarios::run(&name, scenario, target, customers.clone(), &login_load).await?;
                print(&report, None);
                let single = ceilings::bcrypt_verifications_per_second();
                let capacity = single * hash_threads as f64;
                println!(
                    "    hash pool capacity: {hash_threads} threads x {single:.1} bcrypt-10 verifications/s = {capacity:.1}/s; \
                     login reached {:.0}%",
                    100.0 * report.rate() / capacity.max(1e-9)
                );
            }
            _ => {
                let cpu_before = args.service_pid.and_then(cpu_seconds);
                let report =
                    scenarios::run(&name, scenario, target, customers.clone(), &load).await?;
                print(&report, ceiling.as_ref());
                if let (Some(before), Some(after)) =
                    (cpu_before, args.service_pid.and_then(cpu_seconds))
                {
                    println!(
                        "    service CPU: {:.2} s for {} requests = {:.1} us per request",
                        after - before,
                        report.requests,
                        1e6 * (after - before) / report.requests.max(1) as f64
                    );
                }
            }
        }
    }
    if let Some(pid) = args.service_pid {
        print_rss(pid, "after the last scenario");
    }
    if let Some(watch) = rss_watch {
        watch.abort();
    }
    Ok(if args.allow_errors { 0 } else { errors })
}

/// `Auth` with HS256 tokens against tokens of the key file, each presented 100 times, then
/// each presented once. Tokens are minted here, session-less, so that only the signature
/// differs between the runs.
async fn auth_keys(
    args: &RunArgs,
    target: Target,
    customers: &Arc<Vec<scenarios::Customer>>,
    load: &Load,
    print: &mut impl FnMut(&Report, Option<&Report>),
) -> anyhow::Result<()> {
    use saga_account::{
        domain::CustomerId,
        domain::clock::Clock as _,
        service::auth::{Claims, TokenCodec, TokenKind},
        service::keys::{KeyPair, KeyRing, Published, RingState, Signer},
    };
    let (Some(requests), false, Some(key_file)) = (
        args.requests,
        args.jwt_secret.is_empty(),
        args.jwt_private_key.as_ref(),
    ) else {
        anyhow::bail!("auth-keys needs --requests, --jwt-secret and --jwt-private-key");
    };
    let pair = KeyPair::from_pkcs8(&std::fs::read(key_file)?)?;
    let kid = pair.public().thumbprint();
    let published = vec![Published {
        kid: kid.clone(),
        key: pair.public(),
    }];
    let alg = pair.alg().name();
    let asymmetric = TokenCodec::with_ring(
        KeyRing::new(RingState::new(
            Signer::Pair { kid, pair },
            Vec::new(),
            published,
        )),
        None,
    );
    let hs256 = TokenCodec::new(args.jwt_secret.as_bytes());
    let now = saga_account::domain::clock::SystemClock.now_secs();
    // Distinct tokens: the expiry differs by a second from one to the next.
    let pool = |codec: &TokenCodec, size: u64| -> Arc<Vec<scenarios::Customer>> {
        Arc::new(
            (0..size)
                .map(|i| {
                    let mut c = customers[(i as usize) % customers.len()].clone();
                    c.access = codec.mint(&Claims::legacy(
                        CustomerId(c.id),
                        TokenKind::Access,
                        now + 3600 + i as i64,
                    ));
                    c
                })
                .collect(),
        )
    };
    let reused = (requests / 100).max(1);
    let runs = [
        ("auth HS256 (each token 100x)", &hs256, reused),
        ("auth {alg} (each token 100x)", &asymmetric, reused),
        ("auth HS256 (every token new)", &hs256, requests),
        ("auth {alg} (every token new)", &asymmetric, requests),
    ];
    let mut baseline = None;
    for (i, (name, codec, size)) in runs.into_iter().enumerate() {
        let name = name.replace("{alg}", alg);
        let tokens = pool(codec, size);
        let cpu_before = args.service_pid.and_then(cpu_seconds);
        let report = scenarios::run(&name, Scenario::Auth, target, tokens, load).await?;
        // Each asymmetric run is compared with the HS256 run before it.
        print(&report, if i % 2 == 1 { baseline.as_ref() } else { None });
        if let (Some(before), Some(after)) = (cpu_before, args.service_pid.and_then(cpu_seconds)) {
            println!(
                "    service CPU: {:.1} us per request",
                1e6 * (after - before) / report.requests.max(1) as f64
            );
        }
        if i % 2 == 0 {
            baseline = Some(report);
        }
    }
    Ok(())
}

/// CPU seconds (user + system, all threads) used so far by `pid` (Linux `/proc`).
fn cpu_seconds(pid: u32) -> Option<f64> {
    // utime and stime are fields 14 and 15, after the parenthesised command name.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    // Clock ticks of USER_HZ, which is 100 on Linux.
    Some((utime + stime) / 100.0)
}

/// Prints the resident memory of `pid` (Linux `/proc`).
fn print_rss(pid: u32, when: &str) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        });
    match rss {
        Some(kb) => println!("    service RSS {when}: {:.1} MiB", kb / 1024.0),
        None => println!("    service RSS {when}: unknown (no process {pid})"),
    }
}
