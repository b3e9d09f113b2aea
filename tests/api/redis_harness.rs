//! Real Redis for the cache tests: a `redis-server` this test starts (and can stop and
//! restart), or the single node / cluster that CI started (`TEST_REDIS_ADDRS`,
//! `TEST_REDIS_CLUSTER_ADDRS` + `TEST_REDIS_CLUSTER_PASSWORD`).

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::Duration,
};

use saga_account::{config::Settings, domain::Secret};

fn require_services() -> bool {
    std::env::var("TEST_REQUIRE_SERVICES").is_ok()
}

fn skip(what: &str) {
    assert!(
        !require_services(),
        "TEST_REQUIRE_SERVICES is set but {what} is not available"
    );
    eprintln!("skipped: {what} is not available");
}

/// Where a test's replicas find Redis.
#[derive(Clone, Debug)]
pub struct RedisTarget {
    pub addrs: Vec<String>,
    pub password: Option<String>,
}

impl RedisTarget {
    pub fn apply(&self, settings: &mut Settings) {
        settings.redis.addrs = self.addrs.clone();
        settings.redis.password = self.password.clone().map(Secret::new);
    }

    /// The single node CI started, else a server of our own, else skip.
    pub fn single() -> Option<(RedisTarget, Option<RedisServer>)> {
        if let Ok(addr) = std::env::var("TEST_REDIS_ADDRS")
            && !addr.is_empty()
        {
            return Some((
                RedisTarget {
                    addrs: vec![addr],
                    password: None,
                },
                None,
            ));
        }
        let server = RedisServer::start()?;
        Some((server.target(), Some(server)))
    }

    /// The cluster CI started.
    pub fn cluster() -> Option<RedisTarget> {
        match std::env::var("TEST_REDIS_CLUSTER_ADDRS") {
            Ok(addrs) if !addrs.is_empty() => Some(RedisTarget {
                addrs: addrs.split(',').map(str::to_owned).collect(),
                password: std::env::var("TEST_REDIS_CLUSTER_PASSWORD").ok(),
            }),
            _ => {
                skip("a Redis Cluster (TEST_REDIS_CLUSTER_ADDRS)");
                None
            }
        }
    }

    /// A plain client to look at what the service wrote.
    pub async fn client(&self) -> fred::prelude::Client {
        use fred::prelude::*;
        let servers: Vec<(String, u16)> = self
            .addrs
            .iter()
            .map(|a| {
                let (h, p) = a.rsplit_once(':').unwrap();
                (h.to_owned(), p.parse().unwrap())
            })
            .collect();
        let server = if servers.len() > 1 {
            ServerConfig::new_clustered(servers)
        } else {
            ServerConfig::new_centralized(servers[0].0.clone(), servers[0].1)
        };
        let config = Config {
            server,
            password: self.password.clone(),
            ..Config::default()
        };
        let client = Builder::from_config(config).build().unwrap();
        client.init().await.unwrap();
        client
    }
}

/// A `redis-server` owned by one test, on a port of its own.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            skip("redis-server");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let mut server = RedisServer {
            port,
            child: None,
            dir: tempfile::tempdir().ok()?,
        };
        server.resume();
        Some(server)
    }

    /// A server that is configured but not started yet.
    pub fn not_started() -> Option<RedisServer> {
        let mut server = Self::start()?;
        server.stop();
        Some(server)
    }

    pub fn target(&self) -> RedisTarget {
        RedisTarget {
            addrs: vec![format!("127.0.0.1:{}", self.port)],
            password: None,
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts on the same port, empty, and waits until it answers.
    pub fn resume(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
