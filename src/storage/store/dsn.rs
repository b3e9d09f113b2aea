//! `DB_DSN` in the forms operators already have: unset or `sqlite://PATH` for SQLite,
//! `mysql://user:pass@host:port/db` for MySQL/MariaDB, the Go MySQL driver's own form
//! `user:pass@tcp(host:port)/db?charset=utf8mb4&parseTime=True&loc=Local`, as it is, and
//! `postgres://user:pass@host:5432/db` (or `postgresql://`) with libpq's URL parameters
//! (`sslmode`, `sslrootcert`, `application_name`, `options`, …) for PostgreSQL.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
};

use sqlx::{mysql::MySqlConnectOptions, postgres::PgConnectOptions};

/// The parsed `DB_DSN`. Its `Debug` names the backend only: the options hold the password.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(SqliteTarget),
    MySql(Box<MySqlConnectOptions>),
    Postgres(Box<PgConnectOptions>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteTarget {
    File(PathBuf),
    Memory,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid DB_DSN: {0}")]
pub struct DsnError(String);

/// The file used when `DB_DSN` is not set.
pub const DEFAULT_SQLITE_FILE: &str = "account.db";

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(target) => f.debug_tuple("Sqlite").field(target).finish(),
            other => f
                .debug_tuple("DatabaseUrl")
                .field(&other.backend())
                .finish(),
        }
    }
}

impl DatabaseUrl {
    /// Parses `dsn`; an empty one means SQLite in `data_dir`.
    pub fn parse(dsn: &str, data_dir: &Path) -> Result<Self, DsnError> {
        let dsn = dsn.trim();
        if dsn.is_empty() {
            return Ok(Self::Sqlite(SqliteTarget::File(
                data_dir.join(DEFAULT_SQLITE_FILE),
            )));
        }
        if let Some(rest) = dsn.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split('?').next().unwrap_or_default();
            return match path {
                "" => Err(DsnError(
                    "sqlite: needs a file path, e.g. sqlite://data/account.db".into(),
                )),
                ":memory:" => Ok(Self::Sqlite(SqliteTarget::Memory)),
                path => Ok(Self::Sqlite(SqliteTarget::File(PathBuf::from(path)))),
            };
        }
        if dsn.starts_with("mysql://") || dsn.starts_with("mariadb://") {
            let url = dsn.replacen("mariadb://", "mysql://", 1);
            return MySqlConnectOptions::from_str(&url)
                .map(|o| Self::MySql(Box::new(o)))
                .map_err(|e| DsnError(format!("not a valid mysql:// URL ({e})")));
        }
        if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
            return PgConnectOptions::from_str(dsn)
                .map(|o| Self::Postgres(Box::new(o)))
                .map_err(|e| DsnError(format!("not a valid postgres:// URL ({e})")));
        }
        if dsn.contains("://") {
            return Err(DsnError(
                "unsupported scheme; use sqlite://, mysql://, postgres:// or user:pass@tcp(host:port)/db"
                    .into(),
            ));
        }
        parse_go_dsn(dsn).map(|o| Self::MySql(Box::new(o)))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::MySql(_) => "mysql",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// The go-sql-driver/mysql DSN grammar, split the way its `ParseDSN` splits it:
