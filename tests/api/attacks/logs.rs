//! Rules 15.9 and 15.11 read off the built binary's log, as an operator reads it: no URL
//! query, fragment or secret in any line; a short `JWT_SECRET` is warned about at start.

use crate::helpers::*;

const QUERY_SECRET: &str = "QuerySecret4c1d";
const REFERER_SECRET: &str = "RefererSecret9e2a";
const FRAGMENT: &str = "FragmentSecret77b0";

#[tokio::test]
async fn no_query_fragment_or_token_of_a_url_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut service = ServiceProcess::spawn(
        dir.path(),
        &[("JWT_SECRET", SECRET), ("LOG_LEVEL", "debug")],
    );
    let client = reqwest::Client::new();
    let referer = format!("https://shop.example/reset-password?token={REFERER_SECRET}#{FRAGMENT}");
    let response = client
        .post(service.url(&format!("/api/account/auth/signup?token={QUERY_SECRET}#x")))
        .header("referer", &referer)
        .json(&customer(1502))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let (access, _) = tokens_of(response).await;
    for path in [
        format!("/api/account/info/person?access_token={QUERY_SECRET}"),
        format!("/api/account/no-such-route?reset={QUERY_SECRET}"),
    ] {
        let _ = client
            .get(service.url(&path))
            .header("authorization", format!("bearer {access}"))
            .header("referer", &referer)
            .send()
            .await
            .unwrap();
    }
    service.sigterm();
    let status = service.wait();
    let log = service.log().join("\n");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        log.contains("https://shop.example/reset-password"),
        "the referrer is logged, without its query: {log}"
    );
    for secret in [
        QUERY_SECRET,
        REFERER_SECRET,
        FRAGMENT,
        "?token=",
        "password-123",
        access.as_str(),
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}:\n{log}");
    }
}

#[tokio::test]
async fn a_short_jwt_secret_is_warned_about_at_start() {
    let warned = |log: &str| {
        log.lines().any(|l| {
            l.to_ascii_uppercase().contains("WARN")
                && l.contains("JWT_SECRET")
                && l.contains("32 bytes")
        })
    };
    for (secret, short) in [
        ("0123456789abcdef0123456789abcde", true),
        ("0123456789abcdef0123456789abcdef", false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut service = ServiceProcess::spawn(dir.path(), &[("JWT_SECRET", secret)]);
        service.sigterm();
        let status = service.wait();
        let log = service.log().join("\n");
        assert_eq!(status.code(), Some(0), "{log}");
        assert_eq!(warned(&log), short, "{} bytes:\n{log}", secret.len());
        assert!(!log.contains(secret), "the secret itself is never logged");
    }
}
