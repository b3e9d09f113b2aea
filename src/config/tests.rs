//! The settings' checks: every setting read and documented, defaults, errors naming keys.

use std::{
    collections::HashMap,
    io::Write,
    path::{Path, PathBuf},
    time::Duration,
};

use super::*;

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
    let missing: Vec<&str> = settings()
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
    assert_eq!(
        (s.listen.http_port, s.listen.grpc_port, s.listen.prom_port),
        (8080, 8000, 8081)
    );
    assert_eq!(
        (s.session.access_ttl_secs, s.session.refresh_ttl_secs),
        (300, 900)
    );
    assert_eq!(s.cache.local_ttl, Duration::from_secs(600));
    assert_eq!(s.cache.redis_ttl, Duration::from_secs(900));
    assert!(s.signing.secret.is_none() && s.redis.addrs.is_empty());
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
    assert_eq!(s.telemetry.app, "shop");
    assert_eq!(s.listen.http_port, 9000);
    assert_eq!(s.signing.secret.unwrap().expose(), "from-env");
    assert_eq!(s.session.access_ttl_secs, 60);
    assert_eq!(s.pool.max_open, 20);
    assert_eq!(s.redis.addrs, vec!["a:7000", "b:7001"]);
    assert_eq!(s.database.dsn.expose(), "root:pw@tcp(db:3306)/account");
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
    for spec in settings() {
        let odd = if spec.default == "7" { "9" } else { "7" };
        match Settings::from_sources(None, env(&[(spec.env, odd)])) {
            Err(e) => assert!(e.to_string().contains(spec.env), "{e}"),
            Ok(s) => assert_ne!(format!("{s:?}"), defaults, "{} is never read", spec.env),
        }
    }
}

/// The CIDR parsing itself is tested beside `IpNet`.
#[test]
fn trusted_proxies_are_cidr_ranges() {
    let s =
        Settings::from_sources(None, env(&[("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")])).unwrap();
    assert_eq!(s.http.trusted_proxies.len(), 2);
    assert!(Settings::from_sources(None, env(&[("TRUSTED_PROXIES", "10.0.0.0/40")])).is_err());
}

#[test]
fn machine_id_is_a_number_or_an_address() {
    let id =
        |v: &str| Settings::from_sources(None, env(&[("MACHINE_ID", v)])).map(|s| s.ids.machine_id);
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
    assert_eq!(s.operator.port, 9090);
    assert_eq!(s.operator.api_keys.len(), 2);
    assert_eq!(s.operator.bind_address.to_string(), "127.0.0.1");
    assert!(!format!("{s:?}").contains(&secret));
    let d = Settings::defaults();
    assert_eq!((d.operator.port, d.mail_limits.per_email_per_hour), (0, 5));
    assert!(d.mail.smtp_url.is_none());
}

/// The defaults SPEC section 13 names.
#[test]
fn mail_defaults_are_the_specs() {
    let d = Settings::defaults();
    assert_eq!(d.mail.reset_ttl, Duration::from_secs(1800));
    assert_eq!(d.mail.verify_ttl, Duration::from_secs(86400));
    assert_eq!(d.mail_limits.per_email_per_hour, 5);
    assert_eq!(d.mail_limits.per_ip_per_hour, 0, "off");
    assert_eq!(d.database.data_dir, PathBuf::from("data"));
}

/// The defaults of rule 15.2, the same as `EmailChangeSettings::default()`.
#[test]
fn email_change_defaults_are_the_specs() {
    let d = Settings::defaults();
    assert!(!d.email_change.requires_password, "the Part I contract");
    assert_eq!(d.email_change.revert_ttl, Duration::from_secs(604_800));
    assert_eq!(d.email_change.reset_hold, Duration::from_secs(86_400));
    assert_eq!(
        d.email_change,
        crate::service::mail::EmailChangeSettings::default()
    );
    let s = Settings::from_sources(
        None,
        env(&[
            ("EMAIL_CHANGE_REQUIRES_PASSWORD", "true"),
            ("EMAIL_CHANGE_RESET_HOLD_SECONDS", "0"),
        ]),
    )
    .unwrap();
    assert!(s.email_change.requires_password);
    assert_eq!(s.email_change.reset_hold, Duration::ZERO);
    assert!(Settings::from_sources(None, env(&[("EMAIL_REVERT_SECONDS", "0")])).is_err());
}

#[test]
fn missing_explicit_file_is_an_error() {
    assert!(Settings::from_sources(Some(Path::new("/nonexistent/config.yml")), env(&[])).is_err());
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
            given in proptest::collection::vec((0..settings().count(), value()), 1..4),
        ) {
            let pairs: Vec<(&str, String)> =
                given.iter().filter_map(|(i, v)| Some((settings().nth(*i)?.env, v.clone()))).collect();
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
            prop_assert_eq!(s.listen.http_port, port);
            prop_assert_eq!(s.session.access_ttl_secs, expiry);
            prop_assert_eq!(s.ids.machine_id, Some(machine));
            prop_assert_eq!(s.abuse.uniform_errors, flag.1);
            prop_assert_eq!(s.redis.addrs, redis);
        }
    }
}
