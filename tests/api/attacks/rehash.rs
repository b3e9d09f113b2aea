//! Rule 15.11: the transparent hash upgrade writes only if the stored hash is still the one
//! it verified, so a login that raced a password change never restores the old password.
//!
//! Two replicas of one database: A hashes new passwords with a deliberately slow Argon2id
//! (about a second), B keeps bcrypt. A login on A verifies the stored bcrypt hash and
//! answers; its upgrade is still hashing when B changes the password. Without a
//! compare-and-set, A's upgrade then writes the hash of the *old* password over the new one.

use std::time::Duration;

use saga_account::service::auth::Algorithm;
use serde_json::json;

use crate::{backend_tests, helpers::*};

backend_tests!(a_hash_upgrade_racing_a_password_change_never_restores_the_old_password);

fn samples(app: &TestApp, operation: &str) -> u64 {
    app.metrics
        .db_query_duration
        .with_label_values(&[operation])
        .get_sample_count()
}

async fn a_hash_upgrade_racing_a_password_change_never_restores_the_old_password(backend: Backend) {
    let database = TestDatabase::fresh(&backend).await;
    let b = spawn_app_on(&database, |_| {}).await;
    let a = spawn_app_on(&database, |s| {
        s.password.hash = Algorithm::Argon2id;
        s.password.argon2_memory_kib = 32 * 1024;
        s.password.argon2_iterations = 40;
    })
    .await;
    let mut raced = 0;
    for n in 0..3 {
        let email = format!("ming{}@example.com", 1570 + n);
        let (access, _) = b.signup(&customer(1570 + n)).await;
        let id = b.customer_of(&access);
        let stored = async || {
            database
                .query(&format!(
                    "SELECT bcrypted_password FROM customers WHERE id = {id}"
                ))
                .await[0][0]
                .clone()
                .unwrap()
        };
        assert!(stored().await.starts_with("$2"), "a bcrypt row");
        let attempts_before = samples(&a, "update_password") + samples(&a, "upgrade_password");

        // The login on A answers; its upgrade hashes in the background.
        a.login(&email, "password-123").await;
        // B changes the password meanwhile.
        let changed = b
            .put_auth(
                "/info/password",
                &access,
                &json!({"current_password": "password-123", "new_password": "password-456"}),
            )
            .await;
        assert_eq!(changed.status(), 200);
        let new_hash = stored().await;
        let upgrade_done =
            || samples(&a, "update_password") + samples(&a, "upgrade_password") > attempts_before;
        if upgrade_done() {
            // The upgrade won the race outright: nothing raced; try again.
            continue;
        }
        raced += 1;
        // The upgrade's write (or its refusal) is a database call on A: wait for it.
        poll_within(Duration::from_secs(30), async || upgrade_done(), |d| *d).await;
        assert!(upgrade_done(), "A's upgrade finished");
        assert_eq!(
            stored().await,
            new_hash,
            "the hash B wrote stays: the upgrade of the old password did not overwrite it"
        );
        assert_msg(
            b.post(
                "/auth/login",
                &json!({"email": email, "password": "password-123"}),
            )
            .await,
            401,
            "authentication failed",
        )
        .await;
        b.login(&email, "password-456").await;
    }
    assert!(
        raced > 0,
        "the change never landed inside the upgrade's window"
    );
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
