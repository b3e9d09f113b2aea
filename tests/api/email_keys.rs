//! Rule 15.3, one address, one key: every spelling that the database takes for the
//! customer's address shares one failure count, one mail limit and one cached entry that
//! every write clears. MariaDB's collations fold case and accents (`chén` = `CHEN`);
//! SQLite's `NOCASE` folds ASCII letters only, so there the spellings differ in case.

use reqwest::Method;
use saga_account::{domain::Email, storage::store::CustomerStore};
use serde_json::json;

use crate::{backend_tests, helpers::*, redis_harness::RedisTarget};

backend_tests!(
    wrong_guesses_over_spellings_share_one_lockout,
    a_password_change_reaches_every_cached_spelling,
    the_mail_limit_counts_every_spelling_as_one,
);

/// The stored address and spellings of it that the backend matches to it; `stored_ascii`
/// for an address that SMTP takes as it is (the test's sink speaks no SMTPUTF8).
fn spellings(backend: &Backend, stored_ascii: bool) -> (String, Vec<String>) {
    let tag: u32 = rand::random();
    let stored = if stored_ascii {
        format!("Chen{tag:x}@Example.com")
    } else {
        format!("Chén{tag:x}@Example.com")
    };
    let same: Vec<String> = match backend {
        Backend::MySql(_) => vec![
            format!("chén{tag:x}@example.com"),
            format!("chen{tag:x}@example.com"),
            format!("CHEN{tag:X}@EXAMPLE.COM"),
            format!("CHÉN{tag:X}@example.com"),
            format!("chèn{tag:x}@exâmple.com"),
            format!("Chên{tag:x}@Example.com"),
        ],
        Backend::Postgres(_) if !stored_ascii => vec![
            // lower() under the server's UTF-8 locale: every case folded, accents kept.
            format!("chén{tag:x}@example.com"),
            format!("CHÉN{tag:X}@EXAMPLE.COM"),
            format!("cHÉN{tag:x}@example.COM"),
            format!("ChÉn{tag:X}@Example.com"),
            format!("CHéN{tag:x}@Example.Com"),
            format!("chéN{tag:x}@exAmple.com"),
        ],
        Backend::Sqlite | Backend::Postgres(_) if stored_ascii => vec![
            format!("chen{tag:x}@example.com"),
            format!("CHEN{tag:X}@EXAMPLE.COM"),
            format!("cHeN{tag:x}@example.COM"),
            format!("Chen{tag:X}@Example.com"),
            format!("CHEN{tag:x}@Example.Com"),
            format!("cheN{tag:x}@exAmple.com"),
        ],
        Backend::Sqlite | Backend::Postgres(_) => vec![
            format!("chén{tag:x}@example.com"),
            format!("CHéN{tag:X}@EXAMPLE.COM"),
            format!("cHéN{tag:x}@example.COM"),
            format!("Chén{tag:X}@Example.com"),
            format!("CHéN{tag:x}@Example.Com"),
            format!("chéN{tag:x}@exAmple.com"),
        ],
    };
    (stored, same)
}

