//! An authenticator nobody here wrote: Debian's `oathtool` reads the secret the enrolment
//! shows and computes the code that confirms it (SPEC section 16: an app that reads the
//! RFC 6238 defaults works).

use serde_json::Value;

use super::*;
use crate::helpers::*;

/// `oathtool --totp -b SECRET` now, `None` when it is not installed.
fn oathtool(secret: &str) -> Option<String> {
    let output = std::process::Command::new("oathtool")
        .args(["--totp", "-b", secret])
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oathtool_computes_the_code_that_confirms_an_enrolment() {
    if oathtool("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").is_none() {
        assert!(
            std::env::var_os("TEST_REQUIRE_SERVICES").is_none(),
            "oathtool is required in CI (apt-get install oathtool)"
        );
        eprintln!("skipped: oathtool is not installed (apt-get install oathtool)");
        return;
    }
    let app = spawn_app(&Backend::Sqlite).await;
    let (access, _) = app.signup(&customer(30)).await;
    let enrolment = enrol_totp(&app, &access).await;
    let secret = enrolment["secret"].as_str().unwrap();
    let code = oathtool(secret).unwrap();
    assert_eq!(code.len(), 6, "{code}");
    let response = confirm(&app, &access, &code).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["recovery_codes"].as_array().unwrap().len(), 10);
}