/// `[user[:password]@][net[(addr)]]/dbname[?param=value&...]`, the last `/` separating
/// the database name.
fn parse_go_dsn(dsn: &str) -> Result<MySqlConnectOptions, DsnError> {
    let slash = dsn
        .rfind('/')
        .ok_or_else(|| DsnError("expected user:pass@tcp(host:port)/dbname".into()))?;
    let (prefix, rest) = (&dsn[..slash], &dsn[slash + 1..]);
    let (credentials, endpoint) = match prefix.rfind('@') {
        Some(at) => (Some(&prefix[..at]), &prefix[at + 1..]),
        None => (None, prefix),
    };
    let (db_name, params) = rest.split_once('?').unwrap_or((rest, ""));

    let mut options = MySqlConnectOptions::new();
    if let Some(credentials) = credentials {
        let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
        options = options.username(user).password(password);
    }
    let (net, addr) = match endpoint.split_once('(') {
        Some((net, addr)) => {
            let addr = addr
                .strip_suffix(')')
                .ok_or_else(|| DsnError("unclosed '(' in the address".into()))?;
            (net, addr)
        }
        None => (endpoint, ""),
    };
    options = match net {
        "" | "tcp" | "tcp4" | "tcp6" => {
            let (host, port) = split_host_port(addr)?;
            options.host(host).port(port)
        }
        "unix" => options.socket(if addr.is_empty() {
            "/tmp/mysql.sock"
        } else {
            addr
        }),
        other => return Err(DsnError(format!("unsupported network {other:?}"))),
    };
    if !db_name.is_empty() {
        options = options.database(db_name);
    }
    for pair in params.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            // The driver tries each in turn; the first is what it asks for.
            "charset" => {
                if let Some(first) = value.split(',').next().filter(|c| !c.is_empty()) {
                    options = options.charset(first);
                }
            }
            "collation" => options = options.collation(value),
            // parseTime, loc, timeouts and the rest concern Go's client, not the server.
            _ => {}
        }
    }
    Ok(options)
}