async fn outbox_rows(app: &TestApp) -> i64 {
    app.database.query("SELECT COUNT(*) FROM mail_outbox").await[0][0]
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

async fn signup_as(app: &TestApp, email: &str, n: u32) {
    let mut body = customer(n);
    body["email"] = json!(email);
    app.signup(&body).await;
}

async fn login_status(app: &TestApp, email: &str, password: &str) -> u16 {
    app.post(
        "/auth/login",
        &json!({"email": email, "password": password}),
    )
    .await
    .status()
    .as_u16()
}

/// Five wrong guesses spread over five spellings lock every spelling, the stored one too.
async fn wrong_guesses_over_spellings_share_one_lockout(backend: Backend) {
    let app = spawn_app(&backend).await;
    let (stored, same) = spellings(&backend, false);
    signup_as(&app, &stored, 501).await;
    for spelling in same.iter().take(5) {
        assert_eq!(
            login_status(&app, spelling, "wrong-password").await,
            401,
            "{spelling}"
        );
    }
    for spelling in same.iter().chain([&stored]) {
        assert_eq!(
            login_status(&app, spelling, "password-123").await,
            429,
            "{spelling} has its own count"
        );
    }
    app.shutdown().await.unwrap();
}

async fn password_change_case(app: &TestApp, backend: &Backend) {
    let (stored, same) = spellings(backend, false);
    signup_as(app, &stored, 502).await;
    // Each spelling logs in once, so that whatever a spelling is cached under is filled.
    let mut access = String::new();
    for spelling in same.iter().take(4) {
        access = app.login(spelling, "password-123").await.0;
    }
    let change = json!({"current_password": "password-123", "new_password": "password-456"});
    let response = app
        .call(Method::PUT, "/info/password", Some(&access), Some(&change))
        .await;
    assert_eq!(response.status(), 200);
    // Fewer wrong guesses than the limit: each answer is the password's, not the limit's.
    for spelling in same.iter().take(4) {
        assert_eq!(
            login_status(app, spelling, "password-123").await,
            401,
            "the old password still logs in as {spelling}"
        );
    }
    for spelling in same.iter().take(4) {
        assert_eq!(login_status(app, spelling, "password-456").await, 200);
    }
}

/// After a password change the old password logs in under no spelling cached before.
async fn a_password_change_reaches_every_cached_spelling(backend: Backend) {
    let app = spawn_app(&backend).await;
    password_change_case(&app, &backend).await;
    app.shutdown().await.unwrap();
}

/// The same through Redis: the entries another replica (or this one) put there.
async fn a_password_change_reaches_every_spelling_cached_in_redis(backend: Backend) {
    let Some((redis, _server)) = RedisTarget::single() else {
        return;
    };
    let app = spawn_app_with(&backend, |s| redis.apply(s)).await;
    app.wait_subscribed().await;
    password_change_case(&app, &backend).await;
    app.shutdown().await.unwrap();
}

/// Ten reset requests over the spellings of one address: the limit of five holds.
async fn the_mail_limit_counts_every_spelling_as_one(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = spawn_app_with(&backend, with_smtp(&sink)).await;
    let (stored, same) = spellings(&backend, true);
    signup_as(&app, &stored, 503).await;
    for spelling in same.iter().chain(same.iter()).take(10) {
        assert_msg(
            app.post("/auth/password/forgot", &json!({"email": spelling}))
                .await,
            202,
            "ok",
        )
        .await;
    }
    sink.wait_for(&stored, 5).await;
    poll_until(async || outbox_rows(&app).await, |n| *n == 0).await;
    assert_eq!(
        sink.mails().await.len(),
        5,
        "MAIL_MAX_PER_EMAIL_PER_HOUR counts per address, whatever the spelling"
    );
    app.shutdown().await.unwrap();
}

/// Spellings whose equality differs from one collation to another.
const TRICKY: [&str; 18] = [
    "chen@x.co",
    "chén@x.co",
    "CHÉN@X.CO",
    "ｃhen@x.co",
    "strasse@x.co",
    "straße@x.co",
    "strase@x.co",
    "fin@x.co",
    "ﬁn@x.co",
    "soren@x.co",
    "søren@x.co",
    "aeon@x.co",
    "æon@x.co",
    "asa@x.co",
    "Åsa@x.co",
    "ıris@x.co",
    "iris@x.co",
    "名字@x.co",
];

/// On every collation the email column may have (the default of MariaDB 10.11, the UCA ones
/// of MySQL and newer MariaDB), two spellings have one key exactly when the database takes
/// them for one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_agree_with_the_column_collation() {
    let Some(backend) = Backend::mysql() else {
        return;
    };
    for collation in [
        "utf8mb4_general_ci",
        "utf8mb4_unicode_ci",
        "utf8mb4_unicode_520_ci",
        "utf8mb4_uca1400_ai_ci",
        "utf8mb4_uca1400_as_ci",
        "utf8mb4_bin",
    ] {
        let app = spawn_app(&backend).await;
        app.sql(&format!(
            "ALTER TABLE customers MODIFY email VARCHAR(320) NOT NULL COLLATE {collation}"
        ))
        .await;
        let mut keys = Vec::new();
        for spelling in TRICKY {
            let email = Email::parse(spelling).unwrap();
            keys.push(app.cache.email_key(&email).await.unwrap());
        }
        for (i, a) in TRICKY.iter().enumerate() {
            for (j, b) in TRICKY.iter().enumerate() {
                let equal = app
                    .database
                    .query(&format!(
                        "SELECT CONVERT('{a}' USING utf8mb4) COLLATE {collation} = CONVERT('{b}' USING utf8mb4)"
                    ))
                    .await[0][0]
                    .as_deref()
                    == Some("1");
                assert_eq!(
                    keys[i] == keys[j],
                    equal,
                    "{collation}: {a} ({}) and {b} ({})",
                    keys[i],
                    keys[j]
                );
            }
        }
        // The Redis names of SPEC section 5 for an ASCII address, wherever case folds.
        if collation != "utf8mb4_bin" && collation != "utf8mb4_uca1400_as_ci" {
            assert_eq!(keys[2].as_str(), "chen@x.co", "{collation}");
        }
        app.shutdown().await.unwrap();
    }
}

crate::server_tests!(a_password_change_reaches_every_spelling_cached_in_redis,);