fn split_host_port(addr: &str) -> Result<(&str, u16), DsnError> {
    if addr.is_empty() {
        return Ok(("127.0.0.1", 3306));
    }
    let (host, port) = if let Some(v6) = addr.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| DsnError("unclosed '[' in the address".into()))?;
        (host, after.strip_prefix(':'))
    } else {
        match addr.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (addr, None),
        }
    };
    let port = match port {
        None => 3306,
        Some(p) => p
            .parse()
            .map_err(|_| DsnError(format!("invalid port {p:?}")))?,
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(dsn: &str) -> MySqlConnectOptions {
        match DatabaseUrl::parse(dsn, Path::new("data")).unwrap() {
            DatabaseUrl::MySql(o) => *o,
            other => panic!("{dsn} gave {other:?}"),
        }
    }

    #[test]
    fn empty_means_sqlite_in_the_data_dir() {
        match DatabaseUrl::parse("", Path::new("/d")).unwrap() {
            DatabaseUrl::Sqlite(SqliteTarget::File(p)) => assert_eq!(p, Path::new("/d/account.db")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sqlite_forms() {
        let parse = |s| match DatabaseUrl::parse(s, Path::new("d")).unwrap() {
            DatabaseUrl::Sqlite(t) => t,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            parse("sqlite:///var/lib/a.db"),
            SqliteTarget::File("/var/lib/a.db".into())
        );
        assert_eq!(
            parse("sqlite://rel/a.db?mode=rwc"),
            SqliteTarget::File("rel/a.db".into())
        );
        assert_eq!(parse("sqlite::memory:"), SqliteTarget::Memory);
        assert!(DatabaseUrl::parse("sqlite://", Path::new("d")).is_err());
    }

    #[test]
    fn go_driver_form_works_as_it_is() {
        let o = mysql(
            "ming:pass:word@tcp(accountdb:3307)/account?charset=utf8mb4&parseTime=True&loc=Local",
        );
        assert_eq!(o.get_host(), "accountdb");
        assert_eq!(o.get_port(), 3307);
        assert_eq!(o.get_username(), "ming");
        assert_eq!(o.get_database(), Some("account"));
        assert_eq!(o.get_charset(), "utf8mb4");
        let o = mysql("root@tcp([::1])/db");
        assert_eq!((o.get_host(), o.get_port()), ("::1", 3306));
        let o = mysql("u:p@/db");
        assert_eq!((o.get_host(), o.get_port()), ("127.0.0.1", 3306));
        let o = mysql("u:p@unix(/run/mysqld.sock)/db");
        assert_eq!(
            o.get_socket().map(|p| p.as_path()),
            Some(Path::new("/run/mysqld.sock"))
        );
    }

    #[test]
    fn postgres_urls_with_their_parameters() {
        for (dsn, host, port, ssl) in [
            (
                "postgres://ming:p%40ss@db.internal:6432/account",
                "db.internal",
                6432,
                "Prefer",
            ),
            (
                "postgresql://ming:pw@db/account?sslmode=require",
                "db",
                5432,
                "Require",
            ),
            (
                "postgres://ming@10.0.0.5/account?sslmode=verify-full&application_name=acct",
                "10.0.0.5",
                5432,
                "VerifyFull",
            ),
        ] {
            let options = match DatabaseUrl::parse(dsn, Path::new("d")).unwrap() {
                DatabaseUrl::Postgres(o) => *o,
                other => panic!("{dsn} gave {other:?}"),
            };
            assert_eq!(
                (options.get_host(), options.get_port()),
                (host, port),
                "{dsn}"
            );
            assert_eq!(options.get_database(), Some("account"));
            assert_eq!(options.get_username(), "ming");
            assert_eq!(format!("{:?}", options.get_ssl_mode()), ssl, "{dsn}");
        }
    }

    #[test]
    fn the_password_is_not_in_debug_output() {
        for dsn in [
            "postgres://u:hunter2@h/db",
            "mysql://u:hunter2@h/db",
            "u:hunter2@tcp(h:1)/db",
        ] {
            let url = DatabaseUrl::parse(dsn, Path::new("d")).unwrap();
            assert!(!format!("{url:?}").contains("hunter2"), "{dsn}");
        }
    }

    #[test]
    fn url_form_and_errors() {
        assert_eq!(mysql("mysql://u:p@h:3310/db").get_port(), 3310);
        assert_eq!(mysql("mariadb://u:p@h/db").get_host(), "h");
        for bad in [
            "postgres://u:p@h:notaport/db",
            "redis://h/0",
            "u:p@tcp(h:3306/db",
            "u:p@tcp(h:x)/db",
            "u:p@udp(h)/db",
            "nodb",
        ] {
            assert!(DatabaseUrl::parse(bad, Path::new("d")).is_err(), "{bad}");
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn host() -> impl Strategy<Value = (String, String)> {
            // (as written in the DSN, as the options hold it)
            prop_oneof![
                "[a-z][a-z0-9-]{0,15}(\\.[a-z][a-z0-9-]{0,10}){0,3}".prop_map(|h| (h.clone(), h)),
                any::<std::net::Ipv4Addr>().prop_map(|ip| (ip.to_string(), ip.to_string())),
                any::<std::net::Ipv6Addr>().prop_map(|ip| (format!("[{ip}]"), ip.to_string())),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// Any text: a database, or an error that names the setting. Never a panic.
            #[test]
            fn any_text_parses_or_names_the_setting(
                dsn in prop_oneof![
                    ".{0,120}",
                    "(sqlite:|mysql://|mariadb://)?[a-z:@/()?&=\\[\\]%.0-9]{0,60}",
                    "[a-z]{0,5}(:[^@/]{0,8})?@[a-z]{0,4}(\\([^)]{0,20}\\)?)?/[a-z?&=,]{0,20}",
                ]
            ) {
                if let Err(e) = DatabaseUrl::parse(&dsn, Path::new("data")) {
                    prop_assert!(e.to_string().starts_with("invalid DB_DSN: "), "{}", e);
                }
            }

            /// The Go driver's form as operators write it gives back its host, port,
            /// database and user.
            #[test]
            fn go_driver_dsns_round_trip(
                user in "[a-zA-Z0-9_.-]{1,16}",
                password in "[^/]{0,16}",
                (written, host) in host(),
                port in proptest::option::of(any::<u16>()),
                net in prop_oneof![Just("tcp"), Just("tcp4"), Just("tcp6")],
                db in "[a-zA-Z0-9_$-]{1,20}",
                params in "(charset=utf8mb4(,utf8)?&)?(parseTime=True&)?(loc=Local)?",
            ) {
                let address = match port {
                    Some(port) => format!("{written}:{port}"),
                    None => written,
                };
                let dsn = format!("{user}:{password}@{net}({address})/{db}?{params}");
                let options = match DatabaseUrl::parse(&dsn, Path::new("data")) {
                    Ok(DatabaseUrl::MySql(options)) => options,
                    other => return Err(TestCaseError::fail(format!("{dsn}: {other:?}"))),
                };
                prop_assert_eq!(options.get_host(), host.as_str());
                prop_assert_eq!(options.get_port(), port.unwrap_or(3306));
                prop_assert_eq!(options.get_database(), Some(db.as_str()));
                prop_assert_eq!(options.get_username(), user.as_str());
            }
        }
    }
}
